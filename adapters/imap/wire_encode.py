"""Sans-IO encoder for IMAP commands, sequence sets and quoted strings.

Why it exists: aioimaplib pasted arguments into the command line unquoted, so a mailbox name
or search term holding CR LF could smuggle a second command (DESIGN.md section 4). Here a
caller's text is never written raw: each ``str`` becomes the most compact form that keeps
its exact value (atom, quoted string, or literal), and CR, LF or NUL force a literal.
Only ``Atom`` and ``Raw``, which code writes and users never supply, reach the wire as
given, and even they are refused if they could end the line.

Literals change the framing: without LITERAL+ the server must answer ``+`` before the
literal's bytes may follow, so a command is returned as segments and the client sends one
segment per continuation. With LITERAL+ (``{n+}``) the command is a single segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from .wire_types import Atom


@dataclass(frozen=True, slots=True)
class Literal:
    """Send ``data`` as a literal whatever it contains."""

    data: bytes


class Raw(str):
    """Protocol text written verbatim: ``"(FLAGS UID)"``, ``"BODY.PEEK[HEADER]"``, ``"1:*"``.

    Only for text the code composes; anything from a user belongs in ``str`` or ``bytes``.
    """

    __slots__ = ()


# str = astring, bytes = string (quoted or literal), int = number, None = NIL, list = "(...)".
Arg: TypeAlias = Atom | Raw | str | bytes | int | Literal | list["Arg"] | None

# ATOM-CHAR: printable ASCII except atom-specials ( ) { SP % * " \ ] (RFC 3501 section 9).
_ATOM = re.compile(r'[^\x00-\x20\x7f(){%*"\\\]]+')
_QUOTABLE = re.compile(r"[\x20-\x7e]*")
_QUOTABLE_BYTES = re.compile(rb"[\x20-\x7e]*")
_LINE_BREAKERS = re.compile(r"[\r\n\x00]")
_TAG = re.compile(r'[^\x00-\x20\x7f(){%*"\\+]+')
_COMMAND_NAME = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_SEQ_NUMBER = re.compile(r"[1-9][0-9]{0,9}")


def quote(s: str | bytes) -> bytes:
    """``s`` as an IMAP quoted string; ``"`` and ``\\`` are escaped.

    Raises ValueError for CR, LF or NUL, which no quoted string can carry. Non-ASCII text is
    written as UTF-8, which only servers with UTF8=ACCEPT take; ``encode_command`` therefore
    sends such text as a literal instead.
    """
    raw = s.encode("utf-8") if isinstance(s, str) else s
    if b"\r" in raw or b"\n" in raw or b"\x00" in raw:
        raise ValueError("CR, LF and NUL cannot be quoted")
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _verbatim(text: str, what: str) -> bytes:
    if _LINE_BREAKERS.search(text):
        raise ValueError(f"{what} contains CR, LF or NUL")
    return text.encode("utf-8")


def _astring(text: str) -> bytes | Literal:
    if text.isascii():
        # "NIL" as an atom would read as NIL where an nstring is allowed.
        if _ATOM.fullmatch(text) and text.upper() != "NIL":
            return text.encode("ascii")
        if _QUOTABLE.fullmatch(text):
            return quote(text)
    return Literal(text.encode("utf-8"))


def _string(data: bytes) -> bytes | Literal:
    return quote(data) if _QUOTABLE_BYTES.fullmatch(data) else Literal(data)


def _number(value: int) -> bytes:
    if isinstance(value, bool) or value < 0:
        raise ValueError(f"not an IMAP number: {value!r}")
    return b"%d" % value


class _Writer:
    """Accumulates one command, cutting a segment after each synchronising literal."""

    def __init__(self, literal_plus: bool) -> None:
        self.literal_plus = literal_plus
        self.segments: list[bytes] = []
        self.pending: list[bytes] = []

    def arg(self, value: Arg) -> None:
        if isinstance(value, list):
            self.pending.append(b"(")
            for i, item in enumerate(value):
                if i:
                    self.pending.append(b" ")
                self.arg(item)
            self.pending.append(b")")
            return
        encoded = _encode_scalar(value)
        if isinstance(encoded, Literal):
            self.literal(encoded.data)
        else:
            self.pending.append(encoded)

    def literal(self, data: bytes) -> None:
        if self.literal_plus:
            self.pending += (b"{%d+}\r\n" % len(data), data)
            return
        self.pending.append(b"{%d}\r\n" % len(data))
        self.segments.append(b"".join(self.pending))
        self.pending = [data]

    def finish(self) -> list[bytes]:
        self.pending.append(b"\r\n")
        self.segments.append(b"".join(self.pending))
        return self.segments


def _encode_scalar(value: Arg) -> bytes | Literal:
    # Atom and Raw first: both are str subclasses that must not be treated as astrings.
    if isinstance(value, Atom):
        if not value:
            raise ValueError("empty atom")
        return _verbatim(value, "atom")
    if isinstance(value, Raw):
        return _verbatim(value, "raw text")
    if isinstance(value, str):
        return _astring(value)
    if isinstance(value, bytes):
        return _string(value)
    if isinstance(value, int):
        return _number(value)
    if isinstance(value, Literal):
        return value
    if value is None:
        return b"NIL"
    raise TypeError(f"cannot encode {type(value).__name__} as an IMAP argument")


def encode_command(tag: str, name: str, args: Sequence[Arg], literal_plus: bool) -> list[bytes]:
    """``tag name args...`` CRLF, as segments.

    With ``literal_plus`` the result is one segment using ``{n+}`` literals. Without it every
    segment but the last ends with ``{n}`` CRLF, and the caller must wait for a
    ``Continuation`` before sending the next one. The last segment ends with CRLF.
    """
    if not _TAG.fullmatch(tag):
        raise ValueError(f"invalid tag {tag!r}")
    if not _COMMAND_NAME.fullmatch(name):
        raise ValueError(f"invalid command name {name!r}")
    writer = _Writer(literal_plus)
    writer.pending.append(f"{tag} {name}".encode("ascii"))
    for value in args:
        writer.pending.append(b" ")
        writer.arg(value)
    return writer.finish()


def sequence_set(uids: Iterable[int]) -> str:
    """Compact set for ``uids`` in any order, duplicates ignored: ``[7, 1, 2, 3]`` -> ``"1:3,7"``.

    Raises ValueError for an empty input or a number below 1, neither of which IMAP can say.
    """
    numbers = sorted(set(uids))
    if not numbers:
        raise ValueError("empty sequence set")
    if numbers[0] < 1:
        raise ValueError("sequence numbers and UIDs start at 1")
    ranges: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n != prev + 1:
            ranges.append(_range(start, prev))
            start = n
        prev = n
    ranges.append(_range(start, prev))
    return ",".join(ranges)


def _range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}:{end}"


def parse_sequence_set(text: str) -> list[tuple[int, int | None]]:
    """Ranges of a sequence set as ``(low, high)``; ``high`` is None for ``*``.

    ``5`` gives ``(5, 5)``, ``9:*`` and ``*:9`` give ``(9, None)``, ``5:2`` gives ``(2, 5)``.
    A bare ``*`` has no lower bound to report and raises ValueError, as does anything
    malformed; servers never send either in COPYUID, APPENDUID, VANISHED or ESEARCH.
    """
    ranges: list[tuple[int, int | None]] = []
    for item in text.split(","):
        low, sep, high = item.partition(":")
        if not sep:
            ranges.append((_seq_number(low), _seq_number(low)))
        elif low == "*" and high == "*":
            raise ValueError("'*:*' has no numeric bound")
        elif "*" in (low, high):
            ranges.append((_seq_number(high if low == "*" else low), None))
        else:
            a, b = _seq_number(low), _seq_number(high)
            ranges.append((min(a, b), max(a, b)))
    return ranges


def _seq_number(text: str) -> int:
    if not _SEQ_NUMBER.fullmatch(text):
        raise ValueError(f"invalid sequence number {text!r}")
    return int(text)
