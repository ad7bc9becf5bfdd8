"""XMAP over TCP, sans-IO: bytes in, events out; values in, bytes out.

The text defines no transport; DESIGN.md section 6 chose one: each XML message ends with a zero
byte (as XIMSS), and a message carrying `<?GOREALLYSLOW?>` (xmap-0.90.txt lines 127-157) is
followed by its blob as an IMAP-style length, `{N}` CRLF, then N raw bytes. GETFILE and
GETMESSAGE answer the same way the other direction (lines 178-183 say only "BLOB DATA"): a header
message, then `{N}` CRLF and the bytes. Blobs are binary-safe: zero bytes inside them are data.

The decoder is a small state machine (`_STEPS` is its table). What it holds is bounded by its
limits at every moment, not only at message ends: a frame never grows past `max_frame` bytes, a
blob header is refused at the first byte that makes it invalid or declares more than `max_blob`,
and a blob is accumulated as it arrives (never pre-allocated from the declared length, so a
header alone costs nothing). A `FramingError` is fatal: the stream has lost its framing and the
front end closes the connection (after an ERROR, if it wishes). XML that does not parse is not
fatal: the decoder emits `Malformed` (after reading and dropping its blob if it announced one)
and the session answers it with an ERROR.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.xmap.document import (
    ROOT,
    SLOW_PI,
    guess_command,
    mentions_slow,
    parse_document,
    wants_blob,
)

# Defaults, as in the config's LimitSettings (max_frame_bytes, max_message_bytes).
MAX_FRAME_BYTES = 1 << 20
MAX_BLOB_BYTES = 50 << 20
# Responses whose header message is followed by a blob (DESIGN.md section 6).
BLOB_RESPONSES = frozenset({"GETFILE", "GETMESSAGE"})

_WHITESPACE = frozenset(b" \t\r\n")
_DIGITS = frozenset(b"0123456789")


class FramingError(Exception):
    """The stream cannot be read on. `events` are those completed before the fault in the same
    `feed` call (the front end may still answer them before closing)."""

    def __init__(self, reason: str, limit: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit
        self.events: tuple[Event, ...] = ()

    @property
    def kind(self) -> ErrorKind:
        return ErrorKind.LIMIT if self.limit is not None else ErrorKind.BAD_REQUEST


class Role(enum.Enum):
    """Which end this decoder reads for: a server reads commands (a blob follows a message with
    `<?GOREALLYSLOW?>`), a client reads responses (a blob follows a GETFILE/GETMESSAGE header)."""

    SERVER = "server"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Message:
    """One parsed message: its frame (without the zero byte), its blob if one followed, and the
    document root (left out of equality: the frame bytes already say everything)."""

    frame: bytes
    blob: bytes | None
    root: etree._Element = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that is not acceptable XML; `command` is a best guess at its name ("" if none)."""

    frame: bytes
    command: str
    detail: str
    blob: bytes | None


Event = Message | Malformed


def _response_has_blob(root: etree._Element) -> bool:
    if root.tag != ROOT:
        return False
    first = next((child for child in root if isinstance(child.tag, str)), None)
    return first is not None and first.tag in BLOB_RESPONSES


_BLOB_FOLLOWS: dict[Role, Callable[[etree._Element], bool]] = {
    Role.SERVER: wants_blob,
    Role.CLIENT: _response_has_blob,
}


class _Stage(enum.Enum):
    FRAME = "frame"  # XML bytes up to a zero byte
    LEAD = "lead"  # whitespace, then "{"
    DIGITS = "digits"  # one or more ASCII digits, then "}"
    CR = "cr"
    LF = "lf"
    BODY = "body"  # N raw bytes


class Decoder:
    __slots__ = (
        "_blob",
        "_buffer",
        "_digits",
        "_failed",
        "_max_blob",
        "_max_depth",
        "_max_digits",
        "_max_frame",
        "_pending",
        "_remaining",
        "_role",
        "_stage",
    )

    def __init__(
        self,
        *,
        max_frame: int = MAX_FRAME_BYTES,
        max_blob: int = MAX_BLOB_BYTES,
        max_depth: int = xml.DEFAULT_MAX_DEPTH,
        role: Role = Role.SERVER,
    ) -> None:
        self._max_frame = max_frame
        self._max_blob = max_blob
        self._max_depth = max_depth
        # More digits than the limit has can only be zero padding or too much: refuse early.
        self._max_digits = len(str(max_blob))
        self._role = role
        self._stage = _Stage.FRAME
        self._buffer = bytearray()
        self._blob = bytearray()
        self._digits = 0
        self._remaining = 0
        self._pending: Event | None = None
        self._failed: FramingError | None = None

    @property
    def pending(self) -> int:
        """Bytes held for incomplete input (never more than one limit)."""
        return len(self._buffer) + len(self._blob)

    def feed(self, data: bytes) -> list[Event]:
        """Add bytes; return every event they complete, in order."""
        if self._failed is not None:
            raise FramingError(self._failed.reason, self._failed.limit)
        events: list[Event] = []
        pos = 0
        try:
            while pos < len(data):
                pos = _STEPS[self._stage](self, data, pos, events)
        except FramingError as exc:
            self._fail(exc)
            exc.events = tuple(events)
            raise
        return events

    def end_of_stream(self) -> None:
        """The peer closed: raise if it stopped inside a frame or a blob."""
        if self._stage is not _Stage.FRAME:
            raise FramingError("stream ended inside a blob")
        if bytes(self._buffer).strip():
            raise FramingError("stream ended inside a message")

    def _fail(self, exc: FramingError) -> None:
        self._failed = exc
        self._buffer = bytearray()
        self._blob = bytearray()
        self._pending = None

    def _frame(self, data: bytes, pos: int, events: list[Event]) -> int:
        end = data.find(b"\x00", pos)
        stop = len(data) if end < 0 else end
        if len(self._buffer) + stop - pos > self._max_frame:
            raise FramingError(f"message exceeds {self._max_frame} bytes", self._max_frame)
        if end < 0:
            self._buffer += data[pos:]
            return len(data)
        if self._buffer:
            frame = bytes(self._buffer) + data[pos:end]
            self._buffer.clear()
        else:
            frame = data[pos:end]
        self._on_frame(frame, events)
        return end + 1

    def _on_frame(self, frame: bytes, events: list[Event]) -> None:
        if not frame.strip():
            return  # keep-alive between messages, as XIMSS allows
        event: Event
        try:
            root = parse_document(frame, self._max_depth)
        except BridgeError as exc:
            event = Malformed(frame, guess_command(frame), exc.detail or "malformed XML", None)
            slow = self._role is Role.SERVER and mentions_slow(frame)
        else:
            event = Message(frame, None, root)
            slow = _BLOB_FOLLOWS[self._role](root)
        if slow:
            self._pending = event
            self._stage = _Stage.LEAD
        else:
            events.append(event)

    def _lead(self, data: bytes, pos: int, events: list[Event]) -> int:
        byte = data[pos]
        if byte == ord("{"):
            self._digits = 0
            self._remaining = 0
            self._stage = _Stage.DIGITS
        elif byte not in _WHITESPACE:
            raise FramingError("expected a {N} blob header")
        return pos + 1

    def _digit(self, data: bytes, pos: int, events: list[Event]) -> int:
        byte = data[pos]
        if byte in _DIGITS:
            self._digits += 1
            self._remaining = self._remaining * 10 + byte - ord("0")
            if self._remaining > self._max_blob or self._digits > self._max_digits:
                raise FramingError(f"blob exceeds {self._max_blob} bytes", self._max_blob)
        elif byte == ord("}") and self._digits:
            self._stage = _Stage.CR
        else:
            raise FramingError("invalid blob length")
        return pos + 1

    def _cr(self, data: bytes, pos: int, events: list[Event]) -> int:
        if data[pos] != ord("\r"):
            raise FramingError("blob header must end with CRLF")
        self._stage = _Stage.LF
        return pos + 1

    def _lf(self, data: bytes, pos: int, events: list[Event]) -> int:
        if data[pos] != ord("\n"):
            raise FramingError("blob header must end with CRLF")
        self._stage = _Stage.BODY
        if not self._remaining:
            self._complete(b"", events)
        return pos + 1

    def _body(self, data: bytes, pos: int, events: list[Event]) -> int:
        take = min(self._remaining, len(data) - pos)
        end = pos + take
        self._remaining -= take
        if self._remaining:
            self._blob += data[pos:end]
        elif self._blob:
            self._blob += data[pos:end]
            blob = bytes(self._blob)
            self._blob = bytearray()
            self._complete(blob, events)
        else:
            self._complete(data[pos:end], events)
        return end

    def _complete(self, blob: bytes, events: list[Event]) -> None:
        assert self._pending is not None
        events.append(dataclasses.replace(self._pending, blob=blob))
        self._pending = None
        self._stage = _Stage.FRAME


_STEPS: dict[_Stage, Callable[[Decoder, bytes, int, list[Event]], int]] = {
    _Stage.FRAME: Decoder._frame,
    _Stage.LEAD: Decoder._lead,
    _Stage.DIGITS: Decoder._digit,
    _Stage.CR: Decoder._cr,
    _Stage.LF: Decoder._lf,
    _Stage.BODY: Decoder._body,
}


# --- encoding ---------------------------------------------------------------------------------


def encode(element: etree._Element) -> bytes:
    """One message: compact XML and its zero byte."""
    return xml.serialize(element) + b"\x00"


def blob_length_header(length: int) -> bytes:
    if length < 0:
        raise ValueError("a blob length is never negative")
    return b"{%d}\r\n" % length


def encode_with_blob(header: etree._Element, data: bytes) -> tuple[bytes, memoryview]:
    """A GETFILE/GETMESSAGE answer as two pieces for `writelines`: the header message with the
    length line, and the bytes themselves (not copied)."""
    return _check_length(header, len(data)) + blob_length_header(len(data)), memoryview(data)


def encode_command(element: etree._Element, blob: bytes | None = None) -> bytes:
    """A client's command (for test clients and tools); with a blob, the PI is added (to a copy)
    when the element does not already carry it."""
    if blob is None:
        return encode(element)
    if not wants_blob(element):
        element = copy.deepcopy(element)
        element.append(etree.PI(SLOW_PI))
    # lxml writes an empty PI as `<?GOREALLYSLOW ?>`; send the text's own spelling. Only a PI
    # can hold "<?" in serialized output (text and attribute values escape "<").
    frame = encode(element).replace(_LXML_PI, _TEXT_PI)
    return frame + blob_length_header(len(blob)) + blob


_LXML_PI = b"<?" + SLOW_PI.encode() + b" ?>"
_TEXT_PI = b"<?" + SLOW_PI.encode() + b"?>"


def _check_length(header: etree._Element, length: int) -> bytes:
    declared = [child.get("Length") for child in header.iter() if child.get("Length") is not None]
    if declared and declared != [str(length)]:
        raise ValueError(f"header says Length={declared[0]} but the blob has {length} bytes")
    return encode(header)


class BlobWriter:
    """Streams a big blob answer without copying it whole: `head()` once, then `write(chunk)`
    for each chunk as it comes (from a backend literal, a file), then `finish()`. Like h11's
    Content-Length bookkeeping, it refuses to send more or fewer bytes than the header said."""

    __slots__ = ("_header", "_remaining", "_started")

    def __init__(self, header: etree._Element, length: int) -> None:
        self._header = header
        self._remaining = length
        self._started = False
        blob_length_header(length)

    @property
    def remaining(self) -> int:
        return self._remaining

    def head(self) -> bytes:
        if self._started:
            raise RuntimeError("head() already sent")
        self._started = True
        return _check_length(self._header, self._remaining) + blob_length_header(self._remaining)

    def write(self, chunk: bytes | memoryview) -> bytes | memoryview:
        if not self._started:
            raise RuntimeError("head() must come first")
        if len(chunk) > self._remaining:
            raise ValueError("more bytes than the header announced")
        self._remaining -= len(chunk)
        return chunk

    def finish(self) -> None:
        if not self._started or self._remaining:
            raise ValueError(f"{self._remaining} announced bytes were not sent")


def chunks(data: bytes, size: int = 64 << 10) -> Iterator[memoryview]:
    """Slices of `data` to write one at a time (views: nothing is copied)."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]
