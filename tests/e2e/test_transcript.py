"""The XIMSS text's opening transcripts, byte for byte apart from the urlID, on the TCP listener."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from bridge.client import XimssClient
from tests.e2e.rawconn import RawConnection

URL_ID = re.compile(rb'urlID="(\d{6}-[A-Za-z0-9]+)"')


async def test_login_noop_unknown_command_transcript(bridge_port: int) -> None:
    conn = await RawConnection.open(bridge_port)
    try:
        await conn.send(b'<login id="A001" authData="user1@example.test" password="user1pass" />\0')
        session, response = await conn.frames(2)
        match = URL_ID.search(session)
        assert match is not None
        url_id = match.group(1)
        assert session == (
            b'<session id="A001" urlID="' + url_id + b'" userName="user1@example.test"'
            b' realName="User One"/>'
        )
        assert response == b'<response id="A001"/>'

        await conn.send(b'<noop id="A001"/>\0')
        assert await conn.frames(1) == [b'<response id="A001"/>']

        await conn.send(b'<myCommand id="A002" myParam="user1@example.dom" />\0')
        assert await conn.frames(1) == [
            b'<response id="A002" errorText="unknown command" errorNum="500"/>'
        ]
    finally:
        await conn.close()


async def test_url_ids_are_unguessable_and_single_dash(bridge_port: int) -> None:
    seen = set()
    for _ in range(3):
        client = await XimssClient.connect("127.0.0.1", bridge_port)
        try:
            session = await client.login("user1@example.test", "user1pass")
        finally:
            await client.close()
        url_id = session.get("urlID")
        assert url_id is not None
        assert url_id.count("-") == 1
        head, tail = url_id.split("-")
        assert head.isdigit() and len(head) == 6
        assert tail.isalnum() and len(tail) >= 21  # 62**21 > 2**125
        seen.add(url_id)
    assert len(seen) == 3


def cram_md5(user: str, password: str, challenge_b64: str) -> str:
    challenge = base64.b64decode(challenge_b64)
    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    return base64.b64encode(f"{user} {digest}".encode()).decode()


async def test_cram_md5_login_per_spec_example(bridge_port: int) -> None:
    conn = await RawConnection.open(bridge_port)
    try:
        await conn.send(b'<login id="A001" method="CRAM-MD5" />\0')
        (challenge,) = await conn.frames(1)
        match = re.fullmatch(rb'<challenge id="A001" value="([A-Za-z0-9+/=]+)"/>', challenge)
        assert match is not None, challenge
        # RFC 2195: the challenge is a msg-id style string the server made up.
        assert base64.b64decode(match.group(1)).startswith(b"<")
        answer = cram_md5("user1@example.test", "user1pass", match.group(1).decode())
        await conn.send(f'<auth id="A001" value="{answer}" />\0'.encode())
        session, response = await conn.frames(2)
        assert session.startswith(b'<session id="A001" urlID="')
        assert b'userName="user1@example.test" realName="User One"' in session
        assert response == b'<response id="A001"/>'
        await conn.send(b'<noop id="A002"/>\0')
        assert await conn.frames(1) == [b'<response id="A002"/>']
    finally:
        await conn.close()


async def test_cram_md5_wrong_password_leaves_connection_usable(bridge_port: int) -> None:
    conn = await RawConnection.open(bridge_port)
    try:
        await conn.send(b'<login id="A001" method="CRAM-MD5"/>\0')
        (challenge,) = await conn.frames(1)
        value = re.search(rb'value="([^"]+)"', challenge)
        assert value is not None
        answer = cram_md5("user1@example.test", "wrong", value.group(1).decode())
        await conn.send(f'<auth id="A001" value="{answer}"/>\0'.encode())
        (failure,) = await conn.frames(1)
        assert failure == (
            b'<response id="A001" errorText="incorrect password or account name" errorNum="535"/>'
        )
        # Still usable: an operation that needs no login, then a good login.
        await conn.send(b'<noop id="A002"/>\0')
        assert await conn.frames(1) == [b'<response id="A002"/>']
        await conn.send(b'<login id="A003" authData="user1@example.test" password="user1pass"/>\0')
        session, response = await conn.frames(2)
        assert session.startswith(b'<session id="A003"')
        assert response == b'<response id="A003"/>'
    finally:
        await conn.close()


async def test_clear_text_wrong_password_then_success(client: XimssClient) -> None:
    reply = await client.request("login", {"authData": "user1@example.test", "password": "bad"})
    assert reply.error_num == "535"
    assert reply.response.get("errorText")
    await client.login("user1@example.test", "user1pass")


async def test_sasl_plain_login(client: XimssClient) -> None:
    data = base64.b64encode(b"\0user1@example.test\0user1pass").decode()
    reply = await client.call("login", {"method": "PLAIN", "authData": data})
    assert reply.of("session")[0].get("userName") == "user1@example.test"


async def test_operations_before_login_are_refused(client: XimssClient) -> None:
    reply = await client.request("mailboxList")
    assert reply.error_num == "530"
    assert reply.response.get("errorText") == "login required"
    features = await client.call("listFeatures")
    (element,) = features.of("features")
    sasl = [item.text for item in element.findall("sasl")]
    assert "CRAM-MD5" in sasl and "PLAIN" in sasl
    assert element.findtext("domain") == "example.test"
    # The dev stack's domain offers signup (a passwd-file provisioner): listFeatures says so.
    assert element.find("signup") is not None


async def test_read_time_and_known_values(client: XimssClient) -> None:
    reply = await client.call("readTime")
    (current,) = reply.of("currentTime")
    assert re.fullmatch(r"\d{8}T\d{6}", current.get("gmtTime") or "")
    assert re.fullmatch(r"\d{8}T\d{6}", current.get("localTime") or "")
    known = (await client.call("listKnownValues")).of("knownValues")[0]
    zones = {item.get("name") for item in known.findall("tzid")}
    assert "Europe/Berlin" in zones and "America/New_York" in zones
    assert "utf-8" in {item.get("name") for item in known.findall("charset")}


async def test_bye_closes_the_connection(client: XimssClient) -> None:
    await client.login("user1@example.test", "user1pass")
    reply = await client.call("bye")
    assert reply.ok
    await client.closed.wait()
