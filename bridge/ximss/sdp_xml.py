"""SDP text (RFC 4566) <-> the XIMSS XML presentation of SDP, both ways.

Where the shape comes from. XIMSS 5.1 only refers to "the XML presentation of the client SDP
descriptor" and to its `ip` attribute; CommuniGate's own page for the format was not among the
sources we could read. What we could read is a deployed XIMSS client for CommuniGate Pro 6.x
(github.com/sipnet/ximsswrapper, ximsswrapper.js): it converts browser SDP with an SDPXML library
it loads from elsewhere, reads CommuniGate's callIncoming/callConnected bodies the same way, and,
for a client without WebRTC, sends a hand-written descriptor. Since that is what CommuniGate
servers accept from it, we take its vocabulary unchanged:

    <sdp origUser="-" sessionID="4711" sessionVersion="2" origIP="[192.0.2.10]">
      <attr name="group">BUNDLE audio</attr>
      <media media="audio" protocol="RTP/SAVPF" ip="[192.0.2.10]:50000" rtcp="[0.0.0.0]:9"
             direction="sendrecv">
        <codec id="0" name="PCMU/8000"/><codec id="101" name="telephone-event/8000"/>
      </media>
    </sdp>

- o= becomes origUser, sessionID, sessionVersion and origIP on <sdp>; addresses are written as
  CommuniGate writes them, in brackets, "[addr]" or "[addr]:port".
- a session-level c= is the `ip` attribute on <sdp>, "the default media IP address" 5.1 asks for.
- m= is a <media> element: media, protocol, and ip="[addr]:port" with the address of the media's own
  c= or, failing that, the session's; a=rtcp is rtcp="[addr]:port" (or just the port); a direction
  line (sendrecv, sendonly, recvonly, inactive) is direction=.
- the formats of m= are <codec> elements in m= order: id is the format, name the a=rtpmap encoding.
- every other a= line is <attr name="...">value</attr> (no text for a flag such as rtcp-mux): ICE
  (ice-ufrag, ice-pwd, candidate, end-of-candidates), DTLS and SDES (fingerprint, setup, crypto),
  fmtp, ptime, rtcp-fb, extmap, mid, msid, ssrc and everything unknown, in text order.
Ours, because the sample shows none of it: <line type="b">AS:64</line> for any other line (b=, i=,
u=, e=, p=, k=, r=, z=, a t= other than "0 0", unknown letters, and any line that cannot take its
structured place), sessionName= for an s= other than "-", port= for a media without any address,
and portCount= for m=<media> <port>/<count>. Like the client above, an <sdp> (or <sdpText>) whose
body is plain SDP text is read as text.

Lossless by construction: a line becomes structure only where the structure writes it back to
the same place (o= right after v=, c= before b=/t=/a=, a=rtcp as the media's first a= line, the
direction as its last, rtpmap lines where their <codec> stands); anywhere else it stays an <attr> or
<line>, in order. So text -> XML -> text returns every line in its place (line ends become CRLF,
blank lines go, m= is re-spaced), and XML -> text -> XML returns the XML we write. Known
normalizations: XML cannot say "no s=" or "no t=", so those mandatory lines come back as s=- and
t=0 0; session <attr>s after the first <media> (the sample above has one) are session attributes
and are written before it; a format without an rtpmap line is a nameless <codec>, placed before the
next named one.
Limits bound what any client or peer can make us hold: MAX_SDP_BYTES, MAX_LINES, MAX_LINE_CHARS,
MAX_MEDIA and MAX_FORMATS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias, TypeVar

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind

MAX_SDP_BYTES = 64 * 1024  # a WebRTC offer with video and a dozen candidates is under 10 KiB
MAX_LINES = 2000
MAX_LINE_CHARS = 4096
MAX_MEDIA = 64
MAX_FORMATS = 128  # per m= line; RTP has 128 payload types

DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
# "No address yet" (ICE offers before gathering); addresses we read, never bind.
UNSPECIFIED = frozenset({"0.0.0.0", "::"})  # noqa: S104

# Where each line type stands (RFC 4566 section 5): a structured line is written back before the
# first line that ranks after it. Unknown letters rank with a= lines.
_SESSION_RANKS = dict(zip("vosiuepcbtrzka", range(14), strict=True))
_MEDIA_RANKS = {"i": 3, "c": 7, "b": 8, "k": 12, "a": 13}
_A_RANK = 13
_RTCP_RANK = 12.5  # the first a= line of its media, where browsers put it
_DIRECTION_RANK = 14.0  # the last line of its media, where SIP softphones put it

_LINE = re.compile(r"([a-z])=(.*)")
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # RFC 4566 token
_PROTOCOL = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~/]+")
_FIELD = re.compile(r"\S+")
_ADDRESS = re.compile(r"[^\s\[\]/]+")
_PORT = re.compile(r"[0-9]{1,5}")
_BRACKETED = re.compile(r"\[([^\s\[\]/]+)\](?::([0-9]{1,5}))?")
_BARE = re.compile(r"([^\s\[\]/:]+)(?::([0-9]{1,5}))?")
# Neither an SDP line nor XML can carry these (a tab can stand in a value).
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Origin:
    user: str
    session_id: str
    session_version: str
    address: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    port: int
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Attribute:
    """An a= line: a=name (value None) or a=name:value."""

    name: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """Any other line, kept as written: kind is its letter."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Codec:
    """One format of m=; a name is written as its a=rtpmap line, where the codec stands."""

    payload: str
    name: str | None = None


Item: TypeAlias = Attribute | Line | Codec


@dataclass(frozen=True, slots=True)
class Media:
    media: str
    port: int
    protocol: str
    port_count: int | None = None
    address: str | None = None  # its own c= line
    rtcp: Endpoint | None = None
    direction: str | None = None
    items: tuple[Item, ...] = ()

    @property
    def codecs(self) -> tuple[Codec, ...]:
        return tuple(item for item in self.items if isinstance(item, Codec))

    def values(self, name: str) -> tuple[str | None, ...]:
        """The values of the a=<name> lines kept as attributes (candidate, fingerprint, fmtp...)."""
        return tuple(i.value for i in self.items if isinstance(i, Attribute) and i.name == name)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin: Origin | None = None
    session_name: str | None = "-"
    address: str | None = None  # the session-level c= line: the `ip` attribute
    timing: bool = True  # the one line t=0 0
    items: tuple[Item, ...] = ()
    media: tuple[Media, ...] = ()


def _bad(detail: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, detail)


def _too_large(detail: str) -> BridgeError:
    return BridgeError(ErrorKind.LIMIT, detail)


# --- SDP text -> model ---------------------------------------------------------------------------


def parse_sdp(data: bytes | str) -> SessionDescription:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_SDP_BYTES:
        raise _too_large("SDP too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad("SDP is not UTF-8") from exc
    lines = _lines(text)
    if not lines or lines[0] != ("v", "0") or any(kind == "v" for kind, _ in lines[1:]):
        raise _bad("SDP must begin with v=0, and only there")
    starts = [i for i, (kind, _) in enumerate(lines) if kind == "m"]
    if len(starts) > MAX_MEDIA:
        raise _too_large("too many media in SDP")
    session = _session(lines[1 : starts[0] if starts else len(lines)])
    ends = [*starts[1:], len(lines)][: len(starts)]
    media = tuple(_media(lines[s][1], lines[s + 1 : e]) for s, e in zip(starts, ends, strict=True))
    return replace(session, media=media)


def _lines(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        if not line:
            continue
        if len(out) >= MAX_LINES or len(line) > MAX_LINE_CHARS:
            raise _too_large("SDP has too many or too long lines")
        match = _LINE.fullmatch(line)
        if match is None or _UNSAFE.search(line):
            raise _bad("malformed SDP line")
        out.append((match[1], match[2]))
    return out


def _item(kind: str, value: str) -> Item:
    if kind == "a":
        name, colon, rest = value.partition(":")
        if _TOKEN.fullmatch(name) and (not colon or rest):
            return Attribute(name, rest if colon else None)
    return Line(kind, value)


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _origin(value: str) -> Origin | None:
    parts = value.split(" ")
    if len(parts) != 6 or not all(_FIELD.fullmatch(part) for part in parts):
        return None
    user, session_id, version, nettype, addrtype, address = parts
    if nettype != "IN" or not _ADDRESS.fullmatch(address) or addrtype != _addrtype(address):
        return None
    return Origin(user, session_id, version, address)


def _connection(value: str) -> str | None:
    parts = value.split(" ")
    if len(parts) == 3 and parts[0] == "IN" and _ADDRESS.fullmatch(parts[2]):
        return parts[2] if parts[1] == _addrtype(parts[2]) else None
    return None


def _rtcp(value: str) -> Endpoint | None:
    parts = value.split(" ")
    if not _PORT.fullmatch(parts[0]) or int(parts[0]) > 65535:
        return None
    if len(parts) == 1:
        return Endpoint(int(parts[0]))
    address = _connection(" ".join(parts[1:]))
    return Endpoint(int(parts[0]), address) if address is not None else None


def _session_name(value: str) -> str | None:
    return None if "\t" in value else value  # an XML attribute cannot keep a tab as written


# The session lines that can become attributes of <sdp>, each with its reader.
_SESSION_FIELDS: dict[str, Callable[[str], object | None]] = {
    "o": _origin,
    "s": _session_name,
    "c": _connection,
    "t": lambda value: True if value == "0 0" else None,
}

_T = TypeVar("_T")


def _settle(
    found: dict[str, int],
    build: Callable[[dict[str, int]], _T],
    render: Callable[[_T], list[str]],
    original: list[str],
) -> _T:
    """The model with every structured line that writes back in place; if they clash, none."""
    keep = {kind: at for kind, at in found.items() if render(build({kind: at})) == original}
    model = build(keep)
    return model if render(model) == original else build({})


def _kind_is(kind: str) -> Callable[[str, str], bool]:
    return lambda other, _: other == kind


def _single(lines: Sequence[tuple[str, str]], match: Callable[[str, str], bool]) -> int | None:
    hits = [i for i, (kind, value) in enumerate(lines) if match(kind, value)]
    return hits[0] if len(hits) == 1 else None


def _session(lines: Sequence[tuple[str, str]]) -> SessionDescription:
    found: dict[str, int] = {}
    for kind, read in _SESSION_FIELDS.items():
        at = _single(lines, _kind_is(kind))
        if at is not None and read(lines[at][1]) is not None:
            found[kind] = at

    def build(keep: dict[str, int]) -> SessionDescription:
        def value(kind: str) -> str | None:
            return lines[keep[kind]][1] if kind in keep else None

        origin, name, connection, timing = (value(kind) for kind in "osct")
        skip = set(keep.values())
        return SessionDescription(
            origin=_origin(origin) if origin is not None else None,
            session_name=name,
            address=_connection(connection) if connection is not None else None,
            timing=timing is not None,
            items=tuple(_item(k, v) for i, (k, v) in enumerate(lines) if i not in skip),
        )

    original = ["v=0", *(f"{kind}={value}" for kind, value in lines)]
    return _settle(found, build, _render_session, original)


def _rtpmaps(body: Sequence[tuple[str, str]], formats: Sequence[str]) -> dict[int, Codec]:
    """Line index -> named codec for the rtpmap lines that can stand as <codec>s, or nothing."""
    if len(set(formats)) != len(formats):
        return {}
    named: dict[int, Codec] = {}
    for at, (kind, value) in enumerate(body):
        if kind != "a" or not value.startswith("rtpmap:"):
            continue
        payload, space, name = value[len("rtpmap:") :].partition(" ")
        fresh = all(codec.payload != payload for codec in named.values())
        if space and fresh and payload in formats and _FIELD.fullmatch(name):
            named[at] = Codec(payload, name)  # a second rtpmap for one format stays an <attr>
    order = [formats.index(codec.payload) for codec in named.values()]
    return named if order == sorted(order) else {}  # a <codec> cannot stand in two orders


def _media(header: str, body: Sequence[tuple[str, str]]) -> Media:
    fields = header.split()
    if len(fields) < 4:
        raise _bad("malformed m= line")
    media, port_text, protocol, *formats = fields
    port, slash, count = port_text.partition("/")
    if not (_TOKEN.fullmatch(media) and _PROTOCOL.fullmatch(protocol) and _PORT.fullmatch(port)):
        raise _bad("malformed m= line")
    if int(port) > 65535 or (slash and not (_PORT.fullmatch(count) and int(count) > 0)):
        raise _bad("malformed m= line")
    if not all(_TOKEN.fullmatch(each) for each in formats):
        raise _bad("malformed m= line")
    if len(formats) > MAX_FORMATS:
        raise _too_large("too many formats in an m= line")
    head = Media(media, int(port), protocol, int(count) if slash else None)
    found: dict[str, int] = {}
    checks: dict[str, tuple[Callable[[str, str], bool], Callable[[str], object | None]]] = {
        "c": (_kind_is("c"), _connection),
        "rtcp": (
            lambda kind, value: kind == "a" and value.startswith("rtcp:"),
            lambda v: _rtcp(v[5:]),
        ),
        "direction": (lambda kind, value: kind == "a" and value in DIRECTIONS, lambda v: v),
    }
    for name, (match, read) in checks.items():
        at = _single(body, match)
        if at is not None and read(body[at][1]) is not None:
            found[name] = at
    rtpmaps = _rtpmaps(body, formats)
    if rtpmaps:
        found["codecs"] = -1

    def build(keep: dict[str, int]) -> Media:
        named = rtpmaps if "codecs" in keep else {}
        skip = {at for name, at in keep.items() if name != "codecs"}
        pending = [Codec(f) for f in formats if all(c.payload != f for c in named.values())]
        items: list[Item] = [] if named else list(pending)
        for at, (kind, value) in enumerate(body):
            if at in named:
                place = formats.index(named[at].payload)
                while pending and formats.index(pending[0].payload) < place:
                    items.append(pending.pop(0))
                items.append(named[at])
            elif at not in skip:
                items.append(_item(kind, value))
        items.extend(pending if named else ())
        rtcp = body[keep["rtcp"]][1][5:] if "rtcp" in keep else None
        return replace(
            head,
            address=_connection(body[keep["c"]][1]) if "c" in keep else None,
            rtcp=_rtcp(rtcp) if rtcp is not None else None,
            direction=body[keep["direction"]][1] if "direction" in keep else None,
            items=tuple(items),
        )

    original = [f"{kind}={value}" for kind, value in body]
    return _settle(found, build, lambda m: _render_media(m)[1:], original)


# --- model -> SDP text ---------------------------------------------------------------------------


def render_sdp(sdp: SessionDescription) -> str:
    lines = _render_session(sdp) + [line for m in sdp.media for line in _render_media(m)]
    for line in lines:
        if _UNSAFE.search(line):
            raise _bad("SDP values cannot hold line breaks or control characters")
        if len(line) > MAX_LINE_CHARS:
            raise _too_large("SDP line too long")
    text = "\r\n".join(lines) + "\r\n"
    if len(lines) > MAX_LINES or len(text.encode("utf-8", "surrogatepass")) > MAX_SDP_BYTES:
        raise _too_large("SDP too large")
    return text


def _merge(fixed: list[tuple[float, str]], body: list[tuple[float, str]]) -> list[str]:
    out = list(body)
    for rank, text in sorted(fixed):
        at = next((i for i, (other, _) in enumerate(out) if other > rank), len(out))
        out.insert(at, (rank, text))
    return [text for _, text in out]


def _rank(item: Item, ranks: dict[str, int]) -> int:
    return ranks.get(item.kind, _A_RANK) if isinstance(item, Line) else _A_RANK


def _body(items: Sequence[Item], ranks: dict[str, int]) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    for item in items:
        if isinstance(item, Codec):
            if item.name is not None:
                out.append((_A_RANK, f"a=rtpmap:{item.payload} {item.name}"))
        elif isinstance(item, Attribute):
            value = "" if item.value is None else ":" + item.value
            out.append((_A_RANK, f"a={item.name}{value}"))
        else:
            out.append((_rank(item, ranks), f"{item.kind}={item.value}"))
    return out


def _connection_text(address: str) -> str:
    return f"IN {_addrtype(address)} {address}"


def _render_session(sdp: SessionDescription) -> list[str]:
    fixed: list[tuple[float, str]] = []
    if sdp.origin is not None:
        o = sdp.origin
        origin = f"{o.user} {o.session_id} {o.session_version} {_connection_text(o.address)}"
        fixed.append((1, "o=" + origin))
    if sdp.session_name is not None:
        fixed.append((2, "s=" + sdp.session_name))
    if sdp.address is not None:
        fixed.append((7, "c=" + _connection_text(sdp.address)))
    if sdp.timing:
        fixed.append((9, "t=0 0"))
    if any(isinstance(item, Codec) for item in sdp.items):
        raise _bad("a codec belongs to a media")
    return ["v=0", *_merge(fixed, _body(sdp.items, _SESSION_RANKS))]


def _render_media(m: Media) -> list[str]:
    formats = [codec.payload for codec in m.codecs]
    if not formats:
        raise _bad("a media needs at least one codec")
    port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
    fixed: list[tuple[float, str]] = []
    if m.address is not None:
        fixed.append((7, "c=" + _connection_text(m.address)))
    if m.rtcp is not None:
        where = "" if m.rtcp.address is None else " " + _connection_text(m.rtcp.address)
        fixed.append((_RTCP_RANK, f"a=rtcp:{m.rtcp.port}{where}"))
    if m.direction is not None:
        fixed.append((_DIRECTION_RANK, "a=" + m.direction))
    head = f"m={m.media} {port} {m.protocol} {' '.join(formats)}"
    return [head, *_merge(fixed, _body(m.items, _MEDIA_RANKS))]


# --- model <-> XML -------------------------------------------------------------------------------


def to_xml(sdp: SessionDescription) -> etree._Element:
    attrs: dict[str, str] = {}
    if sdp.origin is not None:
        o = sdp.origin
        attrs.update(origUser=o.user, sessionID=o.session_id, sessionVersion=o.session_version)
        attrs["origIP"] = f"[{o.address}]"
    if sdp.address is not None:
        attrs["ip"] = f"[{sdp.address}]"
    if sdp.session_name is not None and sdp.session_name != "-":
        attrs["sessionName"] = sdp.session_name
    root = xml.element("sdp", attrs)
    for item in sdp.items:
        _item_xml(root, item)
    for m in sdp.media:
        root.append(_media_xml(m, sdp.address))
    return root


def _item_xml(parent: etree._Element, item: Item) -> None:
    if isinstance(item, Codec):
        names = {} if item.name is None else {"name": item.name}
        xml.sub(parent, "codec", {"id": item.payload, **names})
    elif isinstance(item, Attribute):
        xml.sub(parent, "attr", {"name": item.name}, item.value)
    else:
        xml.sub(parent, "line", {"type": item.kind}, item.value or None)


def _media_xml(m: Media, session_address: str | None) -> etree._Element:
    attrs = {"media": m.media, "protocol": m.protocol}
    address = m.address if m.address is not None else session_address
    if address is None:
        attrs["port"] = str(m.port)
    else:
        attrs["ip"] = f"[{address}]:{m.port}"
    if m.port_count is not None:
        attrs["portCount"] = str(m.port_count)
    if m.rtcp is not None:
        rtcp = m.rtcp
        attrs["rtcp"] = str(rtcp.port) if rtcp.address is None else f"[{rtcp.address}]:{rtcp.port}"
    if m.direction is not None:
        attrs["direction"] = m.direction
    items = list(m.items)
    if m.address is not None and m.address == session_address:
        # `ip` cannot tell a repeated c= from an inherited one: the repeated line stays a <line>.
        at = next((i for i, item in enumerate(items) if _rank(item, _MEDIA_RANKS) > 7), len(items))
        items.insert(at, Line("c", _connection_text(m.address)))
    elem = xml.element("media", attrs)
    for item in items:
        _item_xml(elem, item)
    return elem


def from_xml(elem: etree._Element) -> SessionDescription:
    """Read a client's <sdp> (or <sdpText>); BAD_REQUEST for anything outside the shape above."""
    if elem.tag not in ("sdp", "sdpText"):
        raise _bad("an SDP descriptor must be an <sdp> element")
    if elem.tag == "sdpText" or (len(elem) == 0 and (elem.text or "").strip()):
        return parse_sdp("\n".join(line.strip() for line in (elem.text or "").split("\n")))
    names = ("origUser", "sessionID", "sessionVersion", "origIP")
    given = [elem.get(name) for name in names]
    origin = None
    if any(value is not None for value in given):
        user, session_id, version, host = (_xml_field(v, "origin") for v in given)
        origin = Origin(user, session_id, version, _xml_host(host))
    ip = elem.get("ip")
    address = _xml_host(ip) if ip is not None else None
    items: list[Item] = []
    media: list[Media] = []
    for child in _children(elem):
        if child.tag == "media":
            if len(media) >= MAX_MEDIA:
                raise _too_large("too many media in SDP")
            media.append(_media_from_xml(child, address))
        else:
            items.append(_item_from_xml(child, in_media=False))
    name = elem.get("sessionName")
    lines = [item for item in items if isinstance(item, Line)]
    return SessionDescription(
        origin=origin,
        session_name=name if name is not None else None if _has(lines, "s") else "-",
        address=address,
        timing=not _has(lines, "t"),
        items=tuple(items),
        media=tuple(media),
    )


def _has(lines: Sequence[Line], kind: str) -> bool:
    return any(line.kind == kind for line in lines)


def _children(elem: etree._Element) -> list[etree._Element]:
    children = [child for child in elem if isinstance(child.tag, str)]
    if len(children) > MAX_LINES:
        raise _too_large("SDP has too many lines")
    return children


def _xml_field(value: str | None, what: str) -> str:
    if value is None or not _FIELD.fullmatch(value):
        raise _bad(f"incomplete or malformed SDP {what}")
    return value


def _xml_value(value: str) -> str:
    if _UNSAFE.search(value):
        raise _bad("SDP values cannot hold line breaks or control characters")
    if len(value) > MAX_LINE_CHARS:
        raise _too_large("SDP line too long")
    return value


def _xml_port(text: str | None) -> int:
    if text is None or not _PORT.fullmatch(text) or int(text) > 65535:
        raise _bad("malformed port in SDP")
    return int(text)


def _xml_host(text: str) -> str:
    """An address as CommuniGate writes it, in brackets; a bare address is taken too."""
    match = _BRACKETED.fullmatch(text) or _BARE.fullmatch(text)
    if match is not None and match[2] is None:
        return match[1]
    if match is None and _ADDRESS.fullmatch(text):  # a bare IPv6 address
        return text
    raise _bad("malformed address in SDP")


def _xml_endpoint(text: str) -> tuple[str, int]:
    """An endpoint as CommuniGate writes it, [addr]:port; a bare host:port is taken too."""
    match = _BRACKETED.fullmatch(text) or _BARE.fullmatch(text)
    if match is None:
        raise _bad("malformed address in SDP")
    return match[1], _xml_port(match[2])


def _item_from_xml(child: etree._Element, *, in_media: bool) -> Item:
    if len(child):
        raise _bad("SDP elements do not nest here")
    if child.tag == "attr":
        name = child.get("name")
        if name is None or not _TOKEN.fullmatch(name):
            raise _bad("malformed SDP attribute name")
        return Attribute(name, None if child.text is None else _xml_value(child.text))
    if child.tag == "line":
        kind = child.get("type") or ""
        if len(kind) != 1 or kind not in "abcdefghijklnopqrstuwxyz":  # v= and m= are structure
            raise _bad("malformed SDP line type")
        return Line(kind, _xml_value(child.text or ""))
    if child.tag == "codec" and in_media:
        payload, name = child.get("id"), child.get("name")
        if payload is None or not _TOKEN.fullmatch(payload):
            raise _bad("malformed codec id")
        return Codec(payload, None if name is None else _xml_field(name, "codec name"))
    raise _bad(f"unexpected element in SDP: {str(child.tag)[:40]}")


def _media_from_xml(elem: etree._Element, session_address: str | None) -> Media:
    media, protocol = elem.get("media") or "", elem.get("protocol") or ""
    if not _TOKEN.fullmatch(media) or not _PROTOCOL.fullmatch(protocol):
        raise _bad("malformed SDP media")
    ip = elem.get("ip")
    address: str | None = None
    if ip is None:
        port = _xml_port(elem.get("port"))
    else:
        address, port = _xml_endpoint(ip)
    count = elem.get("portCount")
    if count is not None and _xml_port(count) == 0:
        raise _bad("malformed port count in SDP")
    rtcp_text = elem.get("rtcp")
    rtcp = None
    if rtcp_text is not None and _PORT.fullmatch(rtcp_text):
        rtcp = Endpoint(_xml_port(rtcp_text))
    elif rtcp_text is not None:
        rtcp_address, rtcp_port = _xml_endpoint(rtcp_text)
        rtcp = Endpoint(rtcp_port, rtcp_address)
    direction = elem.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise _bad("malformed SDP direction")
    items = tuple(_item_from_xml(child, in_media=True) for child in _children(elem))
    codecs = sum(isinstance(item, Codec) for item in items)
    if not codecs:
        raise _bad("a media needs at least one codec")
    if codecs > MAX_FORMATS:
        raise _too_large("too many codecs in a media")
    return Media(
        media=media,
        port=port,
        protocol=protocol,
        port_count=None if count is None else int(count),
        address=address if address != session_address else None,
        rtcp=rtcp,
        direction=direction,
        items=items,
    )


# --- what the bridge needs -----------------------------------------------------------------------


def sdp_to_xml(data: bytes | str) -> etree._Element:
    return to_xml(parse_sdp(data))


def xml_to_sdp(elem: etree._Element) -> str:
    return render_sdp(from_xml(elem))


def default_media_ip(sdp: SessionDescription) -> str | None:
    """The client's default media address: the `ip` attribute (session c=), else the first media
    address that is not 0.0.0.0 or :: (browsers put c= in each media and none at session level)."""
    candidates = (sdp.address, *(m.address for m in sdp.media))
    return next((a for a in candidates if a is not None and a not in UNSPECIFIED), None)


def sdp_for_sip(
    body: etree._Element, *, session_id: int, session_version: int, fallback_ip: str
) -> str:
    """The SDP text for a SIP INVITE (or answer, re-INVITE) from a client's XML descriptor.

    Clients may leave o= out; SIP needs it (RFC 3264 compares its version across re-offers), so it
    is filled with the username "-", the bridge's session id and version for this call, and the
    client's default media address (or `fallback_ip` when the descriptor has none).
    """
    sdp = from_xml(body)
    has_origin = any(isinstance(i, Line) and i.kind == "o" for i in sdp.items)
    if sdp.origin is None and not has_origin:
        address = default_media_ip(sdp) or fallback_ip
        if not _ADDRESS.fullmatch(address):
            raise _bad("malformed address for o=")
        sdp = replace(sdp, origin=Origin("-", str(session_id), str(session_version), address))
    return render_sdp(sdp)


def sdp_for_client(data: bytes | str) -> etree._Element:
    """The peer's SDP (INVITE, 18x, 200, re-INVITE) as the <sdp> body of callIncoming,
    callProvisioned, callConnected and callUpdated."""
    return sdp_to_xml(data)
