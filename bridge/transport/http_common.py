"""What the HTTP endpoint modules share: their context, reading bodies within limits, and
XIMSS-shaped replies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from bridge.errors import BridgeError, ErrorKind
from bridge.services import Services
from bridge.transport.http_binding import HttpState
from bridge.ximss import codec

XML_TYPE = "text/xml"
# HTTP 550 is what XIMSS HTTP clients take as "this session is gone: log in again".
SESSION_GONE = 550


@dataclass(frozen=True, slots=True)
class HttpContext:
    services: Services
    state: HttpState


def ximss_body(messages: Iterable[bytes], resp_seq: int | None = None) -> bytes:
    payload = b"".join(messages)
    head = b"<XIMSS" if resp_seq is None else b'<XIMSS respSeq="%d"' % resp_seq
    return head + b"/>" if not payload else head + b">" + payload + b"</XIMSS>"


def xml_response(
    messages: Iterable[bytes] | None, error: BridgeError | None = None, status: int = 200,
    resp_seq: int | None = None,
) -> web.Response:  # fmt: skip
    body = list(messages or [])
    if error is not None:
        body.append(codec.encode(codec.response(None, error.wire())))
    return web.Response(
        body=ximss_body(body, resp_seq), status=status, content_type=XML_TYPE, charset="utf-8",
        headers={"Cache-Control": "no-cache, no-store"},
    )  # fmt: skip


def session_gone() -> web.Response:
    return web.Response(status=SESSION_GONE, reason="Session Not Found", text="unknown session\n")


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The whole body, refusing more than `limit` bytes and bodies that trickle in too slowly."""
    if request.content_length is not None and request.content_length > limit:
        raise BridgeError(ErrorKind.LIMIT, "request body too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while chunk := await request.content.read(65536):
                size += len(chunk)
                if size > limit:
                    raise BridgeError(ErrorKind.LIMIT, "request body too large")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise web.HTTPRequestTimeout(text="request body too slow\n") from exc
    return b"".join(chunks)
