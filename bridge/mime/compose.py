"""messageAppend's and messageSubmit's composition: RFC 5322/MIME bytes from the XIMSS `<EMail>`.

Pure: the element and a `resolve` callback (uploads and copyMIME sources, looked up by the caller)
in, message bytes out; no I/O, no clock (`now` is passed), randomness only for identifiers unless
`message_id` and `boundary_seed` fix them. It accepts what `present` renders (folderRead's shape),
so a client can send back what it read; presentation-only attributes (partID, size, charset of
text parts, localTime) are ignored.

Header: each child element of EMail other than MIME/copyMIME is a field, in document order.
- Names must be RFC 5322 field names (printable ASCII but ":"); values lose CR/LF (each line
  break and the blanks around it become one space, so no value can start a field of its own); other
  control characters are refused. Lines fold at spaces at 78 octets; a line that cannot be kept
  within 998 octets is refused.
- Address fields (the viewer's table, `fields.ADDRESS_FIELDS`): one mailbox per element,
  `<To realName="N">a@d</To>` -> `"N" <a@d>`; elements of one name make one field, comma-separated,
  where the first stood (the spec's messageRedirect sends one element per address). The text may
  also be `N <a@d>` or `<a@d>`; a missing domain is kept (drafts hold half-typed addresses) but
  refused by `envelope_recipients`; an empty group (`undisclosed-recipients:;`) is kept as text.
  Names are always quoted, as the spec shows; non-ASCII names become RFC 2047 words (UTF-8, B).
  Non-ASCII addresses are written as UTF-8 (RFC 6532). Empty elements are skipped.
- Date, Resent-Date: RFC 5322 text, or XIMSS time (GMT, "20240102T100405", optional Z), rewritten
  in RFC 5322 form. Message-ID, Resent-Message-ID: `<left@right>`, brackets added when missing.
  In-Reply-To, References, Received: ASCII only. Date, Subject, Message-ID, In-Reply-To and
  References may appear once.
- Other fields are unstructured: ASCII text as is; non-ASCII text, text that looks like an
  encoded word, or a word too long to fold becomes RFC 2047 words (UTF-8, B, at most 75 chars).
- MIME-Version and Content-Type/-Transfer-Encoding/-Disposition elements are dropped: the MIME
  element makes them. `skip_bcc` drops Bcc (messageSubmit: "all addresses from the Bcc elements
  are skipped"). Date and Message-ID (`<ximss-RANDOM@hostname>`) are added after the given
  fields when absent, as the spec's examples show; enclosed messages get none.

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
- Content-Disposition is written for uploads, for parts with a filename, and for a `disposition`
  attribute; its type is the attribute (any token), else attachment. The filename is
  `disposition-filename`, else the upload's name, without path or control characters; it is
  also the Content-Type name. ASCII names are quoted strings, as the spec shows; non-ASCII ones
  use RFC 2231 (UTF-8, in continuations of whole characters to keep lines short).
  disposition="none": neither header nor name, as the spec says.
- Content-ID and Content-Description attributes become those fields of the part.
- Refused as BAD_REQUEST, never silently emptied: a part shown truncated (truncated="yes"), and a
  non-text leaf with no content (folderRead shows binary parts as metadata: copy them instead).
- vCard elements in a text MIME element (the spec's Contacts section: type="text"
  subtype="directory", the default for such an element) become vCard text (`vcard.xml_to_vcard`).
  iCalendar elements are NOT_SUPPORTED (no XML-to-text converter yet).

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
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lxml import etree

from bridge.errors import BridgeError, ErrorKind
from bridge.mime.vcard import xml_to_vcard
from bridge.ximss.fields import ADDRESS_FIELDS, DATE_FIELDS

MAX_MIME_DEPTH = 32  # nested MIME and enclosed EMail elements
FOLD_WIDTH = 78  # RFC 5322 2.1.1 SHOULD
MAX_LINE = 998  # RFC 5322 2.1.1 MUST (octets without CRLF)
FLOWED_WIDTH = 76
WORD_OCTETS = 45  # UTF-8 octets per encoded word: 60 base64 chars, 72 in all (RFC 2047: <= 75)
PARAM_CHUNK = 60  # characters per RFC 2231 piece of a non-ASCII value (the line stays <= 78)
MAX_QUOTED_PARAM = 900  # longer ASCII values are split too (the line limit is 998)

BODY_TAGS = ("MIME", "copyMIME")
BLIND_FIELDS = frozenset({"bcc"})
ONCE_FIELDS = frozenset({"date", "subject", "message-id", "in-reply-to", "references"})
MSG_ID_FIELDS = frozenset({"message-id", "resent-message-id"})
ASCII_FIELDS = frozenset({"in-reply-to", "references", "received"})
MADE_FIELDS = frozenset(
    {"mime-version", "content-type", "content-transfer-encoding", "content-disposition"}
)
NOT_FIELDS = frozenset({"mime", "copymime", "email"})
NOT_OFFERED = frozenset({"iCalendar"})  # no XML-to-text converter yet
DEFAULT_SUBTYPE = {"text": "plain", "multipart": "mixed"}

_FIELD_NAME = re.compile(r"[!-9;-~]{1,100}")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]{1,127}")
_ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-\u0080-\U0010ffff]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_ADDRESS = re.compile(
    rf'(?:{_DOT_ATOM}|"(?:[^"\\\x00-\x1f\x7f]|\\[ -~])*")(@(?:{_DOT_ATOM}|\[[!-Z^-~]*\]))?'
)
_EMPTY_GROUP = re.compile(r"[^:<>@,;\"\\]+:\s*;")
_MSG_ID = re.compile(r"<?([!-;=?A-~]+@[!-;=?-~]+)>?")
_CONTENT_ID = re.compile(r"<?([!-;=?-~]+)>?")  # many mailers write Content-IDs without "@"
_XIMSS_TIME = re.compile(r"(\d{8}T\d{6})Z?")
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")  # what getfqdn() may give
_SEED = re.compile(r"[A-Za-z0-9]{1,32}")
_LINE_BREAKS = re.compile(r"[ \t\r\n]*[\r\n][ \t\r\n]*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FILE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STUFFED = re.compile(r" |>|From ")
_FLOW_TOKEN = re.compile(r" +|[^ ]+ *")
_LONG_LINE = re.compile(rb"[^\r\n]{999}")
_PARAM_SAFE = "!#$&+^`{|}"  # RFC 2231 attribute-char punctuation that quote() would escape


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


def _bad(text: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, text)


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
            return [_utf8("".join(f"{line}\r\n" for line in lead)), *self.body]
        return [_utf8("\r\n".join([*lead, *self.headers]) + "\r\n\r\n"), *self.body]


@dataclass(slots=True)
class _Context:
    resolve: Resolver
    max_bytes: int
    seed: str
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
) -> bytes:
    """The message the EMail element describes, as RFC 5322 bytes with CRLF line ends."""
    if not _HOSTNAME.fullmatch(hostname):
        raise ValueError("hostname must be a domain name")
    seed = boundary_seed if boundary_seed is not None else secrets.token_hex(8)
    if not _SEED.fullmatch(seed):
        raise ValueError("boundary_seed must be 1-32 letters or digits")
    if email_elem.tag != "EMail":
        raise _bad("EMail element expected")
    for attribute in ("sign", "encrypt"):
        if (email_elem.get(attribute) or "no").strip().lower() != "no":
            raise BridgeError(ErrorKind.NOT_SUPPORTED, "S/MIME is not supported")
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    if message_id is None:
        message_id = f"<ximss-{secrets.token_hex(12)}@{hostname}>"
    try:
        message_id = _msg_id(message_id)
    except BridgeError as exc:
        raise ValueError("message_id must be <left@right>") from exc
    generated = [_fold("Date", email.utils.format_datetime(now)), f"Message-ID: {message_id}"]
    context = _Context(resolve, max_bytes, seed, generated=generated)
    message = b"".join(_message(email_elem, context, 0, skip_bcc))
    if len(message) > max_bytes:
        raise BridgeError(ErrorKind.LIMIT, "message too large")
    return message


def envelope_recipients(email_elem: etree._Element) -> list[str]:
    """The addresses of the To, Cc and Bcc elements, in order, once each (compared ignoring
    case): messageSubmit's recipients when no Envelope-To is given. Each must have a domain."""
    seen: set[str] = set()
    recipients = []
    for child in _elements(email_elem):
        if child.tag.lower() not in ("to", "cc", "bcc"):
            continue
        mailbox = _mailbox(child)
        if mailbox is None or mailbox[1] is None:
            continue
        address = mailbox[1]
        match = _ADDRESS.fullmatch(address)
        if match is None or match[1] is None:
            raise _bad(f"incomplete address in {child.tag}")
        if address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(address)
    return recipients


def sender_address(email_elem: etree._Element) -> str | None:
    """The address responsible for the message: Sender's if given (RFC 5322 3.6.2), else the
    first From address; None when there is neither. BAD_REQUEST if one is not an address."""
    found: dict[str, str] = {}
    for child in _elements(email_elem):
        lower = child.tag.lower()
        if lower in ("sender", "from") and lower not in found:
            mailbox = _mailbox(child)
            if mailbox is not None and mailbox[1] is not None:
                found[lower] = mailbox[1]
    return found.get("sender") or found.get("from")


# The message and its header.


def _message(
    email_elem: etree._Element, context: _Context, depth: int, skip_bcc: bool
) -> list[bytes]:
    if depth > MAX_MIME_DEPTH:
        raise _bad("MIME parts nested too deeply")
    _no_loose_text(email_elem, "EMail")
    fields: list[tuple[str, list[str] | str]] = []
    addresses: dict[str, list[str]] = {}
    once: set[str] = set()
    bodies = []
    for child in _elements(email_elem):
        tag = child.tag
        if tag in BODY_TAGS:
            bodies.append(child)
            continue
        lower = tag.lower()
        if not _FIELD_NAME.fullmatch(tag) or lower in NOT_FIELDS:
            raise _bad("invalid header field element")
        if _elements(child):
            raise _bad(f"header field {tag} has child elements")
        if lower in MADE_FIELDS or (skip_bcc and lower in BLIND_FIELDS):
            continue
        if lower in ADDRESS_FIELDS:
            mailbox = _mailbox(child)
            if mailbox is None:
                continue
            if lower not in addresses:
                addresses[lower] = []
                fields.append((tag, addresses[lower]))
            addresses[lower].append(_render_mailbox(tag, *mailbox))
            continue
        if lower in ONCE_FIELDS:
            if lower in once:
                raise _bad(f"more than one {tag} field")
            once.add(lower)
        fields.append((tag, _field_value(tag, lower, _loose_text(child))))
    header = [
        _fold(name, ", ".join(value) if isinstance(value, list) else value)
        for name, value in fields
    ]
    if depth == 0:
        header += [line for line in context.generated if line.split(":", 1)[0].lower() not in once]
    if len(bodies) > 1:
        raise _bad("EMail has more than one body")
    if not bodies:
        return [_utf8("".join(line + "\r\n" for line in header) + "\r\n")]
    part = _body(bodies[0], context, depth + 1)
    return part.chunks([*header, "MIME-Version: 1.0"])


def _field_value(tag: str, lower: str, text: str) -> str:
    value = _header_text(text)
    if lower in DATE_FIELDS:
        return _date(value)
    if lower in MSG_ID_FIELDS:
        return _msg_id(value)
    if lower in ASCII_FIELDS:
        if not value.isascii():
            raise _bad(f"{tag} must be ASCII")
        return value
    return _unstructured(value, len(tag))


def _header_text(text: str) -> str:
    value = _LINE_BREAKS.sub(" ", text).strip()
    if _CONTROL.search(value):
        raise _bad("control character in a header field")
    return value


def _mailbox(elem: etree._Element) -> tuple[str, str | None] | None:
    """(real name, address) of an address element; address None for an empty group; None when
    the element is empty."""
    text = _header_text(_loose_text(elem))
    real = _header_text(elem.get("realName") or "")
    if not text:
        return None
    if not real and text.endswith(">") and "<" in text:
        cut = text.rfind("<")
        real, text = _unquote(text[:cut].strip()), text[cut + 1 : -1].strip()
    elif text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not real and text.isascii() and _EMPTY_GROUP.fullmatch(text):
        return text, None
    if not _ADDRESS.fullmatch(text):
        raise _bad(f"invalid address in {elem.tag}")
    return real, text


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def _render_mailbox(tag: str, real: str, address: str | None) -> str:
    if address is None:
        return real  # an empty group, kept as text
    if tag.lower() == "return-path":
        return f"<{address}>"
    if not real:
        return address
    if real.isascii() and "=?" not in real:
        return '"' + real.replace("\\", "\\\\").replace('"', '\\"') + f'" <{address}>'
    return " ".join(_encoded_words(real, len(tag))) + f" <{address}>"


def _date(value: str) -> str:
    try:
        if match := _XIMSS_TIME.fullmatch(value):
            moment = dt.datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
        else:
            moment = email.utils.parsedate_to_datetime(value)
        return email.utils.format_datetime(moment)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise _bad("invalid date") from exc


def _msg_id(value: str, pattern: re.Pattern[str] = _MSG_ID) -> str:
    value = value.strip()
    match = pattern.fullmatch(value)
    if match is None or value.startswith("<") != value.endswith(">"):
        raise _bad("invalid message identifier")
    return f"<{match[1]}>"


def _unstructured(value: str, name_length: int) -> str:
    words = value.split(" ")
    if value.isascii() and "=?" not in value and max(map(len, words)) + name_length + 2 <= MAX_LINE:
        return value
    return " ".join(_encoded_words(value, name_length))


def _encoded_words(text: str, name_length: int) -> list[str]:
    """RFC 2047 B words of UTF-8 text, never splitting a character; the first one short enough
    to share a line with `Name: ` (when the name leaves room for one)."""
    room = (FOLD_WIDTH - name_length - len(": =?utf-8?b??=")) // 4 * 3
    limit = room if 12 <= room < WORD_OCTETS else WORD_OCTETS
    chunks: list[bytes] = []
    current = b""
    for char in text:
        octets = _utf8(char)
        if len(current) + len(octets) > limit and current:
            limit = WORD_OCTETS
            chunks.append(current)
            current = b""
        current += octets
    chunks.append(current)
    return [f"=?utf-8?b?{base64.b64encode(chunk).decode()}?=" for chunk in chunks]


def _fold(name: str, value: str) -> str:
    """`name: value` folded at spaces (RFC 5322 2.2.3: unfolding restores it exactly)."""
    line = f"{name}: {value}" if value else f"{name}:"
    if len(_utf8(line)) <= FOLD_WIDTH:
        return line
    lines: list[str] = []
    current = ""
    for index, word in enumerate(line.split(" ")):
        candidate = f"{current} {word}" if index else word
        # Never right after "Name:": some parsers keep the fold's blank in the value.
        if index > 1 and current.strip() and len(_utf8(candidate)) > FOLD_WIDTH:
            lines.append(current)
            current = " " + word
        else:
            current = candidate
    lines.append(current)
    if any(len(_utf8(each)) > MAX_LINE for each in lines):
        raise _bad(f"header field {name} too long")
    return "\r\n".join(lines)


# Body parts.


def _body(elem: etree._Element, context: _Context, depth: int) -> _Part:
    if depth > MAX_MIME_DEPTH:
        raise _bad("MIME parts nested too deeply")
    if elem.tag == "copyMIME":
        return _resolved(elem, context.resolve(elem), context, whole=elem.get("partID") is None)
    if elem.tag != "MIME":
        if elem.tag in NOT_OFFERED:
            raise BridgeError(ErrorKind.NOT_SUPPORTED, f"{elem.tag} parts are not supported")
        raise _bad(f"unexpected element {elem.tag} in MIME")
    if elem.get("fileName") is not None:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "file storage is not available")
    if (elem.get("truncated") or "").lower() == "yes":
        raise _bad("a MIME part shown truncated cannot be composed; copy it with copyMIME")
    children = _elements(elem)
    text = _loose_text(elem)
    if elem.get("uploadID") is not None:
        if children or text.strip():
            raise _bad("a MIME part with uploadID has no content of its own")
        return _resolved(elem, context.resolve(elem), context, whole=False)
    cards = bool(children) and all(child.tag == "vCard" for child in children)
    default = ("text", "directory") if cards else ("multipart", "mixed") if children else None
    media = _media_type(elem) or default or ("text", "plain")
    if media[0] == "multipart":
        _no_loose_text(elem, "multipart MIME")
        if not children:
            raise _bad("multipart MIME part has no parts")
        parts = [_body(child, context, depth + 1) for child in children]
        return _multipart(elem, media[1], parts, context)
    if media == ("message", "rfc822") and children:
        if len(children) != 1 or children[0].tag != "EMail":
            raise _bad("message/rfc822 MIME part must hold one EMail")
        _no_loose_text(elem, "message/rfc822 MIME")
        body = _message(children[0], context, depth + 1, skip_bcc=False)
        return _Part(_content_headers(elem, media, [], None), body)
    if cards and media[0] == "text":  # the spec's way to put contacts into a message
        _no_loose_text(elem, "vCard MIME")
        text = "".join(xml_to_vcard(card) for card in children)
        children = []
    for child in children:
        if child.tag in NOT_OFFERED:
            raise BridgeError(ErrorKind.NOT_SUPPORTED, f"{child.tag} parts are not supported")
        raise _bad(f"unexpected element {child.tag} in a {media[0]}/{media[1]} part")
    if media[0] != "text" and not text.strip():
        raise _bad("MIME part has no content; attach it with uploadID or copyMIME")
    return _inline(elem, media, text, context)


def _multipart(elem: etree._Element, subtype: str, parts: list[_Part], context: _Context) -> _Part:
    boundary = context.boundary(parts)
    body: list[bytes] = []
    for part in parts:
        body += [f"--{boundary}\r\n".encode(), *part.chunks(), b"\r\n"]
    body.append(f"--{boundary}--\r\n".encode())
    headers = _content_headers(elem, ("multipart", subtype), [("boundary", boundary)], None)
    return _Part(headers, body)


def _inline(elem: etree._Element, media: tuple[str, str], text: str, context: _Context) -> _Part:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    params = []
    if media == ("text", "plain") and (elem.get("format") or "").strip().lower() == "flowed":
        text = flow(text)
        params.append(("format", "flowed"))
    if media[0] == "text":
        params.append(("charset", "utf-8"))
    data = _utf8(text.replace("\n", "\r\n"))
    encoding = None if data.isascii() else "8bit"
    if _LONG_LINE.search(data):
        if media[0] in ("message", "multipart"):
            raise _bad(f"a line of a {media[0]}/{media[1]} part is too long")
        encoding = "quoted-printable"
        data = b"\r\n".join(
            binascii.b2a_qp(line, quotetabs=False, istext=True).replace(b"\n", b"\r\n")
            for line in data.split(b"\r\n")
        )
    context.spend(len(data))
    return _Part(_content_headers(elem, media, params, None, encoding), [data])


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
        return _Part(_content_headers(elem, ("message", "rfc822"), [], None, encoding), [data])
    declared = _parse_content_type(found.content_type)
    media = _media_type(elem) or (declared[0] if declared else ("application", "octet-stream"))
    params = []
    charset = (elem.get("charset") or "").strip() or (declared[1] if declared else None)
    if media[0] == "text" and charset and _TOKEN.fullmatch(charset):
        params.append(("charset", charset.lower()))
    context.spend(4 * ((len(data) + 2) // 3) + 2 * ((len(data) + 56) // 57))
    body = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return _Part(_content_headers(elem, media, params, found.filename or "", "base64"), [body])


def _content_headers(
    elem: etree._Element,
    media: tuple[str, str],
    params: list[tuple[str, str]],
    upload_name: str | None,
    encoding: str | None = None,
) -> list[str]:
    """A part's Content-* fields. `upload_name`: None for inline content, else the upload's file
    name ("" when it has none), which also makes Content-Disposition default to attachment."""
    disposition = elem.get("disposition")
    if disposition is not None:
        disposition = disposition.strip().lower()
        if not _TOKEN.fullmatch(disposition):
            raise _bad("invalid disposition")
    filename = _filename(elem.get("disposition-filename")) or _filename(upload_name)
    if disposition == "none":
        disposition = filename = None
    elif disposition is None and (filename or upload_name is not None):
        disposition = "attachment"
    type_params = [*params, ("name", filename)] if filename else params
    headers = [_fold("Content-Type", "; ".join([f"{media[0]}/{media[1]}", *_params(type_params)]))]
    if disposition:
        disposition_params = _params([("filename", filename)] if filename else [])
        headers.append(_fold("Content-Disposition", "; ".join([disposition, *disposition_params])))
    if encoding:
        headers.append(f"Content-Transfer-Encoding: {encoding}")
    content_id = elem.get("Content-ID")
    if content_id is not None:
        headers.append(_fold("Content-ID", _msg_id(_header_text(content_id), _CONTENT_ID)))
    description = elem.get("Content-Description")
    if description is not None:
        value = _unstructured(_header_text(description), len("Content-Description"))
        headers.append(_fold("Content-Description", value))
    return headers


def _media_type(elem: etree._Element) -> tuple[str, str] | None:
    main, sub = elem.get("type"), elem.get("subtype")
    if main is None and sub is None:
        return None
    main = (main or "").strip().lower()
    sub = (sub or "").strip().lower() if sub is not None else DEFAULT_SUBTYPE.get(main, "")
    if not _TOKEN.fullmatch(main) or not _TOKEN.fullmatch(sub):
        raise _bad("invalid MIME type or subtype")
    return main, sub


def _parse_content_type(value: str | None) -> tuple[tuple[str, str], str | None] | None:
    """An upload's HTTP Content-Type as ((type, subtype), charset); None if unusable."""
    if not value:
        return None
    media, *params = value.split(";")
    main, _, sub = media.strip().lower().partition("/")
    if not _TOKEN.fullmatch(main) or not _TOKEN.fullmatch(sub):
        return None
    charset = None
    for param in params:
        key, _, raw = param.partition("=")
        if key.strip().lower() == "charset":
            charset = raw.strip().strip('"')
    return (main, sub), charset


def _filename(raw: str | None) -> str | None:
    """A file name as a recipient should see it: no directories, no control characters."""
    if not raw:
        return None
    name = _FILE_CONTROL.sub("", raw).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or None


def _params(params: list[tuple[str, str]]) -> list[str]:
    """Parameters quoted (as the spec shows them); RFC 2231 for non-ASCII or long values."""
    out = []
    for key, value in params:
        # A plain quoted value reads everywhere; RFC 2231 only where it must.
        if value.isascii() and len(value) <= MAX_QUOTED_PARAM:
            out.append(f'{key}="{_quote(value)}"')
        elif value.isascii():
            pieces = [value[i : i + PARAM_CHUNK] for i in range(0, len(value), PARAM_CHUNK)]
            out += [f'{key}*{n}="{_quote(piece)}"' for n, piece in enumerate(pieces)]
        else:
            pieces = _rfc2231_pieces(value)
            if len(pieces) == 1:
                out.append(f"{key}*=utf-8''{pieces[0]}")
            else:
                out.append(f"{key}*0*=utf-8''{pieces[0]}")
                out += [f"{key}*{n}*={piece}" for n, piece in enumerate(pieces[1:], 1)]
    return out


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _rfc2231_pieces(value: str) -> list[str]:
    """The value percent-encoded (RFC 2231), in pieces of about PARAM_CHUNK characters that
    never split a character (some readers decode each piece alone)."""
    pieces = [""]
    room = PARAM_CHUNK - len("utf-8''")  # the first piece carries the charset
    for char in value:
        quoted = urllib.parse.quote(_utf8(char), safe=_PARAM_SAFE)
        if pieces[-1] and len(pieces[-1]) + len(quoted) > room:
            pieces.append("")
            room = PARAM_CHUNK
        pieces[-1] += quoted
    return pieces


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


def _elements(elem: etree._Element) -> list[etree._Element]:
    """Child elements, comments and processing instructions left out."""
    return [child for child in elem if isinstance(child.tag, str)]


def _loose_text(elem: etree._Element) -> str:
    """The element's own text: before, between and after its children."""
    return (elem.text or "") + "".join(child.tail or "" for child in elem)


def _no_loose_text(elem: etree._Element, what: str) -> None:
    if _loose_text(elem).strip():
        raise _bad(f"text in {what} element")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad("text is not valid Unicode") from exc


def _contains(chunks: list[bytes], marker: bytes) -> bool:
    """Whether the concatenated chunks contain marker, without concatenating them."""
    keep = len(marker) - 1
    carry = b""
    for chunk in chunks:
        if marker in carry + chunk[:keep] or marker in chunk:
            return True
        carry = (carry + chunk[-keep:])[-keep:]
    return False
