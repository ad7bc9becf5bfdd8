"""makeCall: ring the user's own devices, and have the one that answers call the peer.

The spec's third-party call: the bridge INVITEs the user's own address of record (every
registered device rings, other than this session's own agent, which turns its copy down), with
an offer that holds no media (port 0 is never used: the call only carries signaling). The device
that answers is sent a REFER to the peer (RFC 3515), places the call itself, and reports its
progress in NOTIFYs; then the bridge leaves. `makeCallReport` messages (text bodies) tell the
client each step. The operation answers when the peer's call is established, when it fails, or
after MAKE_CALL_TIMEOUT seconds (the call goes on being set up without it, per the spec).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING

from adapters.protocols import (
    CallEvent,
    Connected,
    Disconnected,
    Failed,
    Provisional,
    SignalingCall,
    TransferProgress,
)
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.signaling import binding, sip_target

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.ximss")

MAKE_CALL_TIMEOUT = 15.0  # the spec's time-out
# Ringing the user's devices and waiting for one to answer.
ANSWER_TIMEOUT = 60.0


def _no_media_offer(session_id: int) -> str:
    """An offer a device can answer without any media flowing: one audio line, inactive."""
    return (
        f"v=0\r\no=- {session_id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=inactive\r\n"
    )


class _Progress:
    """The steps of one makeCall, fed by the call's events."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[CallEvent] = asyncio.Queue(maxsize=64)

    def __call__(self, event: CallEvent) -> None:
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            log.info("makeCall: events dropped")


async def make_call(conv: Conversation, request: Request) -> Outcome:
    bound = binding(conv)
    target = sip_target(conv, request.require("peer"))

    def report(text: str) -> None:
        conv.send(codec.data("makeCallReport", request.id, text=text))

    progress = _Progress()
    leg: SignalingCall = bound.agent.invite(
        bound.address, _no_media_offer(secrets.randbelow(1 << 31)), listener=progress
    )
    bound.own_calls.add(leg.call_id)
    report("calling your devices")

    async def run() -> None:
        try:
            await _answered(progress)
            report("connected, calling the peer")
            await leg.transfer(target)
            while True:
                event = await progress.events.get()
                if isinstance(event, TransferProgress):
                    if event.final:
                        if not 200 <= event.status < 300:
                            raise BridgeError(
                                ErrorKind.BACKEND_REFUSED, f"{event.status} {event.reason}"
                            )
                        report("call established")
                        return
                    report(f"{event.status} {event.reason}")
                elif isinstance(event, Disconnected):
                    raise BridgeError(ErrorKind.BACKEND_REFUSED, "your device hung up")
        finally:
            bound.own_calls.discard(leg.call_id)

    task = asyncio.ensure_future(run())
    try:
        async with asyncio.timeout(MAKE_CALL_TIMEOUT):
            await asyncio.shield(task)
    except TimeoutError:
        # The spec: the operation completes, the call goes on being set up.
        bound.tasks.spawn(_finish(task, leg), "makecall")
        return Outcome.DONE
    except BaseException:
        await leg.hangup()
        raise
    await leg.hangup()
    return Outcome.DONE


async def _finish(task: asyncio.Future[None], leg: SignalingCall) -> None:
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            await task
    finally:
        task.cancel()
        await leg.hangup()


async def _answered(progress: _Progress) -> None:
    async with asyncio.timeout(ANSWER_TIMEOUT):
        while True:
            event = await progress.events.get()
            if isinstance(event, Connected):
                return
            if isinstance(event, Failed):
                detail = f"your devices did not answer ({event.status} {event.reason})"
                raise BridgeError(ErrorKind.BACKEND_REFUSED, detail)
            if isinstance(event, Provisional | Disconnected):
                continue
