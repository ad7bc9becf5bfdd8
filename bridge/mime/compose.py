"""messageAppend's and messageSubmit's composition: RFC 5322/MIME bytes from the XIMSS `<EMail>`.

Pure: the element and a `resolve` callback (uploads and copyMIME sources, looked up by the caller)
in, message bytes out; no I/O, no clock (`now` is passed), randomness only for identifiers unless
`message_id` and `boundary_seed` fix them. It accepts what `present` renders (folderRead's shape),
so a client can send back what it read; presentation-only attributes (partID, size, charset of
text parts, localTime) are ignored.

Header: each child element of EMail other than MIME/copyMIME is a field, in document order, as
headers.py describes; Date and Message-ID are added when absent (top level only).

Body: one MIME or copyMIME element (none: a header-only message), MIME-Version: 1.0 added.
- Type: `type`/`subtype` (case-folded tokens; type alone means text/plain or multipart/mixed);
  without them, an upload's HTTP Content-Type, else application/octet-stream; a part with neither
  type nor upload is multipart/mixed when it has children, else text/plain.
- Inline content (the element's text) is Unicode: LF, CRLF and lone CR become CRLF on the wire,
  and it is sent as UTF-8 (`charset="utf-8"` on text/*; a charset attribute describes what was read
  and is ignored). Transfer encoding: none (7bit) when ASCII with lines of at most 998 octets,
  quoted-printable when a line is longer, else 8bit. (The spec shows 8bit on ASCII parts; 7bit is
  the same content, labelled exactly.) message/* and multipart/* cannot take quoted-printable, so
  a long line there is refused.
- format="flowed" on text/plain: RFC 3676, DelSp=no. Trailing blanks of each line are dropped
  (they would read as soft breaks), except the "-- " signature line; lines wrap after a space so
  that no line exceeds 76 characters where a word allows (the spec's example, byte for byte); a
  line starting with " ", ">" or "From " is space-stuffed, so ">" is literal text, never a
  quote depth (the client's text comes back unchanged from any RFC 3676 reader).
- multipart: children are MIME or copyMIME elements (at least one), no preamble. The boundary is
  `_===ximss-SEED-N===_` and is checked against all the content it encloses, N growing on a hit.
- message/rfc822 may hold an enclosed `<EMail>` (composed by these rules, nothing generated).
- uploadID and copyMIME call `resolve`; `fileName` (file storage) is NOT_SUPPORTED. Resolved file
  data is base64 whatever its type (the bytes arrive intact: no charset or line-end guessing);
  a charset from the attribute or the upload's Content-Type is kept on text types.
- copyMIME: with partID, the copied entity (its own header) is the part as is; without, the whole
  message becomes a message/rfc822 part (Content-Transfer-Encoding 8bit or binary when needed).
- Content-Type, Content-Disposition, Content-ID, Content-Description: `headers.content_headers`.
- Refused as BAD_REQUEST, never silently emptied: a part shown truncated (truncated="yes"), and a
  non-text leaf with no content (folderRead shows binary parts as metadata: copy them instead).
- vCard elements in a text MIME element (the spec's Contacts section: type="text"
  subtype="directory", the default for such an element) become vCard text (`vcard.xml_to_vcard`).
  An iCalendar element in a text MIME element (default text/calendar) becomes iCalendar text
  (`bridge.calendar.xcal_in`: zones settled, local times in `user_zone`), with the calendar's
  METHOD as the Content-Type's `method` parameter (iMIP, RFC 6047).

Errors: BAD_REQUEST for bad input, NOT_SUPPORTED for sign/encrypt (any value but "no") and file
storage, LIMIT when the message would exceed `max_bytes` (checked as parts are made, before
attachments are encoded). `hostname`, `message_id` and `boundary_seed` come from the caller:
ValueError if bad.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import re
import secrets
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lxml import etree

from bridge.calendar.xcal_in import calendar_text, xcal_to_calendar
from bridge.errors import BridgeError, ErrorKind
from bridge.mime.headers import (
    ADDRESS,
    TOKEN,
    bad,
    content_headers,
    elements,
    fold,
    header_lines,
    loose_text,
    msg_id,
    parse_mailbox,
    utf8,
)
from bridge.mime.vcard import xml_to_vcard

MAX_MIME_DEPTH = 32  # nested MIME and enclosed EMail elements
FLOWED_WIDTH = 76

NOT_OFFERED: frozenset[str] = frozenset()
DEFAULT_SUBTYPE = {"text": "plain", "multipart": "mixed"}

_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")  # what getfqdn() may give
_SEED = re.compile(r"[A-Za-z0-9]{1,32}")
_STUFFED = re.compile(r" |>|From ")
_FLOW_TOKEN = re.compile(r" +|[^ ]+ *")
_LONG_LINE = re.compile(rb"[^\r\n]{999}")


@dataclass(frozen=True, slots=True)
class Attachment:
    """What the caller resolved for an uploadID or copyMIME element.

    `data`: an upload's file bytes, or (copyMIME) the copied entity (header and body) or whole
    message. `content_type`, `filename`: the upload's HTTP Content-Type and file name (None for
    copyMIME). `entity`: data is a complete MIME entity or message, embedded as is."""

    data: bytes
    content_type: str | None = None
    filename: str | None = None
    entity: bool = False


Resolver = Callable[[etree._Element], Attachment]


@dataclass(slots=True)
class _Part:
    """A composed entity: its header lines (folded) and body chunks; `entity` means the chunks
    are a whole entity already (a copied part), header included."""

    headers: list[str]
    body: list[bytes]
    entity: bool = False

    def chunks(self, lead: Iterable[str] = ()) -> list[bytes]:
        """The entity's bytes, `lead` header lines first (a message's own fields)."""
        if self.entity:  # its own header goes on where the lead's lines end
            return [utf8("".join(f"{line}\r\n" for line in lead)), *self.body]
        return [utf8("\r\n".join([*lead, *self.headers]) + "\r\n\r\n"), *self.body]


@dataclass(slots=True)
class _Context:
    resolve: Resolver
    max_bytes: int
    seed: str
    user_zone: zoneinfo.ZoneInfo = field(default_factory=lambda: zoneinfo.ZoneInfo("UTC"))
    used: int = 0
    boundaries: int = 0
    generated: list[str] = field(default_factory=list)

    def spend(self, octets: int) -> None:
        self.used += octets
        if self.used > self.max_bytes:
            raise BridgeError(ErrorKind.LIMIT, "message too large")

    def boundary(self, parts: list[_Part]) -> str:
        while True:  # ends: the content holds finitely many candidates
            self.boundaries += 1
            candidate = f"_===ximss-{self.seed}-{self.boundaries}===_"
            marker = f"--{candidate}".encode()
            if not any(_contains(part.chunks(), marker) for part in parts):
                return candidate


def compose(
    email_elem: etree._Element,
    *,
    resolve: Resolver,
    hostname: str,
    now: dt.datetime,
    max_bytes: int,
    message_id: str | None = None,
    boundary_seed: str | None = None,
    skip_bcc: bool = False,
    user_zone: zoneinfo.ZoneInfo | None = None,
) -> bytes:
    """The message the EMail element describes, as RFC 5322 bytes with CRLF line ends."""
    if not _HOSTNAME.fullmatch(hostname):
        raise ValueError("hostname must be a domain name")
    seed = boundary_seed if boundary_seed is not None else secrets.token_hex(8)
    if not _SEED.fullmatch(seed):
        raise ValueError("boundary_seed must be 1-32 letters or digits")
    if email_elem.tag != "EMail":
        raise bad("EMail element expected")
    for attribute in ("sign", "encrypt"):
        if (email_elem.get(attribute) or "no").strip().lower() != "no":
            raise BridgeError(ErrorKind.NOT_SUPPORTED, "S/MIME is not supported")
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    if message_id is None:
        message_id = f"<ximss-{secrets.token_hex(12)}@{hostname}>"
    try:
        message_id = msg_id(message_id)
    except BridgeError as exc:
        raise ValueError("message_id must be <left@right>") from exc
    generated = [fold("Date", email.utils.format_datetime(now)), f"Message-ID: {message_id}"]
    context = _Context(resolve, max_bytes, seed, generated=generated)
    if user_zone is not None:
        context.user_zone = user_zone
    message = b"".join(_message(email_elem, context, 0, skip_bcc))
    if len(message) > max_bytes:
        raise BridgeError(ErrorKind.LIMIT, "message too large")
    return message


def envelope_recipients(email_elem: etree._Element) -> list[str]:
    """The addresses of the To, Cc and Bcc elements, in order, once each (compared ignoring
    case): messageSubmit's recipients when no Envelope-To is given. Each must have a domain."""
    seen: set[str] = set()
    recipients = []
    for child in elements(email_elem):
        if child.tag.lower() not in ("to", "cc", "bcc"):
            continue
        mailbox = parse_mailbox(child)
        if mailbox is None or mailbox[1] is None:
            continue
        address = mailbox[1]
        match = ADDRESS.fullmatch(address)
        if match is None or match[1] is None:
            raise bad(f"incomplete address in {child.tag}")
        if address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    return recipients


def sender_address(email_elem: etree._Element) -> str | None:
    """The address responsible for the message: Sender's if given (RFC 5322 3.6.2), else the
    first From address; None when there is neither. BAD_REQUEST if one is not an address."""
    found: dict[str, str] = {}
    for child in elements(email_elem):
        lower = child.tag.lower()
        if lower in ("sender", "from") and lower not in found:
            mailbox = parse_mailbox(child)
            if mailbox is not None and mailbox[1] is not None:
                found[lower] = mailbox[1]
    return found.get("sender") or found.get("from")


# The message.


def _message(
    email_elem: etree._Element, context: _Context, depth: int, skip_bcc: bool
) -> list[bytes]:
    if depth > MAX_MIME_DEPTH:
        raise bad("MIME parts nested too deeply")
    _no_loose_text(email_elem, "EMail")
    header, once, bodies = header_lines(email_elem, skip_bcc)
    if depth == 0:
        header += [line for line in context.generated if line.split(":", 1)[0].lower() not in once]
    if len(bodies) > 1:
        raise bad("EMail has more than one body")
    if not bodies:
        return [utf8("".join(line + "\r\n" for line in header) + "\r\n")]
    part = _body(bodies[0], context, depth + 1)
    return part.chunks([*header, "MIME-Version: 1.0"])


# Body parts.


def _body(elem: etree._Element, context: _Context, depth: int) -> _Part:
    if depth > MAX_MIME_DEPTH:
        raise bad("MIME parts nested too deeply")
    if elem.tag == "copyMIME":
        return _resolved(elem, context.resolve(elem), context, whole=elem.get("partID") is None)
    if elem.tag != "MIME":
        if elem.tag in NOT_OFFERED:
            raise BridgeError(ErrorKind.NOT_SUPPORTED, f"{elem.tag} parts are not supported")
        raise bad(f"unexpected element {elem.tag} in MIME")
    if elem.get("fileName") is not None:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "file storage is not available")
    if (elem.get("truncated") or "").lower() == "yes":
        raise bad("a MIME part shown truncated cannot be composed; copy it with copyMIME")
    children = elements(elem)
    text = loose_text(elem)
    if elem.get("uploadID") is not None:
        if children or text.strip():
            raise bad("a MIME part with uploadID has no content of its own")
        return _resolved(elem, context.resolve(elem), context, whole=False)
    cards = bool(children) and all(child.tag == "vCard" for child in children)
    calendar = len(children) == 1 and _local_name(children[0]) == "iCalendar"
    default = (
        ("text", "directory") if cards
        else ("text", "calendar") if calendar
        else ("multipart", "mixed") if children
        else None
    )  # fmt: skip
    media = _media_type(elem) or default or ("text", "plain")
    if media[0] == "multipart":
        _no_loose_text(elem, "multipart MIME")
        if not children:
            raise bad("multipart MIME part has no parts")
        parts = [_body(child, context, depth + 1) for child in children]
        return _multipart(elem, media[1], parts, context)
    if media == ("message", "rfc822") and children:
        if len(children) != 1 or children[0].tag != "EMail":
            raise bad("message/rfc822 MIME part must hold one EMail")
        _no_loose_text(elem, "message/rfc822 MIME")
        body = _message(children[0], context, depth + 1, skip_bcc=False)
        return _Part(content_headers(elem, media, [], None), body)
    if cards and media[0] == "text":  # the spec's way to put contacts into a message
        _no_loose_text(elem, "vCard MIME")
        text = "".join(xml_to_vcard(card) for card in children)
        children = []
    if calendar and media[0] == "text":  # an invitation or reply composed by the client
        _no_loose_text(elem, "iCalendar MIME")
        cal = xcal_to_calendar(children[0], context.user_zone)
        method = str(cal.get("METHOD", "")).strip()
        return _inline(
            elem, media, calendar_text(cal), context, [("method", method)] if method else []
        )
    for child in children:
        if child.tag in NOT_OFFERED:
            raise BridgeError(ErrorKind.NOT_SUPPORTED, f"{child.tag} parts are not supported")
        raise bad(f"unexpected element {child.tag} in a {media[0]}/{media[1]} part")
    if media[0] != "text" and not text.strip():
        raise bad("MIME part has no content; attach it with uploadID or copyMIME")
    return _inline(elem, media, text, context)


def _local_name(elem: etree._Element) -> str:
    return etree.QName(elem).localname if isinstance(elem.tag, str) else ""


def _multipart(elem: etree._Element, subtype: str, parts: list[_Part], context: _Context) -> _Part:
    boundary = context.boundary(parts)
    body: list[bytes] = []
    for part in parts:
        body += [f"--{boundary}\r\n".encode(), *part.chunks(), b"\r\n"]
    body.append(f"--{boundary}--\r\n".encode())
    headers = content_headers(elem, ("multipart", subtype), [("boundary", boundary)], None)
    return _Part(headers, body)


def _inline(
    elem: etree._Element,
    media: tuple[str, str],
    text: str,
    context: _Context,
    params: list[tuple[str, str]] | None = None,
) -> _Part:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    params = list(params or [])
    if media == ("text", "plain") and (elem.get("format") or "").strip().lower() == "flowed":
        text = flow(text)
        params.append(("format", "flowed"))
    if media[0] == "text":
        params.append(("charset", "utf-8"))
    data = utf8(text.replace("\n", "\r\n"))
    encoding = None if data.isascii() else "8bit"
    if _LONG_LINE.search(data):
        if media[0] in ("message", "multipart"):
            raise bad(f"a line of a {media[0]}/{media[1]} part is too long")
        encoding = "quoted-printable"
        data = b"\r\n".join(
            binascii.b2a_qp(line, quotetabs=False, istext=True).replace(b"\n", b"\r\n")
            for line in data.split(b"\r\n")
        )
    context.spend(len(data))
    return _Part(content_headers(elem, media, params, None, encoding), [data])


def _resolved(elem: etree._Element, found: Attachment, context: _Context, whole: bool) -> _Part:
    data = found.data
    if found.entity and not whole:
        if (
            not data.startswith((b"\r\n", b"\n"))
            and b"\r\n\r\n" not in data
            and b"\n\n" not in data
        ):
            data = b"\r\n" + data  # no header end: all body (never header lines of ours)
        context.spend(len(data))
        return _Part([], [data], entity=True)
    if found.entity:
        context.spend(len(data))
        encoding = "binary" if _LONG_LINE.search(data) else None if data.isascii() else "8bit"
        return _Part(content_headers(elem, ("message", "rfc822"), [], None, encoding), [data])
    declared = _parse_content_type(found.content_type)
    media = _media_type(elem) or (declared[0] if declared else ("application", "octet-stream"))
    params = []
    charset = (elem.get("charset") or "").strip() or (declared[1] if declared else None)
    if media[0] == "text" and charset and TOKEN.fullmatch(charset):
        params.append(("charset", charset.lower()))
    context.spend(4 * ((len(data) + 2) // 3) + 2 * ((len(data) + 56) // 57))
    body = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return _Part(content_headers(elem, media, params, found.filename or "", "base64"), [body])


def _media_type(elem: etree._Element) -> tuple[str, str] | None:
    main, sub = elem.get("type"), elem.get("subtype")
    if main is None and sub is None:
        return None
    main = (main or "").strip().lower()
    sub = (sub or "").strip().lower() if sub is not None else DEFAULT_SUBTYPE.get(main, "")
    if not TOKEN.fullmatch(main) or not TOKEN.fullmatch(sub):
        raise bad("invalid MIME type or subtype")
    return main, sub


def _parse_content_type(value: str | None) -> tuple[tuple[str, str], str | None] | None:
    """An upload's HTTP Content-Type as ((type, subtype), charset); None if unusable."""
    if not value:
        return None
    media, *params = value.split(";")
    main, _, sub = media.strip().lower().partition("/")
    if not TOKEN.fullmatch(main) or not TOKEN.fullmatch(sub):
        return None
    charset = None
    for param in params:
        key, _, raw = param.partition("=")
        if key.strip().lower() == "charset":
            charset = raw.strip().strip('"')
    return (main, sub), charset


def flow(text: str, width: int = FLOWED_WIDTH) -> str:
    """LF-separated text as format=flowed lines (RFC 3676, DelSp=no), still LF-separated."""
    out = []
    for raw_line in text.split("\n"):
        line = raw_line if raw_line == "-- " else raw_line.rstrip(" ")
        pieces = []
        current = ""
        for token in _FLOW_TOKEN.findall(line):
            if current.strip() and len(current) + len(token.rstrip(" ")) > width:
                pieces.append(current)  # ends with a space: a soft break
                current = token
            else:
                current += token
        pieces.append(current)
        out += [" " + piece if _STUFFED.match(piece) else piece for piece in pieces]
    return "\n".join(out)


# Small helpers.


def _no_loose_text(elem: etree._Element, what: str) -> None:
    if loose_text(elem).strip():
        raise bad(f"text in {what} element")


def _contains(chunks: list[bytes], marker: bytes) -> bool:
    """Whether the concatenated chunks contain marker, without concatenating them."""
    keep = len(marker) - 1
    carry = b""
    for chunk in chunks:
        if marker in carry + chunk[:keep] or marker in chunk:
            return True
        carry = (carry + chunk[-keep:])[-keep:]
    return False
