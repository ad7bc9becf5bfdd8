"""XIMSS over TCP: zero-byte framed XML both ways, pipelined requests answered in order.

Per connection three tasks run in one TaskGroup: the reader deframes and queues requests (the
queue's bound is the pipeline depth, so a client that sends faster than we answer stops being read),
the processor hands them one at a time to the Conversation, and the writer drains the bounded
output queue (a client that does not read its replies is disconnected, never buffered without end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from lxml import etree

from bridge.config import LimitSettings
from bridge.errors import BridgeError, ErrorKind
from bridge.services import Services
from bridge.transport.tasks import TaskSet
from bridge.ximss import codec
from bridge.ximss.conversation import Conversation
from bridge.ximss.framing import FrameDecoder, FrameTooLarge, encode_frame

log = logging.getLogger("bridge.tcp")

READ_CHUNK: Final = 64 * 1024
_EOF: Final = b""


class SlowClient(Exception):
    """The output queue is full: the client is not reading what we send."""


class XimssConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        services: Services,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._limits: LimitSettings = services.settings.limits
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"
        self._requests: asyncio.Queue[bytes] = asyncio.Queue(self._limits.pipeline_depth)
        self._output: asyncio.Queue[bytes | None] = asyncio.Queue(self._limits.output_queue)
        self.conversation = Conversation(services, self._send, peer=self.peer)
        self._slow = False

    def _send(self, message: etree._Element) -> None:
        if self._slow:
            return
        try:
            self._output.put_nowait(encode_frame(codec.encode(message)))
        except asyncio.QueueFull:
            self._slow = True
            log.warning("peer=%s output queue full, disconnecting slow client", self.peer)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                reader = group.create_task(self._read_loop(), name=f"ximss-read {self.peer}")
                writer = group.create_task(self._write_loop(), name=f"ximss-write {self.peer}")
                await self._process_loop()
                reader.cancel()
                try:
                    self._output.put_nowait(None)  # flush what is queued, then stop
                except asyncio.QueueFull:
                    writer.cancel()
        except* (ConnectionError, SlowClient):
            pass
        finally:
            await self.conversation.close()
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    async def _read_loop(self) -> None:
        decoder = FrameDecoder(self._limits.max_frame_bytes)
        while True:
            try:
                chunk = await self._reader.read(READ_CHUNK)
            except ConnectionError:
                chunk = _EOF
            if not chunk:
                await self._requests.put(_EOF)
                return
            try:
                frames = decoder.feed(chunk)
            except FrameTooLarge:
                log.warning("peer=%s frame over %d bytes, closing", self.peer, decoder.limit)
                self.conversation.reject(None, BridgeError(ErrorKind.LIMIT, "message too large"))
                await self._requests.put(_EOF)
                return
            for frame in frames:
                await self._requests.put(frame)

    async def _process_loop(self) -> None:
        while not self.conversation.closing and not self._slow:
            timeout = (
                self._limits.idle_timeout
                if self.conversation.session is not None
                else self._limits.login_timeout
            )
            try:
                async with asyncio.timeout(timeout):
                    frame = await self._requests.get()
            except TimeoutError:
                log.info("peer=%s idle for %.0fs, closing", self.peer, timeout)
                return
            if frame is _EOF or not frame:
                return
            try:
                request = codec.decode(frame, self._limits.max_xml_depth)
            except BridgeError as exc:
                self.conversation.reject(None, exc)
                continue
            await self.conversation.handle(request)

    async def _write_loop(self) -> None:
        while True:
            message = await self._output.get()
            if message is None:
                return
            batch = [message]
            # Coalesce what is already queued into one write: pipelined replies leave together.
            while not self._output.empty():
                more = self._output.get_nowait()
                if more is None:
                    self._writer.write(b"".join(batch))
                    await self._writer.drain()
                    return
                batch.append(more)
            self._writer.write(b"".join(batch))
            await self._writer.drain()
            if self._slow:
                raise SlowClient


class TcpListener:
    """The XIMSS TCP server: accepts connections and runs each as a named, tracked task."""

    def __init__(self, services: Services, host: str, port: int) -> None:
        self._services = services
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections = TaskSet("ximss-tcp")

    @property
    def port(self) -> int:
        assert self._server is not None
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, limit=READ_CHUNK, reuse_address=True
        )
        log.info("XIMSS TCP listening on %s:%d", self._host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self._services.settings.limits.max_connections:
            log.warning("connection limit reached, refusing a connection")
            writer.close()
            return
        # Run the connection as a task of ours, not asyncio's callback task: cancelling that one
        # at shutdown makes Python 3.11's stream protocol log a spurious CancelledError.
        connection = XimssConnection(reader, writer, self._services)
        self._connections.spawn(connection.run(), connection.peer)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._connections.cancel_all()
        if self._server is not None:
            await self._server.wait_closed()
