"""UID FETCH 1:* (FLAGS) of a large INBOX: a plain socket beside the bridge's IMAP engine.

Run on demand (not in CI): `.venv/bin/python tests/bench/bench_imap_fetch.py [COUNT]`.
Starts its own dev stack, fills one mailbox with COUNT messages (default 100,000), then times
both clients over the same work, alternating, and prints medians and the ratio.
"""

from __future__ import annotations

import asyncio
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

from adapters.imap.client import ImapClient  # noqa: E402
from adapters.imap.wire import Raw  # noqa: E402

ROUNDS = 7


async def plain_socket(port: int, user: str, password: str) -> float:
    """Bytes only: read until the tagged OK, no parsing (the floor any client pays)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(f'a LOGIN "{user}" "{password}"\r\nb SELECT INBOX\r\n'.encode())
    while not (await reader.readline()).startswith(b"b "):
        pass
    started = time.perf_counter()
    writer.write(b"c UID FETCH 1:* (FLAGS)\r\n")
    buffer = b""
    while not buffer.endswith(b"\r\n") or b"\r\nc OK" not in buffer[-200:]:
        buffer += await reader.read(1 << 18)
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


async def engine(port: int, user: str, password: str) -> float:
    client = await ImapClient.connect("127.0.0.1", port)
    await client.login(user, password)
    await client.execute("SELECT", "INBOX")
    started = time.perf_counter()
    result = await client.execute("UID FETCH", Raw("1:*"), Raw("(FLAGS)"), wants=("FETCH",))
    elapsed = time.perf_counter() - started
    assert result.of("FETCH")
    await client.close()
    return elapsed


async def main(count: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="xb-bench-"))
    root.chmod(0o755)
    try:
        with devstack.DevStack(root, devstack.free_stack_ports()) as stack:
            account = stack.new_account("bench")
            stack.fill_maildir(account.address, "INBOX", count)
            port = stack.ports.imap
            await engine(port, account.address, account.password)  # warm Dovecot's index
            direct, ours = [], []
            for _ in range(ROUNDS):
                direct.append(await plain_socket(port, account.address, account.password))
                ours.append(await engine(port, account.address, account.password))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    d, o = statistics.median(direct), statistics.median(ours)
    print(f"UID FETCH 1:* (FLAGS), {count} messages, median of {ROUNDS}:")
    print(f"  plain socket (bytes only) {d * 1000:8.1f} ms")
    print(f"  bridge IMAP engine        {o * 1000:8.1f} ms")
    print(f"  ratio engine/socket       {o / d:8.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
