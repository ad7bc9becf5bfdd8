"""Connection lifecycle: idle limits, backend reconnects, slow clients, the CLI commands."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from adapters.imap.client import ImapClient
from adapters.imap.store import ImapMailStore
from bridge import config
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import REPO
from tests.e2e.rawconn import RawConnection


async def test_idle_connections_are_closed(settings: config.Settings) -> None:
    limits = dataclasses.replace(settings.limits, idle_timeout=0.5, login_timeout=0.5)
    quick = dataclasses.replace(settings, limits=limits)
    async with Bridge(quick) as running:
        assert running.tcp is not None
        before_login = await RawConnection.open(running.tcp.port)
        client = await XimssClient.connect("127.0.0.1", running.tcp.port)
        await client.login("user1@example.test", "user1pass")
        try:
            assert await before_login.closed_by_peer(timeout=5)
            async with asyncio.timeout(5):
                await client.closed.wait()
            assert len(running.services.sessions) == 0
        finally:
            await before_login.close()
            await client.close()


async def _session_imap(bridge: Bridge, client: XimssClient) -> ImapClient:
    """Log in, then reach behind the bridge to the session's own IMAP connection."""
    session_element = await client.login("user1@example.test", "user1pass")
    session = bridge.services.sessions.get(session_element.get("urlID", ""))
    assert session is not None and isinstance(session.mail, ImapMailStore)
    return await session.mail.client()


async def test_session_survives_an_imap_connection_drop(
    bridge: Bridge, client: XimssClient
) -> None:
    imap = await _session_imap(bridge, client)
    imap._writer.transport.abort()  # the server side going away, as on a Dovecot restart
    await asyncio.sleep(0.05)
    assert imap.closed
    reply = await client.call("mailboxList", {"filter": "INBOX"})
    assert [item.get("mailbox") for item in reply.of("mailbox")] == ["INBOX"]
    assert client.session is not None
    session = bridge.services.sessions.get(client.session.get("urlID", ""))
    assert session is not None and isinstance(session.mail, ImapMailStore)
    assert (await session.mail.client()) is not imap


async def test_client_that_never_reads_is_disconnected(settings: config.Settings) -> None:
    limits = dataclasses.replace(
        settings.limits, output_buffer_bytes=200_000, slow_client_timeout=1.0
    )
    small = dataclasses.replace(settings, limits=limits)
    async with Bridge(small) as running:
        assert running.tcp is not None
        conn = await RawConnection.open(running.tcp.port)
        try:
            # Many requests whose replies are never read: the kernel buffers fill, then the
            # bounded queue, then the bridge gives up on this client.
            big = b"".join(b'<listKnownValues id="%d"/>\0' % i for i in range(400))
            with_login = b'<login id="L" authData="user1@example.test" password="user1pass"/>\0'
            await conn.send(with_login + big)
            async with asyncio.timeout(20):
                while running.tcp.connection_count:
                    await asyncio.sleep(0.1)
            assert len(running.services.sessions) == 0
        finally:
            await conn.close()


async def _run_cli(*args: str, stdin: bytes = b"") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=REPO, env={**os.environ},
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(stdin), 30)
    return process.returncode or 0, output.decode()


async def test_check_config(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[domains."example.test".imap]\nport = 10143\n')
    code, output = await _run_cli("--config", str(good), "check-config", "--no-probe")
    assert code == 0 and "example.test: IMAP 127.0.0.1:10143" in output
    bad = tmp_path / "bad.toml"
    bad.write_text('[limits]\nidle_timeout = "soon"\n')
    code, output = await _run_cli("--config", str(bad), "check-config")
    assert code == 2 and "limits.idle_timeout: expected a number" in output


async def test_shell_sends_lines_and_prints_replies(bridge_port: int) -> None:
    lines = (
        b'<login id="A1" authData="user1@example.test" password="user1pass"/>\n<noop id="A2"/>\n'
    )
    code, output = await _run_cli("shell", "--port", str(bridge_port), stdin=lines)
    assert code == 0
    assert 'S: <response id="A1"/>' in output
    assert 'S: <response id="A2"/>' in output


async def test_imap_alert_reaches_the_client_unsolicited(
    bridge: Bridge, client: XimssClient
) -> None:
    imap = await _session_imap(bridge, client)
    # What Dovecot sends for a quota warning, fed through the engine's own parser and router.
    for response in imap._parser.feed(b"* OK [ALERT] Quota almost full\r\n"):
        imap._route(response)
    alert = await client.unsolicited()
    assert alert.tag == "alert" and alert.text == "Quota almost full"
    assert alert.get("id") is None
    assert (await client.call("noop")).ok


async def test_kill_over_http_closes_a_tcp_session(bridge: Bridge, http_url: str) -> None:
    from tests.e2e.httpcheck import curl

    client = await XimssClient.connect("127.0.0.1", bridge.tcp.port if bridge.tcp else 0)
    try:
        session_element = await client.login("user1@example.test", "user1pass")
        url_id = session_element.get("urlID", "")
        assert (await curl(f"{http_url}/Session/{url_id}/KILL")).status == 200
        async with asyncio.timeout(5):
            await client.closed.wait()
        assert bridge.services.sessions.get(url_id) is None
    finally:
        await client.close()
