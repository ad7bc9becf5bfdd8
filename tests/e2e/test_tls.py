"""TLS end to end against the real Dovecot: the implicit-TLS port, `starttls` on the plain port,
and refusing clear-text passwords on connections that are not encrypted.

The injection tests are the STARTTLS command-injection class (CVE-2011-0411): requests sent in
clear text behind `starttls`, before the handshake, must never be processed.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge import config
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.rawconn import RawConnection
from tests.e2e.test_transcript import cram_md5
from tests.selfsigned import Certificate, make_certificate

USER, PASSWORD = "user1@example.test", "user1pass"
PLAIN_AUTH = "AHVzZXIxQGV4YW1wbGUudGVzdAB1c2VyMXBhc3M="  # \0user1@example.test\0user1pass
MODERN = ("TLSv1.2", "TLSv1.3")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def with_tls(
    settings: config.Settings,
    certificate: Certificate,
    tcp: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> config.Settings:
    """The session settings plus [tls] and an implicit-TLS port; no HTTP listener."""
    # tls_port 0 means "none", so a free port is picked here rather than by the kernel.
    (tls_port,) = devstack.free_ports(1)
    return dataclasses.replace(
        settings,
        tls=config.TlsSettings(str(certificate.cert_file), str(certificate.key_file)),
        tcp=dataclasses.replace(settings.tcp, tls_port=tls_port, **(tcp or {})),
        http=dataclasses.replace(settings.http, enabled=False),
        limits=dataclasses.replace(settings.limits, **(limits or {})),
    )


@pytest.fixture(scope="module")
async def tls_bridge(settings: config.Settings, certificate: Certificate) -> AsyncIterator[Bridge]:
    strict = with_tls(settings, certificate, {"require_tls_for_clear_text": True})
    async with Bridge(strict) as running:
        yield running


def ports(bridge: Bridge) -> tuple[int, int]:
    assert bridge.tcp is not None and bridge.tcp_tls is not None
    return bridge.tcp.port, bridge.tcp_tls.port


def tls_version(client: XimssClient) -> str | None:
    ssl_object = client._writer.get_extra_info("ssl_object")
    return ssl_object.version() if ssl_object is not None else None


async def features(client: XimssClient) -> tuple[list[str | None], bool]:
    (element,) = (await client.call("listFeatures")).of("features")
    return [item.text for item in element.findall("sasl")], element.find("starttls") is not None


# --------------------------------------------------------------------------- implicit TLS


async def test_implicit_tls_login_and_mailbox_list(
    tls_bridge: Bridge, certificate: Certificate
) -> None:
    _, tls_port = ports(tls_bridge)
    client = await XimssClient.connect("127.0.0.1", tls_port, ssl=certificate.client_context())
    try:
        assert tls_version(client) in MODERN
        sasl, starttls = await features(client)
        assert "PLAIN" in sasl and not starttls  # already encrypted: clear text is fine here
        await client.login(USER, PASSWORD)
        reply = await client.call("mailboxList", {"filter": "INBOX"})
        assert [item.get("mailbox") for item in reply.of("mailbox")] == ["INBOX"]
        refused = await client.request("starttls")
        assert refused.error_num == "503"  # login-section operation after login
    finally:
        await client.close()


def legacy_client(certificate: Certificate, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    context = certificate.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    # OpenSSL's default security level stops a client from offering TLS 1.1 at all; level 0
    # makes it really offer it, so a refusal is the server's.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def test_implicit_tls_refuses_clients_below_tls_1_2(
    tls_bridge: Bridge, certificate: Certificate
) -> None:
    _, tls_port = ports(tls_bridge)
    # The same lenient client capped at TLS 1.2 gets in: the refusal below is about the version.
    modern = legacy_client(certificate, ssl.TLSVersion.TLSv1_2)
    client = await XimssClient.connect("127.0.0.1", tls_port, ssl=modern)
    try:
        assert tls_version(client) == "TLSv1.2"
        assert (await client.call("noop")).ok
    finally:
        await client.close()
    old = legacy_client(certificate, ssl.TLSVersion.TLSv1_1)
    with pytest.raises((ssl.SSLError, ConnectionError)) as refused:
        await XimssClient.connect("127.0.0.1", tls_port, ssl=old)
    # Not a local refusal to even try: the server ended the handshake.
    assert getattr(refused.value, "reason", None) not in (
        "NO_CIPHERS_AVAILABLE",
        "NO_PROTOCOLS_AVAILABLE",
    )


# --------------------------------------------------------------------------- STARTTLS


async def test_starttls_then_login_over_tls(tls_bridge: Bridge, certificate: Certificate) -> None:
    plain_port, _ = ports(tls_bridge)
    client = await XimssClient.connect("127.0.0.1", plain_port)
    try:
        sasl, starttls = await features(client)
        assert starttls
        assert "CRAM-MD5" in sasl and "PLAIN" not in sasl  # require_tls_for_clear_text
        reply = await client.starttls(certificate.client_context())
        assert reply.ok and not reply.data
        assert tls_version(client) in MODERN
        sasl, starttls = await features(client)
        assert "PLAIN" in sasl and not starttls
        again = await client.request("starttls")
        assert again.error_num == "502"
        assert again.response.get("errorText") == "the connection is already encrypted"
        await client.login(USER, PASSWORD)
        reply = await client.call("mailboxList", {"filter": "INBOX"})
        assert [item.get("mailbox") for item in reply.of("mailbox")] == ["INBOX"]
    finally:
        await client.close()


async def test_starttls_refused_on_the_tls_port(
    tls_bridge: Bridge, certificate: Certificate
) -> None:
    _, tls_port = ports(tls_bridge)
    client = await XimssClient.connect("127.0.0.1", tls_port, ssl=certificate.client_context())
    try:
        reply = await client.request("starttls")
        assert reply.error_num == "502"
        assert reply.response.get("errorText") == "the connection is already encrypted"
        assert (await client.call("noop")).ok
    finally:
        await client.close()


async def test_starttls_refused_without_tls_configured(client: XimssClient) -> None:
    # The session bridge has no [tls].
    sasl, starttls = await features(client)
    assert not starttls and "PLAIN" in sasl
    reply = await client.request("starttls")
    assert reply.error_num == "502"
    assert reply.response.get("errorText") == "starttls is not offered on this connection"
    assert (await client.call("noop")).ok


async def test_starttls_refused_when_switched_off(
    settings: config.Settings, certificate: Certificate
) -> None:
    async with Bridge(with_tls(settings, certificate, {"starttls": False})) as running:
        plain_port, tls_port = ports(running)
        client = await XimssClient.connect("127.0.0.1", plain_port)
        try:
            _, starttls = await features(client)
            assert not starttls
            reply = await client.request("starttls")
            assert reply.error_num == "502"
            assert reply.response.get("errorText") == "starttls is not offered on this connection"
        finally:
            await client.close()
        # The implicit-TLS port does not depend on the starttls switch.
        secure = await XimssClient.connect("127.0.0.1", tls_port, ssl=certificate.client_context())
        try:
            await secure.login(USER, PASSWORD)
        finally:
            await secure.close()


async def test_starttls_refused_while_a_login_waits(tls_bridge: Bridge) -> None:
    plain_port, _ = ports(tls_bridge)
    conn = await RawConnection.open(plain_port)
    try:
        await conn.send(b'<login id="A" method="CRAM-MD5"/>\0')
        (challenge,) = await conn.frames(1)
        assert challenge.startswith(b'<challenge id="A"')
        await conn.send(b'<starttls id="B"/>\0')
        assert await conn.frames(1) == [
            b'<response id="B" errorText="a login is waiting for its auth answer" errorNum="501"/>'
        ]
    finally:
        await conn.close()


async def handshake(conn: RawConnection, certificate: Certificate) -> None:
    await conn.writer.start_tls(certificate.client_context(), server_hostname="127.0.0.1")


async def test_requests_pipelined_behind_starttls_are_discarded(
    tls_bridge: Bridge, certificate: Certificate
) -> None:
    plain_port, _ = ports(tls_bridge)
    conn = await RawConnection.open(plain_port)
    try:
        # One write: the bridge has both requests decoded and queued before it answers the first.
        await conn.send(b'<starttls id="1"/>\0<noop id="inj"/>\0')
        assert await conn.frames(1) == [b'<response id="1"/>']
        await handshake(conn, certificate)
        await conn.send(b'<noop id="after"/>\0<bye id="end"/>\0')
        assert await conn.closed_by_peer()
        assert await conn.frames(2) == [b'<response id="after"/>', b'<response id="end"/>']
        with pytest.raises(ConnectionError):  # and nothing else: "inj" was never answered
            await conn.frames(1, timeout=2)
    finally:
        await conn.close()


async def test_clear_text_still_in_the_stream_buffer_is_discarded(
    settings: config.Settings, certificate: Certificate
) -> None:
    # A pipeline depth of 1 stops the bridge's reader after one 64 KiB read, so most of these
    # injected requests are still in the stream's own buffer, unread, when starttls is answered.
    async with Bridge(with_tls(settings, certificate, limits={"pipeline_depth": 1})) as running:
        plain_port, _ = ports(running)
        conn = await RawConnection.open(plain_port)
        try:
            injected = b"".join(b'<noop id="inj%05d"/>\0' % i for i in range(4500))
            assert 64 << 10 < len(injected) < 128 << 10  # all of it leaves the kernel's buffer
            await conn.send(b'<starttls id="1"/>\0' + injected)
            assert await conn.frames(1) == [b'<response id="1"/>']
            await handshake(conn, certificate)
            await conn.send(b'<noop id="after"/>\0<bye id="end"/>\0')
            assert await conn.closed_by_peer()
            assert await conn.frames(2) == [b'<response id="after"/>', b'<response id="end"/>']
            with pytest.raises(ConnectionError):
                await conn.frames(1, timeout=2)
        finally:
            await conn.close()


async def test_failed_handshake_closes_the_connection(tls_bridge: Bridge) -> None:
    plain_port, _ = ports(tls_bridge)
    assert tls_bridge.tcp is not None
    conn = await RawConnection.open(plain_port)
    try:
        await conn.send(b'<starttls id="1"/>\0')
        assert await conn.frames(1) == [b'<response id="1"/>']
        await conn.send(b'<noop id="clear"/>\0')  # clear text where a ClientHello belongs
        assert await conn.closed_by_peer()
        with pytest.raises(ConnectionError):
            await conn.frames(1, timeout=2)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- clear text


async def test_clear_text_login_needs_tls(tls_bridge: Bridge) -> None:
    plain_port, _ = ports(tls_bridge)
    client = await XimssClient.connect("127.0.0.1", plain_port)
    try:
        for attrs in (
            {"authData": USER, "password": PASSWORD},
            {"method": "PLAIN", "authData": PLAIN_AUTH},
            {"method": "PLAIN"},  # no initial response: refused before any challenge
        ):
            reply = await client.request("login", attrs)
            assert reply.error_num == "550", attrs
            assert reply.response.get("errorText") == "clear-text login requires TLS"
            assert not reply.data
    finally:
        await client.close()


async def test_cram_md5_stays_allowed_without_tls(tls_bridge: Bridge) -> None:
    plain_port, _ = ports(tls_bridge)
    conn = await RawConnection.open(plain_port)
    try:
        await conn.send(b'<login id="A" method="CRAM-MD5"/>\0')
        (challenge,) = await conn.frames(1)
        match = re.fullmatch(rb'<challenge id="A" value="([A-Za-z0-9+/=]+)"/>', challenge)
        assert match is not None, challenge
        answer = cram_md5(USER, PASSWORD, match.group(1).decode())
        await conn.send(f'<auth id="A" value="{answer}"/>\0'.encode())
        session, response = await conn.frames(2)
        assert session.startswith(b'<session id="A"') and response == b'<response id="A"/>'
    finally:
        await conn.close()


async def test_https_listener_and_clear_text_refusal_over_http(
    settings: config.Settings, certificate: Certificate
) -> None:
    import aiohttp

    secure = dataclasses.replace(
        settings,
        tls=config.TlsSettings(str(certificate.cert_file), str(certificate.key_file)),
        http=dataclasses.replace(settings.http, tls=True),
    )
    plain_strict = dataclasses.replace(
        settings, http=dataclasses.replace(settings.http, require_tls_for_clear_text=True)
    )
    context = ssl.create_default_context(cafile=str(certificate.cert_file))
    login = f"/XIMSSLogin/?userName={USER}&password={PASSWORD}&errorAsXML=1"
    async with Bridge(secure) as running, aiohttp.ClientSession() as http:
        assert running.http is not None
        async with http.get(f"https://127.0.0.1:{running.http.port}{login}", ssl=context) as reply:
            body = await reply.text()
        assert body.startswith('<XIMSS><session urlID="'), body
    async with Bridge(plain_strict) as running, aiohttp.ClientSession() as http:
        assert running.http is not None
        async with http.get(f"http://127.0.0.1:{running.http.port}{login}") as reply:
            body = await reply.text()
        assert (
            body
            == '<XIMSS><response errorText="clear-text login requires TLS" errorNum="550"/></XIMSS>'
        )
