"""Signaling section: signalBind, signalUnbind, callStart, callProvision, callAccept, callReject,
callRedirect, callKill, callSendDTMF, callUpdate, callTransfer, and the asynchronous call
messages, over the session's SIP user agent (adapters.protocols.SignalingAgent).

signalBind starts a user agent for the session and REGISTERs it with the domain's SIP server
(digest with the mail credentials); calls to the user then ring here as `callIncoming` with
callLegs "inp1", "inp2"... Media never passes through the bridge: SDP goes between the client's
XML presentation (bridge/ximss/sdp_xml.py) and the SIP messages. A peer is an E-mail address
(`user@domain`: sip:user@domain), a SIP URI, or a bare name in the user's SIP domain.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING

from lxml import etree

from adapters.protocols import (
    CallEvent,
    Connected,
    Disconnected,
    Dtmf,
    Failed,
    IncomingSignalingCall,
    Provisional,
    RegistrationState,
    RemoteUpdate,
    TransferProgress,
    TransferRequested,
)
from bridge.errors import BridgeError, ErrorKind
from bridge.session.signaling import MAX_CALLS, CallLeg, Offers, SignalBinding
from bridge.transport.tasks import TaskSet
from bridge.ximss import codec, sdp_xml
from bridge.ximss.ops.base import Outcome

if TYPE_CHECKING:
    from bridge.session.session import Session
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.ximss")

# Redirects (3xx) an outgoing call follows before it counts as failed.
MAX_REDIRECTS = 3
# Seconds a transfer the peer asked for may take to reach the new party.
TRANSFER_TIMEOUT = 32.0
# XIMSS sends '*' and '#' as 10 and 11 (the spec's callSendDTMF).
DTMF_DIGITS = {str(n): str(n) for n in range(10)} | {"10": "*", "11": "#"}
DTMF_CODES = {digit: code for code, digit in DTMF_DIGITS.items()}
DTMF_CODES |= {"A": "12", "B": "13", "C": "14", "D": "15"}


def tasks(session: Session) -> TaskSet:
    """Background work of the binding (callUpdate, transfers, IM delivery), named and kept."""
    bound = session.signal
    if bound is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "signalBind first")
    return bound.tasks


def binding(conv: Conversation) -> SignalBinding:
    found = conv.require_session().signal
    if found is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "signalBind first")
    return found


def sip_target(conv: Conversation, peer: str) -> str:
    """A peer as the client names it -> the SIP request URI."""
    peer = peer.strip()
    if not peer or any(c in peer for c in "<>\r\n \t\"'"):
        raise BridgeError(ErrorKind.BAD_REQUEST, "a peer address is required")
    if peer.lower().startswith(("sip:", "sips:", "tel:")):
        return peer
    if "@" in peer:
        return f"sip:{peer}"
    own = binding(conv).address  # sip:me@domain
    return f"sip:{peer}@{own.partition('@')[2]}"


def _sdp_body(request: Request) -> etree._Element | None:
    for child in request.element:
        if isinstance(child.tag, str):
            return child
    return None


def _offer(offers: Offers, body: etree._Element, fallback_ip: str = "127.0.0.1") -> str:
    version = offers.next()
    return sdp_xml.sdp_for_sip(
        body, session_id=offers.session_id, session_version=version, fallback_ip=fallback_ip
    )


def _required_offer(request: Request, offers: Offers) -> str:
    body = _sdp_body(request)
    if body is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "an SDP descriptor is required")
    return _offer(offers, body)


def _message(tag: str, leg: CallLeg, sdp: str | None = None, **attrs: str | None) -> etree._Element:
    message = codec.data(tag, None, {"callLeg": leg.leg, **attrs})
    if sdp:
        try:
            message.append(sdp_xml.sdp_for_client(sdp))
        except BridgeError:
            log.info("call %s: the peer's SDP cannot be shown", leg.leg)
    return message


def _op_failed(leg: CallLeg, text: str) -> etree._Element:
    return codec.data("callOpFailed", None, {"callLeg": leg.leg, "errorText": text})


def listener(conv: Conversation, leg: CallLeg) -> Callable[[CallEvent], None]:
    """What the agent's call events become for the client."""

    def on_event(event: CallEvent) -> None:
        send = conv.unsolicited
        if isinstance(event, Provisional):
            send(_message("callProvisioned", leg, event.sdp))
        elif isinstance(event, Connected):
            leg.connected = True
            send(_message("callConnected", leg, event.sdp))
        elif isinstance(event, Failed | Disconnected):
            if leg.ended:
                return
            if _redirected(conv, leg, event):
                return
            leg.ended = True
            if isinstance(event, Failed):
                attrs = {"signalCode": str(event.status), "errorText": event.reason or None}
            else:
                attrs = {"errorText": event.reason or None}
            send(_message("callDisconnected", leg, **attrs))
        elif isinstance(event, RemoteUpdate):
            send(_message("callUpdated", leg, event.sdp))
        elif isinstance(event, Dtmf):
            send(
                codec.data(
                    "callDTMF",
                    None,
                    {"callLeg": leg.leg},
                    text=DTMF_CODES.get(event.digit, event.digit),
                )
            )
        elif isinstance(event, TransferProgress) and event.final:
            if 200 <= event.status < 300:
                # Our part is done: leave the call. In an attended transfer the other call's
                # peer should end it by itself (Replaces), but not every phone does.
                hangups = [leg] + ([leg.joining] if leg.joining is not None else [])
                for done in hangups:
                    tasks(conv.require_session()).spawn(done.call.hangup(), "transferred")
            else:
                send(_op_failed(leg, event.reason or "transfer failed"))
        elif isinstance(event, TransferRequested):
            tasks(conv.require_session()).spawn(follow_transfer(conv, leg, event), "transfer")

    def guarded(event: CallEvent) -> None:
        # Called from the agent's receive path: an unbound or ended session must not break it.
        try:
            on_event(event)
        except BridgeError as exc:
            log.info("call %s: event %s dropped (%s)", leg.leg, type(event).__name__, exc.kind)

    return guarded


def _redirected(conv: Conversation, leg: CallLeg, event: Failed | Disconnected) -> bool:
    """An outgoing call answered with a redirect (3xx with Contacts) is placed again to the
    first target, with the same offer, up to MAX_REDIRECTS times; the client sees only the
    outcome of the last one."""
    if not isinstance(event, Failed) or not 300 <= event.status < 400 or not event.contacts:
        return False
    offer = leg.call.local_sdp
    if leg.incoming or offer is None or leg.redirects >= MAX_REDIRECTS:
        return False
    bound = conv.require_session().signal
    if bound is None:
        return False
    leg.redirects += 1
    target = event.contacts[0]
    leg.call = bound.agent.invite(target, offer, listener=listener(conv, leg))
    leg.peer = target
    return True


def _refer_target(event: TransferRequested) -> tuple[str, list[tuple[str, str]]]:
    """Refer-To's URI and the headers it asks the new INVITE to carry (RFC 3515 section 2.1:
    `?Replaces=...` of an attended transfer), plus Referred-By."""
    uri, _, query = event.target.partition("?")
    headers: list[tuple[str, str]] = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        if name.lower() == "replaces" and value:
            headers.append(("Replaces", urllib.parse.unquote(value)))
    if event.referred_by:
        headers.append(("Referred-By", event.referred_by))
    return uri, headers


async def follow_transfer(conv: Conversation, leg: CallLeg, event: TransferRequested) -> None:
    """The peer transfers our user elsewhere (REFER): call the new party with the description
    the client last sent, and once it answers, move the client's call leg over to it
    (`callUpdated` with the new peer and its SDP) and leave the old one. The client keeps its
    callLeg and its media; the referring peer is told the outcome (NOTIFY sipfrag)."""
    old = leg.call
    bound = binding(conv)
    if not leg.connected or leg.ended or old.local_sdp is None:
        await old.notify_transfer(603, "Declined")
        return
    target, headers = _refer_target(event)
    events: asyncio.Queue[CallEvent] = asyncio.Queue(maxsize=64)
    new = bound.agent.invite(target, old.local_sdp, listener=events.put_nowait, headers=headers)
    try:
        async with asyncio.timeout(TRANSFER_TIMEOUT):
            while True:
                progress = await events.get()
                if isinstance(progress, Provisional):
                    await old.notify_transfer(progress.status, progress.reason, final=False)
                elif isinstance(progress, Connected):
                    break
                elif isinstance(progress, Failed | Disconnected):
                    status = progress.status if isinstance(progress, Failed) else 487
                    await old.notify_transfer(status, getattr(progress, "reason", "") or "Failed")
                    return
    except TimeoutError:
        await new.hangup()
        await old.notify_transfer(408, "Request Timeout")
        return
    # The new call is up: it is the client's call from now on, and the old dialog's end (the
    # referrer hangs up once told) is not the client's call ending.
    old.listener = lambda _event: None
    leg.call = new
    leg.peer = target
    new.listener = listener(conv, leg)
    while not events.empty():  # anything the new call said meanwhile, in order
        new.listener(events.get_nowait())
    peer = target.partition(":")[2] if target.lower().startswith(("sip:", "sips:")) else target
    conv.unsolicited(_message("callUpdated", leg, progress.sdp, peer=peer.split(";")[0]))
    await old.notify_transfer(200, "OK")
    await old.hangup()


def _on_call(conv: Conversation, session: Session) -> Callable[[IncomingSignalingCall], None]:
    def incoming(call: IncomingSignalingCall) -> None:
        bound = session.signal
        if bound is None or session.closed:
            call.reject(480, "Temporarily Unavailable")
            return
        if call.call_id in bound.own_calls:
            # Our own makeCall ringing the user's devices: a 4xx, so the forking proxy still
            # lets another device answer (a 6xx would end every branch).
            call.reject(486, "Busy Here")
            return
        leg = CallLeg(bound.new_incoming_name(), call, incoming=True, peer=call.peer)
        try:
            bound.add(leg)
        except BridgeError:
            call.reject(486, "Busy Here")
            return
        attrs = {"peer": call.peer, "peerName": call.peer_name or None}
        conv.unsolicited(_message("callIncoming", leg, call.remote_sdp, **attrs))
        call.listener = listener(conv, leg)

    return incoming


async def signal_bind(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    if session.signal is not None:
        raise BridgeError(ErrorKind.ALREADY_EXISTS, "already bound")
    connector = conv.services.domain(session.domain).signaling
    if connector is None or session.credentials is None:
        detail = "signaling needs a SIP server for the domain and a password login"
        raise BridgeError(ErrorKind.NOT_SUPPORTED, detail)
    from bridge.ximss.ops import instant  # the IM handler lives with the IM operations

    agent = await connector.start(
        session.account, session.credentials.password, display_name=session.real_name,
        on_call=_on_call(conv, session), on_message=instant.on_message(conv, session),
    )  # fmt: skip
    body = _sdp_body(request)
    capabilities = sdp_xml.xml_to_sdp(body) if body is not None else None
    settings = conv.services.domain(session.domain).settings.sip
    try:
        status = await agent.register(settings.register_expires)
    except BaseException:
        await agent.close()
        raise
    if status.state is not RegistrationState.REGISTERED:
        await agent.close()
        kind = (
            ErrorKind.AUTH_FAILED
            if status.status in (401, 403, 407)
            else ErrorKind.BACKEND_UNAVAILABLE
        )
        raise BridgeError(
            kind, f"registration failed: {status.status or ''} {status.reason}".strip()
        )
    bound = session.signal = SignalBinding(agent, connector.address(session.account), capabilities)
    if request.flag("presence"):
        from bridge.ximss.ops import presence  # roster and presence delivery

        try:
            await presence.start(conv, bound)
        except BaseException:
            session.signal = None
            await bound.close()
            raise
    return Outcome.DONE


async def signal_unbind(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    bound, session.signal = session.signal, None
    if bound is not None:
        await bound.close()
    return Outcome.DONE


async def call_start(conv: Conversation, request: Request) -> Outcome:
    bound = binding(conv)
    name = request.require("callLeg")
    if name in bound.calls:
        raise BridgeError(ErrorKind.ALREADY_EXISTS, "the callLeg is in use")
    target = sip_target(conv, request.require("peer"))
    offers = Offers()
    sdp = _required_offer(request, offers)
    if len(bound.calls) >= MAX_CALLS:
        raise BridgeError(ErrorKind.LIMIT, "too many calls")
    call = bound.agent.invite(target, sdp)
    leg = CallLeg(name, call, incoming=False, peer=target, offers=offers)
    call.listener = listener(conv, leg)  # events meanwhile were buffered
    bound.add(leg)
    return Outcome.DONE


def _incoming(conv: Conversation, request: Request) -> tuple[CallLeg, IncomingSignalingCall]:
    leg = binding(conv).leg(request.require("callLeg"))
    call = leg.call
    if not leg.incoming or leg.connected or leg.ended:
        raise BridgeError(ErrorKind.BAD_REQUEST, "not a ringing incoming call")
    return leg, call  # type: ignore[return-value]


async def call_provision(conv: Conversation, request: Request) -> Outcome:
    leg, call = _incoming(conv, request)
    body = _sdp_body(request)
    call.provision(_offer(leg.offers, body) if body is not None else None)
    return Outcome.DONE


async def call_accept(conv: Conversation, request: Request) -> Outcome:
    leg, call = _incoming(conv, request)
    call.accept(_required_offer(request, leg.offers))
    leg.connected = True
    return Outcome.DONE


async def call_reject(conv: Conversation, request: Request) -> Outcome:
    leg, call = _incoming(conv, request)
    code = request.get("signalCode") or "486"
    if not code.isdigit() or not 400 <= int(code) <= 699:
        raise BridgeError(ErrorKind.BAD_REQUEST, "signalCode must be a SIP error code (400-699)")
    call.reject(int(code))
    leg.ended = True
    return Outcome.DONE


async def call_redirect(conv: Conversation, request: Request) -> Outcome:
    leg, call = _incoming(conv, request)
    targets = [sip_target(conv, to.text or "") for to in request.element.iter("To")]
    if not targets:
        raise BridgeError(ErrorKind.BAD_REQUEST, "at least one To element is required")
    call.redirect(targets)
    leg.ended = True
    return Outcome.DONE


async def call_kill(conv: Conversation, request: Request) -> Outcome:
    bound = binding(conv)
    leg = bound.calls.pop(request.require("callLeg"), None)
    if leg is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "unknown callLeg")
    leg.ended = True
    await leg.call.hangup()
    return Outcome.DONE


def _connected(conv: Conversation, request: Request) -> CallLeg:
    leg = binding(conv).leg(request.require("callLeg"))
    if not leg.connected or leg.ended:
        raise BridgeError(ErrorKind.BAD_REQUEST, "the call is not connected")
    return leg


async def call_send_dtmf(conv: Conversation, request: Request) -> Outcome:
    leg = _connected(conv, request)
    digit = DTMF_DIGITS.get((request.element.text or "").strip())
    if digit is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "DTMF codes are 0-11 (10 is *, 11 is #)")
    await leg.call.send_dtmf(digit)
    return Outcome.DONE


async def call_update(conv: Conversation, request: Request) -> Outcome:
    leg = _connected(conv, request)
    sdp = _required_offer(request, leg.offers)

    async def update() -> None:
        try:
            answer = await leg.call.reinvite(sdp)
        except BridgeError as exc:
            conv.unsolicited(_op_failed(leg, str(exc)))
            return
        conv.unsolicited(_message("callOpCompleted", leg, answer))

    tasks(conv.require_session()).spawn(update(), f"update {leg.leg}")
    return Outcome.DONE


async def call_transfer(conv: Conversation, request: Request) -> Outcome:
    bound = binding(conv)
    leg = _connected(conv, request)
    other_name = request.get("otherLeg")
    if other_name:
        other = bound.leg(other_name)
        if not other.connected or other.ended or other is leg:
            raise BridgeError(ErrorKind.BAD_REQUEST, "otherLeg must be another connected call")
        transfer = getattr(leg.call, "transfer_attended", None)
        if transfer is None:
            raise BridgeError(ErrorKind.NOT_SUPPORTED, "attended transfer is not available")

        leg.joining = other

        async def attended() -> None:
            try:
                await transfer(other.call)
            except BridgeError as exc:
                conv.unsolicited(_op_failed(leg, str(exc)))

        tasks(conv.require_session()).spawn(attended(), f"transfer {leg.leg}")
        return Outcome.DONE
    target = sip_target(conv, request.require("peer"))
    await leg.call.transfer(target)
    return Outcome.DONE
