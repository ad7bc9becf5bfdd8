"""Structured header values: SIP URIs, name-addr (From/To/Contact/Route), Via and CSeq.

Each parses from and serializes to the header text; parsing raises only SipParseError. Unknown
parameters are kept, so a value passes through a proxy-like round trip unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from adapters.sip.headers import (
    NO_PARAMS,
    Params,
    SipParseError,
    is_token,
    quote,
    split_top_level,
    unquote,
)

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 branch prefix
DEFAULT_PORTS: dict[str, int] = {"udp": 5060, "tcp": 5060, "tls": 5061}


def _split_hostport(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("bad IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError("bad host:port")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = text.partition(":")
    if not host or any(char in host for char in ' \t<>"@;?,'):
        raise SipParseError("bad host")
    if not port_text:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SipParseError("bad port")
    return host, int(port_text)


def _hostport(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class SipUri:
    """sip:/sips: URI (RFC 3261 section 19.1). `user` keeps its escapes as sent."""

    host: str
    user: str | None = None
    port: int | None = None
    params: Params = NO_PARAMS
    headers: str = ""  # the raw text after '?', without it
    scheme: str = "sip"
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise SipParseError("not a sip URI")
        rest, _, headers = rest.partition("?")
        user = password = None
        at = rest.rfind("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, pw_sep, pw = userinfo.partition(":")
            password = pw if pw_sep else None
            if not user or any(char in user for char in ' \t<>"'):
                raise SipParseError("bad user part")
        hostport, semi, param_text = rest.partition(";")
        host, port = _split_hostport(hostport)
        params = Params.parse(param_text) if semi else Params()
        return cls(host, user, port, params, headers, scheme, password)

    @property
    def transport(self) -> str:
        default = "tls" if self.scheme == "sips" else "udp"
        return (self.params.get("transport") or default).lower()

    @property
    def loose_route(self) -> bool:
        return self.params.has("lr")

    @property
    def aor(self) -> str:
        """The address of record: scheme, user and host, nothing else."""
        userinfo = f"{self.user}@" if self.user else ""
        return f"{self.scheme}:{userinfo}{self.host}"

    def with_params(self, params: Params) -> SipUri:
        return replace(self, params=params)

    def __str__(self) -> str:
        userinfo = ""
        if self.user:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        tail = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{_hostport(self.host, self.port)}{self.params}{tail}"


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From, To, Contact, Route, Record-Route, Refer-To elements. `uri` is kept as text so tel:
    and other schemes pass through; `sip_uri` parses it when the caller needs the parts."""

    uri: str
    display: str | None = None
    params: Params = NO_PARAMS

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        display: str | None = None
        if text.startswith('"'):
            end = _closing_quote(text)
            display, text = unquote(text[: end + 1]), text[end + 1 :].lstrip()
            if not text.startswith("<"):
                raise SipParseError("display name without <uri>")
        lt = text.find("<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError("unterminated <uri>")
            if display is None and text[:lt].strip():
                display = " ".join(text[:lt].split())
            uri, rest = text[lt + 1 : gt].strip(), text[gt + 1 :]
            rest = rest.strip()
            if rest and not rest.startswith(";"):
                raise SipParseError("junk after <uri>")
        else:
            # addr-spec form: parameters after ';' belong to the header, not the URI.
            uri, _, rest = text.partition(";")
            uri = uri.strip()
            # "<" and ">" too: written back as <uri>, they would end it early (tests/fuzz).
            if any(char in uri for char in " \t,?<>"):
                raise SipParseError("bad addr-spec")
        if ":" not in uri or not uri.split(":", 1)[0]:
            raise SipParseError("URI without scheme")
        return cls(uri, display, Params.parse(rest))

    @classmethod
    def parse_list(cls, text: str) -> list[NameAddr]:
        return [cls.parse(item) for item in split_top_level(text, ",") if item]

    @property
    def sip_uri(self) -> SipUri:
        return SipUri.parse(self.uri)

    @property
    def address(self) -> str:
        """`user@host` of a sip: URI (what XIMSS calls a peer's E-mail address); other URIs
        (tel:...) as written."""
        try:
            uri = self.sip_uri
        except SipParseError:
            return self.uri
        return f"{uri.user}@{uri.host}" if uri.user else uri.host

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params=self.params.with_("tag", tag))

    def without_tag(self) -> NameAddr:
        return replace(self, params=self.params.without("tag"))

    def __str__(self) -> str:
        name = f"{quote(self.display)} " if self.display else ""
        return f"{name}<{self.uri}>{self.params}"


def _closing_quote(text: str) -> int:
    escaped = False
    for index in range(1, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return index
    raise SipParseError("unterminated quoted string")


@dataclass(frozen=True, slots=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS
    host: str
    port: int | None = None
    params: Params = NO_PARAMS

    @classmethod
    def parse(cls, text: str) -> Via:
        protocol, _, rest = text.strip().partition(" ")
        parts = [part.strip() for part in protocol.split("/")]
        rest = rest.strip()
        # "SIP / 2.0 / UDP host" is legal: the spaces may sit around the slashes.
        while len(parts) < 3 or not parts[-1]:
            word, _, rest = rest.partition(" ")
            parts = [part.strip() for part in "/".join([*parts, word]).split("/") if part.strip()]
            if not word:
                break
        if len(parts) != 3 or parts[0].upper() != "SIP" or not is_token(parts[2]):
            raise SipParseError("bad Via protocol")
        sent_by, semi, param_text = rest.strip().partition(";")
        host, port = _split_hostport(sent_by)
        params = Params.parse(param_text) if semi else Params()
        return cls(parts[2].upper(), host, port, params)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        return self.host, self.port or DEFAULT_PORTS.get(self.transport.lower(), 5060)

    def response_address(self, source: tuple[str, int] | None) -> tuple[str, int]:
        """Where a response to this hop goes (RFC 3261 18.2.2 with RFC 3581 rport)."""
        host = self.params.get("received") or self.host
        rport = self.params.get("rport")
        if rport and rport.isdigit():
            return host, int(rport)
        if rport is not None and source is not None:
            return host, source[1]
        return host, self.sent_by[1]

    def with_params(self, params: Params) -> Via:
        return replace(self, params=params)

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {_hostport(self.host, self.port)}{self.params}"


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit():
            raise SipParseError("bad CSeq")
        number = int(parts[0])
        if number >= 2**31 or not is_token(parts[1]):
            raise SipParseError("bad CSeq")
        return cls(number, parts[1])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"
