"""Message handles through moves, renames, copies and deletes (bridge/session/handles.py), on a
dict-backed state store; and the mailbox names the XMAP pool takes as one (pool.mailbox_key).

test_xmap_handles.py covers handles across restarts and concurrent sessions on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.protocols import Located, MailboxInfo, MailStore
from bridge.errors import BridgeError, ErrorKind
from bridge.session.handles import (
    MAX_HANDLE,
    MAX_RENAMES,
    HandleRegistry,
    HandleStore,
    MessageRef,
    record_rename,
)
from bridge.state.memory import MemoryStore
from bridge.state.sqlite import SqliteStore
from bridge.xmap.pool import mailbox_key

V = 1700  # the UIDVALIDITY a renamed mailbox keeps


DictStore = MemoryStore


def new_handles(account: str = "a@x.test") -> tuple[DictStore, HandleStore]:
    state = DictStore()
    return state, HandleStore(state, account)


def ref(mailbox: str, uid: int, uidvalidity: int = V) -> MessageRef:
    return MessageRef(mailbox, uidvalidity, uid)


# --- giving and resolving --------------------------------------------------------------------


async def test_handles_count_from_one_and_are_kept_per_location() -> None:
    _, handles = new_handles()
    assert [await handles.handle_for(ref("INBOX", uid)) for uid in (5, 6, 5)] == [1, 2, 1]
    assert await handles.handle_for(ref("INBOX", 5, V + 1)) == 3  # another UIDVALIDITY
    assert await handles.handle_for(ref("Sent", 5)) == 4
    assert await handles.resolve(1) == ref("INBOX", 5)
    assert await handles.handle_of(ref("INBOX", 6)) == 2
    assert await handles.handle_of(ref("INBOX", 7)) is None  # never gives one
    assert await handles.handle_for(ref("INBOX", 7)) == 5


@pytest.mark.parametrize("bad", [0, -1, -(2**64), MAX_HANDLE + 1, 2**64, 2**200])
async def test_out_of_range_handles_never_resolve(bad: int) -> None:
    state, handles = new_handles()
    # Even a store that holds a key for them.
    state.data[f"xmap:h:a@x.test:{bad}"] = b'["INBOX", 1700, 1]'
    assert await handles.resolve(bad) is None


async def test_the_largest_handle_resolves_and_then_they_run_out() -> None:
    state, handles = new_handles()
    state.data["xmap:next:a@x.test"] = str(MAX_HANDLE).encode()
    assert await handles.handle_for(ref("INBOX", 1)) == MAX_HANDLE
    assert await handles.resolve(MAX_HANDLE) == ref("INBOX", 1)
    with pytest.raises(BridgeError) as caught:
        await handles.handle_for(ref("INBOX", 2))
    assert caught.value.kind is ErrorKind.LIMIT
    assert await handles.handle_for(ref("INBOX", 1)) == MAX_HANDLE  # known ones still work


async def test_accounts_do_not_share_handles() -> None:
    state = DictStore()
    registry = HandleRegistry(state)
    a, b = registry.for_account("a@x.test"), registry.for_account("b@x.test")
    assert a is registry.for_account("a@x.test") and a is not b
    assert await a.handle_for(ref("INBOX", 1)) == 1
    assert await b.handle_for(ref("INBOX", 2)) == 1
    assert await a.resolve(1) == ref("INBOX", 1)
    assert await b.resolve(1) == ref("INBOX", 2)


# --- moves -----------------------------------------------------------------------------------


async def test_a_chain_of_moves_keeps_one_handle() -> None:
    _, handles = new_handles()
    handle = await handles.handle_for(ref("INBOX", 1))
    places = [
        ref("Archive", 10, 900),
        ref("Work", 3, 800),
        ref("INBOX", 44),
        ref("Archive", 11, 900),
    ]
    for place in places:
        await handles.moved(handle, place)
        assert await handles.resolve(handle) == place
        assert await handles.handle_for(place) == handle
    # Every place it left is free again: nothing there has a handle.
    for left in [ref("INBOX", 1), *places[:-1]]:
        assert await handles.handle_of(left) is None
    assert await handles.handle_for(ref("Work", 99, 800)) == handle + 1


async def test_a_copy_is_a_new_message_with_a_new_handle() -> None:
    _, handles = new_handles()
    original = await handles.handle_for(ref("INBOX", 1))
    copy = await handles.handle_for(ref("Archive", 1, 900))
    assert copy != original
    assert await handles.resolve(original) == ref("INBOX", 1)


async def test_forget_ends_a_handle_and_frees_its_place() -> None:
    _, handles = new_handles()
    handle = await handles.handle_for(ref("INBOX", 1))
    other = await handles.handle_for(ref("INBOX", 2))
    await handles.forget(handle)
    assert await handles.resolve(handle) is None
    assert await handles.handle_of(ref("INBOX", 1)) is None
    assert await handles.resolve(other) == ref("INBOX", 2)
    await handles.forget(handle)  # twice: nothing to do
    await handles.forget(12345)  # never given: nothing to do
    assert await handles.handle_for(ref("INBOX", 3)) == 3  # numbers are not reused


async def test_relocated_re_points_only_the_handles_that_exist() -> None:
    _, handles = new_handles()
    one = await handles.handle_for(ref("INBOX", 1))
    three = await handles.handle_for(ref("INBOX", 3))
    placed = {1: Located(900, 21), 2: Located(900, 22), 3: Located(900, 23)}
    await handles.relocated("INBOX", V, placed, "Archive")
    assert await handles.resolve(one) == ref("Archive", 21, 900)
    assert await handles.resolve(three) == ref("Archive", 23, 900)
    # uid 2 had no handle: none was given for it, here or there.
    assert await handles.handle_of(ref("Archive", 22, 900)) is None
    assert await handles.handle_of(ref("INBOX", 2)) is None
    assert await handles.handle_for(ref("INBOX", 9)) == 3
    # Another mailbox's (or UIDVALIDITY's) uid 1 is another message.
    await handles.relocated("INBOX", V + 1, {21: Located(5, 5)}, "X")
    await handles.relocated("Other", V, {1: Located(5, 5)}, "X")
    assert await handles.resolve(one) == ref("Archive", 21, 900)


# --- renames ---------------------------------------------------------------------------------


async def test_renamed_then_handle_for_finds_the_old_handle() -> None:
    _, handles = new_handles()
    handle = await handles.handle_for(ref("Work", 1))
    await handles.renamed("Work", "Jobs", V)
    assert await handles.resolve(handle) == ref("Jobs", 1)
    assert await handles.handle_for(ref("Jobs", 1)) == handle
    assert await handles.resolve(handle) == ref("Jobs", 1)
    assert await handles.handle_for(ref("Jobs", 2)) == handle + 1  # a new message there


async def test_a_rename_chain_is_followed_both_ways() -> None:
    _, handles = new_handles()
    first = await handles.handle_for(ref("A", 1))
    await handles.renamed("A", "B", V)
    second = await handles.handle_for(ref("B", 2))
    await handles.renamed("B", "C", V)
    await handles.renamed("C", "D", V)
    assert await handles.resolve(first) == ref("D", 1)
    assert await handles.resolve(second) == ref("D", 2)
    assert await handles.handle_for(ref("D", 2)) == second
    assert await handles.handle_for(ref("D", 1)) == first
    assert await handles.handle_for(ref("D", 3)) == second + 1


async def test_renaming_back_and_forth_makes_no_loop() -> None:
    _, handles = new_handles()
    handle = await handles.handle_for(ref("A", 1))
    for _ in range(3):
        await handles.renamed("A", "B", V)
        assert await handles.resolve(handle) == ref("B", 1)
        await handles.renamed("B", "A", V)
        assert await handles.resolve(handle) == ref("A", 1)
    assert await handles.handle_for(ref("A", 1)) == handle
    await handles.renamed("A", "B", V)
    assert await handles.handle_for(ref("B", 1)) == handle  # found under its former name
    await handles.renamed("B", "A", V)
    assert await handles.handle_for(ref("A", 1)) == handle
    assert await handles.resolve(handle) == ref("A", 1)
    # A new message in either name: a new handle, after a bounded search.
    assert await handles.handle_for(ref("A", 2)) == handle + 1
    await handles.renamed("A", "A", V)  # no-op
    assert await handles.resolve(handle) == ref("A", 1)


async def test_a_three_way_cycle_of_renames_resolves() -> None:
    _, handles = new_handles()
    a = await handles.handle_for(ref("A", 1))
    await handles.renamed("A", "B", V)
    b = await handles.handle_for(ref("B", 2))
    await handles.renamed("B", "C", V)
    await handles.renamed("C", "A", V)
    assert await handles.resolve(a) == ref("A", 1)
    assert await handles.resolve(b) == ref("A", 2)
    assert await handles.handle_for(ref("A", 1)) == a
    assert await handles.handle_for(ref("A", 2)) == b
    assert await handles.handle_for(ref("A", 3)) == b + 1


async def test_a_rename_touches_only_its_uidvalidity() -> None:
    _, handles = new_handles()
    kept = await handles.handle_for(ref("A", 1, uidvalidity=5))
    await handles.renamed("A", "B", V)
    assert await handles.resolve(kept) == ref("A", 1, uidvalidity=5)
    assert await handles.handle_for(ref("B", 1, uidvalidity=5)) == kept + 1


async def test_a_move_out_of_a_renamed_mailbox() -> None:
    _, handles = new_handles()
    handle = await handles.handle_for(ref("A", 1))
    await handles.renamed("A", "B", V)
    await handles.moved(handle, ref("Archive", 7, 900))
    assert await handles.resolve(handle) == ref("Archive", 7, 900)
    assert await handles.handle_of(ref("B", 1)) is None
    assert await handles.handle_of(ref("A", 1)) is None
    await handles.renamed("B", "A", V)  # renamed back: still nothing at the old place
    assert await handles.handle_of(ref("A", 1)) is None
    assert await handles.handle_for(ref("A", 1)) != handle


async def test_relocated_follows_a_rename() -> None:
    """Another front end moves a message out of a renamed mailbox: its handle follows."""
    _, handles = new_handles()
    handle = await handles.handle_for(ref("A", 1))
    await handles.renamed("A", "B", V)
    assert await handles.handle_of(ref("B", 1)) == handle
    await handles.relocated("B", V, {1: Located(900, 7)}, "Archive")
    assert await handles.resolve(handle) == ref("Archive", 7, 900)
    assert await handles.handle_of(ref("B", 1)) is None


async def test_forget_after_a_rename_frees_the_place_under_both_names() -> None:
    _, handles = new_handles()
    handle = await handles.handle_for(ref("A", 1))
    await handles.renamed("A", "B", V)
    await handles.forget(handle)
    assert await handles.resolve(handle) is None
    assert await handles.handle_of(ref("B", 1)) is None
    await handles.relocated("B", V, {1: Located(900, 7)}, "Archive")  # must not bring it back
    assert await handles.resolve(handle) is None
    assert await handles.handle_for(ref("B", 1)) == handle + 1


async def test_a_longer_chain_than_followed_is_taken_as_gone() -> None:
    _, handles = new_handles()
    handle = await handles.handle_for(ref("M0", 1))
    for step in range(MAX_RENAMES + 2):
        await handles.renamed(f"M{step}", f"M{step + 1}", V)
    assert (await handles.resolve(handle)) != ref(f"M{MAX_RENAMES + 2}", 1)


RENAME_STEPS = st.lists(
    st.tuples(st.sampled_from(["A", "B", "C", "inbox", "INBOX/x"]), st.integers(1, 4)),
    max_size=12,
)


@given(RENAME_STEPS)
@settings(deadline=None, max_examples=150)
def test_any_renames_keep_every_handle_on_its_message(steps: list[tuple[str, int]]) -> None:
    """One mailbox renamed about (back and forth, in cycles), messages listed between renames:
    each message keeps one handle, which resolves to the mailbox's name of the moment."""

    async def run() -> None:
        _, handles = new_handles()
        name = "A"
        given_out: dict[int, int] = {}  # uid -> handle
        for new_name, uid in steps:
            if uid not in given_out:
                given_out[uid] = await handles.handle_for(ref(name, uid))
            if mailbox_key(new_name) != mailbox_key(name):
                await handles.renamed(name, new_name, V)
                name = new_name
            for known, handle in given_out.items():
                where = await handles.resolve(handle)
                assert where is not None
                assert mailbox_key(where.mailbox) == mailbox_key(name)
                assert (where.uidvalidity, where.uid) == (V, known)
                assert await handles.handle_of(ref(name, known)) == handle
                assert await handles.handle_for(ref(name, known)) == handle
        assert sorted(given_out.values()) == list(range(1, len(given_out) + 1))

    asyncio.run(run())


# --- record_rename ---------------------------------------------------------------------------


class ListingStore:
    """The one MailStore call record_rename makes: list_mailboxes, with status."""

    def __init__(self, infos: list[MailboxInfo]) -> None:
        self.infos = infos
        self.patterns: list[str] = []

    async def list_mailboxes(
        self, pattern: str, *, with_status: bool, with_class: bool
    ) -> list[MailboxInfo]:
        assert with_status
        self.patterns.append(pattern)
        if pattern.endswith("/*"):
            prefix = pattern[:-1]
            return [i for i in self.infos if i.name.startswith(prefix)]
        return [i for i in self.infos if i.name == pattern]


def _info(name: str, uidvalidity: int | None) -> MailboxInfo:
    return MailboxInfo(name, selectable=True, has_children=False, uidvalidity=uidvalidity)


async def test_record_rename_moves_the_mailbox_and_its_children() -> None:
    _, handles = new_handles()
    top = await handles.handle_for(ref("Work", 1, 10))
    child = await handles.handle_for(ref("Work/2024", 1, 11))
    grandchild = await handles.handle_for(ref("Work/2024/Q1", 4, 12))
    lookalike = await handles.handle_for(ref("Workshop", 1, 13))
    nostatus = await handles.handle_for(ref("Work/Odd", 1, 14))
    store = ListingStore([_info("Jobs", 10), _info("Jobs/2024", 11), _info("Jobs/2024/Q1", 12),
                          _info("Workshop", 13), _info("Jobs/Odd", None)])  # fmt: skip
    await record_rename(cast(MailStore, cast(Any, store)), handles, "Work", "Jobs")
    assert store.patterns == ["Jobs", "Jobs/*"]
    assert await handles.resolve(top) == ref("Jobs", 1, 10)
    assert await handles.resolve(child) == ref("Jobs/2024", 1, 11)
    assert await handles.resolve(grandchild) == ref("Jobs/2024/Q1", 4, 12)
    assert await handles.resolve(lookalike) == ref("Workshop", 1, 13)
    assert await handles.resolve(nostatus) == ref("Work/Odd", 1, 14)  # no UIDVALIDITY: unknown
    assert await handles.handle_for(ref("Jobs/2024", 1, 11)) == child


# --- INBOX is one mailbox whatever its case ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
        ("InBoX", "INBOX"),
        ("inbox/Sub", "INBOX/Sub"),
        ("Inbox/sub/Deeper", "INBOX/sub/Deeper"),
        ("inbox/", "INBOX/"),
        ("INBOXES", "INBOXES"),
        ("inboxes", "inboxes"),
        ("Sent/inbox", "Sent/inbox"),
        ("Archive", "Archive"),
        ("archive", "archive"),  # only INBOX is case-insensitive
        ("", ""),
    ],
)
def test_mailbox_key(name: str, key: str) -> None:
    assert mailbox_key(name) == key


@given(st.text(max_size=20))
def test_mailbox_key_is_idempotent_and_only_touches_inbox(name: str) -> None:
    key = mailbox_key(name)
    assert mailbox_key(key) == key
    assert key.lower() == name.lower() or key == name
    if name.partition("/")[0].upper() != "INBOX":
        assert key == name


async def test_inbox_in_any_case_is_one_message_to_the_handles() -> None:
    """The pool treats `inbox` and `INBOX` as one mailbox (and opens it under whichever name came
    first): a message in it has one handle whichever spelling the listing used."""
    _, handles = new_handles()
    handle = await handles.handle_for(ref("INBOX", 1))
    assert await handles.handle_for(ref("inbox", 1)) == handle
    assert await handles.handle_of(ref("Inbox", 1)) == handle
    assert await handles.handle_for(ref("inbox/Sub", 1)) == await handles.handle_for(
        ref("INBOX/Sub", 1)
    )
    assert await handles.handle_for(ref("archive", 1)) != await handles.handle_for(
        ref("Archive", 1)
    )


async def test_forget_removed_drops_only_the_handles_bound_there() -> None:
    state, handles = new_handles()
    gone = [await handles.handle_for(MessageRef("Box", V, uid)) for uid in (1, 2, 3)]
    elsewhere = await handles.handle_for(MessageRef("Other", V, 9))
    await handles.forget_removed("Box", V, [1, 2, 3, 4])
    assert [await handles.resolve(h) for h in gone] == [None, None, None]
    assert await handles.resolve(elsewhere) == MessageRef("Other", V, 9)
    assert not [key for key in state.data if ":Box" in key or key.endswith(":Box")]
    # The same places get new handles when messages appear there again.
    assert await handles.handle_for(MessageRef("Box", V, 1)) not in gone


async def test_sqlite_many_at_once(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.sqlite"))
    await store.set_many({f"k{i}": b"v%d" % i for i in range(1200)})
    assert len(await store.get_many([f"k{i}" for i in range(0, 1500)])) == 1200
    await store.delete_many([f"k{i}" for i in range(1000)])
    assert sorted(await store.get_many([f"k{i}" for i in range(1200)])) == sorted(
        f"k{i}" for i in range(1000, 1200)
    )
    await store.close()
