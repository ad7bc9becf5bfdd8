"""retrieveXML end to end: a bridge with the operation enabled, fetching from a loopback origin.

The origin runs on 127.0.0.1, which the guard refuses unless the operator opts its host:port in
(`allow_private`); the tests use exactly that opt-in, and check that everything else is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web

from bridge import config, xml
from bridge.app import Bridge
from bridge.client import Reply, XimssClient
from tests.conftest import devstack

DOCUMENT = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<feed lang="en"><item n="1">caf\xc3\xa9</item></feed>'
)
CHUNK = b"<x>" + b"a" * 8192 + b"</x>"
MAX_BYTES = 64 << 10


@dataclass(frozen=True, slots=True)
class Origin:
    port: int

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


async def _document(request: web.Request) -> web.Response:
    return web.Response(body=DOCUMENT, content_type="application/xml")


async def _streamed_huge(request: web.Request) -> web.StreamResponse:
    # Chunked, no Content-Length: only counting while reading can stop it.
    reply = web.StreamResponse()
    reply.content_type = "application/xml"
    await reply.prepare(request)
    await reply.write(b"<huge>")
    try:
        for _ in range(4 * MAX_BYTES // len(CHUNK)):
            await reply.write(CHUNK)
        await reply.write(b"</huge>")
    except ConnectionError:
        pass  # the bridge hung up once it had enough
    return reply


async def _declared_huge(request: web.Request) -> web.Response:
    return web.Response(body=b"<huge>" + CHUNK * (2 * MAX_BYTES // len(CHUNK)) + b"</huge>")


async def _not_xml(request: web.Request) -> web.Response:
    return web.Response(text="hello, this is not XML {}", content_type="text/plain")


async def _entities(request: web.Request) -> web.Response:
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    return web.Response(body=body, content_type="application/xml")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(2.5)
    return web.Response(body=DOCUMENT)


def _redirect(location: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        port = request.url.port
        raise web.HTTPFound(location.replace("PORT", str(port)))

    return handler


@pytest.fixture(scope="module")
async def origin() -> AsyncIterator[Origin]:
    app = web.Application()
    app.router.add_get("/feed/doc.xml", _document)
    app.router.add_get("/secret/doc.xml", _document)
    app.router.add_get("/feed/huge.xml", _streamed_huge)
    app.router.add_get("/feed/declared-huge.xml", _declared_huge)
    app.router.add_get("/feed/plain.txt", _not_xml)
    app.router.add_get("/feed/entities.xml", _entities)
    app.router.add_get("/feed/slow.xml", _slow)
    app.router.add_get("/feed/to-secret", _redirect("http://127.0.0.1:PORT/secret/doc.xml"))
    app.router.add_get("/feed/to-private", _redirect("http://10.0.0.1/doc.xml"))
    app.router.add_get("/feed/to-doc", _redirect("/feed/doc.xml"))
    app.router.add_get("/feed/to-to-doc", _redirect("/feed/to-doc"))
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Origin(port)
    finally:
        await runner.cleanup()


def retrieving_settings(
    settings: config.Settings, origin: Origin, *, opt_in: bool = True
) -> config.Settings:
    policy = config.RetrieveXmlSettings(
        enabled=True,
        allowlist=(
            origin.url("/feed/"),
            origin.url("/feed/", host="localhost"),
            "http://10.0.0.1/",
        ),
        allow_private=(f"127.0.0.1:{origin.port}",) if opt_in else (),
        max_bytes=MAX_BYTES,
        timeout=1.0,
        max_redirects=1,
    )
    return dataclasses.replace(settings, retrieve_xml=policy)


async def logged_in(bridge: Bridge, account: devstack.Account) -> XimssClient:
    assert bridge.tcp is not None
    client = await XimssClient.connect("127.0.0.1", bridge.tcp.port)
    await client.login(account.address, account.password)
    return client


@pytest.fixture(scope="module")
async def client(
    settings: config.Settings, stack: devstack.DevStack, origin: Origin
) -> AsyncIterator[XimssClient]:
    account = stack.new_account("retrieve")
    async with Bridge(retrieving_settings(settings, origin)) as bridge:
        connection = await logged_in(bridge, account)
        yield connection
        await connection.close()


async def retrieve(client: XimssClient, url: str) -> Reply:
    return await client.request("retrieveXML", {"url": url})


def refused(reply: Reply, num: str) -> str:
    assert reply.error_num == num, xml.serialize(reply.response)
    assert not reply.of("retrievedXML")
    return reply.response.get("errorText") or ""


async def test_allowlisted_document_is_returned(client: XimssClient, origin: Origin) -> None:
    url = origin.url("/feed/doc.xml")
    reply = await retrieve(client, url)
    assert reply.ok, xml.serialize(reply.response)
    (retrieved,) = reply.of("retrievedXML")
    assert retrieved.get("url") == url
    assert retrieved.get("id") == reply.response.get("id")
    (document,) = list(retrieved)
    assert xml.serialize(document) == '<feed lang="en"><item n="1">café</item></feed>'.encode()


async def test_redirect_within_the_allowlist_is_followed(
    client: XimssClient, origin: Origin
) -> None:
    reply = await retrieve(client, origin.url("/feed/to-doc"))
    assert reply.ok and reply.of("retrievedXML")[0][0].tag == "feed"


async def test_redirects_beyond_max_redirects_are_refused(
    client: XimssClient, origin: Origin
) -> None:
    assert "redirect" in refused(await retrieve(client, origin.url("/feed/to-to-doc")), "550")


async def test_redirect_out_of_the_allowlist_is_refused(
    client: XimssClient, origin: Origin
) -> None:
    assert "not allowed" in refused(await retrieve(client, origin.url("/feed/to-secret")), "550")


async def test_redirect_to_a_private_address_is_refused(
    client: XimssClient, origin: Origin
) -> None:
    text = refused(await retrieve(client, origin.url("/feed/to-private")), "550")
    assert "private" in text


async def test_private_address_is_refused_before_connecting(client: XimssClient) -> None:
    # Allowlisted, but 10.0.0.1 is private: refused at once, not after a connect timeout.
    started = time.monotonic()
    assert "private" in refused(await retrieve(client, "http://10.0.0.1/doc.xml"), "550")
    assert time.monotonic() - started < 0.5


async def test_loopback_by_name_needs_its_own_opt_in(client: XimssClient, origin: Origin) -> None:
    # localhost:port is allowlisted but only 127.0.0.1:port is in allow_private.
    url = origin.url("/feed/doc.xml", host="localhost")
    assert "private" in refused(await retrieve(client, url), "550")


@pytest.mark.parametrize(
    "path",
    [
        "/secret/doc.xml",
        "/feed/../secret/doc.xml",
        "/feedx/doc.xml",
    ],
)
async def test_urls_outside_the_allowlist_are_refused(
    client: XimssClient, origin: Origin, path: str
) -> None:
    assert refused(await retrieve(client, origin.url(path)), "550" if ".." not in path else "501")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}@example.com/feed/doc.xml",
        "http://example.com/feed/doc.xml",
        "file:///etc/passwd",
        "http://127.0.0.1:{port}.evil.test/feed/doc.xml",
    ],
)
async def test_tricky_urls_are_refused(client: XimssClient, origin: Origin, url: str) -> None:
    reply = await retrieve(client, url.format(port=origin.port))
    assert reply.error_num in ("550", "501") and not reply.of("retrievedXML")


@pytest.mark.parametrize("path", ["/feed/huge.xml", "/feed/declared-huge.xml"])
async def test_oversized_document_is_a_limit(
    client: XimssClient, origin: Origin, path: str
) -> None:
    assert "too large" in refused(await retrieve(client, origin.url(path)), "552")


async def test_non_xml_is_a_bad_request(client: XimssClient, origin: Origin) -> None:
    assert "not XML" in refused(await retrieve(client, origin.url("/feed/plain.txt")), "501")


async def test_entities_are_not_expanded(client: XimssClient, origin: Origin) -> None:
    text = refused(await retrieve(client, origin.url("/feed/entities.xml")), "501")
    assert "root" not in text


async def test_missing_document_is_refused_by_the_remote(
    client: XimssClient, origin: Origin
) -> None:
    assert refused(await retrieve(client, origin.url("/feed/missing.xml")), "554") == (
        "the remote server answered 404"
    )


async def test_slow_origin_times_out(client: XimssClient, origin: Origin) -> None:
    refused(await retrieve(client, origin.url("/feed/slow.xml")), "451")
    # The session lives on.
    assert (await retrieve(client, origin.url("/feed/doc.xml"))).ok


async def test_missing_url_is_a_bad_request(client: XimssClient) -> None:
    refused(await client.request("retrieveXML"), "501")


async def test_loopback_is_refused_without_allow_private(
    settings: config.Settings, stack: devstack.DevStack, origin: Origin
) -> None:
    account = stack.new_account("noprivate")
    async with Bridge(retrieving_settings(settings, origin, opt_in=False)) as bridge:
        connection = await logged_in(bridge, account)
        try:
            text = refused(await retrieve(connection, origin.url("/feed/doc.xml")), "550")
            assert "private" in text
        finally:
            await connection.close()


async def test_default_bridge_has_retrieve_xml_disabled(
    user_client: tuple[XimssClient, devstack.Account], origin: Origin
) -> None:
    connection, _ = user_client
    text = refused(await retrieve(connection, origin.url("/feed/doc.xml")), "550")
    assert "disabled" in text


async def test_retrieve_xml_needs_login(bridge_port: int, origin: Origin) -> None:
    connection = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        refused(await retrieve(connection, origin.url("/feed/doc.xml")), "530")
    finally:
        await connection.close()
