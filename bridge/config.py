"""Typed settings from a TOML file plus environment overrides, with per-domain backend routing.

Every limit the bridge enforces has a name here (STYLE rule 6). Environment variables override the
file: `XIMSS_BRIDGE__<SECTION>__<KEY>` (for example `XIMSS_BRIDGE__LIMITS__IDLE_TIMEOUT=300`);
`XIMSS_BRIDGE_CONFIG` names the file when the command line does not.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ENV_PREFIX = "XIMSS_BRIDGE__"
ENV_CONFIG_FILE = "XIMSS_BRIDGE_CONFIG"


class ConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ServerSettings:
    default_domain: str = "example.test"
    log_level: str = "INFO"
    # Time zone for localTime attributes until a user preference says otherwise.
    time_zone: str = "UTC"
    # Shown in listFeatures; the bridge itself has only English texts.
    language: str = "English"


@dataclass(frozen=True, slots=True)
class TcpSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 11024


@dataclass(frozen=True, slots=True)
class LimitSettings:
    # Largest XML message accepted; a larger frame closes the connection without buffering it.
    max_frame_bytes: int = 1 << 20
    max_xml_depth: int = 64
    # Requests read ahead of the one being processed; reading pauses past this.
    pipeline_depth: int = 64
    # Messages waiting for a slow client; past this the client is disconnected.
    output_queue: int = 4096
    # Seconds without a request before a session's connection is closed (spec: 10 minutes).
    idle_timeout: float = 600.0
    # Seconds a connection may stay without logging in.
    login_timeout: float = 120.0
    max_connections: int = 2000
    # Seconds for one backend operation before it is reported as timed out.
    backend_timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str = "127.0.0.1"
    port: int = 143
    security: Literal["none", "starttls", "tls"] = "none"
    connect_timeout: float = 10.0
    # Largest literal accepted from the server, in bytes.
    max_literal_bytes: int = 64 << 20
    # IMAP METADATA entry that keeps a mailbox's XIMSS class.
    class_metadata_entry: str = "/shared/vendor/vendor.ximss-bridge/mailbox-class"


@dataclass(frozen=True, slots=True)
class DomainSettings:
    imap: ImapSettings = field(default_factory=ImapSettings)
    # Account name -> real name, for the session's realName (IMAP has no directory of its own).
    real_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    tcp: TcpSettings = field(default_factory=TcpSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    domains: Mapping[str, DomainSettings] = field(default_factory=dict)

    def domain(self, name: str | None) -> tuple[str, DomainSettings] | None:
        """The routing entry for a domain (case-insensitive); None when no backend serves it."""
        wanted = (name or self.server.default_domain).lower()
        for key, value in self.domains.items():
            if key.lower() == wanted:
                return key.lower(), value
        return None


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    file = path or (Path(env[ENV_CONFIG_FILE]) if env.get(ENV_CONFIG_FILE) else None)
    if file is not None:
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from exc
    _apply_environment(raw, env)
    settings: Settings = _build(Settings, raw, "")
    if not settings.domains:
        raise ConfigError('no [domains."<name>"] section: the bridge needs at least one backend')
    if settings.domain(None) is None:
        raise ConfigError(f"default_domain {settings.server.default_domain!r} has no section")
    return settings


def loads(text: str) -> Settings:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc)) from exc
    settings: Settings = _build(Settings, raw, "")
    return settings


def _apply_environment(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if len(path) < 2:
            continue
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {part} is not a section")
        node[path[-1]] = _env_value(value)


def _env_value(text: str) -> Any:
    # TOML's own value syntax, so numbers and booleans keep their types; bare words stay strings.
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _build(cls: type[Any], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown setting(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        values[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**values)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, where)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{where}: must be one of {', '.join(typing.get_args(hint))}")
        return value
    if origin in (Mapping, dict) or origin is getattr(typing, "Mapping", None):
        _, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        return {str(k): _convert(value_type, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (types.UnionType, typing.Union):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, hint)):
        raise ConfigError(f"{where}: expected a number")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false")
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string")
    return value


def describe(settings: Settings) -> str:
    """A short human summary for `check-config`, with no secrets (there are none in settings)."""
    lines = [
        f"default domain: {settings.server.default_domain}",
        f"XIMSS TCP: {settings.tcp.host}:{settings.tcp.port}"
        + ("" if settings.tcp.enabled else " (disabled)"),
    ]
    for name, domain in settings.domains.items():
        imap = domain.imap
        lines.append(f"domain {name}: IMAP {imap.host}:{imap.port} ({imap.security})")
    return "\n".join(lines)
