"""Slowloris: connections that dribble bytes to stay open without ever doing anything. On TCP
(XIMSS and XMAP) a connection gets `login_timeout` seconds from its start to log in, however it
trickles bytes or repeats pre-login requests; on HTTP aiohttp closes a connection whose request
head has not arrived within `[http] read_timeout` (the keep-alive timer starts at connect), and
a body that trickles in is answered 408."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest

from bridge import config
from bridge.app import Bridge
from tests.e2e.hostile.kit import own_bridge, ports

TIMEOUT = 2.0


@pytest.fixture(scope="module")
async def impatient(settings: config.Settings) -> AsyncIterator[Bridge]:
    async with own_bridge(
        settings, limits={"login_timeout": TIMEOUT}, http={"read_timeout": TIMEOUT}
    ) as running:
        yield running


async def dribble(port: int, pieces: Callable[[int], bytes], every: float = 0.2) -> float:
    """Send `pieces(i)` every `every` seconds until the bridge closes; seconds that took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()

    async def keep_sending() -> None:
        with contextlib.suppress(ConnectionError):
            for index in range(10_000):
                writer.write(pieces(index))
                await writer.drain()
                await asyncio.sleep(every)

    sender = asyncio.create_task(keep_sending())
    try:
        async with asyncio.timeout(TIMEOUT * 5):
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass  # replies to pre-login requests, then the end
        return time.monotonic() - started
    finally:
        sender.cancel()
        writer.transport.abort()


def one_byte_of(data: bytes) -> Callable[[int], bytes]:
    return lambda index: data[index % len(data) : index % len(data) + 1]


CASES: dict[str, tuple[int, Callable[[int], bytes]]] = {
    # (which port: 0 XIMSS, 1 XMAP, 2 HTTP; what is dribbled)
    "ximss: a frame that never ends": (0, one_byte_of(b'<noop id="1" pad="' + b"a" * 100_000)),
    "ximss: pre-login noops": (0, lambda index: f'<noop id="{index}"/>\0'.encode()),
    "ximss: listFeatures forever": (0, lambda index: f'<listFeatures id="{index}"/>\0'.encode()),
    "xmap: a frame that never ends": (1, one_byte_of(b'<LOGIN UserName="' + b"u" * 100_000)),
    "http: headers that never end": (
        2, one_byte_of(b"GET /XIMSSLogin/ HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: a\r\n" * 10_000),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
async def test_dribbling_connection_is_closed_in_time(impatient: Bridge, case: str) -> None:
    which, pieces = CASES[case]
    port = ports(impatient)[which] if which < 2 else int(ports(impatient)[2].rpartition(":")[2])
    elapsed = await dribble(port, pieces)
    # aiohttp checks its keep-alive timer late by up to a second.
    assert TIMEOUT - 0.5 < elapsed < TIMEOUT + 2.5, elapsed


async def test_slow_body_gets_408(impatient: Bridge) -> None:
    port = int(ports(impatient)[2].rpartition(":")[2])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /XIMSSLogin/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                     b"Content-Length: 100000\r\n\r\n<XIMSS>")  # fmt: skip
        started = time.monotonic()

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                while True:
                    await asyncio.sleep(TIMEOUT * 2)
                    writer.write(b" ")
                    await writer.drain()

        sender = asyncio.create_task(trickle())
        async with asyncio.timeout(TIMEOUT * 5):
            head = await reader.readuntil(b"\r\n\r\n")
        sender.cancel()
        assert head.startswith(b"HTTP/1.1 408"), head
        assert time.monotonic() - started < TIMEOUT + 2.5
    finally:
        writer.transport.abort()
