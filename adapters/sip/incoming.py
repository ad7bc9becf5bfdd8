"""The called end: an INVITE the owner provisions, accepts, rejects or redirects.

The answers are immediate (a response is queued on the server transaction), so these methods
are plain functions; only `hangup` of a connected call waits for its BYE.
"""

from __future__ import annotations

from adapters.sip.calls import SDP, Call, DialogHost
from adapters.sip.core import ServerHandle
from adapters.sip.dialog import Dialog, new_tag, response_to
from adapters.sip.errors import reason_for
from adapters.sip.headers import NO_HEADERS, Headers, SipParseError
from adapters.sip.message import Request
from adapters.sip.values import CallListener, CallState, Connected, Disconnected, Failed
from bridge.errors import BridgeError, ErrorKind


class IncomingCall(Call):
    def __init__(
        self,
        host: DialogHost,
        request: Request,
        handle: ServerHandle,
        listener: CallListener | None = None,
    ) -> None:
        super().__init__(host, listener)
        self.request = request
        self.handle = handle
        self.local_tag = new_tag()
        self.caller = request.from_
        self.callee = request.to
        self.peer = self.caller.address
        self.peer_name = self.caller.display
        self.replaces = request.headers.get("Replaces")
        self.referred_by = request.headers.get("Referred-By")
        self.remote_sdp = request.text if request.body else None
        self._connected_sent = False
        handle.on_failure = self._transaction_failed
        self.host.bind((self.call_id, self.local_tag), self)
        self._answer(100)

    @property
    def call_id(self) -> str:
        return self.request.call_id

    def _unbind(self) -> None:
        self.host.unbind((self.call_id, self.local_tag))

    def _answer(
        self, status: int, reason: str | None = None, *, sdp: str | None = None,
        headers: Headers = NO_HEADERS,
    ) -> None:  # fmt: skip
        if 100 < status < 300:
            headers = headers.add("Contact", self.endpoint.contact)
        response = response_to(
            self.request, status, reason or reason_for(status), to_tag=self.local_tag,
            headers=headers, body=(sdp or "").encode(), content_type=SDP if sdp else None,
        )  # fmt: skip
        self.endpoint.core.respond(self.handle, response)

    def _pending(self) -> None:
        if self.state not in (CallState.CALLING, CallState.EARLY):
            raise BridgeError(ErrorKind.BAD_REQUEST, "the call was already answered or ended")

    def provision(self, sdp: str | None = None) -> None:
        """Ringing: 180 without a description, 183 Session Progress with early media."""
        self._pending()
        self.state = CallState.EARLY
        if sdp is not None:
            self.local_sdp = sdp
        self._answer(183 if sdp is not None else 180, sdp=sdp)

    def accept(self, sdp: str) -> None:
        """Answer 200 with our description; Connected follows when the ACK arrives."""
        self._pending()
        try:
            self.dialog = Dialog.as_uas(self.request, self.local_tag)
        except SipParseError as exc:
            self.reject(400)
            raise BridgeError(ErrorKind.BAD_REQUEST, "the INVITE had no Contact") from exc
        self.local_sdp = sdp
        self.state = CallState.CONFIRMED
        self._awaiting_ack = self.handle
        self._answer(200, sdp=sdp)

    def reject(self, status: int = 486, reason: str | None = None) -> None:
        self._pending()
        if not 300 <= status <= 699:
            raise BridgeError(ErrorKind.BAD_REQUEST, "a rejection needs a 3xx-6xx status")
        self._answer(status, reason)
        self._end(Failed(status, reason or reason_for(status)))

    def redirect(self, contacts: list[str], status: int = 302) -> None:
        self._pending()
        headers = Headers()
        for contact in contacts:
            headers = headers.add("Contact", f"<{self.endpoint.target_uri(contact)}>")
        self._answer(status, headers=headers)
        self._end(Failed(status, reason_for(status), tuple(contacts)))

    async def hangup(self) -> None:
        if self.state is CallState.CONFIRMED:
            await self.bye()
        elif self.state is not CallState.TERMINATED:
            self.reject(603)

    def cancelled(self) -> None:
        """The caller CANCELled (the agent has answered the CANCEL itself)."""
        if self.state in (CallState.CALLING, CallState.EARLY):
            self._answer(487)
            self._end(Failed(487, reason_for(487)))

    def _on_ack(self, request: Request) -> None:
        first = self._awaiting_ack is self.handle and not self._connected_sent
        super()._on_ack(request)
        if first:
            self._connected_sent = True
            if request.body:  # an offer-less INVITE gets its answer in the ACK
                self.remote_sdp = request.text
            self._emit(Connected(self.remote_sdp))

    def _transaction_failed(self, reason: str) -> None:
        if reason == "no-ack" and self.state is CallState.CONFIRMED:
            # Section 13.3.1.4: no ACK for our 2xx within 64*T1 ends the dialog with a BYE.
            self.host.spawn(self.bye(), f"bye-no-ack {self.call_id}")
        elif self.state is not CallState.TERMINATED:
            self._end(Disconnected(by_remote=True, reason=reason))
