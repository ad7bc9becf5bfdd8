"""The XIMSS HTTP binding end to end on the dev stack, driven with curl as clients do."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp

from bridge.app import Bridge
from tests.e2e.httpcheck import curl, url_id

USER, PASSWORD = "user1@example.test", "user1pass"
SESSION_ELEMENT = re.compile(
    r'^<XIMSS><session urlID="\d{6}-[A-Za-z0-9]+" userName="user1@example.test" '
    r'realName="User One"/></XIMSS>$'
)


async def login(http_url: str) -> str:
    result = await curl(f"{http_url}/XIMSSLogin/?userName={USER}&password={PASSWORD}")
    assert result.status == 200
    return url_id(result.body)


async def test_login_by_get_form_post_and_basic(http_url: str) -> None:
    by_get = await curl(f"{http_url}/XIMSSLogin/?userName={USER}&password={PASSWORD}")
    by_form = await curl("-d", f"UserName={USER}&PassWord={PASSWORD}&version=5.1&x2auth=1",
                         f"{http_url}/ximsslogin/")  # fmt: skip
    by_basic = await curl("-u", f"{USER}:{PASSWORD}", f"{http_url}/XIMSSLogin")
    for result in (by_get, by_form, by_basic):
        assert result.status == 200
        assert SESSION_ELEMENT.match(result.body), result.body
    assert len({url_id(r.body) for r in (by_get, by_form, by_basic)}) == 3


async def test_login_failures(http_url: str) -> None:
    plain = await curl(f"{http_url}/XIMSSLogin/?userName={USER}&password=wrong")
    assert plain.status == 401
    as_xml = await curl(f"{http_url}/XIMSSLogin/?username={USER}&password=wrong&errorAsXML=1")
    assert as_xml.status == 200
    assert as_xml.body == (
        '<XIMSS><response errorText="incorrect password or account name" errorNum="535"/></XIMSS>'
    )
    missing = await curl(f"{http_url}/XIMSSLogin/?errorAsXML=yes")
    assert 'errorNum="501"' in missing.body


async def test_sessionid_revalidates_a_live_session(http_url: str) -> None:
    session = await login(http_url)
    again = await curl(f"{http_url}/XIMSSLogin/?sessionid={session}")
    assert again.status == 200 and url_id(again.body) == session
    gone = await curl(f"{http_url}/XIMSSLogin/?sessionid=123456-nosuchsession&errorAsXML=1")
    assert 'errorNum="535"' in gone.body


async def test_sync_batch_of_three_in_order(http_url: str) -> None:
    session = await login(http_url)
    body = '<XIMSS><noop id="1"/><mailboxList id="2" filter="INBOX"/><readTime id="3"/></XIMSS>'
    for content_type in ("text/xml", "application/x-www-form-urlencoded", "text/plain"):
        result = await curl("-H", f"Content-Type: {content_type}", "--data-binary", body,
                            f"{http_url}/Session/{session}/sync")  # fmt: skip
        assert result.status == 200
        assert re.fullmatch(
            r'<XIMSS><response id="1"/><mailbox id="2" mailbox="INBOX" [^>]*/><response id="2"/>'
            r'<currentTime id="3" gmtTime="\d{8}T\d{6}" localTime="\d{8}T\d{6}"/>'
            r'<response id="3"/></XIMSS>',
            result.body,
        ), result.body
    # GET with a body works too.
    result = await curl("-X", "GET", "--data-binary", '<XIMSS><noop id="g"/></XIMSS>',
                        f"{http_url}/Session/{session}/sync")  # fmt: skip
    assert result.body == '<XIMSS><response id="g"/></XIMSS>'


async def test_long_poll_times_out_with_empty_ximss(http_url: str) -> None:
    session = await login(http_url)
    started = time.monotonic()
    result = await curl(f"{http_url}/Session/{session}/get?maxWait=2")
    elapsed = time.monotonic() - started
    assert result.status == 200 and result.body == "<XIMSS/>"
    assert 1.5 <= elapsed < 4, elapsed


async def test_after_bye_every_session_url_answers_550(http_url: str) -> None:
    session = await login(http_url)
    result = await curl("--data-binary", '<XIMSS><noop id="1"/><bye id="2"/></XIMSS>',
                        f"{http_url}/Session/{session}/sync")  # fmt: skip
    assert result.body == '<XIMSS><response id="1"/><response id="2"/></XIMSS>'
    base = f"{http_url}/Session/{session}"
    for url in (f"{base}/sync", f"{base}/async", f"{base}/", f"{base}/get?maxWait=1",
                f"{base}/KILL", f"{base}/UPLOAD/a1", f"{base}/MIME/INBOX/1-P.txt"):  # fmt: skip
        gone = await curl("-X", "POST", "--data-binary", "<XIMSS/>", url)
        assert gone.status == 550, url
        gone = await curl(url)
        assert gone.status == 550, url


async def test_kill_ends_the_session_and_its_imap_connection(bridge: Bridge, http_url: str) -> None:
    session_id = await login(http_url)
    session = bridge.services.sessions.get(session_id)
    assert session is not None
    result = await curl(f"{http_url}/Session/{session_id}/KILL")
    assert result.status == 200
    assert session.closed and bridge.services.sessions.get(session_id) is None
    assert (await curl(f"{http_url}/Session/{session_id}/sync")).status == 550


async def test_async_replies_come_by_poll_with_ack_and_resend(http_url: str) -> None:
    session = await login(http_url)
    base = f"{http_url}/Session/{session}"
    async with aiohttp.ClientSession() as http:

        async def poll(query: str) -> str:
            async with http.get(f"{base}/get?{query}") as response:
                assert response.status == 200
                return await response.text()

        async def post_async(body: str) -> None:
            async with http.post(f"{base}/async", data=body) as response:
                assert response.status == 200

        # Produced while no poll waits: the next poll delivers it.
        await post_async('<XIMSS><noop id="a1"/></XIMSS>')
        await asyncio.sleep(0.2)
        first = await poll("maxWait=2&ackSeq=0")
        assert first == '<XIMSS respSeq="1"><response id="a1"/></XIMSS>'
        # Not acknowledged: polling with the previous ackSeq re-sends the same reply.
        assert await poll("maxWait=2&ackSeq=0") == first
        # A waiting poll is woken by new data.
        waiting = asyncio.create_task(poll("maxWait=5&ackSeq=1"))
        await asyncio.sleep(0.2)
        await post_async('<XIMSS><readTime id="a2"/></XIMSS>')
        second = await asyncio.wait_for(waiting, 5)
        assert second.startswith('<XIMSS respSeq="2"><currentTime id="a2"')
        await post_async('<XIMSS><noop id="a3"/></XIMSS>')
        third = await poll("maxWait=2&ackSeq=2")
        assert third == '<XIMSS respSeq="3"><response id="a3"/></XIMSS>'
        assert await poll("maxWait=1&ackSeq=3") == "<XIMSS/>"


async def test_unsolicited_alert_goes_to_the_poll(bridge: Bridge, http_url: str) -> None:
    session_id = await login(http_url)
    session = bridge.services.sessions.get(session_id)
    assert session is not None
    binding = bridge.http.state.get(session_id) if bridge.http else None
    assert binding is not None
    binding.conversation.alert("Please log out, we are shutting down")
    result = await curl(f"{http_url}/Session/{session_id}/get?maxWait=2&ackSeq=0")
    assert result.body == (
        '<XIMSS respSeq="1"><alert>Please log out, we are shutting down</alert></XIMSS>'
    )


async def test_xml_prelogin_requests_and_cram_md5_nonce(http_url: str) -> None:
    import base64
    import hashlib
    import hmac

    body = '<XIMSS><listFeatures id="f"/><signup id="s" userName="x" password="y"/></XIMSS>'
    result = await curl("--data-binary", body, f"{http_url}/XIMSSLogin/")
    assert result.status == 200
    assert "<sasl>CRAM-MD5</sasl>" in result.body
    # The dev stack's domain allows signup: the first run creates "x", later ones get 513.
    assert "<signup/>" in result.body
    assert re.search(r'<response id="s"( errorText="[^"]*" errorNum="513")?/>', result.body)
    nonce = re.search(r"<nonce>([^<]+)</nonce>", result.body)
    assert nonce is not None
    challenge = nonce.group(1).replace("&lt;", "<").replace("&gt;", ">")
    digest = hmac.new(PASSWORD.encode(), challenge.encode(), hashlib.md5).hexdigest()
    auth = base64.b64encode(f"{USER} {digest}".encode()).decode()
    async with aiohttp.ClientSession() as http:
        params = {"nonce": challenge, "authData": auth}
        async with http.get(f"{http_url}/XIMSSLogin/", params=params) as response:
            text = await response.text()
    assert SESSION_ELEMENT.match(text), text
    # A nonce is good once.
    async with aiohttp.ClientSession() as http:
        params = {"nonce": challenge, "authData": auth, "errorAsXML": "1"}
        async with http.get(f"{http_url}/XIMSSLogin/", params=params) as response:
            assert 'errorNum="535"' in await response.text()


async def test_xml_body_login(http_url: str) -> None:
    body = f'<XIMSS><login id="L1" authData="{USER}" password="{PASSWORD}"/></XIMSS>'
    result = await curl("--data-binary", body, f"{http_url}/XIMSSLogin/")
    assert result.body.startswith('<XIMSS><session id="L1" urlID="')
    assert result.body.endswith('<response id="L1"/></XIMSS>')
    session = url_id(result.body)
    noop = await curl(
        "--data-binary", '<XIMSS><noop id="n"/></XIMSS>', f"{http_url}/Session/{session}/sync"
    )
    assert noop.body == '<XIMSS><response id="n"/></XIMSS>'


async def test_serialization_rules(http_url: str) -> None:
    session = await login(http_url)
    result = await curl("--data-binary", '<XIMSS><bogus id="x"/><mailboxList id="y"/></XIMSS>',
                        f"{http_url}/Session/{session}/sync")  # fmt: skip
    assert not result.body.startswith("<?xml")
    assert "> <" not in result.body and ">\n<" not in result.body
    assert '<response id="x" errorText="unknown command" errorNum="500"/>' in result.body


async def test_idle_timeout_session_option_ends_an_http_session_sooner(http_url: str) -> None:
    session = await login(http_url)
    body = '<XIMSS><setSessionOption id="1" name="idleTimeout" value="1"/></XIMSS>'
    result = await curl("--data-binary", body, f"{http_url}/Session/{session}/sync")
    assert result.body == '<XIMSS><response id="1"/></XIMSS>'
    # Every request counts as activity: look only once the second has passed (plus a sweep).
    await asyncio.sleep(2.5)
    probe = await curl(f"{http_url}/Session/{session}/get?maxWait=0")
    assert probe.status == 550
