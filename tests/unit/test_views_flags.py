"""Flag names: the tables both ways, round trips, negative names, and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import BridgeError, ErrorKind
from bridge.views.flags import (
    NEGATIVE_NAMES,
    SYSTEM_ORDER,
    XIMSS_TO_IMAP,
    from_imap,
    parse_flag_filter,
    parse_mark,
    to_imap,
    ximss_flags,
)


@pytest.mark.parametrize(("name", "imap"), sorted(XIMSS_TO_IMAP.items()))
def test_table_round_trips(name: str, imap: str) -> None:
    assert to_imap(name) == imap
    assert from_imap(imap) == name
    assert to_imap(name.upper()) == imap  # names match case-insensitively, as IMAP flags do
    assert from_imap(imap.lower()) == name  # Thunderbird's "$label1"


@pytest.mark.parametrize(
    ("name", "imap"),
    [("Seen", "\\Seen"), ("Label3", "$Label3"), ("NotJunk", "$NotJunk"), ("Media", "$Media")],
)
def test_examples(name: str, imap: str) -> None:
    assert to_imap(name) == imap


def test_every_negative_name_names_a_flag_in_the_table() -> None:
    assert set(NEGATIVE_NAMES.values()) <= set(XIMSS_TO_IMAP)
    assert not set(NEGATIVE_NAMES) & set(XIMSS_TO_IMAP)


def test_unknown_names_are_keywords_both_ways() -> None:
    assert to_imap("Hidden") == "Hidden"
    assert to_imap("$Business") == "$Business"
    assert from_imap("$Business") == "$Business"
    assert from_imap("NonJunk") == "NonJunk"


@pytest.mark.parametrize("flag", ["\\*", "\\Important", "Seen", "unseen", "NotJunk", "a,b", "é"])
def test_flags_not_shown(flag: str) -> None:
    # \* is not a message flag; a keyword spelled like a XIMSS name would read back as another
    # flag; a comma would split the list.
    assert from_imap(flag) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a b",
        "(x",
        "x)",
        "{3}",
        "%",
        "*",
        'q"',
        "\\Seen",
        "\\Foo",
        "x]",
        "tab\t",
        "é",
        "a,b",
        "Unseen",
        "notmedia",
        "x" * 257,
    ],
)
def test_invalid_names_are_bad_requests(name: str) -> None:
    with pytest.raises(BridgeError) as caught:
        to_imap(name)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


IMAP_FLAGS = st.sampled_from(
    [*XIMSS_TO_IMAP.values(), "\\*", "$label2", "custom", "Work", "Seen", "\\seen", "a,b"]
)


@settings(max_examples=2000)
@given(st.lists(IMAP_FLAGS))
def test_ximss_flags_order_and_round_trip(imap_flags: list[str]) -> None:
    text = ximss_flags(imap_flags)
    names = text.split(",") if text else []
    assert len(names) == len(set(names))
    system = [n for n in names if n in SYSTEM_ORDER]
    assert system == sorted(system, key=SYSTEM_ORDER.index)
    assert names[: len(system)] == system
    assert names[len(system) :] == sorted(names[len(system) :], key=str.casefold)
    assert ximss_flags(reversed(imap_flags)) == text  # order-independent
    # Every shown name maps back to a flag the message has, and every showable flag is shown.
    present = {flag.casefold() for flag in imap_flags}
    assert all(to_imap(n).casefold() in present for n in names)
    assert {from_imap(f) for f in imap_flags} - {None} == set(names)


def test_ximss_flags_text() -> None:
    flags = ["$Media", "\\Flagged", "\\Seen", "Zeta", "$Label1", "\\Recent", "\\*", "alpha"]
    assert ximss_flags(flags) == "Seen,Flagged,Recent,alpha,Label1,Media,Zeta"
    assert ximss_flags([]) == ""


KEYWORDS = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='(){%*"\\],'),
    min_size=1,
    max_size=20,
)


@settings(max_examples=2000)
@given(KEYWORDS)
def test_keywords_round_trip(keyword: str) -> None:
    shown = from_imap(keyword)
    if shown is None:  # reserved: the keyword is spelled like a XIMSS name
        return
    assert to_imap(shown) == keyword
    assert from_imap(to_imap(shown)) == shown


def test_mark_sets_and_clears() -> None:
    assert parse_mark("Seen") == (["\\Seen"], [])
    assert parse_mark("Deleted,Unseen, Flagged ,NotLabel2") == (
        ["\\Deleted", "\\Flagged"],
        ["\\Seen", "$Label2"],
    )
    assert parse_mark("Seen,seen,SEEN") == (["\\Seen"], [])
    assert parse_mark("Undraft,Work") == (["Work"], ["\\Draft"])
    assert parse_mark("NotJunk") == (["$NotJunk"], [])


@pytest.mark.parametrize("flags", ["", " , ", "Recent", "NotRecent", "Seen,Unseen", "Bad Name"])
def test_mark_refuses(flags: str) -> None:
    with pytest.raises(BridgeError) as caught:
        parse_mark(flags)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_flag_filter() -> None:
    assert parse_flag_filter("Media,Unseen") == (["$Media"], ["\\Seen"])  # the spec's example
    assert parse_flag_filter("Recent") == (["\\Recent"], [])
    assert parse_flag_filter("NotRecent,Undeleted") == ([], ["\\Recent", "\\Deleted"])
    assert parse_flag_filter("") == ([], [])
    with pytest.raises(BridgeError):
        parse_flag_filter("a(b")
