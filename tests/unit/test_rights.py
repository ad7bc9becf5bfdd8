"""The rights table both ways, the update arithmetic of the spec's ACL example, and patterns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.errors import BridgeError, ErrorKind
from bridge.views import rights as r
from bridge.views.rights import AclMode, ImapAclEdit

ACCOUNT = "owner@example.test"
XIMSS_SETS = st.frozensets(st.sampled_from(r.CANONICAL_ORDER))


@pytest.mark.parametrize(
    ("ximss", "imap"),
    [
        ("l", "l"),
        ("r", "r"),
        ("s", "s"),
        ("w", "w"),
        ("i", "i"),
        ("p", "p"),
        ("a", "a"),
        ("c", "k"),
        ("d", "te"),
        ("x", "x"),
        ("lrswdipcxa", "lrswipkxtea"),
    ],
)
def test_table_both_ways(ximss: str, imap: str) -> None:
    assert r.to_imap(r.parse_rights(ximss)) == imap
    assert r.format_rights(r.from_imap(imap)) == ximss


def test_dovecot_owner_rights_with_legacy_letters() -> None:
    # What Dovecot 2.3 lists for a mailbox's owner: the new letters plus legacy c and d.
    assert r.format_rights(r.from_imap("lrwstipekxacd")) == "lrswdipcxa"


def test_d_needs_both_t_and_e() -> None:
    assert r.from_imap("lrt") == frozenset("lr")
    assert r.from_imap("lre") == frozenset("lr")
    assert r.from_imap("lret") == frozenset("lrd")
    # A legacy server's lone d still means delete.
    assert r.from_imap("lrd") == frozenset("lrd")


def test_unknown_imap_letters_are_not_shown() -> None:
    assert r.format_rights(r.from_imap("lr0z9")) == "lr"


def test_canonical_order_is_stable() -> None:
    assert r.format_rights("idrl") == "lrdi"
    assert r.format_rights("axcpiwdsrl") == "lrswdipcxa"
    assert r.format_rights("") == ""


def test_unknown_letter_is_refused_by_name() -> None:
    with pytest.raises(BridgeError) as raised:
        r.parse_rights("lrq")
    assert raised.value.kind is ErrorKind.BAD_REQUEST
    assert raised.value.wire().text == "unknown access right 'q'"
    with pytest.raises(BridgeError):
        r.parse_rights("k")  # an IMAP letter is not a XIMSS one


def test_spec_example_arithmetic() -> None:
    """replace user1=lr, user2=lr; add user1 di; sub user2 r -> user1 lrdi, user2 l."""
    acl: dict[str, frozenset[str]] = {}
    imap: dict[str, set[str]] = {}
    steps = [
        ("user1", None, "lr"),
        ("user2", None, "lr"),
        ("user1", "add", "di"),
        ("user2", "sub", "r"),
    ]
    sent = []
    for pattern, mode_text, letters in steps:
        mode = AclMode.parse(mode_text)
        rights = r.parse_rights(letters)
        acl[pattern] = r.apply_edit(acl.get(pattern, frozenset()), mode, rights)
        edit = r.imap_edit(mode, rights)
        assert edit is not None and not edit.delete
        sent.append(edit.rights)
        # What an RFC 4314 server does with the SETACL rights string.
        letters_only = set(edit.rights.lstrip("+-"))
        if edit.rights.startswith("+"):
            imap.setdefault(pattern, set()).update(letters_only)
        elif edit.rights.startswith("-"):
            imap.setdefault(pattern, set()).difference_update(letters_only)
        else:
            imap[pattern] = letters_only
    assert sent == ["lr", "lr", "+ite", "-r"]
    assert {p: r.format_rights(v) for p, v in acl.items()} == {"user1": "lrdi", "user2": "l"}
    shown = {p: r.format_rights(r.from_imap("".join(v))) for p, v in imap.items()}
    assert shown == {"user1": "lrdi", "user2": "l"}


def test_modes() -> None:
    lr = frozenset("lr")
    assert AclMode.parse("add") is AclMode.ADD
    assert AclMode.parse("sub") is AclMode.SUB
    assert AclMode.parse("clear") is AclMode.CLEAR
    for other in (None, "", "replace", "ADD", "set"):
        assert AclMode.parse(other) is AclMode.REPLACE
    assert r.imap_edit(AclMode.CLEAR, lr) == ImapAclEdit(delete=True)
    assert r.imap_edit(AclMode.REPLACE, frozenset()) == ImapAclEdit(delete=True)
    assert r.imap_edit(AclMode.ADD, frozenset()) is None
    assert r.imap_edit(AclMode.SUB, frozenset()) is None
    assert r.imap_edit(AclMode.SUB, frozenset("d")) == ImapAclEdit(False, "-te")
    assert r.imap_edit(AclMode.REPLACE, frozenset("lrc")) == ImapAclEdit(False, "lrk")


@pytest.mark.parametrize(
    ("pattern", "identifier"),
    [
        ("user1", "user1@example.test"),
        ("+user1", "user1@example.test"),
        ("-user1", "-user1@example.test"),
        ("user1@other.test", "user1@other.test"),
        ("-user1@other.test", "-user1@other.test"),
        ("anyone", "anyone"),
        ("Anyone", "anyone"),
        ("authenticated", "authenticated"),
        ("-anyone", "-anyone"),
        ("$team", "$team"),
    ],
)
def test_pattern_to_identifier(pattern: str, identifier: str) -> None:
    assert r.to_identifier(pattern, ACCOUNT) == identifier


@pytest.mark.parametrize(
    ("identifier", "pattern"),
    [
        ("user1@example.test", "user1"),
        ("user1@EXAMPLE.test", "user1"),
        ("-user1@example.test", "-user1"),
        ("user1@other.test", "user1@other.test"),
        ("anyone", "anyone"),
        ("-authenticated", "-authenticated"),
        ("owner@example.test", "owner"),
    ],
)
def test_identifier_to_pattern(identifier: str, pattern: str) -> None:
    assert r.from_identifier(identifier, ACCOUNT) == pattern


@pytest.mark.parametrize("pattern", ["", "+", "-", "a b", "x" * 300, "-\t"])
def test_bad_patterns(pattern: str) -> None:
    with pytest.raises(BridgeError) as raised:
        r.to_identifier(pattern, ACCOUNT)
    assert raised.value.kind is ErrorKind.BAD_REQUEST


@given(XIMSS_SETS)
def test_round_trip_through_imap(rights: frozenset[str]) -> None:
    assert r.from_imap(r.to_imap(rights)) == rights
    shown = r.format_rights(rights)
    assert r.parse_rights(shown) == rights
    assert r.format_rights(r.parse_rights(shown)) == shown


@given(XIMSS_SETS, XIMSS_SETS, st.sampled_from(list(AclMode)))
def test_edit_matches_server_arithmetic(
    current: frozenset[str], change: frozenset[str], mode: AclMode
) -> None:
    """What the server holds after our IMAP edit shows the same rights as apply_edit predicts."""
    held = set(r.to_imap(current))
    edit = r.imap_edit(mode, change)
    if edit is not None:
        if edit.delete:
            held = set()
        elif edit.rights.startswith("+"):
            held |= set(edit.rights[1:])
        elif edit.rights.startswith("-"):
            held -= set(edit.rights[1:])
        else:
            held = set(edit.rights)
    assert r.from_imap("".join(held)) == r.apply_edit(current, mode, change)


@given(st.text(min_size=1, max_size=20).filter(lambda t: t.strip() == t and " " not in t))
def test_patterns_round_trip(name: str) -> None:
    try:
        identifier = r.to_identifier(name, ACCOUNT)
    except BridgeError as exc:
        assert exc.kind is ErrorKind.BAD_REQUEST
        return
    again = r.from_identifier(identifier, ACCOUNT)
    assert r.to_identifier(again, ACCOUNT) == identifier
