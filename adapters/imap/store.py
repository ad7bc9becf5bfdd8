"""MailStore over IMAP: mailbox management for one authenticated user."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence

from adapters.imap import account as account_data
from adapters.imap import acl as imap_acl
from adapters.imap import notify
from adapters.imap.client import ImapClient, Result
from adapters.imap.errors import ImapCommandFailed
from adapters.imap.mailbox import ImapOpenMailbox
from adapters.imap.namespaces import Namespaces
from adapters.imap.watch import WatcherRegistry
from adapters.imap.wire import Arg, Atom, Literal, Raw, Untagged, Value
from adapters.protocols import AclEntry, Located, MailboxInfo, StorageQuota
from bridge.config import ImapSettings
from bridge.errors import BridgeError, ErrorKind

log = logging.getLogger("adapters.imap")

STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
NO_SELECT_FLAGS = frozenset({"\\NOSELECT", "\\NONEXISTENT"})
# Opens a fresh, authenticated connection for the same user (password logins only).
Reconnector = Callable[[], Awaitable[ImapClient]]


def text(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


class ImapMailStore:
    """Owns the user's IMAP connection(s); reconnects once when a password login allows it."""

    def __init__(
        self,
        account: str,
        client: ImapClient,
        namespaces: Namespaces,
        settings: ImapSettings,
        reconnect: Reconnector | None,
        watchers: WatcherRegistry | None = None,
    ) -> None:
        self._account = account
        self._client = client
        self._ns = namespaces
        self._settings = settings
        self._reconnect = reconnect
        self._reconnect_lock = asyncio.Lock()
        self._alert: Callable[[str], None] | None = None
        self._watchers = watchers
        self._open: list[ImapOpenMailbox] = []
        self._password_setter: Callable[[str], None] | None = None
        client.on_unsolicited = self._unsolicited

    @property
    def account(self) -> str:
        return self._account

    def on_new_password(self, setter: Callable[[str], None]) -> None:
        self._password_setter = setter

    def set_password(self, password: str) -> None:
        """Later logins (reconnects, folders' own connections) use this password; a store
        logged in for someone else (master user) has no setter and keeps the operator's."""
        if self._password_setter is not None:
            self._password_setter(password)

    @property
    def namespaces(self) -> Namespaces:
        return self._ns

    async def client(self) -> ImapClient:
        if not self._client.closed:
            return self._client
        async with self._reconnect_lock:
            if self._client.closed:
                if self._reconnect is None:
                    raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "IMAP connection lost")
                log.info("reconnecting IMAP for %s", self._account)
                self._client = await self._reconnect()
                self._client.on_unsolicited = self._unsolicited
        return self._client

    async def open_mailbox(self, name: str) -> ImapOpenMailbox:
        server = self.server_name(name)
        own = self._reconnect is not None
        # Password logins open a connection per mailbox; relayed logins share their only one.
        client = await self._reconnect() if self._reconnect is not None else await self.client()
        watch = None
        if self._watchers is not None and self._reconnect is not None:
            watchers, connect = self._watchers, self._reconnect

            def watch_fn(server_name: str, callback: Callable[[], None]) -> Callable[[], None]:
                return watchers.subscribe(self._account, server_name, connect, callback)

            watch = watch_fn
        try:
            mailbox = await ImapOpenMailbox.open(
                name, server, client, not own, self.server_name, watch, self._reconnect
            )
        except BaseException:
            if own:
                await client.close()
            raise
        # Closed ones are dropped here: a long session opens and closes mailboxes without end.
        self._open = [known for known in self._open if not known.closed]
        self._open.append(mailbox)
        return mailbox

    def on_alert(self, handler: Callable[[str], None] | None) -> None:
        self._alert = handler

    def watch_mailboxes(self, changed: Callable[[str], None]) -> Callable[[], Awaitable[None]]:
        # A connection of its own: only password logins can open one.
        if self._reconnect is None:
            raise notify.unsupported()

        def reported(server_name: str) -> None:
            name = self._ns.to_client(server_name)
            if name is not None:
                changed(name)

        return notify.AccountNotifier(self._reconnect, reported).stop

    def _unsolicited(self, response: Untagged) -> None:
        # RFC 3501 7.1: an [ALERT] text must be shown to the user.
        if response.code is not None and response.code.name == "ALERT" and self._alert:
            self._alert(response.text)

    def server_name(self, name: str) -> str:
        return self._ns.to_server(name, own_account=self._account)

    # -- listing ------------------------------------------------------------------------

    async def list_mailboxes(
        self, pattern: str, *, with_status: bool, with_class: bool
    ) -> list[MailboxInfo]:
        server_pattern = self.server_name(pattern)
        # Dovecot learns which users share mailboxes with this one once per connection (at its
        # first listing of the shared namespace): a mailbox shared later never lists there. A
        # listing that reaches into other users' mailboxes runs on a new connection instead
        # (password logins; about one login's cost).
        if self._reconnect is not None and self._reaches_others(server_pattern):
            fresh = await self._reconnect()
            try:
                return await self._list_on(fresh, server_pattern, with_status, with_class)
            finally:
                await fresh.close()
        return await self._list_on(await self.client(), server_pattern, with_status, with_class)

    def _reaches_others(self, server_pattern: str) -> bool:
        prefix = self._ns.other_prefix
        if not prefix:
            return False
        literal = re.split(r"[*%]", server_pattern, maxsplit=1)[0]
        wildcard = literal != server_pattern
        return literal.startswith(prefix) or (wildcard and prefix.startswith(literal))

    async def _list_on(
        self, client: ImapClient, server_pattern: str, with_status: bool, with_class: bool
    ) -> list[MailboxInfo]:
        status_items = list(STATUS_ITEMS)
        if client.has("STATUS=SIZE"):
            status_items.append("SIZE")
        if with_status and client.has("LIST-STATUS"):
            result = await client.execute(
                "LIST", "", server_pattern,
                Raw(f"RETURN (CHILDREN STATUS ({' '.join(status_items)}))"),
                wants=("LIST", "STATUS"),
            )  # fmt: skip
        else:
            result = await client.execute("LIST", "", server_pattern, wants=("LIST",))
        entries = self._parse_list(result)
        statuses = {text(item.values[0]): item.values[1] for item in result.of("STATUS")}
        if with_status and not client.has("LIST-STATUS"):
            statuses = await self._status_each(client, entries, status_items)
        classes = await self._classes(client, entries) if with_class else {}
        mailboxes: list[MailboxInfo] = []
        for server, client_name, selectable, children in entries:
            status = _status_dict(statuses.get(server))
            mailboxes.append(
                MailboxInfo(
                    name=client_name,
                    selectable=selectable,
                    has_children=children,
                    mailbox_class=classes.get(server),
                    uidvalidity=status.get("UIDVALIDITY"),
                    messages=status.get("MESSAGES"),
                    uidnext=status.get("UIDNEXT"),
                    unseen=status.get("UNSEEN"),
                    size=status.get("SIZE"),
                )
            )
        return mailboxes

    def _parse_list(self, result: Result) -> list[tuple[str, str, bool, bool]]:
        entries = []
        for item in result.of("LIST"):
            if len(item.values) < 3 or not isinstance(item.values[0], list):
                continue
            flags = {str(flag).upper() for flag in item.values[0]}
            server = text(item.values[2])
            try:
                client_name = self._ns.to_client(server)
            except ValueError:
                log.warning("skipping a mailbox whose name is not valid modified UTF-7")
                continue
            if client_name is None:
                continue
            selectable = not (flags & NO_SELECT_FLAGS)
            children = "\\HASCHILDREN" in flags
            entries.append((server, client_name, selectable, children))
        return entries

    async def _status_each(
        self, client: ImapClient, entries: list[tuple[str, str, bool, bool]], items: list[str]
    ) -> dict[str, Value]:
        async def one(server: str) -> tuple[str, Value]:
            try:
                result = await client.execute(
                    "STATUS", server, Raw(f"({' '.join(items)})"), wants=("STATUS",)
                )
            except ImapCommandFailed:
                return server, None
            found = result.of("STATUS")
            return server, found[0].values[1] if found else None

        pairs = await asyncio.gather(*(one(e[0]) for e in entries if e[2]))
        return dict(pairs)

    async def _classes(
        self, client: ImapClient, entries: list[tuple[str, str, bool, bool]]
    ) -> dict[str, str]:
        if not client.has("METADATA"):
            return {}
        entry = self._settings.class_metadata_entry
        # Pipelined: one GETMETADATA per mailbox, all in flight at once.
        results = await asyncio.gather(
            *(
                client.execute("GETMETADATA", server, entry, wants=("METADATA",), check=False)
                for server, _, selectable, _ in entries
                if selectable
            )
        )
        classes: dict[str, str] = {}
        for result in results:
            for item in result.of("METADATA"):
                if len(item.values) >= 2 and isinstance(item.values[1], list):
                    pairs = item.values[1]
                    for key, value in zip(pairs[::2], pairs[1::2], strict=False):
                        if text(key).lower() == entry.lower() and value is not None:
                            classes[text(item.values[0])] = text(value)
        return classes

    # -- changes ------------------------------------------------------------------------

    async def create_mailbox(self, name: str, mailbox_class: str | None) -> None:
        client = await self.client()
        server = self.server_name(name)
        await client.execute("CREATE", server)
        if mailbox_class:
            try:
                await client.execute(
                    "SETMETADATA", server, [self._settings.class_metadata_entry, mailbox_class]
                )
            except BridgeError:
                # A mailbox without its class would show up as a mail folder: undo the create.
                with contextlib.suppress(BridgeError):
                    await client.execute("DELETE", server)
                raise

    async def append(
        self, name: str, message: bytes, flags: Sequence[str] = (),
        internaldate: dt.datetime | None = None,
    ) -> Located | None:  # fmt: skip
        client = await self.client()
        args: list[Arg] = [self.server_name(name)]
        if flags:
            args.append([Atom(flag) for flag in flags])
        if internaldate is not None:
            args.append(Raw(imap_date_time(internaldate)))
        args.append(Literal(message))
        result = await client.execute("APPEND", *args)
        code = result.tagged.code
        if code is not None and code.name == "APPENDUID" and len(code.args) >= 2:
            with contextlib.suppress(ValueError):
                return Located(int(str(code.args[0])), int(str(code.args[1])))
        return None

    async def _children(self, client: ImapClient, server: str) -> list[str]:
        separator = self._ns.separator
        result = await client.execute("LIST", "", server + separator + "*", wants=("LIST",))
        names = [text(item.values[2]) for item in result.of("LIST") if len(item.values) >= 3]
        # LIST patterns cannot escape `*` and `%`: a mailbox named `*` must not take every
        # nested mailbox of the account for its own children.
        return [name for name in names if name.startswith(server + separator)]

    async def _exists(self, client: ImapClient, server: str) -> bool:
        result = await client.execute("LIST", "", server, wants=("LIST",))
        return any(
            len(item.values) >= 3
            and text(item.values[2]) == server  # `*` and `%` in the name are wildcards to LIST
            and isinstance(item.values[0], list)
            and "\\NONEXISTENT" not in {str(f).upper() for f in item.values[0]}
            for item in result.of("LIST")
        )

    async def rename_mailbox(self, name: str, new_name: str, *, children: bool) -> None:
        client = await self.client()
        server, new_server = self.server_name(name), self.server_name(new_name)
        if not children and await self._children(client, server):
            raise BridgeError(
                ErrorKind.HAS_CHILDREN, "mailbox has nested mailboxes: rename them with children"
            )
        try:
            await client.execute("RENAME", server, new_server)
        except ImapCommandFailed as exc:
            raise await self._refine(client, exc, server, new_server) from exc

    async def delete_mailbox(self, name: str, *, children: bool) -> None:
        client = await self.client()
        server = self.server_name(name)
        nested = await self._children(client, server)
        if nested and not children:
            raise BridgeError(ErrorKind.HAS_CHILDREN)
        # Deepest first, so every DELETE removes a leaf.
        for child in sorted(nested, key=lambda n: n.count(self._ns.separator), reverse=True):
            await self._delete_present(client, child)
        try:
            await client.execute("DELETE", server)
        except ImapCommandFailed as exc:
            if nested and not await self._exists(client, server):
                return  # the parent existed only as the path of its children, now gone
            raise await self._refine(client, exc, server, None) from exc

    async def _delete_present(self, client: ImapClient, server: str) -> None:
        """DELETE, where a name that exists only as the path to deeper mailboxes (Maildir++
        lists such parents without storing them) counts as deleted once they are gone."""
        try:
            await client.execute("DELETE", server)
        except ImapCommandFailed:
            if await self._exists(client, server):
                raise

    async def _refine(
        self, client: ImapClient, exc: ImapCommandFailed, server: str, target: str | None
    ) -> BridgeError:
        """Servers without RFC 5530 codes say only NO: look at the mailboxes to say why."""
        if exc.kind is not ErrorKind.BACKEND_REFUSED:
            return exc
        if not await self._exists(client, server):
            return BridgeError(ErrorKind.NOT_FOUND)
        if target is not None and await self._exists(client, target):
            return BridgeError(ErrorKind.ALREADY_EXISTS)
        return exc

    # -- subscriptions ------------------------------------------------------------------

    async def list_subscriptions(self, pattern: str) -> list[str]:
        client = await self.client()
        result = await client.execute("LSUB", "", self.server_name(pattern), wants=("LSUB",))
        names = []
        for item in result.of("LSUB"):
            if len(item.values) >= 3:
                client_name = self._ns.to_client(text(item.values[2]))
                if client_name is not None:
                    names.append(client_name)
        return names

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        client = await self.client()
        server = self.server_name(name)
        if subscribed:
            await client.execute("SUBSCRIBE", server)
            return
        try:
            await client.execute("UNSUBSCRIBE", server)
        except ImapCommandFailed as exc:
            # Removing what is not in the set is already done.
            if exc.kind not in (ErrorKind.BACKEND_REFUSED, ErrorKind.NOT_FOUND):
                raise

    # -- account data (preferences, quota) ----------------------------------------------

    async def get_prefs(self, names: Sequence[str]) -> dict[str, str]:
        return await account_data.get_prefs(await self.client(), names)

    async def set_prefs(self, values: Mapping[str, str | None]) -> None:
        await account_data.set_prefs(await self.client(), values)

    async def quota(self) -> StorageQuota | None:
        return await account_data.quota(await self.client())

    # -- access control lists (RFC 4314) ----------------------------------------------

    async def rights(self, name: str) -> str:
        return await imap_acl.my_rights(await self.client(), self.server_name(name))

    async def acl(self, name: str) -> list[AclEntry]:
        return await imap_acl.get_acl(await self.client(), self.server_name(name))

    async def set_acl(self, name: str, identifier: str, rights: str) -> None:
        await imap_acl.set_acl(await self.client(), self.server_name(name), identifier, rights)

    async def delete_acl(self, name: str, identifier: str) -> None:
        await imap_acl.delete_acl(await self.client(), self.server_name(name), identifier)

    async def close(self) -> None:
        mailboxes, self._open = self._open, []
        for mailbox in mailboxes:
            await mailbox.close()
        with contextlib.suppress(Exception):
            await self._client.close()


def _status_dict(values: Value) -> dict[str, int]:
    found: dict[str, int] = {}
    if isinstance(values, list):
        for key, value in zip(values[::2], values[1::2], strict=False):
            with contextlib.suppress(ValueError, TypeError):
                found[str(key).upper()] = int(text(value))
    return found


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imap_date_time(moment: dt.datetime) -> str:
    """RFC 3501 date-time ("dd-Mon-yyyy hh:mm:ss +zzzz", quoted), whatever the locale."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    month = _MONTHS[moment.month - 1]
    return f'"{moment.day:2d}-{month}-{moment.year:04d} {moment:%H:%M:%S} {moment:%z}"'
