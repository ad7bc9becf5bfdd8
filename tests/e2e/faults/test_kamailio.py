"""Kamailio killed (SIGKILL) and restarted: the bound sessions register again and instant
messages flow again (the registrar forgot every registration)."""

from __future__ import annotations

import asyncio

from bridge import xml
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.faults.conftest import crashed, ximss
from tests.e2e.folderkit import call
from tests.e2e.test_signaling import expect, sdp


async def bound(bridge: Bridge, account: devstack.Account) -> XimssClient:
    client = await ximss(bridge, account)
    await call(client, "signalBind", {}, sdp(4000))
    return client


async def test_sessions_register_again_and_ims_flow_after_kamailio_restarts(
    fault_stack: devstack.DevStack, fault_bridge: Bridge
) -> None:
    alice, bob = fault_stack.new_account("sipfa"), fault_stack.new_account("sipfb")
    a, b = await bound(fault_bridge, alice), await bound(fault_bridge, bob)
    try:
        hello = xml.element("sendIM", {"id": a.next_id(), "peer": bob.address}, "before")
        assert (await a.send(hello)).ok
        assert (await expect(b, "readIM")).text == "before"
        with crashed(fault_stack.kamailio):
            # Sent while nobody listens: the UDP retransmissions reach the restarted server.
            lost = xml.element("sendIM", {"id": a.next_id(), "peer": bob.address}, "during")
            assert (await a.send(lost)).ok
        # It is either delivered (bob registered again in time) or reported undelivered to its
        # sender with its text (404 from a registrar that forgot bob): never dropped silently.
        delivered = asyncio.ensure_future(expect(b, "readIM", lambda m: m.text == "during", 20))
        failed = asyncio.ensure_future(expect(a, "errorIM", lambda m: m.text == "during", 20))
        done, pending = await asyncio.wait({delivered, failed}, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
        outcome = done.pop().result()
        assert outcome.tag == "readIM" or outcome.get("errorNum")
        # Registrations are gone with the restart; the bridge notices (it checks every second
        # here) and registers both sessions again: IMs then reach bob once more.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        attempt = 0
        while True:
            attempt += 1
            text = f"after-{attempt}"
            again = xml.element("sendIM", {"id": a.next_id(), "peer": bob.address}, text)
            assert (await a.send(again)).ok
            try:
                got = await expect(b, "readIM", lambda m, t=text: m.text == t, timeout=2)
                break
            except TimeoutError:
                assert loop.time() < deadline, "the sessions did not register again"
        assert got.get("peer") == alice.address
        assert not a.closed.is_set() and not b.closed.is_set()
    finally:
        await a.close()
        await b.close()
