"""Viewer fields: what a folderReport shows of a message, formatted as the spec describes.

E-mail fields show the real name when there is one, else the address; `E-` fields show only
addresses; dates are GMT in the element text with the user's local time in `localTime`; other
headers are MIME-decoded. Pure: summaries in, (name, text, attributes) out.
"""

from __future__ import annotations

import datetime as dt
import email.header
import email.utils
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapters.protocols import MessageSummary
from bridge.errors import BridgeError, ErrorKind
from bridge.views.flags import ximss_flags

TIME_FORMAT = "%Y%m%dT%H%M%S"
ADDRESS_FIELDS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "sender", "return-path", "resent-from", "resent-to",
     "resent-cc", "resent-sender", "disposition-notification-to", "errors-to"}
)  # fmt: skip
DATE_FIELDS = frozenset({"date", "resent-date"})
METADATA = frozenset({"uid", "size", "internaldate", "flags"})
PRIORITY_HEADER = "X-Priority"
# X-Priority 1-2 is high, 4-5 low (the number leads; "2 (High)" is common).
PRIORITY = {"1": "High", "2": "High", "4": "Low", "5": "Low"}
# An XML element name made of a header field name: letters, digits, dash, underscore.
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
MAX_FIELDS = 64


@dataclass(frozen=True, slots=True)
class FieldValue:
    name: str
    text: str
    local_time: str | None = None


def check_fields(names: Iterable[str]) -> tuple[str, ...]:
    fields = tuple(name.strip() for name in names)
    if len(fields) > MAX_FIELDS or not all(_FIELD_NAME.match(name) for name in fields):
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid viewer field name")
    return fields


def header_for(field: str) -> str | None:
    """The header to fetch for a viewer field (None for message metadata)."""
    lower = field.lower()
    if lower in METADATA:
        return None
    if lower == "pty":
        return PRIORITY_HEADER
    if lower.startswith("e-"):
        return field[2:]
    return field


def headers_for(fields: Sequence[str]) -> list[str]:
    return sorted({h for f in fields if (h := header_for(f)) is not None})


def _time(moment: dt.datetime, zone: dt.tzinfo) -> tuple[str, str]:
    return moment.astimezone(dt.UTC).strftime(TIME_FORMAT), moment.astimezone(zone).strftime(
        TIME_FORMAT
    )


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


def field_value(field: str, summary: MessageSummary | None, zone: dt.tzinfo) -> FieldValue:
    """One viewer field of one message; an empty value when the message or header is missing."""
    if summary is None:
        return FieldValue(field, "")
    lower = field.lower()
    if lower == "uid":
        return FieldValue(field, str(summary.uid))
    if lower == "size":
        return FieldValue(field, str(summary.size))
    if lower == "flags":
        return FieldValue(field, ximss_flags(summary.flags))
    if lower == "internaldate":
        gmt, local = _time(summary.internaldate, zone)
        return FieldValue(field, gmt, local)
    raw = summary.headers.get(header_for(field) or field)
    if raw is None:
        return FieldValue(field, "")
    if lower == "pty":
        return FieldValue(field, PRIORITY.get(raw.strip()[:1], ""))
    if lower.startswith("e-"):
        return FieldValue(field, _addresses(raw, names=False))
    if lower in ADDRESS_FIELDS:
        return FieldValue(field, _addresses(raw, names=True))
    if lower in DATE_FIELDS:
        try:
            moment = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return FieldValue(field, "")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        gmt, local = _time(moment, zone)
        return FieldValue(field, gmt, local)
    return FieldValue(field, decode_header(raw))
