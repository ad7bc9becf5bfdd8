"""Fast readers for what every message summary carries: the fetched header fields and the
INTERNALDATE. A folder listing reads thousands at once, and the stdlib's general parsers
(email.parser, strptime) were most of its time; these take the common shape directly and hand
anything else to the stdlib, so results never differ."""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
from collections.abc import Sequence

_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# RFC 5322 field names: printable ASCII but the colon.
_NAME_CHARS = frozenset(chr(c) for c in range(33, 127)) - {":"}


def header_values(raw: bytes, fields: Sequence[str]) -> dict[str, str]:
    """Field name (as asked) -> the first such field's value, unfolded, whitespace runs made one
    space; fields not asked for are left out."""
    wanted = {f.lower(): f for f in fields}
    if raw.isascii():
        fast = _ascii_values(raw.decode("ascii"), wanted)
        if fast is not None:
            return fast
    found: dict[str, str] = {}
    for header, value in _HEADER_PARSER.parsebytes(raw).items():
        original = wanted.get(header.lower())
        if original is not None and original not in found:
            found[original] = " ".join(str(value).split())
    return found


def _ascii_values(text: str, wanted: dict[str, str]) -> dict[str, str] | None:
    """The plain case (every line a field or a continuation); None for anything else."""
    pieces: dict[str, list[str]] = {}
    current: list[str] | None = None
    seen = False
    for line in text.split("\r\n"):
        if not line:
            break  # the header's end
        if line[0] in " \t":
            if not seen:
                return None  # a continuation of nothing
            if current is not None:
                current.append(line)
            continue
        seen = True
        name, colon, value = line.partition(":")
        if not colon or not name or not _NAME_CHARS.issuperset(name):
            return None  # not a field: let the stdlib judge it
        original = wanted.get(name.lower())
        if original is None or original in pieces:
            current = None
            continue
        current = pieces[original] = [value]
    return {name: " ".join(" ".join(parts).split()) for name, parts in pieces.items()}


def internal_date(text: str) -> dt.datetime | None:
    """`17-Jul-1996 02:44:25 -0700` (RFC 3501 date-time; the day may be space-padded)."""
    value = text.strip()
    try:
        day, month, rest = value.split("-", 2)
        year, clock, zone = rest.split(" ")
        hour, minute, second = clock.split(":")
        sign = -1 if zone[0] == "-" else 1
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        if zone[0] not in "+-" or len(zone) != 5:
            raise ValueError(zone)
        return dt.datetime(
            int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second),
            tzinfo=dt.timezone(offset),
        )  # fmt: skip
    except (ValueError, KeyError, IndexError, OverflowError):  # Overflow: a 20-digit year
        pass
    try:
        return dt.datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None
