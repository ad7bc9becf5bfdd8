"""XMAP LISTFOLDER of a large folder beside the IMAP fetch it is built from.

Run on demand (not in CI): `.venv/bin/python tests/bench/bench_xmap.py [COUNT]`.
Starts its own dev stack and a bridge, fills INBOX with COUNT messages (default 10,000), then
times, alternating: the raw IMAP fetch of what a listing needs (flags, size, date, the header
fields and BODYSTRUCTURE, bytes only over a plain socket: the floor), and XMAP LISTFOLDER over
the bridge's TCP listener (handles known). The first listing, which gives every message its
handle, is timed once. Prints medians and ratios.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "deploy"))

import devstack  # noqa: E402

from bridge import config  # noqa: E402
from bridge.app import Bridge  # noqa: E402
from bridge.xmap import commands as c  # noqa: E402
from bridge.xmap.client import XmapClient  # noqa: E402

ROUNDS = 5
FETCH = (
    b"c UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE BODYSTRUCTURE "
    b"BODY.PEEK[HEADER.FIELDS (Date From To Subject X-XMAP-File X-XMAP-File-Length)])\r\n"
)


async def raw_fetch(port: int, user: str, password: str) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    await reader.readline()
    writer.write(f'a LOGIN "{user}" "{password}"\r\nb SELECT INBOX\r\n'.encode())
    while not (await reader.readline()).startswith(b"b "):
        pass
    started = time.perf_counter()
    writer.write(FETCH)
    buffer = b""
    while b"\r\nc OK" not in buffer[-300:]:
        buffer += await reader.read(1 << 18)
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


async def listing(client: XmapClient, count: int) -> float:
    started = time.perf_counter()
    answer = await client.call(c.ListFolder("INBOX"))
    elapsed = time.perf_counter() - started
    assert len(answer.first) == count, len(answer.first)
    return elapsed


async def main(count: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="xb-bench-"))
    root.chmod(0o755)
    try:
        with devstack.DevStack(root, devstack.free_stack_ports()) as stack:
            account = stack.new_account("bench")
            stack.fill_maildir(account.address, "INBOX", count)
            loaded = config.loads(stack.bridge_config_toml(0, http_port=0, xmap_port=0))
            state = config.StateSettings(path=str(root / "state.sqlite"))
            async with Bridge(dataclasses.replace(loaded, state=state)) as bridge:
                assert bridge.xmap is not None
                port = stack.ports.imap
                await raw_fetch(port, account.address, account.password)  # warm Dovecot's cache
                client = await XmapClient.connect("127.0.0.1", bridge.xmap.port)
                await client.login(account.address, account.password)
                first = await listing(client, count)
                direct, ours = [], []
                for _ in range(ROUNDS):
                    direct.append(await raw_fetch(port, account.address, account.password))
                    ours.append(await listing(client, count))
                await client.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    d, o = statistics.median(direct), statistics.median(ours)
    print(f"LISTFOLDER INBOX, {count} messages, median of {ROUNDS}:")
    print(f"  raw IMAP fetch (bytes only)      {d * 1000:9.1f} ms")
    print(f"  XMAP LISTFOLDER, handles known   {o * 1000:9.1f} ms")
    print(f"  XMAP LISTFOLDER, first (gives)   {first * 1000:9.1f} ms (once)")
    print(f"  ratio listing/raw fetch          {o / d:9.2f}")
    print(f"  ratio first listing/raw fetch    {first / d:9.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
