"""Viewer fields: what a folderReport shows of a message, formatted as the spec describes.

E-mail fields show the real name when there is one, else the address; `E-` fields show only
addresses; dates are GMT in the element text with the user's local time in `localTime`; other
headers are MIME-decoded.

A field other than the message metadata (UID, SIZE, INTERNALDATE, FLAGS) is a *column*: its
lower-cased name. A column's *cell* is what every viewer of the message sees, computed once from
the raw header and kept in the shared cache: the display text already escaped for XML, or for a
date column the moment in epoch seconds (the user's time zone is applied when a row is written).
Pure: summaries in, rows out.
"""

from __future__ import annotations

import datetime as dt
import email.header
import email.utils
import re
from collections.abc import Iterable, Sequence

from adapters.protocols import MessageSummary
from bridge.errors import BridgeError, ErrorKind
from bridge.mime.decode import xml_safe
from bridge.views.rows import NO_DATE, Row

ADDRESS_FIELDS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "sender", "return-path", "resent-from", "resent-to",
     "resent-cc", "resent-sender", "disposition-notification-to", "errors-to"}
)  # fmt: skip
DATE_FIELDS = frozenset({"date", "resent-date"})
METADATA = frozenset({"uid", "size", "internaldate", "flags"})
PRIORITY_HEADER = "x-priority"
# X-Priority 1-2 is high, 4-5 low (the number leads; "2 (High)" is common).
PRIORITY = {"1": "High", "2": "High", "4": "Low", "5": "Low"}
# An XML element name made of a header field name: letters, digits, dash, underscore.
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
MAX_FIELDS = 64
# The dates shown: 1900 to 9999 (outside that, a date header is taken as unreadable).
_FIRST_EPOCH = -2208988800
_LAST_EPOCH = 253402300799


def check_fields(names: Iterable[str]) -> tuple[str, ...]:
    fields = tuple(name.strip() for name in names)
    if len(fields) > MAX_FIELDS or not all(_FIELD_NAME.match(name) for name in fields):
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid viewer field name")
    return fields


def column_of(field: str) -> str | None:
    """The cached column a viewer field shows (None for message metadata)."""
    lower = field.lower()
    return None if lower in METADATA else lower


def columns_of(fields: Iterable[str]) -> list[str]:
    return sorted({c for f in fields if (c := column_of(f)) is not None})


def header_of(column: str) -> str:
    """The header field a column is made of."""
    if column == "pty":
        return PRIORITY_HEADER
    if column.startswith("e-"):
        return column[2:]
    return column


def escape_text(text: str) -> str:
    """Element text as XML carries it; characters XML cannot carry are dropped."""
    text = xml_safe(text)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def decode_header(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeDecodeError):
        return value


def _addresses(value: str, names: bool) -> str:
    shown = []
    for real, address in email.utils.getaddresses([decode_header(value)]):
        shown.append(real if names and real else address)
    return ", ".join(item for item in shown if item)


def date_cell(raw: str | None) -> str:
    """Epoch seconds of a date header; "" when there is none, NO_DATE when it cannot be read."""
    if raw is None:
        return ""
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return NO_DATE
    if moment.tzinfo is None:  # "-0000": the time is UTC, its source zone unknown (RFC 5322)
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        epoch = int(moment.timestamp())
    except (OverflowError, ValueError, OSError):
        return NO_DATE
    return str(epoch) if _FIRST_EPOCH <= epoch <= _LAST_EPOCH else NO_DATE


def cell(column: str, raw: str | None) -> str:
    """What a column shows of a raw (unfolded, still MIME-encoded) header value."""
    if column in DATE_FIELDS:
        return date_cell(raw)
    if raw is None:
        return ""
    if column == "pty":
        return PRIORITY.get(raw.strip()[:1], "")
    if column.startswith("e-"):
        return escape_text(_addresses(raw, names=False))
    if column in ADDRESS_FIELDS:
        return escape_text(_addresses(raw, names=True))
    return escape_text(decode_header(raw))


def row_of(summary: MessageSummary, columns: Sequence[str]) -> Row:
    """A summary as its cached row: the cells of `columns` (headers keyed lower-case)."""
    cells = {column: cell(column, summary.headers.get(header_of(column))) for column in columns}
    return Row(summary.uid, summary.flags, summary.size, int(summary.internaldate.timestamp()),
               cells)  # fmt: skip
