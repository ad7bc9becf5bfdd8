"""Operations on a bridge run as its own process on the dev stack: the SIGTERM drain (alert,
grace, bye, no IMAP login left behind), SIGINT, SIGHUP reloads, JSON logs, check-config probes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bridge import config
from bridge.app import Bridge
from bridge.client import XimssClient
from bridge.xmap.client import XmapClient
from tests.conftest import REPO, devstack

EXECUTABLE = REPO / ".venv" / "bin" / "ximss-bridge"
GRACE = 1.0
URL_ID = re.compile(r'urlID="([^"]+)"')
STATE_PATH = re.compile(r'^path = ".*"$', re.MULTILINE)


@dataclass(slots=True)
class Ports:
    tcp: int
    http: int
    xmap: int

    @classmethod
    def free(cls) -> Ports:
        tcp, http, xmap = devstack.free_ports(3)
        return cls(tcp, http, xmap)


def config_text(
    stack: devstack.DevStack, ports: Ports, state: Path, *, server: str = "", tail: str = ""
) -> str:
    """The stack's bridge config on these ports, its own state file, extra [server] lines and
    extra tables at the end."""
    text = stack.bridge_config_toml(ports.tcp, http_port=ports.http, xmap_port=ports.xmap)
    text = STATE_PATH.sub(f'path = "{state}"', text, count=1)
    text = text.replace("[server]\n", f"[server]\n{server}", 1)
    return text + tail


@dataclass(slots=True, eq=False)
class BridgeProcess:
    """`ximss-bridge --config <file> serve` with its stderr collected line by line."""

    process: asyncio.subprocess.Process
    config: Path
    lines: list[str] = field(default_factory=list)
    _grew: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, config: Path) -> BridgeProcess:
        process = await asyncio.create_subprocess_exec(
            str(EXECUTABLE), "--config", str(config), "serve",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, cwd=REPO,
        )  # fmt: skip
        running = cls(process, config)
        running._reader = asyncio.create_task(running._read(), name="bridge-stderr")
        await running.wait_for(lambda line: "HTTP listening" in line)
        return running

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))
            self._grew.set()

    async def wait_for(self, match: Callable[[str], bool], timeout: float = 15.0) -> str:
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines[seen:]:
                    if match(line):
                        return line
                seen = len(self.lines)
                if self.process.returncode is not None and self._reader and self._reader.done():
                    raise AssertionError("the bridge exited:\n" + "\n".join(self.lines))
                self._grew.clear()
                await self._grew.wait()

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def exit_code(self, timeout: float) -> int:
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return code

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


@contextlib.asynccontextmanager
async def running_bridge(config: Path) -> AsyncIterator[BridgeProcess]:
    bridge = await BridgeProcess.start(config)
    try:
        yield bridge
    finally:
        await bridge.stop()


def imap_users(stack: devstack.DevStack) -> str:
    done = subprocess.run(
        ["doveadm", "-c", str(stack.dovecot.conf_path), "who", "-1"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def wait_no_imap_logins(stack: devstack.DevStack, accounts: list[devstack.Account]) -> None:
    """Dovecot forgets a connection once its imap process has ended: give it a moment."""
    left: list[str] = []
    for _ in range(50):
        who = await asyncio.to_thread(imap_users, stack)
        left = [a.address for a in accounts if re.search(rf"^{re.escape(a.address)}\s", who, re.M)]
        if not left:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"IMAP logins left on Dovecot: {left}")


async def next_message(client: XimssClient, timeout: float) -> str:
    return (await client.unsolicited(timeout)).tag


async def poll_until_bye(http: aiohttp.ClientSession, base: str, url_id: str) -> list[str]:
    """Long polls, acknowledging each reply, until a reply holds `<bye/>`; returns the replies."""
    replies: list[str] = []
    ack = ""
    while not any("<bye/>" in reply for reply in replies):
        async with http.get(f"{base}/Session/{url_id}/get?maxWait=10{ack}") as response:
            assert response.status == 200, (response.status, replies)
            body = await response.text()
        if seq := re.search(r'respSeq="(\d+)"', body):
            ack = f"&ackSeq={seq.group(1)}"
            replies.append(body)
    return replies


async def test_sigterm_drains_alerts_says_bye_and_logs_out(
    stack: devstack.DevStack, tmp_path: Path
) -> None:
    accounts = [stack.new_account("drain") for _ in range(5)]
    ports = Ports.free()
    config = tmp_path / "bridge.toml"
    config.write_text(config_text(stack, ports, tmp_path / "state.sqlite",
                                  server=f"shutdown_grace = {GRACE}\n"))  # fmt: skip
    async with running_bridge(config) as bridge:
        clients = await asyncio.gather(
            *(XimssClient.connect("127.0.0.1", ports.tcp) for _ in range(50))
        )
        try:
            await asyncio.gather(*(
                c.login(accounts[i % 5].address, accounts[i % 5].password)
                for i, c in enumerate(clients)
            ))  # fmt: skip
            xmap = await XmapClient.connect("127.0.0.1", ports.xmap)
            await xmap.login(accounts[0].address, accounts[0].password)
            base = f"http://127.0.0.1:{ports.http}"
            # One connection, kept alive: the drain closes the listening socket, so the polls
            # after SIGTERM ride the connection the client already has.
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=connector) as http:
                login = f"{base}/XIMSSLogin/?userName={accounts[1].address}"
                async with http.get(f"{login}&password={accounts[1].password}") as response:
                    url_id = URL_ID.search(await response.text())
                assert url_id is not None
                polling = asyncio.create_task(poll_until_bye(http, base, url_id.group(1)))
                await asyncio.sleep(0.3)  # the first long poll is waiting

                started = time.monotonic()
                bridge.signal(signal.SIGTERM)
                alerts = await asyncio.gather(*(c.unsolicited(5) for c in clients))
                assert {(a.tag, a.text) for a in alerts} == {
                    ("alert", "The server is shutting down: please log out.")
                }
                # No new connections while draining, on any listener.
                for port in (ports.tcp, ports.http, ports.xmap):
                    with pytest.raises(OSError):
                        await asyncio.open_connection("127.0.0.1", port)
                byes = await asyncio.gather(*(next_message(c, GRACE + 5) for c in clients))
                assert byes == ["bye"] * 50
                assert time.monotonic() - started >= GRACE * 0.9  # after the grace, not before
                async with asyncio.timeout(5):
                    await asyncio.gather(*(c.closed.wait() for c in clients))
                replies = await asyncio.wait_for(polling, 10)
                assert "<alert>The server is shutting down" in replies[0]
                assert replies[-1].endswith("<bye/></XIMSS>")
            with pytest.raises((EOFError, ConnectionResetError)):
                await xmap.receive(5)  # XMAP: closed after the grace, no alert
            assert await bridge.exit_code(GRACE + 8) == 0
            assert time.monotonic() - started < GRACE + 8
        finally:
            await asyncio.gather(*(c.close() for c in clients))
    await wait_no_imap_logins(stack, accounts)


async def test_drain_over_websocket_and_503_for_new_http_requests(
    settings: config.Settings, fresh_account: devstack.Account
) -> None:
    """In process: a WebSocket session gets the alert, then bye and a going-away close; a new
    request on an HTTP connection opened before the drain is answered 503."""
    bridge = Bridge(settings)
    async with (
        bridge,
        # One kept-alive connection for plain requests; the WebSocket gets its own.
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http,
        aiohttp.ClientSession() as sockets,
    ):
        assert bridge.http is not None
        base = f"http://127.0.0.1:{bridge.http.port}"
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200  # the connection the 503 comes back on
        async with sockets.ws_connect(f"{base}/ximss") as ws:
            account, password = fresh_account.address, fresh_account.password
            await ws.send_str(f'<login id="L" authData="{account}" password="{password}"/>')
            assert (await ws.receive_str()).startswith('<session id="L"')
            assert await ws.receive_str() == '<response id="L"/>'
            draining = asyncio.create_task(bridge.drain(0.5))
            alert = await ws.receive_str(timeout=5)
            assert alert == "<alert>The server is shutting down: please log out.</alert>"
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 503
            assert await ws.receive_str(timeout=5) == "<bye/>"
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await asyncio.wait_for(draining, 10)
        assert len(bridge.services.sessions) == 0


async def test_sighup_applies_limits_and_log_level_and_survives_a_bad_file(
    stack: devstack.DevStack, tmp_path: Path
) -> None:
    account = stack.new_account("reload")
    ports = Ports.free()
    state = tmp_path / "state.sqlite"
    config = tmp_path / "bridge.toml"
    config.write_text(config_text(stack, ports, state))
    big = f'<noop id="big" pad="{"x" * 3000}"/>'
    async with running_bridge(config) as bridge:
        before = await XimssClient.connect("127.0.0.1", ports.tcp)
        await before.login(account.address, account.password)
        moved = Ports(devstack.free_ports(1)[0], ports.http, ports.xmap)
        config.write_text(config_text(stack, moved, state, server='log_level = "DEBUG"\n',
                                      tail="\n[limits]\nmax_frame_bytes = 2000\n"))  # fmt: skip
        bridge.signal(signal.SIGHUP)
        await bridge.wait_for(lambda line: "reloaded" in line)
        assert any("tcp.port changed" in line and "needs a restart" in line
                   for line in bridge.lines)  # fmt: skip

        # A new connection (still on the old port: that needs a restart) takes the new limit.
        after = await XimssClient.connect("127.0.0.1", ports.tcp)
        await after.login(account.address, account.password)
        await after.send_raw(big.encode() + b"\0")
        refused = await after.unsolicited(5)
        assert refused.tag == "response" and "too large" in (refused.get("errorText") or "")
        async with asyncio.timeout(5):
            await after.closed.wait()
        # The session from before keeps working, with the limits it started with.
        assert (await before.call("noop", {"pad": "x" * 3000})).ok
        # The log level is DEBUG now: the HTTP listener logs each request.
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{ports.http}/healthz") as response,
        ):
            assert response.status == 200
        await bridge.wait_for(lambda line: " DEBUG " in line and "health -> 200" in line)

        config.write_text("[limits\nmax_frame_bytes = ")
        bridge.signal(signal.SIGHUP)
        await bridge.wait_for(lambda line: "reload of" in line and "nothing changed" in line)
        assert bridge.process.returncode is None
        assert (await before.call("noop")).ok
        again = await XimssClient.connect("127.0.0.1", ports.tcp)
        await again.login(account.address, account.password)
        await again.send_raw(big.encode() + b"\0")
        async with asyncio.timeout(5):
            await again.closed.wait()  # still the reloaded limit, not the broken file's
        await before.close()
        await again.close()
        await after.close()
        bridge.signal(signal.SIGTERM)
        assert await bridge.exit_code(15) == 0


async def test_json_logs_carry_the_session_and_sigint_skips_the_grace(
    stack: devstack.DevStack, tmp_path: Path
) -> None:
    account = stack.new_account("jsonlog")
    ports = Ports.free()
    config = tmp_path / "bridge.toml"
    server = 'log_format = "json"\nshutdown_grace = 60\n'
    config.write_text(config_text(stack, ports, tmp_path / "state.sqlite", server=server))
    async with running_bridge(config) as bridge:
        client = await XimssClient.connect("127.0.0.1", ports.tcp)
        session = await client.login(account.address, account.password)
        label = session.get("urlID", "").partition("-")[0]
        line = await bridge.wait_for(lambda line: '"login account=' in line)
        entry = json.loads(line)
        assert entry["session"] == label and entry["account"] == account.address
        assert entry["level"] == "INFO" and entry["logger"] == "bridge.ximss"
        assert entry["peer"].startswith("127.0.0.1:") and entry["time"].endswith("Z")
        started = time.monotonic()
        bridge.signal(signal.SIGINT)  # Ctrl-C: no grace, even with shutdown_grace = 60
        assert (await client.unsolicited(5)).tag == "alert"
        assert (await client.unsolicited(5)).tag == "bye"
        assert await bridge.exit_code(10) == 0
        assert time.monotonic() - started < 10
        await client.close()
        for text in bridge.lines:
            parsed = json.loads(text)  # every line is one JSON object
            assert {"time", "level", "logger", "message"} <= set(parsed)


async def run_check_config(config: Path, *extra: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(EXECUTABLE), "--config", str(config), "check-config", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, output.decode()


async def test_check_config_probes_every_backend(stack: devstack.DevStack, tmp_path: Path) -> None:
    ports = Ports.free()
    good = tmp_path / "good.toml"
    good.write_text(config_text(stack, ports, tmp_path / "state.sqlite"))
    code, output = await run_check_config(good)
    assert code == 0, output
    for kind in ("IMAP", "SMTP", "CalDAV", "SIP"):
        assert re.search(rf"^ok +example\.test {kind} ", output, re.M), output

    closed = devstack.free_ports(1)[0]
    bad = tmp_path / "bad.toml"
    tail = f'\n[domains."closed.test".imap]\nhost = "127.0.0.1"\nport = {closed}\n'
    bad.write_text(config_text(stack, ports, tmp_path / "state.sqlite", tail=tail))
    code, output = await run_check_config(bad)
    assert code == 1, output
    assert re.search(rf"^failed +closed\.test IMAP 127\.0\.0\.1:{closed}: ", output, re.M), output
    assert re.search(r"^ok +example\.test IMAP ", output, re.M), output
    code, output = await run_check_config(bad, "--no-probe")
    assert code == 0 and "failed" not in output, output
