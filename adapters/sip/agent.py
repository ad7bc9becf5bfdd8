"""The SIP user agent one bound XIMSS session owns: registration, calls, instant messages,
presence. The bridge talks to it; it talks to the transaction core, which talks to a transport.

Requests from the network are dispatched by table: inside a dialog to the dialog's owner (a
call or a subscription, keyed by Call-ID and our tag), outside any dialog by method. The owner's
callbacks run on the event loop and must not block; whatever they start takes its own task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, ClassVar

from adapters.protocols import IncomingSignalingCall, SignalingAgent, SignalingCall
from adapters.sip import errors
from adapters.sip.calls import DialogKey, DialogOwner
from adapters.sip.core import ServerHandle, SipCore
from adapters.sip.dialog import response_to
from adapters.sip.endpoint import Endpoint, UaConfig
from adapters.sip.headers import NO_HEADERS, Headers, SipParseError
from adapters.sip.incoming import IncomingCall
from adapters.sip.message import Request
from adapters.sip.outgoing import OutgoingCall
from adapters.sip.publication import DEFAULT_PUBLISH_EXPIRES, PIDF, Publication
from adapters.sip.registration import DEFAULT_EXPIRES, Registration, StateSink
from adapters.sip.subscription import (
    DEFAULT_SUBSCRIBE_EXPIRES,
    IncomingSubscription,
    NotifySink,
    Subscription,
)
from adapters.sip.transport import Address, open_transport
from adapters.sip.values import (
    CallListener,
    IncomingMessage,
    RegistrationState,
    RegistrationStatus,
    RequestResult,
)
from bridge.errors import BridgeError, ErrorKind
from bridge.transport.tasks import TaskSet

log = logging.getLogger("adapters.sip")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, MESSAGE, SUBSCRIBE, UPDATE"
# Dialogs (calls and subscriptions) one agent keeps at once; more INVITEs get 486.
MAX_DIALOGS = 256

CallHandler = Callable[[IncomingCall], None]
MessageHandler = Callable[[IncomingMessage], int | None]
SubscribeHandler = Callable[[IncomingSubscription], None]


class UserAgent:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.on_call: CallHandler | None = None
        self.on_message: MessageHandler | None = None
        self.on_subscribe: SubscribeHandler | None = None
        self.registration: Registration | None = None
        self._dialogs: dict[DialogKey, DialogOwner] = {}
        self._incoming: dict[ServerHandle, IncomingCall] = {}
        self._publications: dict[str, Publication] = {}
        self._tasks = TaskSet(f"sip-ua {endpoint.aor.uri}")
        self._closed = False

    @classmethod
    async def start(
        cls,
        config: UaConfig,
        *,
        on_call: CallHandler | None = None,
        on_message: MessageHandler | None = None,
        on_subscribe: SubscribeHandler | None = None,
    ) -> UserAgent:
        """Bind a transport on `config.local_host` and start answering. BACKEND_UNAVAILABLE
        when the local address cannot be bound."""
        core = SipCore(config.timers, lambda *_: None)
        try:
            transport = await open_transport(
                config.transport, config.local_host, config.local_port,
                core.receive, core.transport_error, config.limits,
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "cannot open a SIP transport") from exc
        core.transport = transport
        agent = cls(Endpoint(config, core, transport))
        agent.on_call, agent.on_message, agent.on_subscribe = on_call, on_message, on_subscribe
        core.on_request = agent._on_request
        return agent

    @property
    def local_address(self) -> Address:
        return self.endpoint.transport.local

    async def close(self) -> None:
        """Hang up, unsubscribe, unpublish, unregister, then release the transport."""
        if self._closed:
            return
        self._closed = True
        owners = list(self._dialogs.values())
        for owner in owners:
            try:
                if isinstance(owner, OutgoingCall | IncomingCall):
                    await owner.hangup()
                elif isinstance(owner, Subscription):
                    await owner.unsubscribe()
            except BridgeError as exc:
                log.debug("closing a dialog failed: %s", exc)
        for publication in self._publications.values():
            try:
                await publication.remove()
            except BridgeError as exc:
                log.debug("unpublish failed: %s", exc)
        if self.registration is not None:
            await self.registration.stop()
        await self._tasks.cancel_all()
        self.endpoint.core.close()
        await self.endpoint.transport.close()

    # -- DialogHost --------------------------------------------------------------------------------

    def bind(self, key: DialogKey, owner: DialogOwner) -> None:
        self._dialogs[key] = owner

    def unbind(self, key: DialogKey) -> None:
        owner = self._dialogs.pop(key, None)
        if isinstance(owner, IncomingCall):
            self._incoming.pop(owner.handle, None)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name)

    # -- registration ------------------------------------------------------------------------------

    async def register(
        self, expires: int = DEFAULT_EXPIRES, on_state: StateSink | None = None
    ) -> RegistrationStatus:
        """Register and keep the registration fresh until `unregister`; returns the first
        outcome (REGISTERED, or FAILED with the status while retries go on in the background)."""
        if self.registration is not None:
            await self.registration.stop(unregister=False)
        self.registration = Registration(self.endpoint, expires, on_state)
        return await self.registration.start()

    async def unregister(self) -> None:
        if self.registration is not None:
            registration, self.registration = self.registration, None
            await registration.stop()

    @property
    def registered(self) -> bool:
        return (
            self.registration is not None
            and self.registration.status.state is RegistrationState.REGISTERED
        )

    # -- calls -------------------------------------------------------------------------------------

    def invite(
        self,
        target: str,
        sdp: str,
        *,
        listener: CallListener | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> OutgoingCall:
        """Place a call; progress comes to the listener (Provisional, Connected or Failed, then
        Disconnected). LIMIT when the agent already holds MAX_DIALOGS dialogs."""
        if len(self._dialogs) >= MAX_DIALOGS:
            raise BridgeError(ErrorKind.LIMIT, "too many calls")
        call = OutgoingCall(self, target, sdp, listener, Headers.of(headers))
        self.spawn(call.run(), f"sip-invite {call.call_id}")
        return call

    # -- instant messages --------------------------------------------------------------------------

    async def message(
        self, target: str, text: str, content_type: str = "text/plain; charset=utf-8"
    ) -> RequestResult:
        """RFC 3428 MESSAGE (also RFC 3994 isComposing bodies). The final status is returned
        whatever it is (404 for an unregistered user); a timeout gives 408."""
        request = self.endpoint.out_of_dialog(
            "MESSAGE", target, body=text.encode(), content_type=content_type
        )
        try:
            _, response = await self.endpoint.send(request)
        except errors.SipError as exc:
            return RequestResult(exc.status, exc.reason)
        return RequestResult(response.status, response.reason)

    # -- presence ----------------------------------------------------------------------------------

    async def subscribe(
        self,
        target: str,
        on_notify: NotifySink,
        *,
        event: str = "presence",
        expires: int = DEFAULT_SUBSCRIBE_EXPIRES,
    ) -> Subscription:
        """Subscribe and keep refreshing; NOTIFYs go to `on_notify`. SipError when refused."""
        subscription = Subscription(self, target, event, expires, on_notify)
        await subscription.start()
        return subscription

    async def publish(
        self,
        body: str,
        *,
        event: str = "presence",
        content_type: str = PIDF,
        expires: int = DEFAULT_PUBLISH_EXPIRES,
    ) -> RequestResult:
        """Publish our state for `event` and keep it refreshed (one publication per event)."""
        publication = self._publications.get(event)
        if publication is None:
            publication = Publication(self.endpoint, self._tasks, event, expires)
            self._publications[event] = publication
        return await publication.publish(body, content_type)

    async def unpublish(self, event: str = "presence") -> None:
        publication = self._publications.pop(event, None)
        if publication is not None:
            await publication.remove()

    # -- requests from the network -----------------------------------------------------------------

    def _on_request(self, request: Request, handle: ServerHandle | None, _source: Address) -> None:
        try:
            to_tag = request.to.tag
            if to_tag:
                owner = self._dialogs.get((request.call_id, to_tag))
                if owner is not None:
                    owner.handle_request(request, handle)
                elif handle is not None:
                    self._respond(handle, 481)
                return
            if handle is None:
                return  # a stray ACK
            handler = self._OUT_OF_DIALOG.get(request.method)
            if handler is None:
                self._respond(handle, 405, Headers().add("Allow", ALLOW))
                return
            handler(self, request, handle)
        except SipParseError as exc:
            log.debug("bad request %s: %s", request.method, exc)
            if handle is not None:
                self._respond(handle, 400)

    def _respond(self, handle: ServerHandle, status: int, headers: Headers = NO_HEADERS) -> None:
        self.endpoint.core.respond(handle, response_to(handle.request, status, headers=headers))

    def _on_invite(self, request: Request, handle: ServerHandle) -> None:
        if self.on_call is None or len(self._dialogs) >= MAX_DIALOGS:
            self._respond(handle, 480 if self.on_call is None else 486)
            return
        call = IncomingCall(self, request, handle)
        self._incoming[handle] = call
        self.on_call(call)

    def _on_cancel(self, request: Request, handle: ServerHandle) -> None:
        invite = self.endpoint.core.invite_for_cancel(request)
        call = self._incoming.get(invite) if invite is not None else None
        self._respond(handle, 200 if call is not None else 481)
        if call is not None:
            call.cancelled()

    def _on_message(self, request: Request, handle: ServerHandle) -> None:
        if self.on_message is None:
            self._respond(handle, 480)
            return
        message = IncomingMessage(
            sender=request.headers.get("From") or "",
            recipient=request.headers.get("To") or "",
            content_type=request.content_type or "text/plain",
            body=request.text,
            call_id=request.call_id,
            peer=request.from_.address,
            peer_name=request.from_.display,
        )
        status = self.on_message(message)
        self._respond(handle, status or 200)

    def _on_subscribe(self, request: Request, handle: ServerHandle) -> None:
        if self.on_subscribe is None:
            self._respond(handle, 489 if not request.headers.has("Event") else 403)
            return
        self.on_subscribe(IncomingSubscription(self, request, handle))

    def _on_options(self, _request: Request, handle: ServerHandle) -> None:
        self._respond(handle, 200, Headers().add("Allow", ALLOW))

    def _no_dialog(self, _request: Request, handle: ServerHandle) -> None:
        self._respond(handle, 481)

    _OUT_OF_DIALOG: ClassVar[dict[str, Callable[[UserAgent, Request, ServerHandle], None]]] = {
        "INVITE": _on_invite,
        "CANCEL": _on_cancel,
        "MESSAGE": _on_message,
        "SUBSCRIBE": _on_subscribe,
        "OPTIONS": _on_options,
        "BYE": _no_dialog,
        "NOTIFY": _no_dialog,
        "INFO": _no_dialog,
        "REFER": _no_dialog,
        "UPDATE": _no_dialog,
    }


def _conforms(agent: UserAgent, outgoing: OutgoingCall, incoming: IncomingCall) -> None:
    """mypy checks here that the classes meet the protocols the bridge programs against."""
    _agent: SignalingAgent = agent
    _call: SignalingCall = outgoing
    _incoming: IncomingSignalingCall = incoming
