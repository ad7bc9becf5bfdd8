"""Content lines (RFC 6350 section 3.3, RFC 5545 section 3.1): what vcard.py and xcal.py share.

Reading: `parse_content_lines` unfolds the text (RFC folding, and vCard 2.1's quoted-printable
soft breaks and base64 continuation lines) and splits each line into group, name, parameters
(RFC 6868 ^-escapes decoded; vCard 2.1's bare values under the name "") and the value as
written, escapes intact. The unescapers and `split_value` then read values as each property's
type wants. Writing: `escape_value`, `param_value` and `fold_line` (75 octets, whole UTF-8
sequences).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")
_HEAD = re.compile(r"(?:([A-Za-z0-9-]+)\.)?([A-Za-z0-9-]+)")
_PARAM_NAME = re.compile(r"[A-Za-z0-9-]+")
_PARAM_VALUE = re.compile(r'"([^"]*)"|([^";:,]*)')
_CARET = re.compile(r"\^([n^'])")
_CARET_MEANS = {"n": "\n", "^": "^", "'": '"'}
# Names that can be XML element and attribute names as they are.
XML_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z")


@dataclass(frozen=True, slots=True)
class ContentLine:
    group: str
    name: str  # upper case
    # (upper-case name, values); the name is "" for vCard 2.1's bare values (TEL;WORK;VOICE)
    params: tuple[tuple[str, tuple[str, ...]], ...]
    value: str  # as written, escapes intact


def parse_content_lines(text: str) -> Iterator[ContentLine]:
    """The content lines of `text`, unfolded; lines that are not content lines are skipped."""
    for line in _logical_lines(text):
        parsed = _parse_line(line)
        if parsed is not None:
            yield parsed


def _logical_lines(text: str) -> Iterator[str]:
    # Beside RFC folding (a break followed by one space or tab), vCard 2.1 writers continue a
    # quoted-printable value after a trailing "=" and a base64 value on lines of their own.
    current: list[str] = []
    qp = b64 = False
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if current and qp and current[-1].endswith("="):  # a soft line break
            current[-1] = current[-1][:-1]
            current.append(raw)
        elif current and raw[:1] in (" ", "\t"):
            current.append(raw[1:])
        elif current and b64 and raw.strip() and ":" not in raw:
            current.append(raw.strip())
        elif raw.strip():
            if current:
                yield "".join(current)
            head = raw.split(":", 1)[0].upper()
            qp, b64 = "QUOTED-PRINTABLE" in head, "BASE64" in head
            current = [raw]
    if current:
        yield "".join(current)


def _parse_line(line: str) -> ContentLine | None:
    head = _HEAD.match(line)
    if head is None:
        return None
    pos, end = head.end(), len(line)
    params: list[tuple[str, tuple[str, ...]]] = []
    while pos < end and line[pos] == ";":
        name = _PARAM_NAME.match(line, pos + 1)
        if name is None:
            return None
        pos = name.end()
        if pos >= end or line[pos] != "=":
            params.append(("", (name.group(),)))
            continue
        values: list[str] = []
        while True:
            found = _PARAM_VALUE.match(line, pos + 1)
            assert found is not None  # both alternatives accept the empty string
            quoted, plain = found.groups()
            values.append(_CARET.sub(lambda m: _CARET_MEANS[m.group(1)], quoted or plain or ""))
            pos = found.end()
            if pos >= end or line[pos] != ",":
                break
        params.append((name.group().upper(), tuple(values)))
    if pos >= end or line[pos] != ":":
        return None
    return ContentLine(head.group(1) or "", head.group(2).upper(), tuple(params), line[pos + 1 :])


def _unescaper(table: dict[str, str]) -> Callable[[str], str]:
    # One left-to-right pass over backslash pairs, so "\\n" is a backslash and an n.
    pairs = re.compile(r"\\(.)", re.DOTALL)
    return lambda value: pairs.sub(lambda m: table.get(m.group(1), m.group(0)), value)


unescape_text = _unescaper({"\\": "\\", "n": "\n", "N": "\n", ",": ",", ";": ";", ":": ":"})
unescape_uri = _unescaper({",": ",", ";": ";", ":": ":"})
unescape_raw = _unescaper({"n": "\n", "N": "\n"})


def split_value(value: str, sep: str) -> list[str]:
    """Split at `sep` where it is not escaped; the pieces keep their escapes."""
    pieces: list[str] = []
    start = index = 0
    while index < len(value):
        if value[index] == "\\":
            index += 2
            continue
        if value[index] == sep:
            pieces.append(value[start:index])
            start = index + 1
        index += 1
    pieces.append(value[start:])
    return pieces


def escape_value(value: str, text: bool, commas: bool = False) -> str:
    """A value as a content line writes it: line breaks as \\n, controls dropped; TEXT values
    (`text`) also escape backslash, semicolon and (unless `commas` separate a list) comma."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if text:
        value = value.replace("\\", "\\\\").replace(";", "\\;")
        if not commas:
            value = value.replace(",", "\\,")
    return _CONTROL.sub("", value).replace("\n", "\\n")


def param_value(value: str) -> str:
    """A parameter value as written: RFC 6868 ^-escapes, quoted when it holds ; : or ,."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("^", "^^").replace("\n", "^n").replace('"', "^'")
    value = _CONTROL.sub("", value)
    return f'"{value}"' if re.search("[;:,]", value) else value


def fold_line(line: str) -> str:
    """Fold at 75 octets (RFC 6350 section 3.2) without splitting a UTF-8 sequence."""
    if len(line.encode("utf-8")) <= 75:
        return line
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > 75:
            pieces.append("".join(current))
            current, size = [" "], 1
        current.append(char)
        size += width
    pieces.append("".join(current))
    return "\r\n".join(pieces)
