"""XMAP message handles: stable unsigned numbers for messages, kept in the state store.

XMAP names a message by a `MessageHandle` (a number, xmap-0.90 line 29) where IMAP has
(mailbox, UIDVALIDITY, UID). A handle is given once per message location and kept across
sessions and bridge restarts; a move re-points it to the new location, so a client's handle keeps
working; a copy is a new message with a new handle. A handle whose message went away (expunged
elsewhere, UIDVALIDITY changed) still resolves to its old location: the caller finds nothing there
and answers NOT_FOUND.

Keys, per account (`<a>`):
- `xmap:next:<a>`: the next handle to give (handles start at 1: 0 is never valid);
- `xmap:h:<a>:<handle>`: the location, JSON [mailbox, uidvalidity, uid];
- `xmap:r:<a>:<uidvalidity>:<uid>:<mailbox>`: the handle of a location (the reverse map);
- `xmap:m:<a>:<uidvalidity>:<old name>` and `xmap:u:<a>:<uidvalidity>:<new name>`: a mailbox
  renamed (it keeps its UIDVALIDITY), both ways: handles of its messages follow it without one
  write per message, and listing the renamed mailbox finds the handles its messages had.
Numbers are claimed with the store's atomic increment of `xmap:next:<a>`, so replicas sharing
one store never give one number twice. Within a process, handles are given under a lock per
account, so one location gets one handle. Two replicas seeing the same new message at the same
moment may each give it one: the location's reverse entry keeps the last, and both handles
resolve to the message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from adapters.protocols import Located, MailStore
from bridge.errors import BridgeError, ErrorKind
from bridge.state import Store

MAX_HANDLE = 2**64 - 1


@dataclass(frozen=True, slots=True)
class MessageRef:
    mailbox: str
    uidvalidity: int
    uid: int


MAX_RENAMES = 16  # renames followed for one location; a longer chain is taken as gone


def _name_key(mailbox: str) -> str:
    """INBOX is case-insensitive (RFC 3501 5.1; the XMAP pool takes `inbox` as `INBOX` and keeps
    whichever spelling came first): one message there has one handle whatever the spelling."""
    head, slash, rest = mailbox.partition("/")
    return "INBOX" + slash + rest if head.upper() == "INBOX" else mailbox


def _same(a: MessageRef | None, b: MessageRef) -> bool:
    return (
        a is not None
        and (a.uidvalidity, a.uid) == (b.uidvalidity, b.uid)
        and _name_key(a.mailbox) == _name_key(b.mailbox)
    )


def _location(ref: MessageRef) -> bytes:
    return json.dumps([ref.mailbox, ref.uidvalidity, ref.uid]).encode()


class HandleStore:
    def __init__(self, state: Store, account: str) -> None:
        self._state = state
        self._account = account
        self._lock = asyncio.Lock()
        # Folder renames and deletions by any session of the account in this process: XMAP
        # sessions close their selected mailboxes when it moves (xmap/pool.py).
        self.folder_epoch = 0
        self._in_use = False

    def folders_changed(self) -> None:
        self.folder_epoch += 1

    async def in_use(self) -> bool:
        """Whether the account was ever given a handle (else moves need not look for any)."""
        if not self._in_use:
            self._in_use = await self._state.get(f"xmap:next:{self._account}") is not None
        return self._in_use

    def _handle_key(self, handle: int) -> str:
        return f"xmap:h:{self._account}:{handle}"

    def _reverse_key(self, ref: MessageRef) -> str:
        return f"xmap:r:{self._account}:{ref.uidvalidity}:{ref.uid}:{_name_key(ref.mailbox)}"

    def _renamed_key(self, uidvalidity: int, old: str) -> str:
        return f"xmap:m:{self._account}:{uidvalidity}:{_name_key(old)}"

    def _former_key(self, uidvalidity: int, new: str) -> str:
        return f"xmap:u:{self._account}:{uidvalidity}:{_name_key(new)}"

    async def handle_for(self, ref: MessageRef) -> int:
        """The message's handle, given now if it has none."""
        return (await self.handles_for([ref]))[0]

    async def handles_for(self, refs: Sequence[MessageRef]) -> list[int]:
        """handle_for of many locations at once (a listing of thousands): one read for those
        that have handles, one block of new numbers for those that do not."""
        async with self._lock:
            keys = [self._reverse_key(ref) for ref in refs]
            known = {key: int(value) for key, value in (await self._state.get_many(keys)).items()}
            missing = {key: ref for key, ref in zip(keys, refs, strict=True) if key not in known}
            fresh: dict[str, MessageRef] = {}
            renamed = await self._renamed_mailboxes(missing.values())
            for key, ref in missing.items():
                former = None
                if (ref.uidvalidity, _name_key(ref.mailbox)) in renamed:
                    former = await self._under_former_name(ref)
                if former is None:
                    fresh[key] = ref
                    continue
                # Given before its mailbox was renamed: the handle moves to the new name.
                await self._state.delete(self._reverse_key(former[1]))
                await self._bind(former[0], ref)
                known[key] = former[0]
            known.update(await self._give(fresh))
            return [known[key] for key in keys]

    async def _renamed_mailboxes(self, refs: Iterable[MessageRef]) -> set[tuple[int, str]]:
        """Which of these locations' mailboxes had another name before (one read per mailbox)."""
        boxes = {(ref.uidvalidity, _name_key(ref.mailbox)) for ref in refs}
        ordered = list(boxes)
        found = await self._state.get_many([self._former_key(v, name) for v, name in ordered])
        return {box for box in ordered if self._former_key(*box) in found}

    async def _give(self, fresh: Mapping[str, MessageRef]) -> dict[str, int]:
        """New handles for these locations (reverse key -> location), numbered in order."""
        if not fresh:
            return {}
        numbers = await self._claim(len(fresh))
        given: dict[str, int] = {}
        items: dict[str, bytes] = {}
        for handle, (key, ref) in zip(numbers, fresh.items(), strict=True):
            given[key] = handle
            items[self._handle_key(handle)] = _location(ref)
            items[key] = str(handle).encode()
        await self._state.set_many(items)
        self._in_use = True
        return given

    async def _claim(self, count: int) -> list[int]:
        """`count` handle numbers no one else was given, in this process or another replica.
        The counter holds the next number to give: an increment by `count` claims the numbers
        from its old value up to the new one."""
        counter = f"xmap:next:{self._account}"
        try:
            after = await self._state.increment(counter, count)
            numbers = list(range(after - count, after))
            if numbers[0] == 0:
                # The account's first claim (the counter started from nothing): 0 is never a
                # handle, so one number more. Not always contiguous: another replica may have
                # claimed in between, and that is fine.
                numbers = [*numbers[1:], await self._state.increment(counter) - 1]
        except ValueError as exc:  # past what the store can count (or a damaged counter)
            raise BridgeError(ErrorKind.LIMIT, "no message handles left for this account") from exc
        if numbers[0] < 1:
            raise BridgeError(ErrorKind.INTERNAL, "the message handle counter is damaged")
        if numbers[-1] > MAX_HANDLE:
            raise BridgeError(ErrorKind.LIMIT, "no message handles left for this account")
        return numbers

    async def _bound(self, handle: int) -> MessageRef | None:
        """The location `handle` was bound to, before following renames."""
        if not 1 <= handle <= MAX_HANDLE:
            return None
        raw = await self._state.get(self._handle_key(handle))
        if raw is None:
            return None
        mailbox, uidvalidity, uid = json.loads(raw)
        return MessageRef(str(mailbox), int(uidvalidity), int(uid))

    async def resolve(self, handle: int) -> MessageRef | None:
        """Where the message of `handle` is (or was); None for a handle never given."""
        ref = await self._bound(handle)
        if ref is None:
            return None
        for _ in range(MAX_RENAMES):
            renamed = await self._state.get(self._renamed_key(ref.uidvalidity, ref.mailbox))
            if renamed is None:
                break
            ref = MessageRef(renamed.decode(), ref.uidvalidity, ref.uid)
        return ref

    async def renamed(self, old: str, new: str, uidvalidity: int) -> None:
        """The mailbox `old` (with this UIDVALIDITY) is now called `new`."""
        if _name_key(old) == _name_key(new):
            return
        await self._state.set(self._renamed_key(uidvalidity, old), new.encode())
        await self._state.set(self._former_key(uidvalidity, new), old.encode())
        # A mailbox renamed back must not chase itself round a loop.
        await self._state.delete(self._renamed_key(uidvalidity, new))

    async def _under_former_name(self, ref: MessageRef) -> tuple[int, MessageRef] | None:
        """A handle the message was given before its mailbox was renamed, with that location."""
        name = ref.mailbox
        for _ in range(MAX_RENAMES):
            former = await self._state.get(self._former_key(ref.uidvalidity, name))
            if former is None:
                return None
            name = former.decode()
            old = MessageRef(name, ref.uidvalidity, ref.uid)
            known = await self._state.get(self._reverse_key(old))
            # Only a handle still bound there (a reverse entry left by older versions is not).
            if known is not None and _same(await self._bound(int(known)), old):
                return int(known), old
        return None

    async def moved(self, handle: int, new: MessageRef) -> None:
        """The message of `handle` now lives at `new` (MOVE, or a replacing upload)."""
        async with self._lock:
            await self._unbind(handle)
            await self._bind(handle, new)

    async def handle_of(self, ref: MessageRef) -> int | None:
        """The handle already given for a location, if any (never gives one); like handle_for,
        a location in a renamed mailbox has the handle given under its former name."""
        known = await self._state.get(self._reverse_key(ref))
        if known is not None:
            return int(known)
        former = await self._under_former_name(ref)
        return former[0] if former is not None else None

    async def relocated(
        self, mailbox: str, uidvalidity: int, placed: Mapping[int, Located], target: str
    ) -> None:
        """Messages of `mailbox` were moved (by any front end) to `target`, as the server's
        COPYUID says: each handle that named one of them now names its new place."""
        if not placed or not await self.in_use():
            return
        refs = {uid: MessageRef(mailbox, uidvalidity, uid) for uid in placed}
        known = await self._state.get_many([self._reverse_key(ref) for ref in refs.values()])
        renamed = await self._renamed_mailboxes(refs.values())
        for uid, ref in refs.items():
            raw = known.get(self._reverse_key(ref))
            handle = int(raw) if raw is not None else None
            if handle is None and renamed:
                handle = await self.handle_of(ref)
            if handle is not None:
                where = placed[uid]
                await self.moved(handle, MessageRef(target, where.uidvalidity, where.uid))

    async def forget(self, handle: int) -> None:
        """The message was deleted through XMAP: its handle names nothing any more."""
        async with self._lock:
            await self._unbind(handle)
            await self._state.delete(self._handle_key(handle))

    async def forget_removed(self, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> None:
        """These messages were expunged (EMPTYFOLDER): drop their handles in one go. Only
        handles bound right there are dropped; one that moved in since keeps its place."""
        refs = [MessageRef(mailbox, uidvalidity, uid) for uid in uids]
        async with self._lock:
            known = await self._state.get_many([self._reverse_key(ref) for ref in refs])
            keys: list[str] = []
            for ref in refs:
                raw = known.get(self._reverse_key(ref))
                if raw is not None:
                    keys += [self._reverse_key(ref), self._handle_key(int(raw))]
            await self._state.delete_many(keys)

    async def _unbind(self, handle: int) -> None:
        """Drop the reverse entries of where `handle` is: the location it was bound to and, when
        its mailbox was renamed since, the same location under the new name."""
        bound = await self._bound(handle)
        if bound is None:
            return
        await self._state.delete(self._reverse_key(bound))
        now = await self.resolve(handle)
        if now is not None and not _same(now, bound):
            key = self._reverse_key(now)
            if await self._state.get(key) == str(handle).encode():
                await self._state.delete(key)

    async def _bind(self, handle: int, ref: MessageRef) -> None:
        await self._state.set(self._handle_key(handle), _location(ref))
        await self._state.set(self._reverse_key(ref), str(handle).encode())


async def record_rename(store: MailStore, handles: HandleStore, old: str, new: str) -> None:
    """After a mailbox rename (children follow): every renamed mailbox's handles follow it."""
    infos = await store.list_mailboxes(new, with_status=True, with_class=False)
    infos += await store.list_mailboxes(f"{new}/*", with_status=True, with_class=False)
    for info in infos:
        if info.uidvalidity and (info.name == new or info.name.startswith(new + "/")):
            await handles.renamed(old + info.name[len(new) :], info.name, info.uidvalidity)


class HandleRegistry:
    """One HandleStore per account for the whole process, so every session of an account gives
    handles under the same lock."""

    def __init__(self, state: Store) -> None:
        self._state = state
        self._stores: dict[str, HandleStore] = {}

    def for_account(self, account: str) -> HandleStore:
        store = self._stores.get(account)
        if store is None:
            store = self._stores[account] = HandleStore(self._state, account)
        return store
