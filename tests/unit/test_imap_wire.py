"""IMAP wire layer: the response parser and the command encoder, without a network.

Parser tests read like server transcripts (Dovecot's wording), then check the framing
properties: any split of the stream gives the same responses, arbitrary bytes raise only
ProtocolError, and limits trip before anything is buffered past them.
"""

import contextlib
import gc
import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.imap.wire import (
    NIL,
    Arg,
    Atom,
    Continuation,
    Literal,
    ProtocolError,
    Raw,
    Response,
    ResponseCode,
    ResponseParser,
    Tagged,
    Untagged,
    Value,
    encode_command,
    parse_sequence_set,
    quote,
    sequence_set,
)

A = Atom


def parse(data: bytes, **limits: int) -> list[Response]:
    return ResponseParser(**limits).feed(data)


def one(line: bytes) -> Response:
    responses = parse(line + b"\r\n")
    assert len(responses) == 1
    return responses[0]


def data(kind: str, *values: Value, number: int | None = None) -> Untagged:
    return Untagged(kind, number, None, "", list(values))


def status(kind: str, text: str, code: ResponseCode | None = None) -> Untagged:
    return Untagged(kind, None, code, text, [])


def lit(payload: bytes) -> bytes:
    return b"{%d}\r\n" % len(payload) + payload


# -- parser: what Dovecot sends ----------------------------------------------------------------

DOVECOT_LINES = [
    (
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN] Dovecot ready.",
        status(
            "OK",
            "Dovecot ready.",
            ResponseCode(
                "CAPABILITY", [A("IMAP4rev1"), A("SASL-IR"), A("LITERAL+"), A("AUTH=PLAIN")]
            ),
        ),
    ),
    (b"* 5 EXISTS", Untagged("EXISTS", 5, None, "", [])),
    (b"* 3 RECENT", Untagged("RECENT", 3, None, "", [])),
    (b"* 4 EXPUNGE", Untagged("EXPUNGE", 4, None, "", [])),
    (
        b"* 12 FETCH (UID 40 FLAGS (\\Seen))",
        data("FETCH", [A("UID"), A("40"), A("FLAGS"), [A("\\Seen")]], number=12),
    ),
    (
        b"* 7 FETCH (FLAGS () MODSEQ (12345))",
        data("FETCH", [A("FLAGS"), [], A("MODSEQ"), [A("12345")]], number=7),
    ),
    (b"* OK [UIDVALIDITY 3] ok", status("OK", "ok", ResponseCode("UIDVALIDITY", [A("3")]))),
    (
        b"* OK [UIDNEXT 5] Predicted next UID",
        status("OK", "Predicted next UID", ResponseCode("UIDNEXT", [A("5")])),
    ),
    (
        b"* OK [PERMANENTFLAGS (\\Answered \\Seen \\*)] Flags permitted.",
        status(
            "OK",
            "Flags permitted.",
            ResponseCode("PERMANENTFLAGS", [[A("\\Answered"), A("\\Seen"), A("\\*")]]),
        ),
    ),
    (
        b"* OK [HIGHESTMODSEQ 9] Highest",
        status("OK", "Highest", ResponseCode("HIGHESTMODSEQ", [A("9")])),
    ),
    (b"* OK", status("OK", "")),
    (b"* OK Still here", status("OK", "Still here")),
    (
        b"* NO [ALERT] Quota [90%] almost full]",
        status("NO", "Quota [90%] almost full]", ResponseCode("ALERT", [])),
    ),
    (b"* BYE Logging out", status("BYE", "Logging out")),
    (b"* PREAUTH", status("PREAUTH", "")),
    (
        b"* OK [REFERRAL imap://u@h/INBOX;UID=1] moved",
        status("OK", "moved", ResponseCode("REFERRAL", [A("imap://u@h/INBOX;UID=1")])),
    ),
    (
        b'* OK [BADCHARSET ("a]b" UTF-8)] no',
        status("OK", "no", ResponseCode("BADCHARSET", [[b"a]b", A("UTF-8")]])),
    ),
    (b"* OK [unclosed code", status("OK", "[unclosed code")),
    (b"* CAPABILITY IMAP4rev1 SORT", data("CAPABILITY", A("IMAP4rev1"), A("SORT"))),
    (b'* LIST (\\HasNoChildren) "/" "INBOX"', data("LIST", [A("\\HasNoChildren")], b"/", b"INBOX")),
    (b'* LIST () "/" INBOX', data("LIST", [], b"/", A("INBOX"))),
    (b'* LIST (\\Noselect) NIL ""', data("LIST", [A("\\Noselect")], NIL, b"")),
    (
        b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4)",
        data("STATUS", A("INBOX"), [A("MESSAGES"), A("3"), A("UIDNEXT"), A("4")]),
    ),
    (
        b'* ESEARCH (TAG "A1") UID ALL 1:3',
        data("ESEARCH", [A("TAG"), b"A1"], A("UID"), A("ALL"), A("1:3")),
    ),
    (b"* SORT 3 1 2", data("SORT", A("3"), A("1"), A("2"))),
    (b"* SEARCH 1 2", data("SEARCH", A("1"), A("2"))),
    (b"* SEARCH", data("SEARCH")),
    (b"* ACL INBOX user1 lr", data("ACL", A("INBOX"), A("user1"), A("lr"))),
    (b"* MYRIGHTS INBOX lrswipkxtecda", data("MYRIGHTS", A("INBOX"), A("lrswipkxtecda"))),
    (
        b'* LISTRIGHTS INBOX user1 "" l r',
        data("LISTRIGHTS", A("INBOX"), A("user1"), b"", A("l"), A("r")),
    ),
    (b'* QUOTAROOT INBOX "User quota"', data("QUOTAROOT", A("INBOX"), b"User quota")),
    (
        b'* QUOTA "User quota" (STORAGE 10 1024)',
        data("QUOTA", b"User quota", [A("STORAGE"), A("10"), A("1024")]),
    ),
    (
        b'* METADATA INBOX (/private/comment "x")',
        data("METADATA", A("INBOX"), [A("/private/comment"), b"x"]),
    ),
    (
        b'* NAMESPACE (("" "/")) NIL (("shared/" "/"))',
        data("NAMESPACE", [[b"", b"/"]], NIL, [[b"shared/", b"/"]]),
    ),
    (b"* VANISHED (EARLIER) 1:5", data("VANISHED", [A("EARLIER")], A("1:5"))),
    (b"* ENABLED CONDSTORE", data("ENABLED", A("CONDSTORE"))),
    (b"* ID NIL", data("ID", NIL)),
    (b"* ID nil", data("ID", NIL)),
    (b'* ID ("name" "Dovecot")', data("ID", [b"name", b"Dovecot"])),
    (
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        data("FLAGS", [A("\\Answered"), A("\\Flagged"), A("\\Deleted"), A("\\Seen"), A("\\Draft")]),
    ),
    (b"* x-unknown a (b)", data("X-UNKNOWN", A("a"), [A("b")])),
    (
        b'* 1 FETCH (BODY[HEADER.FIELDS (DATE FROM)] "x" BODY[]<0> NIL BINARY.SIZE[1] 3)',
        data(
            "FETCH",
            [
                A("BODY[HEADER.FIELDS (DATE FROM)]"),
                b"x",
                A("BODY[]<0>"),
                NIL,
                A("BINARY.SIZE[1]"),
                A("3"),
            ],
            number=1,
        ),
    ),
    (
        b'* 2 FETCH (ENVELOPE ("Mon, 1 Jan 2024" "say \\"hi\\" \\\\o/" (("A" NIL "a" "b.c")) NIL))',
        data(
            "FETCH",
            [
                A("ENVELOPE"),
                [b"Mon, 1 Jan 2024", b'say "hi" \\o/', [[b"A", NIL, b"a", b"b.c"]], NIL],
            ],
            number=2,
        ),
    ),
    (b"* 3 fetch (uid 3)", data("FETCH", [A("uid"), A("3")], number=3)),
    (
        b'* 4 FETCH (UID 4 BODY[HEADER] "Subject: \xc3\xa4")',
        data("FETCH", [A("UID"), A("4"), A("BODY[HEADER]"), b"Subject: \xc3\xa4"], number=4),
    ),
    (
        b"A1 OK [COPYUID 7 1:3 10:12] Copy completed (0.001 + 0.000 secs).",
        Tagged(
            "A1",
            "OK",
            ResponseCode("COPYUID", [A("7"), A("1:3"), A("10:12")]),
            "Copy completed (0.001 + 0.000 secs).",
        ),
    ),
    (
        b"A2 NO [TRYCREATE] Mailbox doesn't exist: x",
        Tagged("A2", "NO", ResponseCode("TRYCREATE", []), "Mailbox doesn't exist: x"),
    ),
    (b"A3 BAD Error in IMAP command", Tagged("A3", "BAD", None, "Error in IMAP command")),
    (b"a4 ok", Tagged("a4", "OK", None, "")),
    (b"A5 OK text ending {5}", Tagged("A5", "OK", None, "text ending {5}")),
    (b"+ ", Continuation("")),
    (b"+", Continuation("")),
    (b"+ Ready for literal data", Continuation("Ready for literal data")),
    (b"+ PDEyMzQ1QGhvc3Q+", Continuation("PDEyMzQ1QGhvc3Q+")),
]


@pytest.mark.parametrize(("line", "expected"), DOVECOT_LINES)
def test_dovecot_lines(line: bytes, expected: Response) -> None:
    assert one(line) == expected


def test_numbers_and_names_are_atoms_strings_are_bytes() -> None:
    response = one(b'* LIST () "/" "INBOX"')
    assert isinstance(response, Untagged)
    assert type(response.values[0]) is list
    assert type(response.values[1]) is bytes
    assert type(one(b"* SORT 3").values[0]) is Atom  # type: ignore[union-attr]


def test_literals_in_fetch() -> None:
    header = b"Subject: hi\r\n\r\n"
    body = b'line {5}\r\n) ( "\r\n'
    stream = (
        b"* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] "
        + lit(header)
        + b" BODY[] "
        + lit(body)
        + b")\r\n"
        b"* 2 FETCH (BINARY[1] ~" + lit(b"\x00\xff") + b" FLAGS ())\r\n"
        b"* 3 FETCH (BODY[] " + lit(b"") + b")\r\n"
        b"* 4 FETCH (ENVELOPE (NIL " + lit(b"hello") + b" NIL))\r\n"
    )
    assert parse(stream) == [
        data(
            "FETCH",
            [A("UID"), A("7"), A("BODY[HEADER.FIELDS (SUBJECT)]"), header, A("BODY[]"), body],
            number=1,
        ),
        data("FETCH", [A("BINARY[1]"), b"\x00\xff", A("FLAGS"), []], number=2),
        data("FETCH", [A("BODY[]"), b""], number=3),
        data("FETCH", [A("ENVELOPE"), [NIL, b"hello", NIL]], number=4),
    ]


def test_status_text_ending_in_braces_is_not_a_literal() -> None:
    responses = parse(b"* OK [ALERT] see {5}\r\n* 1 EXISTS\r\n")
    assert responses == [
        status("OK", "see {5}", ResponseCode("ALERT", [])),
        Untagged("EXISTS", 1, None, "", []),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"*",
        b"* ",
        b"* 12",
        b"A1",
        b"A1 MAYBE done",
        b"* X (a",
        b"* X a)",
        b'* X "unterminated',
        b'* X "ends in escape\\"',
        b"* 1 FETCH (UID 1",
        b"* 1 FETCH UID 1)",
        b"* 123456789012345678901 EXISTS",
    ],
)
def test_malformed_lines_raise(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(line + b"\r\n")


def test_parser_stays_failed() -> None:
    parser = ResponseParser()
    with pytest.raises(ProtocolError):
        parser.feed(b"* X (\r\n")
    with pytest.raises(ProtocolError):
        parser.feed(b"* 1 EXISTS\r\n")


# -- parser: framing and splits --------------------------------------------------------------

TRANSCRIPT = (
    b"* OK [CAPABILITY IMAP4rev1 LITERAL+] Dovecot ready.\r\n"
    b"* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] "
    + lit(b"Subject: hi\r\n\r\n")
    + b" FLAGS (\\Seen))\r\n"
    b"* 2 FETCH (BINARY[1] ~" + lit(b"\x00\r\n") + b" BODY[] " + lit(b"") + b")\r\n"
    b'* LIST (\\HasNoChildren) "/" "a \\"b\\""\r\n'
    b"+ go ahead\r\n"
    b"A1 OK [READ-WRITE] Select completed.\r\n"
)
TRANSCRIPT_RESPONSES = parse(TRANSCRIPT)


def feed_pieces(pieces: list[bytes], **limits: int) -> list[Response]:
    parser = ResponseParser(**limits)
    out: list[Response] = []
    for piece in pieces:
        out += parser.feed(piece)
    return out


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    return [stream[a:b] for a, b in itertools.pairwise([0, *sorted(cuts), len(stream)])]


def test_transcript_parses() -> None:
    assert len(TRANSCRIPT_RESPONSES) == 6
    assert TRANSCRIPT_RESPONSES[2] == data(
        "FETCH", [A("BINARY[1]"), b"\x00\r\n", A("BODY[]"), b""], number=2
    )


def test_every_single_split_gives_the_same_responses() -> None:
    for cut in range(len(TRANSCRIPT) + 1):
        assert feed_pieces([TRANSCRIPT[:cut], TRANSCRIPT[cut:]]) == TRANSCRIPT_RESPONSES, cut


def test_byte_by_byte_gives_the_same_responses() -> None:
    pieces = [TRANSCRIPT[i : i + 1] for i in range(len(TRANSCRIPT))]
    assert feed_pieces(pieces) == TRANSCRIPT_RESPONSES


@given(st.lists(st.integers(0, len(TRANSCRIPT)), max_size=12))
def test_any_split_gives_the_same_responses(cuts: list[int]) -> None:
    assert feed_pieces(split_at(TRANSCRIPT, cuts)) == TRANSCRIPT_RESPONSES


FRAGMENTS = [
    b"* ",
    b"1 ",
    b"FETCH ",
    b"OK ",
    b"A1 ",
    b"+ ",
    b"(",
    b")",
    b" ",
    b"NIL",
    b"\\Seen",
    b'"',
    b"\\",
    b"[",
    b"]",
    b"<0>",
    b"{3}\r\n",
    b"~{0}\r\n",
    b"{99999999999999999999999}\r\n",
    b"\r\n",
    b"\r",
]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=6), max_size=30).map(b"".join))
def test_arbitrary_bytes_raise_only_protocol_error(stream: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse(stream, max_line=64, max_literal=64)


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=6), max_size=30).map(b"".join),
    st.lists(st.integers(0, 200), max_size=4),
)
def test_junk_gives_the_same_outcome_for_any_split(stream: bytes, cuts: list[int]) -> None:
    def outcome(pieces: list[bytes]) -> list[Response] | None:
        try:
            return feed_pieces(pieces, max_line=64, max_literal=64)
        except ProtocolError:
            return None

    assert outcome([stream]) == outcome(split_at(stream, [c for c in cuts if c <= len(stream)]))


@given(st.binary())
def test_binary_raises_only_protocol_error(stream: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse(stream)


# Server-side serialisation of values, to check that what was sent is what is parsed.
_ATOM_TEXT = st.text(alphabet="abcXYZ019\\$.-:*%+/]", min_size=1, max_size=8).filter(
    lambda s: s.upper() != "NIL"
)
_SECTIONS = st.sampled_from(
    ["BODY[HEADER.FIELDS (DATE FROM)]", "BODY[]<0>", "BINARY[1.2]", "BODY.PEEK[TEXT]<0.100>"]
)
VALUES: st.SearchStrategy[Value] = st.recursive(
    st.one_of(_ATOM_TEXT.map(Atom), _SECTIONS.map(Atom), st.binary(max_size=20), st.none()),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


def serialise(value: Value) -> bytes:
    if isinstance(value, list):
        return b"(" + b" ".join(serialise(v) for v in value) + b")"
    if isinstance(value, Atom):
        return value.encode()
    if value is None:
        return b"NIL"
    if all(32 <= b < 127 for b in value):
        return quote(value)
    return lit(value)


@given(st.lists(VALUES, max_size=5), st.data())
def test_generated_values_round_trip(values: list[Value], draw: st.DataObject) -> None:
    stream = b"* X-TEST " + b" ".join(serialise(v) for v in values) + b"\r\n"
    cuts = draw.draw(st.lists(st.integers(0, len(stream)), max_size=4))
    assert feed_pieces(split_at(stream, cuts)) == [data("X-TEST", *values)]


class GeneralPathOnly(ResponseParser):
    def _fast_fetch(self, line: bytes) -> Untagged | None:
        return None


@given(st.lists(VALUES, max_size=4), st.integers(1, 10**6))
def test_fetch_fast_path_agrees_with_general_path(values: list[Value], number: int) -> None:
    stream = b"* %d FETCH " % number + serialise(values) + b"\r\n"
    assert ResponseParser().feed(stream) == GeneralPathOnly().feed(stream)


# -- parser: limits ----------------------------------------------------------------------------


def test_line_at_limit_is_accepted() -> None:
    line = b"* OK " + b"x" * 59
    assert parse(line + b"\r\n", max_line=64) == [status("OK", "x" * 59)]


def test_line_at_limit_with_crlf_split_across_feeds() -> None:
    parser = ResponseParser(max_line=64)
    assert parser.feed(b"* OK " + b"x" * 59 + b"\r") == []
    assert parser.feed(b"\n") == [status("OK", "x" * 59)]


def test_bytearray_input_gives_bytes_values() -> None:
    """Outside the annotation, but a caller's read buffer must not leak into the values."""
    stream = bytearray(b'* X "a" ' + lit(b"b") + b"\r\n")
    (response,) = ResponseParser().feed(stream)  # type: ignore[arg-type]
    assert isinstance(response, Untagged)
    assert [type(v) for v in response.values] == [bytes, bytes]


def test_long_line_rejected_in_one_feed() -> None:
    with pytest.raises(ProtocolError, match="too long"):
        parse(b"* OK " + b"x" * 60 + b"\r\n", max_line=64)


def test_long_line_rejected_before_it_is_buffered() -> None:
    parser = ResponseParser(max_line=64)
    parser.feed(b"* OK " + b"x" * 55)  # 60 bytes: fine so far
    with pytest.raises(ProtocolError, match="too long"):
        parser.feed(b"x" * 10)  # 70 bytes, still no CRLF: refused now, not at the CRLF


def test_response_text_around_literals_counts_towards_the_line_limit() -> None:
    stream = b"* 1 FETCH (A " + lit(b"x") + b" " + b"B " * 30 + b")\r\n"
    with pytest.raises(ProtocolError, match="too long"):
        parse(stream, max_line=64)


def test_literal_over_limit_rejected_on_its_announcement() -> None:
    parser = ResponseParser(max_literal=10)
    assert parser.feed(b"* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n") != []
    with pytest.raises(ProtocolError, match="literal too large"):
        ResponseParser(max_literal=10).feed(b"* 1 FETCH (BODY[] {11}\r\n")


def test_literals_of_one_response_share_the_limit() -> None:
    with pytest.raises(ProtocolError, match="literal too large"):
        parse(b"* 1 FETCH (A {6}\r\n123456 B {6}\r\n", max_literal=10)


def test_absurd_literal_size_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="literal too large"):
        parse(b"* 1 FETCH (A {" + b"9" * 5000 + b"}\r\n")


# -- parser: speed -----------------------------------------------------------------------------


def test_parses_100k_fetch_lines_quickly() -> None:
    """The parser's own cost. The test runner's heap is frozen first: with it, every full
    collection would also walk pytest's and hypothesis's objects (about +40% here), which
    says nothing about the parser. A long-running bridge can freeze its start-up heap alike."""
    stream = b"".join(
        b"* %d FETCH (UID %d FLAGS (\\Seen \\Answered))\r\n" % (i, i) for i in range(1, 100_001)
    )
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    timings = []
    gc.collect()
    gc.freeze()
    try:
        for _ in range(3):
            parser = ResponseParser()
            count = 0
            start = time.perf_counter()
            for chunk in chunks:
                count += len(parser.feed(chunk))
            timings.append(time.perf_counter() - start)
            assert count == 100_000
    finally:
        gc.unfreeze()
    print(
        f"\n100k FETCH lines: best {min(timings):.3f} s, runs {', '.join(f'{t:.3f}' for t in timings)}"
    )
    # About 0.4 s on an idle machine, 1.3 s with other test runs beside it; a quadratic parser
    # takes minutes. The bound catches that, not a busy machine.
    assert min(timings) < 3.0


# -- encoder -----------------------------------------------------------------------------------


def test_plain_command() -> None:
    assert encode_command("A1", "SELECT", ["INBOX"], literal_plus=False) == [b"A1 SELECT INBOX\r\n"]
    assert encode_command("A2", "NOOP", [], literal_plus=False) == [b"A2 NOOP\r\n"]


@pytest.mark.parametrize(
    ("arg", "wire"),
    [
        ("INBOX", b"INBOX"),
        ("Sent Items", b'"Sent Items"'),
        ("", b'""'),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        ("a*b", b'"a*b"'),
        ("(x)", b'"(x)"'),
        ("x]", b'"x]"'),
        (Atom("\\Seen"), b"\\Seen"),
        (Raw("(FLAGS UID)"), b"(FLAGS UID)"),
        (Raw("1:*,5"), b"1:*,5"),
        (b"plain", b'"plain"'),
        (b'q"b\\', b'"q\\"b\\\\"'),
        (42, b"42"),
        (0, b"0"),
        (None, b"NIL"),
        ([Atom("UID"), Atom("FLAGS")], b"(UID FLAGS)"),
        ([], b"()"),
        ([1, [None, "a b"]], b'(1 (NIL "a b"))'),
    ],
)
def test_argument_forms(arg: Arg, wire: bytes) -> None:
    assert encode_command("T", "X", [arg], literal_plus=False) == [b"T X " + wire + b"\r\n"]


def test_non_ascii_becomes_literal_and_splits_the_command() -> None:
    segments = encode_command("A1", "CREATE", ["Entwürfe", "x"], literal_plus=False)
    assert segments == [b"A1 CREATE {9}\r\n", "Entwürfe".encode() + b" x\r\n"]


def test_literal_plus_gives_one_segment() -> None:
    segments = encode_command(
        "A1", "APPEND", ["INBOX", Literal(b"abc"), b"x\r\ny"], literal_plus=True
    )
    assert segments == [b"A1 APPEND INBOX {3+}\r\nabc {4+}\r\nx\r\ny\r\n"]


def test_each_synchronising_literal_ends_a_segment() -> None:
    segments = encode_command("A1", "X", [Literal(b"a"), [Literal(b"bb")], "c"], literal_plus=False)
    assert segments == [b"A1 X {1}\r\n", b"a ({2}\r\n", b"bb) c\r\n"]
    assert all(s.endswith(b"\r\n") for s in segments)


@pytest.mark.parametrize(
    "evil", ["x\r\nA2 LOGOUT", "x\nA2 LOGOUT", "x\rA2", "nul\x00", "tab\there"]
)
def test_control_characters_in_strings_become_literals(evil: str) -> None:
    segments = encode_command("A1", "SELECT", [evil], literal_plus=False)
    payload = evil.encode()
    assert segments == [b"A1 SELECT {%d}\r\n" % len(payload), payload + b"\r\n"]


def test_crlf_in_bytes_becomes_literal() -> None:
    assert encode_command("A1", "X", [b"a\r\nb"], literal_plus=True) == [b"A1 X {4+}\r\na\r\nb\r\n"]


@pytest.mark.parametrize(
    "bad", [Atom("a\r\nb"), Atom("a\nb"), Atom("a\x00"), Raw("1:*\r\nA2 LOGOUT"), Atom("")]
)
def test_verbatim_args_refuse_line_breaks(bad: Arg) -> None:
    with pytest.raises(ValueError):
        encode_command("A1", "X", [bad], literal_plus=False)


@pytest.mark.parametrize("bad", [-1, True])
def test_bad_numbers_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        encode_command("A1", "X", [bad], literal_plus=False)


@pytest.mark.parametrize(
    ("tag", "name"),
    [("", "NOOP"), ("A+1", "NOOP"), ("A 1", "NOOP"), ("A1", ""), ("A1", "NOOP\r\n")],
)
def test_bad_tag_or_name_refused(tag: str, name: str) -> None:
    with pytest.raises(ValueError):
        encode_command(tag, name, [], literal_plus=False)


@given(st.lists(st.text(max_size=12), max_size=5), st.booleans())
def test_encoded_strings_parse_back_unchanged(args: list[str], literal_plus: bool) -> None:
    """Whatever a user's text holds, it arrives as exactly one argument each, no injection."""
    segments = encode_command("A1", "X-TEST", list(args), literal_plus=literal_plus)
    wire = b"".join(segments).replace(b"+}\r\n", b"}\r\n")  # the parser reads server syntax
    (response,) = parse(b"* " + wire.removeprefix(b"A1 "))
    assert isinstance(response, Untagged)
    decoded = [v.decode() if isinstance(v, bytes) else v for v in response.values]
    assert decoded == args


def test_quote() -> None:
    assert quote("a") == b'"a"'
    assert quote(b'"\\') == b'"\\"\\\\"'
    assert quote("ä") == '"ä"'.encode()
    for bad in ("a\r", "a\n", b"\x00"):
        with pytest.raises(ValueError):
            quote(bad)


# -- sequence sets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uids", "text"),
    [
        ([1], "1"),
        ([1, 2, 3, 4, 5, 7, 9, 10], "1:5,7,9:10"),
        ([10, 9, 7, 5, 4, 3, 2, 1, 1, 7], "1:5,7,9:10"),
        ([3, 5], "3,5"),
        (range(1, 100_001), "1:100000"),
    ],
)
def test_sequence_set(uids: list[int], text: str) -> None:
    assert sequence_set(uids) == text


@pytest.mark.parametrize("bad", [[], [0], [-3, 4]])
def test_sequence_set_refuses_what_imap_cannot_say(bad: list[int]) -> None:
    with pytest.raises(ValueError):
        sequence_set(bad)


@given(st.sets(st.integers(1, 200), min_size=1))
def test_sequence_set_round_trip(uids: set[int]) -> None:
    ranges = parse_sequence_set(sequence_set(uids))
    expanded = {n for low, high in ranges for n in range(low, (high or low) + 1)}
    assert expanded == uids


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("1", [(1, 1)]),
        ("1:5,7,9:10", [(1, 5), (7, 7), (9, 10)]),
        ("5:2", [(2, 5)]),
        ("9:*", [(9, None)]),
        ("*:9", [(9, None)]),
    ],
)
def test_parse_sequence_set(text: str, ranges: list[tuple[int, int | None]]) -> None:
    assert parse_sequence_set(text) == ranges


@pytest.mark.parametrize("bad", ["", "*", "*:*", "0", "1:", ":2", "1,,2", "a", "1:2:3", "١", " 1"])
def test_parse_sequence_set_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_sequence_set(bad)
