"""Fuzz targets: the MIME-to-XML renderer (present.py, decode.py, vcard.py, xcal.py) and the
XML-to-MIME composer (compose.py, headers.py).

Declared errors: none for the renderer and the decoding helpers ("never raises on bad input");
ValueError for ical_to_xcal (components nested too deeply); BridgeError for xml_to_vcard, compose,
envelope_recipients and sender_address. The composer must also never let a CR or LF from the
XML into a header (header injection), and never write a line over 998 octets. Seeds: the stored
test messages (corpus/mime), the spec's and the unit tests' EMail documents (corpus/compose),
vCards and iCalendars from the converter tests (corpus/vcard, corpus/ical).
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.policy
import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from lxml import etree

from adapters.protocols import MimePart
from bridge import xml
from bridge.errors import BridgeError
from bridge.mime import compose as mc
from bridge.mime.decode import (
    decode_words,
    header_fields,
    to_str,
    transfer_decode,
    unflow,
    xml_safe,
)
from bridge.mime.present import present, sections_to_fetch
from bridge.mime.vcard import vcard_to_xml, xml_to_vcard
from bridge.mime.xcal import ical_to_xcal
from tests.fuzz.harness import FUZZ, corpus, fuzz_bytes, mutated, with_seeds

MESSAGES = corpus("mime")
ZONES = st.sampled_from([ZoneInfo("UTC"), ZoneInfo("Europe/Berlin"), ZoneInfo("Pacific/Apia")])
MIME_TOKENS = (
    b"\r\n", b"\n", b"\r", b": ", b"=?utf-8?B?", b"=?iso-8859-1?Q?", b"?=", b"=?", b"=\r\n", b"=",
    b"\t", b" ", b"\xff", b"\xc3", b"boundary=", b"--", b"Content-Type: ", b"BEGIN:VCARD\r\n",
    b"BEGIN:VCALENDAR\r\n", b"END:VCARD\r\n", b"BEGIN:VEVENT\r\n", b";", b",", b"\\",
)  # fmt: skip


def _reparse(element: etree._Element) -> None:
    """The element serializes to XML that our own hardened parser reads back."""
    xml.parse(xml.serialize(element), max_depth=1000)


# --- the renderer: random structures, random bytes -------------------------------------------

_SECTIONS = st.sampled_from(["", "1", "2", "1.1", "1.2.3", "0", "01", "1..2", "a", "1.HEADER"])
_TEXT = st.text(max_size=20) | st.sampled_from(
    ["=?utf-8?B?w6k=?=", "=?x-unknown?Q?a=FF?=", "a\x00b", "\ud800", "\uffff", "flowed", "yes",
     "utf-8", "iso-2022-jp", "utf-7", "base64_codec", "rot13", "punycode", "idna", "x*en"]
)  # fmt: skip
_TYPES = st.sampled_from(["text", "multipart", "message", "application", "image", "x"])
_SUBTYPES = st.sampled_from(
    ["plain", "html", "mixed", "rfc822", "global", "vcard", "x-vcard", "directory", "calendar",
     "delivery-status", "octet-stream", "alternative"]
)  # fmt: skip
_PARAMS = st.dictionaries(
    st.sampled_from(["charset", "format", "delsp", "name", "boundary", "method"]), _TEXT, max_size=3
)


def _parts(children: st.SearchStrategy[tuple[MimePart, ...]]) -> st.SearchStrategy[MimePart]:
    return st.builds(
        MimePart,
        section=_SECTIONS, type=_TYPES, subtype=_SUBTYPES, params=_PARAMS,
        content_id=st.none() | _TEXT, description=st.none() | _TEXT,
        encoding=st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode"]),
        size=st.integers(-1, 5000), disposition=st.none() | _TEXT,
        disposition_params=st.dictionaries(st.just("filename"), _TEXT, max_size=1),
        children=children,
    )  # fmt: skip


PARTS = st.recursive(
    _parts(st.just(())), lambda inner: _parts(st.lists(inner, max_size=4).map(tuple)), max_leaves=25
)
_BODIES = fuzz_bytes(
    [*MESSAGES, *corpus("vcard"), *corpus("ical"), b"=E9t=\r\n\xe9", b"SGVsbG8=\n", b"> a \n b"],
    MIME_TOKENS,
)


@FUZZ
@given(
    st.data(), PARTS, fuzz_bytes(MESSAGES, MIME_TOKENS), ZONES, st.none() | st.integers(-1, 4000)
)
def test_present_any_structure(
    data: st.DataObject, root: MimePart, header: bytes, zone: ZoneInfo, budget: int | None
) -> None:
    fetched: dict[str, bytes] = {}
    for fetch in sections_to_fetch(root, budget):
        if data.draw(st.booleans()):
            body = data.draw(_BODIES)
            fetched[fetch.section] = body if fetch.max_bytes is None else body[: fetch.max_bytes]
    _reparse(present(header, root, fetched, zone=zone, uid=7))


def _stored(raw: bytes) -> tuple[bytes, MimePart, dict[str, bytes]]:
    """A message as the store would describe it: header, structure, every section's bytes."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    fetched: dict[str, bytes] = {}

    def part(node: email.message.Message, section: str) -> MimePart:
        payload = node.get_payload()
        kind, sub = node.get_content_maintype(), node.get_content_subtype()
        params = {k.lower(): str(v) for k, v in (node.get_params() or [])[1:]}
        if isinstance(payload, list):
            children = tuple(
                part(child, f"{section}.{n}" if section else str(n))
                for n, child in enumerate(payload, 1)
            )
            return MimePart(section, kind, sub, params, children=children)
        body = node.as_bytes().split(b"\n\n", 1)[-1] if isinstance(payload, str) else b""
        number = section or "1"
        fetched[number] = body
        encoding = str(node.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        return MimePart(number, kind, sub, params, encoding=encoding, size=len(body))

    header = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return header, part(message, ""), fetched


@FUZZ
@with_seeds(MESSAGES)
@given(mutated(MESSAGES, MIME_TOKENS, max_steps=10))
def test_present_stored_messages(raw: bytes) -> None:
    try:
        header, root, fetched = _stored(raw)
    except Exception:  # the stdlib's own reading of junk is not under test
        return
    _reparse(present(header, root, fetched, zone=ZoneInfo("Europe/Berlin")))


_CHARSETS = st.none() | _TEXT | st.sampled_from(["utf-16", "utf-32-be", "cp1252", "gb2312", "hz"])


@FUZZ
@given(_BODIES, _CHARSETS, st.sampled_from(["base64", "quoted-printable", "8bit", "B"]),
       st.booleans())  # fmt: skip
def test_decoding_helpers(raw: bytes, charset: str | None, encoding: str, cut: bool) -> None:
    text = to_str(transfer_decode(raw, encoding, cut), charset, cut)
    assert isinstance(text, str)
    unflow(xml_safe(text), delsp=cut)
    decode_words(text)
    for name, value in header_fields(raw):
        decode_words(value)
        assert "\n" not in name


# --- vCard and iCalendar ---------------------------------------------------------------------


def _check_content_lines(text: str) -> None:
    """vCard/iCalendar text as we write it: CRLF lines of at most 75 octets, no bare CR or LF."""
    data = text.encode("utf-8")
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", data)
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))


@FUZZ
@with_seeds([seed.decode("utf-8", "replace") for seed in corpus("vcard")])
@given(
    st.one_of(
        mutated(corpus("vcard"), MIME_TOKENS).map(lambda b: b.decode("utf-8", "replace")),
        st.text(max_size=200),
    )
)
def test_vcard_round_trip(text: str) -> None:
    card = vcard_to_xml(text)
    if card is None:
        return
    _reparse(card)
    try:
        written = xml_to_vcard(card)
    except BridgeError:
        return
    _check_content_lines(written)


@FUZZ
@with_seeds([seed.decode("utf-8", "replace") for seed in corpus("ical")])
@given(
    st.one_of(
        mutated(corpus("ical"), MIME_TOKENS).map(lambda b: b.decode("utf-8", "replace")),
        st.text(max_size=200),
    )
)
def test_ical_to_xcal(text: str) -> None:
    try:
        calendar = ical_to_xcal(text)
    except ValueError:
        return
    if calendar is not None:
        _reparse(calendar)


# --- the composer: EMail elements with hostile names, values and attributes --------------------

INJECTED = "X-Injected"
_NASTY = st.lists(
    st.sampled_from(
        [
            "a@b.test",
            "Ann",
            "Ann Example <ann@example.test>",
            '"',
            "<",
            ">",
            "\r\n",
            "\n",
            "\r",
            f"\r\n{INJECTED}: 1",
            f"\n{INJECTED}: 1\n",
            " ",
            "\t",
            "=?utf-8?b?QQ==?=",
            "é",
            "\x7f",
            "\x85",
            "\u2028",
            "x" * 90,
            "a" * 1000,
            "20240102T100405",
            "undisclosed-recipients:;",
            "Tue, 2 Jan 2024 10:04:05 +0000",
            "<id@host>",
            "@",
            ",",
            ";",
            "\\",
            "Grüße",
            "=?",
            "?=",
        ]
    )
    | st.text(max_size=12),
    max_size=6,
).map(lambda pieces: xml_safe("".join(pieces)))
# Plain values half the time, so that composing gets past the first field often enough.
_VALUE = st.one_of(
    st.sampled_from(["a@b.test", "Ann <ann@b.test>", "Hello", "20240102T100405", "<id@host>",
                     "Grüße", "attachment", "a.txt", "c@d.test"]),
    _NASTY,
)  # fmt: skip
_FIELDS = st.sampled_from(
    ["From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Return-Path", "Subject", "Date",
     "Message-ID", "In-Reply-To", "References", "Received", "X-Mailer", "Comments", "Keywords",
     "Resent-Date", "Resent-Message-ID", "Content-Type", "MIME-Version", "X-A:B", "a b"]
)  # fmt: skip
_MIME_ATTRS = st.sampled_from(
    ["type", "subtype", "disposition", "disposition-filename", "Content-ID",
     "Content-Description", "charset", "format", "uploadID", "truncated", "partID"]
)  # fmt: skip
_MEDIA = st.sampled_from(["text", "plain", "multipart", "mixed", "message", "rfc822", "image",
                          "application", "calendar", "directory", "flowed", "none", "inline"])  # fmt: skip


@st.composite
def mime_elements(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    elem = etree.Element(draw(st.sampled_from(["MIME", "MIME", "MIME", "copyMIME", "vCard"])))
    for name, value in draw(st.dictionaries(_MIME_ATTRS, _MEDIA | _VALUE, max_size=5)).items():
        elem.set(name, value)
    if elem.tag == "vCard":
        for name in draw(
            st.lists(st.sampled_from(["FN", "N", "EMAIL", "NOTE", "X-A"]), max_size=3)
        ):
            etree.SubElement(elem, name).text = draw(_VALUE)
        return elem
    if draw(st.integers(0, 5)) == 0:
        elem.append(_calendar(draw))
    elif depth < 3 and draw(st.booleans()):
        for child in draw(st.lists(mime_elements(depth + 1), min_size=1, max_size=3)):
            elem.append(child)
        if draw(st.booleans()):
            elem.append(_email(draw, depth + 1))
    else:
        elem.text = draw(_VALUE | st.text(max_size=300).map(xml_safe))
    return elem


def _calendar(draw: st.DrawFn) -> etree._Element:
    """An invitation as a client composes one: valid but for one value, the METHOD above all."""
    ns = "{urn:ietf:params:xml:ns:xcal}"
    values = {
        "method": "REQUEST", "uid": "u1", "dtstamp": "20240102T100000Z",
        "dtstart": "20240102T100000", "summary": "Lunch", "organizer": "mailto:a@b.test",
    }  # fmt: skip
    hostile = draw(st.sampled_from(["method", "summary", "organizer", "dtstart", "uid"]))
    values[hostile] = draw(_NASTY)
    root = etree.Element(f"{ns}iCalendar")
    calendar = etree.SubElement(root, f"{ns}vCalendar", version="2.0", prodid="x")
    calendar.set("method", values.pop("method"))
    event = etree.SubElement(calendar, f"{ns}vevent")
    for name, value in values.items():
        etree.SubElement(event, f"{ns}{name}").text = value
    return root


def _email(draw: st.DrawFn, depth: int) -> etree._Element:
    elem = etree.Element("EMail")
    for name in draw(st.lists(_FIELDS, max_size=8)):
        try:
            field = etree.SubElement(elem, name)
        except ValueError:  # no XML name ("X-A:B", "a b"): such an element cannot arrive
            continue
        field.text = draw(_VALUE)
        if draw(st.booleans()):
            field.set("realName", draw(_VALUE))
    if depth < 3 and draw(st.booleans()):
        elem.append(draw(mime_elements(depth)))
    return elem


@st.composite
def email_elements(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    return _email(draw, depth)


_UPLOAD_TYPES = st.sampled_from(
    [None, "text/plain", "image/png; name=a", f'text/plain; charset="a\r\n{INJECTED}: 1"',
     "text/html; charset=utf-8", "x", "/"]
)  # fmt: skip


@st.composite
def resolvers(draw: st.DrawFn) -> mc.Resolver:
    """Uploads and copied parts as the caller would resolve them (their bytes are the store's,
    not the client's, so they are clean CRLF text; names and types come from the client)."""
    content_type = draw(_UPLOAD_TYPES)
    filename = draw(st.none() | _NASTY)
    data = draw(st.binary(max_size=64))

    def resolve(elem: etree._Element) -> mc.Attachment:
        if elem.tag == "copyMIME":
            entity = b"Content-Type: text/plain\r\n\r\nbody\r\n"
            return mc.Attachment(entity if elem.get("partID") else b"Subject: s\r\n\r\nhi\r\n",
                                 entity=True)  # fmt: skip
        return mc.Attachment(data, content_type, filename)

    return resolve


def _resolve_plain(elem: etree._Element) -> mc.Attachment:
    if elem.tag == "copyMIME":
        return mc.Attachment(b"Subject: s\r\n\r\nhi\r\n", entity=True)
    return mc.Attachment(b"GIF89a\x00", "image/gif", "a.gif")


def _check_message(raw: bytes) -> None:
    """No bare CR or LF, no line over 998 octets, no field the client smuggled in."""
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", raw), "bare CR or LF"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")), "line over 998 octets"
    for part in email.message_from_bytes(raw, policy=email.policy.compat32).walk():
        assert all(key.strip().lower() != INJECTED.lower() for key in part), "injected"


NOW = dt.datetime(2024, 1, 2, 10, 4, 5, tzinfo=dt.UTC)


def _event(text: str) -> None:
    """Statistics (--hypothesis-show-statistics) for generated examples only."""
    if currently_in_test_context():
        event(text)


def _compose(document: etree._Element, resolve: mc.Resolver, skip_bcc: bool) -> None:
    try:
        raw = mc.compose(
            document, resolve=resolve, hostname="bridge.test", now=NOW, max_bytes=200_000,
            skip_bcc=skip_bcc, user_zone=ZoneInfo("Europe/Berlin"),
        )  # fmt: skip
    except BridgeError as exc:
        _event(f"refused: {exc.kind.value}")
    else:
        _event("composed")
        _check_message(raw)
    for read in (mc.envelope_recipients, mc.sender_address):
        try:
            found = read(document)
        except BridgeError:
            continue
        for address in [found] if isinstance(found, str) else found or []:
            assert not re.search(r"[\r\n\x00]", address)  # an SMTP command line


@FUZZ
@given(email_elements(), resolvers(), st.booleans())
def test_compose_hostile_elements(
    document: etree._Element, resolve: mc.Resolver, bcc: bool
) -> None:
    _compose(xml.parse(xml.serialize(document), max_depth=1000), resolve, bcc)


@st.composite
def invitations(draw: st.DrawFn) -> etree._Element:
    """A plain message around an iCalendar part with one hostile value (see _calendar)."""
    document = etree.Element("EMail")
    etree.SubElement(document, "To").text = "a@b.test"
    etree.SubElement(document, "Subject").text = draw(_VALUE)
    part = etree.SubElement(document, "MIME")
    for name in draw(
        st.lists(st.sampled_from(["disposition", "Content-ID", "Content-Description"]))
    ):
        part.set(name, draw(_VALUE))
    part.append(_calendar(draw))
    return document


@FUZZ
@given(invitations())
def test_compose_invitations(document: etree._Element) -> None:
    _compose(xml.parse(xml.serialize(document)), _resolve_plain, skip_bcc=False)


@FUZZ
@with_seeds(corpus("compose"))
@given(fuzz_bytes(corpus("compose"), (b"&#13;", b"&#10;", b"<To>", b"</To>", b"<MIME>", b"\r\n")))
def test_compose_mutated_documents(data: bytes) -> None:
    try:
        document = xml.parse(data)
    except BridgeError:
        return
    _compose(document, _resolve_plain, skip_bcc=False)


def test_compose_calendar_method_injection() -> None:
    """Regression: the iCalendar METHOD went into the Content-Type's method parameter with its
    CRLF, so a client could add any header field."""
    document = xml.parse(
        b'<EMail><To>a@b.test</To><MIME><iCalendar xmlns="urn:ietf:params:xml:ns:xcal">'
        b'<vCalendar method="REQUEST&#13;&#10;X-Injected: 1" version="2.0" prodid="x"><vevent>'
        b"<uid>u1</uid><dtstamp>20240102T100000Z</dtstamp><dtstart>20240102T100000Z</dtstart>"
        b"</vevent></vCalendar></iCalendar></MIME></EMail>"
    )
    _compose(document, _resolve_plain, skip_bcc=False)
    with pytest.raises(BridgeError):
        mc.compose(document, resolve=_resolve_plain, hostname="h.test", now=NOW, max_bytes=10**6)
