"""Which outbound URLs and addresses the bridge may fetch from on a client's behalf (sans-IO).

retrieveXML makes the bridge an HTTP client whose target a user chooses, so it is a way into the
operator's network unless every hop passes two gates:

1. The URL must match an operator allowlist prefix exactly: scheme, host, port and a path prefix
   that ends on a segment boundary. URLs are taken apart here, once, and the request is rebuilt
   from the parts, so nothing another parser might read differently (userinfo, backslashes, dot
   segments, raw non-ASCII) is ever accepted.
2. Every address the host resolves to must be globally routable, or the host:port must be on the
   operator's explicit `allow_private` list. The fetch then connects to exactly the vetted
   addresses, never resolving again, so a DNS answer that changes (rebinding) cannot slip by.

Nothing here resolves or connects; `bridge/xmlfetch.py` does the I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from bridge.errors import BridgeError, ErrorKind

DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64's well-known prefix (RFC 6052): a gateway turns 64:ff9b::a.b.c.d into a.b.c.d.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class Target:
    """A URL taken apart and normalised: lower-case scheme and host, explicit port, no fragment."""

    scheme: str
    host: str
    port: int
    path: str
    query: str = ""

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.netloc}{self.path}{query}"


def _refuse(text: str) -> BridgeError:
    return BridgeError(ErrorKind.PERMISSION, text)


def _normal_host(hostname: str | None) -> str:
    """Lower case (urlsplit does that), no final dot, IP literals in their compressed form."""
    host = (hostname or "").rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def parse_url(url: str) -> Target:
    """Take an http(s) URL apart; BAD_REQUEST when it is malformed, PERMISSION when not http(s)."""
    # Printable ASCII only: whitespace, control characters and raw Unicode are read differently by
    # different URL parsers (and IDNA hosts have an ASCII form the operator can allowlist).
    if not url or any(not 0x21 <= ord(char) <= 0x7E for char in url) or "\\" in url:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse("only http and https URLs may be retrieved")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise _refuse("URLs with user information are not allowed")
    host = _normal_host(parts.hostname)
    if not host or "%" in host:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid URL host")
    path = parts.path or "/"
    decoded = unquote(path)
    segments = decoded.split("/")
    if "\\" in decoded or "." in segments or ".." in segments:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid URL path")
    return Target(scheme, host, port or DEFAULT_PORTS[scheme], path, parts.query)


def _prefix_matches(prefix: Target, target: Target) -> bool:
    if (prefix.scheme, prefix.host, prefix.port) != (target.scheme, target.host, target.port):
        return False
    if prefix.query:
        return False  # a prefix names a place, not a query; such an entry matches nothing
    if prefix.path.endswith("/"):
        return target.path.startswith(prefix.path)
    # "/feeds" admits "/feeds" and "/feeds/x", never "/feedsevil".
    return target.path == prefix.path or target.path.startswith(prefix.path + "/")


def allowlisted(target: Target, allowlist: Iterable[str]) -> bool:
    for entry in allowlist:
        try:
            prefix = parse_url(entry)
        except BridgeError:
            continue  # an entry that is not a plain http(s) URL admits nothing
        if _prefix_matches(prefix, target):
            return True
    return False


def check_url(url: str, allowlist: Iterable[str]) -> Target:
    """The target of an allowlisted URL; BridgeError(PERMISSION) for anything else."""
    target = parse_url(url)
    if not allowlisted(target, allowlist):
        raise _refuse("this URL is not allowed")
    return target


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, Teredo client), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True only for an address that is globally routable unicast, as is any address it embeds."""
    if isinstance(address, ipaddress.IPv6Address):
        # Judged by where it leads: ::ffff:8.8.8.8 is as public as 8.8.8.8, ::ffff:10.0.0.1 is not.
        embedded = _embedded_v4(address)
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    # is_global alone lets globally scoped multicast and some reserved ranges through.
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def _normal_hostport(entry: str) -> str:
    try:
        parts = urlsplit(f"http://{entry.strip()}")
        port = parts.port
    except ValueError:
        return ""
    host = _normal_host(parts.hostname)
    if not host or port is None:
        return ""
    return Target("http", host, port, "/").netloc


def private_allowed(target: Target, allow_private: Iterable[str]) -> bool:
    """Whether the operator opted this host:port in to private addresses ("[::1]:8080" for IPv6)."""
    return target.netloc in {_normal_hostport(entry) for entry in allow_private} - {""}


def vet_addresses(
    target: Target, addresses: Iterable[str], allow_private: Iterable[str]
) -> tuple[IPAddress, ...]:
    """The addresses to connect to; PERMISSION if any is not public and the host is not opted in.

    One bad address refuses them all: a name that resolves to a public and a private address is
    exactly what a rebinding or split-horizon attack looks like.
    """
    vetted: list[IPAddress] = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError as exc:
            raise _refuse("the host resolved to an unusable address") from exc
        if address not in vetted:
            vetted.append(address)
    if not vetted:
        raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "the host has no address")
    if not private_allowed(target, allow_private) and not all(map(is_public, vetted)):
        raise _refuse("the host resolves to a private or reserved address")
    return tuple(vetted)
