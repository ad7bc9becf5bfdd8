"""The load generator (tests/bench/load.py) in miniature: 5 sessions for a few seconds against its
own dev stack and bridge subprocess, with no error and a report that makes sense."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LOAD_PY = REPO / "tests" / "bench" / "load.py"
SETUP_OPS = {"login", "calendarOpen", "calendarPublish", "folderOpen", "folderBrowse", "signalBind"}


def check_row(op: str, row: dict[str, Any]) -> None:
    assert row["count"] > 0, op
    assert 0 <= row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"], (op, row)
    assert row["max_ms"] < 30_000, (op, row)
    assert row["ops_per_s"] > 0, (op, row)


def test_five_sessions_run_without_errors_and_report_sanely(tmp_path: Path) -> None:
    report = tmp_path / "load.json"
    command = [
        sys.executable, str(LOAD_PY), "--sessions", "5", "--seconds", "6", "--ramp", "1",
        "--think", "0.4", "--http-share", "0.2", "--interval", "3", "--report", str(report),
    ]  # fmt: skip
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "errors in the whole run (ramps included): 0" in done.stdout
    result = json.loads(report.read_text())
    assert result["errors_total"] == 0
    (step,) = result["steps"]
    assert step["sessions"] == 5
    assert step["transports"] == {"tcp": 4, "http": 1}
    assert step["im_pairs"] == 2
    assert step["ramp"]["errors"] == 0 and step["ramp"]["count"] >= 5 * 6
    # Every session is alive at the end, as the generator and the bridge's own gauge say.
    assert step["live_sessions"] == 5
    assert step["bridge_sessions"] == {"tcp": 4, "http": 1}
    # Setup ran for everyone; then the mix: several kinds of operations, none failed.
    total = result["total"]
    assert set(total["ops"]) >= SETUP_OPS
    assert total["ops"]["login"]["count"] >= 5
    measured = step["measured"]
    assert measured["all"]["errors"] == 0 and measured["all"]["count"] >= 20
    assert len(set(measured["ops"]) - SETUP_OPS) >= 5, measured["ops"].keys()
    for op, row in measured["ops"].items():
        check_row(op, row)
        assert row["errors"] == 0 and "first_errors" not in row, (op, row)
    check_row("all", measured["all"])
    # The bridge's resources, read from its own process.
    resources = step["resources"]
    assert 20 < result["bridge_rss_before_sessions_mb"] <= resources["rss_peak_mb"] < 2000
    assert resources["rss_first_mb"] <= resources["rss_peak_mb"]
    assert resources["rss_last_mb"] <= resources["rss_peak_mb"]
    assert resources["cpu_seconds"] > 0
    assert 0 < resources["cpu_cores"] < 2.5
    assert abs(resources["rss_slope_mb_per_min"]) < 500
    # Each session holds IMAP connections (its own and its open folder's, at least).
    backends = step["backends"]
    # Counted three ways, a moment apart (a second folder may open or close in between).
    for way in ("imap_connections", "dovecot_imap_processes", "doveadm_who"):
        assert backends[way] >= 2 * 5, backends
    assert step["memory_per_session_mb"] < 50
    assert result["intervals"] and result["intervals"][0]["live_sessions"] == 5
