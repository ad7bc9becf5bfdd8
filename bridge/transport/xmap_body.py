"""XMAP over HTTP: reading a request body into one command (see xmap_http.py for the forms).

The body is read in chunks against a limit; the XML command comes first, its blob either as the
second part of a `multipart/*` body or after one zero byte up to the end of the body.
"""

from __future__ import annotations

import asyncio
import email.message
import logging
from typing import Final

from aiohttp import ClientError, web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.config import LimitSettings
from bridge.errors import BridgeError, ErrorKind
from bridge.xmap import codec
from bridge.xmap import commands as c
from bridge.xmap.document import command_element, guess_command, parse_document, wants_blob
from bridge.xmap.errors import CodecError

log = logging.getLogger("bridge.xmap.http")

READ_CHUNK: Final = 64 * 1024


class BodyRefused(Exception):
    """The body is refused before it was read to its end: answer, then close the connection."""

    def __init__(self, status: int, error: BridgeError) -> None:
        super().__init__(error.detail)
        self.status = status
        self.error = error


async def read_body(request: web.Request, limit: int, timeout: float) -> bytearray:
    """The body, refused (413) as soon as it passes `limit`; each chunk must come within
    `timeout` (a whole-body deadline would cut off a large upload on a slow link)."""
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await request.content.read(READ_CHUNK)
        except TimeoutError:
            raise BodyRefused(
                408, BridgeError(ErrorKind.TIMEOUT, "request body too slow")
            ) from None
        except (OSError, ClientError, HttpProcessingError) as exc:
            # The client went away or broke its framing: nothing to log beyond a line.
            log.info("peer=%s XMAP HTTP body not read: %r", request.remote, exc)
            raise BodyRefused(
                400, BridgeError(ErrorKind.BAD_REQUEST, "request body incomplete")
            ) from None
        if not chunk:
            return body
        if len(body) + len(chunk) > limit:
            raise BodyRefused(413, BridgeError(ErrorKind.LIMIT, "request body too large"))
        body += chunk


def command_of(request: web.Request, body: bytearray, limits: LimitSettings) -> c.Command:
    max_frame, max_blob = limits.max_frame_bytes, limits.max_message_bytes
    multipart = request.content_type.lower().startswith("multipart/")
    if multipart:
        document, blob = _multipart(request.headers.get("Content-Type", ""), body)
    else:
        document, blob = _zero_split(body, max_frame)
    if len(document) > max_frame:
        raise CodecError(guess_command(document), ErrorKind.LIMIT,
                         f"the XML command is over {max_frame} bytes")  # fmt: skip
    try:
        root = parse_document(document, limits.max_xml_depth)
    except BridgeError as exc:
        raise CodecError(guess_command(document), exc.kind, exc.detail) from exc
    element = command_element(root)
    name = element.tag if isinstance(element.tag, str) else ""
    announced = wants_blob(root)
    if announced and blob is None:
        missing = "a second part" if multipart else "a zero byte and the data"
        raise CodecError(name, ErrorKind.BAD_REQUEST, f"<?GOREALLYSLOW?> without {missing}")
    if not multipart and not announced and blob:
        raise CodecError(name, ErrorKind.BAD_REQUEST, "data after a command without data")
    if not multipart and not announced:
        blob = None  # a lone trailing zero byte ends the XML, as on TCP
    if blob is not None and len(blob) > max_blob:
        raise CodecError(name, ErrorKind.LIMIT, f"the data is over {max_blob} bytes")
    command = codec.parse_command(root, blob)
    if isinstance(command, c.Login):
        raise CodecError(command.COMMAND, ErrorKind.NOT_SUPPORTED, "use HTTP Basic")
    return command


def _zero_split(body: bytearray, max_frame: int) -> tuple[bytes, bytes | None]:
    """XML, then optionally a zero byte and the blob (XML itself never holds a zero byte)."""
    end = body.find(b"\x00", 0, max_frame + 1)
    view = memoryview(body)
    if end < 0:
        # No zero byte within the frame limit: all XML, or XML too large (checked by the caller).
        return bytes(view[: max_frame + 1]), None
    return bytes(view[:end]), bytes(view[end + 1 :])


def _multipart(content_type: str, body: bytearray) -> tuple[bytes, bytes | None]:
    """The first part (XML) and the second (blob, if any) of a MIME multipart body."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70 or not boundary.isascii():
        raise CodecError("", ErrorKind.BAD_REQUEST, "multipart body without a valid boundary")
    parts = _split_parts(body, boundary.encode("ascii"))
    if not parts:
        raise CodecError("", ErrorKind.BAD_REQUEST, "multipart body without parts")
    if len(parts) > 2:
        raise CodecError("", ErrorKind.BAD_REQUEST, "more than two parts (XML, then data)")
    view = memoryview(body)
    document = bytes(view[parts[0][0] : parts[0][1]])
    blob = bytes(view[parts[1][0] : parts[1][1]]) if len(parts) == 2 else None
    return document, blob


def _split_parts(body: bytearray, boundary: bytes) -> list[tuple[int, int]]:
    """Each part's content as (start, end) offsets into the body (RFC 2046 section 5.1.1: a
    delimiter is CRLF "--" boundary; the first may open the body; "--" after one closes it).
    Stops past three parts: more is an error anyway."""
    delimiter = b"\r\n--" + boundary
    if body.startswith(delimiter[2:]):
        pos = len(delimiter) - 2
    else:
        found = body.find(delimiter)
        if found < 0:
            raise CodecError("", ErrorKind.BAD_REQUEST, "multipart boundary not found")
        pos = found + len(delimiter)
    parts: list[tuple[int, int]] = []
    while len(parts) <= 2:
        if body.startswith(b"--", pos):
            return parts
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise CodecError("", ErrorKind.BAD_REQUEST, "malformed multipart delimiter")
        start = line_end + 2
        end = body.find(delimiter, start)
        if end < 0:
            raise CodecError("", ErrorKind.BAD_REQUEST, "unterminated multipart part")
        # The part's header ends at its first empty line (none: CRLF right away).
        if body.startswith(b"\r\n", start):
            content = start + 2
        else:
            blank = body.find(b"\r\n\r\n", start, end)
            if blank < 0:
                raise CodecError("", ErrorKind.BAD_REQUEST, "multipart part without a header end")
            content = blank + 4
        parts.append((content, end))
        pos = end + len(delimiter)
    return parts
