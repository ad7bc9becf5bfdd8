"""folderReport rows written straight to bytes from cached rows.

A browse of 50 rows built as lxml trees and serialized cost more than the IMAP FETCH it
replaces; cells are kept escaped (`bridge.ximss.fields`), so a row is a join of strings. The
output is byte for byte what `codec.data` plus `xml.sub` would give (a property test holds the
two together): attributes in the order id, folder, index, UID, mode, messages; an empty field
as `<Name></Name>`; dates GMT in the text with `localTime` in the user's zone.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from bridge.views.flags import ximss_flags
from bridge.views.rows import NO_DATE, Row
from bridge.ximss import fields
from bridge.ximss.ops.service import format_time

_ATTRIBUTE = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;",
     "\r": "&#13;"}
)  # fmt: skip


def escape_attribute(value: str) -> str:
    return value.translate(_ATTRIBUTE)


@functools.lru_cache(maxsize=4096)
def _flags_text(flags: frozenset[str]) -> str:
    return fields.escape_text(ximss_flags(flags))


def gmt_and_local(epoch: int, zone: dt.tzinfo) -> tuple[str, str]:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return format_time(moment), format_time(moment.astimezone(zone))


class ReportWriter:
    """The folderReport messages of one request on one folder."""

    def __init__(
        self, request_id: str | None, folder: str, viewer: Sequence[str], zone: dt.tzinfo
    ) -> None:
        head = "<folderReport"
        if request_id is not None:
            head += f' id="{escape_attribute(request_id)}"'
        self._head = f'{head} folder="{escape_attribute(folder)}" index="'
        self._fields = [(name, name.lower(), fields.column_of(name)) for name in viewer]
        self._zone = zone

    def row(
        self,
        index: int,
        uid: int,
        row: Row | None,
        mode: str | None = None,
        messages: int | None = None,
        with_fields: bool = True,
    ) -> bytes:
        parts = [self._head, str(index), '" UID="', str(uid), '"']
        if mode is not None:
            parts += [' mode="', mode, '"']
        if messages is not None:
            parts += [' messages="', str(messages), '"']
        if not with_fields or not self._fields:
            parts.append("/>")
            return "".join(parts).encode()
        parts.append(">")
        for name, lower, column in self._fields:
            parts.append(self._field(name, lower, column, row))
        parts.append("</folderReport>")
        return "".join(parts).encode()

    def _field(self, name: str, lower: str, column: str | None, row: Row | None) -> str:
        text = ""
        local: str | None = None
        if row is None:
            pass
        elif column is None:
            if lower == "uid":
                text = str(row.uid)
            elif lower == "size":
                text = str(row.size)
            elif lower == "flags":
                text = _flags_text(row.flags)
            else:  # internaldate
                text, local = gmt_and_local(row.internal, self._zone)
        elif column in fields.DATE_FIELDS:
            epoch = row.cells.get(column, "")
            if epoch and epoch != NO_DATE:
                text, local = gmt_and_local(int(epoch), self._zone)
        else:
            text = row.cells.get(column, "")
        if local is not None:
            return f'<{name} localTime="{local}">{text}</{name}>'
        return f"<{name}>{text}</{name}>"
