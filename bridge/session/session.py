"""One logged-in user: identity, the backend handles the session owns, and its lifetime."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from adapters.protocols import MailStore, MailSubmitter
from bridge.session.calendars import Calendars
from bridge.session.folders import Folders
from bridge.session.signaling import SignalBinding
from bridge.session.uploads import UploadSet

_URL_ALPHABET = string.ascii_letters + string.digits


def new_url_id() -> str:
    """`123456-` then 24 letters and digits: 6 digits plus about 143 random bits, one dash, as
    clients that split the id at its dash expect."""
    prefix = secrets.randbelow(900000) + 100000
    tail = "".join(secrets.choice(_URL_ALPHABET) for _ in range(24))
    return f"{prefix}-{tail}"


class Stoppable(Protocol):
    async def stop(self) -> None: ...


class Credentials:
    """The password of a password login, for backends the session logs in to later (SIP at
    signalBind). passwordModify gives it the new one (CredentialHolder)."""

    __slots__ = ("password",)

    def __init__(self, password: str) -> None:
        self.password = password

    def set_password(self, password: str) -> None:
        self.password = password


@dataclass(slots=True, eq=False)
class Session:
    account: str  # name@domain
    domain: str
    real_name: str | None
    mail: MailStore
    uploads: UploadSet
    # messageSubmit and friends; None when the domain has no SMTP server or the login gave the
    # bridge no password to authenticate with (SASL relayed to IMAP).
    submitter: MailSubmitter | None = None
    transport: str = "tcp"
    url_id: str = field(default_factory=new_url_id)
    created: float = field(default_factory=time.time)
    closed: bool = False
    folders: Folders = field(default_factory=Folders)
    calendars: Calendars = field(default_factory=Calendars)
    # None for logins that gave the bridge no password (relayed CRAM-MD5, operator logins).
    credentials: Credentials | None = None
    # signalBind: the SIP user agent and calls; None while unbound.
    signal: SignalBinding | None = None
    # Set by the transport that carries the session: ends it from outside (KILL, killOld,
    # shutdown) the way the transport would, closing its connection or HTTP binding too.
    ender: Callable[[], Awaitable[None]] | None = None
    # Account preferences by XIMSS name (TimeZone, DeleteMode...), stored values over config
    # defaults; filled at login, changed by prefsStore. Empty means the config defaults.
    prefs: dict[str, str] = field(default_factory=dict)
    # The previous successful login of the account (epoch seconds, client address), if known.
    prev_login: tuple[float, str] | None = None  # (epoch seconds, client address)
    last_failed_login: tuple[float, str] | None = None
    # setClientName, setSessionOption.
    client_name: str | None = None
    idle_timeout: float | None = None  # overrides the transport's idle limit (TCP)
    # reportMailboxChanges: what sends the reports while the option is on.
    mailbox_reports: Stoppable | None = None

    async def close(self) -> None:
        """Release what the session holds; the transport calls this when it ends."""
        if self.closed:
            return
        self.closed = True
        self.uploads.clear()
        if self.mailbox_reports is not None:
            await self.mailbox_reports.stop()
        await self.folders.close_all()
        await self.calendars.close_all()
        if self.signal is not None:
            binding, self.signal = self.signal, None
            await binding.close()
        await self.mail.close()

    async def end(self) -> None:
        """End the session from outside, through its transport when it has one."""
        if self.ender is not None:
            await self.ender()
        await self.close()
