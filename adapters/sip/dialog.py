"""Dialogs (RFC 3261 section 12), sans-IO: identity, route set, remote target, sequence numbers,
and the requests and responses built from them.

Requests are built without Via: the endpoint adds one per transaction (a retry after a digest
challenge is a new transaction with a new branch and the next CSeq).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from adapters.sip.address import NameAddr
from adapters.sip.errors import reason_for
from adapters.sip.headers import NO_HEADERS, Headers, SipParseError
from adapters.sip.message import Request, Response

MAX_FORWARDS = "70"
TAG_BYTES = 8
CALL_ID_BYTES = 16
# Headers a response copies from its request (section 8.2.6.2).
_RESPONSE_COPIES = ("Via", "From", "To", "Call-ID", "CSeq")


def new_tag() -> str:
    return secrets.token_hex(TAG_BYTES)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(CALL_ID_BYTES)}@{host}"


def response_to(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Headers = NO_HEADERS,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response with the request's Via, From, To (plus our tag), Call-ID and CSeq."""
    out = Headers()
    for name in _RESPONSE_COPIES:
        for value in request.headers.lines(name):
            out = out.add(name, value)
    if to_tag is not None and status != 100:
        to = request.to
        if to.tag is None:
            out = out.with_("To", str(to.with_tag(to_tag)))
    if status < 300 and status > 100 and request.method in ("INVITE", "SUBSCRIBE", "REFER"):
        # Section 12.1.1: a dialog-creating response copies the Record-Route.
        for value in request.headers.lines("Record-Route"):
            out = out.add("Record-Route", value)
    for name, value in headers:
        out = out.add(name, value)
    if body and content_type:
        out = out.add("Content-Type", content_type)
    return Response(headers=out, body=body, status=status, reason=reason or reason_for(status))


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local: NameAddr  # our From in requests we send, without tag
    remote: NameAddr
    remote_target: str
    route_set: tuple[str, ...]
    local_seq: int
    remote_seq: int | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """Section 12.1.2: from our request and the 2xx (or 1xx with a tag) that answers it."""
        remote = response.to
        if remote.tag is None:
            raise SipParseError("dialog-creating response without To tag")
        local = request.from_
        contacts = response.contacts
        target = contacts[0].uri if contacts else request.uri
        routes = tuple(reversed(response.headers.values("Record-Route")))
        return cls(
            call_id=request.call_id,
            local_tag=local.tag or "",
            remote_tag=remote.tag,
            local=local.without_tag(),
            remote=remote.without_tag(),
            remote_target=target,
            route_set=routes,
            local_seq=request.cseq.number,
        )

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """Section 12.1.1: from a dialog-creating request we answer with `local_tag`."""
        remote = request.from_
        contacts = request.contacts
        if not contacts:
            raise SipParseError("dialog-creating request without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote.tag or "",
            local=request.to.without_tag(),
            remote=remote.without_tag(),
            remote_target=contacts[0].uri,
            route_set=tuple(request.headers.values("Record-Route")),
            local_seq=secrets.randbelow(1 << 16) + 1,
            remote_seq=request.cseq.number,
        )

    def matches(self, message: Request | Response) -> bool:
        return message.call_id == self.call_id

    def accept_request(self, request: Request) -> bool:
        """Section 12.2.2: a lower or equal CSeq than the last one is out of order (answer 500).
        Refreshes the remote target from a target-refresh request."""
        number = request.cseq.number
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and number <= self.remote_seq:
                return False
            self.remote_seq = number
        if request.method in ("INVITE", "UPDATE", "NOTIFY", "SUBSCRIBE"):
            self.refresh_target(request)
        return True

    def refresh_target(self, message: Request | Response) -> None:
        contacts = message.contacts
        if contacts:
            self.remote_target = contacts[0].uri

    def _route(self) -> tuple[str, list[str]]:
        """Section 12.2.1.1: the Request-URI and Route values (loose or strict routing)."""
        if not self.route_set:
            return self.remote_target, []
        first = NameAddr.parse(self.route_set[0])
        if first.sip_uri.loose_route:
            return self.remote_target, list(self.route_set)
        stripped = str(first.sip_uri).split("?", 1)[0]
        return stripped, [*self.route_set[1:], f"<{self.remote_target}>"]

    def request(
        self,
        method: str,
        *,
        contact: str | None = None,
        headers: Headers = NO_HEADERS,
        body: bytes = b"",
        content_type: str | None = None,
        cseq: int | None = None,
    ) -> Request:
        """A request inside the dialog; takes the next local CSeq unless `cseq` is given (ACK)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        uri, routes = self._route()
        out = Headers()
        for route in routes:
            out = out.add("Route", route)
        out = (
            out.add("Max-Forwards", MAX_FORWARDS)
            .add("From", str(self.local.with_tag(self.local_tag)))
            .add("To", str(self.remote.with_tag(self.remote_tag)))
            .add("Call-ID", self.call_id)
            .add("CSeq", f"{cseq} {method}")
        )
        if contact is not None:
            out = out.add("Contact", contact)
        for name, value in headers:
            out = out.add(name, value)
        if body and content_type:
            out = out.add("Content-Type", content_type)
        return Request(headers=out, body=body, method=method, uri=uri)

    def ack(self, invite_cseq: int, headers: Headers = NO_HEADERS, body: bytes = b"") -> Request:
        """The ACK of a 2xx (section 13.2.2.4): the INVITE's CSeq number, method ACK."""
        return self.request("ACK", headers=headers, body=body, cseq=invite_cseq)

    def sent(self, request: Request) -> None:
        """Keep the local CSeq in step with a request the endpoint re-sent after a challenge."""
        self.local_seq = max(self.local_seq, request.cseq.number)
