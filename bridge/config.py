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
    # "text" for people, "json" for log collectors (one object per line, with session ids).
    log_format: Literal["text", "json"] = "text"
    # SIGTERM: seconds sessions are given after the shutdown alert before they get `bye`.
    shutdown_grace: float = 10.0


@dataclass(frozen=True, slots=True)
class TlsSettings:
    # PEM files; TLS (STARTTLS, the implicit-TLS port, HTTPS) is offered only when both are set.
    cert_file: str = ""
    key_file: str = ""
    min_version: Literal["1.2", "1.3"] = "1.2"

    @property
    def configured(self) -> bool:
        return bool(self.cert_file and self.key_file)


@dataclass(frozen=True, slots=True)
class TcpSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 11024
    # Implicit-TLS XIMSS port (0 = none); needs [tls].
    tls_port: int = 0
    # Offer `starttls` on the plain port when [tls] is configured.
    starttls: bool = True
    # Refuse clear-text logins (password or PLAIN) on connections that are not encrypted.
    require_tls_for_clear_text: bool = False


@dataclass(frozen=True, slots=True)
class HttpSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8100
    # Serve HTTPS on this listener with the [tls] certificate.
    tls: bool = False
    # Refuse password logins (GET/POST parameters, Basic, XML login) over plain HTTP and ws.
    require_tls_for_clear_text: bool = False
    # Origins allowed by CORS ("*" for any); empty sends no CORS headers.
    cors_origins: tuple[str, ...] = ()
    # Largest request body outside uploads, in bytes.
    max_body_bytes: int = 1 << 20
    # Largest single upload, and all uploads of one session together, in bytes.
    max_upload_bytes: int = 32 << 20
    max_uploads_total_bytes: int = 128 << 20
    # Longest long-poll wait a client may ask for, in seconds.
    max_poll_wait: float = 120.0
    # Seconds an HTTP session may go without any request or poll before it ends.
    session_idle_timeout: float = 1800.0
    # Messages kept for a session whose client does not poll; past this the session ends.
    max_pending_messages: int = 10000
    # Seconds a client has to send a request's head and body.
    read_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class XmapSettings:
    # The XMAP TCP listener (zero-byte framed XML, `{N}` blobs; README "XMAP").
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 11026
    # XMAP over HTTP POST at /XMAP on the HTTP listener, with HTTP Basic logins.
    http: bool = True
    # Refuse LOGIN on the TCP listener (it has no TLS); XMAP over HTTPS stays open.
    require_tls_for_clear_text: bool = False
    # Seconds a Basic-authenticated HTTP login stays open for the next request.
    http_session_idle_timeout: float = 300.0
    # Mailboxes each XMAP session keeps selected between commands.
    open_mailboxes: int = 4


@dataclass(frozen=True, slots=True)
class PreferenceDefaults:
    """Account preferences until per-user preferences are stored (messageRemove reads these)."""

    delete_mode: Literal["Immediately", "Move To Trash", "Mark"] = "Move To Trash"
    trash_box: str = "Trash"
    # Whether read receipts (MDN, RFC 8098) are sent when a message asking for one is read.
    send_mdn_mode: Literal["Never", "Manually", "Automatically"] = "Manually"


@dataclass(frozen=True, slots=True)
class StateSettings:
    # "sqlite": one process; "redis": several replicas sharing one Redis.
    backend: Literal["sqlite", "redis"] = "sqlite"
    # The SQLite file (":memory:" keeps nothing across restarts).
    path: str = "ximss-bridge-state.sqlite"
    # The Redis server of backend "redis" (redis:// or rediss://, with a password if it has one).
    url: str = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    # This replica's name (logs, the session directory); empty: the host name and process id.
    replica_id: str = ""
    # host:port where the other replicas reach this one's HTTP listener to forward requests for
    # sessions it owns; empty: not clustered (requests for unknown sessions answer 550).
    advertise: str = ""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    # Messages whose rows are kept in memory, all accounts together (about 20 bytes each plus
    # the text shown); the pages of 64 UIDs least recently read go first.
    max_summaries: int = 1_000_000


@dataclass(frozen=True, slots=True)
class SessionSettings:
    # Live sessions of one account at once, all transports together.
    max_per_user: int = 20


@dataclass(frozen=True, slots=True)
class LimitSettings:
    # Largest XML message accepted; a larger frame closes the connection without buffering it.
    max_frame_bytes: int = 1 << 20
    max_xml_depth: int = 64
    # Requests read ahead of the one being processed; reading pauses past this.
    pipeline_depth: int = 64
    # Bytes of replies waiting for a client; past this the client is disconnected.
    output_buffer_bytes: int = 64 << 20
    # Seconds a client may leave replies unread before the next request is processed; then the
    # client is disconnected (replies are never buffered without end).
    slow_client_timeout: float = 60.0
    # Seconds without a request before a session's connection is closed (spec: 10 minutes).
    idle_timeout: float = 600.0
    # Longest idle timeout a client may ask for with setSessionOption idleTimeout (longer asks
    # are cut to this).
    max_idle_timeout: float = 3600.0
    # Seconds a connection may stay without logging in.
    login_timeout: float = 120.0
    max_connections: int = 2000
    # Seconds for one backend operation before it is reported as timed out.
    backend_timeout: float = 60.0
    # spellerCheck: most UTF-8 text checked at once, most misspellings reported.
    max_spell_text_bytes: int = 64 << 10
    max_spell_reports: int = 500
    # Largest message composed by messageAppend/messageSubmit (the IMAP server has no APPENDLIMIT).
    max_message_bytes: int = 50 << 20
    # Default totalSizeLimit of folderRead: text shown inline at most (binary parts are links).
    read_text_bytes: int = 4 << 20
    # Failed logins within login_failure_window seconds after which further logins of that
    # account, or from that client address (IPv6: its /64), are refused before the mail server
    # sees them, until the oldest failure leaves the window (0: no limit of that kind).
    login_failures_per_account: int = 10
    login_failures_per_ip: int = 50
    login_failure_window: float = 300.0
    # Accounts, and as many addresses, whose failures are remembered (the least recently failed
    # are forgotten first; about 1 KB each).
    login_throttle_keys: int = 10_000


@dataclass(frozen=True, slots=True)
class RetrieveXmlSettings:
    # retrieveXML makes the bridge fetch URLs for clients: off unless the operator turns it on.
    enabled: bool = False
    # URL prefixes documents may come from ("https://feeds.example.com/news/"): scheme, host and
    # port must match exactly, the path must start with the prefix's path.
    allowlist: tuple[str, ...] = ()
    # Largest document, in bytes; the download stops past this.
    max_bytes: int = 1 << 20
    # Seconds for the whole retrieval (resolving, connecting, every redirect, the body).
    timeout: float = 10.0
    # Redirects followed; each target must pass the same checks as the first URL.
    max_redirects: int = 0
    # host:port pairs ("intranet.example.com:8080", "[::1]:8080") that may resolve to private,
    # loopback or other non-global addresses; all others are refused.
    allow_private: tuple[str, ...] = ()


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
class SmtpSettings:
    # The submission server; empty host: this domain offers no messageSubmit.
    host: str = ""
    port: int = 587
    # Use STARTTLS when the server offers it (refusing to send in clear text is its choice).
    starttls: bool = True
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class CalDavSettings:
    # Base URL of the CalDAV server (e.g. "http://127.0.0.1:5232/"); empty: this domain offers
    # no calendars. Users log in with their mail credentials (HTTP Basic).
    url: str = ""
    timeout: float = 30.0
    # Name of the calendar `calendarOpen mailbox="Calendar"` means (created when missing).
    default_calendar: str = "Calendar"
    # Seconds between checks of an open calendar for changes made elsewhere (one check per
    # calendar, shared by every session that has it open) -> calendarReport mode="notify".
    poll_seconds: float = 30.0
    # Occurrences one findEvents may expand (a runaway rule stops there).
    max_occurrences: int = 10_000


@dataclass(frozen=True, slots=True)
class SipSettings:
    # The SIP registrar and proxy (Kamailio in the dev stack); empty host: this domain offers no
    # signalBind, calls, instant messages or presence. Users authenticate with the mail
    # credentials (digest username: the address's local part, realm the SIP domain).
    host: str = ""
    port: int = 5060
    transport: Literal["udp", "tcp"] = "udp"
    # The SIP domain of the users' addresses (sip:user@<domain>); empty: the mail domain.
    domain: str = ""
    # Seconds a registration is asked to last (refreshed at half of what the registrar grants).
    register_expires: int = 600
    # Seconds between checks that the registrar still knows a bound session (an OPTIONS to the
    # user's own address); a registrar that restarted is registered with again at once.
    registration_check_seconds: float = 30.0
    # The address the bridge's SIP user agents bind and announce (Via, Contact): one the SIP
    # server reaches the bridge at (in a container, the pod's or container's own address).
    local_host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ProvisioningSettings:
    # Where accounts are created and passwords changed: "" none (signup, recoverPassword and
    # passwordModify answer "not supported"), "passwd-file" Dovecot passwd-files, one per user.
    kind: Literal["", "passwd-file"] = ""
    # passwd-file: the folder holding this domain's per-user files (Dovecot's users/%Ld).
    directory: str = ""
    # Whether anyone may create an account here with signup (listFeatures then shows <signup/>).
    signup: bool = False
    # recoverPassword mails the password through this port of the domain's smtp.host, without
    # AUTH (a port-25 style server taking mail for local recipients); 0: no recovery by mail.
    recovery_smtp_port: int = 0
    # Seconds signup and recoverPassword wait before answering, whatever the outcome (the
    # spec's delay: slows down guessing and hides which accounts exist).
    delay: float = 1.0


@dataclass(frozen=True, slots=True)
class DomainSettings:
    imap: ImapSettings = field(default_factory=ImapSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    caldav: CalDavSettings = field(default_factory=CalDavSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    provisioning: ProvisioningSettings = field(default_factory=ProvisioningSettings)
    # Account name -> real name, for the session's realName (IMAP has no directory of its own).
    real_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    tcp: TcpSettings = field(default_factory=TcpSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    xmap: XmapSettings = field(default_factory=XmapSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    preferences: PreferenceDefaults = field(default_factory=PreferenceDefaults)
    cache: CacheSettings = field(default_factory=CacheSettings)
    state: StateSettings = field(default_factory=StateSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    retrieve_xml: RetrieveXmlSettings = field(default_factory=RetrieveXmlSettings)
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
    _check_tls(settings)
    return settings


def _check_tls(settings: Settings) -> None:
    wants_tls = settings.tcp.tls_port or settings.http.tls
    if wants_tls and not settings.tls.configured:
        raise ConfigError("tcp.tls_port and http.tls need tls.cert_file and tls.key_file")
    for name in ("cert_file", "key_file"):
        path = getattr(settings.tls, name)
        if path and not Path(path).is_file():
            raise ConfigError(f"tls.{name}: {path} is not a readable file")


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
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list")
        (item_type, _) = typing.get_args(hint)
        return tuple(_convert(item_type, item, f"{where}[]") for item in value)
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
        + (f", TLS port {settings.tcp.tls_port}" if settings.tcp.tls_port else "")
        + (", STARTTLS" if settings.tcp.starttls and settings.tls.configured else "")
        + ("" if settings.tcp.enabled else " (disabled)"),
        f"HTTP: {settings.http.host}:{settings.http.port}"
        + (" (HTTPS)" if settings.http.tls else "")
        + ("" if settings.http.enabled else " (disabled)"),
        "TLS: " + ("configured" if settings.tls.configured else "not configured"),
    ]
    for name, domain in settings.domains.items():
        imap = domain.imap
        lines.append(f"domain {name}: IMAP {imap.host}:{imap.port} ({imap.security})")
    return "\n".join(lines)
