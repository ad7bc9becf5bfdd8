"""A reference model of a folder view: which messages it shows, in which order.

Two users. The property tests build views of random mailboxes here and check that `diff`'s
reports turn one into the next. And the bridge sorts here what IMAP SORT cannot (FLAGS, or any
field on a server without SORT), so the model is the definition, not a sketch of one.

Choices the spec leaves open, made here:

- No `sortField` means mailbox order, which for IMAP is ascending UID.
- Ties break by ascending UID in both directions, as IMAP SORT breaks them by sequence number
  (RFC 5256 applies REVERSE to the key only); views are then fully deterministic, which both
  `diff` and the client's indexes need.
- Strings compare case-insensitively (`str.casefold`), field names match case-insensitively.
- FLAGS sorts by the flags shown to the client: one yes/no per system flag in
  `flags.SYSTEM_ORDER` (so ascending puts unseen messages first), then the other shown names.
- Filters: FLAGS lists per `flags.parse_flag_filter`; From, To and Subject by case-insensitive
  substring. Body and "anything" filters need the message text and stay with IMAP SEARCH; they
  raise NOT_SUPPORTED here, as do fields the model does not carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bridge.errors import BridgeError, ErrorKind
from bridge.views import flags


@dataclass(frozen=True, slots=True)
class Message:
    """What a view needs of one message. `flags` are IMAP flags; times are epoch seconds."""

    uid: int
    flags: frozenset[str]
    size: int
    internaldate: int
    date: int
    from_: str
    to: str
    subject: str


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """The `folderOpen`/`folderReopen` attributes that shape a view."""

    sort_field: str = "UID"
    descending: bool = False
    filter: str | None = None
    filter_field: str | None = None


SortKey = Callable[[Message], Any]
Predicate = Callable[[Message], bool]


def _flags_key(message: Message) -> tuple[Any, ...]:
    return _key_of_flags(message.flags)


# Mailboxes hold few distinct flag sets, so caching by set makes a 100,000-message sort cheap.
@lru_cache(maxsize=4096)
def _key_of_flags(imap_flags: frozenset[str]) -> tuple[Any, ...]:
    shown = {name for name in map(flags.from_imap, imap_flags) if name is not None}
    system = tuple(name in shown for name in flags.SYSTEM_ORDER)
    others = sorted(name.casefold() for name in shown.difference(flags.SYSTEM_ORDER))
    return (*system, tuple(others))


# sortField (casefolded) -> key. Keys of one field are all of one type, so they compare.
SORT_KEYS: dict[str, SortKey] = {
    "uid": lambda m: m.uid,
    "size": lambda m: m.size,
    "internaldate": lambda m: m.internaldate,
    "date": lambda m: m.date,
    "from": lambda m: m.from_.casefold(),
    "to": lambda m: m.to.casefold(),
    "subject": lambda m: m.subject.casefold(),
    "flags": _flags_key,
}

# filterField (casefolded) -> the header text a substring filter searches.
HEADER_FIELDS: dict[str, Callable[[Message], str]] = {
    "from": lambda m: m.from_,
    "to": lambda m: m.to,
    "subject": lambda m: m.subject,
}


def build_view(messages: Iterable[Message], spec: ViewSpec) -> list[int]:
    """The UIDs of the messages `spec` selects, in view order."""
    key = _sort_key(spec.sort_field)
    keep = _predicate(spec)
    selected = sorted((m for m in messages if keep(m)), key=lambda m: m.uid)
    # Python's sort is stable even with reverse=True, so ties stay in ascending UID order.
    selected.sort(key=key, reverse=spec.descending)
    return [m.uid for m in selected]


def _sort_key(field: str) -> SortKey:
    key = SORT_KEYS.get(field.casefold())
    if key is None:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, f"cannot sort by {field} here")
    return key


def _predicate(spec: ViewSpec) -> Predicate:
    text = spec.filter
    if text is None:
        return lambda m: True
    field = (spec.filter_field or "").casefold()
    if field == "flags":
        required, excluded = flags.parse_flag_filter(text)
        need = frozenset(flag.casefold() for flag in required)
        avoid = frozenset(flag.casefold() for flag in excluded)

        def has_flags(m: Message) -> bool:
            present = {flag.casefold() for flag in m.flags}
            return need <= present and avoid.isdisjoint(present)

        return has_flags
    header = HEADER_FIELDS.get(field)
    if header is None:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "this filter needs the server's search")
    wanted = text.casefold()
    return lambda m: wanted in header(m).casefold()
