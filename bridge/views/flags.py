"""XIMSS message flag names <-> IMAP flags and keywords, as tables.

XIMSS names flags by words (`Seen`, `Media`, `Label3`) and lets filters and `messageMark` say
"not set" / "clear" with *negative names* (`Unseen`). IMAP has five settable system flags, the
read-only `\\Recent`, and keywords. The spec defers the list of names to a "Mailboxes" section
our copy lacks, so the tables below are the definition this bridge uses (CommuniGate's names
where known), and the tables are the documentation:

- `XIMSS_TO_IMAP`: the named flags. System flags map to `\\Flag`; the others to the `$Keyword`
  form that RFC 5788's registry and mail clients use (`$Forwarded`, `$MDNSent`, `$Junk`, ...).
- `NEGATIVE_NAMES`: "Un" + name for the five system flags (as CommuniGate does), "Not" + name for
  `Recent` and the named keywords. `Junk` has none: `NotJunk` is a flag of its own (`$NotJunk`).
- Any other name is an IMAP keyword of the same spelling, if it is a valid IMAP atom, so clients
  can use their own tags. Such keywords have no negative name; they are only set.

Names are matched case-insensitively, as IMAP matches flags. An IMAP keyword whose spelling is
a XIMSS name (a keyword `Seen` without the backslash, say) is hidden from XIMSS clients: shown as
is it would be read back as a different flag, and would claim a state the message is not in.
"""

from __future__ import annotations

from collections.abc import Iterable

from bridge.errors import BridgeError, ErrorKind

# Shown first, in this order, in <FLAGS>; the rest follow sorted.
SYSTEM_ORDER = ("Seen", "Answered", "Flagged", "Deleted", "Draft", "Recent")

XIMSS_TO_IMAP: dict[str, str] = {
    "Seen": "\\Seen",
    "Answered": "\\Answered",
    "Flagged": "\\Flagged",
    "Deleted": "\\Deleted",
    "Draft": "\\Draft",
    "Recent": "\\Recent",
    "Forwarded": "$Forwarded",
    "Redirected": "$Redirected",
    "MDNSent": "$MDNSent",
    "Junk": "$Junk",
    "NotJunk": "$NotJunk",
    "Media": "$Media",
    **{f"Label{n}": f"$Label{n}" for n in range(1, 8)},
}

NEGATIVE_NAMES: dict[str, str] = {
    "Unseen": "Seen",
    "Unanswered": "Answered",
    "Unflagged": "Flagged",
    "Undeleted": "Deleted",
    "Undraft": "Draft",
    "NotRecent": "Recent",
    "NotForwarded": "Forwarded",
    "NotRedirected": "Redirected",
    "NotMDNSent": "MDNSent",
    "NotMedia": "Media",
    **{f"NotLabel{n}": f"Label{n}" for n in range(1, 8)},
}

# IMAP maintains \Recent itself; no client can set or clear it.
READ_ONLY = frozenset({"\\Recent"})

# Keywords are atoms (RFC 3501 9): no atom-specials, CTLs or non-ASCII; a comma would split the
# XIMSS list. Leading backslashes are system flags, which only the table may produce.
_NOT_IN_KEYWORD = frozenset('(){ %*"\\],') | {chr(c) for c in range(0x20)} | {"\x7f"}
MAX_KEYWORD_LENGTH = 256

_BY_NAME = {name.casefold(): imap for name, imap in XIMSS_TO_IMAP.items()}
_BY_IMAP = {imap.casefold(): name for name, imap in XIMSS_TO_IMAP.items()}
_NEGATIVE = {name.casefold(): XIMSS_TO_IMAP[flag] for name, flag in NEGATIVE_NAMES.items()}
_RESERVED = _BY_NAME.keys() | _NEGATIVE.keys()
_SYSTEM_RANK = {name: rank for rank, name in enumerate(SYSTEM_ORDER)}


def to_imap(name: str) -> str:
    """The IMAP flag for a positive XIMSS flag name.

    BAD_REQUEST for a negative name or a name that cannot be an IMAP keyword.
    """
    key = name.casefold()
    known = _BY_NAME.get(key)
    if known is not None:
        return known
    if key in _NEGATIVE or not _is_keyword(name):
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid flag name")
    return name


def from_imap(flag: str) -> str | None:
    """The XIMSS name for an IMAP flag, or None for flags XIMSS clients are not shown.

    Not shown: `\\*` and other backslash flags outside the table, and keywords that are not
    valid XIMSS names or that collide with one (see the module docstring).
    """
    key = flag.casefold()
    known = _BY_IMAP.get(key)
    if known is not None:
        return known
    if key in _RESERVED or not _is_keyword(flag):
        return None
    return flag


def ximss_flags(imap_flags: Iterable[str]) -> str:
    """The `<FLAGS>` text: system flags in SYSTEM_ORDER, then the rest sorted, each once."""
    names = {name for name in map(from_imap, imap_flags) if name is not None}
    ordered = sorted(
        names, key=lambda name: (_SYSTEM_RANK.get(name, len(SYSTEM_ORDER)), name.casefold(), name)
    )
    return ",".join(ordered)


def parse_mark(flags_attr: str) -> tuple[list[str], list[str]]:
    """`messageMark flags="Seen,Unflagged"` -> (IMAP flags to add, IMAP flags to remove).

    BAD_REQUEST for an empty list, an invalid name, `Recent`/`NotRecent`, or a flag both set
    and cleared.
    """
    add, remove = _split(flags_attr)
    if not add and not remove:
        raise BridgeError(ErrorKind.BAD_REQUEST, "no flags to mark")
    if READ_ONLY.intersection(add) or READ_ONLY.intersection(remove):
        raise BridgeError(ErrorKind.BAD_REQUEST, "the Recent flag cannot be changed")
    if {flag.casefold() for flag in add} & {flag.casefold() for flag in remove}:
        raise BridgeError(ErrorKind.BAD_REQUEST, "a flag cannot be both set and cleared")
    return add, remove


def parse_flag_filter(filter_attr: str) -> tuple[list[str], list[str]]:
    """`filterField="FLAGS" filter="Media,Unseen"` -> (IMAP flags required, IMAP flags excluded).

    An empty filter selects every message; a filter that requires and excludes the same flag
    selects none, which is what it says.
    """
    return _split(filter_attr)


def _split(text: str) -> tuple[list[str], list[str]]:
    positive: dict[str, str] = {}  # keyed by casefold: "seen,SEEN" is one flag
    negative: dict[str, str] = {}
    for item in text.split(","):
        name = item.strip()
        if not name:
            continue
        cleared = _NEGATIVE.get(name.casefold())
        if cleared is not None:
            negative.setdefault(cleared.casefold(), cleared)
        else:
            flag = to_imap(name)
            positive.setdefault(flag.casefold(), flag)
    return list(positive.values()), list(negative.values())


def _is_keyword(name: str) -> bool:
    return (
        0 < len(name) <= MAX_KEYWORD_LENGTH and name.isascii() and _NOT_IN_KEYWORD.isdisjoint(name)
    )
