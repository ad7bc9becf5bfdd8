"""Event subscriptions (RFC 6665) in both directions, for presence and anything else.

Ours: SUBSCRIBE, a dialog made by the 2xx or by a NOTIFY that overtakes it, refresh before
expiry, every NOTIFY to the owner's callback. Theirs: the owner decides (the bridge authorizes
watchers), then sends NOTIFYs; an unrefreshed subscription ends at its expiry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from adapters.sip import errors
from adapters.sip.calls import DialogHost
from adapters.sip.core import ServerHandle
from adapters.sip.dialog import Dialog, new_tag, response_to
from adapters.sip.headers import Headers, Params, SipParseError
from adapters.sip.message import Request
from adapters.sip.registration import refresh_delay
from adapters.sip.values import Notification, RequestResult

log = logging.getLogger("adapters.sip")

DEFAULT_SUBSCRIBE_EXPIRES = 600
# The longest subscription we grant a watcher, whatever it asks.
MAX_SUBSCRIPTION_EXPIRES = 3600
ACCEPT_FOR_EVENT: dict[str, str] = {
    "presence": "application/pidf+xml",
    "message-summary": "application/simple-message-summary",
    "presence.winfo": "application/watcherinfo+xml",
}
NotifySink = Callable[[Notification], None]


def event_name(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def parse_state(value: str | None) -> tuple[str, Params]:
    state, _, rest = (value or "active").partition(";")
    return state.strip().lower(), Params.parse(rest)


class Subscription:
    """A subscription we hold to someone's events."""

    def __init__(
        self, host: DialogHost, target: str, event: str, expires: int, on_notify: NotifySink
    ) -> None:
        self.host = host
        self.endpoint = host.endpoint
        self.event = event
        self.expires = expires
        self.on_notify = on_notify
        headers = Headers().add("Event", event).add("Expires", str(expires))
        accept = ACCEPT_FOR_EVENT.get(event)
        if accept:
            headers = headers.add("Accept", accept)
        self.request = self.endpoint.out_of_dialog(
            "SUBSCRIBE", target, headers=headers, contact=True
        )
        self.local_tag = self.request.from_.tag or ""
        self.dialog: Dialog | None = None
        self.state = "pending"
        self._refresher: asyncio.Task[None] | None = None
        host.bind((self.request.call_id, self.local_tag), self)

    async def start(self) -> RequestResult:
        """SUBSCRIBE; a non-2xx final raises SipError (the subscription is then dropped)."""
        try:
            sent, response = await self.endpoint.send(self.request)
        except errors.SipError:
            self._drop()
            raise
        if response.status >= 300:
            self._drop()
            raise errors.rejected(response)
        if self.dialog is None:
            try:
                self.dialog = Dialog.as_uac(sent, response)
            except SipParseError as exc:
                self._drop()
                raise errors.SipError(errors.kind_for(502), 502, "Bad Gateway") from exc
        else:
            self.dialog.sent(sent)
            self.dialog.refresh_target(response)
        self._schedule(response.header_int("Expires") or self.expires)
        return RequestResult(response.status, response.reason)

    def _schedule(self, granted: int) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        name = f"sip-subscribe-refresh {self.request.call_id}"
        self._refresher = self.host.spawn(self._refresh(refresh_delay(granted)), name)

    async def _refresh(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.dialog is None or self.state == "terminated":
            return
        headers = Headers().add("Event", self.event).add("Expires", str(self.expires))
        request = self.dialog.request("SUBSCRIBE", contact=self.endpoint.contact, headers=headers)
        try:
            sent, response = await self.endpoint.send(request)
        except errors.SipError as exc:
            response = None
            log.debug("subscription refresh failed: %s", exc.status)
        if response is None or response.status >= 300:
            self._terminated("refresh-failed")
            return
        self.dialog.sent(sent)
        self._refresher = None
        self._schedule(response.header_int("Expires") or self.expires)

    async def unsubscribe(self) -> None:
        """SUBSCRIBE with Expires: 0; the final NOTIFY still reaches the callback."""
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self.dialog is None or self.state == "terminated":
            self._drop()
            return
        headers = Headers().add("Event", self.event).add("Expires", "0")
        request = self.dialog.request("SUBSCRIBE", contact=self.endpoint.contact, headers=headers)
        try:
            sent, _ = await self.endpoint.send(request)
            self.dialog.sent(sent)
        except errors.SipError as exc:
            log.debug("unsubscribe failed: %s", exc.status)
            self._drop()

    def handle_request(self, request: Request, handle: ServerHandle | None) -> None:
        if handle is None:
            return
        if request.method != "NOTIFY":
            self.endpoint.core.respond(handle, response_to(request, 405))
            return
        if event_name(request.headers.get("Event")) != event_name(self.event):
            self.endpoint.core.respond(handle, response_to(request, 489))
            return
        if self.dialog is None:
            # RFC 6665 section 4.1.2.4: the NOTIFY may arrive before the SUBSCRIBE's 2xx.
            self.dialog = _dialog_from_notify(request, self.request)
        if not self.dialog.accept_request(request):
            self.endpoint.core.respond(handle, response_to(request, 500))
            return
        self.endpoint.core.respond(handle, response_to(request, 200))
        state, params = parse_state(request.headers.get("Subscription-State"))
        self.state = state
        self.on_notify(
            Notification(self.event, state, request.content_type,
                         request.text, params.get("reason"))
        )  # fmt: skip
        if state == "terminated":
            self._drop()

    def _terminated(self, reason: str) -> None:
        if self.state != "terminated":
            self.state = "terminated"
            self.on_notify(Notification(self.event, "terminated", None, "", reason))
        self._drop()

    def _drop(self) -> None:
        self.state = "terminated"
        if self._refresher is not None and self._refresher is not asyncio.current_task():
            self._refresher.cancel()
        self._refresher = None
        self.host.unbind((self.request.call_id, self.local_tag))


def _dialog_from_notify(notify: Request, subscribe: Request) -> Dialog:
    remote = notify.from_
    contacts = notify.contacts
    return Dialog(
        call_id=notify.call_id,
        local_tag=subscribe.from_.tag or "",
        remote_tag=remote.tag or "",
        local=subscribe.from_.without_tag(),
        remote=remote.without_tag(),
        remote_target=contacts[0].uri if contacts else subscribe.uri,
        route_set=tuple(notify.headers.values("Record-Route")),
        local_seq=subscribe.cseq.number,
    )


class IncomingSubscription:
    """A watcher's SUBSCRIBE, waiting for the owner's accept or reject."""

    def __init__(self, host: DialogHost, request: Request, handle: ServerHandle) -> None:
        self.host = host
        self.endpoint = host.endpoint
        self.request = request
        self.handle = handle
        self.subscriber = request.from_
        self.event = event_name(request.headers.get("Event"))
        asked = request.header_int("Expires")
        self.expires = min(
            MAX_SUBSCRIPTION_EXPIRES, DEFAULT_SUBSCRIBE_EXPIRES if asked is None else asked
        )
        self.local_tag = new_tag()
        self.dialog: Dialog | None = None
        self.state = "pending"
        self.on_end: Callable[[IncomingSubscription], None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.request.call_id, self.local_tag

    def _answer(self, request: Request, handle: ServerHandle, status: int) -> None:
        headers = Headers().add("Expires", str(self.expires))
        if status < 300:
            headers = headers.add("Contact", self.endpoint.contact)
        response = response_to(request, status, to_tag=self.local_tag, headers=headers)
        self.endpoint.core.respond(handle, response)

    def accept(self, *, pending: bool = False) -> None:
        """200 (or 202 while authorization is pending); send a NOTIFY at once after this."""
        self.dialog = Dialog.as_uas(self.request, self.local_tag)
        self.state = "pending" if pending else "active"
        self.host.bind(self.key, self)
        self._answer(self.request, self.handle, 202 if pending else 200)
        self._arm_expiry()

    def reject(self, status: int = 403) -> None:
        self.state = "terminated"
        self.endpoint.core.respond(
            self.handle, response_to(self.request, status, to_tag=self.local_tag)
        )

    async def notify(
        self, body: str, content_type: str = "application/pidf+xml", *, state: str | None = None,
        reason: str | None = None,
    ) -> RequestResult:  # fmt: skip
        """Send the current state; `state` "active", "pending" or "terminated"."""
        if self.dialog is None:
            raise errors.SipError(errors.kind_for(481), 481, "no subscription dialog")
        self.state = state or self.state
        sub_state = self.state
        if sub_state == "terminated":
            sub_state += f";reason={reason or 'noresource'}"
        else:
            sub_state += f";expires={self.expires}"
        headers = Headers().add("Event", self.event).add("Subscription-State", sub_state)
        request = self.dialog.request(
            "NOTIFY", contact=self.endpoint.contact, headers=headers,
            body=body.encode(), content_type=content_type if body else None,
        )  # fmt: skip
        sent, response = await self.endpoint.send(request)
        self.dialog.sent(sent)
        if self.state == "terminated" or response.status in (481, 408):
            self._end()
        return RequestResult(response.status, response.reason)

    async def terminate(self, reason: str = "noresource") -> None:
        if self.state != "terminated":
            try:
                await self.notify("", state="terminated", reason=reason)
            except errors.SipError as exc:
                log.debug("final NOTIFY failed: %s", exc.status)
        self._end()

    def handle_request(self, request: Request, handle: ServerHandle | None) -> None:
        if handle is None or self.dialog is None:
            return
        if request.method != "SUBSCRIBE" or not self.dialog.accept_request(request):
            self.endpoint.core.respond(
                handle, response_to(request, 500 if request.method == "SUBSCRIBE" else 405)
            )
            return
        asked = request.header_int("Expires")
        self.expires = min(
            MAX_SUBSCRIPTION_EXPIRES, DEFAULT_SUBSCRIBE_EXPIRES if asked is None else asked
        )
        self._answer(request, handle, 200)
        if self.expires == 0:
            self.host.spawn(self.terminate("timeout"), f"sip-unsubscribed {request.call_id}")
        else:
            self._arm_expiry()

    def _arm_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self.expires > 0:
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(self.expires, self._expired)

    def _expired(self) -> None:
        self._expiry = None
        self.host.spawn(
            self.terminate("timeout"), f"sip-subscription-expired {self.request.call_id}"
        )

    def _end(self) -> None:
        self.state = "terminated"
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.host.unbind(self.key)
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            on_end(self)
