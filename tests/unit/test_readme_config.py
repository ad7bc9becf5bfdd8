"""The README's configuration reference names every setting the code reads, and nothing else:
each key of its TOML block is a field of the section's settings class and each field is listed."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from bridge import config

README = Path(__file__).resolve().parents[2] / "README.md"

SECTIONS: dict[str, type[Any]] = {
    field.name: field.type if isinstance(field.type, type) else getattr(config, str(field.type))
    for field in dataclasses.fields(config.Settings)
    if field.name != "domains"
}
DOMAIN_SECTIONS: dict[str, type[Any]] = {
    field.name: getattr(config, str(field.type))
    for field in dataclasses.fields(config.DomainSettings)
    if field.name != "real_names"
}


def reference() -> dict[str, Any]:
    text = README.read_text()
    section = text[text.index("## Configuration") :]
    block = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return tomllib.loads(block.group(1))


def names(cls: type[Any]) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def test_every_section_and_key_matches_the_settings_classes() -> None:
    documented = reference()
    assert set(documented) - {"domains"} == set(SECTIONS)
    for name, cls in SECTIONS.items():
        assert set(documented[name]) == names(cls), name
    domain = next(iter(documented["domains"].values()))
    for name, cls in DOMAIN_SECTIONS.items():
        assert set(domain[name]) == names(cls), f"domains.*.{name}"


def test_documented_values_are_the_defaults_or_load() -> None:
    # The block is a working configuration: it loads without errors.
    raw = README.read_text()
    section = raw[raw.index("## Configuration") :]
    block = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    settings = config.loads(block.group(1))
    assert settings.xmap.port == 11026
