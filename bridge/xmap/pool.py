"""The mailboxes one XMAP session keeps selected between commands.

XMAP names a folder in every command; opening a mailbox costs an IMAP connection and a SELECT,
so the last few used stay open (least recently used goes first). Each is kept with the
UIDVALIDITY it had when opened, which is what a MessageHandle's location is checked against.

- A mailbox used by the command running now is never closed to make room (a move needs its
  source and its target at once): the pool may hold more than its size until the next command.
- A name is looked up on the account's main connection before a connection of its own is
  opened for it, so naming folders that do not exist costs a LIST each, not a login each.
- `sync(epoch)` at each command closes everything when folders were renamed or deleted (by any
  session of the account in this process) since the last one: a selected mailbox follows its
  rename on the server and would otherwise go on answering under its old name.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from adapters.protocols import MailStore, OpenMailbox
from bridge.errors import BridgeError, ErrorKind

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Opened:
    mailbox: OpenMailbox
    uidvalidity: int


def mailbox_key(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 5.1), every other name is not."""
    head, slash, rest = name.partition("/")
    return "INBOX" + slash + rest if head.upper() == "INBOX" else name


class MailboxPool:
    def __init__(self, store: MailStore, size: int) -> None:
        self._store = store
        self._size = max(1, size)
        self._open: OrderedDict[str, Opened] = OrderedDict()
        self._in_use: set[str] = set()  # keys the running command has used
        self._epoch = 0

    async def sync(self, epoch: int) -> None:
        """A new command starts; `epoch` counts the account's folder renames and deletions."""
        self._in_use.clear()
        if epoch != self._epoch:
            self._epoch = epoch
            await self.close()
        while len(self._open) > self._size:
            _, oldest = self._open.popitem(last=False)
            await oldest.mailbox.close()

    async def exists(self, name: str, *, fresh: bool = False) -> bool:
        """Whether the mailbox exists and can be selected (one LIST on the main connection;
        without `fresh`, a mailbox held open counts as existing)."""
        if not fresh and mailbox_key(name) in self._open:
            return True
        try:
            infos = await self._store.list_mailboxes(name, with_status=False, with_class=False)
        except BridgeError as exc:
            if exc.kind is not ErrorKind.BACKEND_UNAVAILABLE:
                raise
            # The main connection was lost (a server restart, `doveadm kick`): the store knows
            # it now and logs in again; LIST changes nothing, so asking twice is safe.
            infos = await self._store.list_mailboxes(name, with_status=False, with_class=False)
        key = mailbox_key(name)
        return any(info.selectable and mailbox_key(info.name) == key for info in infos)

    async def get(self, name: str) -> Opened:
        key = mailbox_key(name)
        self._in_use.add(key)
        found = self._open.get(key)
        if found is not None:
            self._open.move_to_end(key)
            return found
        if not await self.exists(name):
            raise BridgeError(ErrorKind.NOT_FOUND, f"no folder {name}")
        mailbox = await self._store.open_mailbox(name)
        try:
            status = await mailbox.status()
        except BaseException:
            await mailbox.close()
            raise
        opened = self._open[key] = Opened(mailbox, status.uidvalidity)
        for other in [k for k in self._open if k not in self._in_use]:
            if len(self._open) <= self._size:
                break
            await self._open.pop(other).mailbox.close()
        return opened

    async def run(self, name: str, work: Callable[[Opened], Awaitable[T]]) -> T:
        """`work` on the open mailbox; once more on a fresh one if its connection was lost."""
        try:
            return await work(await self.get(name))
        except BridgeError as exc:
            if exc.kind is not ErrorKind.BACKEND_UNAVAILABLE:
                raise
        await self.drop(name)
        return await work(await self.get(name))

    async def drop(self, name: str) -> None:
        opened = self._open.pop(mailbox_key(name), None)
        if opened is not None:
            await opened.mailbox.close()

    async def close(self) -> None:
        """Close every mailbox (after a folder rename, and at the end of the session)."""
        while self._open:
            _, opened = self._open.popitem()
            await opened.mailbox.close()
