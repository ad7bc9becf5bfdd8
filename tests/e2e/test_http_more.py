"""HTTP binding: uploads, WebSocket, CORS, health and metrics, and hostile input."""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import shutil
import tempfile
from pathlib import Path

import aiohttp

from bridge import config
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.httpcheck import curl, url_id

USER, PASSWORD = "user1@example.test", "user1pass"


async def login(http_url: str) -> str:
    return url_id((await curl(f"{http_url}/XIMSSLogin/?userName={USER}&password={PASSWORD}")).body)


async def test_uploads_and_clear_uploaded(bridge: Bridge, http_url: str, tmp_path: Path) -> None:
    session_id = await login(http_url)
    session = bridge.services.sessions.get(session_id)
    assert session is not None
    attachment = tmp_path / "report.pdf"
    attachment.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 100)
    result = await curl("-F", f"fileData=@{attachment};type=application/pdf",
                        f"{http_url}/Session/{session_id}/UPLOAD/att1")  # fmt: skip
    assert result.status == 200
    upload = session.uploads.get("att1")
    assert upload is not None
    assert upload.file_name == "report.pdf" and upload.content_type == "application/pdf"
    assert upload.path.read_bytes() == attachment.read_bytes()
    await curl("-F", f"fileData=@{attachment}", f"{http_url}/Session/{session_id}/UPLOAD/att2")
    assert len(session.uploads) == 2
    batch = '<XIMSS><clearUploaded id="1" uploadID="att1"/><clearUploaded id="2" uploadID="nope"/></XIMSS>'
    reply = await curl("--data-binary", batch, f"{http_url}/Session/{session_id}/sync")
    assert reply.body == (
        '<XIMSS><response id="1"/><response id="2" errorText="unknown uploadID" errorNum="512"/></XIMSS>'
    )
    assert not upload.path.exists() and len(session.uploads) == 1
    reply = await curl("--data-binary", '<XIMSS><clearUploaded id="3"/></XIMSS>',
                       f"{http_url}/Session/{session_id}/sync")  # fmt: skip
    assert len(session.uploads) == 0


async def test_upload_limits(settings: config.Settings, tmp_path: Path) -> None:
    http = dataclasses.replace(
        settings.http, max_upload_bytes=10_000, max_uploads_total_bytes=15_000
    )
    async with Bridge(dataclasses.replace(settings, http=http)) as running:
        assert running.http is not None
        base = f"http://127.0.0.1:{running.http.port}"
        session_id = await login(base)
        small, big = tmp_path / "small.bin", tmp_path / "big.bin"
        small.write_bytes(b"x" * 8_000)
        big.write_bytes(b"x" * 20_000)
        ok = await curl("-F", f"fileData=@{small}", f"{base}/Session/{session_id}/UPLOAD/a")
        assert ok.status == 200
        too_big = await curl("-F", f"fileData=@{big}", f"{base}/Session/{session_id}/UPLOAD/b")
        assert too_big.status == 413
        over_total = await curl("-F", f"fileData=@{small}", f"{base}/Session/{session_id}/UPLOAD/c")
        assert over_total.status == 413
        replace_same = await curl(
            "-F", f"fileData=@{small}", f"{base}/Session/{session_id}/UPLOAD/a"
        )
        assert replace_same.status == 200
        no_part = await curl("-F", f"other=@{small}", f"{base}/Session/{session_id}/UPLOAD/d")
        assert no_part.status == 400


async def test_uploads_work_for_a_tcp_session(bridge: Bridge, client: XimssClient, http_url: str,
                                              tmp_path: Path) -> None:  # fmt: skip
    session_element = await client.login(USER, PASSWORD)
    session_id = session_element.get("urlID", "")
    data = tmp_path / "note.txt"
    data.write_text("hello")
    result = await curl("-F", f"fileData=@{data}", f"{http_url}/Session/{session_id}/UPLOAD/n1")
    assert result.status == 200
    session = bridge.services.sessions.get(session_id)
    assert session is not None and session.uploads.get("n1") is not None
    await client.call("clearUploaded", {"uploadID": "n1"})
    assert session.uploads.get("n1") is None


async def test_websocket_binding(http_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{http_url}/ximss") as ws:
        await ws.send_str(f'<login id="A1" authData="{USER}" password="{PASSWORD}"/>')
        session = await ws.receive_str()
        assert session.startswith('<session id="A1" urlID="')
        assert await ws.receive_str() == '<response id="A1"/>'
        await ws.send_str('<noop id="A2"/>')
        await ws.send_str('<mailboxList id="A3" filter="INBOX"/>')
        assert await ws.receive_str() == '<response id="A2"/>'
        assert (await ws.receive_str()).startswith('<mailbox id="A3" mailbox="INBOX"')
        assert await ws.receive_str() == '<response id="A3"/>'
        await ws.send_str("<not xml")
        assert await ws.receive_str() == '<response errorText="malformed XML" errorNum="501"/>'
        await ws.send_str('<bye id="A4"/>')
        assert await ws.receive_str() == '<response id="A4"/>'
        closing = await ws.receive()
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_cors(settings: config.Settings) -> None:
    http = dataclasses.replace(settings.http, cors_origins=("https://mail.example.test",))
    async with (
        Bridge(dataclasses.replace(settings, http=http)) as running,
        aiohttp.ClientSession() as client,
    ):
        assert running.http is not None
        base = f"http://127.0.0.1:{running.http.port}"
        headers = {"Origin": "https://mail.example.test", "Access-Control-Request-Method": "POST"}
        async with client.options(f"{base}/XIMSSLogin/", headers=headers) as preflight:
            assert preflight.status == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == "https://mail.example.test"
        async with client.get(f"{base}/healthz", headers={"Origin": "https://evil.test"}) as other:
            assert "Access-Control-Allow-Origin" not in other.headers


async def test_metrics_move_after_a_scripted_session(http_url: str) -> None:
    async def sample(name: str) -> float:
        result = await curl(f"{http_url}/metrics")
        return sum(float(line.rsplit(" ", 1)[1]) for line in result.body.splitlines()
                   if line.startswith(name))  # fmt: skip

    requests_before = await sample(
        'ximss_bridge_requests_total{operation="mailboxList",outcome="ok",transport="http"}'
    )
    logins_before = await sample('ximss_bridge_logins_total{outcome="ok",transport="http"}')
    imap_before = await sample('ximss_bridge_backend_commands_total{backend="imap",command="LIST"')
    session_id = await login(http_url)
    await curl("--data-binary", '<XIMSS><mailboxList id="1"/><mailboxList id="2"/></XIMSS>',
               f"{http_url}/Session/{session_id}/sync")  # fmt: skip
    assert (
        await sample(
            'ximss_bridge_requests_total{operation="mailboxList",outcome="ok",transport="http"}'
        )
        == requests_before + 2
    )
    assert (
        await sample('ximss_bridge_logins_total{outcome="ok",transport="http"}')
        == logins_before + 1
    )
    assert (
        await sample('ximss_bridge_backend_commands_total{backend="imap",command="LIST"')
        >= imap_before + 2
    )
    text = (await curl(f"{http_url}/metrics")).body
    assert 'ximss_bridge_sessions{transport="http"}' in text
    assert "ximss_bridge_request_seconds_bucket" in text


async def test_healthz_and_readyz_follow_dovecot(settings: config.Settings) -> None:
    root = Path(tempfile.mkdtemp(prefix="xb-ready-"))
    root.chmod(0o755)
    try:
        stack = devstack.DevStack(root, devstack.free_stack_ports())
        stack.start()
        try:
            own = config.loads(stack.bridge_config_toml(0, http_port=0))
            async with Bridge(own) as running:
                assert running.http is not None
                base = f"http://127.0.0.1:{running.http.port}"
                assert (await curl(f"{base}/healthz")).status == 200
                assert (await curl(f"{base}/readyz")).status == 200
                await asyncio.to_thread(stack.dovecot.stop)
                assert (await curl(f"{base}/readyz")).status == 503
                assert (await curl(f"{base}/healthz")).status == 200
                await asyncio.to_thread(stack.dovecot.start)
                assert (await curl(f"{base}/readyz")).status == 200
        finally:
            stack.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def rss_max_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_oversized_body_is_refused(http_url: str) -> None:
    session_id = await login(http_url)
    before = rss_max_mb()
    async with aiohttp.ClientSession() as http:
        body = b"<XIMSS>" + b"<noop id='x'/>" * 200_000 + b"</XIMSS>"  # ~3 MB, limit 1 MB
        async with http.post(f"{http_url}/Session/{session_id}/sync", data=body) as response:
            assert response.status == 413

        async def endless() -> object:
            chunk = b"a" * 65536
            for _ in range(50 * 16):  # 50 MB, chunked: no Content-Length to refuse up front
                yield chunk

        try:
            async with http.post(
                f"{http_url}/Session/{session_id}/sync", data=endless()
            ) as response:
                assert response.status == 413
        except aiohttp.ClientError:
            pass  # the bridge may close the connection before our upload finishes
    assert rss_max_mb() - before < 40


async def test_slow_body_times_out(settings: config.Settings) -> None:
    http = dataclasses.replace(settings.http, read_timeout=1.0)
    async with Bridge(dataclasses.replace(settings, http=http)) as running:
        assert running.http is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", running.http.port)
        writer.write(
            b"POST /XIMSSLogin/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<XIMSS>"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.read(200), 5)
        assert head.startswith(b"HTTP/1.1 408"), head
        writer.close()


async def test_a_thousand_bogus_session_ids(http_url: str) -> None:
    before = rss_max_mb()
    async with aiohttp.ClientSession() as http:

        async def one(i: int) -> int:
            async with http.post(f"{http_url}/Session/{100000 + i}-bogus{i}/sync",
                                 data="<XIMSS><noop id='1'/></XIMSS>") as response:  # fmt: skip
                return response.status

        statuses = []
        for start in range(0, 1000, 100):
            statuses += await asyncio.gather(*(one(i) for i in range(start, start + 100)))
    assert statuses == [550] * 1000
    assert rss_max_mb() - before < 40
    assert (await curl(f"{http_url}/healthz")).status == 200


async def test_malformed_xml_in_a_batch_answers_what_came_before(http_url: str) -> None:
    session_id = await login(http_url)
    body = '<XIMSS><noop id="1"/><readTime id="2"/><broken <noop id="3"/></XIMSS>'
    result = await curl("--data-binary", body, f"{http_url}/Session/{session_id}/sync")
    assert result.status == 200
    assert result.body.startswith('<XIMSS><response id="1"/><currentTime id="2"')
    assert result.body.endswith(
        '<response id="2"/><response errorText="malformed XML" errorNum="501"/></XIMSS>'
    )
    doctype = '<!DOCTYPE x [<!ENTITY a "b">]><XIMSS><noop id="1"/></XIMSS>'
    result = await curl("--data-binary", doctype, f"{http_url}/Session/{session_id}/sync")
    assert (
        result.body == '<XIMSS><response errorText="DTDs are not allowed" errorNum="501"/></XIMSS>'
    )
    # The session is still fine.
    result = await curl(
        "--data-binary", '<XIMSS><noop id="4"/></XIMSS>', f"{http_url}/Session/{session_id}/sync"
    )
    assert result.body == '<XIMSS><response id="4"/></XIMSS>'


async def test_sessions_per_user_limit_and_kill_old(
    settings: config.Settings, stack: devstack.DevStack
) -> None:
    account = stack.new_account("limited")
    limited = dataclasses.replace(
        settings, sessions=dataclasses.replace(settings.sessions, max_per_user=2)
    )
    async with Bridge(limited) as running:
        assert running.http is not None
        base = f"http://127.0.0.1:{running.http.port}"
        login_url = f"{base}/XIMSSLogin/?userName={account.address}&password={account.password}&errorAsXML=1"
        first = url_id((await curl(login_url)).body)
        second = url_id((await curl(login_url)).body)
        refused = await curl(login_url)
        assert 'errorText="too many sessions for this account" errorNum="552"' in refused.body
        fresh = url_id((await curl(login_url + "&killOld=1")).body)
        assert (await curl(f"{base}/Session/{first}/get")).status == 550
        assert (await curl(f"{base}/Session/{second}/get")).status == 550
        assert (await curl(f"{base}/Session/{fresh}/get")).status == 200


async def test_idle_http_sessions_expire(settings: config.Settings) -> None:
    http = dataclasses.replace(settings.http, session_idle_timeout=0.5)
    async with Bridge(dataclasses.replace(settings, http=http)) as running:
        assert running.http is not None
        base = f"http://127.0.0.1:{running.http.port}"
        session_id = await login(base)
        session = running.services.sessions.get(session_id)
        assert session is not None
        await asyncio.sleep(1.5)
        assert session.closed
        assert (await curl(f"{base}/Session/{session_id}/sync")).status == 550
