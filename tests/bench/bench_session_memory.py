"""Bridge memory per logged-in XIMSS session: the figure the deployment manifests are sized by.

Run on demand (not in CI): `.venv/bin/python tests/bench/bench_session_memory.py [SESSIONS]`
(default 200; about 30 s). Starts its own dev stack and a bridge in this process, makes one
account per session with MESSAGES messages in its INBOX, and reads this process's resident set
(`VmRSS` in /proc/self/status, so only the bridge's memory: the clients run in a child process)
at three points, after a warm-up of a few sessions that loads everything loaded once:

1. baseline: the warm bridge with no session;
2. SESSIONS sessions logged in over XIMSS TCP (each holds its IMAP connection);
3. the same sessions after `mailboxList` and a `folderOpen` of INBOX sorted by Date with a
   `folderBrowse` of its rows (the shared row cache then holds every message).

Prints MB per 100 sessions for 2 and for 3. Keep SESSIONS at 300 or fewer: a session with a
folder open holds three IMAP connections (its own, the folder's, the shared IDLE one), and the dev
stack's Dovecot runs one process per connection, at most 1024. Python seldom gives memory back to the system, so
the figures are what a bridge keeps for that many sessions, not what it frees after them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "deploy"))

MESSAGES = 50  # per INBOX
WARM_UP = 5  # sessions logged in and out before the baseline
CONCURRENCY = 20  # logins under way at once


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmRSS in /proc/self/status")


# --------------------------------------------------------------------------- the client side


async def clients(port: int, accounts: list[tuple[str, str]]) -> None:
    """Child process: log every account in, report, open folders, report, wait, log out."""
    from bridge import xml
    from bridge.client import XimssClient

    limit = asyncio.Semaphore(CONCURRENCY)
    sessions: list[XimssClient] = []

    async def login(user: str, password: str) -> None:
        async with limit:
            client = await XimssClient.connect("127.0.0.1", port)
            await client.login(user, password)
            sessions.append(client)

    async def open_folder(client: XimssClient) -> None:
        async with limit:
            await client.call("mailboxList", {"filter": "*"})
            await client.call(
                "folderOpen",
                {"folder": "in", "mailbox": "INBOX", "sortField": "Date", "sortOrder": "desc"},
            )
            rows = xml.element("index", {"from": "0", "till": str(MESSAGES - 1)})
            await client.call("folderBrowse", {"folder": "in"}, children=[rows])

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await asyncio.gather(*(login(user, password) for user, password in accounts))
    print("logged-in", flush=True)
    await stdin.readline()
    await asyncio.gather(*(open_folder(client) for client in sessions))
    print("folders-open", flush=True)
    await stdin.readline()
    for client in sessions:
        await client.call("bye")
        await client.close()


# --------------------------------------------------------------------------- the bridge side


async def measure(count: int) -> None:
    import devstack

    from bridge import config
    from bridge.app import Bridge
    from bridge.client import XimssClient

    root = Path(tempfile.mkdtemp(prefix="xb-mem-"))
    root.chmod(0o755)
    try:
        with devstack.DevStack(root, devstack.free_stack_ports()) as stack:
            accounts = [stack.new_account("mem") for _ in range(count + WARM_UP)]
            for account in accounts:
                stack.fill_maildir(account.address, "INBOX", MESSAGES)
            loaded = config.loads(stack.bridge_config_toml(0, http_port=0, xmap_port=0))
            state = config.StateSettings(path=str(root / "state.sqlite"))
            async with Bridge(dataclasses.replace(loaded, state=state)) as bridge:
                assert bridge.tcp is not None
                port = bridge.tcp.port
                for account in accounts[:WARM_UP]:
                    client = await XimssClient.connect("127.0.0.1", port)
                    await client.login(account.address, account.password)
                    await client.call(
                        "folderOpen", {"folder": "w", "mailbox": "INBOX", "sortField": "Date"}
                    )
                    await client.call("bye")
                    await client.close()
                await asyncio.sleep(0.5)
                gc.collect()
                baseline = rss_mb()
                child = await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--clients",
                    str(port),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    env={"PYTHONPATH": str(REPO)},
                )
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write(
                    json.dumps([(a.address, a.password) for a in accounts[WARM_UP:]]).encode()
                    + b"\n"
                )
                await child.stdin.drain()
                marks: dict[str, float] = {}
                live: dict[str, int] = {}
                for mark in ("logged-in", "folders-open"):
                    line = (await child.stdout.readline()).decode().strip()
                    if line != mark:
                        raise RuntimeError(f"client process said {line!r}, not {mark!r}")
                    await asyncio.sleep(0.5)
                    gc.collect()
                    marks[mark] = rss_mb()
                    live[mark] = len(list(bridge.services.sessions.all()))
                    child.stdin.write(b"\n")
                    await child.stdin.drain()
                await child.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    per100 = {k: (v - baseline) * 100 / count for k, v in marks.items()}
    print(f"bridge RSS, {count} XIMSS TCP sessions (one account each, {MESSAGES}-message INBOX):")
    print(f"  baseline (warm, no session)           {baseline:8.1f} MB")
    print(f"  {count} sessions logged in               {marks['logged-in']:8.1f} MB")
    print(f"  + mailboxList, folderOpen, browse     {marks['folders-open']:8.1f} MB")
    print(f"  per 100 sessions, logged in           {per100['logged-in']:8.2f} MB")
    print(f"  per 100 sessions, with a folder open  {per100['folders-open']:8.2f} MB")
    print(f"  live sessions at the two marks        {live['logged-in']:8d} {live['folders-open']}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--clients":
        accounts = [tuple(pair) for pair in json.loads(sys.stdin.readline())]
        asyncio.run(clients(int(sys.argv[2]), accounts))  # type: ignore[arg-type]
        return
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 200))


if __name__ == "__main__":
    main()
