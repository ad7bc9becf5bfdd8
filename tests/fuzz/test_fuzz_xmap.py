"""Fuzz targets: XMAP framing (Decoder, both roles, any chunking), the document parser and the
command codec.

Declared errors: `FramingError` (Decoder.feed), `BridgeError` (parse_document), `CodecError`
(codec.decode, parse_command). Seeds: the request and response shapes of xmap-0.90.txt, with a
blob after the upload ones (corpus/xmap).
"""

from __future__ import annotations

import contextlib
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from bridge.errors import BridgeError
from bridge.mime.decode import xml_safe
from bridge.xmap import codec
from bridge.xmap.document import guess_command, parse_document, wants_blob
from bridge.xmap.errors import CodecError
from bridge.xmap.framing import Decoder, Event, FramingError, Malformed, Role
from tests.fuzz.harness import FUZZ, XML_TOKENS, chunked, corpus, fuzz_bytes, with_seeds

SEEDS = corpus("xmap")
# Regression example: the upload text shape whose repair is itself malformed XML.
BAD_REPAIR = b'<NEWFILEUPLOAD Name="&" TargetFolder="x"/><?GOREALLYSLOW?></NEWFILEUPLOAD>'


def _run(decoder: Decoder, pieces: list[bytes]) -> tuple[list[Event], str | None]:
    """Events and the framing failure (None) of feeding `pieces`, checking the bound throughout."""
    events: list[Event] = []
    bound = max(decoder._max_frame, decoder._max_blob)
    try:
        for piece in pieces:
            events += decoder.feed(piece)
            assert decoder.pending <= bound
    except FramingError as exc:
        events += exc.events
        assert decoder.pending == 0
        with pytest.raises(FramingError):  # the stream stays failed
            decoder.feed(b"<LISTALLFOLDERS/>\x00")
        return events, exc.reason
    return events, None


@FUZZ
@with_seeds([(seed, Role.SERVER) for seed in SEEDS] + [(BAD_REPAIR + b"\x00{0}\r\n", Role.SERVER)])
@given(st.tuples(fuzz_bytes(SEEDS, XML_TOKENS), st.sampled_from(Role)))
def test_decoder_one_shot(case: tuple[bytes, Role]) -> None:
    stream, role = case
    events, _ = _run(Decoder(max_frame=512, max_blob=256, role=role), [stream])
    for event in events:
        _decode(event)


@FUZZ
@given(st.data(), fuzz_bytes(SEEDS, XML_TOKENS), st.sampled_from(Role))
def test_decoder_any_chunking(data: st.DataObject, stream: bytes, role: Role) -> None:
    """Cutting the stream anywhere changes nothing: same events, same failure."""
    whole = _run(Decoder(max_frame=512, max_blob=256, role=role), [stream])
    pieces = data.draw(chunked(stream))
    assert _run(Decoder(max_frame=512, max_blob=256, role=role), pieces) == whole


def _decode(event: Event) -> None:
    with contextlib.suppress(CodecError):
        codec.decode(event)


@FUZZ
@with_seeds([BAD_REPAIR, *SEEDS])
@given(fuzz_bytes(SEEDS, XML_TOKENS))
def test_parse_document(frame: bytes) -> None:
    guess_command(frame)
    try:
        root = parse_document(frame.split(b"\x00", 1)[0], 16)
    except BridgeError:
        return
    assert root.getroottree().docinfo.internalDTD is None
    wants_blob(root)
    with contextlib.suppress(CodecError):
        codec.parse_command(root, None)


# Well-formed commands with hostile attribute values and children: the codec's own checks.
_NAMES = st.sampled_from([*codec.COMMANDS, "XMAPROOT", "FOLDER", "x"])
_ATTRS = st.sampled_from(
    ["Name", "TargetFolder", "MessageHandle", "MessageFlags", "Destination", "UserName",
     "Password", "FileKey", "Length"]
)  # fmt: skip
_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["0", "1", "18446744073709551615", "18446744073709551616", "-1", " 1",
                     "READ", "NEW READ", "read,flagged", "", "a" * 1100, "\t", "١٢"]),
    st.integers(-(2**70), 2**70).map(str),
)  # fmt: skip


@st.composite
def commands(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    elem = etree.Element(draw(_NAMES))
    for name, value in draw(st.dictionaries(_ATTRS, _VALUES, max_size=4)).items():
        elem.set(name, xml_safe(value))
    if depth < 2:
        for child in draw(st.lists(commands(depth + 1), max_size=3)):
            elem.append(child)
    if draw(st.booleans()):
        elem.append(etree.PI("GOREALLYSLOW"))
    return elem


@FUZZ
@given(commands(), st.one_of(st.none(), st.binary(max_size=16)), st.integers(0, 3))
def test_parse_command(root: etree._Element, blob: bytes | None, max_items: int) -> None:
    try:
        command = codec.parse_command(root, blob, max_items=max_items)
    except CodecError:
        return
    # What was accepted goes back out as a request element the decoder reads the same way.
    again = codec.command_to_element(command)
    assert codec.parse_command(again, blob, max_items=max_items) == command


def test_decoder_memory_is_bounded() -> None:
    """A declared 50 MB blob costs nothing until it arrives, and an endless frame is cut at the
    limit: neither is ever buffered past the decoder's limits."""
    limit = 1 << 20
    chunk = b"y" * (64 << 10)
    tracemalloc.start()
    try:
        uploads = Decoder(max_frame=limit)  # the default 50 MB blob limit
        uploads.feed(b'<NEWFILEUPLOAD Name="a" TargetFolder="b"><?GOREALLYSLOW?></NEWFILEUPLOAD>')
        assert uploads.feed(b"\x00{52428800}\r\n") == []
        assert uploads.pending == 0
        _, announced = tracemalloc.get_traced_memory()
        with pytest.raises(FramingError):
            Decoder(max_frame=limit).feed(b"<A><?GOREALLYSLOW?></A>\x00{52428801}")
        endless = Decoder(max_frame=limit)
        with pytest.raises(FramingError):
            for _ in range(64):
                endless.feed(chunk)
                assert endless.pending <= limit
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert announced < limit // 4
    assert peak < 4 * limit


def test_malformed_events_keep_the_stream() -> None:
    """A regression of the repair finding: the bad frame is one Malformed event, the stream goes
    on with the next command."""
    events = Decoder().feed(BAD_REPAIR + b"\x00{2}\r\nab<LISTALLFOLDERS/>\x00")
    assert isinstance(events[0], Malformed) and events[0].blob == b"ab"
    assert len(events) == 2 and not isinstance(events[1], Malformed)
