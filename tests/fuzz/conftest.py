"""The fuzz folder's budget lives in harness.py (FUZZ_EXAMPLES, FUZZ_DEADLINE_MS); this shows it
in the test header, so a run's figures say what they were measured with, and stretches pytest's
per-test timeout (300 s in pyproject.toml) to fit a long run: a hang still fails, just later."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import DEADLINE_MS, EXAMPLES

# Seconds per example a target may take on average before its run counts as a hang.
_SECONDS_PER_EXAMPLE = 0.2


def pytest_report_header(config: pytest.Config) -> str:
    return f"fuzz budget: {EXAMPLES} examples per target, deadline {DEADLINE_MS} ms per example"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    timeout = max(300, int(EXAMPLES * _SECONDS_PER_EXAMPLE))
    for item in items:
        if "tests/fuzz/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(timeout))
