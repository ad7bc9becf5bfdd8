"""Signaling and instant messages end to end: XIMSS sessions bound through the bridge to the dev
stack's Kamailio, and a baresip far end (issue 8)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from lxml import etree

from adapters.sip.agent import UserAgent
from bridge import config, xml
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.folderkit import call

Pair = tuple[XimssClient, devstack.Account, XimssClient, devstack.Account]


def sdp(port: int, ip: str = "127.0.0.1") -> etree._Element:
    return xml.parse(
        f'<sdp ip="[{ip}]"><media media="audio" protocol="RTP/AVP" ip="[{ip}]:{port}" '
        'direction="sendrecv"><codec id="0" name="PCMU/8000"/>'
        '<codec id="101" name="telephone-event/8000"/></media></sdp>'.encode()
    )


async def expect(
    client: XimssClient, tag: str, match: Callable[[etree._Element], bool] = lambda _: True,
    timeout: float = 10.0,
) -> etree._Element:  # fmt: skip
    """The next unsolicited message with this tag (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await client.unsolicited(timeout)
            if message.tag == tag and match(message):
                return message


async def bound_client(port: int, account: devstack.Account) -> XimssClient:
    client = await XimssClient.connect("127.0.0.1", port)
    await client.login(account.address, account.password)
    await call(client, "signalBind", {}, sdp(4000))
    return client


@pytest.fixture
async def pair(bridge_port: int, stack: devstack.DevStack) -> AsyncIterator[Pair]:
    one, two = stack.new_account("sipa"), stack.new_account("sipb")
    first = await bound_client(bridge_port, one)
    second = await bound_client(bridge_port, two)
    yield first, one, second, two
    await first.close()
    await second.close()


async def test_call_between_two_sessions_with_dtmf_update_and_hangup(pair: Pair) -> None:
    a, alice, b, bob = pair
    await call(a, "callStart", {"callLeg": "out1", "peer": bob.address}, sdp(40000))
    incoming = await expect(b, "callIncoming")
    leg = incoming.get("callLeg", "")
    assert incoming.get("peer") == alice.address
    offered = incoming.find("sdp/media")
    assert offered is not None and offered.get("ip") == "[127.0.0.1]:40000"

    await call(b, "callProvision", {"callLeg": leg})
    await expect(a, "callProvisioned", lambda m: m.get("callLeg") == "out1")
    await call(b, "callAccept", {"callLeg": leg}, sdp(50000))
    # Both sides are told: the callee once the caller's ACK came, with the caller's SDP.
    callee_side = await expect(b, "callConnected", lambda m: m.get("callLeg") == leg)
    callee_media = callee_side.find("sdp/media")
    assert callee_media is not None and callee_media.get("ip") == "[127.0.0.1]:40000"
    connected = await expect(a, "callConnected")
    answered = connected.find("sdp/media")
    assert answered is not None and answered.get("ip") == "[127.0.0.1]:50000"
    assert [c.get("name") for c in answered.iter("codec")] == ["PCMU/8000", "telephone-event/8000"]

    # DTMF both ways, with the spec's codes for * and #.
    dtmf = xml.element("callSendDTMF", {"id": a.next_id(), "callLeg": "out1"}, "5")
    assert (await a.send(dtmf)).ok
    assert (await expect(b, "callDTMF")).text == "5"
    back = xml.element("callSendDTMF", {"id": b.next_id(), "callLeg": leg}, "11")
    assert (await b.send(back)).ok
    assert (await expect(a, "callDTMF")).text == "11"

    # A new description: the caller is told when it is done, the callee sees it.
    await call(a, "callUpdate", {"callLeg": "out1"}, sdp(40002))
    await expect(a, "callOpCompleted", lambda m: m.get("callLeg") == "out1")
    updated = await expect(b, "callUpdated")
    media = updated.find("sdp/media")
    assert media is not None and media.get("ip") == "[127.0.0.1]:40002"

    await call(a, "callKill", {"callLeg": "out1"})
    await expect(b, "callDisconnected", lambda m: m.get("callLeg") == leg)
    await call(b, "callKill", {"callLeg": leg})
    # The identifier can be used again after callKill.
    await call(a, "callStart", {"callLeg": "out1", "peer": bob.address}, sdp(40004))
    again = await expect(b, "callIncoming")
    await call(b, "callReject", {"callLeg": again.get("callLeg", ""), "signalCode": "486"})
    gone = await expect(a, "callDisconnected")
    assert gone.get("signalCode") == "486"
    await call(a, "callKill", {"callLeg": "out1"})


async def test_a_call_to_a_missing_user_is_disconnected_with_404(pair: Pair) -> None:
    a, _, _, _ = pair
    await call(a, "callStart", {"callLeg": "x", "peer": "nobody-here@example.test"}, sdp(41000))
    gone = await expect(a, "callDisconnected")
    assert gone.get("signalCode") == "404"
    await call(a, "callKill", {"callLeg": "x"})


async def test_instant_messages_with_composing_and_errors(
    pair: Pair, bridge_port: int, stack: devstack.DevStack
) -> None:
    a, alice, b, bob = pair
    typing = xml.element("sendIM", {"id": a.next_id(), "peer": bob.address})
    xml.sub(typing, "composing")
    assert (await a.send(typing)).ok
    shown = await expect(b, "readIM")
    assert shown.get("peer") == alice.address and shown.find("composing") is not None
    text = xml.element("sendIM", {"id": a.next_id(), "peer": bob.address}, "Grüße 👋")
    assert (await a.send(text)).ok
    got = await expect(b, "readIM", lambda m: m.find("composing") is None)
    assert got.text == "Grüße 👋" and got.get("peer") == alice.address
    reply = xml.element("sendIM", {"id": b.next_id(), "peer": alice.address}, "hi back")
    assert (await b.send(reply)).ok
    assert (await expect(a, "readIM")).text == "hi back"
    # Nobody is bound for this account: delivery fails, the sender gets errorIM with its text.
    offline = stack.new_account("sipoff")
    lost = xml.element("sendIM", {"id": a.next_id(), "peer": offline.address}, "anyone?")
    assert (await a.send(lost)).ok
    error = await expect(a, "errorIM")
    assert error.get("peer") == offline.address and error.text == "anyone?"
    assert error.get("errorNum") and error.get("errorText")
    await call(a, "closeIM", {"peer": bob.address})


async def test_calls_with_baresip(
    bridge_port: int, stack: devstack.DevStack, tmp_path: Path
) -> None:
    me, far = stack.new_account("sipme"), stack.new_account("sipfar")
    client = await bound_client(bridge_port, me)
    port = devstack.sip_servers.free_port_run(3)
    phone = devstack.sip_servers.Baresip(
        tmp_path, "far", port,
        (far.local, far.password, "example.test", f"127.0.0.1:{stack.ports.sip}"),
    )  # fmt: skip
    phone.start()
    try:
        phone.wait_registered()
        # baresip answers by itself: connected, with its own SDP.
        await call(client, "callStart", {"callLeg": "c1", "peer": far.address}, sdp(42000))
        connected = await expect(client, "callConnected")
        assert connected.find("sdp/media") is not None
        await asyncio.to_thread(phone.wait_event, "CALL_ESTABLISHED")
        await call(client, "callKill", {"callLeg": "c1"})
        await asyncio.to_thread(phone.wait_event, "CALL_CLOSED")
        # baresip calls us; we decline with 603.
        await asyncio.to_thread(phone.dial, f"sip:{me.local}@example.test")
        incoming = await expect(client, "callIncoming")
        assert incoming.get("peer") == far.address
        leg = incoming.get("callLeg", "")
        await call(client, "callReject", {"callLeg": leg, "signalCode": "603"})
        closed = await asyncio.to_thread(phone.wait_event, "CALL_CLOSED")
        assert "603" in str(closed) or "Decline" in str(closed)
        await call(client, "callKill", {"callLeg": leg})
    finally:
        phone.stop()
        await client.close()


def phones(
    stack: devstack.DevStack, root: Path, *names: str
) -> list[tuple[devstack.Account, object]]:
    """Auto-answering baresip far ends with fresh accounts."""
    made = []
    for name in names:
        account = stack.new_account(name)
        port = devstack.sip_servers.free_port_run(3)
        phone = devstack.sip_servers.Baresip(
            root, name, port,
            (account.local, account.password, "example.test", f"127.0.0.1:{stack.ports.sip}"),
        )  # fmt: skip
        phone.start()
        phone.wait_registered()
        made.append((account, phone))
    return made


async def test_blind_and_attended_transfer_with_baresip(
    bridge_port: int, stack: devstack.DevStack, tmp_path: Path
) -> None:
    me = stack.new_account("sipxfer")
    client = await bound_client(bridge_port, me)
    parties = phones(stack, tmp_path, "bob", "carol", "dave")
    (bob, _), (carol, carol_phone), (dave, _) = parties
    try:
        # Blind: bob is sent to carol; our leg ends.
        await call(client, "callStart", {"callLeg": "b", "peer": bob.address}, sdp(43000))
        await expect(client, "callConnected", lambda m: m.get("callLeg") == "b")
        await call(client, "callTransfer", {"callLeg": "b", "peer": carol.address})
        await expect(client, "callDisconnected", lambda m: m.get("callLeg") == "b")
        await call(client, "callKill", {"callLeg": "b"})
        await asyncio.to_thread(carol_phone.wait_event, "CALL_ESTABLISHED")  # type: ignore[attr-defined]
        # Attended: calls to carol... to dave and to bob, then bob is joined to dave.
        await call(client, "callStart", {"callLeg": "d", "peer": dave.address}, sdp(43002))
        await expect(client, "callConnected", lambda m: m.get("callLeg") == "d")
        await call(client, "callStart", {"callLeg": "b2", "peer": bob.address}, sdp(43004))
        await expect(client, "callConnected", lambda m: m.get("callLeg") == "b2")
        await call(client, "callTransfer", {"callLeg": "b2", "otherLeg": "d"})
        ended = {
            (await expect(client, "callDisconnected")).get("callLeg"),
            (await expect(client, "callDisconnected")).get("callLeg"),
        }
        assert ended == {"b2", "d"}
    finally:
        for _, phone in parties:
            phone.stop()  # type: ignore[attr-defined]
        await client.close()


async def test_the_session_registers_again_after_kamailio_restarts(
    pair: Pair, stack: devstack.DevStack
) -> None:
    a, _, b, bob = pair
    await asyncio.to_thread(stack.kamailio.restart)
    # The registrar forgot everyone: calls to bob get 404 until the bridge notices (it checks
    # every 2 s here) and registers bob's session again.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    refused = 0
    while True:
        await call(a, "callStart", {"callLeg": "r", "peer": bob.address}, sdp(44000))
        ringing = asyncio.ensure_future(expect(b, "callIncoming", timeout=5))
        gone = asyncio.ensure_future(expect(a, "callDisconnected", timeout=5))
        done, pending = await asyncio.wait({ringing, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if ringing in done:
            incoming = ringing.result()
            break
        assert gone.result().get("signalCode") == "404"
        refused += 1
        await call(a, "callKill", {"callLeg": "r"})
        assert loop.time() < deadline, "the session did not register again"
        await asyncio.sleep(0.5)
    assert refused >= 1  # right after the restart nobody was registered
    await call(b, "callReject", {"callLeg": incoming.get("callLeg", ""), "signalCode": "486"})
    await expect(a, "callDisconnected")
    await call(a, "callKill", {"callLeg": "r"})


async def test_a_peer_transfers_our_user_to_a_third_party(
    pair: Pair, stack: devstack.DevStack, tmp_path: Path
) -> None:
    a, _, b, bob = pair
    ((carol, carol_phone),) = phones(stack, tmp_path, "carol2")
    try:
        await call(a, "callStart", {"callLeg": "t", "peer": bob.address}, sdp(45000))
        leg = (await expect(b, "callIncoming")).get("callLeg", "")
        await call(b, "callAccept", {"callLeg": leg}, sdp(45002))
        await expect(a, "callConnected")
        # bob sends alice's call on to carol: alice's bridge calls carol with alice's SDP and
        # moves the callLeg over; bob's call ends.
        await call(b, "callTransfer", {"callLeg": leg, "peer": carol.address})
        updated = await expect(a, "callUpdated", lambda m: m.get("callLeg") == "t")
        assert updated.get("peer") == carol.address
        assert updated.find("sdp/media") is not None
        await expect(b, "callDisconnected", lambda m: m.get("callLeg") == leg)
        await asyncio.to_thread(carol_phone.wait_event, "CALL_ESTABLISHED")  # type: ignore[attr-defined]
        # The moved leg is alice's call with carol now: hanging it up ends carol's call.
        await call(a, "callKill", {"callLeg": "t"})
        await asyncio.to_thread(carol_phone.wait_event, "CALL_CLOSED")  # type: ignore[attr-defined]
        await call(b, "callKill", {"callLeg": leg})
    finally:
        carol_phone.stop()  # type: ignore[attr-defined]


async def test_a_redirected_call_reaches_the_new_target(
    pair: Pair, stack: devstack.DevStack, tmp_path: Path
) -> None:
    a, _, b, bob = pair
    ((dan, dan_phone),) = phones(stack, tmp_path, "dan")
    try:
        await call(a, "callStart", {"callLeg": "r1", "peer": bob.address}, sdp(46000))
        leg = (await expect(b, "callIncoming")).get("callLeg", "")
        redirect = xml.element("callRedirect", {"id": b.next_id(), "callLeg": leg})
        xml.sub(redirect, "To", text=dan.address)
        assert (await b.send(redirect)).ok
        await call(b, "callKill", {"callLeg": leg})
        # The caller's leg follows the 302 to dan, who answers.
        connected = await expect(a, "callConnected", lambda m: m.get("callLeg") == "r1")
        assert connected.find("sdp/media") is not None
        await asyncio.to_thread(dan_phone.wait_event, "CALL_ESTABLISHED")  # type: ignore[attr-defined]
        await call(a, "callKill", {"callLeg": "r1"})
    finally:
        dan_phone.stop()  # type: ignore[attr-defined]


async def test_agents_bind_and_announce_the_configured_local_address(
    settings: config.Settings, bridge_port: int, stack: devstack.DevStack
) -> None:
    """`sip.local_host` is where the SIP server reaches the bridge (a container's own address):
    a session bound through a bridge using 127.0.0.2 receives what Kamailio sends it there."""
    domains = {
        name: dataclasses.replace(
            domain, sip=dataclasses.replace(domain.sip, local_host="127.0.0.2")
        )
        for name, domain in settings.domains.items()
    }
    async with Bridge(dataclasses.replace(settings, domains=domains)) as other:
        assert other.tcp is not None
        one, two = stack.new_account("siplh"), stack.new_account("siplo")
        there = await bound_client(other.tcp.port, one)
        here = await bound_client(bridge_port, two)
        try:
            session = next(s for s in other.services.sessions.all() if s.account == one.address)
            assert session.signal is not None
            agent = session.signal.agent
            assert isinstance(agent, UserAgent)
            assert agent.local_address[0] == "127.0.0.2"
            text = xml.element("sendIM", {"id": here.next_id(), "peer": one.address}, "to .2")
            assert (await here.send(text)).ok
            got = await expect(there, "readIM")
            assert got.text == "to .2" and got.get("peer") == two.address
        finally:
            await there.close()
            await here.close()
