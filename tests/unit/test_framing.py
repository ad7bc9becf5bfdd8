from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.ximss.framing import FrameDecoder, FrameTooLarge, encode_frame

STREAM = b'<noop id="1"/>\0<readTime id="2"/>\0\0  \0<bye id="3"/>\0'
EXPECTED = [b'<noop id="1"/>', b'<readTime id="2"/>', b'<bye id="3"/>']


def test_frames_in_one_chunk() -> None:
    assert FrameDecoder(1024).feed(STREAM) == EXPECTED


def test_same_frames_for_every_split() -> None:
    for cut in range(len(STREAM) + 1):
        decoder = FrameDecoder(1024)
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == EXPECTED


def test_byte_by_byte() -> None:
    decoder = FrameDecoder(1024)
    frames = [frame for byte in STREAM for frame in decoder.feed(bytes([byte]))]
    assert frames == EXPECTED


def test_oversized_frame_raises_before_buffering_more() -> None:
    decoder = FrameDecoder(100)
    decoder.feed(b"a" * 100)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"a")


def test_oversized_complete_frame_raises() -> None:
    with pytest.raises(FrameTooLarge):
        FrameDecoder(10).feed(b"a" * 11 + b"\0")


@given(st.lists(st.binary(max_size=50).map(lambda b: b.replace(b"\0", b"")), max_size=10))
def test_round_trip(documents: list[bytes]) -> None:
    stream = b"".join(encode_frame(doc) for doc in documents)
    expected = [doc for doc in documents if doc.strip()]
    assert FrameDecoder(1000).feed(stream) == expected


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_frame_errors(data: bytes) -> None:
    decoder = FrameDecoder(64)
    try:
        for frame in decoder.feed(data):
            assert len(frame) <= 64
    except FrameTooLarge:
        pass
