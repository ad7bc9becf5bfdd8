"""SIP requests and responses, sans-IO: parse a datagram, frame a stream, serialize.

Limits are enforced while parsing, before anything is buffered past them: a head (start line and
headers) over `max_head` bytes or a declared body over `max_body` fails at once, so a hostile peer
cannot make a stream connection hold more than max_head + max_body bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from adapters.sip.address import CSeq, NameAddr, Via
from adapters.sip.headers import Headers, SipParseError, canonical_name, is_token

SIP_VERSION = "SIP/2.0"
# RFC 3261 section 18.1.1: above this (MTU 1500 minus 200) a UDP request should go over TCP;
# we do not switch, but the UDP datagram limit below is the hard one.
MAX_DATAGRAM = 65_507
MAX_HEAD = 32 * 1024
MAX_BODY = 256 * 1024
MAX_HEADER_FIELDS = 256
_LWS = " \t"


@dataclass(frozen=True, slots=True)
class SipLimits:
    max_head: int = MAX_HEAD
    max_body: int = MAX_BODY
    max_header_fields: int = MAX_HEADER_FIELDS


DEFAULT_LIMITS = SipLimits()


@dataclass(frozen=True, slots=True)
class _Common:
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if not value:
            raise SipParseError("missing Call-ID")
        return value.strip()

    @property
    def cseq(self) -> CSeq:
        value = self.headers.get("CSeq")
        if value is None:
            raise SipParseError("missing CSeq")
        return CSeq.parse(value)

    @property
    def from_(self) -> NameAddr:
        return _required_addr(self.headers, "From")

    @property
    def to(self) -> NameAddr:
        return _required_addr(self.headers, "To")

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(value) for value in self.headers.values("Via")]

    @property
    def top_via(self) -> Via:
        value = self.headers.first("Via")
        if value is None:
            raise SipParseError("missing Via")
        return Via.parse(value)

    @property
    def contacts(self) -> list[NameAddr]:
        return [NameAddr.parse(v) for v in self.headers.values("Contact") if v.strip() != "*"]

    @property
    def record_route(self) -> list[NameAddr]:
        return [NameAddr.parse(value) for value in self.headers.values("Record-Route")]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.strip() if value else None

    @property
    def media_type(self) -> str | None:
        """The content type's type/subtype, lower-cased, without parameters."""
        value = self.content_type
        return value.split(";", 1)[0].strip().lower() if value else None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (bodies here are SDP, PIDF, XML, plain text)."""
        return self.body.decode("utf-8", "replace")

    def header_int(self, name: str) -> int | None:
        value = self.headers.get(name)
        if value is None:
            return None
        value = value.split(";", 1)[0].strip()
        return int(value) if value.isascii() and value.isdigit() else None


def _required_addr(headers: Headers, name: str) -> NameAddr:
    value = headers.get(name)
    if value is None:
        raise SipParseError(f"missing {name}")
    return NameAddr.parse(value)


@dataclass(frozen=True, slots=True)
class Request(_Common):
    method: str = "OPTIONS"
    uri: str = ""

    def with_headers(self, headers: Headers) -> Request:
        return replace(self, headers=headers)


@dataclass(frozen=True, slots=True)
class Response(_Common):
    status: int = 200
    reason: str = "OK"

    @property
    def provisional(self) -> bool:
        return self.status < 200

    def with_headers(self, headers: Headers) -> Response:
        return replace(self, headers=headers)


Message = Request | Response


def request(method: str, uri: str, headers: Headers, body: bytes = b"") -> Request:
    return Request(headers=headers, body=body, method=method, uri=uri)


def response(status: int, reason: str, headers: Headers, body: bytes = b"") -> Response:
    return Response(headers=headers, body=body, status=status, reason=reason)


def serialize(message: Message) -> bytes:
    """The wire form; Content-Length is always written from the body, never trusted."""
    if isinstance(message, Request):
        start = f"{message.method} {message.uri} {SIP_VERSION}"
    else:
        start = f"{SIP_VERSION} {message.status} {message.reason}"
    lines = [start]
    lines.extend(f"{name}: {value}" for name, value in message.headers.without("Content-Length"))
    lines.append(f"Content-Length: {len(message.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + message.body


def _find_head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """(end of head, start of body) for the first blank line, CRLF or bare LF."""
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 4
    return None


def _parse_start(line: str) -> tuple[str, str, str]:
    parts = line.split(" ", 2)
    if len(parts) != 3:
        raise SipParseError("bad start line")
    return parts[0], parts[1], parts[2]


def parse_head(head: bytes, limits: SipLimits = DEFAULT_LIMITS) -> Message:
    """Parse a start line and header block (no body; Content-Length is left to the caller)."""
    if len(head) > limits.max_head:
        raise SipParseError("message head too large")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("message head is not UTF-8") from exc
    raw_lines = text.replace("\r\n", "\n").split("\n")
    start, header_lines = raw_lines[0], raw_lines[1:]
    fields: list[tuple[str, str]] = []
    for line in header_lines:
        if not line:
            continue
        if line[0] in " \t":  # folded continuation (RFC 3261 section 7.3.1)
            if not fields:
                raise SipParseError("continuation before any header")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip(_LWS)}".strip(_LWS))
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not is_token(name):
            raise SipParseError("bad header line")
        fields.append((canonical_name(name), value.strip(_LWS)))
        if len(fields) > limits.max_header_fields:
            raise SipParseError("too many header fields")
    headers = Headers(tuple(fields))
    first, second, third = _parse_start(start)
    if first == SIP_VERSION:
        if len(second) != 3 or not second.isascii() or not second.isdigit():
            raise SipParseError("bad status code")
        status = int(second)
        if not 100 <= status <= 699:
            raise SipParseError("bad status code")
        return response(status, third, headers)
    if third != SIP_VERSION or not is_token(first) or not second or " " in second:
        raise SipParseError("bad request line")
    return request(first, second, headers)


def _content_length(message: Message, limits: SipLimits) -> int | None:
    values = message.headers.lines("Content-Length")
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].isascii() or not values[0].isdigit():
        raise SipParseError("bad Content-Length")
    length = int(values[0])
    if length > limits.max_body:
        raise SipParseError("body too large")
    return length


def parse_datagram(data: bytes, limits: SipLimits = DEFAULT_LIMITS) -> Message:
    """One UDP datagram holds one message; without Content-Length the body runs to the end."""
    if len(data) > MAX_DATAGRAM:
        raise SipParseError("datagram too large")
    found = _find_head_end(data)
    if found is None:
        raise SipParseError("no end of headers")
    head_end, body_start = found
    message = parse_head(data[:head_end], limits)
    length = _content_length(message, limits)
    rest = data[body_start:]
    if length is None:
        if len(rest) > limits.max_body:
            raise SipParseError("body too large")
        length = len(rest)
    if len(rest) < length:
        raise SipParseError("body shorter than Content-Length")
    return replace(message, body=bytes(rest[:length]))


class StreamFramer:
    """Splits a TCP byte stream into messages by Content-Length (mandatory on streams).

    Empty lines between messages (RFC 5626 CRLF keep-alives) are skipped. After a SipParseError
    the stream is out of sync and the connection must be closed."""

    def __init__(self, limits: SipLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._pending: Message | None = None
        self._body_length = 0
        # Where the search for the blank line resumes: bytes fed one at a time cost O(n).
        self._scan_from = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while True:
            message = self._next()
            if message is None:
                return out
            out.append(message)

    def _next(self) -> Message | None:
        if self._pending is None:
            while self._buffer[:2] == b"\r\n" or self._buffer[:1] == b"\n":
                del self._buffer[: 2 if self._buffer[:1] == b"\r" else 1]
            if self._buffer == b"\r":
                return None
            found = _find_head_end(self._buffer, self._scan_from)
            if found is None:
                if len(self._buffer) > self._limits.max_head + 4:
                    raise SipParseError("message head too large")
                self._scan_from = max(0, len(self._buffer) - 3)
                return None
            self._scan_from = 0
            head_end, body_start = found
            message = parse_head(bytes(self._buffer[:head_end]), self._limits)
            length = _content_length(message, self._limits)
            if length is None:
                raise SipParseError("missing Content-Length on a stream")
            del self._buffer[:body_start]
            self._pending, self._body_length = message, length
        if len(self._buffer) < self._body_length:
            return None
        body = bytes(self._buffer[: self._body_length])
        del self._buffer[: self._body_length]
        message, self._pending = replace(self._pending, body=body), None
        return message
