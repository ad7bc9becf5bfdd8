"""Pipelining floods and slow readers: 10,000 requests sent without reading a reply. The bridge
reads at most `pipeline_depth` ahead, never queues more than `output_buffer_bytes` of replies,
and never waits more than `slow_client_timeout` for a client to read: the connection is closed,
the session ends, and the memory of the process hosting the bridge stays flat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

import pytest

from bridge import config
from bridge.app import Bridge
from tests.conftest import devstack
from tests.e2e.hostile.kit import own_bridge, ports, rss_mb
from tests.e2e.rawconn import RawConnection
from tests.e2e.test_hostile import assert_still_serving

REQUESTS = 10_000
LONG_ID = "r" * 1000  # echoed in every reply: 10,000 replies are 10 MB


async def small_window_connection(port: int) -> RawConnection:
    """A connection whose receive buffer is tiny, so the kernel hides few unread replies."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    return RawConnection(reader, writer)


async def flood(bridge: Bridge, account: devstack.Account) -> float:
    """Log in, send the flood without reading; seconds until the bridge dropped the session."""
    port = ports(bridge)[0]
    conn = await small_window_connection(port)
    await conn.send(
        f'<login id="L" authData="{account.address}" password="{account.password}"/>\0'.encode()
    )
    assert len(await conn.frames(2)) == 2  # session, response
    started = time.monotonic()

    async def send_all() -> None:
        with contextlib.suppress(ConnectionError):
            for index in range(REQUESTS):
                await conn.send(f'<noop id="{LONG_ID}{index}"/>\0'.encode())

    sender = asyncio.create_task(send_all())
    try:
        async with asyncio.timeout(30):
            while any(s.account == account.address for s in bridge.services.sessions.all()):
                await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        # The socket is really gone on the bridge's side, though this client still holds it
        # open and reads nothing (a close waiting for unread replies to drain never ends).
        assert bridge.tcp is not None
        async with asyncio.timeout(10):
            while bridge.tcp.connection_count:
                await asyncio.sleep(0.05)
        async with asyncio.timeout(30):
            await sender  # the bridge closed: our writes fail, or all went out
    finally:
        sender.cancel()
        conn.writer.transport.abort()  # our own unsent requests must not hold us either
    return elapsed


async def test_output_bound_closes_a_client_that_reads_nothing(
    settings: config.Settings, stack: devstack.DevStack, caplog: pytest.LogCaptureFixture
) -> None:
    # An output bound below the reader's low-water mark: the bound trips, not the timeout.
    limits = {"output_buffer_bytes": 256 << 10, "slow_client_timeout": 600.0}
    async with own_bridge(settings, limits=limits) as bridge:
        before = rss_mb()
        with caplog.at_level(logging.WARNING, "bridge.tcp"):
            elapsed = await flood(bridge, stack.new_account("flood"))
        assert elapsed < 20
        assert "output buffer full, disconnecting slow client" in caplog.text
        assert rss_mb() - before < 40, rss_mb() - before
        await assert_still_serving(ports(bridge)[0])


async def test_slow_reader_is_disconnected_after_the_timeout(
    settings: config.Settings, stack: devstack.DevStack, caplog: pytest.LogCaptureFixture
) -> None:
    limits = {"slow_client_timeout": 1.0}  # the output bound stays at its 64 MB default
    async with own_bridge(settings, limits=limits) as bridge:
        before = rss_mb()
        with caplog.at_level(logging.WARNING, "bridge.tcp"):
            elapsed = await flood(bridge, stack.new_account("slowreader"))
        assert elapsed < 20
        assert "did not read its replies, disconnecting" in caplog.text
        assert rss_mb() - before < 60, rss_mb() - before
        await assert_still_serving(ports(bridge)[0])


async def test_ten_thousand_pipelined_requests_read_in_time_all_answered(bridge_port: int) -> None:
    """The same flood from a client that does read: every reply comes, in order."""
    conn = await RawConnection.open(bridge_port)
    try:
        await conn.send(b'<login id="L" authData="user1@example.test" password="user1pass"/>\0')
        await conn.frames(2)
        batch = b"".join(f'<noop id="{index}"/>\0'.encode() for index in range(REQUESTS))
        sender = asyncio.create_task(conn.send(batch))
        replies = await conn.frames(REQUESTS, timeout=60)
        await sender
        assert replies[0] == b'<response id="0"/>' and replies[-1] == b'<response id="9999"/>'
    finally:
        await conn.close()
