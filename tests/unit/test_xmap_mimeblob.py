"""The MIME blobs XMAP uploads and sends (bridge/xmap/mimeblob.py): split at the first blank
line, read field by field, completed with Date and Message-ID, and sent without Bcc."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import BridgeError, ErrorKind
from bridge.xmap import mimeblob

OWNER = "alice@example.test"
LIMIT = 1 << 20

# --- generated messages ----------------------------------------------------------------------

FIELD_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
FIELD_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40
).map(str.strip)
NEWLINES = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def fields(draw: st.DrawFn, name: st.SearchStrategy[str] = FIELD_NAMES) -> list[str]:
    """One header field as its lines (more than one when folded)."""
    first = f"{draw(name)}: {draw(FIELD_TEXT)}"
    more = draw(st.lists(FIELD_TEXT.map(lambda t: " " + t if t else "\t."), max_size=2))
    return [first, *more]


@st.composite
def messages(draw: st.DrawFn, extra: st.SearchStrategy[list[str]] | None = None) -> bytes:
    newline = draw(NEWLINES)
    header = draw(st.lists(fields(), min_size=1, max_size=6))
    if extra is not None:
        for chosen in draw(st.lists(extra, max_size=3)):
            header.insert(draw(st.integers(0, len(header))), chosen)
    body = draw(st.binary(max_size=200).filter(lambda b: b"\x00" not in b))
    lines = [line for field in header for line in field]
    return newline.join(line.encode() for line in lines) + newline + newline + body


def _blank_line_split(raw: bytes) -> int:
    """Where the first blank line starts (CRLF or LF)."""
    match = re.search(rb"\r?\n(\r?\n)", raw)
    assert match is not None
    return match.start(1)


# --- split_header and header_fields ----------------------------------------------------------


def test_split_header_examples() -> None:
    assert mimeblob.split_header(b"To: a@x\r\nSubject: s\r\n\r\nbody\r\n\r\nmore") == (
        b"To: a@x\r\nSubject: s\r\n",
        b"\r\nbody\r\n\r\nmore",
    )
    assert mimeblob.split_header(b"To: a@x\n\nbody") == (b"To: a@x\n", b"\nbody")
    assert mimeblob.split_header(b"To: a@x\n\r\nbody") == (b"To: a@x\n", b"\r\nbody")
    assert mimeblob.split_header(b"To: a@x\r\n\nbody") == (b"To: a@x\r\n", b"\nbody")
    assert mimeblob.split_header(b"To: a@x\r\n") == (b"To: a@x\r\n", b"")  # no body
    assert mimeblob.split_header(b"To: a@x\r\n\r\n") == (b"To: a@x\r\n", b"\r\n")


@given(messages())
def test_split_header_cuts_at_the_first_blank_line(raw: bytes) -> None:
    header, rest = mimeblob.split_header(raw)
    assert header + rest == raw
    assert len(header) == _blank_line_split(raw)
    assert header.endswith(b"\n") and rest.startswith((b"\r\n", b"\n"))
    assert b"\n\n" not in header and b"\n\r\n" not in header


@given(messages())
def test_header_fields_rebuild_the_header_exactly(raw: bytes) -> None:
    header, _ = mimeblob.split_header(raw)
    found = mimeblob.header_fields(header)
    assert b"".join(text for _, text in found) == header
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert [name for name, _ in found] == [name.lower() for name in parsed]


def test_header_fields_keep_folded_lines_with_their_field() -> None:
    header = b"To: a@x.test,\r\n b@x.test\r\nSubject: one\r\n\ttwo\r\nX-Y:z\r\n"
    assert mimeblob.header_fields(header) == [
        ("to", b"To: a@x.test,\r\n b@x.test\r\n"),
        ("subject", b"Subject: one\r\n\ttwo\r\n"),
        ("x-y", b"X-Y:z\r\n"),
    ]


@pytest.mark.parametrize(
    "header",
    [b" folded first: x\r\n", b"no colon here\r\n", b"Bad Name: x\r\n", b": x\r\n",
     b"To : a@x.test\r\n", b"\r\n"],
)  # fmt: skip
def test_header_fields_refuse_lines_that_are_not_fields(header: bytes) -> None:
    with pytest.raises(BridgeError) as caught:
        mimeblob.header_fields(header)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


# --- check_message ---------------------------------------------------------------------------


def test_check_message() -> None:
    raw = b"To: b@x.test\r\nSubject: hi\r\n\r\nbody"
    assert [name for name, _ in mimeblob.check_message(raw, LIMIT)] == ["to", "subject"]
    cases = [
        (b"", ErrorKind.BAD_REQUEST),
        (b"To: b@x.test\r\n\r\nbody\x00", ErrorKind.BAD_REQUEST),
        (b"\r\nbody only", ErrorKind.BAD_REQUEST),
        (b"just some text\r\n\r\nbody", ErrorKind.BAD_REQUEST),
        (b"To: b@x.test\r\n\r\n" + b"x" * 100, ErrorKind.LIMIT),
    ]
    for blob, kind in cases:
        with pytest.raises(BridgeError) as caught:
            mimeblob.check_message(blob, 64)
        assert caught.value.kind is kind, blob
    assert mimeblob.check_message(b"To: b@x.test\r\n\r\n" + b"x" * 46, 64)  # at the limit


# --- complete --------------------------------------------------------------------------------


def _complete(raw: bytes) -> bytes:
    return mimeblob.complete(raw, OWNER, mimeblob.check_message(raw, LIMIT))


def test_complete_adds_date_and_message_id_only_when_missing() -> None:
    bare = b"To: b@x.test\r\nSubject: hi\r\n\r\nbody\r\n"
    done = _complete(bare)
    assert done.endswith(bare)
    added = done[: -len(bare)]
    assert re.fullmatch(
        rb"Date: [^\r\n]+\r\nMessage-ID: <xmap\.[0-9a-f]{24}@example\.test>\r\n", added
    ), added
    parsed = email.message_from_bytes(done, policy=email.policy.default)
    assert parsed["Date"].datetime is not None
    assert _complete(bare) != done  # a new Message-ID each time

    full = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMESSAGE-ID: <m@x>\r\nTo: b@x\r\n\r\nb"
    assert _complete(full) == full
    only_id = b"Message-Id: <m@x>\r\nTo: b@x\r\n\r\nb"
    assert _complete(only_id).count(b"Message-I") == 1
    assert _complete(only_id).startswith(b"Date: ")


def test_complete_without_a_domain_in_the_owner() -> None:
    raw = b"To: b@x.test\r\n\r\nbody"
    done = mimeblob.complete(raw, "alice", mimeblob.check_message(raw, LIMIT))
    assert b"@alice>" in done or b"@localhost>" in done


@given(messages())
@settings(deadline=None)
def test_complete_keeps_the_message_and_its_line_ends(raw: bytes) -> None:
    done = _complete(raw)
    assert done.endswith(raw)
    added = done[: -len(raw)]
    newline = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    assert added.count(newline) == added.count(b"\n")  # the message's own line end
    header, _ = mimeblob.split_header(done)
    names = [name for name, _ in mimeblob.header_fields(header)]
    assert names.count("date") >= 1 and names.count("message-id") >= 1


def test_complete_follows_an_lf_header_even_when_the_body_has_crlf() -> None:
    raw = b"To: b@x.test\nSubject: s\n\nline one\r\nline two\r\n"
    done = _complete(raw)
    added = done[: -len(raw)]
    assert b"\r" not in added


# --- prepare ---------------------------------------------------------------------------------

BCC_NAMES = st.sampled_from(["Bcc", "BCC", "bcc", "bCc"])
BCC_FIELDS = fields(BCC_NAMES)


@st.composite
def sendable(draw: st.DrawFn) -> bytes:
    newline = draw(NEWLINES)
    raw = draw(messages(BCC_FIELDS))
    if newline == b"\r\n" and b"\r\n" not in raw:
        raw = raw.replace(b"\n", b"\r\n")
    return b"To: someone@x.test" + (b"\r\n" if b"\r\n" in raw else b"\n") + raw


def _has_bcc(header: bytes) -> bool:
    return any(name == "bcc" for name, _ in mimeblob.header_fields(header))


@given(sendable())
@settings(deadline=None, max_examples=200)
def test_prepare_drops_every_bcc_and_keeps_the_rest_byte_for_byte(raw: bytes) -> None:
    out = mimeblob.prepare(raw, OWNER, LIMIT)
    stored_header, stored_body = mimeblob.split_header(out.stored)
    sent_header, sent_body = mimeblob.split_header(out.transmit)
    assert out.stored.endswith(raw)
    assert sent_body == stored_body == mimeblob.split_header(raw)[1]
    assert not _has_bcc(sent_header)
    assert b"bcc:" not in sent_header.lower()  # no line of a folded Bcc is left behind
    assert [f for f in mimeblob.header_fields(stored_header) if f[0] != "bcc"] == (
        mimeblob.header_fields(sent_header)
    )
    parsed = email.message_from_bytes(out.transmit, policy=email.policy.compat32)
    assert parsed.get_all("Bcc") is None
    assert "someone@x.test" in out.recipients
    assert len(set(out.recipients)) == len(out.recipients)


def test_prepare_recipients_from_to_cc_and_bcc() -> None:
    raw = (
        b"From: alice@example.test\r\n"
        b'To: "Doe, John" <john@x.test>, mary@x.test\r\n'
        b"Cc: =?utf-8?q?Ren=C3=A9?= <rene@x.test>,\r\n mary@x.test\r\n"
        b"BCC: hidden@y.test,\r\n\tjohn@x.test\r\n"
        b"bcc: second@y.test\r\n"
        b"Subject: plan\r\n"
        b"Reply-To: not-a-recipient@x.test\r\n"
        b"\r\n"
        b"Bcc: this is body text, not a header\r\n"
    )
    out = mimeblob.prepare(raw, OWNER, LIMIT)
    assert out.recipients == (
        "john@x.test",
        "mary@x.test",
        "rene@x.test",
        "hidden@y.test",
        "second@y.test",
    )
    header, body = mimeblob.split_header(out.transmit)
    assert b"hidden" not in header and b"second" not in header
    assert body == b"\r\nBcc: this is body text, not a header\r\n"
    assert b"Subject: plan\r\nReply-To: not-a-recipient@x.test\r\n" in header
    assert b"BCC: hidden@y.test,\r\n\tjohn@x.test\r\n" in out.stored  # the kept copy has it


def test_prepare_lf_message() -> None:
    raw = b"To: a@x.test\nBcc: b@x.test,\n c@x.test\nSubject: s\n\nbody\n"
    out = mimeblob.prepare(raw, OWNER, LIMIT)
    assert out.recipients == ("a@x.test", "b@x.test", "c@x.test")
    assert out.transmit.endswith(b"To: a@x.test\nSubject: s\n\nbody\n")
    assert b"\r" not in out.transmit


def test_prepare_refuses_a_message_without_recipients() -> None:
    for raw in (
        b"Subject: nobody\r\n\r\nbody",
        b"To: undisclosed-recipients:;\r\n\r\nbody",
        b"To: just a name\r\n\r\nbody",
        b"Subject: x\r\n\r\nTo: in-the-body@x.test\r\n",
    ):
        with pytest.raises(BridgeError) as caught:
            mimeblob.prepare(raw, OWNER, LIMIT)
        assert caught.value.kind is ErrorKind.BAD_REQUEST, raw


def test_prepare_group_syntax_and_too_many_recipients() -> None:
    raw = b"To: team: a@x.test, b@x.test;\r\nCc: c@x.test\r\n\r\nbody"
    assert mimeblob.prepare(raw, OWNER, LIMIT).recipients == ("a@x.test", "b@x.test", "c@x.test")
    many = ", ".join(f"u{i}@x.test" for i in range(mimeblob.MAX_RECIPIENTS + 1))
    with pytest.raises(BridgeError) as caught:
        mimeblob.prepare(f"To: {many}\r\n\r\nbody".encode(), OWNER, 1 << 24)
    assert caught.value.kind is ErrorKind.LIMIT
    exact = ", ".join(f"u{i}@x.test" for i in range(mimeblob.MAX_RECIPIENTS))
    out = mimeblob.prepare(f"To: {exact}\r\n\r\nbody".encode(), OWNER, 1 << 24)
    assert len(out.recipients) == mimeblob.MAX_RECIPIENTS


def test_prepare_keeps_a_message_that_has_date_and_id() -> None:
    raw = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m@x>\r\nTo: b@x.test\r\n\r\nhi"
    out = mimeblob.prepare(raw, OWNER, LIMIT)
    assert out.stored == out.transmit == raw
