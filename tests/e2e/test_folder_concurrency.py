"""Two sessions of one user and a plain IMAP client change INBOX at once for a minute; afterwards
every folder, kept only from its own reports, equals a fresh folderOpen of the same view."""

from __future__ import annotations

import asyncio
import os
import random
import time

from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.folderkit import BehindTheBack, ClientView, call, fields, message, uids

DURATION = float(os.environ.get("XB_CONCURRENCY_SECONDS", "60"))
VIEWS: list[dict[str, str]] = [
    {"sortField": "Date"},
    {"sortField": "Subject", "sortOrder": "desc"},
    {"sortField": "UID", "filter": "Unseen", "filterField": "FLAGS"},
    {"sortField": "From", "filter": "Flagged,Seen", "filterField": "FLAGS"},
]


async def session_worker(
    client: XimssClient, views: list[ClientView], stop: float, seed: int
) -> int:
    rng = random.Random(seed)
    operations = 0
    while time.monotonic() < stop:
        view = rng.choice(views)
        known = [u for u in view.uids if u is not None]
        action = rng.random()
        if action < 0.4 or not known:
            await view.sync()
        elif action < 0.8:
            flag = rng.choice(["Seen", "Unseen", "Flagged", "Unflagged"])
            picked = rng.sample(known, min(len(known), rng.randint(1, 5)))
            await call(
                client, "messageMark", {"folder": view.folder, "flags": flag}, *uids(*picked)
            )
        else:
            await view.browse_all()
        operations += 1
        await asyncio.sleep(rng.uniform(0, 0.05))
    return operations


async def imap_worker(other: BehindTheBack, stop: float, seed: int) -> int:
    rng = random.Random(seed)
    operations = 0
    while time.monotonic() < stop:
        present = await other.run("INBOX", "uids")
        assert isinstance(present, list)
        action = rng.random()
        if action < 0.4 or len(present) < 20:
            await other.run("INBOX", "append", "INBOX", message(f"Soak {seed} {operations}"))
        elif action < 0.7:
            target = ",".join(str(u) for u in rng.sample(present, 3))
            await other.run("INBOX", "store", target, rng.choice(["+FLAGS", "-FLAGS"]),
                            rng.choice(["(\\Seen)", "(\\Flagged)"]))  # fmt: skip
        else:
            await other.run("INBOX", "expunge", ",".join(str(u) for u in rng.sample(present, 2)))
        operations += 1
        await asyncio.sleep(rng.uniform(0.02, 0.1))
    return operations


async def open_views(client: XimssClient, prefix: str) -> list[ClientView]:
    views = []
    for number, spec in enumerate(VIEWS):
        view = ClientView(client, f"{prefix}{number}")
        await view.open("INBOX", *fields("FLAGS", "Subject"), **spec)
        await view.browse_all()
        views.append(view)
    return views


async def test_concurrent_changes_leave_every_folder_exact(
    bridge_port: int, stack: devstack.DevStack
) -> None:
    account = stack.new_account("soak")
    stack.fill_maildir(account.address, "INBOX", 200)
    clients = [await XimssClient.connect("127.0.0.1", bridge_port) for _ in range(2)]
    try:
        for client in clients:
            await client.login(account.address, account.password)
        views = [await open_views(client, f"s{n}-") for n, client in enumerate(clients)]
        stop = time.monotonic() + DURATION
        counts = await asyncio.gather(
            session_worker(clients[0], views[0], stop, 1),
            session_worker(clients[1], views[1], stop, 2),
            imap_worker(BehindTheBack(stack.ports.imap, account), stop, 3),
        )
        print(
            f"\noperations in {DURATION:.0f} s: sessions {counts[0]}, {counts[1]}; imap {counts[2]}"
        )
        await asyncio.sleep(1.0)  # let the last IDLE pushes arrive
        for client, client_views in zip(clients, views, strict=True):
            for number, view in enumerate(client_views):
                await view.sync()
                fresh = ClientView(client, f"fresh-{view.folder}")
                await fresh.open("INBOX", *fields("FLAGS", "Subject"), **VIEWS[number])
                expected = await fresh.browse_all()
                assert await view.browse_all() == expected, view.folder
                assert None not in view.uids
    finally:
        for client in clients:
            await client.close()
