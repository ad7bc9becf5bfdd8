"""Message sets: the two kinds never mix, ranges normalize, and resolving follows the view."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from bridge.errors import BridgeError, ErrorKind
from bridge.views.messageset import (
    MAX_MESSAGE_SET_ELEMENTS,
    MessageSet,
    parse_message_set,
    resolve,
    resolve_indexes,
)


def parse(body: str) -> MessageSet:
    return parse_message_set(etree.fromstring(f'<messageMark id="1">{body}</messageMark>'))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<UID>12377</UID>", MessageSet(True, ((12377, 12377),))),
        ("<UID> 7 </UID>", MessageSet(True, ((7, 7),))),
        ('<UID from="12377" till="12455"/>', MessageSet(True, ((12377, 12455),))),
        (
            "<UID>512</UID><UID>123</UID><UID>976</UID>",
            MessageSet(True, ((123, 123), (512, 512), (976, 976))),
        ),
        ("<index>14</index>", MessageSet(False, ((14, 14),))),
        ('<index from="12" till="10000"/>', MessageSet(False, ((12, 10000),))),
        ('<index from="0" till="0"/>', MessageSet(False, ((0, 0),))),
        # overlapping and adjacent ranges merge; order in the request does not matter
        (
            '<index>5</index><index from="0" till="3"/><index>4</index>',
            MessageSet(False, ((0, 5),)),
        ),
        (
            '<UID from="1" till="10"/><UID from="3" till="4"/><UID>12</UID>',
            MessageSet(True, ((1, 10), (12, 12))),
        ),
        ('<UID from="0" till="4294967295"/>', MessageSet(True, ((0, 4294967295),))),
        ("<!-- note --><UID>1</UID>", MessageSet(True, ((1, 1),))),
    ],
)
def test_parses(body: str, expected: MessageSet) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",  # empty set
        "<UID>1</UID><index>2</index>",  # mixed
        "<index>2</index><UID>1</UID>",
        "<UID></UID>",
        "<UID>-1</UID>",
        "<UID>+1</UID>",
        "<UID>1_000</UID>",
        "<UID>٣</UID>",  # a digit to int(), not to us
        "<UID>1.5</UID>",
        "<UID>4294967296</UID>",
        "<UID>99999999999</UID>",
        '<UID from="5" till="4"/>',
        '<UID from="5"/>',
        '<index till="5"/>',
        '<index from="-1" till="5"/>',
        '<index from="a" till="5"/>',
        '<UID from="1" till="2">3</UID>',
        "<field>Subject</field>",
        "<uid>1</uid>",  # element names are case-sensitive
    ],
)
def test_refuses(body: str) -> None:
    with pytest.raises(BridgeError) as caught:
        parse(body)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_element_limit() -> None:
    parse("<UID>1</UID>" * MAX_MESSAGE_SET_ELEMENTS)
    with pytest.raises(BridgeError, match="at most"):
        parse("<UID>1</UID>" * (MAX_MESSAGE_SET_ELEMENTS + 1))
    with pytest.raises(BridgeError, match="at most"):
        parse_message_set(etree.fromstring("<m><index>1</index><index>2</index></m>"), 1)


VIEW = [40, 10, 30, 20, 50]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<index>0</index>", [40]),
        ('<index from="1" till="3"/>', [10, 30, 20]),
        ("<index>4</index><index>2</index>", [30, 50]),  # view order
        ('<index from="3" till="100"/>', [20, 50]),  # past the end: ignored
        ("<index>5</index>", []),
        ("<UID>30</UID><UID>10</UID>", [10, 30]),  # ascending UID order
        ("<UID>31</UID>", []),  # not in the view
        ('<UID from="15" till="45"/>', [20, 30, 40]),
        ('<UID from="0" till="4294967295"/>', [10, 20, 30, 40, 50]),
    ],
)
def test_resolves(body: str, expected: list[int]) -> None:
    assert resolve(parse(body), VIEW) == expected


def test_resolve_indexes_clips_to_the_view() -> None:
    ms = parse('<index from="2" till="9"/><index>0</index><index>20</index>')
    assert resolve_indexes(ms, 5) == [0, 2, 3, 4]
    assert resolve_indexes(ms, 0) == []
    with pytest.raises(ValueError):
        resolve_indexes(parse("<UID>1</UID>"), 5)


RANGES = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 8)).map(lambda t: (t[0], t[0] + t[1])),
    min_size=1,
    max_size=6,
)


def body_of(by_uid: bool, ranges: list[tuple[int, int]]) -> str:
    tag = "UID" if by_uid else "index"
    return "".join(
        f"<{tag}>{low}</{tag}>" if low == high else f'<{tag} from="{low}" till="{high}"/>'
        for low, high in ranges
    )


@settings(max_examples=1000)
@given(st.booleans(), RANGES, st.lists(st.integers(1, 70), unique=True, max_size=40))
def test_resolve_matches_a_naive_reading(
    by_uid: bool, ranges: list[tuple[int, int]], view: list[int]
) -> None:
    ms = parse(body_of(by_uid, ranges))
    lows = [low for low, _ in ms.ranges]
    assert lows == sorted(lows)
    assert all(a[1] + 1 < b[0] for a, b in zip(ms.ranges, ms.ranges[1:], strict=False))

    def wanted(n: int) -> bool:
        return any(low <= n <= high for low, high in ranges)

    if by_uid:
        assert resolve(ms, view) == sorted(uid for uid in view if wanted(uid))
    else:
        assert resolve(ms, view) == [uid for i, uid in enumerate(view) if wanted(i)]
