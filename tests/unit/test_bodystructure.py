"""BODYSTRUCTURE into MimePart trees, without a network.

Transcripts are FETCH responses captured from Dovecot 2.3.19 (fed through our wire parser as
the client would), then RFC 2231 / RFC 2047 decoding case by case, then properties: generated
well-formed structures read back field for field, and anything at all, random or a mutated
transcript, gives a MimePart rather than an exception.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.imap.bodystructure import MAX_DEPTH, parse_bodystructure
from adapters.imap.wire import Atom, ResponseParser, Untagged, Value
from adapters.protocols import MimePart

A = Atom


def structure_of(stream: bytes) -> Value:
    """The BODYSTRUCTURE value of one captured ``* n FETCH`` response."""
    (response,) = ResponseParser().feed(stream)
    assert isinstance(response, Untagged) and response.kind == "FETCH"
    pairs = response.values[0]
    assert isinstance(pairs, list)
    index = [str(key).upper() for key in pairs[::2]].index("BODYSTRUCTURE")
    return pairs[2 * index + 1]


def walk(part: MimePart) -> Iterator[MimePart]:
    yield part
    for child in part.children:
        yield from walk(child)


def leaf(section: str, kind: str, subtype: str, **fields: object) -> MimePart:
    return MimePart(section, kind, subtype, **fields)  # type: ignore[arg-type]


ENVELOPE_B = (b'(NIL "inner" ((NIL NIL "b" "example.test")) ((NIL NIL "b" "example.test")) '
              b'((NIL NIL "b" "example.test")) NIL NIL NIL NIL NIL)')  # fmt: skip
ENVELOPE_C = ENVELOPE_B.replace(b'"inner"', b'"single"').replace(b'"b"', b'"c"')

# multipart/mixed > (multipart/alternative > text/plain + text/html), message/rfc822 > multipart,
# message/rfc822 > text/plain, an RFC 2231 continuation, RFC 2047 words, RFC 2231 Latin-1.
DOVECOT_NESTED = (
    b'* 1 FETCH (UID 1 BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 0 '
    b'NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 18 0 NIL NIL '
    b'NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)("message" "rfc822" NIL NIL NIL '
    b'"7bit" 268 ' + ENVELOPE_B + b' (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0 '
    b'NIL NIL NIL NIL)("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 12 NIL NIL NIL NIL) '
    b'"mixed" ("boundary" "enc") NIL NIL NIL) 15 NIL ("attachment" ("filename" "fwd.eml")) NIL '
    b'NIL)("message" "rfc822" NIL NIL NIL "7bit" 56 ' + ENVELOPE_C + b' ("text" "plain" '
    b'("charset" "us-ascii") NIL NIL "7bit" 15 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)'
    b'("application" "octet-stream" NIL "<id1@x>" "=?utf-8?q?caf=C3=A9?=" "base64" 4 NIL '
    b'("attachment" ("filename*" "utf-8\'\'%E2%82%AC%20long%20name%C3%A9.pdf")) ("en" "de") '
    b'"http://x.test/a")("image" "png" ("name" "=?UTF-8?B?w6lsw6k=?= =?UTF-8?B?LnBuZw==?=") NIL '
    b'NIL "base64" 8 NIL ("inline" ("filename*" "iso-8859-1\'fr\'%E9t%E9.png")) NIL NIL) '
    b'"mixed" ("boundary" "outer") NIL NIL NIL))\r\n'
)

# 8-bit header values arrive as literals, as they were in the header (UTF-8 here).
DOVECOT_EIGHT_BIT = (
    b'* 7 FETCH (UID 7 BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 5 0 '
    b'NIL NIL NIL NIL)("application" "pdf" ("name" {12}\r\nr\xc3\xa9sum\xc3\xa9.pdf) NIL NIL '
    b'"7bit" 2 NIL ("attachment" ("filename" {10}\r\nr\xe9sum\xe9.pdf)) NIL NIL) "mixed" '
    b'("boundary" "b") NIL NIL NIL))\r\n'
)

# Header case kept; a continuation with a gap passed on in pieces; both name and name*.
DOVECOT_PARAMS = (
    b'* 1 FETCH (UID 1 BODYSTRUCTURE (("Application" "X-Foo" ("NAME" "Up" "Charset" "UTF-8") '
    b'NIL NIL "BASE64" 1 NIL ("ATTACHMENT" ("FileName" "Z")) NIL NIL)("text" "plain" '
    b'("name*0*" "utf-8\'\'%E2%82%AC" "name*2" "gap" "charset" "us-ascii") NIL NIL '
    b'"7bit" 1 0 NIL NIL NIL NIL)("application" "x" ("name" "plain.pdf" "name*" '
    b'"utf-8\'\'ext%C3%A9.pdf") NIL NIL "7bit" 1 NIL NIL NIL NIL)("message" "global" NIL '
    b'NIL NIL "7bit" 28 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL))\r\n'
)

# A multipart without a boundary: Dovecot invents one empty text/plain part.
DOVECOT_NO_BOUNDARY = (
    b'* 4 FETCH (UID 4 BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 '
    b'NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL))\r\n'
)

# The whole message is a message/rfc822 enclosing a single-part message.
DOVECOT_RFC822_SINGLE = (
    b'* 9 FETCH (UID 9 BODYSTRUCTURE ("message" "rfc822" NIL NIL NIL "7bit" 30 (NIL NIL ((NIL NIL '
    b'"b" "example.test")) ((NIL NIL "b" "example.test")) ((NIL NIL "b" "example.test")) NIL NIL '
    b'NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL) 3 '
    b"NIL NIL NIL NIL))\r\n"
)

US_ASCII = {"charset": "us-ascii"}


def test_dovecot_nested_message() -> None:
    tree = parse_bodystructure(structure_of(DOVECOT_NESTED))
    assert tree == MimePart("", "multipart", "mixed", {"boundary": "outer"}, children=(
        MimePart("1", "multipart", "alternative", {"boundary": "inner"}, children=(
            leaf("1.1", "text", "plain", params={"charset": "utf-8"}, size=10, lines=0),
            leaf("1.2", "text", "html", params={"charset": "utf-8"}, size=18, lines=0,
                 encoding="quoted-printable"),
        )),
        leaf("2", "message", "rfc822", size=268, lines=15, disposition="attachment",
             disposition_params={"filename": "fwd.eml"}, children=(
            # The enclosed message's top-level multipart has the message's section.
            MimePart("2", "multipart", "mixed", {"boundary": "enc"}, children=(
                leaf("2.1", "text", "plain", params=US_ASCII, size=13, lines=0),
                leaf("2.2", "application", "pdf", params={"name": "a.pdf"}, size=12,
                     encoding="base64"),
            )),
        )),
        leaf("3", "message", "rfc822", size=56, lines=3, children=(
            # A single-part enclosed message: its body is part 1 of the message.
            leaf("3.1", "text", "plain", params=US_ASCII, size=15, lines=0),
        )),
        leaf("4", "application", "octet-stream", content_id="<id1@x>", description="café",
             encoding="base64", size=4, disposition="attachment",
             disposition_params={"filename": "€ long nameé.pdf"}, language=("en", "de"),
             location="http://x.test/a"),
        leaf("5", "image", "png", params={"name": "élé.png"}, encoding="base64", size=8,
             disposition="inline", disposition_params={"filename": "été.png"}),
    ))  # fmt: skip


def test_dovecot_eight_bit_literals() -> None:
    tree = parse_bodystructure(structure_of(DOVECOT_EIGHT_BIT))
    pdf = tree.children[1]
    assert pdf.params == {"name": "résumé.pdf"}  # UTF-8
    assert pdf.disposition_params == {"filename": "résumé.pdf"}  # not UTF-8: Latin-1
    assert tree.children[0].encoding == "8bit"


def test_dovecot_params_case_gaps_and_message_global() -> None:
    upper, gap, both, global_ = parse_bodystructure(structure_of(DOVECOT_PARAMS)).children
    assert (upper.type, upper.subtype, upper.encoding) == ("application", "x-foo", "base64")
    assert upper.params == {"name": "Up", "charset": "UTF-8"}  # names lower-cased, values kept
    assert (upper.disposition, upper.disposition_params) == ("attachment", {"filename": "Z"})
    assert gap.params == {"name": "€gap", "charset": "us-ascii"}
    assert both.params == {"name": "exté.pdf"}  # the RFC 2231 value wins
    assert global_ == leaf("4", "message", "global", size=28)  # a leaf in Dovecot 2.3


def test_dovecot_multipart_without_boundary() -> None:
    tree = parse_bodystructure(structure_of(DOVECOT_NO_BOUNDARY))
    assert tree == MimePart("", "multipart", "mixed", children=(
        leaf("1", "text", "plain", params=US_ASCII, size=0, lines=0),
    ))  # fmt: skip


def test_dovecot_message_rfc822_enclosing_a_single_part() -> None:
    tree = parse_bodystructure(structure_of(DOVECOT_RFC822_SINGLE))
    assert tree == leaf("1", "message", "rfc822", size=30, lines=3, children=(
        leaf("1.1", "text", "plain", params=US_ASCII, size=6, lines=1),
    ))  # fmt: skip


def test_rfc3501_example_in_the_short_body_form() -> None:
    """RFC 3501 section 7.4.2's example: upper case, no extension data."""
    value: Value = [
        [b"TEXT", b"PLAIN", [b"CHARSET", b"US-ASCII"], None, None, b"7BIT", A("1152"), A("23")],
        [b"TEXT", b"PLAIN", [b"CHARSET", b"US-ASCII", b"NAME", b"cc.diff"],
         b"<960723163407.20117h@cac.washington.edu>", b"Compiler diff", b"BASE64", A("4554"),
         A("73")],
        b"MIXED",
    ]  # fmt: skip
    assert parse_bodystructure(value) == MimePart("", "multipart", "mixed", children=(
        leaf("1", "text", "plain", params={"charset": "US-ASCII"}, size=1152, lines=23),
        leaf("2", "text", "plain", params={"charset": "US-ASCII", "name": "cc.diff"},
             content_id="<960723163407.20117h@cac.washington.edu>", description="Compiler diff",
             encoding="base64", size=4554, lines=73),
    ))  # fmt: skip


def test_a_multipart_inside_a_multipart_and_deeper_messages() -> None:
    text: Value = [b"text", b"plain", None, None, None, b"7bit", A("1"), A("1")]
    inner_message: Value = [b"message", b"rfc822", None, None, None, b"7bit", A("9"), None,
                            [copy.deepcopy(text), copy.deepcopy(text), b"mixed"], A("2")]  # fmt: skip
    value: Value = [copy.deepcopy(text), [copy.deepcopy(text), inner_message, b"related"], b"mixed"]
    sections = [(p.section, p.type) for p in walk(parse_bodystructure(value))]
    assert sections == [("", "multipart"), ("1", "text"), ("2", "multipart"), ("2.1", "text"),
                        ("2.2", "message"), ("2.2", "multipart"), ("2.2.1", "text"),
                        ("2.2.2", "text")]  # fmt: skip


# -- parameter values ------------------------------------------------------------------------


def params_of(*pairs: bytes) -> dict[str, str]:
    value: Value = [b"application", b"x", list(pairs), None, None, b"7bit", A("1")]
    return dict(parse_bodystructure(value).params)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((b"filename*", b"utf-8''%E2%82%AC.pdf"), {"filename": "€.pdf"}),
        ((b"FileName*", b"UTF-8'en'%E2%82%AC.pdf"), {"filename": "€.pdf"}),
        # A character split between encoded segments; segments in any order.
        ((b"name*1*", b"%AC.pdf", b"name*0*", b"utf-8''%E2%82"), {"name": "€.pdf"}),
        ((b"name*1", b"b", b"name*0", b"a"), {"name": "ab"}),
        ((b"name*0*", b"utf-8'en'%C3%A9", b"name*1", b" x%20"), {"name": "é x%20"}),
        ((b"name", b"plain", b"name*", b"utf-8''ext"), {"name": "ext"}),
        ((b"name*", b"utf-8''ext", b"name", b"plain"), {"name": "ext"}),
        ((b"name*", b"iso-8859-1'fr'%E9t%E9"), {"name": "été"}),
        ((b"name*", b"x-unknown''%E9t%E9"), {"name": "été"}),  # unknown charset, not UTF-8
        ((b"name*", b"x-unknown''%C3%A9"), {"name": "é"}),  # unknown charset, UTF-8
        ((b"name*", b"''foo%20bar"), {"name": "foo bar"}),
        ((b"name*", b"foo%20bar"), {"name": "foo bar"}),  # no charset field at all
        ((b"name*", b"utf-8''bad%ZZ%C3"), {"name": "bad%ZZ\ufffd"}),
        ((b"name*", b"base64''%41"), {"name": "A"}),  # a bytes codec is no charset
        ((b"name*", b"idna''%41"), {"name": "A"}),
        ((b"name*0", b"a", b"name*0", b"b"), {"name": "a"}),
        ((b"name*99999", b"x"), {"name*99999": "x"}),  # no continuation number
        ((b"name", b"=?UTF-8?B?w6lsw6k=?= =?UTF-8?B?LnBuZw==?="), {"name": "élé.png"}),
        ((b"boundary", b"=?utf-8?q?x?="), {"boundary": "=?utf-8?q?x?="}),
        ((b"name", b"r\xe9sum\xe9.pdf"), {"name": "résumé.pdf"}),
        ((b"name", b"a", b"odd"), {"name": "a"}),
        ((None, b"a", A("X"), None, [b"x"], b"y", b"  ", b"z"), {}),
    ],
)
def test_parameter_values(pairs: tuple[bytes, ...], expected: dict[str, str]) -> None:
    assert params_of(*pairs) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"),  # one character in two words
        ("=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "éé"),
        ("a =?utf-8?q?b?= c", "a b c"),
        ("=?utf-8?q?a_b?=", "a b"),
        ("=?utf-8*en?q?a?=", "a"),  # RFC 2231 language in a word
        ("=?x-unknown?q?=E9?=", "é"),
        ("=?utf-8?b?a?= x", "=?utf-8?b?a?= x"),  # malformed base64 stays
        ("=?utf-8?b?a?= =?utf-8?q?b?=", "=?utf-8?b?a?= b"),
        ("=?utf-8?x?a?=", "=?utf-8?x?a?="),
        ("=?utf-8?b?w6k?=", "é"),  # padding missing
        ("no words =? here", "no words =? here"),
    ],
)
def test_encoded_words_in_descriptions(text: str, expected: str) -> None:
    value: Value = [b"text", b"plain", None, None, text.encode(), b"7bit", A("1"), A("0")]
    assert parse_bodystructure(value).description == expected


# -- broken input ----------------------------------------------------------------------------

OCTETS = MimePart("1", "application", "octet-stream")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, OCTETS),
        (b"garbage", OCTETS),
        (A("TEXT"), OCTETS),
        ([], OCTETS),
        ([None, b"plain"], OCTETS),
        ([b"text"], leaf("1", "text", "plain")),
        ([b"image", None], OCTETS),
        ([[]], MimePart("", "multipart", "mixed", children=(OCTETS,))),
        (
            [b"TEXT", b"PLAIN", b"not a list", None, None, None, A("-5"), A("x")],
            leaf("1", "text", "plain"),
        ),
        (
            [b"text", b"plain", None, None, None, b"7bit", A("9" * 30), A("1")],
            leaf("1", "text", "plain", lines=1),
        ),
        (
            [b"a", b"b", None, None, None, None, A("1"), None, b"Inline", [b"en", None, 3]],
            leaf("1", "a", "b", size=1, disposition="inline", language=("en",)),
        ),
        (
            [[b"text", b"plain"], A("Related"), [b"type", b"text/html"], [None, [b"a", b"b"]],
             b"en", [b"not", b"a location"]],
            MimePart("", "multipart", "related", {"type": "text/html"},
                     children=(leaf("1", "text", "plain"),), language=("en",)),
        ),
        # message/rfc822 whose body field is no body: read as a basic part.
        (
            [b"message", b"rfc822", None, None, None, b"7bit", A("5"), None, [b"attachment", None]],
            leaf("1", "message", "rfc822", size=5, disposition="attachment"),
        ),
    ],
)  # fmt: skip
def test_malformed_structures_give_best_effort_parts(value: Value, expected: MimePart) -> None:
    assert parse_bodystructure(value) == expected


def test_nesting_deeper_than_the_limit_is_cut_without_recursion_errors() -> None:
    deep: Value = [b"text", b"plain", None, None, None, b"7bit", A("1"), A("0")]
    for _ in range(5000):
        deep = [deep, b"mixed"]
    tree = parse_bodystructure(deep)
    assert max(part.section.count(".") for part in walk(tree)) == MAX_DEPTH - 1
    nested_lists: Value = []
    for _ in range(100_000):
        nested_lists = [nested_lists]
    assert parse_bodystructure(nested_lists).type == "multipart"


def test_enclosed_messages_deeper_than_the_limit_are_cut() -> None:
    body: Value = [b"text", b"plain", None, None, None, b"7bit", A("1"), A("0")]
    for _ in range(3000):
        body = [b"message", b"rfc822", None, None, None, b"7bit", A("1"), None, body, A("1")]
    tree = parse_bodystructure(body, max_depth=10)
    assert len(list(walk(tree))) == 11
    assert all(part.type == "message" for part in walk(tree))


def test_parts_beyond_the_limit_are_dropped() -> None:
    text: Value = [b"text", b"plain", None, None, None, b"7bit", A("1"), A("0")]
    value: Value = [copy.deepcopy(text) for _ in range(50)] + [b"mixed"]
    assert len(parse_bodystructure(value, max_parts=7).children) == 7
    assert len(parse_bodystructure(value).children) == 50


# -- properties -------------------------------------------------------------------------------

TOKENS = st.from_regex(r"[a-z][a-z0-9.+-]{0,8}", fullmatch=True)
TEXTS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8).filter(
    lambda text: "=?" not in text
)
PARAMS = st.dictionaries(TOKENS, TEXTS, max_size=2)
COUNTS = st.integers(0, 10**12)


def _join(section: str, number: int) -> str:
    return f"{section}.{number}" if section else str(number)


@st.composite
def disposition_fields(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.none() | TOKENS)
    return {
        "disposition": kind,
        "disposition_params": draw(PARAMS) if kind else {},
        "language": tuple(draw(st.lists(TEXTS.filter(bool), max_size=2))),
        "location": draw(st.none() | TEXTS),
    }


@st.composite
def multiparts(draw: st.DrawFn, section: str, depth: int) -> MimePart:
    count = draw(st.integers(1, 2))
    children = tuple(draw(parts(_join(section, n), depth + 1)) for n in range(1, count + 1))
    return MimePart(section, "multipart", draw(TOKENS), draw(PARAMS), children=children,
                    **draw(disposition_fields()))  # type: ignore[arg-type]  # fmt: skip


@st.composite
def messages(draw: st.DrawFn, section: str, depth: int) -> MimePart:
    """A message's top-level part, numbered as RFC 3501 section 6.4.5 says."""
    if depth < 3 and draw(st.booleans()):
        return draw(multiparts(section, depth))
    return draw(single_parts(_join(section, 1), depth))


@st.composite
def parts(draw: st.DrawFn, section: str, depth: int) -> MimePart:
    """A part of a multipart."""
    if depth < 3 and draw(st.booleans()):
        return draw(multiparts(section, depth))
    return draw(single_parts(section, depth))


@st.composite
def single_parts(draw: st.DrawFn, section: str, depth: int) -> MimePart:
    fields: dict[str, object] = {
        "params": draw(PARAMS),
        "content_id": draw(st.none() | TEXTS),
        "description": draw(st.none() | TEXTS),
        "encoding": draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable"])),
        "size": draw(COUNTS),
        **draw(disposition_fields()),
    }
    choice = draw(st.sampled_from(["message", "text", "other"]))
    if choice == "message" and depth < 3:
        child = draw(messages(section, depth + 1))
        return MimePart(section, "message", "rfc822", lines=draw(COUNTS), children=(child,),
                        **fields)  # type: ignore[arg-type]  # fmt: skip
    if choice == "text":
        return MimePart(section, "text", draw(TOKENS), lines=draw(COUNTS), **fields)  # type: ignore[arg-type]
    kind = draw(TOKENS.filter(lambda kind: kind not in ("text", "message", "multipart")))
    return MimePart(section, kind, draw(TOKENS), **fields)  # type: ignore[arg-type]


def _string(text: str | None) -> Value:
    return None if text is None else text.encode()


def _param_list(params: Mapping[str, str]) -> Value:
    """As a server sends them: names in any case, NIL for none."""
    return [item for name, value in params.items() for item in (name.upper().encode(),
            value.encode())] or None  # fmt: skip


def encode(part: MimePart) -> Value:
    """The BODYSTRUCTURE a server would send for `part` (in upper case where MIME allows)."""
    disposition: Value = None
    if part.disposition is not None:
        disposition = [part.disposition.upper().encode(), _param_list(part.disposition_params)]
    language: Value = [tag.encode() for tag in part.language] or None
    if len(part.language) == 1:
        language = part.language[0].encode()  # the single-string form
    extension = [disposition, language, _string(part.location)]
    if part.type == "multipart":
        return [*map(encode, part.children), part.subtype.upper().encode(),
                _param_list(part.params), *extension]  # fmt: skip
    fields: list[Value] = [
        part.type.upper().encode(), part.subtype.upper().encode(), _param_list(part.params),
        _string(part.content_id), _string(part.description), part.encoding.upper().encode(),
        A(str(part.size)),
    ]  # fmt: skip
    if part.type == "text":
        fields.append(A(str(part.lines)))
    elif part.type == "message":
        envelope: Value = [None] * 10
        fields += [envelope, encode(part.children[0]), A(str(part.lines))]
    return [*fields, None, *extension]


@given(messages("", 0))
# Each example is a tree of up to 15 parts: slow to draw on a busy machine.
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_well_formed_structures_read_back_field_for_field(tree: MimePart) -> None:
    assert parse_bodystructure(encode(tree)) == tree


INTERESTING: list[Value] = [
    b"text", b"TEXT", b"plain", b"message", b"rfc822", b"global", b"multipart", b"mixed",
    A("12"), A("0"), b"name*", b"name*0*", b"name*1", b"filename", b"utf-8''%E2%82",
    b"idna'x'%41", b"base64''%41", b"=?utf-8?b?w6k=?=", b"=?x?q?=E9?= =?x?q?=E9?=", b"\xff",
    A("NIL"), b"", A(""),
]  # fmt: skip
ANYTHING: st.SearchStrategy[object] = st.recursive(
    st.none()
    | st.binary(max_size=12)
    | st.text(max_size=8).map(Atom)
    | st.integers(-(2**70), 2**70)
    | st.sampled_from(INTERESTING),
    lambda children: st.lists(children, max_size=12),
    max_leaves=80,
)


def check_part(part: MimePart, section: str | None = None) -> None:
    """What every result must be, whatever came in."""
    assert isinstance(part, MimePart)
    assert part.type and part.subtype and part.encoding
    assert isinstance(part.size, int) and part.size >= 0
    assert part.lines is None or part.lines >= 0
    for params in (part.params, part.disposition_params):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert all(isinstance(tag, str) for tag in part.language)
    for optional in (part.content_id, part.description, part.disposition, part.location):
        assert optional is None or isinstance(optional, str)
    if section is not None:
        assert part.section == section
    for number, child in enumerate(part.children, 1):
        if part.type == "multipart":
            check_part(child, _join(part.section, number))
        else:
            assert part.type == "message" and len(part.children) == 1
            expected = part.section if child.type == "multipart" else f"{part.section}.1"
            check_part(child, expected)


@given(ANYTHING)
@settings(max_examples=200, deadline=None)
def test_anything_gives_a_part(value: object) -> None:
    check_part(parse_bodystructure(cast(Value, value)))


def _positions(value: Value, path: tuple[int, ...] = ()) -> Iterator[tuple[int, ...]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from _positions(item, (*path, index))


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_mutated_dovecot_transcripts_give_parts(data: st.DataObject) -> None:
    transcript = data.draw(st.sampled_from([DOVECOT_NESTED, DOVECOT_PARAMS, DOVECOT_EIGHT_BIT]))
    value = structure_of(transcript)
    positions = list(_positions(value))
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(positions))
        target = value  # earlier mutations may have cut the path short
        for index in path[:-1]:
            target = target[index] if isinstance(target, list) and index < len(target) else None
        if isinstance(target, list) and path[-1] < len(target):
            if data.draw(st.booleans()):
                target[path[-1]] = cast(Value, data.draw(ANYTHING))
            else:
                del target[path[-1] :]
    check_part(parse_bodystructure(value))


PARAM_NAMES = st.sampled_from(
    [b"name", b"name*", b"name*0", b"name*0*", b"name*1*", b"name*2", b"NAME*00*", b"n*x*",
     b"name*99999", b"*", b"**", b"boundary", b"filename*"]
)  # fmt: skip
PARAM_VALUES = st.lists(
    st.sampled_from(["%", "%E2", "%82%AC", "'", "''", "utf-8", "idna", "rot13", "utf-16",
                     "undefined", "x" * 50, "=?", "?=", "=?utf-8?b?", "?q?", "_", "=E9", "\x00",
                     "€", "a", " "]),
    max_size=8,
).map("".join)  # fmt: skip


@given(st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=8))
def test_any_parameters_decode_to_strings(pairs: list[tuple[bytes, str]]) -> None:
    flat = [item for name, value in pairs for item in (name, value.encode())]
    params = params_of(*flat)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
