"""Load generator: N concurrent XIMSS sessions of mixed, realistic work against the dev stack.

Run on demand (not in CI; tests/integration/test_load_smoke.py runs a tiny one)::

    .venv/bin/python tests/bench/load.py --sessions N --seconds T [--ramp S] [--report FILE]
    .venv/bin/python tests/bench/load.py --find-limit [--steps 50,100,200,400,800]
                                         [--step-seconds 60] [--p95-limit-ms 500] [--report FILE]

Starts its own dev stack (Dovecot, Postfix, Radicale, Kamailio on free loopback ports, with
Dovecot's imap process limit raised for the session count) and the bridge as a subprocess
(`ximss-bridge --config <toml> serve`), so the bridge's memory and CPU are read from
/proc/<pid> apart from this process's. One account per session, each INBOX filled with
`--messages` messages; at a session's first login its calendar gets a few events.

Each session logs in (TCP, or the HTTP binding for `--http-share` of them: sync batches and a
long poll kept outstanding, as browsers do), opens its calendar and INBOX, learns the UIDs, and
TCP sessions bind to SIP in pairs (`signalBind`) to send each other instant messages. Then it
loops, with an exponential think time of mean `--think` seconds between operations, over this
mix (weights, `--mix op=w,...` to change them):

    folderBrowse 20  a 20-row window of the open INBOX (FLAGS From Subject Date SIZE)
    folderRead   15  a random known message
    folderSync   12  (and at once after a folderReport notify: new mail, changed flags)
    messageMark  10  set or clear Seen or Flagged on a random message
    noop          8
    findEvents    8  a random two weeks of 2024 in the calendar
    sendIM        8  to the bound peer; its readIM is timed as "imDelivery"
    folderOpen    5  open Sent as a second folder, browse 10 rows, folderClose
    messageAppend 5  a small text message into Drafts
    messageSubmit 4  to another test account through Postfix, copy in Sent
    mailboxList   3
    relogin       2  bye, connect and log in again (sessions without an IM peer)

Everything in the mix touches the backends: the reading operations go to Dovecot (the bridge's
caches answer some), findEvents to Radicale, messageSubmit to Postfix (and LMTP into the next
account's INBOX, which that session then syncs), sendIM through Kamailio. A response with an errorNum, a
closed connection, an operation running past `--op-timeout` and an errorIM all count as errors.

Report (stdout, every `--interval` seconds for the last interval and at the end for the whole
measured phase; `--report FILE` writes everything as JSON): operations per second overall and
per operation, latency p50/p95/p99/max per operation, error counts with the first error texts,
the bridge's RSS (start before any session, after the ramp, peak, end, and the least-squares
slope in MB/min over the measured phase: flat memory is a slope near 0), the bridge's CPU (user +
system seconds over wall time = cores used; and this generator's, and the machine's busy share),
backend connections (established TCP connections to Dovecot IMAP, Postfix submission and
Radicale; `doveadm who`; Dovecot imap processes and their private memory), and live sessions (the
generator's and the bridge's own gauge from /metrics). imDelivery (sendIM to the peer's readIM)
is shown but not counted in "all requests". At the end the warnings and errors in the bridge's,
Dovecot's and Postfix's logs are counted and the first few shown. Exit status 1 when any
operation failed.

The measured phase starts once every session has logged in (`--ramp` seconds, default N/10);
`--seconds` is its length. `--find-limit` keeps one stack and bridge and steps the session count
up (adding sessions at each step), measures each step for `--step-seconds`, and reports the
largest count whose p95 latency (all operations) stays within `--p95-limit-ms` with no errors, with
the bridge's cores at that step, for the sessions-per-core figure.

The bridge config is the dev stack's with production timers: calendars polled every 30 s (not 2)
and SIP registrations checked every 30 s (not 2), the log at `--log-level` into the run's folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "deploy"))

import aiohttp  # noqa: E402
import devstack  # noqa: E402
from lxml import etree  # noqa: E402

from bridge import xml  # noqa: E402
from bridge.app import install_event_loop_policy  # noqa: E402
from bridge.client import Reply, XimssClient  # noqa: E402

MIX: dict[str, float] = {
    "folderBrowse": 20,
    "folderRead": 15,
    "folderSync": 12,
    "messageMark": 10,
    "noop": 8,
    "findEvents": 8,
    "sendIM": 8,
    "folderOpen": 5,
    "messageAppend": 5,
    "messageSubmit": 4,
    "mailboxList": 3,
    "relogin": 2,
}
FIELDS = ("FLAGS", "From", "Subject", "Date", "SIZE")
BROWSE_ROWS = 20
XCAL = "urn:ietf:params:xml:ns:xcal"
IM_PREFIX = "load im "
IMAP_PER_SESSION = 4  # its own, the open folder's, the IDLE one, a second folder now and then
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class OpError(Exception):
    """An operation failed; the text is what the report shows."""


# --------------------------------------------------------------------------- statistics


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Stats:
    """Latencies and errors of one span of time (a phase, an interval, the whole run)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.texts: dict[str, list[str]] = defaultdict(list)

    def add(self, op: str, seconds: float, error: str | None) -> None:
        self.latency[op].append(seconds)
        if error is not None:
            self.errors[op] += 1
            texts = self.texts[op]
            if len(texts) < 5 and error not in texts:
                texts.append(error)

    def summary(self, wall: float | None = None) -> dict[str, Any]:
        wall = max(1e-9, wall if wall is not None else time.monotonic() - self.started)
        ops: dict[str, Any] = {}
        everything: list[float] = []
        for op in sorted(self.latency):
            values = sorted(self.latency[op])
            everything.extend(values)
            ops[op] = self._row(values, self.errors[op], wall)
            if self.texts[op]:
                ops[op]["first_errors"] = self.texts[op]
        everything.sort()
        # imDelivery is a delay, not a request: not in the totals.
        requests = sorted(v for op, vs in self.latency.items() if op != "imDelivery" for v in vs)
        total = self._row(requests, sum(self.errors.values()), wall)
        return {"seconds": round(wall, 1), "ops": ops, "all": total}

    @staticmethod
    def _row(values: list[float], errors: int, wall: float) -> dict[str, Any]:
        return {
            "count": len(values),
            "ops_per_s": round(len(values) / wall, 2),
            "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p95_ms": round(percentile(values, 95) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1),
            "max_ms": round((values[-1] if values else 0.0) * 1000, 1),
            "errors": errors,
        }


class Recorder:
    def __init__(self) -> None:
        self.total = Stats()
        self.phase = Stats()
        self.window = Stats()
        self.unsolicited: Counter[str] = Counter()

    def add(self, op: str, seconds: float, error: str | None = None) -> None:
        for stats in (self.total, self.phase, self.window):
            stats.add(op, seconds, error)


def format_table(summary: dict[str, Any]) -> str:
    lines = [
        f"  {'operation':<14}{'count':>8}{'ops/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    ]
    rows = [*summary["ops"].items(), ("all requests", summary["all"])]
    for op, row in rows:
        lines.append(
            f"  {op:<14}{row['count']:>8}{row['ops_per_s']:>9.2f}{row['p50_ms']:>9.1f}"
            f"{row['p95_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['max_ms']:>9.1f}{row['errors']:>8}"
        )
    for op, row in summary["ops"].items():
        for text in row.get("first_errors", []):
            lines.append(f"  ! {op}: {text}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- /proc


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    rss_mb: float
    cpu_s: float  # user + system


def proc_sample(pid: int) -> Sample:
    now = time.monotonic()
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
            break
    return Sample(now, rss, cpu_seconds(pid))


def cpu_seconds(pid: int | str) -> float:
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    rest = text[text.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    parts = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


def established_to(ports: Iterable[int]) -> dict[int, int]:
    """Established TCP connections whose far end is each port (the clients' side on loopback)."""
    wanted = set(ports)
    counts = dict.fromkeys(wanted, 0)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "01":
                    port = int(fields[2].rsplit(":", 1)[1], 16)
                    if port in wanted:
                        counts[port] += 1
    return counts


def dovecot_imap_processes(master: int | None) -> tuple[int, float]:
    """Number of Dovecot `imap` processes under `master` and their private resident MB."""
    count, private = 0, 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(errors="replace")
            if stat[stat.index("(") + 1 : stat.rindex(")")] != "imap":
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) != master:
                continue
            _, resident, shared, *_ = (
                int(v) for v in Path(entry.path, "statm").read_text().split()
            )
        except (OSError, ValueError):
            continue
        count += 1
        private += (resident - shared) * PAGE
    return count, private / (1 << 20)


LOG_PROBLEMS = {
    "bridge": re.compile(r" (WARNING|ERROR|CRITICAL) (.*)"),
    "dovecot": re.compile(r"((?:Warning|Error|Fatal|Panic): .*)"),
    "postfix": re.compile(r"((?:warning|error|fatal|panic): .*)"),
}


def log_problems(logs: dict[str, Path]) -> dict[str, Any]:
    """Warnings and errors the bridge and the backends logged: count and the first few."""
    found: dict[str, Any] = {}
    for name, path in logs.items():
        count = 0
        first: list[str] = []
        with contextlib.suppress(OSError), path.open(errors="replace") as lines:
            for line in lines:
                match = LOG_PROBLEMS[name].search(line)
                if match is None:
                    continue
                count += 1
                text = " ".join(match.groups())[:300]
                if len(first) < 5 and text not in first:
                    first.append(text)
        found[name] = {"count": count, "first": first}
    return found


def linear_slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


# --------------------------------------------------------------------------- connections


class Conn(Protocol):
    def next_id(self) -> str: ...

    async def send(self, element: etree._Element) -> Reply: ...

    async def close(self) -> None: ...

    @property
    def broken(self) -> bool: ...


class TcpConn:
    """XIMSS over TCP: the project's client, with its unsolicited messages handed on."""

    def __init__(self, client: XimssClient, on_message: Callable[[etree._Element], None]) -> None:
        self.client = client
        self._on_message = on_message
        self._drain = asyncio.create_task(self._drain_loop())

    @classmethod
    async def login(
        cls, port: int, user: str, password: str, on_message: Callable[[etree._Element], None]
    ) -> TcpConn:
        client = await XimssClient.connect("127.0.0.1", port)
        try:
            reply = await client.request("login", {"authData": user, "password": password})
            if not reply.ok:
                raise OpError(error_text(reply))
        except BaseException:
            await client.close()
            raise
        return cls(client, on_message)

    async def _drain_loop(self) -> None:
        while True:
            try:
                message = await self.client.unsolicited(timeout=3600)
            except TimeoutError:
                continue
            self._on_message(message)

    def next_id(self) -> str:
        return self.client.next_id()

    async def send(self, element: etree._Element) -> Reply:
        return await self.client.send(element)

    @property
    def broken(self) -> bool:
        return self.client.closed.is_set()

    async def close(self) -> None:
        self._drain.cancel()
        await asyncio.gather(self._drain, return_exceptions=True)
        await self.client.close()


class HttpConn:
    """XIMSS over the HTTP binding: sync batches of one request, a long poll always waiting."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base: str,
        url_id: str,
        on_message: Callable[[etree._Element], None],
    ) -> None:
        self.http = http
        self.base = f"{base}/Session/{url_id}"
        self._on_message = on_message
        self._ids = 0
        self._gone = False
        self._poll = asyncio.create_task(self._poll_loop())

    @classmethod
    async def login(
        cls,
        http: aiohttp.ClientSession,
        base: str,
        user: str,
        password: str,
        on_message: Callable[[etree._Element], None],
    ) -> HttpConn:
        params = {"userName": user, "password": password, "errorAsXML": "1"}
        async with http.get(f"{base}/XIMSSLogin/", params=params) as response:
            body = await response.read()
            if response.status != 200:
                raise OpError(f"HTTP {response.status}")
        root = xml.parse(body)
        session = root.find("session")
        if session is None or not session.get("urlID"):
            failed = root.find("response")
            raise OpError(error_text(Reply([], failed)) if failed is not None else "no session")
        return cls(http, base, session.get("urlID", ""), on_message)

    async def _poll_loop(self) -> None:
        ack: str | None = None
        while not self._gone:
            params = {"maxWait": "20", **({"ackSeq": ack} if ack else {})}
            try:
                async with self.http.get(f"{self.base}/get", params=params) as response:
                    body = await response.read()
                    if response.status != 200:
                        self._gone = True
                        return
            except (aiohttp.ClientError, TimeoutError):
                self._gone = True
                return
            if not body.strip():
                continue
            root = xml.parse(body)
            ack = root.get("respSeq") or ack
            for message in root:
                self._on_message(message)

    def next_id(self) -> str:
        self._ids += 1
        return f"H{self._ids}"

    async def send(self, element: etree._Element) -> Reply:
        msg_id = element.get("id")
        data = b"<XIMSS>" + xml.serialize(element) + b"</XIMSS>"
        try:
            async with self.http.post(
                f"{self.base}/sync", data=data, headers={"Content-Type": "text/xml"}
            ) as response:
                body = await response.read()
                if response.status != 200:
                    self._gone = True
                    raise ConnectionError(f"HTTP {response.status}")
        except aiohttp.ClientError as exc:
            self._gone = True
            raise ConnectionError(str(exc)) from exc
        found: list[etree._Element] = []
        for message in xml.parse(body):
            if message.get("id") != msg_id:
                self._on_message(message)
            elif message.tag == "response":
                return Reply(found, message)
            else:
                found.append(message)
        raise ConnectionError("no response in the batch reply")

    @property
    def broken(self) -> bool:
        return self._gone

    async def close(self) -> None:
        self._gone = True
        self._poll.cancel()
        await asyncio.gather(self._poll, return_exceptions=True)


def error_text(reply: Reply) -> str:
    return f"{reply.response.get('errorNum')}: {reply.response.get('errorText')}"


# --------------------------------------------------------------------------- sessions


def sdp() -> etree._Element:
    return xml.parse(
        b'<sdp ip="[127.0.0.1]"><media media="audio" protocol="RTP/AVP" ip="[127.0.0.1]:4000" '
        b'direction="sendrecv"><codec id="0" name="PCMU/8000"/></media></sdp>'
    )


def vevent(body: str, uid: str) -> etree._Element:
    return xml.parse(
        f'<iCalendar xmlns="{XCAL}"><vCalendar version="2.0"><vevent><uid>{uid}</uid>{body}'
        "</vevent></vCalendar></iCalendar>".encode()
    )


def email(sender: str, to: str, subject: str, text: str) -> etree._Element:
    mail = xml.element("EMail")
    xml.sub(mail, "From", None, sender)
    xml.sub(mail, "To", None, to)
    xml.sub(mail, "Subject", None, subject)
    xml.sub(mail, "MIME", {"type": "text", "subtype": "plain"}, text)
    return mail


BODY = "Hello,\n\nthis is a message of the load run. " * 8 + "\n\nRegards\n"


@dataclass
class World:
    """What the sessions share: where the bridge is, the stats, the mix, the stop signal."""

    tcp_port: int
    http_base: str
    http: aiohttp.ClientSession
    recorder: Recorder
    mix: dict[str, float]
    think: float
    op_timeout: float
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    seeded: set[str] = field(default_factory=set)


class Session:
    def __init__(
        self,
        world: World,
        index: int,
        account: devstack.Account,
        rcpt: devstack.Account,
        transport: str,
        seed: int,
    ) -> None:
        self.world = world
        self.index = index
        self.account = account
        self.rcpt = rcpt
        self.transport = transport
        self.peer: Session | None = None
        self.rng = random.Random(seed)
        self.conn: Conn | None = None
        self.bound = False
        self.set_up = False  # logged in, calendar and INBOX open, bound when paired
        self.ready = asyncio.Event()
        self.uids: set[int] = set()
        self.messages = 0
        self.sync_due = False
        self.sequence = 0

    # -- plumbing

    async def timed(self, op: str, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run one operation, record its latency and outcome; OpError on failure."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.world.op_timeout):
                result = await work()
        except TimeoutError:
            error = f"timeout after {self.world.op_timeout:g} s"
        except OpError as exc:
            error = str(exc)
        except (ConnectionError, OSError, aiohttp.ClientError) as exc:
            error = f"connection lost: {exc or type(exc).__name__}"
        except Exception as exc:  # anything else (a reply that does not parse...): shown too
            error = f"{type(exc).__name__}: {exc}"
        else:
            self.world.recorder.add(op, time.monotonic() - started)
            return result
        self.world.recorder.add(op, time.monotonic() - started, error)
        raise OpError(error)

    async def call(
        self, tag: str, attrs: dict[str, str] | None = None, *children: etree._Element,
        text: str | None = None, op: str | None = None,
    ) -> Reply:  # fmt: skip
        async def work() -> Reply:
            assert self.conn is not None
            element = xml.element(tag, {"id": self.conn.next_id(), **(attrs or {})}, text)
            for child in children:
                element.append(child)
            reply = await self.conn.send(element)
            if not reply.ok:
                raise OpError(error_text(reply))
            return reply

        result: Reply = await self.timed(op or tag, work)
        return result

    def on_message(self, message: etree._Element) -> None:
        recorder = self.world.recorder
        recorder.unsolicited[message.tag] += 1
        if message.tag == "readIM":
            text = message.text or ""
            if text.startswith(IM_PREFIX):
                with contextlib.suppress(ValueError):
                    sent = float(text[len(IM_PREFIX) :].split()[0])
                    recorder.add("imDelivery", time.monotonic() - sent)
        elif message.tag == "errorIM":
            recorder.add("sendIM", 0.0, f"errorIM {message.get('errorNum')}: "
                                        f"{message.get('errorText')}")  # fmt: skip
        elif message.tag == "folderReport" and message.get("mode") == "notify":
            self.sync_due = self.sync_due or message.get("folder") == "INBOX"

    # -- life

    async def connect(self) -> None:
        """Log in and set up: calendar (events at the first login), INBOX, SIP binding."""
        world = self.world
        address, password = self.account.address, self.account.password
        if self.conn is not None:
            await self.disconnect(polite=False)

        async def login() -> Conn:
            if self.transport == "http":
                return await HttpConn.login(
                    world.http, world.http_base, address, password, self.on_message
                )
            return await TcpConn.login(world.tcp_port, address, password, self.on_message)

        self.conn = await self.timed("login", login)
        await self.call("calendarOpen", {"calendar": "Main", "mailbox": "Calendar"})
        if address not in world.seeded:
            world.seeded.add(address)
            await self.seed_calendar()
        await self.open_inbox()
        if self.peer is not None and self.transport == "tcp":
            await self.call("signalBind", {}, sdp())
            self.bound = True
        self.set_up = True

    async def seed_calendar(self) -> None:
        tag = f"{self.index}-{self.rng.getrandbits(32):08x}"
        events = [
            "<summary>Weekly sync</summary><dtstart>20240101T090000Z</dtstart>"
            "<dtend>20240101T093000Z</dtend><rrule>FREQ=WEEKLY;COUNT=52</rrule>",
            "<summary>Planning</summary><dtstart>20240315T130000Z</dtstart>"
            "<dtend>20240315T150000Z</dtend>",
            "<summary>Review</summary><dtstart>20240910T100000Z</dtstart>"
            "<dtend>20240910T110000Z</dtend>",
        ]
        for n, body in enumerate(events):
            await self.call(
                "calendarPublish", {"calendar": "Main", "sendRequests": "no"},
                vevent(body, f"load-{tag}-{n}@devstack"),
            )  # fmt: skip

    async def open_inbox(self) -> None:
        fields = [xml.element("field", text=name) for name in FIELDS]
        reply = await self.call(
            "folderOpen",
            {"folder": "INBOX", "mailbox": "INBOX", "sortField": "INTERNALDATE",
             "sortOrder": "desc"},
            *fields,
        )  # fmt: skip
        self.uids.clear()
        self.messages = 0
        for report in reply.of("folderReport"):
            self.messages = int(report.get("messages", "0"))
        if self.messages:
            await self.browse("INBOX", 0, self.messages - 1)

    async def browse(self, folder: str, low: int, high: int) -> None:
        rows = xml.element("index", {"from": str(low), "till": str(high)})
        reply = await self.call("folderBrowse", {"folder": folder}, rows)
        if folder == "INBOX":
            for report in reply.of("folderReport"):
                with contextlib.suppress(ValueError):
                    self.uids.add(int(report.get("UID", "")))

    async def disconnect(self, *, polite: bool = True) -> None:
        conn, self.conn = self.conn, None
        self.bound = self.set_up = False
        if conn is None:
            return
        if polite and not conn.broken:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await conn.send(xml.element("bye", {"id": conn.next_id()}))
        await conn.close()

    async def run(self, start_at: float) -> None:
        """Log in at `start_at` (monotonic), then work until stopped."""
        world = self.world
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        while not world.stop.is_set():
            try:
                if self.conn is not None and self.conn.broken:
                    world.recorder.add("session", 0.0, "connection to the bridge lost")
                    await self.disconnect(polite=False)
                if not self.set_up:
                    await self.connect()
                else:
                    await self.step()
            except OpError:
                pass  # recorded; the loop goes on (a session not set up starts again)
            finally:
                self.ready.set()  # the ramp waits for the first attempt, good or not
            await self.think()

    async def think(self) -> None:
        pause = min(self.rng.expovariate(1 / self.world.think), 5 * self.world.think)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.world.stop.wait(), pause)

    def pick(self) -> str:
        if self.sync_due:
            return "folderSync"
        mix = self.world.mix
        while True:
            op = self.rng.choices(list(mix), weights=list(mix.values()))[0]
            if op == "sendIM" and not (self.bound and self.peer is not None and self.peer.bound):
                continue
            if op == "relogin" and self.peer is not None:
                continue
            if op in ("folderRead", "messageMark") and not self.uids:
                continue
            return op

    async def step(self) -> None:
        op = self.pick()
        self.sequence += 1
        if op == "noop":
            await self.call("noop")
        elif op == "folderBrowse":
            low = self.rng.randrange(max(1, self.messages - BROWSE_ROWS + 1))
            high = min(self.messages, low + BROWSE_ROWS) - 1
            if high >= low:
                await self.browse("INBOX", low, high)
            else:
                await self.call("noop")
        elif op == "folderSync":
            self.sync_due = False
            reply = await self.call("folderSync", {"folder": "INBOX"})
            for report in reply.of("folderReport"):
                mode, uid = report.get("mode"), int(report.get("UID", "0") or 0)
                if mode == "added":
                    self.uids.add(uid)
                elif mode == "removed":
                    self.uids.discard(uid)
                if report.get("messages") is not None:
                    self.messages = int(report.get("messages", "0"))
        elif op == "folderRead":
            uid = self.rng.choice(sorted(self.uids))
            await self.call("folderRead", {"folder": "INBOX", "UID": str(uid)})
        elif op == "messageMark":
            uid = self.rng.choice(sorted(self.uids))
            flag = self.rng.choice(("Seen", "Flagged", "-Seen", "-Flagged"))
            await self.call(
                "messageMark", {"folder": "INBOX", "flags": flag},
                xml.element("UID", text=str(uid)),
            )  # fmt: skip
        elif op == "findEvents":
            day = self.rng.randrange(0, 350)
            start = time.strftime("%Y%m%dT000000", time.gmtime(1704067200 + day * 86400))
            till = time.strftime("%Y%m%dT000000", time.gmtime(1704067200 + (day + 14) * 86400))
            await self.call("findEvents", {"calendar": "Main", "timeFrom": start,
                                           "timeTill": till})  # fmt: skip
        elif op == "sendIM":
            assert self.peer is not None
            await self.call(
                "sendIM", {"peer": self.peer.account.address},
                text=f"{IM_PREFIX}{time.monotonic():.6f} #{self.sequence}",
            )  # fmt: skip
        elif op == "folderOpen":
            fields = [xml.element("field", text=name) for name in FIELDS]
            reply = await self.call(
                "folderOpen", {"folder": "aux", "mailbox": "Sent", "sortField": "Date",
                               "sortOrder": "desc"}, *fields,
            )  # fmt: skip
            count = max((int(r.get("messages", "0")) for r in reply.of("folderReport")), default=0)
            try:
                if count:
                    await self.browse("aux", 0, min(count, 10) - 1)
            finally:
                await self.call("folderClose", {"folder": "aux"})
        elif op == "messageAppend":
            mail = email(self.account.address, self.rcpt.address, f"Draft {self.sequence}", BODY)
            await self.call("messageAppend", {"targetMailbox": "Drafts", "flags": "Draft"}, mail)
        elif op == "messageSubmit":
            subject = f"Load {self.index}.{self.sequence}"
            mail = email(self.account.address, self.rcpt.address, subject, BODY)
            await self.call("messageSubmit", {"targetMailbox": "Sent", "flags": "Seen"}, mail)
        elif op == "mailboxList":
            await self.call("mailboxList", {"filter": "*"})
        elif op == "relogin":
            await self.disconnect()
            await self.connect()
        else:
            raise ValueError(f"unknown operation {op}")


# --------------------------------------------------------------------------- the run


@dataclass
class Monitor:
    """Samples the bridge process every second; backends and sessions on demand."""

    pid: int
    stack: devstack.DevStack
    http_base: str
    http: aiohttp.ClientSession
    samples: list[Sample] = field(default_factory=list)
    own: list[tuple[float, float]] = field(default_factory=list)  # (t, this process's CPU s)
    machine: list[tuple[float, int, int]] = field(default_factory=list)  # (t, busy, total)

    async def run(self) -> None:
        while True:
            try:
                self.take()
            except OSError:  # /proc/<pid> is gone: the bridge exited
                return
            await asyncio.sleep(1.0)

    def take(self) -> Sample:
        sample = proc_sample(self.pid)
        self.samples.append(sample)
        self.own.append((sample.t, cpu_seconds("self")))
        self.machine.append((sample.t, *machine_jiffies()))
        return sample

    def span(self, t0: float, t1: float) -> dict[str, Any]:
        """Memory and CPU between two moments (the samples nearest to them)."""
        inside = [s for s in self.samples if t0 <= s.t <= t1] or self.samples[-1:]
        first, last = inside[0], inside[-1]
        wall = max(1e-9, last.t - first.t)
        own = [c for t, c in self.own if t0 <= t <= t1] or [0.0]
        mach = [(b, tot) for t, b, tot in self.machine if t0 <= t <= t1] or [(0, 1)]
        busy = (mach[-1][0] - mach[0][0]) / max(1, mach[-1][1] - mach[0][1])
        slope = linear_slope([(s.t / 60, s.rss_mb) for s in inside])
        half = linear_slope([(s.t / 60, s.rss_mb) for s in inside[len(inside) // 2 :]])
        return {
            "rss_first_mb": round(first.rss_mb, 1),
            "rss_peak_mb": round(max(s.rss_mb for s in inside), 1),
            "rss_last_mb": round(last.rss_mb, 1),
            "rss_slope_mb_per_min": round(slope, 3),
            "rss_slope_second_half_mb_per_min": round(half, 3),
            "cpu_seconds": round(last.cpu_s - first.cpu_s, 2),
            "cpu_cores": round((last.cpu_s - first.cpu_s) / wall, 3),
            "generator_cores": round((own[-1] - own[0]) / wall, 3),
            "machine_busy": round(busy, 3),
            "wall_seconds": round(wall, 1),
        }

    async def backends(self) -> dict[str, Any]:
        ports = self.stack.ports
        counts = established_to((ports.imap, ports.submission, ports.caldav))
        processes, private_mb = await asyncio.to_thread(
            dovecot_imap_processes, self.stack.dovecot.pid
        )
        return {
            "imap_connections": counts[ports.imap],
            "smtp_connections": counts[ports.submission],
            "caldav_connections": counts[ports.caldav],
            "doveadm_who": await self.doveadm_who(),
            "dovecot_imap_processes": processes,
            "dovecot_imap_private_mb": round(private_mb, 1),
        }

    async def doveadm_who(self) -> int | None:
        """Connections Dovecot's anvil counts (`doveadm who`), all users together."""
        try:
            process = await asyncio.create_subprocess_exec(
                "doveadm", "-c", str(self.stack.dovecot.conf_path), "who",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(process.communicate(), 20)
        except (OSError, TimeoutError):
            return None
        total = 0
        for line in out.decode(errors="replace").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 1 and fields[1].isdigit():
                total += int(fields[1])
        return total

    async def bridge_sessions(self) -> dict[str, int]:
        """The bridge's own live-session gauge, by transport (from /metrics)."""
        try:
            async with self.http.get(f"{self.http_base}/metrics") as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return {}
        found: dict[str, int] = {}
        for match in re.finditer(r'^ximss_bridge_sessions\{transport="([^"]+)"\} (\S+)$', text,
                                 re.MULTILINE):  # fmt: skip
            found[match.group(1)] = int(float(match.group(2)))
        return found


def bridge_config(stack: devstack.DevStack, root: Path, args: argparse.Namespace,
                  ports: list[int], sessions: int) -> str:  # fmt: skip
    """The dev stack's bridge config with production timers and room for the sessions."""
    text = stack.bridge_config_toml(ports[0], http_port=ports[1], xmap_port=ports[2])
    replacements = [
        (r'^path = ".*bridge-state\.sqlite"$', f'path = "{root / "bridge-state.sqlite"}"'),
        (r"^poll_seconds = .*$", "poll_seconds = 30"),
        (r"^registration_check_seconds = .*$", "registration_check_seconds = 30"),
    ]
    for pattern, new in replacements:
        text, n = re.subn(pattern, new, text, count=1, flags=re.MULTILINE)
        if n != 1:
            raise RuntimeError(f"the dev stack's bridge config has no line {pattern!r}")
    text = text.replace(
        "[server]\n",
        f'[server]\nlog_level = "{args.log_level}"\nshutdown_grace = 1.0\n', 1,
    )  # fmt: skip
    return str(text) + (
        f"\n[limits]\nmax_connections = {max(2000, 3 * sessions)}\n"
        f"backend_timeout = {args.op_timeout}\n"
    )


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


async def start_bridge(
    config_path: Path, log_path: Path, http_base: str
) -> asyncio.subprocess.Process:
    script = Path(sys.executable).parent / "ximss-bridge"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bridge"]
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *command, "--config", str(config_path), "serve",
            stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=str(config_path.parent),
        )  # fmt: skip
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the bridge exited ({process.returncode}):\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{http_base}/healthz") as response:
                    if response.status == 200:
                        return process
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the bridge did not become healthy in 60 s")
            await asyncio.sleep(0.2)


async def stop_bridge(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGINT)  # drain without grace
    try:
        await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        process.kill()
        await process.wait()


def parse_mix(text: str | None) -> dict[str, float]:
    mix = dict(MIX)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        op, _, weight = item.partition("=")
        if op.strip() not in MIX:
            raise SystemExit(f"--mix: unknown operation {op!r} (known: {', '.join(MIX)})")
        mix[op.strip()] = float(weight)
    return {op: w for op, w in mix.items() if w > 0}


class Run:
    def __init__(self, args: argparse.Namespace, stack: devstack.DevStack, root: Path) -> None:
        self.args = args
        self.stack = stack
        self.root = root
        self.recorder = Recorder()
        self.sessions: list[Session] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.accounts: list[devstack.Account] = []
        self.log: list[dict[str, Any]] = []  # interval reports

    def say(self, text: str) -> None:
        print(text, flush=True)

    async def main(self, counts: list[int]) -> dict[str, Any]:
        args, stack = self.args, self.stack
        top = max(counts)
        raise_fd_limit(IMAP_PER_SESSION * top + 2 * top + 1000)
        t0 = time.monotonic()

        def make(_: int) -> devstack.Account:
            account = stack.new_account("load")
            stack.fill_maildir(account.address, "INBOX", args.messages)
            return account

        with ThreadPoolExecutor(8) as pool:  # file writes and fsyncs overlap
            self.accounts = list(pool.map(make, range(top)))
        self.say(f"{top} accounts with {args.messages} messages each in "
                 f"{time.monotonic() - t0:.1f} s")  # fmt: skip
        ports = devstack.free_ports(3)
        http_base = f"http://127.0.0.1:{ports[1]}"
        config_path = self.root / "bridge.toml"
        config_path.write_text(bridge_config(stack, self.root, args, ports, top))
        bridge = await start_bridge(config_path, self.root / "bridge.log", http_base)
        self.say(f"bridge pid {bridge.pid} on 127.0.0.1:{ports[0]} (HTTP {ports[1]}), "
                 f"log {self.root / 'bridge.log'}")  # fmt: skip
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=args.op_timeout + 30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            world = World(
                tcp_port=ports[0], http_base=http_base, http=http, recorder=self.recorder,
                mix=parse_mix(args.mix), think=args.think, op_timeout=args.op_timeout,
            )  # fmt: skip
            monitor = Monitor(bridge.pid, stack, http_base, http)
            monitor.take()
            await asyncio.sleep(0.5)
            start = monitor.take()
            sampler = asyncio.create_task(monitor.run())
            try:
                steps = await self.steps(world, monitor, counts, bridge)
            finally:
                world.stop.set()
                sampler.cancel()
                await self.finish(world)
                try:
                    after_logout = proc_sample(bridge.pid)
                except OSError:
                    after_logout = Sample(time.monotonic(), 0.0, 0.0)
                await stop_bridge(bridge)
        result = {
            "bridge_rss_before_sessions_mb": round(start.rss_mb, 1),
            "bridge_rss_after_logout_mb": round(after_logout.rss_mb, 1),
            "steps": steps,
            "total": self.recorder.total.summary(),
            "errors_total": sum(self.recorder.total.errors.values()),
            "unsolicited": dict(self.recorder.unsolicited),
            "intervals": self.log,
        }
        for step in steps:
            step["memory_per_session_mb"] = round(
                (step["resources"]["rss_last_mb"] - start.rss_mb) / step["sessions"], 3
            )
        return result

    def add_sessions(self, world: World, count: int, ramp: float) -> list[Session]:
        """Start sessions up to `count` in all, spread over `ramp` seconds."""
        have = len(self.sessions)
        http_every = round(1 / self.args.http_share) if self.args.http_share > 0 else 0
        new: list[Session] = []
        now = time.monotonic()
        for i in range(have, count):
            account = self.accounts[i]
            rcpt = self.accounts[(i + 1) % len(self.accounts)] if count > 1 else account
            transport = "http" if http_every and i % http_every == http_every - 1 else "tcp"
            session = Session(world, i, account, rcpt, transport, self.args.seed * 100003 + i)
            # Pairs for instant messages: consecutive TCP sessions.
            lonely = [s for s in self.sessions if s.transport == "tcp" and s.peer is None]
            if transport == "tcp" and not self.args.no_im and lonely and lonely[-1].index == i - 1:
                session.peer, lonely[-1].peer = lonely[-1], session
            self.sessions.append(session)
            new.append(session)
        # The two of a pair log in at about the same moment.
        for n, session in enumerate(new):
            at = now + ramp * (n // 2 * 2) / max(1, len(new))
            self.tasks.append(asyncio.create_task(session.run(at)))
        return new

    async def steps(
        self,
        world: World,
        monitor: Monitor,
        counts: list[int],
        bridge: asyncio.subprocess.Process,
    ) -> list[dict[str, Any]]:
        args = self.args
        results: list[dict[str, Any]] = []
        for count in counts:
            added = count - len(self.sessions)
            ramp = args.ramp if args.ramp is not None else max(1.0, added / 10)
            self.say(f"--- {count} sessions: starting {added} over {ramp:.0f} s")
            self.recorder.phase = Stats()
            ramp_started = time.monotonic()
            new = self.add_sessions(world, count, ramp)
            # Pairs bind in the same moment; the ramp ends when every new session is ready.
            waiting = asyncio.gather(*(s.ready.wait() for s in new))
            try:
                await asyncio.wait_for(waiting, ramp + max(60.0, added * 0.5))
            except TimeoutError:
                self.say("!!! not every session logged in; measuring anyway")
            ramp_stats = self.recorder.phase.summary()
            ramp_wall = time.monotonic() - ramp_started
            self.say(f"    ramp done in {ramp_wall:.1f} s, "
                     f"{ramp_stats['all']['errors']} errors")  # fmt: skip
            seconds = args.seconds if not args.find_limit else args.step_seconds
            t0 = time.monotonic()
            self.recorder.phase = Stats()
            self.recorder.window = Stats()
            deadline = t0 + seconds
            while (now := time.monotonic()) < deadline:
                await asyncio.sleep(min(args.interval, deadline - now))
                if bridge.returncode is not None:
                    raise RuntimeError(f"the bridge exited ({bridge.returncode}): see its log")
                if time.monotonic() < deadline - 1:
                    await self.interval_report(monitor, t0, count)
            t1 = time.monotonic()
            summary = self.recorder.phase.summary(t1 - t0)
            step: dict[str, Any] = {
                "sessions": count,
                "ramp": {"seconds": round(ramp_wall, 1), **ramp_stats["all"],
                         "first_errors": {op: r["first_errors"] for op, r in ramp_stats["ops"].items()
                                          if "first_errors" in r}},
                "measured": summary,
                "resources": monitor.span(t0, t1),
                "backends": await monitor.backends(),
                "live_sessions": sum(1 for s in self.sessions if s.conn is not None),
                "bridge_sessions": await monitor.bridge_sessions(),
                "transports": dict(Counter(s.transport for s in self.sessions)),
                "im_pairs": sum(1 for s in self.sessions if s.peer is not None) // 2,
            }  # fmt: skip
            step["resources"]["rss_after_ramp_mb"] = step["resources"]["rss_first_mb"]
            results.append(step)
            self.say(self.describe_step(step))
            if args.find_limit and self.degraded(step):
                self.say(f"    p95 past {args.p95_limit_ms} ms or errors at {count} sessions: "
                         "stopping")  # fmt: skip
                break
        return results

    def degraded(self, step: dict[str, Any]) -> bool:
        measured = step["measured"]["all"]
        return bool(measured["p95_ms"] > self.args.p95_limit_ms or measured["errors"]
                    or step["ramp"]["errors"])  # fmt: skip

    async def interval_report(self, monitor: Monitor, t0: float, count: int) -> None:
        window = self.recorder.window
        self.recorder.window = Stats()
        t = time.monotonic()
        summary = window.summary(t - window.started)
        resources = monitor.span(window.started, t)
        backends = await monitor.backends()
        live = sum(1 for s in self.sessions if s.conn is not None)
        bridge_sessions = await monitor.bridge_sessions()
        self.log.append({"at_s": round(t - t0, 1), "sessions": count, "window": summary,
                         "resources": resources, "backends": backends, "live_sessions": live,
                         "bridge_sessions": bridge_sessions})  # fmt: skip
        a = summary["all"]
        self.say(
            f"[{t - t0:6.0f} s, {count} sessions] {a['ops_per_s']:.1f} ops/s, p50 {a['p50_ms']} "
            f"p95 {a['p95_ms']} p99 {a['p99_ms']} max {a['max_ms']} ms, {a['errors']} errors | "
            f"bridge RSS {resources['rss_last_mb']} MB, {resources['cpu_cores']} cores | "
            f"IMAP {backends['imap_connections']} | live {live} (bridge {bridge_sessions})"
        )
        if not self.args.brief:
            self.say(format_table(summary))

    def describe_step(self, step: dict[str, Any]) -> str:
        r, b = step["resources"], step["backends"]
        return "\n".join([
            f"=== {step['sessions']} sessions ({step['transports']}, {step['im_pairs']} IM pairs), "
            f"think {self.args.think} s, measured {step['measured']['seconds']} s",
            format_table(step["measured"]),
            f"  bridge RSS: {r['rss_first_mb']} MB after ramp, peak {r['rss_peak_mb']}, end "
            f"{r['rss_last_mb']}; slope {r['rss_slope_mb_per_min']:+.3f} MB/min "
            f"({r['rss_slope_second_half_mb_per_min']:+.3f} over the second half)",
            f"  bridge CPU: {r['cpu_seconds']} s in {r['wall_seconds']} s = {r['cpu_cores']} cores "
            f"(generator {r['generator_cores']}, machine busy {r['machine_busy']:.0%})",
            f"  backends: IMAP {b['imap_connections']} (doveadm who {b['doveadm_who']}, "
            f"{b['dovecot_imap_processes']} imap processes, {b['dovecot_imap_private_mb']} MB "
            f"private), SMTP {b['smtp_connections']}, CalDAV {b['caldav_connections']}",
            f"  live sessions: {step['live_sessions']} (bridge: {step['bridge_sessions']}); "
            f"ramp {step['ramp']['seconds']} s, {step['ramp']['count']} requests, "
            f"{step['ramp']['errors']} errors {step['ramp']['first_errors'] or ''}",
        ])  # fmt: skip

    async def finish(self, world: World) -> None:
        """Stop the loops, let last IMs land, log every session out."""
        world.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.sleep(0.5)
        await asyncio.gather(*(s.disconnect() for s in self.sessions), return_exceptions=True)


def final_text(args: argparse.Namespace, result: dict[str, Any]) -> str:
    lines = [
        "",
        "================ summary",
        f"bridge RSS before sessions {result['bridge_rss_before_sessions_mb']} MB, after all "
        f"logged out {result['bridge_rss_after_logout_mb']} MB",
        f"errors in the whole run (ramps included): {result['errors_total']}",
        f"unsolicited messages: {result['unsolicited']}",
    ]
    for name, problems in result.get("log_problems", {}).items():
        lines.append(f"{name} log: {problems['count']} warnings/errors")
        lines.extend(f"  {text}" for text in problems["first"])
    if args.find_limit:
        lines.append(f"{'sessions':>9}{'ops/s':>9}{'p50':>8}{'p95':>8}{'p99':>8}{'errors':>8}"
                     f"{'cores':>8}{'ses/core':>9}{'RSS MB':>9}{'MB/ses':>8}{'IMAP':>6}")  # fmt: skip
        good = None
        for step in result["steps"]:
            a, r = step["measured"]["all"], step["resources"]
            per_core = step["sessions"] / r["cpu_cores"] if r["cpu_cores"] else float("inf")
            lines.append(
                f"{step['sessions']:>9}{a['ops_per_s']:>9.1f}{a['p50_ms']:>8.1f}{a['p95_ms']:>8.1f}"
                f"{a['p99_ms']:>8.1f}{a['errors'] + step['ramp']['errors']:>8}"
                f"{r['cpu_cores']:>8.2f}{per_core:>9.0f}{r['rss_last_mb']:>9.1f}"
                f"{step['memory_per_session_mb']:>8.2f}{step['backends']['imap_connections']:>6}"
            )
            ok = not (a["p95_ms"] > args.p95_limit_ms or a["errors"] or step["ramp"]["errors"])
            if ok:
                good = step
        if good is None:
            lines.append(f"limit: below {result['steps'][0]['sessions']} sessions")
        else:
            r = good["resources"]
            per_core = good["sessions"] / max(r["cpu_cores"], 1e-9)
            above = (
                " (no step degraded: the limit is higher)" if good is result["steps"][-1] else ""
            )
            lines.append(
                f"limit: {good['sessions']} sessions held p95 <= {args.p95_limit_ms} ms with no "
                f"errors{above}, the bridge using {r['cpu_cores']} cores ({per_core:.0f} sessions "
                "per core at this mix and think time)"
            )
            result["limit"] = {
                "sessions": good["sessions"],
                "cores": r["cpu_cores"],
                "sessions_per_core": round(per_core),
                "degraded_above": good is not result["steps"][-1],
            }
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions")
    parser.add_argument("--seconds", type=float, default=60, help="measured phase, seconds")
    parser.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds to start the sessions over (default sessions/10)",
    )
    parser.add_argument("--report", type=Path, help="write the full report as JSON here")
    parser.add_argument(
        "--think",
        type=float,
        default=3.0,
        help="mean think time between a session's operations, seconds",
    )
    parser.add_argument("--messages", type=int, default=30, help="messages per INBOX")
    parser.add_argument(
        "--http-share",
        type=float,
        default=0.1,
        help="share of sessions on the HTTP binding (0: none)",
    )
    parser.add_argument("--no-im", action="store_true", help="no signalBind and no sendIM")
    parser.add_argument("--mix", help="operation weights to change, e.g. relogin=0,sendIM=20")
    parser.add_argument(
        "--op-timeout",
        type=float,
        default=60.0,
        help="seconds after which an operation counts as failed",
    )
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between reports")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-level", default="INFO", help="the bridge's log level")
    parser.add_argument(
        "--brief",
        action="store_true",
        help="one line per interval, without the per-operation table",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs)")
    parser.add_argument(
        "--find-limit",
        action="store_true",
        help="step the session count up and report where p95 degrades",
    )
    parser.add_argument(
        "--steps", default="50,100,200,400,800", help="--find-limit: session counts"
    )
    parser.add_argument(
        "--step-seconds", type=float, default=60.0, help="--find-limit: measured seconds per step"
    )
    parser.add_argument(
        "--p95-limit-ms",
        type=float,
        default=500.0,
        help="--find-limit: p95 latency (all requests) a step may reach",
    )
    return parser.parse_args(argv)  # fmt: skip


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(n) for n in args.steps.split(",")] if args.find_limit else [args.sessions]
    if any(n < 1 for n in counts) or counts != sorted(counts):
        raise SystemExit("session counts must be positive and ascending")
    root = Path(tempfile.mkdtemp(prefix="xb-load-"))
    root.chmod(0o755)
    limit = max(devstack.IMAP_PROCESS_LIMIT, IMAP_PER_SESSION * max(counts) + 200)
    finished = False
    try:
        stack = devstack.DevStack(root / "stack", devstack.free_stack_ports(),
                                  imap_process_limit=limit)  # fmt: skip
        t0 = time.monotonic()
        with stack:
            print(f"dev stack up in {time.monotonic() - t0:.1f} s, root {root}", flush=True)
            result = await Run(args, stack, root).main(counts)
            result["log_problems"] = log_problems({
                "bridge": root / "bridge.log",
                "dovecot": stack.dovecot.log_path,
                "postfix": stack.postfix.log_path,
            })  # fmt: skip
        finished = True
    finally:
        if args.keep or not finished:
            print(f"logs and mail kept in {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    result["config"] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
    } | {"mix": parse_mix(args.mix), "dovecot_imap_process_limit": limit, "cpus": os.cpu_count()}
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_event_loop_policy()
    result = asyncio.run(amain(args))
    print(final_text(args, result), flush=True)
    if args.report:
        args.report.write_text(json.dumps(result, indent=2) + "\n")
        print(f"report: {args.report}")
    return 0 if result["errors_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
