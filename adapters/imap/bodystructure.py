"""IMAP BODYSTRUCTURE (RFC 3501 section 7.4.2, RFC 9051 section 7.5.2) as a `MimePart` tree.

Sans-IO like the wire parser: it reads the value tree `ResponseParser` made of the list after
``BODYSTRUCTURE`` (the shorter ``BODY`` form works too: its extension fields are simply
missing). Whatever the server sends, it returns a best-effort part and never raises: a value
that is no body becomes an application/octet-stream leaf, missing fields keep their defaults.

Section numbers follow RFC 3501 section 6.4.5:

* the parts of a multipart at section S are S.1, S.2, ... ("1", "2", ... at the top);
* a message's top-level body, when single-part, is part 1 of the message: "1" for the stored
  message, "3.1" for a message/rfc822 part "3". Its body is that section and its header
  section + ".MIME" (Dovecot answers with the message's header there);
* a message's top-level multipart has no number of its own in RFC 3501, so it carries the
  message's section: "" for the stored message, "3" for the message/rfc822 part "3" (the same
  section as its parent). `fetch_section` of it gives the whole message, header included;
  its header is "HEADER" / "3.HEADER" and its body "TEXT" / "3.TEXT".

So every leaf's section fetches exactly its body and section + ".MIME" its header; a nested
multipart's section fetches its body (preamble, parts, epilogue) and a message/rfc822 part's
section the enclosed message. tests/integration/test_bodystructure_dovecot.py checks this
against Dovecot.

What Dovecot 2.3 sends, and how it is read here:

* type, subtype, encoding, disposition and parameter names in the case the header had them
  ("Application" "X-Foo" ("NAME" ...) ... "BASE64"): lower-cased here;
* RFC 2231 parameters with their ``*`` names: continuations joined by Dovecot into one
  ``filename*`` (``utf-8''...``, plain segments percent-encoded) unless a segment is missing,
  then passed on as ``name*0*``, ``name*2``; both forms are decoded here, the extended value
  winning over a plain one of the same name;
* RFC 2047 words in values ("=?UTF-8?B?...?=") and 8-bit header bytes as they were: decoded
  here in every parameter value but ``boundary`` (whose alphabet includes "=?") and in the
  description (words found and joined by `bridge.mime.decode.join_words`); bytes in no
  charset are read as UTF-8, else Latin-1;
* a multipart without a boundary, or without any part, as a multipart holding one empty
  text/plain part ("1", size 0): its text is only in BODY[TEXT];
* message/global as a basic leaf (no envelope, no enclosed structure). A message part is read
  as enclosing a message only when the envelope and body are where RFC 9051 puts them.
"""

from __future__ import annotations

import base64
import codecs
import functools
import re
from typing import Any, TypeGuard
from urllib.parse import unquote_to_bytes

from adapters.imap.wire_types import Value
from adapters.protocols import MimePart
from bridge.mime.decode import join_words

# Nesting (multiparts and enclosed messages) followed before a part's children are dropped;
# Dovecot's own parser stops at 100. Also keeps the recursion far from Python's limit.
MAX_DEPTH = 100
# Parts read from one structure before the rest are dropped (Dovecot's default maximum).
MAX_PARTS = 10_000

_OCTET_STREAM = ("application", "octet-stream")
# Subtype to assume when a server names the type only.
_DEFAULT_SUBTYPE = {"text": "plain", "multipart": "mixed"}
# message/... subtypes whose body fields carry the enclosed envelope, structure and lines.
_ENCAPSULATING = frozenset({"rfc822", "global"})
# Basic fields, in order after type and subtype (RFC 3501 body-fields).
_PARAMS, _ID, _DESCRIPTION, _ENCODING, _SIZE = 2, 3, 4, 5, 6
# Where the extension data (md5, disposition, language, location) starts: text parts have
# their line count first, message/rfc822 envelope, body and line count.
_EXTENSION_AT = {"basic": 7, "text": 8, "message": 10}
# Parameters kept as sent: a boundary may legitimately contain "=?" and "?=".
_VERBATIM_PARAMS = frozenset({"boundary"})
# Codecs that decode no charset a mail would name, or decode slowly (punycode is quadratic).
_REFUSED_CODECS = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"}
)
_CHARSET_NAME = re.compile(r"[A-Za-z0-9._:+-]{1,40}")
# An RFC 2231 parameter name: name*, name*N or name*N*. More than 4 digits is no continuation.
_EXTENDED_NAME = re.compile(r"(?P<name>[^*]+)\*(?:(?P<index>[0-9]{1,4})(?P<encoded>\*)?)?")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_MAX_NUMBER_DIGITS = 20


def parse_bodystructure(
    value: Value, *, max_depth: int = MAX_DEPTH, max_parts: int = MAX_PARTS
) -> MimePart:
    """The stored message's top-level part from its BODYSTRUCTURE value. Never raises."""
    return _Reader(max_depth, max_parts).message(value, "", 0)


class _Reader:
    """One structure's walk: the limits and how many parts may still be read."""

    __slots__ = ("_max_depth", "_parts_left")

    def __init__(self, max_depth: int, max_parts: int) -> None:
        self._max_depth = max_depth
        self._parts_left = max_parts

    def message(self, body: object, section: str, depth: int) -> MimePart:
        """The top-level part of the message at `section` ("" for the stored one)."""
        if _is_multipart(body):
            return self._multipart(body, section, depth)
        return self._single(body, _join(section, "1"), depth)

    def _may_descend(self, depth: int) -> bool:
        if depth >= self._max_depth or self._parts_left <= 0:
            return False
        self._parts_left -= 1
        return True

    def _multipart(self, body: list[Any], section: str, depth: int) -> MimePart:
        count = 0
        while count < len(body) and isinstance(body[count], list):
            count += 1
        children: list[MimePart] = []
        for index, child in enumerate(body[:count], 1):
            if not self._may_descend(depth):
                break
            number = _join(section, str(index))
            if _is_multipart(child):
                children.append(self._multipart(child, number, depth + 1))
            else:
                children.append(self._single(child, number, depth + 1))
        rest = body[count:]
        # After the parts: subtype, then the extension data (RFC 3501 body-ext-mpart).
        disposition, disposition_params = _disposition(_at(rest, 2))
        return MimePart(
            section=section,
            type="multipart",
            subtype=_token(_at(rest, 0)) or _DEFAULT_SUBTYPE["multipart"],
            params=_params(_at(rest, 1)),
            disposition=disposition,
            disposition_params=disposition_params,
            language=_language(_at(rest, 3)),
            location=_text(_at(rest, 4)),
            children=tuple(children),
        )

    def _single(self, body: object, section: str, depth: int) -> MimePart:
        if not isinstance(body, list):
            return MimePart(section, *_OCTET_STREAM)
        kind, subtype = _media_type(_at(body, 0), _at(body, 1))
        lines: int | None = None
        children: tuple[MimePart, ...] = ()
        extension = _EXTENSION_AT["basic"]
        if kind == "text":
            lines, extension = _number(_at(body, 7)), _EXTENSION_AT["text"]
        elif kind == "message" and subtype in _ENCAPSULATING and _encloses(body):
            lines, extension = _number(_at(body, 9)), _EXTENSION_AT["message"]
            if self._may_descend(depth):
                children = (self.message(body[8], section, depth + 1),)
        disposition, disposition_params = _disposition(_at(body, extension + 1))
        description = _text(_at(body, _DESCRIPTION))
        return MimePart(
            section=section,
            type=kind,
            subtype=subtype,
            params=_params(_at(body, _PARAMS)),
            content_id=_text(_at(body, _ID)),
            description=_words(description) if description is not None else None,
            encoding=_token(_at(body, _ENCODING)) or "7bit",
            size=_number(_at(body, _SIZE)) or 0,
            lines=lines,
            disposition=disposition,
            disposition_params=disposition_params,
            language=_language(_at(body, extension + 2)),
            location=_text(_at(body, extension + 3)),
            children=children,
        )


# -- structure ------------------------------------------------------------------------------


def _join(section: str, number: str) -> str:
    return f"{section}.{number}" if section else number


def _at(values: list[Any], index: int) -> object:
    return values[index] if index < len(values) else None


def _is_multipart(body: object) -> TypeGuard[list[Any]]:
    return isinstance(body, list) and bool(body) and isinstance(body[0], list)


def _is_body(value: object) -> bool:
    """Shaped like a body: a multipart, or a basic part's seven fields (not a disposition)."""
    return isinstance(value, list) and (_is_multipart(value) or len(value) >= 7)


def _encloses(body: list[Any]) -> bool:
    """The message part carries an envelope and a body where RFC 9051 puts them. Dovecot 2.3
    sends message/global as a basic part, whose md5 and disposition sit there instead."""
    return len(body) > 8 and (body[7] is None or isinstance(body[7], list)) and _is_body(body[8])


def _media_type(kind_value: object, subtype_value: object) -> tuple[str, str]:
    kind, subtype = _token(kind_value), _token(subtype_value)
    if kind is None:
        return _OCTET_STREAM
    if subtype is None:
        subtype = _DEFAULT_SUBTYPE.get(kind)
        if subtype is None:
            return _OCTET_STREAM
    return kind, subtype


# -- fields ---------------------------------------------------------------------------------


def _text(value: object) -> str | None:
    """A string field; None for NIL and for anything that is no string."""
    if isinstance(value, bytes):
        return _unknown_charset(value)
    if isinstance(value, str):
        if value.isascii():
            return str(value)
        # Lone surrogates (only from callers other than the wire parser) would break encoding.
        return value.encode("utf-8", "replace").decode("utf-8")
    return None


def _token(value: object) -> str | None:
    """A case-insensitive name (type, subtype, encoding...) in lower case; None when empty."""
    text = _text(value)
    if text is None:
        return None
    return text.strip().lower() or None


def _number(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, bytes):  # a quoted number: not IMAP, but unambiguous
        value = value.decode("latin-1")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value) if len(value) <= _MAX_NUMBER_DIGITS else None
    return None


def _language(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(text for text in map(_text, value) if text)
    text = _text(value)
    return (text,) if text else ()


def _disposition(value: object) -> tuple[str | None, dict[str, str]]:
    if isinstance(value, list):
        kind = _token(_at(value, 0))
        return (kind, _params(_at(value, 1))) if kind is not None else (None, {})
    return _token(value), {}  # a bare string: not RFC 3501, but its meaning is plain


def _params(value: object) -> dict[str, str]:
    """A parameter list ("name" "value" ...) with RFC 2231 and RFC 2047 values decoded."""
    if not isinstance(value, list):
        return {}
    plain: dict[str, str] = {}
    extended: dict[str, list[tuple[int, bool, str]]] = {}
    for raw_name, raw_value in zip(value[::2], value[1::2], strict=False):
        name, text = _token(raw_name), _text(raw_value)
        if name is None or text is None:
            continue
        match = _EXTENDED_NAME.fullmatch(name)
        if match is None:
            plain.setdefault(name, text)
            continue
        index, encoded = match["index"], match["encoded"] is not None
        segment = (int(index), encoded) if index is not None else (0, True)
        extended.setdefault(match["name"], []).append((*segment, text))
    params = {
        name: text if name in _VERBATIM_PARAMS else _words(text) for name, text in plain.items()
    }
    for name, segments in extended.items():
        params[name] = _rfc2231(segments)
    return params


# -- decoding -------------------------------------------------------------------------------


def _rfc2231(segments: list[tuple[int, bool, str]]) -> str:
    """One parameter's segments (index, percent-encoded, text), in any order, joined and
    decoded; only an encoded first segment names the charset ("utf-8'en'%E2%82%AC")."""
    segments.sort(key=lambda segment: segment[0])  # stable: the first of duplicates stays first
    charset: str | None = None
    data = bytearray()
    seen: set[int] = set()
    for index, encoded, text in segments:
        if index in seen:
            continue
        if encoded:
            value = text
            if not seen and index == 0:
                fields = text.split("'", 2)
                if len(fields) == 3:
                    charset, value = fields[0], fields[2]
            data += unquote_to_bytes(value)
        else:
            data += text.encode("utf-8")
        seen.add(index)
    return _decode(bytes(data), charset)


def _words(text: str) -> str:
    """RFC 2047 encoded words decoded; adjacent words in one charset are decoded together (a
    character may be split between them), whitespace between words dropped, malformed words
    kept as they are."""
    return join_words(text, _word_bytes, _decode)


def _word_bytes(charset: str, kind: str, payload: str) -> tuple[str, bytes] | None:
    if kind in "bB":
        try:
            data = base64.b64decode(payload + "=" * (-len(payload) % 4))
        except ValueError:  # binascii.Error, or characters outside ASCII
            return None
    else:
        raw = payload.replace("_", " ").encode("utf-8", "replace")
        data = _Q_ESCAPE.sub(lambda escape: bytes.fromhex(escape[1].decode("ascii")), raw)
    return charset.partition("*")[0], data  # RFC 2231 section 5: charset*language


def _decode(data: bytes, charset: str | None) -> str:
    codec = _codec(charset) if charset else None
    if codec is not None:
        try:
            return data.decode(codec, "replace")
        except ValueError:  # a codec that rejects "replace" or this input outright
            pass
    return _unknown_charset(data)


def _unknown_charset(data: bytes) -> str:
    """Bytes in no known charset: UTF-8 if they are, else Latin-1 (which every byte is)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


@functools.lru_cache(maxsize=256)
def _codec(charset: str) -> str | None:
    """Python's codec for a MIME charset name, or None for unknown and unsuitable ones.
    Cached: a failed lookup tries an import each time."""
    if not _CHARSET_NAME.fullmatch(charset):
        return None
    try:
        info = codecs.lookup(charset)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CODECS:
        return None  # base64, rot13, zlib...: bytes-to-bytes or str-to-str
    return info.name
