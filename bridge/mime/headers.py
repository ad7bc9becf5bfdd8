"""The header fields of a message composed from the XIMSS `<EMail>` (compose.py): the message's
fields (names, addresses, values, RFC 2047 encoded words, folding) and each part's Content-*
fields with their parameters (quoted strings, RFC 2231).

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

A part's Content-* fields (`content_headers`), from its MIME element's attributes:
- Content-Disposition is written for uploads, for parts with a filename, and for a `disposition`
  attribute; its type is the attribute (any token), else attachment. The filename is
  `disposition-filename`, else the upload's name, without path or control characters; it is
  also the Content-Type name. ASCII names are quoted strings, as the spec shows; non-ASCII ones
  use RFC 2231 (UTF-8, in continuations of whole characters to keep lines short).
  disposition="none": neither header nor name, as the spec says.
- Content-ID and Content-Description attributes become those fields of the part.
Parameters (also the charset, format and boundary compose.py gives) are quoted strings; ASCII
values too long for one line are split into RFC 2231 continuations. Bad input is BAD_REQUEST.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import re
import urllib.parse

from lxml import etree

from bridge.errors import BridgeError, ErrorKind
from bridge.ximss.fields import ADDRESS_FIELDS, DATE_FIELDS

FOLD_WIDTH = 78  # RFC 5322 2.1.1 SHOULD
MAX_LINE = 998  # RFC 5322 2.1.1 MUST (octets without CRLF)
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

_FIELD_NAME = re.compile(r"[!-9;-~]{1,100}")
TOKEN = re.compile(r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]{1,127}")
_ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-\u0080-\U0010ffff]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
ADDRESS = re.compile(
    rf'(?:{_DOT_ATOM}|"(?:[^"\\\x00-\x1f\x7f]|\\[ -~])*")(@(?:{_DOT_ATOM}|\[[!-Z^-~]*\]))?'
)
_EMPTY_GROUP = re.compile(r"[^:<>@,;\"\\]+:\s*;")
_MSG_ID = re.compile(r"<?([!-;=?A-~]+@[!-;=?-~]+)>?")
_CONTENT_ID = re.compile(r"<?([!-;=?-~]+)>?")  # many mailers write Content-IDs without "@"
_XIMSS_TIME = re.compile(r"(\d{8}T\d{6})Z?")
_LINE_BREAKS = re.compile(r"[ \t\r\n]*[\r\n][ \t\r\n]*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FILE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PARAM_SAFE = "!#$&+^`{|}"  # RFC 2231 attribute-char punctuation that urllib's quote() escapes


def bad(text: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, text)


def header_lines(
    email_elem: etree._Element, skip_bcc: bool
) -> tuple[list[str], set[str], list[etree._Element]]:
    """The EMail element's header fields as folded lines, in document order; also the fields
    that may appear once found there (lower case), and the body elements (MIME, copyMIME)."""
    fields: list[tuple[str, list[str] | str]] = []
    addresses: dict[str, list[str]] = {}
    once: set[str] = set()
    bodies = []
    for child in elements(email_elem):
        tag = child.tag
        if tag in BODY_TAGS:
            bodies.append(child)
            continue
        lower = tag.lower()
        if not _FIELD_NAME.fullmatch(tag) or lower in NOT_FIELDS:
            raise bad("invalid header field element")
        if elements(child):
            raise bad(f"header field {tag} has child elements")
        if lower in MADE_FIELDS or (skip_bcc and lower in BLIND_FIELDS):
            continue
        if lower in ADDRESS_FIELDS:
            mailbox = parse_mailbox(child)
            if mailbox is None:
                continue
            if lower not in addresses:
                addresses[lower] = []
                fields.append((tag, addresses[lower]))
            addresses[lower].append(_render_mailbox(tag, *mailbox))
            continue
        if lower in ONCE_FIELDS:
            if lower in once:
                raise bad(f"more than one {tag} field")
            once.add(lower)
        fields.append((tag, _field_value(tag, lower, loose_text(child))))
    header = [
        fold(name, ", ".join(value) if isinstance(value, list) else value) for name, value in fields
    ]
    return header, once, bodies


def _field_value(tag: str, lower: str, text: str) -> str:
    value = header_text(text)
    if lower in DATE_FIELDS:
        return _date(value)
    if lower in MSG_ID_FIELDS:
        return msg_id(value)
    if lower in ASCII_FIELDS:
        if not value.isascii():
            raise bad(f"{tag} must be ASCII")
        return value
    return unstructured(value, len(tag))


def header_text(text: str) -> str:
    value = _LINE_BREAKS.sub(" ", text).strip()
    if _CONTROL.search(value):
        raise bad("control character in a header field")
    return value


def parse_mailbox(elem: etree._Element) -> tuple[str, str | None] | None:
    """(real name, address) of an address element; address None for an empty group; None when
    the element is empty."""
    text = header_text(loose_text(elem))
    real = header_text(elem.get("realName") or "")
    if not text:
        return None
    if not real and text.endswith(">") and "<" in text:
        cut = text.rfind("<")
        real, text = _unquote(text[:cut].strip()), text[cut + 1 : -1].strip()
    elif text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not real and text.isascii() and _EMPTY_GROUP.fullmatch(text):
        return text, None
    if not ADDRESS.fullmatch(text):
        raise bad(f"invalid address in {elem.tag}")
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
        return f'"{quote(real)}" <{address}>'
    return " ".join(_encoded_words(real, len(tag))) + f" <{address}>"


def _date(value: str) -> str:
    try:
        if match := _XIMSS_TIME.fullmatch(value):
            moment = dt.datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
        else:
            moment = email.utils.parsedate_to_datetime(value)
        return email.utils.format_datetime(moment)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise bad("invalid date") from exc


def msg_id(value: str, pattern: re.Pattern[str] = _MSG_ID) -> str:
    value = value.strip()
    match = pattern.fullmatch(value)
    if match is None or value.startswith("<") != value.endswith(">"):
        raise bad("invalid message identifier")
    return f"<{match[1]}>"


def unstructured(value: str, name_length: int) -> str:
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
        octets = utf8(char)
        if len(current) + len(octets) > limit and current:
            limit = WORD_OCTETS
            chunks.append(current)
            current = b""
        current += octets
    chunks.append(current)
    return [f"=?utf-8?b?{base64.b64encode(chunk).decode()}?=" for chunk in chunks]


def fold(name: str, value: str) -> str:
    """`name: value` folded at spaces (RFC 5322 2.2.3: unfolding restores it exactly)."""
    # The last guard against header injection: every field passes here, and a value that
    # escaped its own check (an iCalendar METHOD with CRLF did, tests/fuzz) must not end the line.
    if "\r" in value or "\n" in value:
        raise bad(f"line break in header field {name}")
    line = f"{name}: {value}" if value else f"{name}:"
    if len(utf8(line)) <= FOLD_WIDTH:
        return line
    lines: list[str] = []
    current = ""
    for index, word in enumerate(line.split(" ")):
        candidate = f"{current} {word}" if index else word
        # Never right after "Name:": some parsers keep the fold's blank in the value.
        if index > 1 and current.strip() and len(utf8(candidate)) > FOLD_WIDTH:
            lines.append(current)
            current = " " + word
        else:
            current = candidate
    lines.append(current)
    if any(len(utf8(each)) > MAX_LINE for each in lines):
        raise bad(f"header field {name} too long")
    return "\r\n".join(lines)


# A part's Content-* fields.


def content_headers(
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
        if not TOKEN.fullmatch(disposition):
            raise bad("invalid disposition")
    filename = filename_of(elem.get("disposition-filename")) or filename_of(upload_name)
    if disposition == "none":
        disposition = filename = None
    elif disposition is None and (filename or upload_name is not None):
        disposition = "attachment"
    type_params = [*params, ("name", filename)] if filename else params
    headers = [
        fold("Content-Type", "; ".join([f"{media[0]}/{media[1]}", *format_params(type_params)]))
    ]
    if disposition:
        disposition_params = format_params([("filename", filename)] if filename else [])
        headers.append(fold("Content-Disposition", "; ".join([disposition, *disposition_params])))
    if encoding:
        headers.append(f"Content-Transfer-Encoding: {encoding}")
    content_id = elem.get("Content-ID")
    if content_id is not None:
        headers.append(fold("Content-ID", msg_id(header_text(content_id), _CONTENT_ID)))
    description = elem.get("Content-Description")
    if description is not None:
        value = unstructured(header_text(description), len("Content-Description"))
        headers.append(fold("Content-Description", value))
    return headers


def filename_of(raw: str | None) -> str | None:
    """A file name as a recipient should see it: no directories, no control characters."""
    if not raw:
        return None
    name = _FILE_CONTROL.sub("", raw).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or None


def format_params(params: list[tuple[str, str]]) -> list[str]:
    """Parameters quoted (as the spec shows them); RFC 2231 for non-ASCII or long values."""
    out = []
    for key, value in params:
        # A plain quoted value reads everywhere; RFC 2231 only where it must.
        if value.isascii() and len(value) <= MAX_QUOTED_PARAM:
            out.append(f'{key}="{quote(value)}"')
        elif value.isascii():
            pieces = [value[i : i + PARAM_CHUNK] for i in range(0, len(value), PARAM_CHUNK)]
            out += [f'{key}*{n}="{quote(piece)}"' for n, piece in enumerate(pieces)]
        else:
            pieces = _rfc2231_pieces(value)
            if len(pieces) == 1:
                out.append(f"{key}*=utf-8''{pieces[0]}")
            else:
                out.append(f"{key}*0*=utf-8''{pieces[0]}")
                out += [f"{key}*{n}*={piece}" for n, piece in enumerate(pieces[1:], 1)]
    return out


def quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _rfc2231_pieces(value: str) -> list[str]:
    """The value percent-encoded (RFC 2231), in pieces of about PARAM_CHUNK characters that
    never split a character (some readers decode each piece alone)."""
    pieces = [""]
    room = PARAM_CHUNK - len("utf-8''")  # the first piece carries the charset
    for char in value:
        quoted = urllib.parse.quote(utf8(char), safe=_PARAM_SAFE)
        if pieces[-1] and len(pieces[-1]) + len(quoted) > room:
            pieces.append("")
            room = PARAM_CHUNK
        pieces[-1] += quoted
    return pieces


# Small helpers.


def elements(elem: etree._Element) -> list[etree._Element]:
    """Child elements, comments and processing instructions left out."""
    return [child for child in elem if isinstance(child.tag, str)]


def loose_text(elem: etree._Element) -> str:
    """The element's own text: before, between and after its children."""
    return (elem.text or "") + "".join(child.tail or "" for child in elem)


def utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad("text is not valid Unicode") from exc
