"""LISTFOLDER rows (bridge/xmap/listing.py): attachment counts from MIME structures, the message
date, and files told apart from messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest

from adapters.protocols import MessageSummary, MimePart
from bridge.xmap import files, listing
from bridge.xmap.flags import XmapFlag
from bridge.xmap.responses import FileHeader, MessageHeader

ARRIVED = dt.datetime(2024, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


def leaf(
    mime: str,
    section: str = "1",
    *,
    disposition: str | None = None,
    filename: str | None = None,
    name: str | None = None,
) -> MimePart:
    maintype, _, subtype = mime.partition("/")
    params = {"name": name} if name else {}
    disposition_params = {"filename": filename} if filename else {}
    return MimePart(section, maintype, subtype, params, disposition=disposition,
                    disposition_params=disposition_params)  # fmt: skip


def multi(subtype: str, *children: MimePart, section: str = "") -> MimePart:
    return MimePart(section, "multipart", subtype, {"boundary": "b"}, children=children)


def enclosed(section: str, inner: MimePart) -> MimePart:
    """A message/rfc822 part: its one child is the enclosed message's top part."""
    return MimePart(section, "message", "rfc822", children=(inner,))


TEXT = leaf("text/plain")
HTML = leaf("text/html", "2")
PDF = leaf("application/pdf", "2", disposition="attachment", filename="q1.pdf")

SHAPES: dict[str, tuple[MimePart | None, int]] = {
    "no structure fetched": (None, 0),
    "plain text": (TEXT, 0),
    "html only": (leaf("text/html"), 0),
    "mixed: text + pdf": (multi("mixed", TEXT, PDF), 1),
    "mixed: text + unnamed pdf": (multi("mixed", TEXT, leaf("application/pdf", "2")), 1),
    "alternative: text + html": (multi("alternative", TEXT, HTML), 0),
    "mixed(alternative(text, html), pdf, image)": (
        multi(
            "mixed",
            multi("alternative", leaf("text/plain", "1.1"), leaf("text/html", "1.2"), section="1"),
            leaf("application/pdf", "2", disposition="attachment", filename="a.pdf"),
            leaf("image/png", "3", disposition="attachment", filename="b.png"),
        ),
        2,
    ),
    "related(html, inline image)": (
        multi("related", leaf("text/html"), leaf("image/png", "2", disposition="inline")),
        1,
    ),
    "alternative(text, related(html, image))": (
        multi(
            "alternative",
            TEXT,
            multi("related", leaf("text/html", "2.1"), leaf("image/gif", "2.2"), section="2"),
        ),
        1,
    ),
    "single-part pdf with a filename": (
        leaf("application/pdf", disposition="attachment", filename="q1.pdf"),
        1,
    ),
    "single-part pdf named by Content-Type only": (leaf("application/pdf", name="q1.pdf"), 1),
    "mixed: text + message/rfc822": (
        multi("mixed", TEXT, enclosed("2", multi("mixed", TEXT, PDF, section="2"))),
        1,
    ),
    "mixed: text + text attachment": (
        multi("mixed", TEXT, leaf("text/plain", "2", disposition="attachment", filename="n.txt")),
        1,
    ),
    "mixed: text + inline text with a filename": (
        multi("mixed", TEXT, leaf("text/plain", "2", disposition="inline", filename="n.txt")),
        1,
    ),
    "mixed: text + second inline text part": (multi("mixed", TEXT, leaf("text/plain", "2")), 0),
    "mixed: first part is an attachment": (
        multi("mixed", leaf("application/zip", disposition="attachment", filename="z.zip"), TEXT),
        1,
    ),
    "nested mixed": (
        multi("mixed", multi("mixed", TEXT, PDF, section="1"), leaf("image/jpeg", "2")),
        2,
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_attachment_count(shape: str) -> None:
    structure, expected = SHAPES[shape]
    assert listing.attachment_count(structure) == expected


FILE = frozenset({"\\Seen", files.FILE_KEYWORD})


def summary(
    headers: Mapping[str, str],
    *,
    flags: frozenset[str] = frozenset(),
    size: int = 1234,
    structure: MimePart | None = None,
) -> MessageSummary:
    return MessageSummary(7, flags, size, ARRIVED, headers, structure)


def test_message_date_is_the_date_header_else_the_arrival() -> None:
    dated = summary({"Date": "Sat, 22 Apr 2000 10:00:00 +0200"})
    assert listing.message_date(dated) == dt.datetime(
        2000, 4, 22, 10, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )
    assert listing.message_date(summary({})) == ARRIVED
    assert listing.message_date(summary({"Date": ""})) == ARRIVED


@pytest.mark.parametrize(
    "raw",
    [
        "garbage",
        "Tue, 31 Feb 2003 10:52:37 +0000",
        "Tue, 1 Jul 2003 25:52:37 +0000",
        "Tue, 1 Jul 2003 10:52:37 +9999",
        "1 Jul 99999 10:52:37 +0000",
        # Numbers too big for C: OverflowError, not ValueError.
        "1 Jul 99999999999999999999 10:52:37 +0000",
        "Tue, 1 Jul 2003 10:52:37 +99999999999999999999",
        "1 Jul 2003 10:52:99999999999999999999999 +0000",
    ],
)
def test_a_broken_date_header_falls_back_to_the_arrival(raw: str) -> None:
    assert listing.message_date(summary({"Date": raw})) == ARRIVED


def test_a_date_without_a_zone_is_kept_naive() -> None:
    # format_date (responses.py) takes a naive datetime as UTC.
    got = listing.message_date(summary({"Date": "Tue, 1 Jul 2003 10:52:37 -0000"}))
    assert got == dt.datetime(2003, 7, 1, 10, 52, 37)


def test_message_row() -> None:
    headers = {
        "Date": "Sat, 22 Apr 2000 10:00:00 +0000",
        "From": "=?utf-8?q?Ren=C3=A9?= <rene@x.test>",
        "To": "bob@x.test",
        "Subject": "=?utf-8?b?SGVsbG8gd8O2cmxk?=",
    }
    structure = multi("mixed", TEXT, PDF)
    row = listing.row("INBOX", summary(headers, flags=frozenset({"\\Seen"}), structure=structure),
                      42)  # fmt: skip
    assert isinstance(row, MessageHeader)
    assert row.handle == 42
    assert row.sender == "René <rene@x.test>"
    assert row.recipients == "bob@x.test"
    assert row.subject == "Hello wörld"
    assert row.attachments == 1
    assert row.length == 1234
    assert row.date == dt.datetime(2000, 4, 22, 10, tzinfo=dt.UTC)
    assert isinstance(row.status, XmapFlag)
    unseen = listing.row("INBOX", summary(headers), 42)
    assert isinstance(unseen, MessageHeader) and unseen.status != row.status


def test_a_message_row_without_headers() -> None:
    row = listing.row("INBOX", summary({}), 1)
    assert isinstance(row, MessageHeader)
    assert (row.sender, row.recipients, row.subject, row.attachments) == ("", "", "", 0)
    assert row.date == ARRIVED


def test_a_message_row_needs_its_handle() -> None:
    with pytest.raises(ValueError):
        listing.row("INBOX", summary({"Subject": "x"}), None)


def test_file_row() -> None:
    headers = {
        "Date": "Sat, 22 Apr 2000 10:00:00 +0000",  # the file's own date is its upload
        files.FILE_FIELD: files.encode_name("q1 100%.pdf"),
        files.LENGTH_FIELD: "48213",
    }
    file_summary = summary(headers, size=70000, flags=FILE)
    assert listing.is_file(file_summary)
    row = listing.row("Reports/2024", file_summary, None)
    assert row == FileHeader(name="Reports/2024/q1 100%.pdf", date=ARRIVED, length=48213)
    # A file row ignores any handle it is given: files have none.
    assert listing.row("Reports/2024", file_summary, 9) == row


@pytest.mark.parametrize("length", ["", "lots", "-5", "1_000", "\u0661\u0662", "+7"])
def test_a_file_with_a_bad_length_shows_its_stored_size(length: str) -> None:
    headers = {files.FILE_FIELD: "a.bin", files.LENGTH_FIELD: length}
    row = listing.row("F", summary(headers, size=999, flags=FILE), None)
    assert isinstance(row, FileHeader) and row.length == 999


def test_messages_are_not_files() -> None:
    assert not listing.is_file(summary({"Subject": "q1.pdf"}, flags=FILE))
    assert not listing.is_file(summary({files.FILE_FIELD: ""}, flags=FILE))
    assert listing.is_file(summary({files.FILE_FIELD: "x"}, flags=FILE))
    assert listing.is_file(summary({files.FILE_FIELD: "x"}, flags=frozenset({"$xmapfile"})))


def test_a_mail_carrying_the_file_header_is_a_message() -> None:
    """Anyone can send the user a mail with an X-XMAP-File header: without the keyword only the
    bridge sets when it stores a file, it is a message like any other."""
    spoofed = summary({files.FILE_FIELD: "report.pdf", "Subject": "report"})
    assert not listing.is_file(spoofed)
    assert isinstance(listing.row("INBOX", spoofed, 5), MessageHeader)


def test_header_fields_asked_for() -> None:
    for field in ("Date", "From", "To", "Subject", files.FILE_FIELD, files.LENGTH_FIELD):
        assert field in listing.HEADER_FIELDS
