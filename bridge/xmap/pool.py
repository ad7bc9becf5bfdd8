"""The mailboxes one XMAP session keeps selected between commands.

XMAP names a folder in every command; opening a mailbox costs an IMAP connection and a SELECT,
so the last few used stay open (least recently used goes first). Each is kept with the
UIDVALIDITY it had when opened, which is what a MessageHandle's location is checked against.
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

    async def get(self, name: str) -> Opened:
        key = mailbox_key(name)
        found = self._open.get(key)
        if found is not None:
            self._open.move_to_end(key)
            return found
        mailbox = await self._store.open_mailbox(name)
        try:
            status = await mailbox.status()
        except BaseException:
            await mailbox.close()
            raise
        opened = self._open[key] = Opened(mailbox, status.uidvalidity)
        while len(self._open) > self._size:
            _, oldest = self._open.popitem(last=False)
            await oldest.mailbox.close()
        return opened

    async def run(self, name: str, work: Callable[[Opened], Awaitable[T]]) -> T:
        """`work` on the open mailbox; once more on a fresh one if its connection was lost."""
        opened = await self.get(name)
        try:
            return await work(opened)
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
