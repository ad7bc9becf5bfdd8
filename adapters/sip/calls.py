"""Calls: an INVITE dialog seen from either end, with the in-dialog requests a softphone needs.

The session is the owner's business: SDP goes in and out as text, and the owner hears about the
call through its listener (events wait in a small buffer until a listener is set). Requests the
peer sends inside the dialog are answered here from a table (method -> handler).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Protocol
from urllib.parse import unquote

from adapters.sip import errors
from adapters.sip.address import NameAddr
from adapters.sip.core import ServerHandle
from adapters.sip.dialog import Dialog, response_to
from adapters.sip.endpoint import Endpoint
from adapters.sip.headers import NO_HEADERS, Headers, SipParseError
from adapters.sip.message import Request, Response
from adapters.sip.values import (
    CallEvent,
    CallListener,
    CallState,
    Disconnected,
    Dtmf,
    InfoReceived,
    RemoteUpdate,
    TransferProgress,
    TransferRequested,
)
from bridge.errors import BridgeError, ErrorKind

log = logging.getLogger("adapters.sip")

SDP = "application/sdp"
DTMF_RELAY = "application/dtmf-relay"
SIPFRAG = "message/sipfrag;version=2.0"
# Events kept for a call whose owner has not set a listener yet.
MAX_BUFFERED_EVENTS = 64
# Requests that refresh the remote target carry our Contact (section 12.2.1.1).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
DialogKey = tuple[str, str]  # (Call-ID, local tag)


class DialogOwner(Protocol):
    def handle_request(self, request: Request, handle: ServerHandle | None) -> None: ...


class DialogHost(Protocol):
    endpoint: Endpoint

    def bind(self, key: DialogKey, owner: DialogOwner) -> None: ...

    def unbind(self, key: DialogKey) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...


def dtmf_body(digit: str, duration_ms: int) -> str:
    return f"Signal={digit}\r\nDuration={duration_ms}\r\n"


def parse_dtmf(body: str) -> Dtmf | None:
    fields: dict[str, str] = {}
    for line in body.splitlines():
        name, _, value = line.partition("=")
        fields[name.strip().lower()] = value.strip()
    signal = fields.get("signal")
    if not signal:
        return None
    duration = fields.get("duration", "")
    return Dtmf(signal, int(duration) if duration.isdigit() else 0)


def parse_sipfrag(body: str) -> tuple[int, str] | None:
    first = body.strip().split("\n", 1)[0].strip()
    parts = first.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2] if len(parts) > 2 else ""


class Call:
    def __init__(self, host: DialogHost, listener: CallListener | None) -> None:
        self.host = host
        self.endpoint = host.endpoint
        self._listener = listener
        self._buffered: list[CallEvent] = []
        self.state = CallState.CALLING
        self.dialog: Dialog | None = None
        self.local_sdp: str | None = None
        self.remote_sdp: str | None = None
        self._in_dialog = asyncio.Lock()
        self._awaiting_ack: ServerHandle | None = None

    # -- events ----------------------------------------------------------------------------------

    @property
    def listener(self) -> CallListener | None:
        return self._listener

    @listener.setter
    def listener(self, listener: CallListener | None) -> None:
        self._listener = listener
        if listener is not None:
            buffered, self._buffered = self._buffered, []
            for event in buffered:
                listener(event)

    def _emit(self, event: CallEvent) -> None:
        if self._listener is not None:
            self._listener(event)
        elif len(self._buffered) < MAX_BUFFERED_EVENTS:
            self._buffered.append(event)

    def _end(self, event: CallEvent) -> None:
        if self.state is CallState.TERMINATED:
            return
        self.state = CallState.TERMINATED
        self._unbind()
        self._emit(event)

    def _unbind(self) -> None:
        raise NotImplementedError

    # -- requests we send inside the dialog ------------------------------------------------------

    def _dialog(self) -> Dialog:
        if self.dialog is None or self.state is not CallState.CONFIRMED:
            raise BridgeError(ErrorKind.BAD_REQUEST, "the call is not connected")
        return self.dialog

    async def _request(
        self,
        method: str,
        *,
        headers: Headers = NO_HEADERS,
        body: str | None = None,
        content_type: str | None = None,
        on_response: Callable[[Response], None] | None = None,
    ) -> tuple[Request, Response]:
        dialog = self._dialog()
        contact = self.endpoint.contact if method in TARGET_REFRESH else None
        request = dialog.request(
            method, contact=contact, headers=headers,
            body=(body or "").encode(), content_type=content_type,
        )  # fmt: skip
        sent, response = await self.endpoint.send(request, on_response=on_response)
        dialog.sent(sent)
        if response.status in (408, 481) and method != "BYE":
            # Section 12.2.1.2: the dialog is gone at the far end.
            self._end(Disconnected(by_remote=True, reason=response.reason))
        return sent, response

    async def bye(self) -> None:
        """End a connected call. Idempotent; a BYE that fails still ends the call here."""
        if self.state is not CallState.CONFIRMED or self.dialog is None:
            return
        dialog = self.dialog
        self._end(Disconnected(by_remote=False))
        request = dialog.request("BYE")
        try:
            await self.endpoint.send(request)
        except errors.SipError as exc:
            log.debug("BYE failed: %s", exc.status)

    async def reinvite(self, sdp: str) -> str | None:
        """Offer a new session description; returns the answer. SipError when refused (491 when
        both ends re-INVITEd at once); the call stays up unless the answer was 408 or 481."""
        async with self._in_dialog:
            dialog = self._dialog()
            acks: list[Request] = []

            def again(_response: Response) -> None:  # a retransmitted 2xx: ACK it again
                for ack in acks:
                    self.endpoint.send_ack(ack)

            sent, response = await self._request(
                "INVITE", body=sdp, content_type=SDP, on_response=again
            )
            if response.status >= 300:
                raise errors.rejected(response)
            ack = dialog.ack(sent.cseq.number)
            acks.append(ack)
            self.endpoint.send_ack(ack)
            dialog.refresh_target(response)
            self.local_sdp = sdp
            if response.body:
                self.remote_sdp = response.text
            return self.remote_sdp

    async def send_info(self, body: str, content_type: str) -> None:
        _, response = await self._request("INFO", body=body, content_type=content_type)
        if response.status >= 300:
            raise errors.rejected(response)

    async def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """One DTMF digit as SIP INFO application/dtmf-relay."""
        await self.send_info(dtmf_body(digit, duration_ms), DTMF_RELAY)

    async def transfer(self, target: str, *, replaces: str | None = None) -> None:
        """REFER the peer to `target` (blind), or with `replaces` (an attended transfer: the
        Replaces value of the dialog the target should swap). Progress comes as
        TransferProgress events; SipError when the peer refuses the REFER."""
        uri = self.endpoint.target_uri(target)
        if replaces is not None:
            uri += "?Replaces=" + _escape_header(replaces)
        headers = (
            Headers().add("Refer-To", f"<{uri}>").add("Referred-By", f"<{self.endpoint.aor.uri}>")
        )
        _, response = await self._request("REFER", headers=headers)
        if response.status >= 300:
            raise errors.rejected(response)

    async def transfer_attended(self, other: Call) -> None:
        """Transfer the peer to the peer of `other` (RFC 5589 section 7): REFER with Replaces."""
        dialog = other._dialog()
        replaces = f"{dialog.call_id};to-tag={dialog.remote_tag};from-tag={dialog.local_tag}"
        await self.transfer(dialog.remote.uri, replaces=replaces)

    async def notify_transfer(self, status: int, reason: str, *, final: bool = True) -> None:
        """Report the progress of a transfer the peer asked for (RFC 3515 NOTIFY sipfrag)."""
        state = "terminated;reason=noresource" if final else "active;expires=60"
        headers = Headers().add("Event", "refer").add("Subscription-State", state)
        await self._request(
            "NOTIFY", headers=headers, body=f"SIP/2.0 {status} {reason}\r\n", content_type=SIPFRAG
        )

    # -- requests the peer sends inside the dialog -------------------------------------------------

    def handle_request(self, request: Request, handle: ServerHandle | None) -> None:
        if request.method == "ACK":
            self._on_ack(request)
            return
        if handle is None:
            return
        dialog = self.dialog
        if dialog is None:
            self._respond(handle, 481)
            return
        if not dialog.accept_request(request):
            self._respond(handle, 500)
            return
        handler = self._HANDLERS.get(request.method)
        if handler is None:
            self._respond(handle, 501)
            return
        handler(self, request, handle)

    def _respond(
        self, handle: ServerHandle, status: int, *, body: str | None = None,
        content_type: str | None = None, contact: bool = False,
    ) -> None:  # fmt: skip
        headers = Headers().add("Contact", self.endpoint.contact) if contact else Headers()
        response = response_to(
            handle.request, status, headers=headers,
            body=(body or "").encode(), content_type=content_type,
        )  # fmt: skip
        self.endpoint.core.respond(handle, response)

    def _on_ack(self, request: Request) -> None:
        if self._awaiting_ack is not None:
            self.endpoint.core.acked(self._awaiting_ack)
            self._awaiting_ack = None

    def _on_bye(self, _request: Request, handle: ServerHandle) -> None:
        self._respond(handle, 200)
        self._end(Disconnected(by_remote=True))

    def _on_invite(self, request: Request, handle: ServerHandle) -> None:
        if self._awaiting_ack is not None or self._in_dialog.locked():
            self._respond(handle, 491)  # our own re-INVITE (or its ACK) is in flight
            return
        if request.body:
            self.remote_sdp = request.text
        self._awaiting_ack = handle
        self._respond(handle, 200, body=self.local_sdp, content_type=SDP, contact=True)
        self._emit(RemoteUpdate(request.text if request.body else None))

    def _on_info(self, request: Request, handle: ServerHandle) -> None:
        self._respond(handle, 200)
        dtmf = parse_dtmf(request.text) if request.media_type == DTMF_RELAY else None
        self._emit(dtmf or InfoReceived(request.content_type, request.text))

    def _on_refer(self, request: Request, handle: ServerHandle) -> None:
        refer_to = request.headers.get("Refer-To")
        try:
            target = _parse_refer_to(refer_to or "")
        except SipParseError:
            self._respond(handle, 400)
            return
        self._respond(handle, 202, contact=True)
        replaces = _header_param(target.partition("?")[2], "Replaces")
        self._emit(TransferRequested(target, request.headers.get("Referred-By"), replaces))

    def _on_notify(self, request: Request, handle: ServerHandle) -> None:
        self._respond(handle, 200)
        event = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        frag = parse_sipfrag(request.text) if event == "refer" else None
        if frag is not None:
            state = (request.headers.get("Subscription-State") or "").lower()
            final = state.startswith("terminated") or frag[0] >= 200
            self._emit(TransferProgress(frag[0], frag[1], final))

    def _on_options(self, _request: Request, handle: ServerHandle) -> None:
        self._respond(handle, 200)

    _HANDLERS: ClassVar[dict[str, Callable[[Call, Request, ServerHandle], None]]] = {
        "BYE": _on_bye,
        "INVITE": _on_invite,
        "INFO": _on_info,
        "REFER": _on_refer,
        "NOTIFY": _on_notify,
        "OPTIONS": _on_options,
        "UPDATE": _on_options,
    }


def _escape_header(value: str) -> str:
    """Escape a header value for a URI header part (RFC 3261 section 19.1.1 hnv-unreserved)."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()[]/:+$")
    return "".join(c if c in safe else "".join(f"%{b:02X}" for b in c.encode()) for c in value)


def _header_param(query: str, name: str) -> str | None:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key.lower() == name.lower():
            return unquote(value)
    return None


def _parse_refer_to(value: str) -> str:
    return NameAddr.parse(value).uri
