"""The `folderSync` reports that turn the view a client holds into the folder's current view.

A XIMSS client never rebuilds a folder: it holds an array of messages in view order and edits it
only as `folderReport` messages say (spec, "Mailbox Operations"):

- ``removed`` at index i: the element at i goes away, every later index drops by one;
- ``added`` at index i: a new element goes in at i, every index >= i grows by one;
- ``updated`` at index i: the element at i gets new viewer-field data.

So the bridge keeps, per open folder, the *logical* view it last told the client about, and on
`folderSync` must send reports that, applied in order, give exactly the current view. `diff`
computes them, `apply` is the client's side (used by the tests, and a checker of report streams).

The order of reports is chosen so each index is easy to state and for clients to follow:

1. removals in *descending* old index, as in the spec's example (35, then 2): removing from the
   back never shifts the indexes of the removals still to come, so each is the element's index
   in the old view;
2. additions in *ascending* final index: when the element that ends up at j is inserted, every
   element before it in the new view is already in place, so each index is the final one;
3. updates for kept elements, in ascending (final) index.

A message whose sort key changed (a FLAGS-sorted view after a flag change, say) must move, and
the only way to move an element is to remove it and add it again. To send as few reports as
possible, the elements that stay are a longest increasing subsequence of the surviving elements'
new positions taken in old order; that is the largest set that is already in the right relative
order. It is O(n log n), with a linear fast path for the common case where nothing moved, so
100,000-message folders diff in tens of milliseconds. A moved message is not also reported
``updated``: its ``added`` report carries its current data.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Mode = Literal["removed", "added", "updated"]


@dataclass(frozen=True, slots=True)
class Report:
    """One `folderReport` of a `folderSync`.

    `messages` is the folder size once the client has applied this report; for ``updated`` it is
    the (unchanged) size, which the wire omits.
    """

    mode: Mode
    index: int
    uid: int
    messages: int


def diff(old: Sequence[int], new: Sequence[int], changed: Collection[int]) -> list[Report]:
    """Reports that turn `old` (the client's view, UIDs in view order) into `new`.

    `changed` holds the UIDs whose displayed data changed; UIDs in it that are in neither view
    are ignored. Raises ValueError if either view repeats a UID.
    """
    new_pos = _positions(new, "new")
    if len(set(old)) != len(old):
        raise ValueError("duplicate UID in the old view")

    # For each old element, its position in the new view, or -1 if it is gone.
    old_to_new = [new_pos.get(uid, -1) for uid in old]
    survivors = [j for j in old_to_new if j >= 0]
    kept = bytearray(len(new))  # kept[j] == 1: new[j] stays where it is relative to the others
    if survivors == sorted(survivors):  # UIDs are distinct, so this means strictly increasing
        for j in survivors:
            kept[j] = 1
    else:
        for j in _longest_increasing(survivors):
            kept[j] = 1

    reports: list[Report] = []
    size = len(old)
    for i in range(len(old) - 1, -1, -1):
        j = old_to_new[i]
        if j < 0 or not kept[j]:
            size -= 1
            reports.append(Report("removed", i, old[i], size))
    for j, is_kept in enumerate(kept):
        if not is_kept:
            size += 1
            reports.append(Report("added", j, new[j], size))
    updated = sorted(
        j for j in (new_pos.get(uid, -1) for uid in set(changed)) if j >= 0 and kept[j]
    )
    reports.extend(Report("updated", j, new[j], size) for j in updated)
    return reports


def apply(view: list[int], reports: Iterable[Report]) -> list[int]:
    """Apply reports as a client does, returning a new list; `view` is left alone.

    Every report is checked against the view at the moment it applies (index in range, the UID
    at the index for ``removed``/``updated``, `messages` equal to the resulting size), so this is
    also the oracle for report streams: it raises ValueError on the first report a client could
    not apply. Each ``removed``/``added`` costs O(len(view)); a session that sent `diff(old,
    new)` should simply adopt `new` as its logical view rather than replay the reports.
    """
    result = list(view)
    for report in reports:
        _APPLY[report.mode](result, report)
        if report.messages != len(result):
            raise ValueError(f"{report}: the folder now has {len(result)} messages")
    return result


def _apply_removed(view: list[int], report: Report) -> None:
    _check_at(view, report)
    del view[report.index]


def _apply_added(view: list[int], report: Report) -> None:
    if not 0 <= report.index <= len(view):
        raise ValueError(f"{report}: index out of range for {len(view)} messages")
    view.insert(report.index, report.uid)


def _check_at(view: list[int], report: Report) -> None:
    if not 0 <= report.index < len(view):
        raise ValueError(f"{report}: index out of range for {len(view)} messages")
    if view[report.index] != report.uid:
        raise ValueError(f"{report}: the message at that index is UID {view[report.index]}")


# The client's semantics per mode, as a table; `updated` changes data, never positions.
_APPLY: dict[str, Callable[[list[int], Report], None]] = {
    "removed": _apply_removed,
    "added": _apply_added,
    "updated": _check_at,
}


def _positions(view: Sequence[int], name: str) -> dict[int, int]:
    positions = {uid: i for i, uid in enumerate(view)}
    if len(positions) != len(view):
        raise ValueError(f"duplicate UID in the {name} view")
    return positions


def _longest_increasing(values: Sequence[int]) -> list[int]:
    """One longest strictly increasing subsequence of distinct `values` (patience sorting)."""
    tails: list[int] = []  # tails[k]: smallest last value of an increasing run of length k + 1
    tail_at: list[int] = []  # tail_at[k]: where in `values` that last value is
    previous = [-1] * len(values)  # link from each element to its predecessor in its run
    for i, value in enumerate(values):
        if not tails or value > tails[-1]:
            k = len(tails)
            tails.append(value)
            tail_at.append(i)
        else:
            k = bisect_left(tails, value)
            tails[k] = value
            tail_at[k] = i
        if k:
            previous[i] = tail_at[k - 1]
    result: list[int] = []
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        result.append(values[i])
        i = previous[i]
    result.reverse()
    return result
