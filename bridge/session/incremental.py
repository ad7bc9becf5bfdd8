"""folderSync without re-sorting the mailbox: apply what changed (CONDSTORE/QRESYNC) to the
current view, placing new messages by binary search on their sort keys.

Removals and flag changes work in any order; messages entering a view only in orders whose key
the bridge computes exactly as IMAP SORT does (UID, arrival, size, sent date with the arrival
fallback). Filters by flags are decided here; text filters by a SEARCH of just the new
messages. Too many insertions, or changes the backend could not fully report, fall back to a
full SORT.
Ties go in ascending UID order in both directions, as IMAP SORT orders them.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from adapters.protocols import FlagChanges, ViewQuery
from bridge.views.diff import Report
from bridge.views.rows import NO_DATE, Row

# The sent date's cell: epoch seconds, "" without a Date header, NO_DATE when unreadable.
DATE_COLUMN = "date"
INCREMENTAL_SORTS = frozenset({"", "uid", "internaldate", "size", "date"})
# Past this many messages entering a view, one full SORT is cheaper than binary searches.
MAX_INSERTIONS = 32
# Past this many reports, diffing the two views is cheaper than locating each message.
DIRECT_REPORTS = 5000
# Up to this many messages are located by one list scan each, more by one pass over the view.
FEW = 8

Fetch = Callable[[Sequence[int]], Awaitable[dict[int, Row]]]
# Which of these messages the view's text filter selects (a SEARCH of just them).
Matching = Callable[[Sequence[int]], Awaitable[set[int]]]


@dataclass(frozen=True, slots=True)
class Incremental:
    view: array[int]
    # Kept messages whose flags changed (they may need an "updated" report).
    changed: set[int]
    # Old indexes of the messages that left the view, and final indexes of those that entered.
    removed_at: list[int]
    inserted_at: list[int]

    def reports(self, old: Sequence[int], show_changes: bool) -> list[Report] | None:
        """The reports straight from what moved, without diffing whole views; None when so
        much moved that the general diff is the better tool."""
        updated = self.changed if show_changes else set()
        if len(self.removed_at) + len(self.inserted_at) + len(updated) > DIRECT_REPORTS:
            return None
        reports: list[Report] = []
        size = len(old)
        for index in sorted(self.removed_at, reverse=True):
            size -= 1
            reports.append(Report("removed", index, old[index], size))
        new = self.view
        for index in self.inserted_at:
            size += 1
            reports.append(Report("added", index, new[index], size))
        for index in sorted(_positions(new, updated)):
            reports.append(Report("updated", index, new[index], size))
        return reports


def _positions(view: Sequence[int], wanted: set[int]) -> list[int]:
    """Where the wanted UIDs stand (those present): a C-speed scan each for a few, one pass
    for many."""
    if not wanted:
        return []
    if len(wanted) <= FEW:
        found = []
        for uid in wanted:
            with contextlib.suppress(ValueError):
                found.append(view.index(uid))
        return found
    return [index for index, uid in enumerate(view) if uid in wanted]


def supports(query: ViewQuery, changes: FlagChanges) -> bool:
    """Whether `apply_changes` may be tried (it still answers None when it cannot say)."""
    return changes.complete


def matches(query: ViewQuery, flags: frozenset[str]) -> bool:
    lowered = {flag.lower() for flag in flags}
    return all(f.lower() in lowered for f in query.flags_set) and not any(
        f.lower() in lowered for f in query.flags_unset
    )


def sort_key(field: str, row: Row) -> int | None:
    """The key IMAP SORT uses, or None when the bridge cannot be sure of it."""
    if field == "internaldate":
        return row.internal
    if field == "size":
        return row.size
    date = row.cells.get(DATE_COLUMN, "")
    if not date:
        # RFC 5256: a message without a Date sorts by its arrival.
        return row.internal
    return None if date == NO_DATE else int(date)


async def apply_changes(
    view: Sequence[int],
    query: ViewQuery,
    changes: FlagChanges,
    fetch: Fetch,
    all_below: int | None = None,
    matching: Matching | None = None,
) -> Incremental | None:
    """The new view, or None when only a full SORT can say it exactly.

    `all_below`: for a view of every message, the UIDNEXT it was built at; then membership is
    arithmetic (every UID below it that still exists is in the view) and a 100,000-message view
    is never scanned for the common case of a few changes. For a filtered view it is the UID
    below which every message is known (in the view or judged out of it): a text filter's verdict
    on an older message does not change with its flags; newer ones are asked of `matching`."""
    text = query.text is not None
    filtered = bool(query.flags_set or query.flags_unset) or text
    members: set[int] | None = None
    if filtered or all_below is None:
        members = set(view)

    def inside(uid: int) -> bool:
        if members is not None:
            return uid in members
        assert all_below is not None
        return uid < all_below

    leaving: set[int] = set()
    entering: list[int] = []
    changed: set[int] = set()
    unjudged: list[int] = []
    for uid, flags in changes.flags.items():
        if uid in changes.vanished:
            continue
        now_inside, wanted = inside(uid), matches(query, flags)
        if text and wanted and not now_inside:
            if all_below is None or uid >= all_below:
                unjudged.append(uid)
            continue
        if now_inside and not wanted:
            leaving.add(uid)
        elif wanted and not now_inside:
            entering.append(uid)
        elif now_inside:
            changed.add(uid)
    field = (query.sort_field or "uid").lower()
    if unjudged:
        if matching is None or len(unjudged) > MAX_INSERTIONS:
            return None
        entering += sorted(await matching(sorted(unjudged)))
    # Messages leave any view by removal alone; entering needs keys the bridge computes.
    if len(entering) > MAX_INSERTIONS or (entering and field not in INCREMENTAL_SORTS):
        return None
    gone = leaving | {uid for uid in changes.vanished if inside(uid)}
    removed_at = _positions(view, gone)
    result = array("I", view)
    for index in sorted(removed_at, reverse=True):
        del result[index]
    if not entering:
        return Incremental(result, changed, removed_at, [])
    sign = -1 if query.descending else 1
    keys: dict[int, int] = {}

    async def key_of(uids: Sequence[int]) -> bool:
        if field == "uid":
            keys.update((uid, sign * uid) for uid in uids)
            return True
        wanted = [uid for uid in uids if uid not in keys]
        if wanted:
            for uid, row in (await fetch(wanted)).items():
                key = sort_key(field, row)
                if key is None:
                    return False
                keys[uid] = sign * key
        return all(uid in keys for uid in uids)

    # The new messages and both ends of the view in one round trip: most arrivals go to an end.
    if not await key_of([*entering, *result[:1], *result[-1:]]):
        return None
    inserted_at: list[int] = []
    # In ascending final order, each insertion lands at or after the previous one, so the
    # positions recorded are already final.
    for uid in sorted(entering, key=lambda u: (keys[u], u)):
        position = await _position(result, (keys[uid], uid), keys, key_of)
        if position is None:
            return None
        result.insert(position, uid)
        inserted_at.append(position)
    return Incremental(result, changed, removed_at, inserted_at)


async def _position(
    view: Sequence[int],
    target: tuple[int, int],
    keys: dict[int, int],
    key_of: Callable[[Sequence[int]], Awaitable[bool]],
) -> int | None:
    """bisect_left of `target` in a view ordered by (key, uid), fetching probe keys as needed."""
    low, high = 0, len(view)
    # Arrivals mostly belong at one end (newest first or last): the ends' keys are fetched
    # with the new messages, so these cost no round trip.
    if view and view[-1] in keys and (keys[view[-1]], view[-1]) < target:
        return len(view)
    if view and view[0] in keys and target < (keys[view[0]], view[0]):
        return 0
    while low < high:
        middle = (low + high) // 2
        uid = view[middle]
        if uid not in keys and not await key_of([uid]):
            return None
        if (keys[uid], uid) < target:
            low = middle + 1
        else:
            high = middle
    return low
