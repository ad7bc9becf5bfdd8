"""XIMSS over WebSocket at `/ximss`: one XIMSS message per text frame, both ways.

Not in CommuniGate's documentation; what a browser client wants. The conversation, ordering and
limits are those of the TCP binding: requests are processed one at a time in arrival order, and a
client that does not read its replies is disconnected once the output queue is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final

from aiohttp import WSCloseCode, WSMsgType, web

from bridge import logs
from bridge.errors import BridgeError, ErrorKind
from bridge.transport import farewell
from bridge.transport.http_common import HttpContext
from bridge.ximss import codec
from bridge.ximss.conversation import Conversation
from bridge.ximss.ops.base import Outcome

log = logging.getLogger("bridge.ws")

# Shutdown: seconds the `<bye/>` (and the replies before it) get to be written.
BYE_WRITE_WAIT: Final = 5.0


@dataclass(eq=False, slots=True)
class _Farewell:
    """The shutdown drain's handle on one WebSocket conversation."""

    conversation: Conversation
    output: asyncio.Queue[str | None]
    writing: asyncio.Task[None]
    ws: web.WebSocketResponse

    def alert(self, text: str) -> None:
        if self.conversation.session is not None and not self.conversation.closing:
            self.conversation.alert(text)

    async def goodbye(self) -> None:
        if self.conversation.session is not None:
            self.conversation.unsolicited(farewell.bye())
        self.conversation.closing = True
        self.output.put_nowait(None)  # the writer stops after the bye
        await asyncio.wait([self.writing], timeout=BYE_WRITE_WAIT)
        await self.ws.close(code=WSCloseCode.GOING_AWAY)  # ends the handler's receive loop


async def handle(ctx: HttpContext, request: web.Request, rest: list[str]) -> web.StreamResponse:
    limits = ctx.services.settings.limits
    ws = web.WebSocketResponse(max_msg_size=limits.max_frame_bytes, heartbeat=60)
    if not ws.can_prepare(request).ok:
        return web.Response(status=426, text="WebSocket upgrade required\n")
    await ws.prepare(request)
    logs.bind_peer(request.remote or "-")
    output: asyncio.Queue[str | None] = asyncio.Queue()
    slow = False
    queued = 0

    def send(message: codec.Message) -> None:
        nonlocal slow, queued
        for piece in codec.pieces(message):
            text = piece.decode("utf-8")
            if slow or queued + len(text) > limits.output_buffer_bytes:
                slow = True
                return
            queued += len(text)
            output.put_nowait(text)

    conversation = Conversation(ctx.services, send, peer=request.remote or "-", transport="ws",
                                secure=request.secure)  # fmt: skip

    async def writer() -> None:
        nonlocal queued
        while (text := await output.get()) is not None:
            await ws.send_str(text)
            queued -= len(text)

    writing = asyncio.create_task(writer(), name="ws-writer")
    goodbye = _Farewell(conversation, output, writing, ws)
    ctx.state.sockets.add(goodbye)
    try:
        while not conversation.closing and not slow:
            session = conversation.session
            timeout = limits.login_timeout
            if session is not None:
                timeout = session.idle_timeout or limits.idle_timeout
            try:
                async with asyncio.timeout(timeout):
                    message = await ws.receive()
            except TimeoutError:
                break
            if message.type != WSMsgType.TEXT:
                if message.type == WSMsgType.BINARY:
                    conversation.reject(
                        None, BridgeError(ErrorKind.BAD_REQUEST, "text frames only")
                    )
                    continue
                break
            try:
                request_ = codec.decode(message.data.encode("utf-8"), limits.max_xml_depth)
            except BridgeError as exc:
                conversation.reject(None, exc)
                continue
            if await conversation.handle(request_) is Outcome.CLOSE:
                break
        output.put_nowait(None)
        if not slow:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.shield(writing)
    finally:
        ctx.state.sockets.discard(goodbye)
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)
        await conversation.close()
        await ws.close()
    return ws
