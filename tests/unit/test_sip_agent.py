"""Two user agents on loopback with no proxy between them, a lossy UDP link, and a small
registrar made of the same transaction core: calls, CANCEL, MESSAGE, retransmissions,
registration refresh and recovery. No external server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from adapters.sip.agent import UserAgent
from adapters.sip.auth import Challenge, Credentials, digest_response
from adapters.sip.core import ServerHandle, SipCore
from adapters.sip.dialog import response_to
from adapters.sip.endpoint import UaConfig
from adapters.sip.headers import Headers, unquote
from adapters.sip.incoming import IncomingCall
from adapters.sip.message import Request
from adapters.sip.transaction import Timers
from adapters.sip.transport import Address, UdpTransport
from adapters.sip.values import (
    Connected,
    Disconnected,
    Failed,
    IncomingMessage,
    Provisional,
    RegistrationState,
    RegistrationStatus,
)

T = TypeVar("T")
FAST = Timers(t1=0.05, t2=0.2, t4=0.2, d=0.2)


class Inbox:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, item: Any) -> Any:
        self.items.append(item)
        self._changed.set()
        return None

    async def next(self, kind: type[T], timeout: float = 5.0, **match: Any) -> T:
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


def _config(user: str, proxy: Address, transport: str = "udp") -> UaConfig:
    return UaConfig(
        username=user, password="pw", domain="example.test", proxy=proxy,
        transport=transport, timers=FAST,
    )  # fmt: skip


@asynccontextmanager
async def pair(transport: str = "udp") -> AsyncIterator[tuple[UserAgent, UserAgent, Inbox]]:
    """alice and bob, each using the other as its proxy; bob's inbox gets calls and IMs."""
    inbox = Inbox()
    alice = await UserAgent.start(_config("alice", ("127.0.0.1", 9), transport))
    bob = await UserAgent.start(
        _config("bob", alice.local_address, transport), on_call=inbox, on_message=inbox
    )
    alice.endpoint.config = dataclasses.replace(alice.endpoint.config, proxy=bob.local_address)
    try:
        yield alice, bob, inbox
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_call_connects_and_ends(transport: str) -> None:
    async with pair(transport) as (alice, _bob, inbox):
        events = Inbox()
        call = alice.invite("bob", "offer", listener=events)
        incoming = await inbox.next(IncomingCall)
        assert incoming.remote_sdp == "offer" and incoming.caller.uri == "sip:alice@example.test"
        callee = Inbox()
        incoming.listener = callee
        incoming.provision()
        assert (await events.next(Provisional)).status == 180
        incoming.accept("answer")
        assert (await events.next(Connected)).sdp == "answer"
        assert (await callee.next(Connected)).sdp == "offer"
        assert await call.reinvite("offer2") == "answer"
        await call.hangup()
        assert (await callee.next(Disconnected)).by_remote
        await call.hangup()  # idempotent


async def test_cancel_before_and_after_the_first_provisional() -> None:
    async with pair() as (alice, _bob, inbox):
        events = Inbox()
        call = alice.invite("bob", "offer", listener=events)
        incoming = await inbox.next(IncomingCall)
        callee = Inbox()
        incoming.listener = callee
        await call.hangup()  # only the 100 arrived: the CANCEL goes at once
        assert (await events.next(Failed)).status == 487
        assert (await callee.next(Failed)).status == 487
        with pytest.raises(Exception, match="already"):
            incoming.accept("late")


async def test_redirect_and_reject_and_unhandled_methods() -> None:
    async with pair() as (alice, bob, inbox):
        events = Inbox()
        alice.invite("bob", "offer", listener=events)
        (await inbox.next(IncomingCall)).redirect(["carol", "sip:dave@example.test"])
        failed = await events.next(Failed)
        assert failed.status == 302
        assert failed.contacts == ("sip:carol@example.test", "sip:dave@example.test")
        bob.on_call = None
        alice.invite("bob", "offer", listener=events)
        assert (await events.next(Failed)).status == 480
        request = alice.endpoint.out_of_dialog("PUBLISH", "bob")
        _, response = await alice.endpoint.send(request)
        assert response.status == 405 and "INVITE" in (response.headers.get("Allow") or "")
        bye = alice.endpoint.out_of_dialog("BYE", "bob")
        _, response = await alice.endpoint.send(bye)
        assert response.status == 481


async def test_message_status_comes_from_the_callback() -> None:
    async with pair() as (alice, bob, inbox):
        assert (await alice.message("bob", "hi")).status == 200
        assert (await inbox.next(IncomingMessage)).body == "hi"
        bob.on_message = lambda _m: 486
        assert (await alice.message("bob", "busy?")).status == 486


async def test_lost_datagrams_are_retransmitted_and_duplicates_absorbed() -> None:
    async with pair() as (alice, bob, inbox):
        drops = {"alice": 2, "bob": 1}
        for name, agent in (("alice", alice), ("bob", bob)):
            transport = agent.endpoint.transport
            assert isinstance(transport, UdpTransport)
            real = transport.send

            def lossy(data: bytes, dest: Address, name: str = name, real: Any = real) -> None:
                if drops[name] > 0:
                    drops[name] -= 1
                    return
                real(data, dest)

            transport.send = lossy  # type: ignore[method-assign]
        assert (await alice.message("bob", "through loss")).status == 200
        await asyncio.sleep(0.3)  # room for duplicates to show up
        assert [m.body for m in inbox.items if isinstance(m, IncomingMessage)] == ["through loss"]


async def test_unanswered_request_times_out_with_408() -> None:
    silent = await UserAgent.start(_config("silent", ("127.0.0.1", 9)))
    try:
        # Nothing listens on the discard port: timer F ends the transaction after 64*T1.
        result = await silent.message("anyone", "hello?")
        assert result.status == 408
    finally:
        await silent.close()


class Registrar:
    """REGISTER only: a digest challenge, then 200 with a short expiry; can 'restart'."""

    def __init__(self, expires: int) -> None:
        self.expires = expires
        self.nonce = "n1"
        self.registers: list[Request] = []
        self.refuse = False
        self.core = SipCore(FAST, self._on_request)

    async def start(self) -> Address:
        transport = await UdpTransport.open(
            "127.0.0.1", 0, self.core.receive, self.core.transport_error
        )
        self.core.transport = transport
        return transport.local

    def _on_request(self, request: Request, handle: ServerHandle | None, _src: Address) -> None:
        if handle is None:
            return
        self.registers.append(request)
        answer = request.headers.get("Authorization")
        if self.refuse:
            self.core.respond(handle, response_to(request, 503))
            return
        if answer is None or not self._valid(request, answer):
            challenge = f'Digest realm="example.test", nonce="{self.nonce}", qop="auth"'
            headers = Headers().add("WWW-Authenticate", challenge)
            self.core.respond(handle, response_to(request, 401, to_tag="r", headers=headers))
            return
        contact = request.headers.get("Contact") or ""
        headers = Headers().add("Contact", f"{contact};expires={self.expires}")
        self.core.respond(handle, response_to(request, 200, to_tag="r", headers=headers))

    def _valid(self, request: Request, answer: str) -> bool:
        params = {}
        for part in answer.removeprefix("Digest ").split(", "):
            key, _, value = part.partition("=")
            params[key] = unquote(value)
        if params["nonce"] != self.nonce:
            return False
        challenge = Challenge.parse(
            f'Digest realm="example.test", nonce="{self.nonce}", qop="auth"'
        )
        expected = digest_response(
            challenge, Credentials("alice", "pw"), "REGISTER", params["uri"],
            nc=int(params["nc"], 16), cnonce=params["cnonce"],
        )  # fmt: skip
        return f'response="{params["response"]}"' in expected


async def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_registration_refreshes_reuses_nonce_and_recovers() -> None:
    registrar = Registrar(expires=2)
    address = await registrar.start()
    states = Inbox()
    ua = await UserAgent.start(_config("alice", address))
    try:
        status = await ua.register(60, on_state=states)
        assert status == RegistrationStatus(RegistrationState.REGISTERED, 200, "OK", 2)
        assert len(registrar.registers) == 2  # challenged once
        # The refresh (after 1 s) reuses the nonce: no new challenge.
        await _wait(lambda: len(registrar.registers) == 3)
        refresh = registrar.registers[2]
        assert refresh.headers.get("Authorization") is not None
        assert refresh.call_id == registrar.registers[0].call_id
        assert refresh.cseq.number > registrar.registers[1].cseq.number
        # The registrar fails: FAILED is reported and retried with back-off.
        registrar.refuse = True
        await states.next(RegistrationStatus, state=RegistrationState.FAILED)
        # It comes back with new nonces (a restart): the agent registers again.
        registrar.nonce, registrar.refuse = "n2", False
        states.items.clear()
        await states.next(RegistrationStatus, state=RegistrationState.REGISTERED, timeout=8)
        await ua.unregister()
        assert registrar.registers[-1].headers.get("Expires") == "0"
        assert ua.registration is None and not ua.registered
    finally:
        await ua.close()
        registrar.core.close()
        assert registrar.core.transport is not None
        await registrar.core.transport.close()
