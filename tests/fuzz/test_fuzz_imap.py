"""Fuzz targets: the IMAP response parser (any bytes, any chunking), BODYSTRUCTURE reading and the
header-field and INTERNALDATE readers.

Declared errors: `ProtocolError` (ResponseParser.feed); none at all for parse_bodystructure,
header_values and internal_date ("never raises", best effort). Seeds: the server lines of the
IMAP unit tests, Dovecot's among them (corpus/imap).
"""

from __future__ import annotations

import datetime as dt
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.imap.bodystructure import parse_bodystructure
from adapters.imap.fields import header_values, internal_date
from adapters.imap.wire_parse import ResponseParser
from adapters.imap.wire_types import Atom, ProtocolError, Response, Untagged, Value
from adapters.protocols import MimePart
from tests.fuzz.harness import FUZZ, chunked, corpus, fuzz_bytes, with_seeds

SEEDS = corpus("imap")
TOKENS = (
    b"\r\n", b"{5}\r\n", b"{0}\r\n", b"~{3}\r\n", b"{99999999999999999999999}\r\n", b"(", b")",
    b'"', b"\\", b"[", b"]", b"NIL", b"* ", b"+ ", b"A1 OK ", b"* 1 FETCH (", b"BODYSTRUCTURE ",
    b"BODY[", b"]<0>", b"* OK [", b"\r", b"\n", b" ",
)  # fmt: skip
MAX_LINE, MAX_LITERAL = 300, 600


def _feed(pieces: list[bytes]) -> tuple[list[Response], str | None]:
    parser = ResponseParser(max_line=MAX_LINE, max_literal=MAX_LITERAL)
    out: list[Response] = []
    try:
        for piece in pieces:
            out += parser.feed(piece)
            # What the parser holds for an open response stays within its limits.
            assert len(parser._buf) <= MAX_LINE + 1
            assert len(parser._lit) <= MAX_LITERAL
            assert parser._text_len <= MAX_LINE and parser._lit_total <= MAX_LITERAL
    except ProtocolError as exc:
        with pytest.raises(ProtocolError):  # failed for good: the stream position is lost
            parser.feed(b"* OK\r\n")
        return out, exc.reason
    return out, None


@FUZZ
@with_seeds(SEEDS)
@given(fuzz_bytes(SEEDS, TOKENS))
def test_parser_one_shot(stream: bytes) -> None:
    responses, _ = _feed([stream])
    for response in responses:
        if isinstance(response, Untagged):
            _walk_structures(response.values)


@FUZZ
@given(st.data(), fuzz_bytes(SEEDS, TOKENS))
def test_parser_any_chunking(data: st.DataObject, stream: bytes) -> None:
    """Any split of the stream gives the same responses and the same failure (a feed that fails
    drops what it completed before the fault, so one shot may see fewer responses)."""
    pieces, (whole, failure) = _feed(data.draw(chunked(stream))), _feed([stream])
    assert pieces[1] == failure
    assert pieces[0] == whole if failure is None else pieces[0][: len(whole)] == whole


def _walk_structures(values: list[Value]) -> None:
    """Every list after a BODYSTRUCTURE or BODY atom, as the client would read it."""
    for index, value in enumerate(values):
        if isinstance(value, list):
            _walk_structures(value)
        elif (
            isinstance(value, Atom)
            and value.upper() in ("BODYSTRUCTURE", "BODY")
            and index + 1 < len(values)
        ):
            _check_part(parse_bodystructure(values[index + 1]))


def _check_part(part: MimePart) -> None:
    stack = [part]
    while stack:
        node = stack.pop()
        assert isinstance(node.type, str) and isinstance(node.subtype, str)
        assert node.size >= 0
        for text in (node.type, node.subtype, *node.params.values(), node.description or ""):
            text.encode("utf-8")  # never a lone surrogate
        stack.extend(node.children)


# Value trees of any shape: what a server could send, parseable or not.
_LEAVES = st.one_of(
    st.none(),
    st.binary(max_size=12),
    st.sampled_from(["text", "plain", "multipart", "message", "rfc822", "global", "NIL", "7bit",
                     "base64", "charset", "filename*", "filename*0*", "name*1", "boundary",
                     "=?utf-8?B?w6k=?=", "utf-8''%E2%82%AC", "x-unknown'en'%ff", "-1", "0",
                     "99999999999999999999999", "attachment"]).map(Atom),
    st.sampled_from([b"=?utf-8?q?a_b?=", b"=?punycode?B?eA==?=", b"=?utf-7?Q?+AGE-?=",
                     b"=?base64_codec?B?eA==?=", b"\xff\xfe", b"12"]),
    st.integers(-5, 2**64).map(lambda n: Atom(str(n))),
)  # fmt: skip
VALUES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=12), max_leaves=120)


@FUZZ
@given(VALUES, st.integers(0, 6), st.integers(0, 50))
def test_bodystructure_any_value(value: Value, max_depth: int, max_parts: int) -> None:
    _check_part(parse_bodystructure(value, max_depth=max_depth, max_parts=max_parts))


@FUZZ
@with_seeds([b"Subject: a\r\n b\r\n\r\n", b"\x80: x\r\n", b" a\r\nB: c", b"A:\r\n"])
@given(st.one_of(fuzz_bytes(corpus("mime"), (b"\r\n", b":", b" ", b"\t", b"\n")), st.binary()))
def test_header_values(raw: bytes) -> None:
    found = header_values(raw, ["Subject", "From", "To", "Date", "Message-ID"])
    assert set(found) <= {"Subject", "From", "To", "Date", "Message-ID"}
    assert all(isinstance(value, str) for value in found.values())


# Regression examples: numbers too large for datetime raised OverflowError.
@FUZZ
@with_seeds(
    ["17-Jul-1996 02:44:25 -0700", " 7-Jul-1996 02:44:25 +0000",
     "01-Jan-99999999999999999999 00:00:00 +0000", "01-Jan-2000 99999999999999999999:00:00 +0000",
     "01-Jan-2000 00:00:00 +9999", "01-Jan-2000 00:00:00 +٠٠٠٠", "31-Feb-2000 00:00:00 +0000"]
)  # fmt: skip
@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            "{}-{}-{} {}:{}:{} {}{}".format,
            st.integers(-1, 10**25), st.sampled_from(["Jan", "Feb", "jan", "Xyz"]),
            st.integers(-1, 10**25), st.integers(-1, 10**25), st.integers(-1, 99),
            st.integers(-1, 99), st.sampled_from("+- "), st.integers(0, 10**25),
        ),
    )
)  # fmt: skip
def test_internal_date(text: str) -> None:
    value = internal_date(text)
    assert value is None or (isinstance(value, dt.datetime) and value.tzinfo is not None)


def test_parser_memory_is_bounded() -> None:
    """A literal announced at 64 MB and a line that never ends: refused at the limits, the
    parser's buffers never grow past them."""
    limit = 1 << 20
    chunk = b"x" * (64 << 10)
    tracemalloc.start()
    try:
        parser = ResponseParser(max_line=limit, max_literal=4 * limit)
        assert parser.feed(b"* 1 FETCH (BODY[] {4194304}\r\n") == []
        _, announced = tracemalloc.get_traced_memory()
        with pytest.raises(ProtocolError):
            ResponseParser(max_line=limit, max_literal=4 * limit).feed(b"* 1 X {4194305}\r\n")
        endless = ResponseParser(max_line=limit)
        with pytest.raises(ProtocolError):
            for _ in range(64):
                endless.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert announced < limit // 4
    assert peak < 4 * limit
