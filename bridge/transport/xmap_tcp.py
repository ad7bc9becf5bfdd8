"""XMAP over TCP (DESIGN.md section 6): zero-byte framed XML, `{N}` CRLF blobs after a command
with `<?GOREALLYSLOW?>`, the same framing for GETFILE/GETMESSAGE answers.

Commands are answered one at a time, in order. The connection is read only between commands,
so a client that sends faster than it is answered waits in its own socket buffer, and what the
bridge holds is bounded by the decoder's limits (one frame, one blob). A reply the client does
not read within `slow_client_timeout` ends the connection. A framing error (a bad or oversized
blob length, a frame past the limit) is answered with an ERROR and ends the connection: past it
the stream has no reliable message boundary. A connection that gave `MAX_FAILED_LOGINS` wrong
passwords is closed after the last answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from bridge import logs
from bridge.errors import BridgeError
from bridge.services import Services
from bridge.transport.listener import READ_CHUNK, StreamListener
from bridge.transport.tcp import close_writer
from bridge.xmap.account import Reply
from bridge.xmap.conversation import XmapConversation
from bridge.xmap.errors import error_for
from bridge.xmap.framing import Decoder, FramingError, Role, encode, encode_with_blob

log = logging.getLogger("bridge.xmap")

# Wrong passwords one connection may try before it is closed (guessing costs a reconnect).
MAX_FAILED_LOGINS: Final = 3


class XmapConnection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, services: Services
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._services = services
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"
        self.conversation = XmapConversation(
            services,
            peer=self.peer,
            transport="xmap",
            ender=self._end_from_outside,
            password_allowed=not services.settings.xmap.require_tls_for_clear_text,
        )

    async def _end_from_outside(self) -> None:
        """KILL, killOld or shutdown: closing the socket ends the read loop."""
        self._writer.close()

    async def run(self) -> None:
        logs.bind_peer(self.peer)
        limits = self._services.settings.limits
        decoder = Decoder(
            max_frame=limits.max_frame_bytes,
            max_blob=limits.max_message_bytes,
            max_depth=limits.max_xml_depth,
            role=Role.SERVER,
        )
        loop = asyncio.get_running_loop()
        # From the connection's start: bytes dribbled before login do not extend it.
        login_deadline = loop.time() + limits.login_timeout
        try:
            while True:
                session = self.conversation.session
                timeout = limits.idle_timeout
                if session is None:
                    timeout = max(0.0, login_deadline - loop.time())
                try:
                    async with asyncio.timeout(timeout):
                        chunk = await self._reader.read(READ_CHUNK)
                except TimeoutError:
                    log.info("peer=%s XMAP idle for %.0fs, closing", self.peer, timeout)
                    return
                if not chunk:
                    return
                try:
                    events = decoder.feed(chunk)
                except FramingError as exc:
                    for event in exc.events:
                        await self._send(await self.conversation.handle(event))
                    log.info("peer=%s XMAP framing error (%s), closing", self.peer, exc.reason)
                    await self._send(Reply(error_for(BridgeError(exc.kind, exc.reason))))
                    return
                for event in events:
                    await self._send(await self.conversation.handle(event))
                    if (session := self.conversation.session) is not None:
                        logs.bind_session(session.url_id, session.account)
                    if self.conversation.failed_logins >= MAX_FAILED_LOGINS:
                        log.info("peer=%s XMAP %d wrong passwords, closing", self.peer,
                                 MAX_FAILED_LOGINS)  # fmt: skip
                        return
        except (OSError, TimeoutError):
            pass  # the client went away, or stopped reading its replies
        finally:
            await self.conversation.close()
            await close_writer(self._writer, limits.slow_client_timeout)

    async def _send(self, reply: Reply) -> None:
        if reply.blob is None:
            self._writer.write(encode(reply.element))
        else:
            self._writer.writelines(encode_with_blob(reply.element, reply.blob))
        async with asyncio.timeout(self._services.settings.limits.slow_client_timeout):
            await self._writer.drain()


class XmapTcpListener(StreamListener):
    def __init__(self, services: Services, host: str, port: int) -> None:
        super().__init__(services, host, port, "xmap-tcp")

    async def start(self) -> None:
        await self._listen()
        log.info("XMAP TCP listening on %s:%d", self._host, self.port)

    def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> XmapConnection:
        return XmapConnection(reader, writer, self._services)
