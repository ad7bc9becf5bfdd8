"""XMAP message flags <-> IMAP flags, as tables.

xmap-0.90.txt line 30: "MessageStatus can assume one of these values: READ, NEW, ANSWERED,
FORWARDED, DRAFT". DESIGN.md section 6 maps them onto IMAP (`FLAG_TABLE`). The text is silent on
two things, decided here:

- Requests (`MessageFlags="FLAGS"`, lines 131 and 136, plural) may name several words, separated
  by spaces, commas or `|`, matched case-insensitively; an empty value means no flag (NEW).
  READ together with NEW is refused: they are the two states of one IMAP flag.
- Responses (`MessageFlags="MessageStatus"`, lines 28 and 174) carry exactly one word, as line 30
  says: the first of `STATUS_PRECEDENCE` that holds. A message is shown as the most telling state
  it is in (a draft before an answered message before a merely read one); the others are implied
  or lost in that one word, which is the price of the text's single value.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable


class XmapFlag(enum.Enum):
    READ = "READ"
    NEW = "NEW"
    ANSWERED = "ANSWERED"
    FORWARDED = "FORWARDED"
    DRAFT = "DRAFT"


SEEN = "\\Seen"

# XMAP word, IMAP flag, and whether the word means the flag is set (True) or absent (False).
FLAG_TABLE: tuple[tuple[XmapFlag, str, bool], ...] = (
    (XmapFlag.READ, SEEN, True),
    (XmapFlag.NEW, SEEN, False),
    (XmapFlag.ANSWERED, "\\Answered", True),
    (XmapFlag.FORWARDED, "$Forwarded", True),
    (XmapFlag.DRAFT, "\\Draft", True),
)

STATUS_PRECEDENCE: tuple[XmapFlag, ...] = (
    XmapFlag.DRAFT,
    XmapFlag.ANSWERED,
    XmapFlag.FORWARDED,
    XmapFlag.READ,
    XmapFlag.NEW,
)

_BY_WORD = {flag.value: flag for flag in XmapFlag}
_SEPARATORS = re.compile(r"[\s,|]+")


def parse_flags(value: str) -> frozenset[XmapFlag]:
    """The words of a request's MessageFlags; ValueError names the first bad one."""
    flags: set[XmapFlag] = set()
    for word in _SEPARATORS.split(value.strip()):
        if not word:
            continue
        flag = _BY_WORD.get(word.upper())
        if flag is None:
            raise ValueError(f"unknown message flag {word!r}")
        flags.add(flag)
    if {XmapFlag.READ, XmapFlag.NEW} <= flags:
        raise ValueError("READ and NEW exclude each other")
    return frozenset(flags)


def imap_flags(flags: Iterable[XmapFlag]) -> frozenset[str]:
    """The IMAP flags to store for these words (NEW stores nothing: it is \\Seen absent)."""
    wanted = set(flags)
    return frozenset(imap for word, imap, is_set in FLAG_TABLE if is_set and word in wanted)


def xmap_flags(imap: Iterable[str]) -> frozenset[XmapFlag]:
    """Every XMAP word that holds for a message with these IMAP flags (case-insensitive, as IMAP
    compares flags); exactly one of READ and NEW is always among them."""
    present = {flag.casefold() for flag in imap}
    return frozenset(
        word for word, flag, is_set in FLAG_TABLE if (flag.casefold() in present) == is_set
    )


def message_status(imap: Iterable[str]) -> XmapFlag:
    """The one MessageStatus word a MESSAGEHEADER shows (line 30)."""
    held = xmap_flags(imap)
    return next(word for word in STATUS_PRECEDENCE if word in held)


def format_flags(flags: Iterable[XmapFlag]) -> str:
    """Words in table order, space-separated (the form `parse_flags` reads back)."""
    wanted = set(flags)
    return " ".join(word.value for word, _, _ in FLAG_TABLE if word in wanted)
