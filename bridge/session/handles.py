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
- `xmap:r:<a>:<uidvalidity>:<uid>:<mailbox>`: the handle of a location (the reverse map).
Handles are given under a lock per account in this process; the store has no atomic increment,
so two replicas giving handles for one account at the same moment could collide (the Redis store
will bring one).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from bridge.errors import BridgeError, ErrorKind
from bridge.state import Store

MAX_HANDLE = 2**64 - 1


@dataclass(frozen=True, slots=True)
class MessageRef:
    mailbox: str
    uidvalidity: int
    uid: int


class HandleStore:
    def __init__(self, state: Store, account: str) -> None:
        self._state = state
        self._account = account
        self._lock = asyncio.Lock()

    def _handle_key(self, handle: int) -> str:
        return f"xmap:h:{self._account}:{handle}"

    def _reverse_key(self, ref: MessageRef) -> str:
        return f"xmap:r:{self._account}:{ref.uidvalidity}:{ref.uid}:{ref.mailbox}"

    async def handle_for(self, ref: MessageRef) -> int:
        """The message's handle, given now if it has none."""
        async with self._lock:
            known = await self._state.get(self._reverse_key(ref))
            if known is not None:
                return int(known)
            counter = f"xmap:next:{self._account}"
            raw = await self._state.get(counter)
            handle = int(raw) if raw is not None else 1
            if handle > MAX_HANDLE:
                raise BridgeError(ErrorKind.LIMIT, "no message handles left for this account")
            await self._state.set(counter, str(handle + 1).encode())
            await self._bind(handle, ref)
            return handle

    async def resolve(self, handle: int) -> MessageRef | None:
        """Where the message of `handle` is (or was); None for a handle never given."""
        if not 1 <= handle <= MAX_HANDLE:
            return None
        raw = await self._state.get(self._handle_key(handle))
        if raw is None:
            return None
        mailbox, uidvalidity, uid = json.loads(raw)
        return MessageRef(str(mailbox), int(uidvalidity), int(uid))

    async def moved(self, handle: int, new: MessageRef) -> None:
        """The message of `handle` now lives at `new` (MOVE, or a replacing upload)."""
        async with self._lock:
            old = await self.resolve(handle)
            if old is not None:
                await self._state.delete(self._reverse_key(old))
            await self._bind(handle, new)

    async def forget(self, handle: int) -> None:
        """The message was deleted through XMAP: its handle names nothing any more."""
        async with self._lock:
            old = await self.resolve(handle)
            if old is not None:
                await self._state.delete(self._reverse_key(old))
            await self._state.delete(self._handle_key(handle))

    async def _bind(self, handle: int, ref: MessageRef) -> None:
        value = json.dumps([ref.mailbox, ref.uidvalidity, ref.uid]).encode()
        await self._state.set(self._handle_key(handle), value)
        await self._state.set(self._reverse_key(ref), str(handle).encode())


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
