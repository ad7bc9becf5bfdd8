"""Account preferences and status: prefsRead, prefsStore, readStatus, setSessionOption,
setClientName.

XIMSS 5.1 does not describe the preference operations; we follow CommuniGate's shape:

    C:<prefsRead id="A1"><name>TimeZone</name><name>DeleteMode</name></prefsRead>
    S:<prefs id="A1"><TimeZone>Europe/Berlin</TimeZone><DeleteMode>Mark</DeleteMode></prefs>
    C:<prefsStore id="A2"><newSettings><TimeZone>Asia/Tokyo</TimeZone></newSettings></prefsStore>

prefsRead without `name` children reads every preference the bridge knows. Names it does not know
are left out of `prefs`; prefsStore refuses them (errorNum 501), and refuses a bad value, storing
nothing. The value `default` removes the stored value, so the config default applies again.
Values are stored in the user's IMAP server as private server annotations (see
adapters/imap/account.py); the session keeps a copy, read at login.

setSessionOption takes `name` and `value` attributes: `idleTimeout` (seconds; cut to the
configured maximum; TCP connections) and `reportMailboxChanges` (yes/no; see mailbox_reports.py).
setClientName takes a `name` attribute, remembered and logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from adapters.protocols import AccountData
from bridge import xml
from bridge.calendar.zones import to_iana
from bridge.config import Settings
from bridge.errors import BridgeError, ErrorKind
from bridge.session.session import Session
from bridge.state import Store
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.mailbox_reports import MailboxReports
from bridge.ximss.ops.service import _zone_names, format_time, user_zone

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.ximss.prefs")

RESET = "default"
MAX_VALUE = 255
DELETE_MODES = ("Immediately", "Move To Trash", "Mark")
MDN_MODES = ("Never", "Manually", "Automatically")


def _bad(name: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, f"invalid {name} value")


def _one_of(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise _bad(name)

    return check


def _zone(value: str) -> str:
    # IANA names, and the CommuniGate names the spec uses ("NorthAmerica/Pacific"), kept as given.
    if value not in _zone_names() and to_iana(value) is None:
        raise _bad("TimeZone")
    return value


def _text(name: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.strip()
        if not value or len(value) > MAX_VALUE or not value.isprintable():
            raise _bad(name)
        return value

    return check


# Name -> (default from config, validator returning the value to store).
PREFERENCES: dict[str, tuple[Callable[[Settings], str], Callable[[str], str]]] = {
    "TimeZone": (lambda s: s.server.time_zone, _zone),
    "Language": (lambda s: s.server.language, _text("Language")),
    "DeleteMode": (lambda s: s.preferences.delete_mode, _one_of("DeleteMode", DELETE_MODES)),
    "TrashBox": (lambda s: s.preferences.trash_box, _text("TrashBox")),
    "SendMDNMode": (lambda s: s.preferences.send_mdn_mode, _one_of("SendMDNMode", MDN_MODES)),
}
_CANONICAL = {name.lower(): name for name in PREFERENCES}


def defaults(settings: Settings) -> dict[str, str]:
    return {name: default(settings) for name, (default, _) in PREFERENCES.items()}


async def load(settings: Settings, session: Session) -> None:
    """Fill the session's preferences: stored values over config defaults."""
    values = defaults(settings)
    if isinstance(session.mail, AccountData):
        try:
            stored = await session.mail.get_prefs(list(PREFERENCES))
        except BridgeError as exc:
            log.warning(
                "session=%s preferences unreadable (%s), using defaults",
                session.url_id[:6],
                exc.kind.value,
            )
            stored = {}
        for name, value in stored.items():
            canonical = _CANONICAL.get(name.lower())
            if canonical is None:
                continue
            try:
                values[canonical] = PREFERENCES[canonical][1](value)
            except BridgeError:
                log.warning(
                    "session=%s stored %s is invalid, using the default",
                    session.url_id[:6],
                    canonical,
                )
    session.prefs = values


def _login_key(account: str) -> str:
    return f"ximss:login:{account}"


def _failed_key(account: str) -> str:
    return f"ximss:login-failed:{account}"


def _address(peer: str) -> str:
    """The client address: TCP peers are "host:port", HTTP ones a bare address (v4 or v6)."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(peer))
    host, colon, _port = peer.rpartition(":")
    return (host if colon else peer).strip("[]")


def _moment(raw: bytes | None) -> tuple[float, str] | None:
    if raw is None:
        return None
    record = json.loads(raw)
    return float(record["time"]), str(record["ip"])


async def record_login(conv: Conversation, session: Session) -> None:
    """Remember this login as the account's last one; the one before becomes PrevLogin, and
    the last failed attempt (if any) LastFailedLogin."""
    state = conv.services.state
    key = _login_key(session.account)
    try:
        session.prev_login = _moment(await state.get(key))
        session.last_failed_login = _moment(await state.get(_failed_key(session.account)))
        now = {"time": session.created, "ip": _address(conv.peer)}
        await state.set(key, json.dumps(now).encode())
    except Exception:
        # Bookkeeping: a broken state store must not refuse the login.
        log.exception("session=%s could not record the login", session.url_id[:6])


async def record_failed_login(state: Store, account: str, peer: str) -> None:
    """Remember a refused password for LastFailedLogin, but only for an account that has logged
    in through the bridge before: anyone can try any name, and a record per guessed name would
    let them fill the state store. So the records are bounded by the real accounts."""
    try:
        if await state.get(_login_key(account)) is None:
            return
        now = {"time": time.time(), "ip": _address(peer)}
        await state.set(_failed_key(account), json.dumps(now).encode())
    except Exception:
        log.exception("could not record a failed login")


async def on_login(conv: Conversation, session: Session) -> None:
    await load(conv.services.settings, session)
    await record_login(conv, session)


# -- prefsRead / prefsStore -----------------------------------------------------------------


def _current(conv: Conversation) -> Mapping[str, str]:
    session = conv.require_session()
    return session.prefs or defaults(conv.services.settings)


async def prefs_read(conv: Conversation, request: Request) -> Outcome:
    current = _current(conv)
    asked = [child.text or "" for child in request.element if child.tag == "name"]
    # Without names: every preference; unknown names are left out.
    names = [_CANONICAL[n.lower()] for n in asked if n.lower() in _CANONICAL]
    prefs = codec.data("prefs", request.id)
    for name in names if asked else list(PREFERENCES):
        xml.sub(prefs, name, text=current.get(name, ""))
    conv.send(prefs)
    return Outcome.DONE


async def prefs_store(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    settings_element = request.element.find("newSettings")
    if settings_element is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "newSettings is missing")
    changes: dict[str, str | None] = {}
    for child in settings_element:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        name = _CANONICAL.get(child.tag.lower())
        if name is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, "unknown preference")
        value = (child.text or "").strip()
        changes[name] = None if value.lower() == RESET else PREFERENCES[name][1](value)
    if not changes:
        return Outcome.DONE
    if not isinstance(session.mail, AccountData):
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "preferences cannot be stored")
    await session.mail.set_prefs(changes)
    current = dict(_current(conv))
    settings = conv.services.settings
    for changed, new in changes.items():
        current[changed] = new if new is not None else PREFERENCES[changed][0](settings)
    session.prefs = current
    return Outcome.DONE


# -- readStatus -----------------------------------------------------------------------------


async def read_status(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    status = codec.data("currentStatus", request.id)
    if isinstance(session.mail, AccountData):
        quota = await session.mail.quota()
        if quota is not None:
            store = {"used": str(quota.used)}
            if quota.limit is not None:
                store["limit"] = str(quota.limit)
            xml.sub(status, "messageStore", store)
    for tag, seen in (
        ("PrevLogin", session.prev_login),
        ("LastFailedLogin", session.last_failed_login),
    ):
        if seen is not None:
            moment = dt.datetime.fromtimestamp(seen[0], dt.UTC)
            xml.sub(
                status,
                tag,
                {
                    "gmtTime": format_time(moment),
                    "localTime": format_time(moment.astimezone(user_zone(conv))),
                    "ip": seen[1],
                },
            )
    conv.send(status)
    return Outcome.DONE


# -- session options ------------------------------------------------------------------------

MIN_IDLE_TIMEOUT = 1.0


async def _idle_timeout(conv: Conversation, session: Session, value: str) -> None:
    try:
        seconds = float(value)
    except ValueError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "idleTimeout must be a number") from exc
    if not seconds >= MIN_IDLE_TIMEOUT:  # also refuses NaN
        raise BridgeError(ErrorKind.BAD_REQUEST, "idleTimeout is too small")
    session.idle_timeout = min(seconds, conv.services.settings.limits.max_idle_timeout)


async def _report_mailbox_changes(conv: Conversation, session: Session, value: str) -> None:
    if value.lower() not in ("yes", "no", "1", "0", "true", "false"):
        raise BridgeError(ErrorKind.BAD_REQUEST, "reportMailboxChanges must be yes or no")
    wanted = value.lower() in ("yes", "1", "true")
    if wanted and session.mailbox_reports is None:
        reports = MailboxReports(conv, session)
        reports.start()
        session.mailbox_reports = reports
    elif not wanted and session.mailbox_reports is not None:
        running, session.mailbox_reports = session.mailbox_reports, None
        await running.stop()


SESSION_OPTIONS: dict[str, Callable[[Conversation, Session, str], Awaitable[None]]] = {
    "idleTimeout": _idle_timeout,
    "reportMailboxChanges": _report_mailbox_changes,
}


async def set_session_option(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    name = request.require("name")
    setter = SESSION_OPTIONS.get(name)
    if setter is None:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "unknown session option")
    await setter(conv, session, request.require("value"))
    return Outcome.DONE


MAX_CLIENT_NAME = 200


async def set_client_name(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    name = request.require("name").strip()
    if len(name) > MAX_CLIENT_NAME or not name.isprintable():
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid client name")
    session.client_name = name
    log.info(
        "session=%s peer=%s id=%s client name %r", session.url_id[:6], conv.peer, request.id, name
    )
    return Outcome.DONE
