"""Incremental folderSync against a from-scratch build: same view, reports that rebuild it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.protocols import FlagChanges, MessageSummary, ViewQuery
from bridge.session.incremental import DATE_COLUMN, apply_changes
from bridge.views.diff import apply
from bridge.views.rows import Row
from bridge.ximss.fields import row_of

SEEN = "\\Seen"
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def summary(uid: int, key: int, flags: frozenset[str]) -> Row:
    """A message's row as the cache keeps it, made from the raw headers the server gives."""
    moment = EPOCH + dt.timedelta(minutes=key)
    date = moment.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return row_of(MessageSummary(uid, flags, 1000 + key, moment, {"date": date}), [DATE_COLUMN])


def build(messages: dict[int, Row], query: ViewQuery, field: str) -> list[int]:
    def wanted(m: Row) -> bool:
        return all(f in m.flags for f in query.flags_set) and not any(
            f in m.flags for f in query.flags_unset
        )

    def key(uid: int) -> int:
        m = messages[uid]
        return {"uid": uid, "size": m.size}.get(field, m.internal)

    chosen = sorted(uid for uid, m in messages.items() if wanted(m))
    if field == "uid":
        return chosen[::-1] if query.descending else chosen
    return sorted(chosen, key=key, reverse=query.descending)  # stable: ties stay by UID


messages_strategy = st.dictionaries(
    st.integers(1, 60), st.tuples(st.integers(0, 8), st.booleans()), max_size=45
)


@settings(max_examples=1500, deadline=None)
@given(
    before=messages_strategy,
    added=st.lists(st.tuples(st.integers(0, 8), st.booleans()), max_size=12),
    removed=st.sets(st.integers(1, 60), max_size=12),
    reflag=st.sets(st.integers(1, 60), max_size=20),
    field=st.sampled_from(["uid", "internaldate", "size", "date"]),
    descending=st.booleans(),
    filtered=st.sampled_from(["none", "unseen", "seen"]),
    by_uidnext=st.booleans(),
)
def test_incremental_equals_full_build(
    before: dict[int, tuple[int, bool]],
    added: list[tuple[int, bool]],
    removed: set[int],
    reflag: set[int],
    field: str,
    descending: bool,
    filtered: str,
    by_uidnext: bool,
) -> None:
    old = {
        u: summary(u, k, frozenset({SEEN}) if s else frozenset()) for u, (k, s) in before.items()
    }
    query = ViewQuery(field, descending,
                      flags_set=(SEEN,) if filtered == "seen" else (),
                      flags_unset=(SEEN,) if filtered == "unseen" else ())  # fmt: skip
    new = dict(old)
    changed: dict[int, frozenset[str]] = {}
    for uid in reflag & set(old):
        flipped = frozenset() if SEEN in old[uid].flags else frozenset({SEEN})
        new[uid] = summary(uid, int(old[uid].size - 1000), flipped)
        changed[uid] = flipped
    vanished = removed & set(new)
    for uid in vanished:
        del new[uid]
        changed.pop(uid, None)
    next_uid = max([60, *old]) + 1
    for offset, (key, seen) in enumerate(added):
        uid = next_uid + offset
        new[uid] = summary(uid, key, frozenset({SEEN}) if seen else frozenset())
        changed[uid] = new[uid].flags
    old_view = build(old, query, field)

    async def fetch(uids: Sequence[int]) -> dict[int, Row]:
        return {u: new[u] for u in uids if u in new}

    changes = FlagChanges(changed, frozenset(vanished), 10)
    # Unfiltered views know membership from UIDNEXT alone: test both ways of knowing it.
    all_below = (max(old_view, default=0) + 1) if filtered == "none" and by_uidnext else None
    result = asyncio.run(apply_changes(old_view, query, changes, fetch, all_below))
    assert result is not None
    assert list(result.view) == build(new, query, field)
    reports = result.reports(old_view, show_changes=True)
    assert reports is not None
    assert apply(list(old_view), reports) == list(result.view)
    updated = {r.uid for r in reports if r.mode == "updated"}
    assert updated == {u for u in changed if u in old_view and u in result.view}


def test_unknown_date_falls_back_to_full_sort() -> None:
    broken = row_of(MessageSummary(9, frozenset(), 10, EPOCH, {"date": "not a date"}), ["date"])

    async def fetch(uids: Sequence[int]) -> dict[int, Row]:
        return {9: broken, 1: summary(1, 1, frozenset())}

    changes = FlagChanges({9: frozenset()}, frozenset(), 5)
    assert asyncio.run(apply_changes([1], ViewQuery("Date"), changes, fetch)) is None


@settings(max_examples=500, deadline=None)
@given(
    before=messages_strategy,
    removed=st.sets(st.integers(1, 60), max_size=12),
    reflag=st.sets(st.integers(1, 60), max_size=20),
    added=st.integers(0, 2),
    filtered=st.sampled_from(["none", "unseen", "seen"]),
)
def test_any_order_takes_removals_and_flag_changes_without_a_sort(
    before: dict[int, tuple[int, bool]], removed: set[int], reflag: set[int], added: int,
    filtered: str,
) -> None:  # fmt: skip
    """A Subject view (a key the bridge does not compute; here the size stands for it): what
    leaves it or changes in place is applied; anything entering asks for a full SORT."""
    old = {
        u: summary(u, k, frozenset({SEEN}) if s else frozenset()) for u, (k, s) in before.items()
    }
    query = ViewQuery("Subject", False,
                      flags_set=(SEEN,) if filtered == "seen" else (),
                      flags_unset=(SEEN,) if filtered == "unseen" else ())  # fmt: skip
    new = dict(old)
    changed: dict[int, frozenset[str]] = {}
    for uid in reflag & set(old):
        flipped = frozenset() if SEEN in old[uid].flags else frozenset({SEEN})
        new[uid] = old[uid]._replace(flags=flipped)
        changed[uid] = flipped
    for uid in removed & set(new):
        del new[uid]
        changed.pop(uid, None)
    for uid in range(61, 61 + added):
        new[uid] = summary(uid, 3, frozenset())
        changed[uid] = frozenset()
    old_view = build(old, query, "size")

    async def fetch(uids: Sequence[int]) -> dict[int, Row]:
        raise AssertionError("no keys are needed to remove or update")

    changes = FlagChanges(changed, frozenset(removed & set(old)), 10)
    result = asyncio.run(apply_changes(old_view, query, changes, fetch))
    expected = build(new, query, "size")
    if any(u not in old_view for u in expected):
        assert result is None
        return
    assert result is not None and list(result.view) == expected
    reports = result.reports(old_view, show_changes=True)
    assert reports is not None and apply(list(old_view), reports) == expected


@settings(max_examples=500, deadline=None)
@given(
    before=messages_strategy,
    added=st.lists(st.tuples(st.integers(0, 8), st.booleans()), max_size=6),
    removed=st.sets(st.integers(1, 60), max_size=12),
    reflag=st.sets(st.integers(1, 60), max_size=20),
    field=st.sampled_from(["uid", "internaldate", "size", "date"]),
    descending=st.booleans(),
)
def test_text_filters_ask_only_about_new_messages(
    before: dict[int, tuple[int, bool]], added: list[tuple[int, bool]], removed: set[int],
    reflag: set[int], field: str, descending: bool,
) -> None:  # fmt: skip
    """A text filter (here: "the message's flag at arrival was Seen", fixed per message like
    a header) keeps its verdict on old messages whatever their flags do; new ones are asked."""
    arrival_seen = {u: s for u, (_, s) in before.items()}
    old = {
        u: summary(u, k, frozenset({SEEN}) if s else frozenset()) for u, (k, s) in before.items()
    }
    query = ViewQuery(field, descending, text="x")

    def view_of(messages: dict[int, Row]) -> list[int]:
        chosen = {u: m for u, m in messages.items() if arrival_seen[u]}
        return build(chosen, ViewQuery(field, descending), field)

    new = dict(old)
    changed: dict[int, frozenset[str]] = {}
    for uid in reflag & set(old):
        flipped = frozenset() if SEEN in old[uid].flags else frozenset({SEEN})
        new[uid] = old[uid]._replace(flags=flipped)
        changed[uid] = flipped
    for uid in removed & set(new):
        del new[uid]
        changed.pop(uid, None)
    for offset, (key, seen) in enumerate(added):
        uid = 61 + offset
        arrival_seen[uid] = seen
        new[uid] = summary(uid, key, frozenset())
        changed[uid] = frozenset()
    old_view = view_of(old)
    asked: list[int] = []

    async def fetch(uids: Sequence[int]) -> dict[int, Row]:
        return {u: new[u] for u in uids if u in new}

    async def matching(uids: Sequence[int]) -> set[int]:
        asked.extend(uids)
        return {u for u in uids if arrival_seen[u]}

    changes = FlagChanges(changed, frozenset(removed & set(old)), 10)
    result = asyncio.run(apply_changes(old_view, query, changes, fetch, 61, matching))
    assert result is not None
    assert list(result.view) == view_of(new)
    assert set(asked) <= set(range(61, 61 + len(added)))
    reports = result.reports(old_view, show_changes=True)
    assert reports is not None and apply(list(old_view), reports) == list(result.view)
