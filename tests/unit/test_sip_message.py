"""The sans-IO SIP codec: parsing, header access, addresses, limits, stream framing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sip.address import CSeq, NameAddr, SipUri, Via
from adapters.sip.headers import Headers, Params, SipParseError, canonical_name, split_top_level
from adapters.sip.message import (
    MAX_DATAGRAM,
    Request,
    Response,
    SipLimits,
    StreamFramer,
    parse_datagram,
    serialize,
)

INVITE = (
    b"INVITE sip:bob@example.test SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n"
    b"Via: SIP/2.0/TCP proxy.test;branch=z9hG4bKdef;received=10.0.0.1, "
    b"SIP/2.0/UDP [::1]:5062;branch=z9hG4bKghi\r\n"
    b"Max-Forwards: 70\r\n"
    b'f: "Alice, A." <sip:alice@example.test>;tag=1928301774\r\n'
    b"t: Bob <sip:bob@example.test>\r\n"
    b"i: a84b4c76e66710@pc33.example.test\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"m: <sip:alice@127.0.0.1:5070;transport=tcp>;expires=60, sip:alice@10.0.0.2\r\n"
    b"Record-Route: <sip:p1.test;lr>\r\n"
    b"Record-Route: <sip:p2.test;lr>\r\n"
    b"Subject: lunch\r\n"
    b"  at noon\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_parse_request_with_compact_forms_and_folding() -> None:
    message = parse_datagram(INVITE)
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.uri == "sip:bob@example.test"
    assert message.call_id == "a84b4c76e66710@pc33.example.test"
    assert message.cseq == CSeq(314159, "INVITE")
    assert message.headers.get("Subject") == "lunch at noon"
    assert message.content_type == "application/sdp"
    assert message.body == b"v=0\n"
    vias = message.vias
    assert [v.branch for v in vias] == ["z9hG4bKabc", "z9hG4bKdef", "z9hG4bKghi"]
    assert vias[2].host == "[::1]" and vias[2].port == 5062
    assert vias[1].params.get("received") == "10.0.0.1"
    assert message.from_.display == "Alice, A."
    assert message.from_.tag == "1928301774"
    assert message.to.tag is None
    assert [c.uri for c in message.contacts] == [
        "sip:alice@127.0.0.1:5070;transport=tcp",
        "sip:alice@10.0.0.2",
    ]
    assert message.contacts[0].params.get("expires") == "60"
    assert message.headers.values("Record-Route") == ["<sip:p1.test;lr>", "<sip:p2.test;lr>"]


def test_serialize_round_trip_and_content_length_from_body() -> None:
    message = parse_datagram(INVITE)
    again = parse_datagram(serialize(message))
    assert again == message
    wire = serialize(Response(headers=Headers().add("Content-Length", "99"), body=b"abc"))
    assert wire.endswith(b"Content-Length: 3\r\n\r\nabc")


def test_response_start_line() -> None:
    message = parse_datagram(b"SIP/2.0 180 Ringing Now\r\nCSeq: 1 INVITE\r\n\r\n")
    assert isinstance(message, Response)
    assert (message.status, message.reason) == (180, "Ringing Now")
    assert message.provisional


@pytest.mark.parametrize(
    "data",
    [
        b"INVITE sip:a@b SIP/2.0\r\nNo colon here\r\n\r\n",
        b"INVITE sip:a@b SIP/3.0\r\n\r\n",
        b"SIP/2.0 99 Too Low\r\n\r\n",
        b"SIP/2.0 2000 OK\r\n\r\n",
        b"\r\n folded first\r\nA: b\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
        b"INVITE sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab",
        b"INVITE sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n",
    ],
)
def test_malformed_messages_raise_parse_error(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_datagram(data)


def test_limits() -> None:
    limits = SipLimits(max_head=200, max_body=10, max_header_fields=3)
    with pytest.raises(SipParseError, match="head"):
        parse_datagram(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 300 + b"\r\n\r\n", limits)
    with pytest.raises(SipParseError, match="body"):
        parse_datagram(b"OPTIONS sip:a@b SIP/2.0\r\nl: 11\r\n\r\n" + b"a" * 11, limits)
    with pytest.raises(SipParseError, match="fields"):
        parse_datagram(b"OPTIONS sip:a@b SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits)
    with pytest.raises(SipParseError, match="datagram"):
        parse_datagram(b"x" * (MAX_DATAGRAM + 1))


def test_stream_framer_rejects_oversized_head_without_buffering_it_all() -> None:
    framer = StreamFramer(SipLimits(max_head=100))
    with pytest.raises(SipParseError):
        for _ in range(100):
            framer.feed(b"X" * 50)
    assert framer.buffered < 300


def test_stream_framer_needs_content_length_and_skips_keepalives() -> None:
    framer = StreamFramer()
    one = serialize(parse_datagram(INVITE))
    assert framer.feed(b"\r\n\r\n" + one + b"\r\n") == [parse_datagram(INVITE)]
    with pytest.raises(SipParseError, match="Content-Length"):
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n")


def test_compact_and_canonical_names() -> None:
    assert canonical_name("v") == "Via"
    assert canonical_name("CALL-id") == "Call-ID"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("X-Custom") == "X-Custom"
    headers = Headers.of([("m", "<sip:a@b>"), ("X-Custom", "1"), ("contact", "<sip:c@d>")])
    assert headers.values("Contact") == ["<sip:a@b>", "<sip:c@d>"]
    assert headers.values("m") == ["<sip:a@b>", "<sip:c@d>"]
    assert headers.with_("Contact", "<sip:e@f>").values("Contact") == ["<sip:e@f>"]
    assert headers.without("contact").fields == (("X-Custom", "1"),)
    assert headers.prepend("v", "SIP/2.0/UDP h").fields[0] == ("Via", "SIP/2.0/UDP h")


def test_non_list_headers_keep_their_commas() -> None:
    headers = Headers.of([("WWW-Authenticate", 'Digest realm="a", nonce="b,c"')])
    assert headers.values("WWW-Authenticate") == ['Digest realm="a", nonce="b,c"']


def test_split_top_level_respects_quotes_and_angles() -> None:
    text = '"a, \\"b\\"" <sip:x@y;p=1,2>;q=1, <sip:z@w>'
    assert split_top_level(text, ",") == ['"a, \\"b\\"" <sip:x@y;p=1,2>;q=1', "<sip:z@w>"]
    with pytest.raises(SipParseError):
        split_top_level('"open', ",")


def test_sip_uri() -> None:
    uri = SipUri.parse("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips", "alice", "secret", "[2001:db8::1]", 5061,
    )  # fmt: skip
    assert uri.transport == "tcp" and uri.loose_route and uri.headers == "subject=x"
    assert str(uri) == "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=x"
    assert SipUri.parse("sip:example.test").aor == "sip:example.test"
    for bad in ("tel:+123", "sip:", "sip:a@b:99999", "sip:a@b:x", "sip:a b@c"):
        with pytest.raises(SipParseError):
            SipUri.parse(bad)


def test_name_addr_forms() -> None:
    plain = NameAddr.parse("sip:bob@example.test;tag=42")
    assert plain.uri == "sip:bob@example.test" and plain.tag == "42"
    token_name = NameAddr.parse("Bob  Smith <sip:bob@example.test;transport=udp>;tag=7")
    assert token_name.display == "Bob Smith"
    assert token_name.uri == "sip:bob@example.test;transport=udp"
    quoted = NameAddr.parse('"Q \\"x\\"" <tel:+1234>')
    assert quoted.display == 'Q "x"' and quoted.uri == "tel:+1234"
    assert NameAddr.parse(str(quoted)) == quoted
    assert str(plain.with_tag("9")) == "<sip:bob@example.test>;tag=9"
    assert plain.without_tag().params == Params()
    for bad in ('"x" sip:a@b', "<sip:a@b", "<sip:a@b> junk", "no-scheme", '"open <sip:a@b>'):
        with pytest.raises(SipParseError):
            NameAddr.parse(bad)


def test_via_and_response_address() -> None:
    via = Via.parse("SIP / 2.0 / UDP 10.0.0.1:5070 ;branch=z9hG4bK1;rport")
    assert via.transport == "UDP" and via.sent_by == ("10.0.0.1", 5070)
    assert via.response_address(("192.0.2.1", 40000)) == ("10.0.0.1", 40000)
    answered = via.with_params(via.params.with_("received", "192.0.2.1").with_("rport", "4"))
    assert answered.response_address(None) == ("192.0.2.1", 4)
    assert Via.parse("SIP/2.0/TCP h").sent_by == ("h", 5060)
    assert str(Via.parse("SIP/2.0/udp h:1;branch=b")) == "SIP/2.0/UDP h:1;branch=b"
    for bad in ("SIP/2.0 h", "HTTP/1.1/TCP h", "SIP/2.0/UDP"):
        with pytest.raises(SipParseError):
            Via.parse(bad)


def test_cseq() -> None:
    assert CSeq.parse(" 12   INVITE ") == CSeq(12, "INVITE")
    for bad in ("x INVITE", "1", "2147483648 INVITE", "1 IN VITE"):
        with pytest.raises(SipParseError):
            CSeq.parse(bad)


# -- properties ----------------------------------------------------------------------------------

_token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+",
    min_size=1,
    max_size=12,
)
_value = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="\x7f"),
    min_size=1,
    max_size=40,
)
_fields = st.lists(st.tuples(_token.filter(lambda t: len(t) > 1), _value), max_size=12)


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    headers = Headers.of(draw(_fields))
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        uri = "sip:" + draw(_token) + "@" + draw(_token)
        return Request(headers=headers, body=body, method=draw(_token), uri=uri)
    return Response(
        headers=headers,
        body=body,
        status=draw(st.integers(100, 699)),
        reason=draw(
            st.text(alphabet="abc XYZ", min_size=1, max_size=10).map(str.strip).filter(bool)
        ),
    )


def _comparable(message: Request | Response) -> Request | Response:
    return message.with_headers(
        message.headers.without("Content-Length").add("Content-Length", str(len(message.body)))
    )


@given(messages())
def test_round_trip(message: Request | Response) -> None:
    assert parse_datagram(serialize(message)) == _comparable(message)


@settings(max_examples=40)
@given(st.lists(messages(), min_size=1, max_size=3))
def test_stream_split_at_every_byte(batch: list[Request | Response]) -> None:
    wire = b"".join(serialize(m) for m in batch)
    expected = [_comparable(m) for m in batch]
    for cut in range(len(wire) + 1):
        framer = StreamFramer()
        got = framer.feed(wire[:cut]) + framer.feed(wire[cut:])
        assert got == expected
    framer = StreamFramer()
    assert [m for i in range(len(wire)) for m in framer.feed(wire[i : i + 1])] == expected


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    try:
        message = parse_datagram(data)
    except SipParseError:
        return
    for accessor in ("vias", "contacts", "record_route"):
        with contextlib.suppress(SipParseError):
            getattr(message, accessor)


@given(st.binary(max_size=400))
def test_framer_on_arbitrary_bytes_raises_only_parse_errors(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        StreamFramer().feed(data)


@given(st.text(max_size=80))
def test_header_value_parsers_raise_only_parse_errors(text: str) -> None:
    for parser in (NameAddr.parse, SipUri.parse, Via.parse, CSeq.parse, Params.parse):
        with contextlib.suppress(SipParseError):
            parser(text)
