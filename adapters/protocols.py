"""Every backend interface the bridge uses, as typing.Protocol, with the values they exchange.

Front ends (XIMSS, XMAP) talk to backends only through these. Mailbox names here are the
client-facing form: UTF-8, `/` as the hierarchy separator, `~account@domain/...` for other users'
mailboxes. Each adapter maps to its server's own naming. Every method raises only
`bridge.errors.BridgeError`; the kinds each may raise are listed on the method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


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


@dataclass(frozen=True, slots=True)
class MimePart:
    """One node of a stored message's MIME structure, as the store describes it without sending
    the bytes (IMAP BODYSTRUCTURE). Names and parameter values are decoded (RFC 2231 and 2047)
    and lower-cased where MIME makes them case-insensitive (type, subtype, encoding, disposition,
    parameter names).

    `section` is the IMAP section number of the part ("1", "2.1"; "" for a message's top-level
    multipart), so `fetch_section(uid, section)` gives its body and `section + ".MIME"` its
    header (for a message/rfc822 part, `section + ".HEADER"` is the enclosed message's header).
    A multipart's `children` are its parts; a message/rfc822 part has one child, the enclosed
    message's top-level part (numbered as RFC 3501 section 6.4.5 says)."""

    section: str
    type: str
    subtype: str
    params: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    size: int = 0  # octets of the body as stored (still transfer-encoded)
    lines: int | None = None
    disposition: str | None = None
    disposition_params: Mapping[str, str] = field(default_factory=dict)
    language: tuple[str, ...] = ()
    location: str | None = None
    children: tuple[MimePart, ...] = ()


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    uidvalidity: int
    uidnext: int
    messages: int
    unseen: int
    # 0 when the server has no CONDSTORE.
    highestmodseq: int


@dataclass(frozen=True, slots=True)
class ViewQuery:
    """Which messages a folder shows and in which order, in backend-neutral terms."""

    # A XIMSS sort field (Date, From, Subject, SIZE, INTERNALDATE, UID, X-Mailer...); None keeps
    # mailbox order (ascending UID).
    sort_field: str | None = None
    descending: bool = False
    # Flags (IMAP names) a message must have, and must not have.
    flags_set: tuple[str, ...] = ()
    flags_unset: tuple[str, ...] = ()
    # Text to look for: in one header field, in the body ("body"), or anywhere (None).
    text: str | None = None
    text_field: str | None = None


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """What a folder shows of one message: metadata plus the raw header fields asked for."""

    uid: int
    flags: frozenset[str]
    size: int
    internaldate: datetime
    # Header field name (as asked) -> raw value, unfolded, still MIME-encoded; absent if missing.
    headers: Mapping[str, str]
    # The MIME structure, when asked for (`with_structure`).
    structure: MimePart | None = None


@dataclass(frozen=True, slots=True)
class Located:
    """Where the server put a message it stored (UIDPLUS APPENDUID and COPYUID, RFC 4315)."""

    uidvalidity: int
    uid: int


@dataclass(frozen=True, slots=True)
class FlagChanges:
    """What changed in a mailbox since a modification sequence (CONDSTORE/QRESYNC)."""

    flags: Mapping[int, frozenset[str]]
    vanished: frozenset[int]
    highestmodseq: int
    # False when the backend cannot say what was expunged (no QRESYNC) or sent everything.
    complete: bool = True


@dataclass(frozen=True, slots=True)
class AclEntry:
    """One access control list element as the mail server keeps it (RFC 4314)."""

    # A full account name (`user@domain`), `anyone`, `authenticated`, or one of these with a `-`
    # prefix for negative rights.
    identifier: str
    # RFC 4314 letters as the server lists them (legacy `c`/`d` may appear beside `k x t e`).
    rights: str


class OpenMailbox(Protocol):
    """A mailbox opened for folders: views, summaries, changes and message operations.

    UIDs are the backend's. Changes made by anyone are announced through `on_change` (at any
    time, at most about once a second per burst). Every method may raise NOT_FOUND (the mailbox
    went away), PERMISSION, BACKEND_UNAVAILABLE, TIMEOUT."""

    name: str

    async def status(self) -> MailboxStatus: ...

    async def view(self, query: ViewQuery) -> list[int]:
        """UIDs of the matching messages in view order (ties in ascending UID order)."""
        ...

    async def matching(self, query: ViewQuery, uids: Sequence[int]) -> set[int]:
        """Which of these messages the query's filter selects (its order aside)."""
        ...

    async def summaries(
        self, uids: Sequence[int], header_fields: Sequence[str], *, with_structure: bool = False
    ) -> dict[int, MessageSummary]:
        """Summaries of the given UIDs that still exist (missing ones are left out), with each
        message's MIME structure when `with_structure`."""
        ...

    async def changes_since(self, modseq: int, *, keep: bool = False) -> FlagChanges:
        """Flags changed and UIDs expunged since `modseq` (everything when modseq is 0).

        The folder's own syncs call it with the modseq the previous call returned; `keep` is
        for any other reader (the shared cache): what it is told is told again to the folder.
        """
        ...

    async def mark(self, uids: Sequence[int], add: Sequence[str], remove: Sequence[str]) -> None:
        """Add and remove flags (IMAP names). Idempotent."""
        ...

    async def copy(self, uids: Sequence[int], target: str) -> dict[int, Located]:
        """Copy to another mailbox (client-facing name); where each copy went, by source UID,
        when the server says (empty otherwise)."""
        ...

    async def move(self, uids: Sequence[int], target: str) -> dict[int, Located]:
        """Move to another mailbox (MOVE where offered, else COPY + delete + expunge of
        exactly these UIDs); where each message went, as `copy` says."""
        ...

    async def expunge(self, uids: Sequence[int] | None = None) -> None:
        """Remove messages marked deleted: all of them, or only these UIDs."""
        ...

    async def structure(self, uid: int) -> tuple[bytes, MimePart] | None:
        """The message's header block and MIME structure (no body bytes); None when gone."""
        ...

    async def fetch_section(
        self, uid: int, section: str, offset: int = 0, length: int | None = None
    ) -> bytes | None:
        """Bytes of a message section (IMAP section syntax: "" for the whole message, "2.1" a
        part's body, "2.1.MIME" its header), optionally a slice, so large messages stream in
        pieces. None when the message is gone."""
        ...

    def on_change(self, callback: Callable[[], None] | None) -> None: ...

    async def close(self) -> None: ...


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

    async def append(
        self, name: str, message: bytes, flags: Sequence[str] = (),
        internaldate: datetime | None = None,
    ) -> Located | None:  # fmt: skip
        """Store a message (IMAP flag names); where it went when the server says (UIDPLUS).
        NOT_FOUND when the mailbox does not exist."""
        ...

    async def open_mailbox(self, name: str) -> OpenMailbox:
        """Open a mailbox for folders; several may be open at once. NOT_FOUND, PERMISSION."""
        ...

    async def rights(self, name: str) -> str:
        """The user's own rights on a mailbox, as RFC 4314 letters (MYRIGHTS).
        NOT_FOUND, NOT_SUPPORTED (no ACL on the server)."""
        ...

    async def acl(self, name: str) -> list[AclEntry]:
        """The mailbox's access control list, in server order. PERMISSION without the
        administer right, NOT_FOUND, NOT_SUPPORTED."""
        ...

    async def set_acl(self, name: str, identifier: str, rights: str) -> None:
        """Replace an identifier's rights (RFC 4314 letters), or add/remove them with a `+`/`-`
        prefix; creates the element. BAD_REQUEST for a right or identifier the server refuses,
        PERMISSION, NOT_FOUND, NOT_SUPPORTED."""
        ...

    async def delete_acl(self, name: str, identifier: str) -> None:
        """Remove an identifier's element; idempotent. PERMISSION, NOT_FOUND, NOT_SUPPORTED."""
        ...

    def watch_mailboxes(self, changed: Callable[[str], None]) -> Callable[[], Awaitable[None]]:
        """Report changes (messages added, removed, flags changed) in any of the user's own
        mailboxes: `changed(name)` with the client-form name, about half a second after, several
        changes possibly in one call. Returns the function that stops the reports. NOT_SUPPORTED
        when the backend cannot (no NOTIFY, or no second connection for this login)."""
        ...

    def on_alert(self, handler: Callable[[str], None] | None) -> None:
        """Call `handler` with the text of every alert the server sends (IMAP [ALERT]), at any
        time; the session shows it to the user. None stops the calls."""
        ...

    async def close(self) -> None:
        """Log out and release every connection; idempotent, never raises."""
        ...


@dataclass(frozen=True, slots=True)
class StorageQuota:
    """The account's message storage, in bytes; `limit` None when it is unlimited."""

    used: int
    limit: int | None


@runtime_checkable
class AccountData(Protocol):
    """Account-wide data a MailStore may also keep: preferences and the storage quota.

    Optional: stores without it (test doubles, servers without METADATA) give the session the
    configured default preferences and no storage figures."""

    async def get_prefs(self, names: Sequence[str]) -> dict[str, str]:
        """Stored preference values by name (names as given, matched case-insensitively);
        names never stored are left out. NOT_SUPPORTED when the server cannot store them."""
        ...

    async def set_prefs(self, values: Mapping[str, str | None]) -> None:
        """Store all of them or none; None removes a value. NOT_SUPPORTED, BACKEND_REFUSED."""
        ...

    async def quota(self) -> StorageQuota | None:
        """The storage quota of the user's INBOX; None when the server reports none."""
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

    async def close(self) -> None:
        """Stop what the authenticator shares between sessions (watchers); never raises."""
        ...

    async def begin_sasl(self, mechanism: str) -> SaslExchange:
        """Start a relayed challenge-response login. NOT_SUPPORTED, BACKEND_UNAVAILABLE."""
        ...


class MailSubmitter(Protocol):
    """Hands composed messages to the domain's mail transfer agent for delivery."""

    async def submit(
        self, sender: str, recipients: Sequence[str], message: bytes, *, dsn: bool = False
    ) -> None:
        """Deliver to every recipient or to none: a refused recipient is an error naming it
        (BACKEND_REFUSED) and nothing is sent. `dsn` asks for success and failure reports."""
        ...


@dataclass(frozen=True, slots=True)
class PasswordRecovery:
    """What recoverPassword mails: where to, and the secret itself."""

    address: str
    password: str


class Provisioner(Protocol):
    """Creates accounts and changes their passwords for one domain (signup, passwordModify,
    recoverPassword). Accounts are `name@domain`, names already lower-cased; every method
    raises BAD_REQUEST for a name outside the domain or with characters the backend cannot
    store, BACKEND_UNAVAILABLE when the account store cannot be written. A change is seen by
    the mail server within about a second (Dovecot re-reads a passwd-file at most once a second).
    """

    async def signup(
        self, account: str, password: str, real_name: str | None, recovery: str | None
    ) -> None:
        """Create the account. ALREADY_EXISTS when it exists; not idempotent."""
        ...

    async def change_password(
        self, account: str, old: str, new: str | None, recovery: str | None
    ) -> None:
        """Verify `old`, then set the new password and/or the recovery address ("" removes
        it); None leaves a value as it is. AUTH_FAILED for a wrong old password or an unknown
        account, NOT_SUPPORTED when the stored password cannot be verified here. Returns once
        the mail server logs in with the new password, so the caller may use it at once."""
        ...

    async def recover_password(self, account: str) -> PasswordRecovery | None:
        """The recovery address and the password to mail there; None when the account is
        unknown, has no recovery address or its password is not stored recoverably. Mailing a
        password is what XIMSS specifies and fits a dev stack's {PLAIN} passwords; production
        backends should store hashes, return None here and mail a reset link instead."""
        ...

    async def real_name(self, account: str) -> str | None:
        """The real name stored with the account (signup's realName); None when unknown or
        empty. Never raises for an unknown account."""
        ...


@runtime_checkable
class CredentialHolder(Protocol):
    """A backend handle that logs in again later with the password of the login (an SMTP
    submitter, a store that reconnects): after passwordModify it is given the new one."""

    def set_password(self, password: str) -> None:
        """Use this password for every later login; connections already open stay as they are.
        A handle logged in with someone else's credentials (a master user) ignores it."""
        ...


# --------------------------------------------------------------------------- calendars (CalDAV)


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    """One calendar collection. `href` is the server path (percent-decoded, ending in "/"), the
    handle every CalendarStore method takes back; `name` its display name, or its last path
    segment when it has none."""

    href: str
    name: str
    # The account whose calendar home holds it (the user's own, or another's when shared).
    owner: str
    # Component types it accepts ("VEVENT", "VTODO"...); empty when the server does not say.
    components: tuple[str, ...] = ()
    # Whether the user may change its items; None when the server does not say.
    writable: bool | None = None


@dataclass(frozen=True, slots=True)
class CalendarResource:
    """One calendar object resource: raw iCalendar text (CRLF line ends), never expanded.

    `href` is its server path (percent-decoded); `etag` is opaque, quotes included, as the server
    sent it ("" when the server gave none), and goes back unchanged to `put`/`delete`."""

    href: str
    etag: str
    text: str


class CalendarStore(Protocol):
    """One authenticated user's calendars on a CalDAV server.

    Calls may be made concurrently (the store bounds how many requests run at once). Each HTTP
    request is bounded by the configured timeout (TIMEOUT); a server that cannot be reached is
    BACKEND_UNAVAILABLE; credentials no longer accepted are AUTH_FAILED. Every method taking a
    CalendarInfo may raise NOT_FOUND (the calendar went away) and PERMISSION. There is no
    CONFLICT kind: a stale etag is BACKEND_REFUSED, with a detail saying the item changed."""

    @property
    def account(self) -> str:
        """The login the store authenticates as (`name@domain`, lower-cased)."""
        ...

    async def calendars(self) -> list[CalendarInfo]:
        """The calendars in the user's calendar home (discovered through the principal's
        calendar-home-set), in href order. Not other users' calendars shared with the user."""
        ...

    async def default_calendar(self) -> CalendarInfo:
        """The user's default calendar: the one whose display name or last path segment is the
        configured default name ("Calendar"), created (for VEVENT and VTODO) when missing.
        Idempotent, also when two sessions create it at once."""
        ...

    async def find(self, name: str) -> CalendarInfo | None:
        """A calendar by display name or last path segment (display names win); None when
        there is none. `~account@domain/Name` names another user's calendar, looked up in their
        calendar home found by the server's path convention: PERMISSION when the server refuses
        access, None when it does not exist. BAD_REQUEST for an empty name."""
        ...

    async def query(
        self, calendar: CalendarInfo, start: datetime | None, end: datetime | None
    ) -> list[CalendarResource]:
        """Resources holding a VEVENT or VTODO that overlaps [start, end) (CalDAV time-range
        semantics, recurrences included; a None bound is open), in href order, unexpanded.
        Naive datetimes are taken as UTC."""
        ...

    async def by_uid(self, calendar: CalendarInfo, uid: str) -> list[CalendarResource]:
        """Resources whose VEVENT or VTODO has exactly this UID (normally none or one)."""
        ...

    async def get(self, calendar: CalendarInfo, href: str) -> CalendarResource | None:
        """One resource by href (a server path, or a name inside the calendar); None if gone."""
        ...

    async def put(
        self, calendar: CalendarInfo, href: str | None, text: str, etag: str | None
    ) -> CalendarResource:
        """Store iCalendar text; return the resource with the server's new etag and the text
        as sent (the server may store it reformatted: `get` shows what it keeps).

        `etag` None creates, failing if the href exists (If-None-Match: *; ALREADY_EXISTS);
        an etag replaces only that version (If-Match; BACKEND_REFUSED when it changed). `href`
        None names a new resource after the text's UID (`<safe-uid>.ics`). BAD_REQUEST for text
        without a UID or refused as invalid, ALREADY_EXISTS when another resource holds the UID,
        PERMISSION for a read-only calendar, QUOTA/LIMIT as the server says."""
        ...

    async def delete(self, calendar: CalendarInfo, href: str, etag: str | None) -> None:
        """Delete a resource; with an etag only that version (BACKEND_REFUSED when it changed).
        NOT_FOUND when it is gone."""
        ...

    async def sync_state(self, calendar: CalendarInfo) -> str:
        """An opaque string that changes whenever the calendar's content changes (the sync-token,
        else the getctag, else a digest of the members' etags). One PROPFIND normally."""
        ...

    async def close(self) -> None:
        """Release the connections; idempotent, never raises."""
        ...


class CalendarConnector(Protocol):
    """Logs users in to one domain's CalDAV server (HTTP Basic with the mail credentials)."""

    async def connect(self, username: str, password: str) -> CalendarStore:
        """Authenticate and discover the user's calendar home. AUTH_FAILED,
        BACKEND_UNAVAILABLE, TIMEOUT."""
        ...

    async def probe(self) -> None:
        """Check the server answers HTTP (readiness). BACKEND_UNAVAILABLE, TIMEOUT."""
        ...


# -- signalling (SIP) ----------------------------------------------------------------------------
# Calls, instant messages and presence for a bound session. Bodies (SDP, PIDF, isComposing) are
# opaque text here; the XIMSS side converts them. adapters/sip implements these.

import enum  # noqa: E402  (kept with the signalling section it serves)


class RegistrationState(enum.Enum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"  # retrying with back-off


@dataclass(frozen=True, slots=True)
class RegistrationStatus:
    state: RegistrationState
    status: int | None = None  # the last final response's code, None before any or on timeout
    reason: str = ""
    expires: int = 0  # seconds the registrar granted


class CallState(enum.Enum):
    CALLING = "calling"  # INVITE sent (outgoing) or received, no answer yet
    EARLY = "early"  # a provisional response was sent or received
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Provisional:
    status: int
    reason: str
    sdp: str | None


@dataclass(frozen=True, slots=True)
class Connected:
    sdp: str | None  # the remote session description (answer, or offer in the ACK)


@dataclass(frozen=True, slots=True)
class Failed:
    """The call never connected: a final non-2xx, a timeout (408) or a CANCEL (487)."""

    status: int
    reason: str
    contacts: tuple[str, ...] = ()  # 3xx redirect targets


@dataclass(frozen=True, slots=True)
class Disconnected:
    by_remote: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RemoteUpdate:
    """The peer re-INVITEd with a new offer; we answered with our current description."""

    sdp: str | None


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class InfoReceived:
    content_type: str | None
    body: str


@dataclass(frozen=True, slots=True)
class TransferRequested:
    """The peer sent REFER: the owner places the new call and reports with notify_transfer."""

    target: str  # the Refer-To URI, with any ?Replaces=... kept
    referred_by: str | None
    replaces: str | None  # the Replaces header value an attended transfer carries


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """A NOTIFY about a REFER we sent: the sipfrag status line of the new call."""

    status: int
    reason: str
    final: bool


CallEvent = (
    Provisional | Connected | Failed | Disconnected | RemoteUpdate | Dtmf | InfoReceived
    | TransferRequested | TransferProgress
)  # fmt: skip
CallListener = Callable[[CallEvent], None]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    sender: str  # From as name-addr text
    recipient: str
    content_type: str
    body: str
    call_id: str
    peer: str = ""  # the sender as user@host
    peer_name: str | None = None  # the sender's display name


@dataclass(frozen=True, slots=True)
class RequestResult:
    """The final status of a request that is not a call (MESSAGE, PUBLISH...)."""

    status: int
    reason: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Notification:
    """A NOTIFY on one of our subscriptions."""

    event: str
    state: str  # active, pending, terminated
    content_type: str | None
    body: str
    reason: str | None = None


class SignalingCall(Protocol):
    """One call, either direction. Events go to `listener` (buffered until one is set)."""

    listener: CallListener | None
    local_sdp: str | None
    remote_sdp: str | None

    @property
    def call_id(self) -> str: ...

    async def hangup(self) -> None:
        """CANCEL or reject while ringing, BYE once connected; idempotent."""
        ...

    async def reinvite(self, sdp: str) -> str | None:
        """New offer; returns the answer. BAD_REQUEST when not connected; the SIP status of a
        refusal (491, 488) is on the raised error."""
        ...

    async def send_dtmf(self, digit: str, duration_ms: int = 160) -> None: ...

    async def send_info(self, body: str, content_type: str) -> None: ...

    async def transfer(self, target: str, *, replaces: str | None = None) -> None:
        """REFER (blind, or attended with a Replaces value); progress as TransferProgress."""
        ...

    async def notify_transfer(self, status: int, reason: str, *, final: bool = True) -> None:
        """Report the outcome of a transfer the peer asked for (TransferRequested)."""
        ...


class IncomingSignalingCall(SignalingCall, Protocol):
    """An INVITE waiting for the owner: these answer at once (no network wait)."""

    replaces: str | None
    peer: str  # the caller as user@host
    peer_name: str | None  # the caller's display name

    def provision(self, sdp: str | None = None) -> None: ...

    def accept(self, sdp: str) -> None: ...

    def reject(self, status: int = 486, reason: str | None = None) -> None: ...

    def redirect(self, contacts: list[str], status: int = 302) -> None: ...


class SignalingSubscription(Protocol):
    """A subscription we hold (RFC 6665 SUBSCRIBE), refreshed until it is ended."""

    async def unsubscribe(self) -> None:
        """SUBSCRIBE with Expires: 0; the final NOTIFY (terminated) still reaches the callback.
        Errors are not raised (the subscription is forgotten anyway)."""
        ...


class SignalingAgent(Protocol):
    """The SIP user agent of one bound session. Every method raises only BridgeError."""

    async def register(
        self, expires: int = 600, on_state: Callable[[RegistrationStatus], None] | None = None
    ) -> RegistrationStatus:
        """Register and keep refreshing (and retrying after failures) until `unregister`;
        returns the first outcome."""
        ...

    async def unregister(self) -> None: ...

    def invite(
        self, target: str, sdp: str, *, listener: CallListener | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> SignalingCall:  # fmt: skip
        """Place a call; LIMIT when too many dialogs are open."""
        ...

    async def message(self, target: str, text: str, content_type: str = ...) -> RequestResult:
        """MESSAGE; the final status whatever it is (404 unknown user, 408 timeout)."""
        ...

    async def publish(self, body: str, *, event: str = ..., content_type: str = ...,
                      expires: int = ...) -> RequestResult: ...  # fmt: skip

    async def unpublish(self, event: str = ...) -> None: ...

    async def subscribe(
        self, target: str, on_notify: Callable[[Notification], None], *, event: str = ...,
        expires: int = ...,
    ) -> SignalingSubscription:  # fmt: skip
        """SUBSCRIBE (event "presence" by default) and keep refreshing; every NOTIFY goes to
        `on_notify`, possibly before this returns, and a "terminated" one when it ends (a
        failed refresh is reported so too). The final status's kind when refused (NOT_FOUND,
        PERMISSION, TIMEOUT...)."""
        ...

    async def close(self) -> None:
        """Hang up, unsubscribe, unpublish, unregister, release the transport."""
        ...


class SignalingConnector(Protocol):
    """A domain's SIP service: starts the user agent of a session that binds (signalBind)."""

    def address(self, account: str) -> str:
        """The user's SIP address of record (`sip:name@sip-domain`) for a mail account."""
        ...

    async def start(
        self,
        account: str,
        password: str,
        *,
        display_name: str | None,
        on_call: Callable[[IncomingSignalingCall], None],
        on_message: Callable[[IncomingMessage], int | None],
    ) -> SignalingAgent:
        """A user agent with its transport open, not yet registered. BACKEND_UNAVAILABLE."""
        ...
