"""Folder operations on a large INBOX through the bridge, beside the same work done over raw IMAP.

Run on demand (not in CI)::

    .venv/bin/python tests/bench/bench_folders.py [COUNT] [--rounds N] [--profile]

Starts its own dev stack in a temp root, fills one fresh account's INBOX with COUNT messages
(default 100,000) and runs a Bridge in this process. Every scenario is timed as the client sees
it (request written to response read) and beside it the direct IMAP work for the same result,
measured in the same run by a raw-socket IMAP client (tests/bench/rawimap.py); rounds alternate
bridge/direct and the table shows medians. Timings are taken with tracemalloc off; the memory
phase comes last and uses RSS (and, separately, tracemalloc).

`--profile` adds a cProfile breakdown of one folderOpen, folderBrowse and folderSync of each kind
(outside the timed rounds, so it does not disturb them).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import io
import pstats
import shutil
import signal
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "deploy"))

import devstack  # noqa: E402
from lxml import etree  # noqa: E402
from rawimap import RawImap, sequence_set  # noqa: E402
from rawximss import RawXimss  # noqa: E402

from adapters.protocols import ViewQuery  # noqa: E402
from bridge import config, xml  # noqa: E402
from bridge.app import Bridge, install_event_loop_policy  # noqa: E402
from bridge.client import Reply, XimssClient  # noqa: E402

try:  # folder views kept in the bridge's state store (absent before that existed)
    from bridge.session import persist
except ImportError:
    persist = None  # type: ignore[assignment]

ROUNDS = 7
RESTART_ROUNDS = 5
FIELDS = ("FLAGS", "From", "Subject", "Date")
STATUS = "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"
HEADER_FETCH = "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"
# Ten folders on one INBOX for the memory phase: every sort field the server sorts, both ways.
TEN_SORTS = [
    (f, o) for f in ("Date", "Subject", "From", "SIZE", "INTERNALDATE") for o in ("asc", "desc")
]
NOTIFY_TIMEOUT = 10.0


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    scenario: str
    bridge: list[float]  # seconds, one per round
    direct: list[float]
    target: str = "-"
    # (bridge ms, direct ms) -> passed; None: no target, informational.
    check: Callable[[float, float], bool] | None = None

    @property
    def bridge_ms(self) -> float:
        return statistics.median(self.bridge) * 1000

    @property
    def direct_ms(self) -> float:
        return statistics.median(self.direct) * 1000 if self.direct else float("nan")

    @property
    def verdict(self) -> str:
        if self.check is None:
            return "-"
        return "PASS" if self.check(self.bridge_ms, self.direct_ms) else "FAIL"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def spread(n: int, count: int, salt: int) -> list[int]:
    """n UIDs spread over 1..count; different salts (below count // n) never share a UID."""
    stride = max(1, count // n)
    return [1 + (k * stride + salt) % count for k in range(n)]


def summary_of(modes: Sequence[str | None]) -> str:
    counts: dict[str | None, int] = {}
    for mode in modes:
        counts[mode] = counts.get(mode, 0) + 1
    return ", ".join(f"{n} {mode}" for mode, n in counts.items()) or "none"


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def new_message(n: int) -> bytes:
    return (
        f"From: Bench Writer <writer@example.org>\r\nTo: bench@example.test\r\n"
        f"Subject: Bench new message {n}\r\nDate: Mon, 02 Mar 2026 10:{n % 60:02d}:00 +0000\r\n"
        f"Message-ID: <bench-new-{n}-{time.time_ns()}@bench>\r\n\r\nnew message {n}\r\n"
    ).encode()


# --------------------------------------------------------------------------- XIMSS helpers


def request(
    client: XimssClient,
    tag: str,
    attrs: dict[str, str],
    children: Sequence[tuple[str, dict[str, str] | None, str | None]] = (),
) -> etree._Element:
    element = xml.element(tag, {"id": client.next_id(), **attrs})
    for child_tag, child_attrs, text in children:
        xml.sub(element, child_tag, child_attrs, text)
    return element


async def timed(client: XimssClient, element: etree._Element) -> tuple[float, Reply]:
    started = time.perf_counter()
    reply = await client.send(element)
    elapsed = time.perf_counter() - started
    if not reply.ok:
        raise RuntimeError(f"{element.tag} failed: {xml.serialize(reply.response).decode()}")
    return elapsed, reply


def open_request(
    client: XimssClient,
    folder: str,
    sort_field: str,
    order: str = "asc",
    fields: Sequence[str] = FIELDS,
) -> etree._Element:
    attrs = {"folder": folder, "mailbox": "INBOX", "sortField": sort_field, "sortOrder": order}
    return request(client, "folderOpen", attrs, [("field", None, f) for f in fields])


def browse_request(client: XimssClient, folder: str, low: int, high: int) -> etree._Element:
    return request(
        client,
        "folderBrowse",
        {"folder": folder},
        [("index", {"from": str(low), "till": str(high)}, None)],
    )


def init_messages(reply: Reply) -> int:
    (init,) = reply.of("folderReport")
    assert init.get("mode") == "init", xml.serialize(init)
    return int(init.get("messages", "-1"))


async def profiled(label: str, work: Callable[[], Awaitable[object]]) -> None:
    """Run `work` under cProfile and print where the time went (this thread: bridge and
    client code both; time spent waiting in the event loop is not counted)."""
    profiler = cProfile.Profile()
    profiler.enable()
    await work()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(14)
    stats.sort_stats("cumulative").print_stats(22)
    print(f"\n===== profile: {label} =====")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()), flush=True)


async def wait_notify(client: XimssClient, folder: str, timeout: float = NOTIFY_TIMEOUT) -> float:
    started = time.perf_counter()
    deadline = started + timeout
    while True:
        message = await client.unsolicited(max(0.01, deadline - time.perf_counter()))
        if (
            message.tag == "folderReport"
            and message.get("folder") == folder
            and message.get("mode") == "notify"
        ):
            return time.perf_counter() - started


async def drain(client: XimssClient) -> None:
    """Forget queued unsolicited messages (late notifies of work already synced)."""
    while True:
        try:
            await client.unsolicited(0.001)
        except TimeoutError:
            return


# --------------------------------------------------------------------------- the benchmark


class Bench:
    def __init__(
        self, stack: devstack.DevStack, account: devstack.Account, count: int, rounds: int
    ) -> None:
        self.stack = stack
        self.account = account
        self.count = count
        self.rounds = rounds
        self.settings = config.loads(stack.bridge_config_toml(0, http_port=0))
        self.state_path: Path | None = None
        if hasattr(config, "StateSettings"):
            # Never the repository's .devstack file the generated config names.
            self.state_path = stack.root / "bridge-state.sqlite"
            state = config.StateSettings(path=str(self.state_path))
            self.settings = dataclasses.replace(self.settings, state=state)
        self.uidvalidity = 0
        self.bridge: Bridge | None = None
        self.clients: list[XimssClient] = []
        self.raws: list[RawImap] = []
        self.rows: list[Row] = []
        self.messages = count  # grows with each APPEND
        self.appended = 0
        self.notes: list[str] = []
        self.warnings: dict[str, str] = {}
        self.profiling = False

    # -- lifetimes ------------------------------------------------------------------------

    async def start_bridge(self) -> Bridge:
        bridge = Bridge(self.settings)
        try:
            await bridge.start()
        except BaseException:
            await bridge.stop()
            raise
        self.bridge = bridge
        gc.freeze()  # as `serve` does once started
        return bridge

    async def stop_bridge(self) -> None:
        for client in list(self.clients):
            await self.end_session(client, wait=False)
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            await bridge.stop()

    async def raw(self, mailbox: str | None = "INBOX") -> RawImap:
        client = await RawImap.connect(
            self.stack.ports.imap, self.account.address, self.account.password, mailbox
        )
        self.raws.append(client)
        return client

    async def close_raw(self, client: RawImap) -> None:
        self.raws.remove(client)
        await client.close()

    async def session(self) -> XimssClient:
        assert self.bridge is not None and self.bridge.tcp is not None
        client = await XimssClient.connect("127.0.0.1", self.bridge.tcp.port)
        self.clients.append(client)
        await client.login(self.account.address, self.account.password)
        return client

    async def end_session(self, client: XimssClient, wait: bool = True) -> None:
        """Close the connection; with `wait`, until the bridge has ended the session (its
        folders' IMAP connections closed), so its teardown overlaps no later measurement."""
        self.clients.remove(client)
        await client.close()
        if wait and self.bridge is not None:
            live = len(self.clients)
            async with asyncio.timeout(10):
                while len(self.bridge.services.sessions) > live:
                    await asyncio.sleep(0.005)

    async def close_all(self) -> None:
        try:
            await self.stop_bridge()
        finally:
            for raw in list(self.raws):
                await self.close_raw(raw)

    # -- helpers --------------------------------------------------------------------------

    async def sync(self, client: XimssClient, folder: str) -> tuple[float, Reply]:
        return await timed(client, request(client, "folderSync", {"folder": folder}))

    async def settle(self, client: XimssClient, folder: str) -> None:
        """Sync untimed and drop queued notifies: the next change gets a fresh notify."""
        await self.sync(client, folder)
        await drain(client)

    def warn(self, scenario: str, text: str) -> None:
        """An unexpected result that does not spoil the timing: reported, not fatal."""
        if scenario not in self.warnings:
            self.warnings[scenario] = text
            print(f"  WARNING {scenario}: {text}", flush=True)

    async def forget_view(self, sort_field: str, descending: bool = False) -> None:
        """Drop the folder view the bridge stored for this order, so the next open is cold."""
        if persist is None or self.bridge is None or not hasattr(self.bridge.services, "state"):
            return
        key = persist.view_key(
            self.account.address, "INBOX", self.uidvalidity, ViewQuery(sort_field, descending)
        )
        if key is not None:
            await self.bridge.services.state.delete(key)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        d = f"{row.direct_ms:9.1f}" if row.direct else "        -"
        ratio = f"{row.bridge_ms / row.direct_ms:7.2f}" if row.direct else "      -"
        print(
            f"  -> {row.scenario}: bridge {row.bridge_ms:9.1f} ms  direct {d} ms  "
            f"ratio {ratio}  {row.verdict}",
            flush=True,
        )

    # -- scenarios ------------------------------------------------------------------------

    async def cold_open(self, direct: RawImap, sort_field: str, sort_key: str, label: str) -> None:
        """A new session each round: folderOpen = new IMAP connection, SELECT, STATUS, SORT."""
        bridge_t: list[float] = []
        direct_t: list[float] = []
        same_t: list[float] = []
        sort_cmd = f"UID SORT ({sort_key}) UTF-8 ALL"
        esort = await direct.has("ESORT")
        # What the bridge sends for a folderOpen (adapters/imap/mailbox.py), on a new connection.
        bridge_sort = f"UID SORT RETURN (ALL) ({sort_key}) UTF-8 ALL" if esort else sort_cmd
        sizes = (0, 0)
        for _ in range(self.rounds):
            client = await self.session()
            await self.forget_view(sort_field)
            elapsed, reply = await timed(client, open_request(client, "cold", sort_field))
            assert init_messages(reply) == self.messages, (init_messages(reply), self.messages)
            bridge_t.append(elapsed)
            await self.end_session(client)

            status_s, _ = await direct.timed(STATUS)
            sort_s, size = await direct.timed(sort_cmd)
            direct_t.append(status_s + sort_s)

            started = time.perf_counter()
            fresh = await self.raw(None)
            for command in ("ENABLE QRESYNC", "SELECT INBOX (CONDSTORE)", "NOOP", STATUS, "NOOP"):
                await fresh.command(command)
            sizes = (size, len(await fresh.command(bridge_sort)))
            same_t.append(time.perf_counter() - started)
            await self.close_raw(fresh)
        print(
            f"  direct response bytes: UID SORT {sizes[0]}, the bridge's {bridge_sort!r} {sizes[1]}"
        )
        if sort_key == "DATE":  # the target: at most 1.5x STATUS + UID SORT (DATE)
            self.add(Row(f"{label} (cold)", bridge_t, direct_t, "ratio <= 1.5",
                         lambda b, d: b / d <= 1.5))  # fmt: skip
        else:
            self.add(Row(f"{label} (cold)", bridge_t, direct_t))
        self.add(Row(f"{label[:2]}  vs the bridge's IMAP commands, raw", bridge_t, same_t))

    async def restart_open(self, writer: RawImap) -> None:
        """Stop the bridge, 10 flag changes meanwhile, start a new one, time folderOpen."""
        bridge_t: list[float] = []
        direct_t: list[float] = []
        direct = await self.raw()
        for r in range(RESTART_ROUNDS):
            await self.stop_bridge()
            # Direct, with no bridge running: what a warm reopen needs at least, STATUS and
            # CHANGEDSINCE of 10 changes.
            since = await direct.modseq()
            for uid in spread(10, self.count, 200 + 2 * r):
                await writer.command(f"UID STORE {uid} +FLAGS.SILENT (\\Answered)")
            status_s, _ = await direct.timed(STATUS)
            changed_s, _ = await direct.timed(f"UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE {since})")
            direct_t.append(status_s + changed_s)

            for uid in spread(10, self.count, 201 + 2 * r):
                await writer.command(f"UID STORE {uid} +FLAGS.SILENT (\\Answered)")
            await self.start_bridge()
            client = await self.session()
            elapsed, reply = await timed(client, open_request(client, "warm", "Date"))
            assert init_messages(reply) == self.messages
            bridge_t.append(elapsed)
        await self.close_raw(direct)
        self.add(
            Row(
                "2 folderOpen Date, warm after restart",
                bridge_t,
                direct_t,
                "< 50 ms",
                lambda b, _d: b < 50,
            )
        )
        if self.profiling:
            await self.stop_bridge()
            for uid in spread(10, self.count, 199):
                await writer.command(f"UID STORE {uid} +FLAGS.SILENT (\\Answered)")
            await self.start_bridge()
            client = await self.session()
            await profiled(
                "folderOpen Date, warm after restart",
                lambda: timed(client, open_request(client, "warm", "Date")),
            )

    async def browse(self, anchor: XimssClient, direct: RawImap) -> None:
        """Both sides raw sockets (a request written, bytes read up to its end): the XIMSS
        side by RawXimss on a folder of its own, beside UID FETCH of the same headers. The
        XimssClient, which parses every message into a tree, is timed too, for information."""
        assert self.bridge is not None and self.bridge.tcp is not None
        raw = await RawXimss.connect(
            self.bridge.tcp.port, self.account.address, self.account.password
        )
        fields_xml = "".join(f"<field>{f}</field>" for f in FIELDS)
        await raw.call("folderOpen", 'folder="raw" mailbox="INBOX" sortField="Date"', fields_xml)
        fresh_b: list[float] = []
        again_b: list[float] = []
        parsed_b: list[float] = []
        fresh_d: list[float] = []
        again_d: list[float] = []
        bridge_base = int(self.count * 0.2)
        direct_base = int(self.count * 0.6)
        for r in range(self.rounds):
            low = bridge_base + 100 * r
            window = f'<index from="{low}" till="{low + 49}"/>'
            elapsed, reply = await raw.timed("folderBrowse", 'folder="raw"', window)
            assert reply.count(b"<folderReport") == 50 and reply.count(b"<Subject>") == 50, reply[
                :300
            ]
            fresh_b.append(elapsed)
            elapsed, reply = await raw.timed("folderBrowse", 'folder="raw"', window)
            assert reply.count(b"<folderReport") == 50
            again_b.append(elapsed)
            elapsed, parsed = await timed(anchor, browse_request(anchor, "anchor", low, low + 49))
            assert len(parsed.of("folderReport")) == 50
            parsed_b.append(elapsed)

            uids = sequence_set(range(direct_base + 100 * r + 1, direct_base + 100 * r + 51))
            fresh_s, _ = await direct.timed(f"UID FETCH {uids} {HEADER_FETCH}")
            again_s, _ = await direct.timed(f"UID FETCH {uids} {HEADER_FETCH}")
            fresh_d.append(fresh_s)
            again_d.append(again_s)
        await raw.close()

        def half(b: float, d: float) -> bool:
            return b / d <= 0.5

        self.add(Row("4a folderBrowse 50, fresh rows", fresh_b, fresh_d))
        self.add(Row("4b folderBrowse 50, from the cache", again_b, again_d, "ratio <= 0.5", half))
        self.add(Row("4b   the same, XimssClient parsing", parsed_b, again_d))
        self.notes.append(
            "4: both sides raw sockets (RawXimss, RawImap): bytes written, bytes read up to the "
            "end of the reply. 4a fetches rows the cache does not hold yet; the target is for "
            "rows served from the cache (4b)."
        )

    async def sync_new_message(self, anchor: XimssClient, direct: RawImap, writer: RawImap) -> None:
        bridge_t: list[float] = []
        direct_t: list[float] = []
        notify_t: list[float] = []
        await self.settle(anchor, "anchor")
        for _ in range(self.rounds):
            self.appended += 1
            await writer.append("INBOX", new_message(self.appended))
            self.messages += 1
            notify_t.append(await wait_notify(anchor, "anchor"))
            await asyncio.sleep(0.02)
            elapsed, reply = await self.sync(anchor, "anchor")
            modes = [rep.get("mode") for rep in reply.of("folderReport")]
            if modes != ["added"]:
                self.warn("5", f"expected one 'added' report, got {summary_of(modes)}")
            bridge_t.append(elapsed)
            await drain(anchor)

            self.appended += 1
            await writer.append("INBOX", new_message(self.appended))
            self.messages += 1
            await wait_notify(anchor, "anchor")  # the bridge's watcher is done with it
            await asyncio.sleep(0.02)
            noop_s, _ = await direct.timed("NOOP")
            direct_t.append(noop_s)
            await self.settle(anchor, "anchor")
        print(f"  notify after APPEND: median {ms(statistics.median(notify_t))} ms")
        beyond = (statistics.median(bridge_t) - statistics.median(direct_t)) * 1000
        self.notes.append(f"5: folderSync after 1 new message = one NOOP + {beyond:.1f} ms")
        self.add(
            Row(
                "5 folderSync after 1 new message",
                bridge_t,
                direct_t,
                "< NOOP + 10 ms",
                lambda b, d: b - d < 10,
            )
        )

    async def sync_flag_changes(
        self, anchor: XimssClient, direct: RawImap, writer: RawImap
    ) -> None:
        bridge_t: list[float] = []
        direct_t: list[float] = []
        await self.settle(anchor, "anchor")
        for r in range(self.rounds):
            uids = sequence_set(spread(100, self.count, 2 * r))
            await writer.command(f"UID STORE {uids} +FLAGS.SILENT (\\Answered)")
            await wait_notify(anchor, "anchor")
            await asyncio.sleep(0.02)
            elapsed, reply = await self.sync(anchor, "anchor")
            modes = [rep.get("mode") for rep in reply.of("folderReport")]
            if modes != ["updated"] * 100:
                self.warn(
                    "6", f"expected 100 'updated' reports, got {summary_of(modes)} in round {r + 1}"
                )
            bridge_t.append(elapsed)
            await drain(anchor)

            since = await direct.modseq()
            uids = sequence_set(spread(100, self.count, 2 * r + 1))
            await writer.command(f"UID STORE {uids} +FLAGS.SILENT (\\Answered)")
            await wait_notify(anchor, "anchor")
            await asyncio.sleep(0.02)
            fetch_s, _ = await direct.timed(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})")
            direct_t.append(fetch_s)
            await self.settle(anchor, "anchor")
        self.add(Row("6 folderSync after 100 flag changes", bridge_t, direct_t))

    async def mark(self, anchor: XimssClient, direct: RawImap, writer: RawImap) -> None:
        bridge_t: list[float] = []
        direct_t: list[float] = []
        size = 1000 if self.count >= 2000 else self.count // 2
        # A folder of its own that does not show FLAGS: its syncs (untimed, to keep the
        # watcher's work out of the timed rounds) then never carry thousands of reports.
        marks = "marks"
        _, reply = await timed(anchor, open_request(anchor, marks, "Date", fields=("Subject",)))
        assert init_messages(reply) == self.messages

        async def changed() -> None:
            """Wait until the bridge's watcher has seen the change just made, then sync."""
            await wait_notify(anchor, marks)
            await asyncio.sleep(0.02)
            await self.settle(anchor, marks)

        async def clear(uids: str) -> None:
            await writer.command(f"UID STORE {uids} -FLAGS.SILENT (\\Flagged)")
            # Something was flagged in the block: a fill flags 1 in 10, a round flags all.
            await changed()

        await self.settle(anchor, marks)
        for r in range(self.rounds):
            low = (int(self.count * 0.3) + r * size) % (self.count - size)
            # The view is by Date: index i is UID i + 1 for the filled messages.
            ends = request(
                anchor,
                "folderBrowse",
                {"folder": marks},
                [("index", None, str(low)), ("index", None, str(low + size - 1))],
            )
            _, reply = await timed(anchor, ends)
            got = [int(rep.get("UID", "0")) for rep in reply.of("folderReport")]
            assert got == [low + 1, low + size], got
            uids = f"{low + 1}:{low + size}"

            await clear(uids)
            element = request(
                anchor,
                "messageMark",
                {"folder": marks, "flags": "Flagged"},
                [("index", {"from": str(low), "till": str(low + size - 1)}, None)],
            )
            elapsed, _ = await timed(anchor, element)
            bridge_t.append(elapsed)
            await changed()

            await clear(uids)
            await direct.command("NOOP")  # take the clear's updates, as the bridge's sync did
            store_s, _ = await direct.timed(f"UID STORE {uids} +FLAGS.SILENT (\\Flagged)")
            direct_t.append(store_s)
            await changed()
        await timed(anchor, request(anchor, "folderClose", {"folder": marks}))
        await drain(anchor)
        self.add(Row(f"7 messageMark {size} (index range)", bridge_t, direct_t))

    async def cache_memory(self) -> None:
        """Bytes the shared row cache holds per cached message, after browsing every row of
        the INBOX once (three text fields plus FLAGS, as in every scenario)."""
        assert self.bridge is not None and self.bridge.tcp is not None
        cache = self.bridge.services.rows
        raw = await RawXimss.connect(
            self.bridge.tcp.port, self.account.address, self.account.password
        )
        fields_xml = "".join(f"<field>{f}</field>" for f in FIELDS)
        await raw.call("folderOpen", 'folder="all" mailbox="INBOX" sortField="Date"', fields_xml)
        started = time.perf_counter()
        for low in range(0, self.messages, 2000):
            window = f'<index from="{low}" till="{min(low + 1999, self.messages - 1)}"/>'
            await raw.call("folderBrowse", 'folder="all"', window)
        browse_all = time.perf_counter() - started
        await raw.close()
        rows, held = len(cache), cache.footprint()
        print(
            f"  row cache: {rows} messages, {held / 1e6:.1f} MB, {held / max(rows, 1):.0f} B per "
            f"cached message (browsing all {self.messages} rows took {browse_all:.1f} s)"
        )
        self.notes.append(
            f"cache: {held / max(rows, 1):.0f} B per cached message ({rows} rows, target <= 150)"
        )

    async def memory(self) -> None:
        """RSS growth of this process (bridge in-process) for one and for ten 100k folders."""
        assert self.bridge is not None
        for client in list(self.clients):
            await self.end_session(client)
        # Dovecot builds a sort index on a field's first SORT (2 s for DISPLAYFROM on 100k).
        warm = await self.raw()
        for key in ("DATE", "SUBJECT", "DISPLAYFROM", "SIZE", "ARRIVAL"):
            await warm.command(f"UID SORT ({key}) UTF-8 ALL")
        await self.close_raw(warm)
        await asyncio.sleep(0.5)  # watchers of closed folders stop in the background
        gc.collect()
        base = rss_bytes()
        client = await self.session()
        opens: list[float] = []
        field, order = TEN_SORTS[0]
        elapsed, _ = await timed(client, open_request(client, "m0", field, order))
        opens.append(elapsed)
        await asyncio.sleep(0.3)
        gc.collect()
        one = rss_bytes() - base
        for n, (field, order) in enumerate(TEN_SORTS[1:], start=1):
            elapsed, _ = await timed(client, open_request(client, f"m{n}", field, order))
            opens.append(elapsed)
        gc.collect()
        ten = rss_bytes() - base
        await self.end_session(client)
        await asyncio.sleep(0.5)

        # The same with tracemalloc: the Python heap the folders keep (not timed).
        gc.collect()
        tracemalloc.start()
        client = await self.session()
        await timed(client, open_request(client, "m0", *TEN_SORTS[0]))
        gc.collect()
        traced_one = tracemalloc.get_traced_memory()[0]
        for n, (field, order) in enumerate(TEN_SORTS[1:], start=1):
            await timed(client, open_request(client, f"m{n}", field, order))
        gc.collect()
        traced_ten = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        await self.end_session(client)

        n = self.messages
        print(f"\nMemory (bridge in this process; {n} messages per folder):")
        print(f"  RSS delta, 1 folder open      {one / 1e6:8.1f} MB  {one / n:7.1f} B/message")
        print(
            f"  RSS delta, 10 folders open    {ten / 1e6:8.1f} MB  {ten / (10 * n):7.1f} "
            "B/message/folder"
        )
        print(
            f"  tracemalloc, 1 folder open    {traced_one / 1e6:8.1f} MB  "
            f"{traced_one / n:7.1f} B/message"
        )
        print(
            f"  tracemalloc, 10 folders open  {traced_ten / 1e6:8.1f} MB  "
            f"{traced_ten / (10 * n):7.1f} B/message/folder"
        )
        sorts = ", ".join(f"{f} {o} {ms(t)}" for (f, o), t in zip(TEN_SORTS, opens, strict=True))
        print(f"  the ten folderOpens (ms, tracemalloc off): {sorts}")
        self.notes.append(
            f"memory: 1 folder +{one / 1e6:.1f} MB RSS ({one / n:.0f} B/msg), "
            f"10 folders +{ten / 1e6:.1f} MB RSS ({ten / (10 * n):.0f} B/msg/folder)"
        )

    async def profile_browse(self, anchor: XimssClient) -> None:
        """Right after the browse rounds, before any change makes the cache refresh first."""
        low = int(self.count * 0.8)
        await profiled(
            "folderBrowse 50 fresh rows",
            lambda: timed(anchor, browse_request(anchor, "anchor", low, low + 49)),
        )
        await profiled(
            "folderBrowse 50 rows from the cache",
            lambda: timed(anchor, browse_request(anchor, "anchor", low, low + 49)),
        )

    async def profile(self, writer: RawImap) -> None:
        """cProfile of one of each operation; the whole process (bridge and client) is seen.
        A new session and folder: the profiled syncs start from a fresh open."""
        client = await self.session()
        await self.forget_view("Subject")
        await profiled(
            "folderOpen Subject (cold)",
            lambda: timed(client, open_request(client, "p2", "Subject")),
        )
        await self.forget_view("Date")
        await profiled(
            "folderOpen Date (cold)", lambda: timed(client, open_request(client, "p", "Date"))
        )
        await asyncio.sleep(0.3)
        await drain(client)
        self.appended += 1
        await writer.append("INBOX", new_message(self.appended))
        self.messages += 1
        await wait_notify(client, "p")
        await asyncio.sleep(0.02)
        await profiled("folderSync after 1 new message", lambda: self.sync(client, "p"))
        await drain(client)
        await writer.command(
            f"UID STORE {sequence_set(spread(100, self.count, 40))} +FLAGS.SILENT (\\Answered)"
        )
        await wait_notify(client, "p")
        await asyncio.sleep(0.02)
        await profiled("folderSync after 100 flag changes", lambda: self.sync(client, "p"))
        await self.end_session(client)

    # -- the run --------------------------------------------------------------------------

    async def run(self, profile: bool) -> None:
        self.profiling = profile
        started = time.perf_counter()
        await self.start_bridge()
        writer = await self.raw()
        direct = await self.raw()
        # Warm Dovecot's index and sort caches for both sides, then keep one session with the
        # folder open for the whole phase: its watcher (IDLE) stays up across the cold opens.
        for key in ("DATE", "SUBJECT"):
            await direct.command(f"UID SORT ({key}) UTF-8 ALL")
        self.uidvalidity = (await direct.status("INBOX", "UIDVALIDITY"))["UIDVALIDITY"]
        anchor = await self.session()
        elapsed, reply = await timed(anchor, open_request(anchor, "anchor", "Date"))
        assert init_messages(reply) == self.messages
        print(f"first folderOpen (Dovecot warm-up) {ms(elapsed)} ms", flush=True)
        await asyncio.sleep(0.5)

        print("1. folderOpen by Date, cold (new session each round)", flush=True)
        await self.cold_open(direct, "Date", "DATE", "1 folderOpen Date")
        print("3. folderOpen by Subject, cold", flush=True)
        await self.cold_open(direct, "Subject", "SUBJECT", "3 folderOpen Subject")
        print("4. folderBrowse 50 rows", flush=True)
        await self.browse(anchor, direct)
        if profile:
            await self.profile_browse(anchor)
        print("5. folderSync after 1 new message", flush=True)
        await self.sync_new_message(anchor, direct, writer)
        print("6. folderSync after 100 flag changes", flush=True)
        await self.sync_flag_changes(anchor, direct, writer)
        print("7. messageMark 1,000 messages", flush=True)
        await self.mark(anchor, direct, writer)
        if profile:
            await self.profile(writer)
        await self.close_raw(direct)
        print("2. folderOpen by Date, warm after restart", flush=True)
        await self.restart_open(writer)
        print("8. memory", flush=True)
        await self.cache_memory()
        await self.memory()
        self.notes.append(f"bench phases took {time.perf_counter() - started:.0f} s")

    def table(self) -> str:
        head = ("scenario", "bridge ms", "direct ms", "ratio", "target", "result")
        rows = [head]
        for row in self.rows:
            direct = f"{row.direct_ms:.1f}" if row.direct else "-"
            ratio = f"{row.bridge_ms / row.direct_ms:.2f}" if row.direct else "-"
            rows.append(
                (row.scenario, f"{row.bridge_ms:.1f}", direct, ratio, row.target, row.verdict)
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        for n, r in enumerate(rows):
            cells = [r[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(r[1:4], widths[1:4], strict=True)
            ]
            cells += [r[4].ljust(widths[4]), r[5].ljust(widths[5])]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


async def main(count: int, rounds: int, profile: bool) -> None:
    root = devstack.make_temp_root("xb-bench-")
    bench: Bench | None = None
    try:
        with devstack.DevStack(root, devstack.free_stack_ports()) as stack:
            account = stack.new_account("bench")
            started = time.perf_counter()
            stack.fill_maildir(account.address, "INBOX", count)
            print(f"filled INBOX with {count} messages in {time.perf_counter() - started:.1f} s")
            loop = type(asyncio.get_running_loop()).__module__
            print(
                f"event loop: {loop}; {rounds} rounds per scenario (medians), "
                f"{RESTART_ROUNDS} for the restart",
                flush=True,
            )
            bench = Bench(stack, account, count, rounds)
            try:
                await bench.run(profile)
            finally:
                await bench.close_all()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"\nFolders on a {count}-message INBOX: bridge (client-side time, XIMSS over "
        "loopback) vs direct raw-socket IMAP, medians"
    )
    print(bench.table())
    if bench.state_path is not None and persist is not None:
        persistence = (
            "  - The bridge keeps folder views in its state store (SQLite, in the temp root): the\n"
            "    cold rounds delete the stored view first; the restart rounds use it. Message\n"
            "    summaries are cached in memory only.\n"
        )
    else:
        persistence = (
            "  - The bridge has no persistent summary/view cache yet: every folderOpen, also the\n"
            "    one after a restart, re-SORTs the whole mailbox on a new IMAP connection.\n"
        )
    print(
        "\nNotes:\n"
        + persistence
        + "  - 1/3 direct = STATUS + UID SORT on a selected connection. The 'bridge's IMAP commands'\n"
        "    rows time what the bridge sends for a folderOpen on a new raw connection (connect,\n"
        "    LOGIN, ENABLE, SELECT, NOOP, STATUS, NOOP, ESORT RETURN (ALL)): the bridge's own\n"
        "    cost is the difference. ESORT RETURN (ALL) of a sort in UID order is '1:N'.\n"
        "  - Timings were taken with tracemalloc off; the bridge runs in this process and\n"
        "    event loop, behind a real XIMSS TCP connection on loopback.\n"
        "  - 2 direct = STATUS + UID FETCH 1:* (FLAGS) (CHANGEDSINCE) after 10 flag changes.\n"
        "  - 5 target: bridge - direct NOOP < 10 ms.\n"
        "  - 6 bridge also FETCHes the headers of the 100 updated rows (FLAGS is a shown field)."
    )
    for note in bench.notes:
        print(f"  - {note}")
    for scenario, text in bench.warnings.items():
        print(f"  - WARNING {scenario}: {text}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("count", nargs="?", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--profile", action="store_true", help="cProfile one of each operation")
    args = parser.parse_args()
    # SIGTERM unwinds like ^C, so the bridge and Dovecot are stopped and the root removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    install_event_loop_policy()
    asyncio.run(main(args.count, args.rounds, args.profile))
