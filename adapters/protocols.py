"""Every backend interface the bridge uses, as typing.Protocol, with the values they exchange.

Front ends (XIMSS, XMAP) talk to backends only through these. Mailbox names here are the
client-facing form: UTF-8, `/` as the hierarchy separator, `~account@domain/...` for other users'
mailboxes. Each adapter maps to its server's own naming. Every method raises only
`bridge.errors.BridgeError`; the kinds each may raise are listed on the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """One mailbox as mailboxList shows it; status fields are None when the server gave none."""

    name: str
    selectable: bool
    has_children: bool
    mailbox_class: str | None = None
    uidvalidity: int | None = None
    messages: int | None = None
    uidnext: int | None = None
    unseen: int | None = None
    size: int | None = None


class MailStore(Protocol):
    """One authenticated user's mail storage.

    Calls may be made concurrently; the implementation orders them on its connections. Every call
    is bounded by the configured backend timeout (TIMEOUT) and fails with BACKEND_UNAVAILABLE when
    the server cannot be reached after one reconnect attempt.
    """

    @property
    def account(self) -> str:
        """`name@domain` of the authenticated user."""
        ...

    async def list_mailboxes(
        self, pattern: str, *, with_status: bool, with_class: bool
    ) -> list[MailboxInfo]:
        """Mailboxes matching an IMAP-syntax pattern (`*`, `%`), in server order.

        Lists the user's own and the shared mailboxes the user may look up. Raises BAD_REQUEST for
        an unusable pattern."""
        ...

    async def create_mailbox(self, name: str, mailbox_class: str | None) -> None:
        """Create; a class is recorded with the mailbox. ALREADY_EXISTS, PERMISSION, BAD_REQUEST."""
        ...

    async def rename_mailbox(self, name: str, new_name: str, *, children: bool) -> None:
        """Rename; with `children` nested mailboxes follow, without it a mailbox that has nested
        mailboxes is refused with HAS_CHILDREN (IMAP cannot rename a parent alone).
        NOT_FOUND, ALREADY_EXISTS, PERMISSION."""
        ...

    async def delete_mailbox(self, name: str, *, children: bool) -> None:
        """Delete; with `children` nested mailboxes are deleted first, deepest first.
        NOT_FOUND, HAS_CHILDREN, PERMISSION."""
        ...

    async def list_subscriptions(self, pattern: str) -> list[str]:
        """Names in the subscription set matching the pattern (they may not exist)."""
        ...

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        """Add to or remove from the subscription set; idempotent."""
        ...

    def on_alert(self, handler: Callable[[str], None] | None) -> None:
        """Call `handler` with the text of every alert the server sends (IMAP [ALERT]), at any
        time; the session shows it to the user. None stops the calls."""
        ...

    async def close(self) -> None:
        """Log out and release every connection; idempotent, never raises."""
        ...


class SaslExchange(Protocol):
    """A challenge-response login relayed to the backend (the bridge never sees the password)."""

    async def challenge(self) -> bytes:
        """The server's first challenge, raw (not base64)."""
        ...

    async def finish(self, response: bytes) -> MailStore:
        """Send the client's raw response. AUTH_FAILED, BACKEND_UNAVAILABLE."""
        ...

    async def abort(self) -> None:
        """Give up; idempotent, never raises."""
        ...


class MailAuthenticator(Protocol):
    """Logs users in to one domain's mail server."""

    @property
    def sasl_mechanisms(self) -> tuple[str, ...]:
        """SASL mechanisms offered to clients, in preference order."""
        ...

    async def login(self, username: str, password: str, authzid: str = "") -> MailStore:
        """Password login. AUTH_FAILED, BACKEND_UNAVAILABLE, TIMEOUT."""
        ...

    async def probe(self) -> None:
        """Check the server answers (readiness). BACKEND_UNAVAILABLE, TIMEOUT."""
        ...

    async def begin_sasl(self, mechanism: str) -> SaslExchange:
        """Start a relayed challenge-response login. NOT_SUPPORTED, BACKEND_UNAVAILABLE."""
        ...
