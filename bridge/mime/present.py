"""folderRead's presentation of a stored message: the XIMSS `<EMail>` element, made from the
message's header, its MIME structure (IMAP BODYSTRUCTURE) and only the sections worth showing,
so a large message is never held in memory.

Two pure steps. `sections_to_fetch` lists what to fetch: text bodies and the headers of enclosed
messages, in document order, within the size budget. `present` renders the element from what came
back. Binary parts are never fetched; they appear as metadata, and the client downloads them by
`partID` (an IMAP section number).

The shape is what messageAppend accepts, so a client can send back what it read:

    <EMail>
      <From realName="Ann Example">ann@example.test</From>      one element per address
      <Date localTime="20240102T110405">20240102T100405</Date>   GMT; the user's zone in localTime
      <Subject>Grüße</Subject>                                  RFC 2047 decoded; header order
      <MIME type="multipart" subtype="mixed">
        <MIME type="text" subtype="plain" partID="1" size="120" charset="iso-8859-1">…</MIME>
        <MIME type="message" subtype="rfc822" partID="2" size="900"><EMail>…</EMail></MIME>
        <MIME type="image" subtype="png" partID="3" size="5000" disposition="attachment"
              disposition-filename="a.png"/>
      </MIME>
    </EMail>

MIME attributes, in this order, each only when known: type, subtype, partID, size (octets as
stored, still transfer-encoded), charset, format, disposition, disposition-filename (from the
disposition's filename, else the type's name), Content-ID, Content-Description, truncated="yes".
Text is transfer-decoded, turned to Unicode (a missing or lying charset best-effort), its line
ends made LF, and format=flowed text unwrapped into its logical lines (the decoding helpers, and
those of header fields and RFC 2047 words, are in decode.py). A vCard or iCalendar part
whose converter gives an element holds that element instead of its text.

Header fields not shown (the MIME element describes them, or they would pose as its elements):
every Content-* field, MIME-Version, and fields named MIME, EMail or copyMIME in any case; also
fields whose names cannot be XML element names.

Size budget (folderRead's totalSizeLimit counts the parts returned): text parts take their stored
size from it in document order, each fetched up to what is left. The part that crosses it comes
cut; parts after it are not fetched. `present` sees this in what it is given: a text part whose
bytes are missing, or fewer than its size, has truncated="yes", with the start of its text or
none (a character or escape split by the cut is dropped). Enclosed messages' headers are not
parts: they do not count, but each is fetched up to MAX_HEADER_BYTES. Nothing bigger than the
budget is decoded.
"""

from __future__ import annotations

import email.utils
import importlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from enum import Enum

from lxml import etree

from adapters.protocols import MimePart
from bridge.mime.decode import (
    decode_words,
    header_fields,
    to_str,
    transfer_decode,
    unflow,
    xml_safe,
)
from bridge.views.rows import NO_DATE
from bridge.ximss.fields import ADDRESS_FIELDS, DATE_FIELDS, date_cell
from bridge.ximss.reports import gmt_and_local

log = logging.getLogger("bridge.mime")

# Bounds on what a (possibly hostile) structure makes us do.
MAX_DEPTH = 32  # nesting of multiparts and enclosed messages rendered
MAX_PARTS = 1000  # MIME elements rendered per message
MAX_FETCHES = 128  # sections fetched per message
MAX_HEADER_BYTES = 64 * 1024  # of each enclosed message's header
MAX_FIELDS = 1000  # header field elements per header

_SECTION = re.compile(r"^[1-9][0-9]{0,8}(\.[1-9][0-9]{0,8}){0,63}$")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,99}$")
_SKIPPED_FIELDS = frozenset({"mime-version", "mime", "email", "copymime"})


class Kind(Enum):
    MULTIPART = "multipart"
    MESSAGE = "message"  # an enclosed message: its header, then its body's structure
    TEXT = "text"  # fetched and shown as text
    BINARY = "binary"  # metadata only


# Parts shown as text besides text/*: reports meant to be read.
_TEXT_MESSAGES = frozenset(
    {"delivery-status", "disposition-notification", "feedback-report", "global-delivery-status",
     "global-disposition-notification", "global-headers"}
)  # fmt: skip
_ENCLOSED = frozenset({"rfc822", "global"})
# Parts another module can show as XML: (type, subtype) -> (module, function(text) -> element).
_CONVERTERS = {
    ("text", "vcard"): ("bridge.mime.vcard", "vcard_to_xml"),
    ("text", "x-vcard"): ("bridge.mime.vcard", "vcard_to_xml"),
    ("text", "directory"): ("bridge.mime.vcard", "vcard_to_xml"),
    ("text", "calendar"): ("bridge.mime.xcal", "ical_to_xcal"),
}


@dataclass(frozen=True, slots=True)
class Fetch:
    """One section to fetch: at most `max_bytes` octets of it (a partial fetch), None for all.
    `partial` says the section is known to be longer than that."""

    section: str
    max_bytes: int | None = None
    partial: bool = False


def kind_of(part: MimePart) -> Kind:
    if part.type == "multipart":
        return Kind.MULTIPART
    if part.type == "message":
        if part.subtype in _ENCLOSED and part.children:
            return Kind.MESSAGE
        if part.subtype in _TEXT_MESSAGES:
            return Kind.TEXT
    return Kind.TEXT if part.type == "text" else Kind.BINARY


def header_section(section: str) -> str:
    return f"{section}.HEADER"


def sections_to_fetch(root: MimePart, total_size_limit: int | None) -> list[Fetch]:
    """The sections `present` shows, in document order. Sections whose numbers are malformed
    are never asked for (so a bad structure cannot fetch the whole message)."""
    plan: dict[str, Fetch] = {}
    left = None if total_size_limit is None else max(total_size_limit, 0)
    for part in _walk(root):
        kind = kind_of(part)
        if len(plan) >= MAX_FETCHES:
            break
        if not _SECTION.match(part.section):
            continue
        if kind is Kind.MESSAGE:
            section = header_section(part.section)
            plan.setdefault(section, Fetch(section, MAX_HEADER_BYTES))
        elif kind is Kind.TEXT and part.section not in plan:
            if left is None:
                plan[part.section] = Fetch(part.section)
            elif left > 0:
                size = max(part.size, 0)
                plan[part.section] = Fetch(part.section, left, partial=size > left)
                left -= min(size, left)
    return list(plan.values())


def _walk(root: MimePart) -> Iterator[MimePart]:
    """Parts in document order, as `present` renders them (same depth and count bounds)."""
    stack = [(root, 0)]
    count = 0
    while stack and count < MAX_PARTS:
        part, depth = stack.pop()
        count += 1
        yield part
        if depth < MAX_DEPTH:
            stack.extend((child, depth + 1) for child in reversed(_children(part)))


def _children(part: MimePart) -> tuple[MimePart, ...]:
    kind = kind_of(part)
    if kind is Kind.MULTIPART:
        return part.children
    return part.children[:1] if kind is Kind.MESSAGE else ()


@dataclass(slots=True)
class _Render:
    fetched: Mapping[str, bytes]
    zone: tzinfo
    uid: int
    parts: int = 0
    converters: dict[str, Callable[[str], object] | None] = field(default_factory=dict)


def present(
    header: bytes,
    root: MimePart,
    fetched: Mapping[str, bytes],
    *,
    zone: tzinfo,
    uid: int = 0,
) -> etree._Element:
    """The `<EMail>` element of a message. `header` is its raw header block, `fetched` maps the
    sections `sections_to_fetch` listed to their raw (still transfer-encoded) bytes, each at
    most its `max_bytes`. A text section missing, or shorter than the part's size, is shown as
    truncated. `uid` only names the message in log lines. Never raises on bad input."""
    render = _Render(fetched, zone, uid)
    element = etree.Element("EMail")
    _header_fields(element, header, zone)
    element.append(_mime(root, render, 0))
    return element


def _mime(part: MimePart, render: _Render, depth: int, enclosed: bool = False) -> etree._Element:
    """A part's MIME element; an enclosed message's top-level multipart does not repeat the
    section (partID) of the message part holding it."""
    render.parts += 1
    kind = kind_of(part)
    attributes = _attributes(part, kind)
    if enclosed and kind is Kind.MULTIPART:
        attributes.pop("partID", None)
    element = etree.Element("MIME", attributes)
    if kind is Kind.TEXT:
        _text(element, part, render)
        return element
    if kind is Kind.MESSAGE:
        message = etree.SubElement(element, "EMail")
        section = header_section(part.section)
        raw = render.fetched.get(section)
        if raw is None and _SECTION.match(part.section):
            element.set("truncated", "yes")
        _header_fields(message, _cut_header(raw or b""), render.zone)
        parent = message
    else:
        parent = element
    for child in _children(part) if depth < MAX_DEPTH else ():
        if render.parts >= MAX_PARTS:
            break
        parent.append(_mime(child, render, depth + 1, kind is Kind.MESSAGE))
    return element


def _attributes(part: MimePart, kind: Kind) -> dict[str, str]:
    filename = part.disposition_params.get("filename") or part.params.get("name")
    values = {
        "type": part.type,
        "subtype": part.subtype,
        "partID": part.section,
        "size": None if kind is Kind.MULTIPART else str(max(part.size, 0)),
        "charset": part.params.get("charset"),
        "format": part.params.get("format"),
        "disposition": part.disposition,
        "disposition-filename": decode_words(filename) if filename else None,
        "Content-ID": part.content_id,
        "Content-Description": decode_words(part.description) if part.description else None,
    }
    return {name: xml_safe(value) for name, value in values.items() if value}


def _text(element: etree._Element, part: MimePart, render: _Render) -> None:
    if not _SECTION.match(part.section):
        return
    raw = render.fetched.get(part.section)
    if raw is None:  # past the budget (or the fetch count)
        element.set("truncated", "yes")
        return
    cut = len(raw) < part.size
    text = to_str(transfer_decode(raw, part.encoding, cut), part.params.get("charset"), cut)
    text = text.removesuffix("\r") if cut else text  # a CR cut from its LF
    text = xml_safe(text.replace("\r\n", "\n").replace("\r", "\n"))
    if cut:
        element.set("truncated", "yes")
    if part.subtype == "plain" and part.params.get("format", "").lower() == "flowed":
        text = unflow(text, delsp=part.params.get("delsp", "").lower() == "yes")
    converted = None if cut else _convert(part, text, render)
    if converted is not None:
        element.append(converted)
    else:
        element.text = text


def _convert(part: MimePart, text: str, render: _Render) -> etree._Element | None:
    """The part as XML by its converter, if there is one and it can read the text."""
    target = _CONVERTERS.get((part.type, part.subtype))
    if target is None:
        return None
    key = ".".join(target)
    if key not in render.converters:
        try:
            function = getattr(importlib.import_module(target[0]), target[1], None)
        except ImportError:
            function = None
        render.converters[key] = function if callable(function) else None
    function = render.converters[key]
    if function is None:
        return None
    try:
        result = function(text)
    except ValueError:
        return None
    except Exception as exc:  # a converter's bug must not cost the user the message
        log.warning("UID %d: %s failed (%s); shown as text", render.uid, key, type(exc).__name__)
        return None
    return result if isinstance(result, etree._Element) else None


# Header fields.


def _cut_header(raw: bytes) -> bytes:
    """A header fetched up to MAX_HEADER_BYTES without its last line, which may be cut."""
    if len(raw) < MAX_HEADER_BYTES:
        return raw
    raw = raw[:MAX_HEADER_BYTES]
    return raw[: raw.rfind(b"\n") + 1]


def _header_fields(parent: etree._Element, raw: bytes, zone: tzinfo) -> None:
    count = 0
    for name, value in header_fields(raw):
        lower = name.lower()
        shown: list[tuple[str, str, dict[str, str]]]
        if not _FIELD_NAME.match(name) or lower.startswith("content-") or lower in _SKIPPED_FIELDS:
            continue
        if lower in ADDRESS_FIELDS:
            shown = [(name, address, {"realName": real} if real else {}) for real, address
                     in addresses(value)]  # fmt: skip
        elif lower in DATE_FIELDS:
            shown = [(name, *_date(value, zone))]
        else:
            shown = [(name, decode_words(value), {})]
        for tag, text, attributes in shown:
            if count >= MAX_FIELDS:
                return
            count += 1
            element = etree.SubElement(parent, tag, {k: xml_safe(v) for k, v in attributes.items()})
            element.text = xml_safe(text)


def _date(value: str, zone: tzinfo) -> tuple[str, dict[str, str]]:
    epoch = date_cell(value)
    if not epoch or epoch == NO_DATE:
        return value, {}
    gmt, local = gmt_and_local(int(epoch), zone)
    return gmt, {"localTime": local}


def addresses(value: str) -> list[tuple[str, str]]:
    """(real name, address) of each mailbox in an address field; group names are dropped. What
    cannot be read as addresses is kept as one address of the decoded text."""
    try:
        pairs = email.utils.getaddresses([value])
    except (ValueError, IndexError, TypeError):
        pairs = []
    shown = []
    for raw_name, raw_address in pairs:
        real, address = decode_words(raw_name).strip(), raw_address.strip()
        if address or real:
            shown.append((real, address) if address else ("", real))
    if not shown and value.strip():
        shown.append(("", decode_words(value).strip()))
    return shown
