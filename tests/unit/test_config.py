from __future__ import annotations

from pathlib import Path

import pytest

from bridge import config

BASE = """
[server]
default_domain = "example.test"
[domains."example.test".imap]
port = 1143
[domains."example.test".real_names]
user1 = "User One"
[domains."other.test".imap]
host = "127.0.0.2"
"""


def test_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(BASE)
    env = {"XIMSS_BRIDGE__LIMITS__IDLE_TIMEOUT": "30", "XIMSS_BRIDGE__TCP__HOST": "::1"}
    settings = config.load(path, env)
    assert settings.limits.idle_timeout == 30.0
    assert settings.tcp.host == "::1"
    assert settings.domains["example.test"].imap.port == 1143
    assert settings.domains["example.test"].real_names["user1"] == "User One"


def test_domain_routing_is_case_insensitive() -> None:
    settings = config.loads(BASE)
    found = settings.domain("OTHER.test")
    assert found is not None and found[1].imap.host == "127.0.0.2"
    default = settings.domain(None)
    assert default is not None and default[0] == "example.test"
    assert settings.domain("nowhere.test") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nidle_timeout = 'x'", "expected a number"),
        ("[limits]\nbogus = 1", "unknown setting"),
        ('[domains."a".imap]\nsecurity = "ssl"', "must be one of"),
        ("[tcp]\nenabled = 1", "expected true or false"),
    ],
)
def test_invalid_settings_are_named(text: str, message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.loads(text)


def test_load_requires_a_domain(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    with pytest.raises(config.ConfigError, match="no \\[domains"):
        config.load(path, {})
