"""XMAP files stored as one-part IMAP messages (bridge/xmap/files.py): names, paths, the
percent-encoded X-XMAP-File header, and the composed message read back as a server stores it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.errors import BridgeError, ErrorKind
from bridge.xmap import files

WHEN = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)

# Characters a file name may hold: anything but "/" and control or line-breaking characters.
_NAME_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/\x85"
)


def _fits(name: str) -> bool:
    return name not in (".", "..") and len(name.encode("utf-8")) <= files.MAX_NAME_BYTES


NAMES = st.text(_NAME_CHARS, min_size=1, max_size=90).filter(_fits)
# Names at the byte limit: the longest header lines.
LONG_NAMES = st.sampled_from(["x", "é", "€", "𝄞", "%", '"', " "]).map(
    lambda c: c * (files.MAX_NAME_BYTES // len(c.encode("utf-8")))
)


def _headers(message: bytes) -> dict[str, str]:
    """The header fields as an IMAP server hands them over: raw, unfolded."""
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    return {name: " ".join(str(value).split("\r\n")) for name, value in parsed.items()}


def _stored_body(message: bytes) -> bytes:
    """BODY[TEXT] of the stored message: everything after the first blank line."""
    head, blank, body = message.partition(b"\r\n\r\n")
    assert blank and b"\n\n" not in head
    return body


# --- names and paths -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["q1.pdf", "with space.txt", "100%.txt", '"quoted"', "été.doc",
                                  ".hidden", "...", "x" * 255, "é" * 127])  # fmt: skip
def test_valid_names_pass(name: str) -> None:
    assert files.check_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/", "x" * 256, "é" * 128,
                                  "line\nbreak", "cr\rhere", "nul\x00", "tab\tname", "esc\x1b",
                                  "nel\x85", "ls\u2028", "ps\u2029", "lone\ud800"])  # fmt: skip
def test_invalid_names_are_bad_requests(name: str) -> None:
    with pytest.raises(BridgeError) as caught:
        files.check_name(name)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_split_path() -> None:
    assert files.split_path("Reports/q1.pdf") == ("Reports", "q1.pdf")
    assert files.split_path("A/B/C/n.txt") == ("A/B/C", "n.txt")
    for bad in ("q1.pdf", "/q1.pdf", "Reports/", "Reports/..", "Reports/."):
        with pytest.raises(BridgeError) as caught:
            files.split_path(bad)
        assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_upload_path_takes_a_full_path_or_a_bare_name() -> None:
    assert files.upload_path("q1.pdf", "Reports") == "Reports/q1.pdf"
    assert files.upload_path("Reports/q1.pdf", "Reports") == "Reports/q1.pdf"
    assert files.upload_path("Reports/q1.pdf", "Reports/") == "Reports/q1.pdf"
    assert files.upload_path("A/B/n.txt", "A/B") == "A/B/n.txt"
    for name, folder in [("Other/q1.pdf", "Reports"), ("Reports/Sub/q1.pdf", "Reports"),
                         ("q1.pdf", ""), ("q1.pdf", "/"), ("Reports/", "Reports"),
                         ("..", "Reports"), ("ReportsX/q1.pdf", "Reports")]:  # fmt: skip
        with pytest.raises(BridgeError) as caught:
            files.upload_path(name, folder)
        assert caught.value.kind is ErrorKind.BAD_REQUEST, (name, folder)


@given(folder=st.lists(NAMES, min_size=1, max_size=3).map("/".join), name=NAMES)
def test_upload_path_then_split_path_round_trip(folder: str, name: str) -> None:
    path = files.upload_path(name, folder)
    assert path == f"{folder}/{name}"
    assert files.split_path(path) == (folder, name)
    assert files.upload_path(path, folder) == path


# --- the X-XMAP-File header ------------------------------------------------------------------


@given(NAMES)
def test_encoded_name_is_plain_ascii_and_decodes_back(name: str) -> None:
    encoded = files.encode_name(name)
    assert encoded.isascii() and encoded.isprintable()
    assert not set(encoded) & set(" \t\r\n/\"'():;,")
    assert files.name_of({files.FILE_FIELD: encoded}) == name
    assert files.name_of({files.FILE_FIELD: f"  {encoded} "}) == name  # header whitespace


def test_name_of_other_messages() -> None:
    assert files.name_of({}) is None
    assert files.name_of({"Subject": "q1.pdf"}) is None
    assert files.name_of({files.FILE_FIELD: "  "}) is None
    assert files.name_of({files.FILE_FIELD: "a%2Fb"}) == "a/b"  # as written, never trusted
    assert files.name_of({files.FILE_FIELD: "%ZZbad%"}) == "%ZZbad%"
    assert files.name_of({files.FILE_FIELD: "%FF"}) == "\ufffd"  # not UTF-8: replaced


def test_length_of() -> None:
    assert files.length_of({files.LENGTH_FIELD: "48213"}, 7) == 48213
    assert files.length_of({files.LENGTH_FIELD: " 12 "}, 7) == 12
    assert files.length_of({files.LENGTH_FIELD: "many"}, 7) == 7
    assert files.length_of({}, 7) == 7


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("q1.pdf", "application/pdf"),
        ("notes.txt", "text/plain"),
        ("PHOTO.JPG", "image/jpeg"),
        ("archive.tar.gz", files.DEFAULT_TYPE),  # the bytes are the archive
        ("noextension", files.DEFAULT_TYPE),
        ("weird.zzqx", files.DEFAULT_TYPE),
    ],
)
def test_content_type(name: str, expected: str) -> None:
    assert files.content_type(name) == expected


# --- the composed message --------------------------------------------------------------------


def test_compose_builds_the_documented_message() -> None:
    data = b"%PDF-1.4\x00\x01\xff" * 40
    message = files.compose("q1.pdf", data, owner="alice@example.test", when=WHEN)
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert parsed["From"] == "alice@example.test"
    assert parsed["Subject"] == "q1.pdf"
    assert parsed[files.FILE_FIELD] == "q1.pdf"
    assert parsed[files.LENGTH_FIELD] == str(len(data))
    assert parsed.get_content_type() == "application/pdf"
    assert parsed.get_content_disposition() == "attachment"
    assert parsed.get_filename() == "q1.pdf"
    assert parsed["Content-Transfer-Encoding"] == "base64"
    assert parsed["Date"].datetime == WHEN
    assert parsed["Message-ID"].endswith("@example.test>")
    assert not parsed.is_multipart()
    assert parsed.get_content() == data
    assert files.decode_body(_stored_body(message)) == data


def test_every_file_gets_its_own_message_id() -> None:
    one = files.compose("a.txt", b"x", owner="o@x.test", when=WHEN)
    two = files.compose("a.txt", b"x", owner="o@x.test", when=WHEN)
    ids = [email.message_from_bytes(m)["Message-ID"] for m in (one, two)]
    assert ids[0] != ids[1]


def _check_composed(name: str, data: bytes) -> None:
    message = files.compose(name, data, owner="owner@example.test", when=WHEN)
    head = message.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n"):
        assert len(line) <= 998, line[:60]
        assert line.isascii(), line[:60]
    assert b"\x00" not in message
    assert b"\n" not in message.replace(b"\r\n", b"")  # CRLF only
    headers = _headers(message)
    assert files.name_of(headers) == name
    assert files.length_of(headers, -1) == len(data)
    assert files.decode_body(_stored_body(message)) == data
    if "=?" in name:
        return  # see test_a_name_that_looks_like_an_encoded_word
    # What other mail clients show: the Subject (folding whitespace aside) and the filename.
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert " ".join(str(parsed["Subject"]).split()) == " ".join(name.split())
    assert parsed["Content-Disposition"].params["filename"] == name


@given(name=NAMES, data=st.binary(max_size=3000))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_name_and_bytes_survive_the_stored_message(name: str, data: bytes) -> None:
    _check_composed(name, data)


@given(name=LONG_NAMES, data=st.binary(max_size=64))
@settings(deadline=None)
def test_names_at_the_limit_keep_header_lines_short(name: str, data: bytes) -> None:
    assert len(name.encode("utf-8")) > files.MAX_NAME_BYTES - 4
    _check_composed(name, data)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00" * 1000, bytes(range(256)) * 20])
def test_zero_bytes_and_empty_files(data: bytes) -> None:
    _check_composed("blob.bin", data)


def test_names_with_header_syntax() -> None:
    for name in ("a%20b", "%", "%%", "=?", "'single'", "semi;colon", "(paren)", "<a@b>", "x\\y"):
        _check_composed(name, b"data")


def test_a_name_that_looks_like_an_encoded_word() -> None:
    """X-XMAP-File keeps it exactly; the Subject and filename (for other mail clients) are
    written by the email package, which takes such a value as already encoded: a reader shows
    `x`. Only the bridge's own listing is exact."""
    message = files.compose("=?utf-8?q?x?=", b"data", owner="o@x.test", when=WHEN)
    assert files.name_of(_headers(message)) == "=?utf-8?q?x?="
    assert files.decode_body(_stored_body(message)) == b"data"


def test_decode_body_tolerates_line_breaks_and_refuses_damage() -> None:
    assert files.decode_body(b"aGVs\r\nbG8=\r\n") == b"hello"
    assert files.decode_body(b"") == b""
    for damaged in (b"aGVsbG8", b"not base64!", b"aGVs*bG8="):
        with pytest.raises(BridgeError) as caught:
            files.decode_body(damaged)
        assert caught.value.kind is ErrorKind.BACKEND_REFUSED


@given(st.text(st.characters(blacklist_characters="/"), min_size=1, max_size=40))
@settings(max_examples=300, deadline=None)
def test_every_name_check_name_accepts_can_be_stored(name: str) -> None:
    """No name gets past check_name that compose then fails on (a crash, not BAD_REQUEST)."""
    try:
        files.check_name(name)
    except BridgeError as exc:
        assert exc.kind is ErrorKind.BAD_REQUEST
        return
    _check_composed(name, b"data")
