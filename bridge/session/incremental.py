"""folderSync without re-sorting the mailbox: apply what changed (CONDSTORE/QRESYNC) to the
current view, placing new messages by binary search on their sort keys.

Only for orders whose key the bridge computes exactly as IMAP SORT does (UID, arrival, size,
sent date with the arrival fallback) and for filters decided by flags alone; anything else, too
many insertions, or changes the backend could not fully report, fall back to a full SORT.
Ties go in ascending UID order in both directions, as IMAP SORT orders them.
"""

from __future__ import annotations

import email.utils
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from adapters.protocols import FlagChanges, MessageSummary, ViewQuery
from bridge.views.diff import Report

DATE_HEADER = "Date"
INCREMENTAL_SORTS = frozenset({"", "uid", "internaldate", "size", "date"})
# Past this many messages entering a view, one full SORT is cheaper than binary searches.
MAX_INSERTIONS = 32
# Past this many reports, diffing the two views is cheaper than locating each message.
DIRECT_REPORTS = 5000
# Up to this many messages are located by one list scan each, more by one pass over the view.
FEW = 8

Fetch = Callable[[Sequence[int]], Awaitable[dict[int, MessageSummary]]]


@dataclass(frozen=True, slots=True)
class Incremental:
    view: list[int]
    # Kept messages whose flags changed (they may need an "updated" report).
    changed: set[int]
    removed: set[int]
    inserted: list[int]

    def reports(self, old: Sequence[int], show_changes: bool) -> list[Report] | None:
        """The reports straight from what moved, without diffing whole views; None when so
        much moved that the general diff is the better tool."""
        updated = self.changed if show_changes else set()
        if len(self.removed) + len(self.inserted) + len(updated) > DIRECT_REPORTS:
            return None
        reports: list[Report] = []
        size = len(old)
        for index in sorted(_positions(old, self.removed), reverse=True):
            size -= 1
            reports.append(Report("removed", index, old[index], size))
        new = self.view
        for index in sorted(_positions(new, set(self.inserted))):
            size += 1
            reports.append(Report("added", index, new[index], size))
        for index in sorted(_positions(new, updated)):
            reports.append(Report("updated", index, new[index], size))
        return reports


def _positions(view: Sequence[int], wanted: set[int]) -> list[int]:
    """Where the wanted UIDs stand: a C-speed scan each for a few, one pass for many."""
    if len(wanted) <= FEW:
        return [view.index(uid) for uid in wanted]
    return [index for index, uid in enumerate(view) if uid in wanted]


def supports(query: ViewQuery, changes: FlagChanges) -> bool:
    return (
        changes.complete
        and query.text is None
        and (query.sort_field or "").lower() in INCREMENTAL_SORTS
    )


def matches(query: ViewQuery, flags: frozenset[str]) -> bool:
    lowered = {flag.lower() for flag in flags}
    return all(f.lower() in lowered for f in query.flags_set) and not any(
        f.lower() in lowered for f in query.flags_unset
    )


def sort_key(field: str, summary: MessageSummary) -> int | None:
    """The key IMAP SORT uses, or None when the bridge cannot be sure of it."""
    if field == "internaldate":
        return int(summary.internaldate.timestamp())
    if field == "size":
        return summary.size
    raw = summary.headers.get(DATE_HEADER)
    if raw is None:
        # RFC 5256: a message without a usable Date sorts by its arrival.
        return int(summary.internaldate.timestamp())
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return int(parsed.timestamp())


async def apply_changes(
    view: Sequence[int], query: ViewQuery, changes: FlagChanges, fetch: Fetch
) -> Incremental | None:
    """The new view, or None when only a full SORT can say it exactly."""
    current = [uid for uid in view if uid not in changes.vanished] if changes.vanished else view
    members = set(current)
    leaving: set[int] = set()
    entering: list[int] = []
    changed: set[int] = set()
    for uid, flags in changes.flags.items():
        inside = uid in members
        wanted = matches(query, flags)
        if inside and not wanted:
            leaving.add(uid)
        elif wanted and not inside:
            entering.append(uid)
        elif inside:
            changed.add(uid)
    if len(entering) > MAX_INSERTIONS:
        return None
    removed = (set(changes.vanished) & set(view)) | leaving if changes.vanished else leaving
    result = [uid for uid in current if uid not in leaving] if leaving else list(current)
    if not entering:
        return Incremental(result, changed, removed, [])
    field = (query.sort_field or "uid").lower()
    sign = -1 if query.descending else 1
    if field == "uid":
        ordered = sorted(result + entering, reverse=query.descending)
        return Incremental(ordered, changed, removed, entering)
    keys: dict[int, int] = {}

    async def key_of(uids: Sequence[int]) -> bool:
        wanted = [uid for uid in uids if uid not in keys]
        if wanted:
            for uid, summary in (await fetch(wanted)).items():
                key = sort_key(field, summary)
                if key is None:
                    return False
                keys[uid] = sign * key
        return all(uid in keys for uid in uids)

    # The new messages and both ends of the view in one round trip: most arrivals go to an end.
    if not await key_of([*entering, *result[:1], *result[-1:]]):
        return None
    for uid in sorted(entering, key=lambda u: (keys[u], u)):
        position = await _position(result, (keys[uid], uid), keys, key_of)
        if position is None:
            return None
        result.insert(position, uid)
    return Incremental(result, changed, removed, entering)


async def _position(
    view: list[int],
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
