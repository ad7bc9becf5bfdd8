"""iMIP mail: multipart/alternative with the iTIP calendar, parsed back by the stdlib and
icalendar."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from bridge.calendar import itip
from bridge.calendar.imip import imip_message
from bridge.errors import BridgeError, ErrorKind

NOW = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)

ITEM = Calendar.from_ical(
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Client//EN\r\nBEGIN:VEVENT\r\n"
    "UID:meeting-1@example.com\r\nDTSTAMP:20240101T000000Z\r\nSEQUENCE:0\r\n"
    "DTSTART:20240510T080000Z\r\nDTEND:20240510T090000Z\r\n"
    "SUMMARY:Grüße aus Köln: eine lange Besprechung mit sehr vielen Teilnehmern und Themen\r\n"
    "ORGANIZER;CN=Boss:mailto:boss@company.dom\r\n"
    "ATTENDEE;RSVP=TRUE:mailto:boy@company.dom\r\nATTENDEE:mailto:girl@company.dom\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def compose(message: Calendar, **changes: object) -> bytes:
    args: dict[str, object] = {
        "sender": "boss@company.dom",
        "sender_name": "Big Boss",
        "recipients": ["boy@company.dom", "girl@company.dom"],
        "subject": "Invitation: Planning",
        "body": "You are invited.\n",
        "now": NOW,
        "hostname": "bridge.example",
    }
    args.update(changes)
    return imip_message(message, **args)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@pytest.mark.parametrize(
    ("build", "method"),
    [
        (lambda: itip.request(ITEM, now=NOW), "REQUEST"),
        (lambda: itip.cancel(ITEM, comment="Off", now=NOW), "CANCEL"),
        (lambda: itip.reply(ITEM, "boy@company.dom", "ACCEPTED", now=NOW), "REPLY"),
    ],
)
def test_message_parses_back_with_its_method(build: object, method: str) -> None:
    message: Calendar = build()  # type: ignore[operator]
    data = compose(message)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    msg = parse(data)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["MIME-Version"] == "1.0"
    plain, calendar = list(msg.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n") == "You are invited.\n"
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == method
    assert calendar.get_content_charset() == "utf-8"
    assert "MIME-Version" not in calendar
    back = Calendar.from_ical(calendar.get_content())
    assert back == message
    assert str(back["METHOD"]) == method


def test_headers() -> None:
    msg = parse(compose(itip.request(ITEM, now=NOW), message_id="<fixed@bridge.example>"))
    assert msg["From"] == "Big Boss <boss@company.dom>"
    assert msg["To"] == "boy@company.dom, girl@company.dom"
    assert msg["Subject"] == "Invitation: Planning"
    assert msg["Date"].datetime == NOW
    assert msg["Message-ID"] == "<fixed@bridge.example>"
    generated = parse(compose(itip.request(ITEM, now=NOW)))["Message-ID"]
    assert generated.startswith("<ximss-") and generated.endswith("@bridge.example>")


def test_transfer_encodings() -> None:
    data = compose(itip.request(ITEM, now=NOW), body="Plain ASCII\n")
    plain, calendar = list(parse(data).iter_parts())
    assert plain["Content-Transfer-Encoding"] == "7bit"
    assert calendar["Content-Transfer-Encoding"] == "8bit"  # UTF-8 SUMMARY, folded lines
    ascii_item = Calendar.from_ical(ITEM.to_ical().decode().replace("Grüße aus Köln", "Hello"))
    data = compose(itip.request(ascii_item, now=NOW), body="Zeile " + "ä" * 200 + "\n")
    plain, calendar = list(parse(data).iter_parts())
    assert calendar["Content-Transfer-Encoding"] == "7bit"
    assert plain["Content-Transfer-Encoding"] in ("quoted-printable", "base64")  # a long line
    assert plain.get_content().replace("\r\n", "\n") == "Zeile " + "ä" * 200 + "\n"


def test_non_ascii_header_text_and_no_header_injection() -> None:
    data = compose(
        itip.request(ITEM, now=NOW),
        sender_name="Jürgen\r\nBcc: spy@evil.example",
        subject="Einladung: Grüße\nBcc: spy@evil.example",
    )
    assert all(line.isascii() for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))
    msg = parse(data)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Einladung: Grüße Bcc: spy@evil.example"
    assert msg["From"].addresses[0].display_name == "Jürgen Bcc: spy@evil.example"


@pytest.mark.parametrize("recipient", ["not an address", "a@b@c", "<x@y>"])
def test_unwritable_addresses_are_bad_requests(recipient: str) -> None:
    with pytest.raises(BridgeError) as err:
        compose(itip.request(ITEM, now=NOW), recipients=[recipient])
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_caller_mistakes_are_value_errors() -> None:
    with pytest.raises(ValueError):
        compose(ITEM)  # no METHOD
    with pytest.raises(ValueError):
        compose(itip.request(ITEM, now=NOW), recipients=[])
    with pytest.raises(ValueError):
        compose(itip.request(ITEM, now=NOW), now=dt.datetime(2024, 1, 1))


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=100, deadline=None)
@given(subject=TEXT, body=TEXT, name=TEXT)
def test_any_text_parses_back(subject: str, body: str, name: str) -> None:
    data = compose(itip.request(ITEM, now=NOW), subject=subject, body=body, sender_name=name)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    msg = parse(data)
    assert msg["Bcc"] is None and len(msg.get_all("Subject") or []) == 1
    plain, calendar = list(msg.iter_parts())
    assert calendar.get_param("method") == "REQUEST"
    assert Calendar.from_ical(calendar.get_content()) == itip.request(ITEM, now=NOW)
    sent = plain.get_content().replace("\r\n", "\n")
    expected = body.replace("\r\n", "\n").replace("\r", "\n")  # CR, LF, CRLF: all CRLF
    assert sent.rstrip("\n") == expected.rstrip("\n")
