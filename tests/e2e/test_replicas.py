"""Several replicas serving one user base: three bridge processes sharing one real Redis
(DESIGN.md sections 3 and 7).

Each replica is a `ximss-bridge serve` process of its own (own TCP, HTTP and XMAP ports,
`state.backend = "redis"`, `[cluster] advertise` = its HTTP address). An HTTP-binding session
lives on the replica that logged it in; any other replica forwards its requests there. XMAP
handles and folder views are in Redis, so every replica sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from adapters.protocols import ViewQuery
from bridge.client import XimssClient
from bridge.session import persist
from bridge.state.redis import RedisStore
from bridge.xmap import commands as c
from bridge.xmap.client import XmapClient
from tests.conftest import devstack, redis_server_module
from tests.e2e.httpcheck import curl, url_id

BRIDGE = Path(sys.executable).with_name("ximss-bridge")
DIRECTORY = "cluster:session:"
FORWARDED = "X-Bridge-Forwarded"
GONE = 550
_STATE_SECTION = re.compile(r'^\[state\]\npath = "[^"\n]*"\n', re.MULTILINE)


# --------------------------------------------------------------------------- the processes


@dataclass
class Replica:
    name: str
    root: Path
    stack: devstack.DevStack
    redis_url: str
    ports: list[int]  # tcp, http, xmap
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def tcp_port(self) -> int:
        return self.ports[0]

    @property
    def http_port(self) -> int:
        return self.ports[1]

    @property
    def xmap_port(self) -> int:
        return self.ports[2]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def advertise(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def config_text(self) -> str:
        text = self.stack.bridge_config_toml(
            self.tcp_port, http_port=self.http_port, xmap_port=self.xmap_port
        )
        state = (
            f'[state]\nbackend = "redis"\nurl = "{self.redis_url}"\n'
            f'path = "{self.root / self.name}.sqlite"\n\n'
            f'[cluster]\nreplica_id = "{self.name}"\nadvertise = "{self.advertise}"\n'
        )
        replaced, count = _STATE_SECTION.subn(state, text)
        assert count == 1, "the dev stack's bridge config changed shape"
        return replaced

    def start(self) -> None:
        config = self.root / f"{self.name}.toml"
        config.write_text(self.config_text(), encoding="utf-8")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(BRIDGE), "--config", str(config), "serve"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /healthz:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the replica dies as a crashed host would, saving and deleting nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # a drain without SIGTERM's grace for logouts
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@pytest.fixture(scope="module")
def redis_url(redis_server: redis_server_module.RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="module")
def cluster(
    stack: devstack.DevStack, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Replica]]:
    root = tmp_path_factory.mktemp("replicas")
    ports = devstack.free_ports(9)
    replicas = [
        Replica(f"replica{n + 1}", root, stack, redis_url, ports[3 * n : 3 * n + 3])
        for n in range(3)
    ]
    try:
        for replica in replicas:
            replica.start()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


@pytest.fixture
def replicas(cluster: list[Replica]) -> list[Replica]:
    """All three running (a test that killed one had it started again for the next)."""
    for replica in cluster:
        if not replica.running:
            replica.start()
    return cluster


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore(redis_url)
    yield opened
    await opened.close()


# --------------------------------------------------------------------------- HTTP helpers


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str

    @property
    def text(self) -> str:
        return self.body.decode()


async def http_login(
    http: aiohttp.ClientSession, replica: Replica, account: devstack.Account
) -> str:
    params = {"userName": account.address, "password": account.password}
    async with http.get(f"{replica.base}/XIMSSLogin/", params=params) as response:
        assert response.status == 200
        return url_id(await response.text())


async def ask(
    http: aiohttp.ClientSession, replica: Replica, path: str, body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:  # fmt: skip
    method = "GET" if body is None else "POST"
    async with http.request(method, f"{replica.base}{path}", data=body, headers=headers) as got:
        return Answer(got.status, await got.read(), got.content_type)


async def sync(http: aiohttp.ClientSession, replica: Replica, session: str, xml: str) -> Answer:
    return await ask(http, replica, f"/Session/{session}/sync", f"<XIMSS>{xml}</XIMSS>")


async def wait_gone(store: RedisStore, session: str) -> None:
    for _ in range(100):
        if await store.get(DIRECTORY + session) is None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the directory still names an owner for {session}")


# --------------------------------------------------------------------------- (a) one session


async def test_one_http_session_served_by_every_replica(
    replicas: list[Replica], stack: devstack.DevStack, store: RedisStore, tmp_path: Path
) -> None:
    owner, second, third = replicas
    account = stack.new_account()
    stack.fill_maildir(account.address, "INBOX", 5)
    async with aiohttp.ClientSession() as http:
        session = await http_login(http, owner, account)
        entry = await store.get(DIRECTORY + session)
        assert entry is not None
        assert json.loads(entry) == {"address": owner.advertise, "replica": owner.name}

        base = f"/Session/{session}"
        # sync: the same answer through every replica.
        listed = [
            await sync(http, r, session, '<mailboxList id="m" filter="INBOX"/>') for r in replicas
        ]
        assert listed[0].status == 200 and 'mailbox="INBOX"' in listed[0].text, listed[0]
        assert listed[1] == listed[0] and listed[2] == listed[0]

        # async + long poll, round robin (before a folder is open: no notify comes between); an
        # unacknowledged reply is sent again by the owner.
        queued = await ask(http, second, f"{base}/async", '<XIMSS><noop id="a1"/></XIMSS>')
        assert (queued.status, queued.text) == (200, "<XIMSS/>")
        first = await ask(http, third, f"{base}/get?maxWait=5&ackSeq=0")
        assert first.text == '<XIMSS respSeq="1"><response id="a1"/></XIMSS>'
        assert await ask(http, owner, f"{base}/get?maxWait=5&ackSeq=0") == first
        waiting = asyncio.create_task(ask(http, second, f"{base}/get?maxWait=20&ackSeq=1"))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        woke = time.monotonic()
        await ask(http, third, f"{base}/async", '<XIMSS><readTime id="a2"/></XIMSS>')
        second_reply = await asyncio.wait_for(waiting, 10)
        assert time.monotonic() - woke < 3
        assert second_reply.text.startswith('<XIMSS respSeq="2"><currentTime id="a2"')
        # A poll with nothing to say waits its whole maxWait through a forwarding replica too.
        started = time.monotonic()
        empty = await ask(http, third, f"{base}/get?maxWait=3&ackSeq=2")
        assert (empty.status, empty.text) == (200, "<XIMSS/>")
        assert 2.5 <= time.monotonic() - started < 6

        opened = await sync(http, second, session, (
            '<folderOpen id="o" folder="INBOX" mailbox="INBOX" sortField="Date">'
            "<field>Subject</field></folderOpen>"
        ))  # fmt: skip
        assert opened.status == 200 and 'mode="init" messages="5"' in opened.text, opened
        browse = '<folderBrowse id="b" folder="INBOX"><index from="0" till="4"/></folderBrowse>'
        browsed = [await sync(http, r, session, browse) for r in (third, owner)]
        assert browsed[0] == browsed[1]
        subjects = re.findall(r"<Subject>([^<]*)</Subject>", browsed[0].text)
        assert subjects == [f"Message {i}" for i in range(5)], browsed[0].text

        # UPLOAD through one non-owner, used by a messageAppend through another, downloaded
        # through a third path: the bytes survive every hop.
        payload = bytes(range(256)) * 300
        form = aiohttp.FormData()
        form.add_field("fileData", payload, filename="blob.bin",
                       content_type="application/octet-stream")  # fmt: skip
        async with http.post(f"{third.base}{base}/UPLOAD/att1", data=form) as response:
            assert response.status == 200
        appended = await sync(http, second, session, (
            '<messageAppend id="p" folder="INBOX" report="uid"><EMail>'
            f"<From>{account.address}</From><Subject>With a blob</Subject>"
            '<MIME type="multipart" subtype="mixed"><MIME type="text" subtype="plain">hi</MIME>'
            '<MIME uploadID="att1"/></MIME></EMail></messageAppend>'
            '<folderSync id="s" folder="INBOX"/>'
        ))  # fmt: skip
        found = re.search(r'<messageAdded [^>]*UID="(\d+)"', appended.text)
        assert found is not None, appended.text
        uid = found.group(1)
        part = await ask(http, third, f"{base}/MIME/INBOX/{uid}-2-B/blob.bin")
        assert part.status == 200 and part.body == payload
        raw = [await ask(http, r, f"{base}/MIME/INBOX/{uid}-P.txt") for r in (second, owner)]
        assert raw[0] == raw[1] and b"Subject: With a blob" in raw[0].body
        assert raw[0].content_type == "text/plain"

        # curl's way, 2 MB with "Expect: 100-continue": answered by the replica it reached.
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(2 << 20))
        sent = await curl("-F", f"fileData=@{big}", f"{second.base}{base}/UPLOAD/att2")
        assert sent.status == 200, sent
        cleared = await sync(http, third, session, '<clearUploaded id="c" uploadID="att2"/>')
        assert cleared.text == '<XIMSS><response id="c"/></XIMSS>'

        # A client's X-Bridge-Forwarded never grants anything: the owner serves as usual, a
        # non-owner answers 550 rather than forwarding, and the directory keeps the entry.
        spoof = {FORWARDED: "replica9"}
        noop = '<XIMSS><noop id="n"/></XIMSS>'
        assert (await ask(http, owner, f"{base}/sync", noop, spoof)).status == 200
        assert (await ask(http, second, f"{base}/sync", noop, spoof)).status == GONE
        assert await store.get(DIRECTORY + session) is not None

        # KILL through a non-owner ends it everywhere.
        killed = await ask(http, third, f"{base}/KILL")
        assert (killed.status, killed.text) == (200, "<XIMSS/>")
        for replica in replicas:
            assert (await sync(http, replica, session, '<noop id="x"/>')).status == GONE
        await wait_gone(store, session)
        # A session no replica holds answers 550 without going anywhere.
        assert (await ask(http, second, "/Session/123456-nosuchsession/sync", noop)).status == GONE


# --------------------------------------------------------------------------- (c) XMAP handles


async def test_xmap_handles_and_views_are_shared(
    replicas: list[Replica], stack: devstack.DevStack
) -> None:
    account = stack.new_account()
    stack.fill_maildir(account.address, "INBOX", 3)
    clients = [await XmapClient.connect("127.0.0.1", r.xmap_port) for r in replicas]
    try:
        for client in clients:
            await client.login(account.address, account.password)
        listing = await clients[0].call(c.ListFolder("INBOX"))
        handles = [int(row.get("MessageHandle", "0")) for row in listing.first
                   if row.tag == "MESSAGEHEADER"]  # fmt: skip
        assert len(handles) == 3 and 0 not in handles
        for handle in handles:
            via_first = await clients[0].call(c.GetMessage(handle))
            via_second = await clients[1].call(c.GetMessage(handle))
            assert via_second.blob is not None and via_second.blob == via_first.blob
        # Handles given at once by two replicas for one account never collide.
        raws = [
            f"From: a@example.org\r\nSubject: upload {n}\r\n\r\nbody {n}\r\n".encode()
            for n in range(8)
        ]

        async def upload(client: XmapClient, batch: list[bytes]) -> list[int]:
            answers = [await client.call(c.NewMessageUpload("INBOX", frozenset(), raw))
                       for raw in batch]  # fmt: skip
            return [int(a.first.get("MessageHandle", "0")) for a in answers]

        evens, odds = await asyncio.gather(
            upload(clients[0], raws[::2]), upload(clients[1], raws[1::2])
        )
        given = [handle for pair in zip(evens, odds, strict=True) for handle in pair]
        assert len(set(given) | set(handles)) == 11, given
        for handle, raw in zip(given, raws, strict=True):
            blob = (await clients[2].call(c.GetMessage(handle))).blob
            assert blob is not None and raw.rstrip(b"\r\n") in blob
        # The listing through the third replica names every message by the same handles.
        again = await clients[2].call(c.ListFolder("INBOX"))
        assert {int(r.get("MessageHandle", "0")) for r in again.first
                if r.tag == "MESSAGEHEADER"} == set(handles) | set(given)  # fmt: skip
    finally:
        for client in clients:
            await client.close()


# --------------------------------------------------------------------------- (b) one dies

BIG = 100_000


async def imap_noop_seconds(port: int, account: devstack.Account) -> float:
    """One IMAP round trip on a plain socket to Dovecot (best of 5 NOOPs, INBOX selected)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()

        async def command(tag: str, text: str) -> None:
            writer.write(f"{tag} {text}\r\n".encode())
            await writer.drain()
            while not (line := await reader.readline()).startswith(tag.encode() + b" "):
                assert line, "Dovecot closed the connection"
            assert line.startswith(tag.encode() + b" OK"), line

        await command("a", f'LOGIN "{account.address}" "{account.password}"')
        await command("b", 'SELECT "INBOX"')
        best = float("inf")
        for n in range(5):
            started = time.perf_counter()
            await command(f"n{n}", "NOOP")
            best = min(best, time.perf_counter() - started)
        await command("z", "LOGOUT")
        return best
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def open_attrs(folder: str) -> dict[str, str]:
    return {"folder": folder, "mailbox": "INBOX", "sortField": "Date", "sortOrder": "asc"}


async def test_a_replica_dies_and_its_users_carry_on_elsewhere(
    replicas: list[Replica], stack: devstack.DevStack, store: RedisStore
) -> None:
    began = time.monotonic()
    doomed, heir, other = replicas
    account = stack.new_account("big")
    stack.fill_maildir(account.address, "INBOX", BIG)
    filled = time.monotonic()

    tcp = await XimssClient.connect("127.0.0.1", doomed.tcp_port)
    await tcp.login(account.address, account.password)
    reply = await tcp.call("folderOpen", open_attrs("big"))
    (init,) = reply.of("folderReport")
    assert init.get("messages") == str(BIG)
    opened = time.monotonic()
    # The view it built is in Redis now, for every replica.
    uidvalidity = int(init.get("UIDValidity", "0"))
    view = persist.view_key(account.address, "INBOX", uidvalidity, ViewQuery("Date"))
    assert view is not None and await store.get(view) is not None

    async with aiohttp.ClientSession() as http:
        session = await http_login(http, doomed, account)
        noop = '<noop id="n"/>'
        assert (await sync(http, heir, session, noop)).status == 200

        # A long poll relayed to it when it dies ends with 550 at once, not at its maxWait.
        polling = asyncio.create_task(ask(http, other, f"/Session/{session}/get?maxWait=30"))
        await asyncio.sleep(0.3)
        assert not polling.done()
        doomed.kill()
        assert (await asyncio.wait_for(polling, 5)).status == GONE
        # Its TCP clients see their connection end.
        await asyncio.wait_for(tcp.closed.wait(), 5)
        await tcp.close()
        # Its HTTP sessions answer 550 through the others: the clients log in again.
        assert (await sync(http, heir, session, noop)).status == GONE
        await wait_gone(store, session)
        assert (await sync(http, other, session, noop)).status == GONE
        assert (await ask(http, other, f"/Session/{session}/get?maxWait=1")).status == GONE

        again = await http_login(http, heir, account)
        entry = await store.get(DIRECTORY + again)
        assert entry is not None and json.loads(entry)["replica"] == heir.name
        answer = await sync(http, other, again, noop)
        assert (answer.status, answer.text) == (200, '<XIMSS><response id="n"/></XIMSS>')

    # The view the dead replica stored opens warm on another: one IMAP round trip plus < 50 ms.
    noop_s = await imap_noop_seconds(stack.ports.imap, account)
    client = await XimssClient.connect("127.0.0.1", heir.tcp_port)
    try:
        await client.login(account.address, account.password)
        times: list[float] = []
        for n in range(3):
            started = time.perf_counter()
            reply = await client.call("folderOpen", open_attrs(f"warm{n}"))
            times.append(time.perf_counter() - started)
            (init,) = reply.of("folderReport")
            assert init.get("messages") == str(BIG)
            await client.call("folderClose", {"folder": f"warm{n}"})
        # For the record: the same open with no stored view (a full sort on the server).
        await store.delete(view)
        started = time.perf_counter()
        await client.call("folderOpen", open_attrs("cold"))
        cold_ms = (time.perf_counter() - started) * 1000
    finally:
        await client.close()
    open_ms, noop_ms = min(times) * 1000, noop_s * 1000
    print(
        f"\n100k folder: fill {filled - began:.1f} s, cold open on {doomed.name} "
        f"{opened - filled:.1f} s; warm opens on {heir.name} "
        f"{', '.join(f'{t * 1000:.1f}' for t in times)} ms (cold there {cold_ms:.0f} ms), "
        f"IMAP NOOP {noop_ms:.2f} ms; "
        f"test {time.monotonic() - began:.1f} s"
    )
    assert open_ms - noop_ms < 50, (open_ms, noop_ms)


# --------------------------------------------------------------------------- (d) a drain


async def test_a_draining_replica_still_serves_its_sessions_through_the_others(
    replicas: list[Replica], stack: devstack.DevStack
) -> None:
    """SIGTERM on the owner: relayed polls still reach it during the grace (its HTTP socket
    stays open for them), so the client gets the shutdown alert and can say bye, instead of a
    550 the moment the owner stops taking connections."""
    owner, other, third = replicas
    account = stack.new_account("drain")
    async with aiohttp.ClientSession() as http:
        session = await http_login(http, owner, account)
        assert owner.proc is not None
        owner.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        polled = await ask(http, other, f"/Session/{session}/get?maxWait=5&ackSeq=0")
        assert polled.status == 200, polled.text
        assert "shutting down" in polled.text
        login = await ask(http, owner, "/readyz")
        assert login.status == 503  # no new work for the draining replica
        bye = await sync(http, third, session, '<bye id="1"/>')
        assert bye.status == 200, bye.text
    assert owner.proc.wait(20) == 0
