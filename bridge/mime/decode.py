"""Decoding what a stored message holds into text: transfer encodings, charsets, RFC 2047 words,
raw header blocks and format=flowed lines; and text made safe for XML.

Best-effort throughout, never raising on bad input: a missing or lying charset is read as the
superset that mislabelled mail really uses (as browsers do), else UTF-8 when the bytes are valid
UTF-8, else windows-1252; malformed base64 loses what cannot be read; a character or escape split
by a cut (a partial fetch) is dropped.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Callable, Iterator

# What XML 1.0 cannot carry (C0 controls other than tab, CR, LF; surrogates; U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
# Charsets read as the superset that mislabelled mail really uses (as browsers do); "" means
# none worth trusting: UTF-8 when the bytes are valid UTF-8, else windows-1252.
_CHARSET_READ_AS = {
    "ascii": "", "iso8859-1": "cp1252", "gb2312": "gb18030", "gbk": "gb18030",
    "euc_kr": "cp949", "tis-620": "cp874",
    # Python codecs that are not mail charsets.
    "unicode-escape": "", "raw-unicode-escape": "", "undefined": "", "idna": "", "punycode": "",
}  # fmt: skip

# A word's (charset, method, payload) as (charset it is decoded in, bytes); None keeps it as text.
WordBytes = Callable[[str, str, str], tuple[str, bytes] | None]


def xml_safe(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry (controls, lone surrogates, U+FFFE/U+FFFF)."""
    return _NOT_XML.sub("", text)


def transfer_decode(raw: bytes, encoding: str, cut: bool) -> bytes:
    """A body's bytes without their Content-Transfer-Encoding (base64, quoted-printable)."""
    encoding = encoding.lower()
    if encoding == "base64":
        data = _NOT_BASE64.sub(b"", raw)
        data = data[: len(data) - 1] if len(data) % 4 == 1 else data
        try:
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        except binascii.Error:
            return b""
    if encoding == "quoted-printable":
        if cut:  # an escape split by the cut would come out as text
            tail = raw.rfind(b"=", max(len(raw) - 2, 0))
            raw = raw[:tail] if tail >= 0 else raw
        return binascii.a2b_qp(raw)
    return raw


def to_str(data: bytes, charset: str | None, cut: bool = False) -> str:
    """Bytes in a declared charset as text, best-effort; a character split by a cut is dropped."""
    name = ""
    if charset:
        try:
            info = codecs.lookup(charset.strip().split("*", 1)[0])
            if getattr(info, "_is_text_encoding", True):
                name = _CHARSET_READ_AS.get(info.name, info.name)
        except (LookupError, ValueError):
            name = ""
    if name:
        try:
            return codecs.getincrementaldecoder(name)(errors="replace").decode(data, not cut)
        except (LookupError, ValueError):
            pass
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, not cut)
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def unflow(text: str, *, delsp: bool = False) -> str:
    """format=flowed text (RFC 3676) as its logical lines: soft breaks joined, stuffing removed.
    Quoted lines keep their depth as `>` marks followed by a space."""
    out: list[str] = []
    depth = 0
    pending: list[str] = []  # a paragraph's lines not yet ended by a hard break
    for line in text.split("\n"):
        quotes = len(line) - len(line.lstrip(">"))
        body = line[quotes:]
        body = body[1:] if body.startswith(" ") else body
        soft = body.endswith(" ") and body != "-- "
        if soft and delsp:
            body = body[:-1]
        if pending and quotes != depth:  # a paragraph never spans quote depths
            out.append(_quoted(depth, "".join(pending)))
            pending = []
        depth = quotes
        pending.append(body)
        if not soft:
            out.append(_quoted(depth, "".join(pending)))
            pending = []
    if pending:
        out.append(_quoted(depth, "".join(pending)))
    return "\n".join(out)


def _quoted(depth: int, text: str) -> str:
    return f"{'>' * depth} {text}" if depth else text


# Header fields.


def header_fields(raw: bytes) -> Iterator[tuple[str, str]]:
    """(name, value) of each field of a raw header block, in order, unfolded; 8-bit values read
    as UTF-8 when valid, else windows-1252, else Latin-1. Lines that are no field are skipped."""
    name: bytes | None = None
    value: list[bytes] = []
    for crlf_line in raw.split(b"\n"):
        line = crlf_line.removesuffix(b"\r")
        if line[:1] in (b" ", b"\t"):
            value.append(line)
            continue
        if name is not None:
            yield _header_text(name), _header_text(b"".join(value)).strip()
        if not line:
            return
        head, colon, rest = line.partition(b":")
        name, value = (head.rstrip(b" \t"), [rest]) if colon else (None, [])
    if name is not None:
        yield _header_text(name), _header_text(b"".join(value)).strip()


def _header_text(raw: bytes) -> str:
    for charset in ("utf-8", "cp1252"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def decode_words(text: str) -> str:
    """RFC 2047 encoded words decoded; space between adjacent words dropped, and adjacent
    words in one charset decoded together (mailers split characters across them)."""
    return join_words(text, _word_bytes, to_str)


def _word_bytes(charset: str, method: str, payload: str) -> tuple[str, bytes]:
    data = payload.encode("ascii", "ignore")
    if method in "Bb":
        return charset.lower(), transfer_decode(data, "base64", False)
    return charset.lower(), binascii.a2b_qp(data, header=True)


def join_words(text: str, word_bytes: WordBytes, decode: Callable[[bytes, str], str]) -> str:
    """`text` with its RFC 2047 encoded words decoded, the reading of one word and the charset
    left to the caller: `word_bytes` gives a word's charset and bytes (None keeps the word as
    text); `decode` reads bytes in a charset. Adjacent words (only whitespace between) in one
    charset, compared ignoring case, are decoded together, as mailers split characters across
    them; the whitespace between adjacent words is dropped."""
    if "=?" not in text:
        return text
    out: list[str] = []
    run = bytearray()
    run_charset: str | None = None  # None: the last thing seen was no encoded word
    position = 0
    for match in ENCODED_WORD.finditer(text):
        word = word_bytes(*match.groups())
        if word is None:
            continue  # stays in the text before the next word
        charset, data = word
        gap = text[position : match.start()]
        adjacent = run_charset is not None and not gap.strip()
        if run_charset is not None and not (adjacent and charset.lower() == run_charset.lower()):
            out.append(decode(bytes(run), run_charset))
            run.clear()
        if not adjacent:
            out.append(gap)
        run += data
        run_charset = charset
        position = match.end()
    if run_charset is not None:
        out.append(decode(bytes(run), run_charset))
    out.append(text[position:])
    return "".join(out)
