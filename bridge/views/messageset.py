"""XIMSS message sets: which messages of an open folder a request means.

A message set is the body of `messageCopy`, `messageMove`, `messageMark`, `messageRemove` and
`folderBrowse`: either `<UID>` elements or `<index>` elements (never both), each holding one number
or a `from`/`till` range (spec, "Mailbox Operations"). Parsing is strict because a lax parser
here turns a client bug into an operation on the wrong messages: anything ambiguous is refused
with BAD_REQUEST rather than guessed at.

Ranges are kept normalized (sorted, overlapping and adjacent ones merged) so equal sets compare
equal and resolving never visits a message twice. Resolving is against the *logical* view, the one
the client holds, because that is what its indexes refer to; a range like `1:4294967295` costs
O(log n) per range, never O(range).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from bridge.errors import BridgeError, ErrorKind

# How many <UID>/<index> elements one set may hold; ranges make bigger sets unnecessary.
MAX_MESSAGE_SET_ELEMENTS = 10_000
# IMAP UIDs are unsigned 32-bit numbers; no index can be larger either.
MAX_NUMBER = 2**32 - 1

_NUMBER = re.compile(r"[0-9]{1,10}")  # ASCII only: int() would also take "٣", "+3" and "1_0"
_KINDS = {"UID": True, "index": False}  # element name -> by_uid


@dataclass(frozen=True, slots=True)
class MessageSet:
    """UIDs or 0-based view indexes, as sorted, disjoint, non-adjacent inclusive ranges."""

    by_uid: bool
    ranges: tuple[tuple[int, int], ...]


def parse_message_set(
    element: etree._Element, max_elements: int = MAX_MESSAGE_SET_ELEMENTS
) -> MessageSet:
    """Read the `<UID>`/`<index>` children of a request element.

    Raises BridgeError(BAD_REQUEST) for other child elements, a mix of UID and index elements, an
    empty set, more than `max_elements` elements, or a number that is not a plain decimal in
    0..2**32-1, a range with `till` < `from`, or an element with both a body and a range.
    """
    by_uid: bool | None = None
    ranges: list[tuple[int, int]] = []
    for child in element:
        if not isinstance(child.tag, str):  # comments and PIs; the codec's parser drops them
            continue
        kind = _KINDS.get(child.tag)
        if kind is None:
            raise _bad(f"unexpected <{child.tag}> in a message set")
        if by_uid is None:
            by_uid = kind
        elif by_uid != kind:
            raise _bad("a message set cannot mix UID and index elements")
        if len(ranges) == max_elements:
            raise _bad(f"a message set may have at most {max_elements} elements")
        ranges.append(_range(child))
    if by_uid is None:
        raise _bad("empty message set")
    return MessageSet(by_uid, _normalize(ranges))


def resolve(ms: MessageSet, view: Sequence[int]) -> list[int]:
    """The UIDs of `view` (UIDs in view order) that the set selects.

    Index sets give view order and ignore indexes past the end of the view; UID sets give
    ascending UID order and only UIDs present in the view.
    """
    if not ms.by_uid:
        return [view[i] for i in resolve_indexes(ms, len(view))]
    uids = sorted(view)
    selected: list[int] = []
    for low, high in ms.ranges:
        selected.extend(uids[bisect_left(uids, low) : bisect_right(uids, high)])
    return selected


def resolve_indexes(ms: MessageSet, size: int) -> list[int]:
    """The indexes an index set selects in a view of `size` messages, ascending (folderBrowse)."""
    if ms.by_uid:
        raise ValueError("resolve_indexes needs an index set")
    indexes: list[int] = []
    for low, high in ms.ranges:
        if low >= size:
            break
        indexes.extend(range(low, min(high, size - 1) + 1))
    return indexes


def _range(child: etree._Element) -> tuple[int, int]:
    low_text, high_text = child.get("from"), child.get("till")
    body = (child.text or "").strip()
    if low_text is None and high_text is None:
        value = _number(body, child.tag)
        return value, value
    if low_text is None or high_text is None:
        raise _bad(f"<{child.tag}> needs both from and till")
    if body:
        raise _bad(f"<{child.tag}> cannot have both a value and a range")
    low, high = _number(low_text, child.tag), _number(high_text, child.tag)
    if high < low:
        raise _bad(f"<{child.tag}> range has till < from")
    return low, high


def _number(text: str, tag: object) -> int:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise _bad(f"<{tag}> needs a non-negative decimal number")
    value = int(text)
    if value > MAX_NUMBER:
        raise _bad(f"<{tag}> number out of range")
    return value


def _normalize(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return tuple(merged)


def _bad(detail: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, detail)
