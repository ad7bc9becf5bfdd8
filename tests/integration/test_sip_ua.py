"""The SIP user agent against a real Kamailio (registrar, digest auth, proxy, presence) and a
real baresip far end. Each test has its own users; the restart test has its own Kamailio."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

from adapters.sip.agent import UserAgent
from adapters.sip.endpoint import UaConfig
from adapters.sip.errors import SipError
from adapters.sip.incoming import IncomingCall
from adapters.sip.subscription import IncomingSubscription
from adapters.sip.values import (
    Connected,
    Disconnected,
    Dtmf,
    Failed,
    IncomingMessage,
    Notification,
    Provisional,
    RegistrationState,
    RegistrationStatus,
    RemoteUpdate,
    TransferProgress,
    TransferRequested,
)

REPO = Path(__file__).resolve().parent.parent.parent
T = TypeVar("T")
WAIT = 10.0
SDP_A = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
SDP_B = SDP_A.replace("alice", "bob").replace("40000", "40002")
PIDF = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">'
    '<tuple id="t1"><status><basic>{basic}</basic></status><note>{note}</note></tuple>'
    "</presence>"
)


def _load_sip_servers() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "devstack_sip_servers", REPO / "deploy" / "sip_servers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["devstack_sip_servers"] = module
    spec.loader.exec_module(module)
    return module


servers = _load_sip_servers()
_names = itertools.count(1)


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="xb-sip-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def kamailio(root: Path) -> Iterator[Any]:
    server = servers.Kamailio(root / "kamailio", servers.free_port_run())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Inbox:
    """Collects what callbacks deliver, for tests to await."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def next(self, kind: type[T], timeout: float = WAIT, **match: Any) -> T:
        async with asyncio.timeout(timeout):
            while True:
                for index, item in enumerate(self.items):
                    if isinstance(item, kind) and all(
                        getattr(item, k) == v for k, v in match.items()
                    ):
                        del self.items[index]
                        return item
                self._changed.clear()
                await self._changed.wait()


def _user(kamailio: Any, prefix: str) -> tuple[str, str]:
    name = f"{prefix}{next(_names)}"
    password = f"pw-{name}"
    kamailio.add_user(name, password)
    return name, password


@asynccontextmanager
async def agent(
    kamailio: Any,
    prefix: str,
    transport: str = "udp",
    *,
    register: bool = True,
    expires: int = 300,
) -> AsyncIterator[tuple[UserAgent, Inbox]]:
    """A registered user agent; its inbox gets incoming calls, messages and subscriptions,
    and registration states."""
    name, password = _user(kamailio, prefix)
    config = UaConfig(
        username=name, password=password, domain=kamailio.domain,
        proxy=kamailio.registrar, transport=transport,
    )  # fmt: skip
    inbox = Inbox()

    def on_message(message: IncomingMessage) -> int:
        inbox(message)
        return 200

    ua = await UserAgent.start(config, on_call=inbox, on_message=on_message, on_subscribe=inbox)
    try:
        if register:
            status = await ua.register(expires, on_state=inbox)
            assert status.state is RegistrationState.REGISTERED, status
        yield ua, inbox
    finally:
        await ua.close()


async def _connect(
    caller: UserAgent, callee_inbox: Inbox, target: str
) -> tuple[Any, Inbox, IncomingCall, Inbox]:
    """caller INVITEs target; the callee rings with early media, then answers."""
    events = Inbox()
    call = caller.invite(target, SDP_A, listener=events)
    incoming = await callee_inbox.next(IncomingCall)
    assert incoming.remote_sdp == SDP_A
    callee_events = Inbox()
    incoming.listener = callee_events
    incoming.provision(SDP_B)
    progress = await events.next(Provisional)
    assert (progress.status, progress.sdp) == (183, SDP_B)
    incoming.accept(SDP_B)
    assert (await events.next(Connected)).sdp == SDP_B
    assert (await callee_events.next(Connected)).sdp == SDP_A
    return call, events, incoming, callee_events


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_register_message_and_unregister(kamailio: Any, transport: str) -> None:
    async with (
        agent(kamailio, "reg", transport) as (alice, _),
        agent(kamailio, "reg", transport) as (bob, bob_inbox),
    ):
        bob_aor = bob.endpoint.aor.uri
        assert (await alice.message(bob_aor, "hi bob")).status == 200
        got = await bob_inbox.next(IncomingMessage)
        assert got.body == "hi bob" and alice.endpoint.config.username in got.sender
        await bob.unregister()
        assert (await alice.message(bob_aor, "still there?")).status == 404


async def test_wrong_password_fails_registration(kamailio: Any) -> None:
    name, _ = _user(kamailio, "bad")
    config = UaConfig(username=name, password="wrong", domain=kamailio.domain,
                      proxy=kamailio.registrar)  # fmt: skip
    ua = await UserAgent.start(config)
    try:
        status = await ua.register(60)
        assert status.state is RegistrationState.FAILED and status.status in (401, 403)
    finally:
        await ua.close()


@pytest.mark.parametrize(
    ("transport", "caller_hangs_up"), [("udp", True), ("udp", False), ("tcp", True)]
)
async def test_call_answer_and_bye(kamailio: Any, transport: str, caller_hangs_up: bool) -> None:
    async with (
        agent(kamailio, "ca", transport) as (alice, _),
        agent(kamailio, "cb", transport) as (bob, bob_inbox),
    ):
        call, events, incoming, callee_events = await _connect(
            alice, bob_inbox, bob.endpoint.aor.uri
        )
        assert call.dialog is not None and call.dialog.route_set  # Kamailio record-routes
        if caller_hangs_up:
            await call.hangup()
            assert (await callee_events.next(Disconnected)).by_remote
            assert not (await events.next(Disconnected)).by_remote
        else:
            await incoming.hangup()
            assert (await events.next(Disconnected)).by_remote
            assert not (await callee_events.next(Disconnected)).by_remote


async def test_cancel_ringing_call_and_reject(kamailio: Any) -> None:
    async with agent(kamailio, "xa") as (alice, _), agent(kamailio, "xb") as (bob, bob_inbox):
        events = Inbox()
        call = alice.invite(bob.endpoint.aor.uri, SDP_A, listener=events)
        incoming = await bob_inbox.next(IncomingCall)
        callee_events = Inbox()
        incoming.listener = callee_events
        incoming.provision()
        assert (await events.next(Provisional)).status == 180
        await call.hangup()
        assert (await events.next(Failed)).status == 487
        assert (await callee_events.next(Failed)).status == 487

        busy_events = Inbox()
        alice.invite(bob.endpoint.aor.uri, SDP_A, listener=busy_events)
        (await bob_inbox.next(IncomingCall)).reject(486)
        assert (await busy_events.next(Failed)).status == 486


async def test_call_to_unregistered_user_fails(kamailio: Any) -> None:
    async with agent(kamailio, "ua") as (alice, _):
        events = Inbox()
        alice.invite(f"nobody@{kamailio.domain}", SDP_A, listener=events)
        assert (await events.next(Failed)).status == 404


async def test_reinvite_and_dtmf_info(kamailio: Any) -> None:
    async with agent(kamailio, "ra") as (alice, _), agent(kamailio, "rb") as (bob, bob_inbox):
        call, events, incoming, callee_events = await _connect(
            alice, bob_inbox, bob.endpoint.aor.uri
        )
        held = SDP_A + "a=sendonly\r\n"
        assert await call.reinvite(held) == SDP_B
        assert (await callee_events.next(RemoteUpdate)).sdp == held
        # and the other way
        assert await incoming.reinvite(SDP_B + "a=recvonly\r\n") == held
        assert (await events.next(RemoteUpdate)).sdp == SDP_B + "a=recvonly\r\n"
        for digit in "12#":
            await call.send_dtmf(digit, 200)
        digits = [await callee_events.next(Dtmf) for _ in range(3)]
        assert [(d.digit, d.duration_ms) for d in digits] == [("1", 200), ("2", 200), ("#", 200)]
        await incoming.send_dtmf("9")
        assert (await events.next(Dtmf)).digit == "9"
        await call.hangup()
        await callee_events.next(Disconnected)


async def test_messages_both_ways_with_is_composing(kamailio: Any) -> None:
    async with (
        agent(kamailio, "ma") as (alice, alice_inbox),
        agent(kamailio, "mb") as (
            bob,
            bob_inbox,
        ),
    ):
        composing = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
            "<state>active</state><contenttype>text/plain</contenttype></isComposing>"
        )
        result = await alice.message(
            bob.endpoint.aor.uri, composing, "application/im-iscomposing+xml"
        )
        assert result.ok
        got = await bob_inbox.next(IncomingMessage)
        assert got.content_type == "application/im-iscomposing+xml" and got.body == composing
        assert (await bob.message(alice.endpoint.aor.uri, "héllo ✓")).ok
        assert (await alice_inbox.next(IncomingMessage)).body == "héllo ✓"
        missing = await alice.message(f"ghost@{kamailio.domain}", "anyone?")
        assert (missing.status, missing.ok) == (404, False)


async def test_presence_publish_subscribe_notify(kamailio: Any) -> None:
    async with agent(kamailio, "pa") as (alice, _), agent(kamailio, "pb") as (bob, _):
        alice_aor = alice.endpoint.aor.uri
        notes = Inbox()
        subscription = await bob.subscribe(alice_aor, notes, expires=120)
        first = await notes.next(Notification)
        assert first.event == "presence" and first.state == "active"
        published = await alice.publish(PIDF.format(entity=alice_aor, basic="open", note="lunch"))
        assert published.ok
        publication = alice._publications["presence"]
        assert publication.etag
        update = await notes.next(Notification)
        assert "<basic>open</basic>" in update.body and "lunch" in update.body
        # A modification goes with SIP-If-Match and keeps an entity tag.
        assert (await alice.publish(PIDF.format(entity=alice_aor, basic="open", note="back"))).ok
        assert "back" in (await notes.next(Notification)).body
        await subscription.unsubscribe()
        assert (await notes.next(Notification)).state == "terminated"


async def test_subscribe_directly_to_a_user_agent(kamailio: Any) -> None:
    """A SUBSCRIBE for an event Kamailio does not serve goes to the user, who decides."""
    async with agent(kamailio, "sa") as (alice, alice_inbox), agent(kamailio, "sb") as (bob, _):
        notes = Inbox()
        pending = asyncio.create_task(
            bob.subscribe(alice.endpoint.aor.uri, notes, event="dialog", expires=60)
        )
        incoming = await alice_inbox.next(IncomingSubscription)
        assert incoming.event == "dialog"
        incoming.accept()
        await pending
        result = await incoming.notify("<dialog-info/>", "application/dialog-info+xml")
        assert result.ok
        assert (await notes.next(Notification, state="active")).body == "<dialog-info/>"
        await incoming.terminate()
        assert (await notes.next(Notification)).state == "terminated"

        refused = asyncio.create_task(
            bob.subscribe(alice.endpoint.aor.uri, Inbox(), event="dialog")
        )
        (await alice_inbox.next(IncomingSubscription)).reject(403)
        with pytest.raises(SipError) as caught:
            await refused
        assert caught.value.status == 403


async def test_blind_and_attended_transfer(kamailio: Any) -> None:
    async with (
        agent(kamailio, "ta") as (alice, _),
        agent(kamailio, "tb") as (
            bob,
            bob_inbox,
        ),
        agent(kamailio, "tc") as (carol, carol_inbox),
    ):
        # Blind: alice calls bob, bob transfers alice to carol.
        call_ab, events_ab, bob_leg, bob_events = await _connect(
            alice, bob_inbox, bob.endpoint.aor.uri
        )
        await bob_leg.transfer(carol.endpoint.aor.uri)
        request = await events_ab.next(TransferRequested)
        assert request.target.startswith(carol.endpoint.aor.uri) and request.replaces is None
        assert (
            request.referred_by is not None and bob.endpoint.config.username in request.referred_by
        )
        call_ac, events_ac, carol_leg, carol_events = await _connect(
            alice, carol_inbox, request.target
        )
        await call_ab.notify_transfer(200, "OK")
        progress = await bob_events.next(TransferProgress)
        assert (progress.status, progress.final) == (200, True)
        await bob_leg.hangup()
        await events_ab.next(Disconnected)

        # Attended: carol (talking to alice) calls bob, then hands alice over to bob.
        call_cb, _, bob_leg2, bob_events2 = await _connect(carol, bob_inbox, bob.endpoint.aor.uri)
        await carol_leg.transfer_attended(call_cb)
        request = await events_ac.next(TransferRequested)
        assert request.replaces is not None and call_cb.call_id in request.replaces
        events_ab2 = Inbox()
        call_ab2 = alice.invite(
            request.target, SDP_A, listener=events_ab2, headers=[("Replaces", request.replaces)]
        )
        replacing = await bob_inbox.next(IncomingCall)
        assert replacing.replaces == request.replaces
        replacing.accept(SDP_B)
        await events_ab2.next(Connected)
        await call_ac.notify_transfer(200, "OK")
        assert (await carol_events.next(TransferProgress)).status == 200
        # Bob's side ends the replaced dialog; carol hangs up on alice.
        await bob_leg2.hangup()
        await bob_events2.next(Disconnected)
        await carol_leg.hangup()
        await events_ac.next(Disconnected)
        await call_ab2.hangup()


async def test_reregistration_after_kamailio_restart(root: Path) -> None:
    server = servers.Kamailio(root / "restart", servers.free_port_run())
    server.start()
    try:
        async with (
            agent(server, "rr", expires=10) as (alice, alice_inbox),
            agent(server, "rs", expires=10) as (bob, bob_inbox),
        ):
            bob_aor = bob.endpoint.aor.uri
            assert (await alice.message(bob_aor, "before")).ok
            await asyncio.to_thread(server.restart)
            # The restarted registrar has forgotten bob until his next refresh (after 5 s).
            assert (await alice.message(bob_aor, "lost")).status == 404
            bob_inbox.items = [m for m in bob_inbox.items if isinstance(m, IncomingMessage)]
            await bob_inbox.next(RegistrationStatus, timeout=15, state=RegistrationState.REGISTERED)
            assert (await alice.message(bob_aor, "after")).ok
            assert [m.body for m in bob_inbox.items if isinstance(m, IncomingMessage)] == [
                "before", "after",
            ]  # fmt: skip
            del alice_inbox
    finally:
        server.stop()


async def test_call_to_baresip_with_auto_answer(kamailio: Any, root: Path) -> None:
    name, password = _user(kamailio, "bs")
    far = servers.Baresip(
        root / "baresip", name, servers.free_port_run(3),
        (name, password, kamailio.domain, f"127.0.0.1:{kamailio.port}"),
        answermode="auto",
    )  # fmt: skip
    await asyncio.to_thread(far.start)
    try:
        await asyncio.to_thread(far.wait_registered)
        async with agent(kamailio, "bc") as (alice, _):
            events = Inbox()
            call = alice.invite(far.aor, SDP_A, listener=events)
            connected = await events.next(Connected, timeout=15)
            assert connected.sdp is not None and "m=audio" in connected.sdp
            await asyncio.to_thread(far.wait_event, "CALL_ESTABLISHED")
            await call.send_dtmf("5")
            await call.hangup()
            await asyncio.to_thread(far.wait_event, "CALL_CLOSED")
    finally:
        await asyncio.to_thread(far.stop)
