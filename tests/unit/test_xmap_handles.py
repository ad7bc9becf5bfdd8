"""XMAP message handles in the state store: stable, never 0, re-pointed on move."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bridge.session.handles import HandleRegistry, HandleStore, MessageRef
from bridge.state.sqlite import SqliteStore

INBOX_7 = MessageRef("INBOX", 1700, 7)


async def test_a_message_keeps_its_handle_across_sessions_and_restarts(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite")
    first = SqliteStore(path)
    handles = HandleRegistry(first).for_account("a@x.test")
    one = await handles.handle_for(INBOX_7)
    two = await handles.handle_for(MessageRef("INBOX", 1700, 8))
    assert (one, two) == (1, 2)  # never 0
    assert await handles.handle_for(INBOX_7) == one
    await first.close()

    again = SqliteStore(path)
    restarted = HandleStore(again, "a@x.test")
    assert await restarted.resolve(one) == INBOX_7
    assert await restarted.handle_for(MessageRef("Sent", 5, 1)) == 3  # numbers are not reused
    other = HandleStore(again, "b@x.test")
    assert await other.resolve(one) is None  # per account
    assert await other.handle_for(INBOX_7) == 1
    await again.close()


async def test_move_keeps_the_handle_and_forget_ends_it() -> None:
    store = SqliteStore(":memory:")
    handles = HandleStore(store, "a@x.test")
    handle = await handles.handle_for(INBOX_7)
    archived = MessageRef("Archive", 900, 3)
    await handles.moved(handle, archived)
    assert await handles.resolve(handle) == archived
    assert await handles.handle_for(archived) == handle
    # The old place is free: a new message there is a new handle.
    assert await handles.handle_for(INBOX_7) != handle
    await handles.forget(handle)
    assert await handles.resolve(handle) is None
    for bad in (0, -1, 2**64):
        assert await handles.resolve(bad) is None
    await store.close()


async def test_sessions_of_one_account_give_one_handle_per_message() -> None:
    store = SqliteStore(":memory:")
    registry = HandleRegistry(store)
    first, second = registry.for_account("a@x.test"), registry.for_account("a@x.test")
    assert first is second
    refs = [MessageRef("INBOX", 1, uid) for uid in range(1, 21)]
    got = await asyncio.gather(*(first.handle_for(r) for r in refs),
                               *(second.handle_for(r) for r in refs))  # fmt: skip
    assert got[:20] == got[20:] and sorted(got[:20]) == list(range(1, 21))
    await store.close()


async def test_a_counter_written_by_earlier_versions_keeps_counting(tmp_path: Path) -> None:
    # Earlier versions kept the next handle to give in xmap:next; an upgrade must not reuse 1-4.
    store = SqliteStore(str(tmp_path / "state.sqlite"))
    await store.set("xmap:next:a@x.test", b"5")
    handles = HandleStore(store, "a@x.test")
    assert await handles.handle_for(INBOX_7) == 5
    assert await handles.handles_for([MessageRef("INBOX", 1700, n) for n in (8, 9)]) == [6, 7]
    assert await store.get("xmap:next:a@x.test") == b"8"
    await store.close()


async def test_replicas_sharing_a_store_never_give_one_number_twice() -> None:
    # Two HandleStores of one account do not share a lock, as two replicas would not.
    store = SqliteStore(":memory:")
    one, two = HandleStore(store, "a@x.test"), HandleStore(store, "a@x.test")
    batches = [
        (one if n % 2 else two).handles_for([MessageRef(f"F{n}", 1, uid) for uid in range(1, 6)])
        for n in range(20)
    ]
    given = [handle for batch in await asyncio.gather(*batches) for handle in batch]
    assert sorted(given) == list(range(1, 101))  # none twice, none lost, never 0
    await store.close()
