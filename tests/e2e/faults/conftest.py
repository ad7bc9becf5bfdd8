"""Backend faults (issue 11): a dev stack of our own, whose servers the tests kill and restart,
and bridges in this process with short backend timeouts.

The stack is not the session's shared `stack`: killing its servers would break other tests.
Every test that kills a server starts it again in a `finally`, so the next test finds it up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import config
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import devstack

# Seconds a backend operation may take in these tests (the default is 60).
BACKEND_TIMEOUT = 3.0


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[devstack.DevStack]:
    root = Path(tempfile.mkdtemp(prefix="xb-faults-"))
    root.chmod(0o755)
    try:
        with devstack.DevStack(root, devstack.free_stack_ports()) as running:
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fault_settings(
    stack: devstack.DevStack,
    *,
    imap_port: int | None = None,
    smtp_port: int | None = None,
    caldav_port: int | None = None,
    state: config.StateSettings | None = None,
    extra_domains: dict[str, config.DomainSettings] | None = None,
) -> config.Settings:
    """The stack's bridge settings with short timeouts, and backends optionally redirected (to
    a proxy or a hanging server)."""
    loaded = config.loads(stack.bridge_config_toml(0, http_port=0, xmap_port=0))
    name, domain = next(iter(loaded.domains.items()))
    imap = dataclasses.replace(domain.imap, connect_timeout=BACKEND_TIMEOUT,
                               port=imap_port or domain.imap.port)  # fmt: skip
    smtp = dataclasses.replace(domain.smtp, timeout=BACKEND_TIMEOUT,
                               port=smtp_port or domain.smtp.port)  # fmt: skip
    caldav = dataclasses.replace(domain.caldav, timeout=BACKEND_TIMEOUT)
    if caldav_port is not None:
        caldav = dataclasses.replace(caldav, url=f"http://127.0.0.1:{caldav_port}/")
    sip = dataclasses.replace(domain.sip, registration_check_seconds=1)
    domains = {name: dataclasses.replace(domain, imap=imap, smtp=smtp, caldav=caldav, sip=sip)}
    domains.update(extra_domains or {})
    return dataclasses.replace(
        loaded,
        domains=domains,
        state=state or config.StateSettings(path=str(stack.root / "faults-state.sqlite")),
        limits=dataclasses.replace(loaded.limits, backend_timeout=BACKEND_TIMEOUT),
    )


@contextlib.asynccontextmanager
async def running_bridge(settings: config.Settings) -> AsyncIterator[Bridge]:
    async with Bridge(settings) as bridge:
        yield bridge


@pytest.fixture
async def fault_bridge(fault_stack: devstack.DevStack) -> AsyncIterator[Bridge]:
    async with running_bridge(fault_settings(fault_stack)) as bridge:
        yield bridge


async def ximss(bridge: Bridge, account: devstack.Account | None = None) -> XimssClient:
    assert bridge.tcp is not None
    client = await XimssClient.connect("127.0.0.1", bridge.tcp.port)
    if account is not None:
        await client.login(account.address, account.password)
    return client


# --------------------------------------------------------------------------- crashing servers


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies count as gone: the group's leader may wait for its parent (us) to reap it.
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    return True
    return False


def crash(server: Any) -> None:
    """SIGKILL the server's master, then whatever it left of its process group (its workers
    would follow it anyway; a crash leaves nothing listening)."""
    pid = server.pid
    assert pid is not None, "the server is not running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc = getattr(server, "proc", None)
    if proc is not None:
        proc.wait(5)  # reaped, so stop() finds it gone


def restart(server: Any) -> None:
    """Bring a crashed (or running) server up again on the same ports and data."""
    server.stop()
    deadline = time.monotonic() + 10
    while True:
        try:
            server.start()
            return
        except RuntimeError:
            # Its ports may linger a moment after the last process went away.
            if time.monotonic() > deadline:
                raise
            server.stop()
            time.sleep(0.1)


@contextlib.contextmanager
def crashed(server: Any) -> Iterator[None]:
    """The server is down inside the block and running again after it, whatever happened."""
    crash(server)
    try:
        yield
    finally:
        restart(server)
