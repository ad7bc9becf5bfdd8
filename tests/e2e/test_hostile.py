"""Hostile input on the TCP listener: each gets an error or a closed connection, memory stays
bounded, and the bridge keeps serving other connections (DESIGN section 9)."""

from __future__ import annotations

import resource

from bridge.client import XimssClient
from tests.e2e.rawconn import RawConnection

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<mailboxCreate id="B1" mailbox="&lol9;"/>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<mailboxCreate id="B2" mailbox="&xxe;"/>"""


def rss_max_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def assert_still_serving(port: int) -> None:
    client = await XimssClient.connect("127.0.0.1", port)
    try:
        await client.login("user1@example.test", "user1pass")
        assert (await client.call("noop")).ok
    finally:
        await client.close()


async def _one_error(port: int, payload: bytes) -> bytes:
    conn = await RawConnection.open(port)
    try:
        await conn.send(payload + b"\0")
        (reply,) = await conn.frames(1)
        # The same connection still answers.
        await conn.send(b'<noop id="after"/>\0')
        assert await conn.frames(1) == [b'<response id="after"/>']
        return reply
    finally:
        await conn.close()


async def test_billion_laughs_is_refused(bridge_port: int) -> None:
    before = rss_max_mb()
    reply = await _one_error(bridge_port, BILLION_LAUGHS)
    assert b'errorNum="501"' in reply and b"errorText=" in reply
    assert b"lollol" not in reply
    assert rss_max_mb() - before < 50
    await assert_still_serving(bridge_port)


async def test_external_entity_is_refused(bridge_port: int) -> None:
    reply = await _one_error(bridge_port, EXTERNAL_ENTITY)
    assert b'errorNum="501"' in reply
    assert b"root:" not in reply
    await assert_still_serving(bridge_port)


async def test_fifty_megabyte_frame_closes_connection_without_buffering(bridge_port: int) -> None:
    before = rss_max_mb()
    conn = await RawConnection.open(bridge_port)
    chunk = b"<noop id='big' pad='" + b"a" * (1 << 20)
    sent = 0
    try:
        try:
            while sent < 50 << 20:
                await conn.send(chunk)
                sent += len(chunk)
        except ConnectionError:
            pass  # the bridge closed the connection while we were still sending
        assert await conn.closed_by_peer()
    finally:
        await conn.close()
    # The bridge never held the 50 MB: its limit is 1 MB (the test process hosts the bridge).
    assert rss_max_mb() - before < 40, rss_max_mb() - before
    await assert_still_serving(bridge_port)


async def test_oversized_frame_gets_an_error_before_close(bridge_port: int) -> None:
    conn = await RawConnection.open(bridge_port)
    try:
        await conn.send(b"<noop id='big' pad='" + b"a" * (2 << 20))
        (reply,) = await conn.frames(1)
        assert reply == b'<response errorText="message too large" errorNum="552"/>'
        assert await conn.closed_by_peer()
    finally:
        await conn.close()


async def test_ten_thousand_nested_elements(bridge_port: int) -> None:
    payload = b'<noop id="deep">' + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</noop>"
    reply = await _one_error(bridge_port, payload)
    assert reply.startswith(b'<response errorText="') and b'errorNum="501"' in reply
    await assert_still_serving(bridge_port)


async def test_invalid_utf8(bridge_port: int) -> None:
    reply = await _one_error(bridge_port, b'<noop id="u" note="\xff\xfe\xc3"/>')
    assert reply == b'<response errorText="malformed XML" errorNum="501"/>'


async def test_frame_without_id(bridge_port: int) -> None:
    reply = await _one_error(bridge_port, b"<noop/>")
    assert reply == b'<response errorText="id is missing" errorNum="501"/>'


async def test_not_xml_at_all(bridge_port: int) -> None:
    reply = await _one_error(bridge_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply == b'<response errorText="malformed XML" errorNum="501"/>'
