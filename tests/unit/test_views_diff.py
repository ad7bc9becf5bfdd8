"""folderSync reports: the central property (apply(old, diff(old, new)) == new), their order and
minimality, the spec's own examples, and the time a 100,000-message folder takes."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.views.diff import Report, apply, diff
from bridge.views.model import Message, ViewSpec, build_view

UIDS = st.integers(min_value=1, max_value=40)
VIEWS = st.lists(UIDS, unique=True, max_size=30)


@st.composite
def edited(draw: st.DrawFn) -> tuple[list[int], list[int], set[int]]:
    """An old view, and a new one made from it the way mailboxes change: removals, moves,
    insertions of fresh UIDs; plus a set of changed UIDs."""
    old = draw(st.lists(st.integers(1, 10_000), unique=True, max_size=40))
    new = [uid for uid in old if not draw(st.booleans()) or draw(st.booleans())]
    for _ in range(draw(st.integers(0, 5))):  # moves
        if new:
            uid = new.pop(draw(st.integers(0, len(new) - 1)))
            new.insert(draw(st.integers(0, len(new))), uid)
    fresh = draw(st.lists(st.integers(10_001, 20_000), unique=True, max_size=8))
    for uid in fresh:
        new.insert(draw(st.integers(0, len(new))), uid)
    changed = set(draw(st.lists(st.sampled_from(old + fresh + [0]), max_size=10)))
    return old, new, changed


def lis_length(values: Sequence[int]) -> int:
    """Quadratic longest-increasing-subsequence length: an oracle independent of diff's."""
    best = [1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] < values[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


def check(old: list[int], new: list[int], changed: set[int]) -> list[Report]:
    reports = diff(old, new, changed)
    # apply() checks each index, each UID at its index and each `messages` as it goes.
    assert apply(old, reports) == new

    modes = [r.mode for r in reports]
    assert modes == sorted(modes, key=["removed", "added", "updated"].index)
    for mode, step in (("removed", -1), ("added", 1), ("updated", 1)):
        indexes = [r.index for r in reports if r.mode == mode]
        assert indexes == sorted(indexes, reverse=step < 0)
        assert len(set(indexes)) == len(indexes)

    removed = {r.uid for r in reports if r.mode == "removed"}
    added = {r.uid for r in reports if r.mode == "added"}
    updated = [r.uid for r in reports if r.mode == "updated"]
    assert removed >= set(old) - set(new)
    assert added >= set(new) - set(old)
    moved = removed & set(new)
    assert moved == added & set(old)  # a removed survivor is added back, and only those
    new_pos = {uid: i for i, uid in enumerate(new)}
    survivors = [new_pos[uid] for uid in old if uid in new_pos]
    assert len(moved) == len(survivors) - lis_length(survivors)  # as few moves as possible
    kept = (set(old) & set(new)) - moved
    assert set(updated) == kept & changed
    assert all(r.messages == len(new) for r in reports if r.mode == "updated")
    return reports


@settings(max_examples=2000)
@given(VIEWS, VIEWS, st.sets(UIDS))
def test_any_two_views(old: list[int], new: list[int], changed: set[int]) -> None:
    check(old, new, changed)


@settings(max_examples=2000)
@given(edited())
def test_edited_views(case: tuple[list[int], list[int], set[int]]) -> None:
    check(*case)


@settings(max_examples=500)
@given(st.permutations(list(range(1, 12))))
def test_permutations_of_a_full_view(new: list[int]) -> None:
    check(list(range(1, 12)), new, set(new))


def test_nothing_changed_sends_nothing() -> None:
    assert diff([3, 1, 2], [3, 1, 2], []) == []
    assert diff([], [], [5]) == []


def test_changed_uid_not_in_either_view_is_ignored() -> None:
    assert diff([1, 2], [1, 2], [7]) == []


def test_moved_message_is_not_also_updated() -> None:
    assert diff([1, 2, 3], [2, 3, 1], {1}) == [
        Report("removed", 0, 1, 2),
        Report("added", 2, 1, 3),
    ]


def test_spec_folder_sync_example() -> None:
    """Spec example 1 (A004): UIDs 117 at 35 and 343 at 2 go, 976 arrives at index 1."""
    old = [123, 543, 343, 512, *range(1000, 1031), 117, *range(2000, 2198)]
    assert len(old) == 234 and old.index(117) == 35
    new = [123, 976, *[uid for uid in old[1:] if uid not in (117, 343)]]
    assert diff(old, new, set()) == [
        Report("removed", 35, 117, 233),
        Report("removed", 2, 343, 232),
        Report("added", 1, 976, 233),
    ]


def test_spec_updated_example() -> None:
    """Spec example 3 (A021): 976 and 512 marked Deleted, reported at their indexes 1 and 3."""
    view = [123, 976, 543, 512, 9, 10]
    assert diff(view, view, {512, 976}) == [
        Report("updated", 1, 976, 6),
        Report("updated", 3, 512, 6),
    ]


def test_apply_follows_the_spec_expunge_example() -> None:
    """Spec example A023 sends removals in an order of its own; a client must still cope."""
    view = [123, 976, 543, 512, *range(1000, 1100), *range(2000, 2133)]
    view[29 + 2] = 446  # index 29 once 123 and 976 are gone
    view[123 + 3] = 756  # index 123 once 446 is gone too
    assert len(view) == 237
    reports = [
        Report("removed", 0, 123, 236),
        Report("removed", 0, 976, 235),
        Report("removed", 29, 446, 234),
        Report("removed", 123, 756, 233),
        Report("removed", 1, 512, 232),
    ]
    assert apply(view, reports) == [uid for uid in view if uid not in (123, 976, 446, 756, 512)]


@pytest.mark.parametrize(
    "report",
    [
        Report("removed", 3, 4, 3),  # past the end
        Report("removed", 0, 2, 2),  # wrong UID at the index
        Report("removed", 0, 1, 3),  # wrong size
        Report("added", 4, 9, 4),  # past the end
        Report("added", -1, 9, 4),
        Report("updated", 1, 1, 3),  # wrong UID at the index
    ],
)
def test_apply_refuses_reports_a_client_could_not_apply(report: Report) -> None:
    with pytest.raises(ValueError):
        apply([1, 2, 3], [report])


def test_apply_leaves_its_input_alone() -> None:
    view = [1, 2]
    assert apply(view, [Report("removed", 0, 1, 1)]) == [2]
    assert view == [1, 2]


@pytest.mark.parametrize(("old", "new"), [([1, 1], [1]), ([1], [2, 2])])
def test_duplicate_uids_are_refused(old: list[int], new: list[int]) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        diff(old, new, [])


# --- performance: 100,000-message folders ---------------------------------------------------

LIMIT_S = 0.3


def best_time(old: list[int], new: list[int], changed: set[int]) -> tuple[float, list[Report]]:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        reports = diff(old, new, changed)
        times.append(time.perf_counter() - start)
    return min(times), reports


def test_one_addition_to_100k_view_is_fast() -> None:
    old = list(range(1, 100_001))
    new = [*old[:40_000], 100_001, *old[40_000:]]
    elapsed, reports = best_time(old, new, set())
    assert reports == [Report("added", 40_000, 100_001, 100_001)]
    assert elapsed < LIMIT_S, elapsed


def test_100_flag_changes_in_flags_sorted_100k_view_are_fast() -> None:
    rng = random.Random(5)
    pool = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Seen", "\\Flagged"})]
    messages = {
        uid: Message(uid, rng.choice(pool), 1000, uid, uid, "a", "b", "s")
        for uid in range(1, 100_001)
    }
    spec = ViewSpec(sort_field="FLAGS")
    old = build_view(messages.values(), spec)
    changed = set(rng.sample(sorted(messages), 100))
    for uid in changed:
        messages[uid] = Message(uid, frozenset({"\\Answered"}), 1000, uid, uid, "a", "b", "s")
    new = build_view(messages.values(), spec)
    elapsed, reports = best_time(old, new, changed)
    assert apply(old, reports) == new
    assert sum(r.mode == "added" for r in reports) == 100
    assert elapsed < LIMIT_S, elapsed
