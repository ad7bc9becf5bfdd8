"""SIGHUP: read the settings file again and apply what can change while sessions go on.

Applied at once:
- per-domain backends (IMAP, SMTP, CalDAV, SIP hosts, ports, timeouts; provisioning; real
  names) for new logins. A session keeps the backend connections it has (its IMAP connection
  and reconnects, its SMTP submitter, a bound SIP agent, open calendars); what it opens after
  the reload (a calendarOpen, a signalBind) uses the new settings;
- every setting read where it is used through `services.settings`: `limits` (new connections
  take the new values, open ones keep what they started with), HTTP timeouts and body limits,
  CORS, the preference defaults, retrieveXML;
- the TLS certificate and key, loaded into the context the listeners share (new handshakes use
  them; a renewed certificate at the same path is loaded again too), and the minimum version;
- the log level and format.

Settings that only take effect when something is built at start (listener addresses and ports,
turning TLS on or off, the state backend...) are kept as they were and logged as needing a
restart. A file that does not load, or a certificate that does not, changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bridge import config, logs
from bridge.config import ConfigError, DomainSettings, Settings
from bridge.errors import BridgeError
from bridge.services import DomainServices
from bridge.transport.tls import MIN_VERSIONS, server_context

if TYPE_CHECKING:
    from bridge.app import Bridge

log = logging.getLogger("bridge.reload")

# Settings (dotted names, or whole sections) read once when a listener or store is built.
RESTART_ONLY: Final = frozenset({
    "tcp.enabled", "tcp.host", "tcp.port", "tcp.tls_port", "tcp.starttls",
    "http.enabled", "http.host", "http.port", "http.tls", "http.read_timeout",
    "xmap.enabled", "xmap.host", "xmap.port",
    "state", "cluster", "cache", "sessions",
})  # fmt: skip

DomainBuilder = Callable[[str, DomainSettings, float, DomainServices | None], DomainServices]


class Reloader:
    def __init__(self, bridge: Bridge, config_file: Path | None, build: DomainBuilder) -> None:
        self._bridge = bridge
        self._file = config_file
        self._build = build

    def reload(self) -> bool:
        """Load, check, then apply everything or nothing; True when the settings were applied."""
        where = str(self._file) if self._file is not None else "the environment"
        current = self._bridge.settings
        try:
            loaded = config.load(self._file)
            settings, kept = merge(current, loaded)
            _check_level(settings.server.log_level)
            if settings.tls.configured:
                server_context(settings.tls)  # throwaway: fails here, before anything changes
            domains = self._domains(current, settings)
        except (ConfigError, BridgeError) as exc:
            log.error("reload of %s failed, nothing changed: %s", where, exc)
            return False
        for name in kept:
            log.warning("reload: %s changed in %s: needs a restart (the running value is kept)",
                        name, where)  # fmt: skip
        self._apply(settings, domains)
        changed = differences(current, settings)
        log.info("reloaded %s: %s", where, ", ".join(changed) if changed else "no changes")
        return True

    def _domains(self, current: Settings, settings: Settings) -> dict[str, DomainServices]:
        services = self._bridge.services
        timeout = settings.limits.backend_timeout
        same_timeout = timeout == current.limits.backend_timeout
        built: dict[str, DomainServices] = {}
        for name, domain in settings.domains.items():
            previous = None
            if same_timeout and name.lower() in services.domain_names:
                previous = services.domain(name)
            built[name.lower()] = self._build(name, domain, timeout, previous)
        return built

    def _apply(self, settings: Settings, domains: dict[str, DomainServices]) -> None:
        bridge = self._bridge
        bridge.settings = settings
        bridge.services.settings = settings
        bridge.retired.extend(bridge.services.replace_domains(domains))
        context = bridge.tls_context
        if context is not None and settings.tls.configured:
            # The same context object: listeners hand it to every new handshake.
            context.minimum_version = MIN_VERSIONS[settings.tls.min_version]
            try:
                context.load_cert_chain(
                    settings.tls.cert_file, settings.tls.key_file, password=lambda: b""
                )
            except (OSError, ssl.SSLError) as exc:  # replaced since it was checked
                log.error("reload: the certificate did not load, the old one stays: %s", exc)
        logs.configure_logging(settings.server.log_level, settings.server.log_format)


def _check_level(level: str) -> None:
    if not isinstance(logging.getLevelName(level.upper()), int):
        raise ConfigError(f"server.log_level: {level!r} is not a log level")


def merge(running: Settings, loaded: Settings) -> tuple[Settings, list[str]]:
    """`loaded`, except the settings that need a restart: those keep their running values.
    Returns the settings to apply and the names of the changes that wait for a restart."""
    kept: list[str] = []
    if running.tls.configured != loaded.tls.configured:
        kept.append("tls (turning TLS on or off)")
        loaded = dataclasses.replace(loaded, tls=running.tls)
    merged: Settings = _merge(running, loaded, "", kept)
    return merged, kept


def _merge(running: Any, loaded: Any, prefix: str, kept: list[str]) -> Any:
    if running == loaded or not _is_settings(running):
        return loaded
    updates: dict[str, Any] = {}
    for item in dataclasses.fields(running):
        name = f"{prefix}{item.name}"
        old, new = getattr(running, item.name), getattr(loaded, item.name)
        if old == new:
            continue
        if name in RESTART_ONLY:
            kept.append(name)
            continue
        updates[item.name] = _merge(old, new, f"{name}.", kept)
    return dataclasses.replace(running, **updates)


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ (domains by name), for the reload's log line."""
    if old == new:
        return []
    if not _is_settings(old):
        if isinstance(old, dict) and isinstance(new, dict):
            keys = sorted(set(old) | set(new))
            return [f"{prefix}{key}" for key in keys if old.get(key) != new.get(key)]
        return [prefix.rstrip(".")]
    found: list[str] = []
    for item in dataclasses.fields(old):
        found += differences(getattr(old, item.name), getattr(new, item.name),
                             f"{prefix}{item.name}.")  # fmt: skip
    return found


def _is_settings(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)
