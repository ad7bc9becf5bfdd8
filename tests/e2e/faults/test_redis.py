"""Redis (state.backend = "redis") killed (SIGKILL) and restarted under running sessions:
what needs the state store answers 451 meanwhile, logins still work (README "Redis as the
state store"), and everything works again once Redis is back (it kept no data: no persistence)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import config, xml
from bridge.client import Reply, XimssClient
from bridge.xmap import commands as c
from bridge.xmap.client import Answer, XmapClient
from tests.conftest import devstack, redis_server_module
from tests.e2e.faults import kit
from tests.e2e.faults.conftest import BACKEND_TIMEOUT, crashed, fault_settings, running_bridge
from tests.e2e.faults.conftest import ximss as ximss_client

PROMPT = BACKEND_TIMEOUT + 1.0


@pytest.fixture(scope="module")
def own_redis() -> Iterator[redis_server_module.RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="xb-faults-redis-"))
    try:
        with redis_server_module.RedisServer(root, devstack.free_ports(1)[0]) as running:
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _open(client: XimssClient, name: str) -> Reply:
    reply, took = await kit.request(client, "folderOpen", {"folder": name, "mailbox": "INBOX"})
    assert took < PROMPT, took
    return reply


async def _listing(client: XmapClient) -> Answer:
    return await client.call(c.ListFolder("INBOX"), check=False)


async def test_state_store_outage_answers_451_and_recovers(
    fault_stack: devstack.DevStack, own_redis: redis_server_module.RedisServer
) -> None:
    state = config.StateSettings(backend="redis", url=own_redis.url)
    account = fault_stack.new_account("red")
    await kit.append(fault_stack.ports.imap, account, "INBOX", "redis-one")
    async with running_bridge(fault_settings(fault_stack, state=state)) as bridge:
        client = await ximss_client(bridge, account)
        assert bridge.xmap is not None
        xmap = await XmapClient.connect("127.0.0.1", bridge.xmap.port)
        try:
            await xmap.login(account.address, account.password)
            assert (await _listing(xmap)).error is None
            assert (await _open(client, "A")).ok
            with crashed(own_redis):
                # A folder view is kept in the state store: 451, promptly.
                reply = await _open(client, "B")
                assert reply.error_num == "451", xml.serialize(reply.response)
                # XMAP's message handles live there too.
                started = time.monotonic()
                answer = await _listing(xmap)
                assert time.monotonic() - started < PROMPT
                assert answer.error is not None and answer.error.get("Text")
                # Logging in skips its bookkeeping and works.
                other = await ximss_client(bridge, account)
                await other.close()
                # The sessions live on.
                noop, _ = await kit.request(client, "noop", {})
                assert noop.ok and not client.closed.is_set()
            reopened = await kit.until_ok(lambda: _open(client, "C"))
            assert reopened.ok
            deadline = time.monotonic() + 10
            while (answer := await _listing(xmap)).error is not None:
                assert time.monotonic() < deadline, answer.error.get("Text")
                await asyncio.sleep(0.1)
            rows = [row for row in answer.first if row.tag == "MESSAGEHEADER"]
            assert len(rows) == 1
        finally:
            await client.close()
            await xmap.close()
