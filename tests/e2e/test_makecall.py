"""makeCall end to end: the user's own baresip device rings, answers, and is sent to the peer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.test_signaling import bound_client, expect, phones


async def test_make_call_rings_a_device_of_the_user_which_then_calls_the_peer(
    bridge_port: int, stack: devstack.DevStack, tmp_path: Path
) -> None:
    me = stack.new_account("sipmc")
    client = await bound_client(bridge_port, me)
    ((far, far_phone),) = phones(stack, tmp_path, "mcfar")
    device = devstack.sip_servers.Baresip(
        tmp_path, "device", devstack.sip_servers.free_port_run(3),
        (me.local, me.password, "example.test", f"127.0.0.1:{stack.ports.sip}"),
    )  # fmt: skip
    device.start()
    try:
        device.wait_registered()
        reply = await client.request("makeCall", {"peer": far.address})
        assert reply.ok, reply.response.get("errorText")
        reports = [m.text for m in reply.of("makeCallReport")]
        assert reports[0] == "calling your devices" and reports[-1] == "call established"
        # The device called the peer itself; our own session's agent never offered it to us.
        await asyncio.to_thread(far_phone.wait_event, "CALL_ESTABLISHED")  # type: ignore[attr-defined]
        try:
            stray = await expect(client, "callIncoming", timeout=1)
        except TimeoutError:
            stray = None
        assert stray is None
    finally:
        device.stop()
        far_phone.stop()  # type: ignore[attr-defined]
        await client.close()


async def test_make_call_without_any_device_fails(
    bridge_port: int, stack: devstack.DevStack
) -> None:
    me = stack.new_account("sipmc")
    client: XimssClient = await bound_client(bridge_port, me)
    try:
        reply = await client.request("makeCall", {"peer": "nobody@example.test"})
        assert reply.error_num is not None
    finally:
        await client.close()
