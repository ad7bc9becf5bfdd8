from __future__ import annotations

import datetime as dt

from adapters.protocols import FlagChanges, MessageSummary
from bridge.views.summaries import SummaryCache, visible

KEY = ("a@x.test", "INBOX", 7)
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def summary(uid: int, flags: frozenset[str] = frozenset(), **headers: str) -> MessageSummary:
    return MessageSummary(uid, flags, 100, EPOCH, headers)


def test_hits_after_store_and_absent_headers_are_remembered() -> None:
    cache = SummaryCache(100)
    cache.store(KEY, 5, {1: summary(1, Subject="hi"), 2: summary(2)}, ["Subject", "From"])
    found, missing = cache.lookup(KEY, [1, 2, 3], ["Subject"])
    assert set(found) == {1, 2} and missing == [3]
    assert visible(found[2]).headers == {}
    assert visible(found[1]).headers == {"Subject": "hi"}
    # A header never asked for is a miss.
    assert cache.lookup(KEY, [1], ["To"])[1] == [1]


def test_changes_update_flags_and_drop_vanished() -> None:
    cache = SummaryCache(100)
    cache.store(KEY, 5, {1: summary(1), 2: summary(2)}, [])
    cache.mark_dirty(KEY)
    assert cache.needs_refresh(KEY) == (True, 5)
    cache.apply(KEY, FlagChanges({1: frozenset({"\\Seen"})}, frozenset({2}), 9))
    assert cache.needs_refresh(KEY) == (False, 9)
    found, missing = cache.lookup(KEY, [1, 2], [])
    assert found[1].flags == {"\\Seen"} and missing == [2]


def test_changes_with_a_gap_leave_the_mailbox_dirty() -> None:
    cache = SummaryCache(100)
    cache.store(KEY, 5, {1: summary(1)}, [])
    cache.apply(KEY, FlagChanges({1: frozenset({"\\Seen"})}, frozenset(), 12), since=8)
    assert cache.needs_refresh(KEY) == (True, 5)
    assert cache.lookup(KEY, [1], [])[0][1].flags == frozenset()


def test_bounded_least_recently_used() -> None:
    cache = SummaryCache(3)
    cache.store(KEY, 1, {u: summary(u) for u in (1, 2, 3)}, [])
    cache.lookup(KEY, [1], [])
    cache.store(KEY, 1, {4: summary(4)}, [])
    assert len(cache) == 3
    assert cache.lookup(KEY, [2], [])[1] == [2]  # the least recently used went first
    assert cache.lookup(KEY, [1, 3, 4], [])[1] == []


def test_uidvalidity_is_part_of_the_key() -> None:
    cache = SummaryCache(10)
    cache.store(KEY, 1, {1: summary(1)}, [])
    assert cache.lookup(("a@x.test", "INBOX", 8), [1], [])[1] == [1]
