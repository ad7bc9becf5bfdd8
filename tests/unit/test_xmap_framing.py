"""XMAP TCP framing: zero-ended XML, `{N}` CRLF blobs after `<?GOREALLYSLOW?>`, limits, encoders."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from bridge import xml
from bridge.errors import ErrorKind
from bridge.xmap.framing import (
    MAX_BLOB_BYTES,
    MAX_FRAME_BYTES,
    BlobWriter,
    Decoder,
    Event,
    FramingError,
    Malformed,
    Message,
    Role,
    blob_length_header,
    chunks,
    encode,
    encode_command,
    encode_with_blob,
)

UPLOAD = b'<NEWFILEUPLOAD Name="a.bin" TargetFolder="Files"><?GOREALLYSLOW?></NEWFILEUPLOAD>'
# The blob holds what would otherwise frame: zero bytes, braces, CRLF, XML.
BLOB = b"\x00{3}\r\n<LISTALLFOLDERS/>\x00\xff\x00"
STREAM = (
    b"<LISTALLFOLDERS/>\x00"
    + UPLOAD
    + b"\x00{%d}\r\n" % len(BLOB)
    + BLOB
    + b'\x00  \x00<GETFILE Name="a.bin"/>\x00'
    + b"<SENDMAIL><?GOREALLYSLOW?></SENDMAIL>\x00{0}\r\n"
    + b"<bad\x00"
)
EXPECTED: list[tuple[bytes, bytes | None] | str] = [
    (b"<LISTALLFOLDERS/>", None),
    (UPLOAD, BLOB),
    (b'<GETFILE Name="a.bin"/>', None),
    (b"<SENDMAIL><?GOREALLYSLOW?></SENDMAIL>", b""),
    "malformed",
]


def _shape(events: list[Event]) -> list[tuple[bytes, bytes | None] | str]:
    return [
        "malformed" if isinstance(event, Malformed) else (event.frame, event.blob)
        for event in events
    ]


def test_one_chunk() -> None:
    assert _shape(Decoder().feed(STREAM)) == EXPECTED


def test_every_split_gives_the_same_events() -> None:
    whole = Decoder().feed(STREAM)
    for cut in range(len(STREAM) + 1):
        decoder = Decoder()
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == whole


def test_byte_by_byte() -> None:
    decoder = Decoder()
    events = [event for byte in STREAM for event in decoder.feed(bytes([byte]))]
    assert events == Decoder().feed(STREAM)
    assert decoder.pending == 0
    decoder.end_of_stream()


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_cuts_give_the_same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    decoder = Decoder()
    events = [e for a, b in itertools.pairwise(bounds) for e in decoder.feed(STREAM[a:b])]
    assert _shape(events) == EXPECTED


def test_message_carries_the_parsed_root() -> None:
    (event,) = Decoder().feed(b'<LISTFOLDER Name="INBOX"/>\x00')
    assert isinstance(event, Message)
    assert event.root.tag == "LISTFOLDER"
    assert event.root.get("Name") == "INBOX"


@pytest.mark.parametrize(
    "frame",
    [
        # The text's own shape (lines 126-128): closed twice; read as the PI inside the element.
        b'<NEWFILEUPLOAD Name="Full Path" TargetFolder="Full Path"/>\r\n<?GOREALLYSLOW?>\r\n'
        b"</NEWFILEUPLOAD>",
        b'<NEWFILEUPLOAD Name="a>b/c" TargetFolder="x"/><?GOREALLYSLOW?></NEWFILEUPLOAD>',
        b'<NEWFILEUPLOAD Name="a"/><?GOREALLYSLOW?>',  # PI after the root
        b'<?GOREALLYSLOW?><NEWFILEUPLOAD Name="a"/>',  # PI before the root
        b'<XMAPROOT><NEWFILEUPLOAD Name="a"><?GOREALLYSLOW?></NEWFILEUPLOAD></XMAPROOT>',
    ],
)
def test_blob_follows_the_pi_wherever_it_stands(frame: bytes) -> None:
    events = Decoder().feed(frame + b"\x00{2}\r\nhi<LISTALLFOLDERS/>\x00")
    assert [(type(e), e.blob) for e in events] == [(Message, b"hi"), (Message, None)]


def test_pi_in_a_comment_or_attribute_announces_nothing() -> None:
    frame = b'<LISTFOLDER Name="&lt;?GOREALLYSLOW?&gt;"><!-- <?GOREALLYSLOW?> --></LISTFOLDER>'
    events = Decoder().feed(frame + b"\x00<LISTALLFOLDERS/>\x00")
    assert [e.blob for e in events] == [None, None]


def test_whitespace_before_the_blob_header_is_allowed() -> None:
    (event,) = Decoder().feed(UPLOAD + b"\x00\r\n {1}\r\nx")
    assert event.blob == b"x"


def test_malformed_frame_does_not_end_the_stream() -> None:
    events = Decoder().feed(b"<GETFILE Name='x'\x00<LISTALLFOLDERS/>\x00")
    assert isinstance(events[0], Malformed)
    assert events[0].command == "GETFILE"
    assert events[0].detail == "malformed XML"
    assert isinstance(events[1], Message)


def test_malformed_frame_announcing_a_blob_still_has_its_blob_read() -> None:
    events = Decoder().feed(
        b"<NEWFILEUPLOAD <?GOREALLYSLOW?>\x00{3}\r\n\x00\x00\x00<CREATEFOLDER/>\x00"
    )
    assert isinstance(events[0], Malformed)
    assert events[0].blob == b"\x00\x00\x00"
    assert isinstance(events[1], Message)


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        (b'<!DOCTYPE x [<!ENTITY a "b">]><GETFILE Name="&a;"/>', "DTDs are not allowed"),
        (b"<A>" * 5 + b"</A>" * 5, "XML nested too deeply"),
    ],
)
def test_hardened_parser(frame: bytes, detail: str) -> None:
    (event,) = Decoder(max_depth=4).feed(frame + b"\x00")
    assert isinstance(event, Malformed)
    assert event.detail == detail


def test_guessed_command_skips_the_wrapper() -> None:
    (event,) = Decoder().feed(b"<XMAPROOT><MOVEFILE Name='a'</XMAPROOT>\x00")
    assert isinstance(event, Malformed)
    assert event.command == "MOVEFILE"
    (event,) = Decoder().feed(b"\xff\xfe garbage\x00")
    assert isinstance(event, Malformed)
    assert event.command == ""


# --- framing errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"{-1}\r\n", "invalid blob length"),
        (b"{+1}\r\n", "invalid blob length"),
        (b"{1a}\r\n", "invalid blob length"),
        (b"{}\r\n", "invalid blob length"),
        (b"{ 1}\r\n", "invalid blob length"),
        (b"{\xd9\xa3}\r\n", "invalid blob length"),  # a non-ASCII digit
        (b"{1+}\r\n", "invalid blob length"),  # no LITERAL+ here
        (b"x{1}\r\n", "expected a {N} blob header"),
        (b"<LISTALLFOLDERS/>\x00", "expected a {N} blob header"),
        (b"{1}\n", "blob header must end with CRLF"),
        (b"{1}x", "blob header must end with CRLF"),
        (b"{1}\r\r", "blob header must end with CRLF"),
        (b"{1}\r", None),  # incomplete: waits
        (b"{99999999", None),  # incomplete, within the limit: waits
    ],
)
def test_bad_blob_headers(header: bytes, reason: str | None) -> None:
    decoder = Decoder(max_blob=10**8)
    stream = UPLOAD + b"\x00" + header
    if reason is None:
        assert decoder.feed(stream) == []
        with pytest.raises(FramingError, match="inside a blob"):
            decoder.end_of_stream()
        return
    with pytest.raises(FramingError) as info:
        decoder.feed(stream)
    assert info.value.reason == reason
    assert info.value.kind is ErrorKind.BAD_REQUEST


def test_declared_size_over_the_limit_is_refused_from_the_header_alone() -> None:
    decoder = Decoder(max_blob=1000)
    assert decoder.feed(UPLOAD + b"\x00{100") == []
    with pytest.raises(FramingError) as info:
        decoder.feed(b"1")  # {1001: over the limit, no "}" needed, no byte of the blob read
    assert info.value.limit == 1000
    assert info.value.kind is ErrorKind.LIMIT
    assert decoder.pending == 0


def test_zero_padded_or_huge_lengths_are_refused_early() -> None:
    with pytest.raises(FramingError, match="blob exceeds"):
        Decoder(max_blob=1000).feed(UPLOAD + b"\x00{00000")
    with pytest.raises(FramingError, match="blob exceeds"):
        Decoder().feed(UPLOAD + b"\x00{" + b"9" * 40 + b"}\r\n")


def test_blob_at_the_limit_is_accepted() -> None:
    (event,) = Decoder(max_blob=4).feed(UPLOAD + b"\x00{4}\r\n\x00\x00\x00\x00")
    assert event.blob == b"\x00" * 4


def test_oversized_frame_is_refused_without_buffering_it() -> None:
    decoder = Decoder(max_frame=100)
    decoder.feed(b"<" + b"a" * 99)
    assert decoder.pending == 100
    with pytest.raises(FramingError) as info:
        decoder.feed(b"a" * 10_000_000)
    assert info.value.limit == 100
    assert decoder.pending == 0


def test_oversized_complete_frame_is_refused() -> None:
    with pytest.raises(FramingError):
        Decoder(max_frame=10).feed(b"<a>" + b"x" * 10 + b"</a>\x00")


def test_events_before_the_fault_travel_with_the_error() -> None:
    decoder = Decoder()
    with pytest.raises(FramingError) as info:
        decoder.feed(b"<LISTALLFOLDERS/>\x00" + UPLOAD + b"\x00{x}")
    assert _shape(list(info.value.events)) == [(b"<LISTALLFOLDERS/>", None)]
    with pytest.raises(FramingError):  # the decoder stays failed
        decoder.feed(b"<LISTALLFOLDERS/>\x00")


def test_end_of_stream() -> None:
    decoder = Decoder()
    decoder.feed(b"<LISTALLFOLDERS/>\x00  ")
    decoder.end_of_stream()
    decoder.feed(b"<LISTALL")
    with pytest.raises(FramingError, match="inside a message"):
        decoder.end_of_stream()


def test_default_limits_are_named() -> None:
    assert MAX_FRAME_BYTES == 1 << 20
    assert MAX_BLOB_BYTES == 50 << 20


@settings(max_examples=300)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=64))
def test_random_bytes_raise_only_framing_errors(data: bytes, step: int) -> None:
    decoder = Decoder(max_frame=200, max_blob=300)
    try:
        for start in range(0, len(data), step):
            decoder.feed(data[start : start + step])
            assert decoder.pending <= 300
    except FramingError:
        pass


@settings(max_examples=200)
@given(st.binary(max_size=500), st.integers(min_value=1, max_value=32))
def test_random_blob_bodies_after_an_upload_header(body: bytes, step: int) -> None:
    decoder = Decoder(max_frame=200, max_blob=300)
    stream = UPLOAD + b"\x00" + body
    try:
        for start in range(0, len(stream), step):
            decoder.feed(stream[start : start + step])
            assert decoder.pending <= 300
    except FramingError:
        pass


# --- encoding ----------------------------------------------------------------------------------


def _get_file(length: int) -> etree._Element:
    root = xml.element("XMAPROOT")
    xml.sub(root, "GETFILE", {"Name": "Files/a.bin", "Length": str(length)})
    return root


def test_encode() -> None:
    assert encode(xml.element("XMAPROOT")) == b"<XMAPROOT/>\x00"
    assert blob_length_header(5) == b"{5}\r\n"
    with pytest.raises(ValueError):
        blob_length_header(-1)


def test_encode_with_blob_does_not_copy_the_blob() -> None:
    data = b"\x00abc"
    head, body = encode_with_blob(_get_file(4), data)
    assert head == b'<XMAPROOT><GETFILE Name="Files/a.bin" Length="4"/></XMAPROOT>\x00{4}\r\n'
    assert body.obj is data
    with pytest.raises(ValueError, match="Length=4"):
        encode_with_blob(_get_file(4), b"abc")


def test_client_decoder_reads_the_answers_blob() -> None:
    data = bytes(range(256)) * 20
    head, body = encode_with_blob(_get_file(len(data)), data)
    error = b'<XMAPROOT><ERROR Command="GETFILE" Code="512" Text="x"/></XMAPROOT>\x00'
    stream = head + bytes(body) + error
    decoder = Decoder(role=Role.CLIENT)
    events = [
        e for start in range(0, len(stream), 7) for e in decoder.feed(stream[start : start + 7])
    ]
    assert [e.blob for e in events] == [data, None]


def test_server_decoder_does_not_expect_blobs_after_answers() -> None:
    head, _ = encode_with_blob(_get_file(1), b"x")
    decoder = Decoder(role=Role.SERVER)
    (event,) = decoder.feed(head + b"x")
    assert event.blob is None  # the length line is read as the start of the next message
    assert decoder.pending == len(b"{1}\r\nx")


def test_blob_writer_streams_in_chunks() -> None:
    data = bytes(5 * 1024 * 1024)
    writer = BlobWriter(_get_file(len(data)), len(data))
    pieces: list[bytes | memoryview] = [writer.head()]
    pieces += [writer.write(chunk) for chunk in chunks(data, 1 << 20)]
    writer.finish()
    assert len(pieces) == 6
    assert all(isinstance(piece, memoryview) and piece.obj is data for piece in pieces[1:])
    (event,) = Decoder(role=Role.CLIENT, max_blob=len(data)).feed(b"".join(pieces))
    assert event.blob == data


def test_blob_writer_holds_to_the_announced_length() -> None:
    writer = BlobWriter(_get_file(3), 3)
    with pytest.raises(RuntimeError):
        writer.write(b"a")
    writer.head()
    with pytest.raises(RuntimeError):
        writer.head()
    writer.write(b"ab")
    assert writer.remaining == 1
    with pytest.raises(ValueError, match="1 announced"):
        writer.finish()
    with pytest.raises(ValueError, match="more bytes"):
        writer.write(b"cd")
    with pytest.raises(ValueError, match="Length=3"):
        BlobWriter(_get_file(3), 4).head()


def test_encode_command_adds_the_pi_to_a_copy() -> None:
    element = xml.element("NEWFILEUPLOAD", {"Name": "a", "TargetFolder": "b"})
    wire = encode_command(element, b"\x00\x01")
    assert wire == (
        b'<NEWFILEUPLOAD Name="a" TargetFolder="b"><?GOREALLYSLOW?></NEWFILEUPLOAD>\x00'
        b"{2}\r\n\x00\x01"
    )
    assert len(element) == 0
    assert encode_command(element) == b'<NEWFILEUPLOAD Name="a" TargetFolder="b"/>\x00'


_TAGS = st.sampled_from(["LISTALLFOLDERS", "GETFILE", "NEWFILEUPLOAD", "SENDMAIL", "X"])
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)


@given(st.lists(st.tuples(_TAGS, _TEXT, st.none() | st.binary(max_size=40)), max_size=8), st.data())
def test_round_trip(messages: list[tuple[str, str, bytes | None]], data: st.DataObject) -> None:
    stream = b"".join(
        encode_command(xml.element(tag, {"Name": name}), blob) for tag, name, blob in messages
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    bounds = [0, *cuts, len(stream)]
    decoder = Decoder()
    events = [e for a, b in itertools.pairwise(bounds) for e in decoder.feed(stream[a:b])]
    assert [(e.root.tag, e.root.get("Name"), e.blob) for e in events if isinstance(e, Message)] == [
        (tag, name, blob) for tag, name, blob in messages
    ]
