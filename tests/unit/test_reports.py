"""Viewer-field cells and folderReport rows written as bytes: what the spec shows, and byte for
byte what building the element with lxml gives."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.protocols import MessageSummary
from bridge import xml
from bridge.views.flags import ximss_flags
from bridge.views.rows import NO_DATE, Row
from bridge.ximss import codec, fields
from bridge.ximss.reports import ReportWriter, gmt_and_local

ZONE = zoneinfo.ZoneInfo("Europe/Berlin")
ARRIVAL = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ALL_FIELDS = ("From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Return-Path", "Date",
              "Resent-Date", "Subject", "E-From", "E-To", "Pty", "UID", "SIZE", "INTERNALDATE",
              "FLAGS", "X-Mailer")  # fmt: skip
HEADERS = {
    "from": '"Ann Example" <ann@example.test>',
    "to": "bob@example.test, =?UTF-8?B?SsO8cmdlbg==?= <j@example.test>",
    "cc": "Carol <carol@example.test>",
    "bcc": "dave@example.test",
    "reply-to": "Replies <r@example.test>",
    "sender": "<s@example.test>",
    "return-path": "<bounce@example.test>",
    "date": "Sun, 01 Mar 2026 13:30:00 +0100",
    "resent-date": "Mon, 2 Mar 2026 08:00:00 -0000",
    "subject": "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_&_<tags>?=",
    "x-priority": "2 (High)",
    "x-mailer": "Mailer\x01 1.0",
}


def summary(headers: dict[str, str]) -> MessageSummary:
    return MessageSummary(42, frozenset({"\\Seen", "$Forwarded"}), 1234, ARRIVAL, headers)


def render(fields_: tuple[str, ...], headers: dict[str, str]) -> etree._Element:
    columns = fields.columns_of(fields_)
    row = fields.row_of(summary(headers), columns)
    out = ReportWriter("7", "INBOX", fields_, ZONE).row(3, 42, row)
    return etree.fromstring(out)


def test_every_viewer_field_as_the_spec_shows_it() -> None:
    report = render(ALL_FIELDS, HEADERS)
    text = {child.tag: child.text or "" for child in report}
    local = {child.tag: child.get("localTime") for child in report}
    assert report.attrib == {"id": "7", "folder": "INBOX", "index": "3", "UID": "42"}
    assert text["From"] == "Ann Example"
    assert text["To"] == "bob@example.test, Jürgen"
    assert text["Cc"] == "Carol" and text["Bcc"] == "dave@example.test"
    assert text["Reply-To"] == "Replies" and text["Sender"] == "s@example.test"
    assert text["Return-Path"] == "bounce@example.test"
    assert (text["Date"], local["Date"]) == ("20260301T123000", "20260301T133000")
    assert (text["Resent-Date"], local["Resent-Date"]) == ("20260302T080000", "20260302T090000")
    assert text["Subject"] == "Grüße & <tags>"
    assert text["E-From"] == "ann@example.test"
    assert text["E-To"] == "bob@example.test, j@example.test"
    assert text["Pty"] == "High"
    assert (text["UID"], text["SIZE"]) == ("42", "1234")
    assert (text["INTERNALDATE"], local["INTERNALDATE"]) == ("20260301T120000", "20260301T130000")
    assert text["FLAGS"] == "Seen,Forwarded"
    assert text["X-Mailer"] == "Mailer 1.0"  # a control character XML cannot carry is dropped


def test_missing_and_unreadable_headers_show_empty() -> None:
    report = render(("From", "Date", "Pty", "Subject"), {"date": "yesterday", "x-priority": "3"})
    assert [(c.tag, c.text, c.get("localTime")) for c in report] == [
        ("From", None, None), ("Date", None, None), ("Pty", None, None), ("Subject", None, None)
    ]  # fmt: skip
    low = render(("Pty",), {"x-priority": "5 (Lowest)"})
    assert low[0].text == "Low"


def test_date_cells() -> None:
    assert fields.date_cell(None) == ""
    assert fields.date_cell("not a date") == NO_DATE
    assert fields.date_cell("Thu, 01 Jan 1970 00:00:10 +0000") == "10"
    assert fields.date_cell("Fri, 01 Jan 12000 00:00:00 +0000") == NO_DATE


def test_rows_without_a_message_show_empty_fields() -> None:
    out = ReportWriter("1", "f", ("Subject", "FLAGS"), ZONE).row(0, 5, None)
    assert (
        out
        == b'<folderReport id="1" folder="f" index="0" UID="5"><Subject></Subject><FLAGS></FLAGS></folderReport>'
    )


# --------------------------------------------------------------------------- against lxml

xml_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"),
    max_size=12,
).map(lambda s: "".join(c for c in s if c in "\t\n\r" or ord(c) >= 0x20))
names = st.sampled_from(["Subject", "From", "Date", "FLAGS", "UID", "SIZE", "INTERNALDATE", "X-a"])
flag_sets = st.frozensets(
    st.sampled_from(["\\Seen", "\\Deleted", "$Junk", "a&b", "x<y"]), max_size=3
)


def reference(request_id: str | None, folder: str, viewer: tuple[str, ...], index: int,
              row: Row | None, mode: str | None, messages: int | None, with_fields: bool) -> bytes:  # fmt: skip
    """The report as the element-building code wrote it before rows went straight to bytes."""
    element = codec.data("folderReport", request_id, {
        "folder": folder, "index": index, "UID": row.uid if row else 9, "mode": mode,
        "messages": messages,
    })  # fmt: skip
    if with_fields:
        for name in viewer:
            text, local = "", None
            lower = name.lower()
            if row is None:
                pass
            elif lower == "flags":
                text = ximss_flags(row.flags)
            elif lower in ("uid", "size"):
                text = str(row.uid if lower == "uid" else row.size)
            elif lower == "internaldate":
                text, local = gmt_and_local(row.internal, ZONE)
            elif lower == "date":
                epoch = row.cells["date"]
                if epoch and epoch != NO_DATE:
                    text, local = gmt_and_local(int(epoch), ZONE)
            else:
                text = row.cells[lower]
            xml.sub(element, name, {"localTime": local} if local else None, text)
    return xml.serialize(element)


@settings(max_examples=500, deadline=None)
@given(
    request_id=st.one_of(st.none(), xml_text),
    folder=xml_text,
    viewer=st.lists(names, max_size=5, unique=True).map(tuple),
    index=st.integers(0, 10**6),
    flags=flag_sets,
    raw=st.fixed_dictionaries({"subject": xml_text, "from": xml_text, "x-a": xml_text}),
    date=st.one_of(st.just(""), st.just(NO_DATE), st.integers(0, 4_000_000_000).map(str)),
    present=st.booleans(),
    mode=st.sampled_from([None, "added", "updated", "removed"]),
    messages=st.one_of(st.none(), st.integers(0, 10**6)),
    with_fields=st.booleans(),
)
def test_rows_are_what_lxml_would_write(
    request_id: str | None, folder: str, viewer: tuple[str, ...], index: int,
    flags: frozenset[str], raw: dict[str, str], date: str, present: bool, mode: str | None,
    messages: int | None, with_fields: bool,
) -> None:  # fmt: skip
    cells = {column: fields.escape_text(text) for column, text in raw.items()}
    row = Row(9, flags, 77, 1_750_000_000, {**cells, "date": date}) if present else None
    written = ReportWriter(request_id, folder, viewer, ZONE).row(
        index, 9, row, mode, messages, with_fields
    )
    # The reference gets unescaped text (lxml escapes it itself).
    plain = Row(9, flags, 77, 1_750_000_000, {**raw, "date": date}) if present else None
    assert written == reference(
        request_id, folder, viewer, index, plain, mode, messages, with_fields
    )
