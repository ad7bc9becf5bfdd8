"""UDP and TCP transports on asyncio: bytes in and out, messages up; nothing about transactions.

Both bind one local address, which is what Via sent-by and Contact advertise. TCP listens too:
a registrar that cannot reuse our outgoing connection opens one to the advertised port. Each
TCP connection has its own framer and reader task; a framing error closes only that connection.
Malformed datagrams are dropped (a UDP peer cannot be told anything useful).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from adapters.sip.headers import SipParseError
from adapters.sip.message import DEFAULT_LIMITS, Message, SipLimits, StreamFramer, parse_datagram
from bridge.transport.tasks import TaskSet

log = logging.getLogger("adapters.sip")

Address = tuple[str, int]
Receiver = Callable[[Message, Address], None]
ErrorSink = Callable[[Address], None]

READ_CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0
# Bytes queued for one TCP peer before its connection is dropped (a peer that stops reading).
MAX_TCP_BACKLOG = 1024 * 1024


class Transport(Protocol):
    name: str  # as Via writes it: "UDP", "TCP"
    reliable: bool
    local: Address

    def send(self, data: bytes, dest: Address) -> None: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Hooks:
    receive: Receiver
    error: ErrorSink


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._owner.received(data, (str(addr[0]), int(str(addr[1]))))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class UdpTransport:
    name = "UDP"
    reliable = False

    def __init__(self, hooks: _Hooks, limits: SipLimits) -> None:
        self._hooks = hooks
        self._limits = limits
        self._endpoint: asyncio.DatagramTransport | None = None
        self.local: Address = ("127.0.0.1", 0)

    @classmethod
    async def open(
        cls, host: str, port: int, receive: Receiver, error: ErrorSink,
        limits: SipLimits = DEFAULT_LIMITS,
    ) -> UdpTransport:  # fmt: skip
        transport = cls(_Hooks(receive, error), limits)
        loop = asyncio.get_running_loop()
        endpoint, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(transport), local_addr=(host, port)
        )
        transport._endpoint = endpoint
        sockname = endpoint.get_extra_info("sockname")
        transport.local = (str(sockname[0]), int(sockname[1]))
        return transport

    def received(self, data: bytes, source: Address) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            message = parse_datagram(data, self._limits)
        except SipParseError as exc:
            log.debug("dropped malformed datagram from %s: %s", source, exc)
            return
        self._hooks.receive(message, source)

    def send(self, data: bytes, dest: Address) -> None:
        if self._endpoint is None or self._endpoint.is_closing():
            self._hooks.error(dest)
            return
        self._endpoint.sendto(data, dest)

    async def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()


@dataclass(slots=True, eq=False)
class _Connection:
    writer: asyncio.StreamWriter | None
    pending: list[bytes]


class TcpTransport:
    name = "TCP"
    reliable = True

    def __init__(self, hooks: _Hooks, limits: SipLimits) -> None:
        self._hooks = hooks
        self._limits = limits
        self._server: asyncio.Server | None = None
        self._connections: dict[Address, _Connection] = {}
        self._tasks = TaskSet("sip-tcp")
        self.local: Address = ("127.0.0.1", 0)

    @classmethod
    async def open(
        cls, host: str, port: int, receive: Receiver, error: ErrorSink,
        limits: SipLimits = DEFAULT_LIMITS,
    ) -> TcpTransport:  # fmt: skip
        transport = cls(_Hooks(receive, error), limits)
        transport._server = await asyncio.start_server(transport._accepted, host, port)
        sockname = transport._server.sockets[0].getsockname()
        transport.local = (str(sockname[0]), int(sockname[1]))
        return transport

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = (str(peer[0]), int(peer[1]))
        self._connections[address] = _Connection(writer, [])
        await self._read(address, reader, writer)

    def send(self, data: bytes, dest: Address) -> None:
        connection = self._connections.get(dest)
        if connection is None:
            connection = _Connection(None, [data])
            self._connections[dest] = connection
            self._tasks.spawn(self._connect(dest, connection), f"connect {dest[0]}:{dest[1]}")
            return
        if connection.writer is None:
            connection.pending.append(data)
            return
        transport = connection.writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > MAX_TCP_BACKLOG:
            self._drop(dest, connection)
            self._hooks.error(dest)
            return
        connection.writer.write(data)

    async def _connect(self, dest: Address, connection: _Connection) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(dest[0], dest[1], limit=READ_CHUNK)
        except (OSError, TimeoutError) as exc:
            log.debug("tcp connect to %s failed: %s", dest, exc)
            self._connections.pop(dest, None)
            self._hooks.error(dest)
            return
        connection.writer = writer
        for data in connection.pending:
            writer.write(data)
        connection.pending.clear()
        await self._read(dest, reader, writer)

    async def _read(
        self, address: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        framer = StreamFramer(self._limits)
        try:
            while data := await reader.read(READ_CHUNK):
                for message in framer.feed(data):
                    self._hooks.receive(message, address)
        except SipParseError as exc:
            log.debug("closing tcp connection %s: %s", address, exc)
        except OSError as exc:
            log.debug("tcp connection %s failed: %s", address, exc)
        finally:
            connection = self._connections.get(address)
            if connection is not None and connection.writer is writer:
                self._drop(address, connection)
            writer.close()

    def _drop(self, address: Address, connection: _Connection) -> None:
        if self._connections.get(address) is connection:
            del self._connections[address]
        if connection.writer is not None:
            connection.writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for address, connection in list(self._connections.items()):
            self._drop(address, connection)
        await self._tasks.cancel_all()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)


TRANSPORTS: dict[str, type[UdpTransport] | type[TcpTransport]] = {
    "udp": UdpTransport,
    "tcp": TcpTransport,
}


async def open_transport(
    kind: str, host: str, port: int, receive: Receiver, error: ErrorSink,
    limits: SipLimits = DEFAULT_LIMITS,
) -> Transport:  # fmt: skip
    factory = TRANSPORTS.get(kind.lower())
    if factory is None:
        raise ValueError(f"unsupported SIP transport {kind!r}")
    return await factory.open(host, port, receive, error, limits)
