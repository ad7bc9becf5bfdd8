"""A session's open folders: each a sorted, filtered view of a mailbox, with the logical view the
client was last told about (DESIGN section 5), kept apart from the mailbox's current state."""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from adapters.protocols import OpenMailbox, ViewQuery
from bridge.views.rows import MailboxKey

MAX_FOLDERS_PER_SESSION = 64


@dataclass(slots=True, eq=False)
class Folder:
    name: str
    mailbox: OpenMailbox
    query: ViewQuery
    fields: tuple[str, ...]
    # UIDs in view order: what the client holds, changed only by init and folderSync reports.
    # An array of 32-bit UIDs: 4 bytes a message instead of a list's 36.
    view: array[int]
    # The mailbox's HIGHESTMODSEQ when `view` was last brought up to date.
    modseq: int
    # A notify report was sent and no folderSync has happened since (one per sync, per spec).
    notified: bool = False
    # Where the shared summary cache keeps this mailbox; None without CONDSTORE (no caching).
    cache_key: MailboxKey | None = None
    # Where the state store keeps this view between runs; None when it cannot be kept.
    state_key: str | None = None
    all_below: int = 0
    # A one-shot re-check after a sync (see `recheck_later`), kept so it can be cancelled.
    recheck: asyncio.Task[None] | None = None

    def recheck_later(self, delay: float, check: Callable[[], Awaitable[None]]) -> None:
        """Run `check` once after `delay` seconds, replacing a pending one.

        What a sync has just shown can be undone before the watcher's IDLE reports anything
        (a message added and expunged again within Dovecot's push delay leaves IDLE nothing to
        say), so the folder looks again once, shortly after."""
        self.cancel_recheck()

        async def later() -> None:
            await asyncio.sleep(delay)
            await check()

        self.recheck = asyncio.create_task(later(), name=f"folder-recheck {self.name}")

    def cancel_recheck(self) -> None:
        if self.recheck is not None:
            self.recheck.cancel()
            self.recheck = None

    def set_view(self, view: Sequence[int], all_below: int | None = None) -> None:
        """Adopt a view; `all_below` is one past its highest UID (computed when not given):
        in a view of every message, each existing message below it is in the view."""
        self.view = view if isinstance(view, array) else array("I", view)
        self.all_below = all_below if all_below is not None else max(self.view, default=0) + 1


class Folders:
    def __init__(self) -> None:
        self._by_name: dict[str, Folder] = {}

    def get(self, name: str) -> Folder | None:
        return self._by_name.get(name)

    def add(self, folder: Folder) -> None:
        self._by_name[folder.name] = folder

    def pop(self, name: str) -> Folder | None:
        return self._by_name.pop(name, None)

    def __len__(self) -> int:
        return len(self._by_name)

    def all(self) -> list[Folder]:
        return list(self._by_name.values())

    async def close_all(self) -> None:
        for folder in list(self._by_name.values()):
            folder.cancel_recheck()
            folder.mailbox.on_change(None)
            await folder.mailbox.close()
        self._by_name.clear()
