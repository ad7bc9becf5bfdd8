"""XIMSS over TCP: zero-byte framed XML both ways, pipelined requests answered in order.

Per connection three tasks run in one TaskGroup: the reader deframes and queues requests (the
queue's bound is the pipeline depth, so a client that sends faster than we answer stops being read),
the processor hands them one at a time to the Conversation, and the writer drains the bounded
output queue (a client that does not read its replies is disconnected, never buffered without end).

TLS comes two ways: a listener with an SSL context (the implicit-TLS port), and `starttls` on the
plain port. For `starttls` the processor stops the reader and the writer, throws away every byte
the client sent after the request, and runs the handshake on the same socket before both restart:
bytes that arrived in clear text must never be taken as if they came over TLS (CVE-2011-0411).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any, Final, cast

from bridge import logs
from bridge.config import LimitSettings
from bridge.errors import BridgeError, ErrorKind
from bridge.services import Services
from bridge.transport import farewell
from bridge.transport.listener import READ_CHUNK, StreamListener
from bridge.ximss import codec
from bridge.ximss.conversation import Conversation
from bridge.ximss.framing import FrameDecoder, FrameTooLarge, encode_frame
from bridge.ximss.ops.base import Outcome

log = logging.getLogger("bridge.tcp")

# Replies still queued below which the next request is processed without waiting.
LOW_WATER: Final = 1 << 20
_EOF: Final = b""


async def close_writer(writer: asyncio.StreamWriter, linger: float) -> None:
    """Close, letting queued bytes go out for `linger` seconds at most: a close waits for the
    client to read them, and one that reads nothing would hold the socket (and its connection
    slot) open forever."""
    writer.close()
    try:
        async with asyncio.timeout(linger):
            await writer.wait_closed()
    except Exception:
        writer.transport.abort()


class SlowClient(Exception):
    """The output queue is full: the client is not reading what we send."""


class XimssConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        services: Services,
        *,
        secure: bool = False,
        starttls: ssl.SSLContext | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._limits: LimitSettings = services.settings.limits
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"
        self._requests: asyncio.Queue[bytes] = asyncio.Queue(self._limits.pipeline_depth)
        # Unbounded in count, bounded in bytes: one large reply (a folderBrowse of thousands of
        # rows) is fine, a client that stops reading is not.
        self._output: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued = 0
        self._drained = asyncio.Event()
        self.conversation = Conversation(services, self._send, peer=self.peer, secure=secure)
        self.conversation.starttls_offered = starttls is not None and not secure
        self._starttls = starttls
        self._slow = False
        self._group: asyncio.TaskGroup | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._write_task: asyncio.Task[None] | None = None
        # Shutdown: sent after every reply, as the connection's last message.
        self._farewell: codec.Message | None = None
        self._finished = asyncio.Event()

    def _send(self, message: codec.Message) -> None:
        if self._slow:
            return
        frame = b"".join(encode_frame(piece) for piece in codec.pieces(message))
        if self._queued + len(frame) > self._limits.output_buffer_bytes:
            self._slow = True
            log.warning("peer=%s output buffer full, disconnecting slow client", self.peer)
            self._output.put_nowait(None)
            return
        self._queued += len(frame)
        self._drained.clear()
        self._output.put_nowait(frame)

    async def _wait_for_reader(self) -> bool:
        """Backpressure between requests: let the client read most of what it was sent."""
        if self._queued <= LOW_WATER:
            return True
        try:
            async with asyncio.timeout(self._limits.slow_client_timeout):
                await self._drained.wait()
        except TimeoutError:
            log.warning("peer=%s did not read its replies, disconnecting", self.peer)
            self._slow = True
            return False
        return True

    async def run(self) -> None:
        logs.bind_peer(self.peer)
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._start_io()
                await self._process_loop()
                if self._farewell is not None:
                    self._send(self._farewell)
                assert self._read_task is not None
                self._read_task.cancel()
                self._output.put_nowait(None)  # flush what is queued, then stop
                if self._slow:
                    assert self._write_task is not None
                    self._write_task.cancel()
        except* (OSError, SlowClient):
            pass
        finally:
            await self.conversation.close()
            await close_writer(
                self._writer, 0.0 if self._slow else self._limits.slow_client_timeout
            )
            self._finished.set()

    def alert(self, text: str) -> None:
        if self.conversation.session is not None and not self.conversation.closing:
            self.conversation.alert(text)

    async def goodbye(self) -> None:
        """Shutdown: `<bye/>` after the reply being prepared, then run()'s orderly end (replies
        flushed, session closed, socket closed)."""
        if self.conversation.session is not None:
            self._farewell = farewell.bye()
        self.conversation.closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self._requests.put_nowait(_EOF)  # wakes a processor waiting for the next request
        await self._finished.wait()

    async def _end_from_outside(self) -> None:
        """KILL, killOld or shutdown: closing the socket ends the reader, then everything."""
        self.conversation.closing = True
        self._writer.close()

    def _start_io(self) -> None:
        assert self._group is not None
        self._read_task = self._group.create_task(self._read_loop(), name=f"ximss-read {self.peer}")
        self._write_task = self._group.create_task(
            self._write_loop(), name=f"ximss-write {self.peer}"
        )

    async def _read_loop(self) -> None:
        decoder = FrameDecoder(self._limits.max_frame_bytes)
        while True:
            try:
                chunk = await self._reader.read(READ_CHUNK)
            except OSError:  # a reset, or a broken TLS record
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
        loop = asyncio.get_running_loop()
        # From the connection's start: requests before login (noop...) do not extend it.
        login_deadline = loop.time() + self._limits.login_timeout
        while not self.conversation.closing and not self._slow:
            if not await self._wait_for_reader():
                return
            timeout = (
                self._limits.idle_timeout
                if self.conversation.session is not None
                else max(0.0, login_deadline - loop.time())
            )
            session = self.conversation.session
            if session is not None and session.idle_timeout is not None:
                timeout = session.idle_timeout  # setSessionOption idleTimeout
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
            outcome = await self.conversation.handle(request)
            session = self.conversation.session
            if session is not None and session.ender is None:
                session.ender = self._end_from_outside
            if outcome is Outcome.STARTTLS and not await self._start_tls():
                return

    async def _start_tls(self) -> bool:
        """Upgrade this connection in place after a positive `starttls` response; False when the
        connection cannot go on (the handshake failed)."""
        assert self._starttls is not None  # the conversation offers starttls only with a context
        assert self._read_task is not None and self._write_task is not None
        # Stop taking bytes off the socket first: whatever is still in the kernel then reaches
        # the TLS layer, where clear text can only fail the handshake.
        cast(asyncio.ReadTransport, self._writer.transport).pause_reading()
        self._read_task.cancel()
        await asyncio.wait([self._read_task])
        # The positive response goes out in clear text, before the handshake.
        await self._output.put(None)
        await asyncio.wait([self._write_task])
        if self._slow or self._write_task.cancelled() or self._write_task.exception():
            return False  # the task group reports the writer's error
        discarded = self._discard_clear_text()
        if discarded:
            log.warning(
                "peer=%s %d bytes sent after starttls, before the handshake, discarded",
                self.peer,
                discarded,
            )
        try:
            await self._writer.start_tls(
                self._starttls, ssl_handshake_timeout=self._limits.login_timeout
            )
        except (OSError, TimeoutError) as exc:
            # Handshake failures are the client's (wrong protocol, no shared cipher, gone away).
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log.info("peer=%s TLS handshake failed (%s), closing", self.peer, reason)
            return False
        self.conversation.tls_started()
        self._start_io()
        return True

    def _discard_clear_text(self) -> int:
        """Drop every byte received before the handshake and not yet processed: queued requests,
        the reader's half frame (it lived in the cancelled read task), and the stream's buffer."""
        size = 0
        while not self._requests.empty():
            size += len(self._requests.get_nowait())
        # StreamReader has no public call to drop what it holds (python/cpython#118642), and
        # start_tls() would either hand it to us later as if it had been decrypted (3.11) or feed
        # it to the TLS layer (newer versions, python/cpython#142352). Fail closed if that changes.
        buffer: Any = getattr(self._reader, "_buffer", None)
        if not isinstance(buffer, bytearray):
            raise RuntimeError("cannot discard the stream's buffered clear text before starttls")
        size += len(buffer)
        buffer.clear()
        return size

    async def _write_loop(self) -> None:
        while True:
            message = await self._output.get()
            if message is None:
                if self._slow:
                    raise SlowClient
                return
            batch = [message]
            # Coalesce what is already queued into one write: pipelined replies leave together.
            done = False
            while not self._output.empty() and not done:
                more = self._output.get_nowait()
                if more is None:
                    done = True
                else:
                    batch.append(more)
            data = b"".join(batch)
            self._writer.write(data)
            await self._writer.drain()
            self._queued -= len(data)
            if self._queued <= LOW_WATER:
                self._drained.set()
            if done or self._slow:
                if self._slow:
                    raise SlowClient
                return


class TcpListener(StreamListener):
    """The XIMSS TCP server: accepts connections and runs each as a named, tracked task.

    With `tls` every connection is encrypted from the first byte (the implicit-TLS port); with
    `starttls` plain connections may upgrade themselves.
    """

    def __init__(
        self,
        services: Services,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(services, host, port, "ximss-tls" if tls is not None else "ximss-tcp")
        self._tls = tls
        self._starttls = None if tls is not None else starttls

    async def start(self) -> None:
        await self._listen(
            ssl=self._tls,
            # A handshake is part of logging in: it gets the same time limit.
            ssl_handshake_timeout=(
                self._services.settings.limits.login_timeout if self._tls else None
            ),
        )
        kind = "TLS" if self._tls else ("TCP, STARTTLS" if self._starttls else "TCP")
        log.info("XIMSS %s listening on %s:%d", kind, self._host, self.port)

    def farewells(self) -> list[farewell.Farewell]:
        return [c for c in self.live if isinstance(c, XimssConnection)]

    def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> XimssConnection:
        return XimssConnection(
            reader,
            writer,
            self._services,
            secure=self._tls is not None,
            starttls=self._starttls,
        )
