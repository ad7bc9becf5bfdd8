"""The calling end: INVITE, provisional responses, 2xx and its ACK, CANCEL, failure."""

from __future__ import annotations

import logging

from adapters.sip import errors
from adapters.sip.address import Via
from adapters.sip.calls import SDP, Call, DialogHost
from adapters.sip.dialog import Dialog
from adapters.sip.headers import NO_HEADERS, Headers, SipParseError
from adapters.sip.message import Request, Response
from adapters.sip.values import CallListener, CallState, Connected, Failed, Provisional

log = logging.getLogger("adapters.sip")


class OutgoingCall(Call):
    def __init__(
        self,
        host: DialogHost,
        target: str,
        sdp: str,
        listener: CallListener | None,
        headers: Headers = NO_HEADERS,
    ) -> None:
        super().__init__(host, listener)
        self.local_sdp = sdp
        self.invite = self.endpoint.out_of_dialog(
            "INVITE", target, headers=headers, body=sdp.encode(), content_type=SDP, contact=True
        )
        self.local_tag = self.invite.from_.tag or ""
        self._sent: Request | None = None
        self._provisional_seen = False
        self._cancel_wanted = False
        self._cancel_sent = False
        self._ack: Request | None = None
        self.host.bind((self.call_id, self.local_tag), self)

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    def _unbind(self) -> None:
        self.host.unbind((self.call_id, self.local_tag))

    async def run(self) -> None:
        """Send the INVITE and follow it to its final response (the agent runs this as a task)."""
        try:
            sent, response = await self.endpoint.send(
                self.invite,
                on_sent=self._on_sent,
                on_provisional=self._on_provisional,
                on_response=self._on_retransmitted_2xx,
            )
        except errors.SipError as exc:
            self._end(Failed(exc.status, exc.reason))
            return
        if response.status >= 300:
            contacts = tuple(c.uri for c in response.contacts) if response.status < 400 else ()
            self._end(Failed(response.status, response.reason, contacts))
            return
        self._confirm(sent, response)
        if self._cancel_wanted:
            await self.bye()  # the 2xx crossed our CANCEL (section 9.1)

    def _on_sent(self, request: Request) -> None:
        self._sent = request

    def _on_provisional(self, response: Response) -> None:
        self._provisional_seen = True
        if self._cancel_wanted:
            self._send_cancel()
            return
        if response.status == 100:
            return
        self.state = CallState.EARLY
        sdp = response.text if response.body else None
        if sdp is not None:
            self.remote_sdp = sdp
        self._emit(Provisional(response.status, response.reason, sdp))

    def _confirm(self, sent: Request, response: Response) -> None:
        try:
            self.dialog = Dialog.as_uac(sent, response)
        except SipParseError:
            log.debug("2xx without To tag; ending the call")
            self._end(Failed(502, "Bad Gateway"))
            return
        self._ack = self.dialog.ack(sent.cseq.number)
        self.endpoint.send_ack(self._ack)
        self.state = CallState.CONFIRMED
        if response.body:
            self.remote_sdp = response.text
        self._emit(Connected(self.remote_sdp))

    def _on_retransmitted_2xx(self, _response: Response) -> None:
        if self._ack is not None:
            self.endpoint.send_ack(self._ack)

    async def hangup(self) -> None:
        """CANCEL while ringing (once a provisional came, as section 9.1 asks), BYE once up."""
        if self.state is CallState.CONFIRMED:
            await self.bye()
        elif self.state is not CallState.TERMINATED:
            self._cancel_wanted = True
            if self._provisional_seen:
                self._send_cancel()

    def _send_cancel(self) -> None:
        """Section 9.1: the INVITE's Request-URI, Call-ID, From, To, CSeq number, Route and top
        Via (same branch), method CANCEL; its own non-INVITE transaction, not authenticated."""
        sent = self._sent
        if sent is None or self._cancel_sent:
            return
        self._cancel_sent = True
        headers = Headers().add("Via", str(Via.parse(sent.headers.values("Via")[0])))
        for value in sent.headers.values("Route"):
            headers = headers.add("Route", value)
        headers = (
            headers.add("Max-Forwards", "70")
            .add("From", sent.headers.get("From") or "")
            .add("To", sent.headers.get("To") or "")
            .add("Call-ID", sent.call_id)
            .add("CSeq", f"{sent.cseq.number} CANCEL")
            .add("User-Agent", self.endpoint.config.user_agent)
        )
        cancel = Request(headers=headers, body=b"", method="CANCEL", uri=sent.uri)
        dest = self.endpoint.destination(sent)
        self.endpoint.core.start_client(cancel, dest, _ignore, _ignore)


def _ignore(_result: object) -> None:
    """The CANCEL's own answer does not matter: the INVITE's 487 (or 2xx) does."""
