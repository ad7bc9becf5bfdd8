"""Fuzz targets: the SIP message parser (datagrams, the stream framer under any chunking) and the
structured header values (URIs, name-addr, Via, CSeq, parameters).

Declared error: `SipParseError` (a ValueError), for parsing and for every accessor that parses a
header on demand. Seeds: the messages of the SIP unit tests (corpus/sip).
"""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from adapters.sip.address import CSeq, NameAddr, SipUri, Via
from adapters.sip.headers import Params, SipParseError, split_top_level, unquote
from adapters.sip.message import (
    Message,
    SipLimits,
    StreamFramer,
    parse_datagram,
    serialize,
)
from tests.fuzz.harness import FUZZ, chunked, corpus, fuzz_bytes, with_seeds

SEEDS = corpus("sip")
TOKENS = (
    b"\r\n", b"\n", b"\r\n\r\n", b": ", b";", b",", b"<", b">", b'"', b"\\", b"sip:", b"sips:",
    b"@", b"[::1]", b":5060", b"SIP/2.0", b"SIP/2.0/UDP ", b"Content-Length: ", b"l: 9999999",
    b"Via: ", b"v: ", b"f: ", b"t: ", b"m: *", b"CSeq: ", b" ", b"\t", b"\xff",
)  # fmt: skip
LIMITS = SipLimits(max_head=2048, max_body=512, max_header_fields=32)


def _use(message: Message) -> None:
    """Every accessor the user agent calls on a received message."""
    for read in (
        lambda: message.call_id, lambda: message.cseq, lambda: message.from_, lambda: message.to,
        lambda: message.vias, lambda: message.top_via, lambda: message.contacts,
        lambda: message.record_route, lambda: message.header_int("Expires"),
        lambda: message.media_type, lambda: message.text,
    ):  # fmt: skip
        with contextlib.suppress(SipParseError):
            read()
    try:
        for via in message.vias:
            via.response_address(("192.0.2.1", 5060))
        for contact in message.contacts:
            contact.address  # noqa: B018 (the property parses)
    except SipParseError:
        pass


@FUZZ
@with_seeds(SEEDS)
@given(fuzz_bytes(SEEDS, TOKENS))
def test_parse_datagram(data: bytes) -> None:
    try:
        message = parse_datagram(data, LIMITS)
    except SipParseError:
        return
    assert len(message.body) <= LIMITS.max_body
    _use(message)
    # What we send back out of it must be parseable again, with the same fields.
    again = parse_datagram(serialize(message), LIMITS)
    assert again.headers.without("Content-Length") == message.headers.without("Content-Length")
    assert again.body == message.body


def _frame(pieces: list[bytes]) -> tuple[list[Message], bool]:
    framer = StreamFramer(LIMITS)
    out: list[Message] = []
    try:
        for piece in pieces:
            out += framer.feed(piece)
            assert framer.buffered <= max(LIMITS.max_head + 4, LIMITS.max_body)
    except SipParseError:
        return out, True
    return out, False


@FUZZ
@given(st.data(), st.lists(fuzz_bytes(SEEDS, TOKENS), min_size=1, max_size=4))
def test_stream_framer_any_chunking(data: st.DataObject, messages: list[bytes]) -> None:
    """Cut anywhere, a stream gives the same messages and fails at the same point."""
    stream = b"".join(messages)
    pieces, (whole, failed) = _frame(data.draw(chunked(stream))), _frame([stream])
    assert pieces[1] == failed
    assert pieces[0] == whole if not failed else pieces[0][: len(whole)] == whole
    for message in pieces[0]:
        _use(message)


_SIP_TEXT = st.text(
    st.sampled_from(list('sip:alice@example.test;tag=1<>"\\, \t?=[]:5060/UDPTCP.-_*%\r\n')),
    max_size=60,
) | st.text(max_size=30)


@FUZZ
@with_seeds(
    ['"Alice, A." <sip:alice@example.test>;tag=1928301774', "<sip:p1.test;lr>", "sip:a@b",
     '"\\" <sip:a@b>', "SIP/2.0/UDP [::1]:5062;branch=z9hG4bKghi", "SIP / 2.0 / UDP h", "1 INVITE"]
)  # fmt: skip
@given(_SIP_TEXT)
def test_header_values(text: str) -> None:
    for parse in (NameAddr.parse, NameAddr.parse_list, SipUri.parse, Via.parse, CSeq.parse,
                  Params.parse):  # fmt: skip
        try:
            value = parse(text)
        except SipParseError:
            continue
        str(value)
    for separator in ",;":
        with contextlib.suppress(SipParseError):
            split_top_level(text, separator)
    unquote(text)


@FUZZ
@given(_SIP_TEXT)
def test_name_addr_round_trip(text: str) -> None:
    """A name-addr we parsed is written so that it reads back the same (we echo From/To)."""
    try:
        value = NameAddr.parse(text)
    except SipParseError:
        return
    assert NameAddr.parse(str(value)) == value
