"""XML bombs and entity tricks, gigantic attributes and deep nesting on every XML front end: the
HTTP binding (login body and session batches), XMAP over TCP and over HTTP, and the DTD variants
the XIMSS TCP tests (tests/e2e/test_hostile.py) do not send. Each is refused with the front
end's error (501), nothing is expanded or fetched, memory stays flat, and the bridge serves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge.xmap import commands as c
from bridge.xmap.client import XmapClient
from tests.conftest import devstack
from tests.e2e.hostile.kit import rss_mb
from tests.e2e.rawconn import RawConnection
from tests.e2e.test_hostile import BILLION_LAUGHS, assert_still_serving


class Tripwire:
    """A listener that records any connection: an external DTD or entity must never be fetched."""

    def __init__(self) -> None:
        self.hits = 0
        self.server: asyncio.Server | None = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.hits += 1
        writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/evil.dtd"


@pytest.fixture
async def tripwire() -> AsyncIterator[Tripwire]:
    wire = Tripwire()
    wire.server = await asyncio.start_server(wire._accept, "127.0.0.1", 0)
    yield wire
    wire.server.close()
    await wire.server.wait_closed()


def payloads(wire: Tripwire, body: bytes) -> dict[str, bytes]:
    """Hostile documents around one request element (`body`, which ends the document)."""
    laughs = BILLION_LAUGHS.rpartition(b"]>")[0] + b"]>\n"
    return {
        "billion laughs": laughs + body.replace(b"/>", b' x="&lol9;"/>', 1),
        "external entity": b'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        + body.replace(b"/>", b' x="&xxe;"/>', 1),
        "external DTD": f'<!DOCTYPE r SYSTEM "{wire.url}">\n'.encode() + body,
        "parameter entity": (
            f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{wire.url}"> %p;]>\n'.encode() + body
        ),
        "empty internal DTD": b"<!DOCTYPE r []>\n" + body,
        "quadratic blowup": b'<!DOCTYPE r [<!ENTITY a "'
        + b"a" * 50_000
        + b'">]>\n'
        + body.replace(b"/>", b' x="' + b"&a;" * 20_000 + b'"/>', 1),
    }


def assert_nothing_leaked(reply: bytes, wire: Tripwire) -> None:
    assert b"root:" not in reply and b"lollol" not in reply and b"aaaa" not in reply
    assert wire.hits == 0


async def test_dtd_variants_on_ximss_tcp(bridge_port: int, tripwire: Tripwire) -> None:
    before = rss_mb()
    conn = await RawConnection.open(bridge_port)
    try:
        for name, payload in payloads(tripwire, b'<noop id="n"/>').items():
            await conn.send(b'<?xml version="1.0"?>\n' + payload + b"\0")
            (reply,) = await conn.frames(1)
            assert b'errorNum="501"' in reply, (name, reply)
            assert_nothing_leaked(reply, tripwire)
        # XInclude is not processed either: the noop is just a noop.
        await conn.send(b'<noop id="xi" xmlns:xi="http://www.w3.org/2001/XInclude">'
                        b'<xi:include href="file:///etc/passwd" parse="text"/></noop>\0')  # fmt: skip
        (reply,) = await conn.frames(1)
        assert reply == b'<response id="xi"/>'
    finally:
        await conn.close()
    assert rss_mb() - before < 50
    await assert_still_serving(bridge_port)


async def _http_login_body(url: str, body: bytes) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.post(f"{url}/XIMSSLogin/", data=body,
                         headers={"Content-Type": "text/xml"}) as response:  # fmt: skip
        return response.status, await response.read()


async def test_http_binding_login_body_and_session_batch(http_url: str, tripwire: Tripwire) -> None:
    before = rss_mb()
    for name, payload in payloads(tripwire, b'<listFeatures id="1"/>').items():
        status, reply = await _http_login_body(http_url, b"<XIMSS>" + payload + b"</XIMSS>")
        # The DTD may sit before the root: send it as the document's own prologue too.
        status2, reply2 = await _http_login_body(http_url, payload)
        for got_status, got in ((status, reply), (status2, reply2)):
            assert got_status == 200 and b'errorNum="501"' in got, (name, got)
            assert b"<features" not in got
            assert_nothing_leaked(got, tripwire)
    async with aiohttp.ClientSession() as http:
        query = {"userName": "user1@example.test", "password": "user1pass"}
        async with http.get(f"{http_url}/XIMSSLogin/", params=query) as response:
            text = await response.text()
        session = text.split('urlID="')[1].split('"')[0]
        for name, payload in payloads(tripwire, b'<noop id="2"/>').items():
            async with http.post(f"{http_url}/Session/{session}/sync", data=payload) as response:
                reply = await response.read()
                assert response.status == 200 and b'errorNum="501"' in reply, (name, reply)
                assert_nothing_leaked(reply, tripwire)
        # Deep nesting and a gigantic attribute inside a batch.
        deep = b'<XIMSS><noop id="d">' + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</noop></XIMSS>"
        async with http.post(f"{http_url}/Session/{session}/sync", data=deep) as response:
            assert b'errorNum="501"' in await response.read()
        big = b'<XIMSS><noop id="g" pad="' + b"x" * 900_000 + b'"/></XIMSS>'
        async with http.post(f"{http_url}/Session/{session}/sync", data=big) as response:
            assert (await response.read()) == b'<XIMSS><response id="g"/></XIMSS>'
        bigger = b'<XIMSS><noop id="h" pad="' + b"x" * (2 << 20) + b'"/></XIMSS>'
        async with http.post(f"{http_url}/Session/{session}/sync", data=bigger) as response:
            assert response.status == 413  # over [http] max_body_bytes, refused unread
        async with http.post(f"{http_url}/Session/{session}/sync",
                             data=b'<XIMSS><noop id="ok"/></XIMSS>') as response:  # fmt: skip
            assert (await response.read()) == b'<XIMSS><response id="ok"/></XIMSS>'
    assert rss_mb() - before < 80


async def _xmap_answer(port: int, frame: bytes) -> bytes:
    """The answer to one raw XMAP frame before login (b"" when the bridge closed instead)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame + b"\0")
        await writer.drain()
        async with asyncio.timeout(10):
            data = b""
            while not data.endswith(b"\0"):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
        return data
    finally:
        writer.close()


async def test_xmap_tcp(
    xmap_port: int, tripwire: Tripwire, fresh_account: devstack.Account
) -> None:
    before = rss_mb()
    for name, payload in payloads(tripwire, b"<LISTALLFOLDERS/>").items():
        reply = await _xmap_answer(xmap_port, payload)
        assert b'Code="501"' in reply, (name, reply)
        assert_nothing_leaked(reply, tripwire)
    deep = b"<LISTALLFOLDERS>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</LISTALLFOLDERS>"
    assert b'Code="501"' in await _xmap_answer(xmap_port, deep)
    big = b'<LOGIN UserName="' + b"u" * 900_000 + b'" Password="x"/>'
    reply = await _xmap_answer(xmap_port, big)
    assert b"<ERROR" in reply and b"uuuuuuuu" not in reply
    huge = b'<LOGIN UserName="' + b"u" * (3 << 20) + b'" Password="x"/>'
    reply = await _xmap_answer(xmap_port, huge)
    assert reply == b"" or b"<ERROR" in reply  # answered or cut off, never buffered
    assert rss_mb() - before < 50
    client = await XmapClient.connect("127.0.0.1", xmap_port)
    try:
        await client.login(fresh_account.address, fresh_account.password)
        await client.call(c.ListAllFolders())
    finally:
        await client.close()


async def test_xmap_http(
    http_url: str, tripwire: Tripwire, fresh_account: devstack.Account
) -> None:
    auth = {
        "Authorization": aiohttp.encode_basic_auth(fresh_account.address, fresh_account.password)
    }
    async with aiohttp.ClientSession() as http:

        async def post(body: bytes) -> tuple[int, bytes]:
            async with http.post(f"{http_url}/XMAP", data=body, headers=auth) as response:
                return response.status, await response.read()

        for name, payload in payloads(tripwire, b"<LISTALLFOLDERS/>").items():
            status, reply = await post(payload)
            assert (status, b'Code="501"' in reply) == (400, True), (name, reply)
            assert_nothing_leaked(reply, tripwire)
        deep = b"<LISTALLFOLDERS>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</LISTALLFOLDERS>"
        assert (await post(deep))[0] == 400
        big = b'<CREATEFOLDER Name="' + b"f" * 900_000 + b'"/>'
        status, reply = await post(big)
        assert status in (400, 413, 403) and b"fffffff" not in reply
        status, reply = await post(b"<LISTALLFOLDERS/>")
        assert status == 200 and b"INBOX" in reply
