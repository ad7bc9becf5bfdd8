"""Fuzz targets: the hardened XML parser, the XIMSS codec and the zero-byte framing.

Declared errors: `BridgeError` (xml.parse, codec.decode), `FrameTooLarge` (FrameDecoder.feed).
Seeds: the C:/S: examples of ximss-5.1.txt (corpus/ximss).
"""

from __future__ import annotations

import contextlib
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from bridge import xml
from bridge.errors import BridgeError
from bridge.ximss import codec
from bridge.ximss.framing import FrameDecoder, FrameTooLarge, encode_frame
from tests.fuzz.harness import FUZZ, XML_TOKENS, chunked, corpus, fuzz_bytes, with_seeds

SEEDS = corpus("ximss")
MAX_DEPTH = 16
# Non-ASCII-compatible encodings are where a byte scan for "<!DOCTYPE" is blind.
_ENCODINGS = ("utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-7", "latin-1")
_DTD_DOC = '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
# Regression examples: DTDs that reached libxml2 because the byte scan could not see them.
UTF16_DTD = ('<?xml version="1.0" encoding="UTF-16"?>' + _DTD_DOC).encode("utf-16")
UTF7_DTD = (
    b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE a +AFs-+ADw-!ENTITY e "x"+AD4-+AF0-+AD4-'
    b"<a>&e;</a>"
)


@st.composite
def reencoded(draw: st.DrawFn) -> bytes:
    """A seed (or a DTD document) declared and encoded in another encoding."""
    text = draw(st.sampled_from([*SEEDS, _DTD_DOC.encode()])).decode("utf-8", "replace")
    encoding = draw(st.sampled_from(_ENCODINGS))
    declared = draw(st.booleans())
    head = f'<?xml version="1.0" encoding="{encoding}"?>' if declared else ""
    return (head + text).encode(encoding, "replace")


DOCUMENTS = st.one_of(fuzz_bytes(SEEDS, XML_TOKENS), reencoded())


def _check_tree(root: etree._Element) -> None:
    """What a parse that succeeded promises: no DTD, no entity nodes, bounded depth."""
    assert root.getroottree().docinfo.internalDTD is None
    depth = 0
    for node in root.iter():
        assert not isinstance(node, etree._Entity)
        depth = max(depth, sum(1 for _ in node.iterancestors()) + 1)
    assert depth <= MAX_DEPTH
    xml.serialize(root)


@FUZZ
@with_seeds([*SEEDS, UTF16_DTD, UTF7_DTD, b"<a>" * 17 + b"</a>" * 17])
@given(DOCUMENTS)
def test_xml_parse(data: bytes) -> None:
    try:
        root = xml.parse(data, MAX_DEPTH)
    except BridgeError:
        return
    _check_tree(root)


@FUZZ
@with_seeds(SEEDS)
@given(DOCUMENTS)
def test_codec_decode(data: bytes) -> None:
    try:
        request = codec.decode(data, MAX_DEPTH)
    except BridgeError:
        return
    assert isinstance(request.name, str) and not request.name.startswith("{")
    for attr in ("id", "mailbox", "folder"):
        request.get(attr)
        request.flag(attr)
    # What the session answers with must always serialize.
    codec.encode(codec.response(request.id))


@FUZZ
@given(st.data(), st.lists(fuzz_bytes(SEEDS, XML_TOKENS), max_size=8), st.integers(1, 600))
def test_frame_decoder(data: st.DataObject, messages: list[bytes], max_frame: int) -> None:
    """Any cut of a NUL-framed stream gives the same frames as a plain split, and the decoder
    never holds more than its limit."""
    stream = b"".join(encode_frame(message) for message in messages)
    decoder = FrameDecoder(max_frame)
    frames: list[bytes] = []
    try:
        for piece in data.draw(chunked(stream)):
            frames += decoder.feed(piece)
            assert decoder.pending <= max_frame
    except FrameTooLarge:
        assert any(len(part) > max_frame for part in stream.split(b"\x00"))
        return
    expected = [part for part in stream.split(b"\x00")[:-1] if part.strip()]
    assert frames == expected
    assert all(len(frame) <= max_frame for frame in frames)
    for frame in frames:
        with contextlib.suppress(BridgeError):
            codec.decode(frame, MAX_DEPTH)


def test_frame_decoder_memory_is_bounded() -> None:
    """8 MB without a zero byte, in 64 KiB reads: refused at the limit, never buffered whole."""
    limit = 1 << 20
    decoder = FrameDecoder(limit)
    chunk = b"<a>" + b"x" * ((64 << 10) - 3)
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLarge):
            for _ in range(128):
                decoder.feed(chunk)
                assert decoder.pending <= limit
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * limit
