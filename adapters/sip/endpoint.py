"""One SIP identity on one transport: who we are (AOR, Contact, Via), where requests go, and
sending a request through its transactions with digest answers to 401/407.

Out-of-dialog requests go to the configured proxy (the registrar of the user's domain). An
in-dialog request goes to its first Route, else its Request-URI, when that names an IP address;
a host name goes to the proxy too (the bridge resolves no DNS for SIP: the proxy does).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.sip.address import DEFAULT_PORTS, CSeq, NameAddr, SipUri, Via
from adapters.sip.auth import Credentials, DigestAuth, challenges_of
from adapters.sip.core import SipCore, new_branch
from adapters.sip.dialog import MAX_FORWARDS, new_call_id, new_tag
from adapters.sip.headers import NO_HEADERS, Headers, Params, SipParseError
from adapters.sip.message import DEFAULT_LIMITS, Request, Response, SipLimits
from adapters.sip.transaction import DEFAULT_TIMERS, Timers
from adapters.sip.transport import Address, Transport

log = logging.getLogger("adapters.sip")

# Challenge rounds per request: one for the proxy (407) and one for the registrar or UAS (401),
# and one more for a stale nonce.
MAX_AUTH_ROUNDS = 3
ResponseSink = Callable[[Response], None]


@dataclass(frozen=True, slots=True)
class UaConfig:
    username: str
    password: str = field(repr=False)
    domain: str
    proxy: Address
    transport: str = "udp"
    display_name: str | None = None
    auth_username: str | None = None
    local_host: str = "127.0.0.1"
    local_port: int = 0
    user_agent: str = "ximss-bridge"
    # Seconds between checks that the registrar still knows us (0: none; see registration.py).
    registration_check: float = 0.0
    timers: Timers = DEFAULT_TIMERS
    limits: SipLimits = DEFAULT_LIMITS


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Endpoint:
    def __init__(self, config: UaConfig, core: SipCore, transport: Transport) -> None:
        self.config = config
        self.core = core
        self.transport = transport
        credentials = Credentials(config.auth_username or config.username, config.password)
        self.auth = DigestAuth(credentials)
        self.instance = new_tag()

    # -- identity --------------------------------------------------------------------------------

    @property
    def aor(self) -> NameAddr:
        return NameAddr(
            f"sip:{self.config.username}@{self.config.domain}", self.config.display_name
        )

    @property
    def contact_uri(self) -> str:
        host, port = self.transport.local
        params = Params() if self.transport.name == "UDP" else Params().with_("transport", "tcp")
        return str(SipUri(host, self.config.username, port, params))

    @property
    def contact(self) -> str:
        return f"<{self.contact_uri}>"

    def via(self, branch: str) -> str:
        host, port = self.transport.local
        params = Params().with_("branch", branch).with_("rport", None)
        return str(Via(self.transport.name, host, port, params))

    def target_uri(self, target: str) -> str:
        """A bare user name or user@domain becomes a SIP URI in our domain."""
        target = target.strip()
        if target.startswith("<") and target.endswith(">"):
            target = target[1:-1]
        if target.startswith(("sip:", "sips:", "tel:")):
            return target
        if "@" not in target:
            target = f"{target}@{self.config.domain}"
        return f"sip:{target}"

    def out_of_dialog(
        self,
        method: str,
        target: str,
        *,
        headers: Headers = NO_HEADERS,
        body: bytes = b"",
        content_type: str | None = None,
        to: str | None = None,
        call_id: str | None = None,
        cseq: int = 1,
        from_tag: str | None = None,
        contact: bool = False,
    ) -> Request:
        """A request outside any dialog (section 8.1.1), without Via."""
        uri = self.target_uri(target)
        out = (
            Headers()
            .add("Max-Forwards", MAX_FORWARDS)
            .add("From", str(self.aor.with_tag(from_tag or new_tag())))
            .add("To", to or f"<{uri}>")
            .add("Call-ID", call_id or new_call_id(self.transport.local[0]))
            .add("CSeq", str(CSeq(cseq, method)))
        )
        if contact:
            out = out.add("Contact", self.contact)
        for name, value in headers:
            out = out.add(name, value)
        if body and content_type:
            out = out.add("Content-Type", content_type)
        return Request(headers=out, body=body, method=method, uri=uri)

    # -- routing ---------------------------------------------------------------------------------

    def destination(self, request: Request) -> Address:
        route = request.headers.first("Route")
        try:
            uri = NameAddr.parse(route).sip_uri if route else SipUri.parse(request.uri)
        except SipParseError:
            return self.config.proxy
        if not _is_ip(uri.host):
            return self.config.proxy
        port = uri.port or DEFAULT_PORTS.get(uri.transport, 5060)
        return uri.host.strip("[]"), port

    # -- sending ---------------------------------------------------------------------------------

    def stamp(self, request: Request, branch: str | None = None) -> Request:
        """The request as one transaction sends it: our Via on top, User-Agent, credentials."""
        headers = request.headers.without("Via", "Authorization", "Proxy-Authorization")
        headers = headers.prepend("Via", self.via(branch or new_branch()))
        if not headers.has("User-Agent"):
            headers = headers.add("User-Agent", self.config.user_agent)
        if request.method not in ("ACK", "CANCEL"):
            for name, value in self.auth.headers_for(request.method, request.uri, request.body):
                headers = headers.add(name, value)
        return request.with_headers(headers)

    async def send(
        self,
        request: Request,
        *,
        dest: Address | None = None,
        on_sent: Callable[[Request], None] | None = None,
        on_provisional: ResponseSink | None = None,
        on_response: ResponseSink | None = None,
    ) -> tuple[Request, Response]:
        """Send and wait for the final response, answering digest challenges. Returns the request
        as last sent (its CSeq may have grown) and the final response, whatever its status.
        Raises SipError for a transaction timeout or transport failure."""
        target = dest or self.destination(request)
        for _round in range(MAX_AUTH_ROUNDS + 1):
            sent = self.stamp(request)
            if on_sent is not None:
                on_sent(sent)
            result = await self.core.request(sent, target, on_provisional, on_response)
            if result.status not in (401, 407):
                return sent, result
            header = "WWW-Authenticate" if result.status == 401 else "Proxy-Authenticate"
            challenges = challenges_of(result.status, result.headers.lines(header))
            if not self.auth.accept(challenges):
                return sent, result
            cseq = request.cseq
            request = request.with_headers(
                request.headers.with_("CSeq", str(CSeq(cseq.number + 1, cseq.method)))
            )
        return sent, result

    def send_ack(self, ack: Request) -> None:
        """An ACK for a 2xx is its own transaction-less request (section 13.2.2.4)."""
        self.core.send_stateless(self.stamp(ack), self.destination(ack))
