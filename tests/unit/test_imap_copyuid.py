"""COPYUID (RFC 4315 UIDPLUS) read from COPY and MOVE results (adapters/imap/mailbox.copied_to),
from server lines parsed by the project's own response parser."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.imap.client import Result
from adapters.imap.mailbox import copied_to
from adapters.imap.wire import ResponseParser, Tagged, Untagged
from adapters.protocols import Located


def result(*lines: bytes) -> Result:
    """The lines a command got: untagged ones, then its tagged completion."""
    responses = ResponseParser().feed(b"".join(line + b"\r\n" for line in lines))
    *untagged, tagged = responses
    assert isinstance(tagged, Tagged)
    assert all(isinstance(item, Untagged) for item in untagged)
    return Result(tagged, [item for item in untagged if isinstance(item, Untagged)])


def test_copy_tagged_copyuid() -> None:
    # RFC 4315's own example.
    got = copied_to(result(b"A003 OK [COPYUID 38505 304,319:320 3956:3958] Done"))
    assert got == {304: Located(38505, 3956), 319: Located(38505, 3957), 320: Located(38505, 3958)}


def test_move_untagged_copyuid_before_the_expunges() -> None:
    # RFC 6851 3.3's example.
    got = copied_to(
        result(
            b"* OK [COPYUID 432432 42:43 11:12] Moved UIDs.",
            b"* 2 EXPUNGE",
            b"* 1 EXPUNGE",
            b"a OK Move completed.",
        )
    )
    assert got == {42: Located(432432, 11), 43: Located(432432, 12)}


def test_move_with_copyuid_in_the_tagged_response() -> None:
    """Some servers (Gmail) keep UIDPLUS's tagged COPYUID for MOVE too."""
    got = copied_to(result(b"* 5 EXPUNGE", b"a OK [COPYUID 9 7 70] (Success)"))
    assert got == {7: Located(9, 70)}


def test_other_untagged_oks_are_passed_over() -> None:
    got = copied_to(
        result(
            b"* OK [HIGHESTMODSEQ 1234] x",
            b"* OK no code here",
            b"* OK [COPYUID 5 1,3,5 100:102] Moved",
            b"a OK [READ-WRITE] done",
        )
    )
    assert got == {1: Located(5, 100), 3: Located(5, 101), 5: Located(5, 102)}


@pytest.mark.parametrize(
    "lines",
    [
        [b"a OK Copy completed."],  # no UIDPLUS
        [b"a OK [READ-WRITE] Copy completed."],
        [b"a NO [TRYCREATE] Mailbox doesn't exist"],
        [b"a OK [COPYUID 5 1:3 10:11] mismatched"],
        [b"a OK [COPYUID 5 1:2] too few"],
        [b"a OK [COPYUID x 1 2] not a number"],
        [b"a OK [COPYUID 5 1,x 2:3] not a set"],
        [b"a OK [COPYUID 5 1 ()] a list"],
        [b"* OK [COPYUID 5 1:3 7] mismatched", b"a OK done"],
    ],
)
def test_no_usable_copyuid_gives_nothing(lines: list[bytes]) -> None:
    assert copied_to(result(*lines)) == {}


def test_ranges_may_be_written_high_to_low() -> None:
    # RFC 4315: "2:4 and 4:2 are equivalent".
    got = copied_to(result(b"a OK [COPYUID 7 4:2 12:10] Done"))
    assert got == {2: Located(7, 10), 3: Located(7, 11), 4: Located(7, 12)}


def test_built_by_hand() -> None:
    from adapters.imap.wire import Atom, ResponseCode

    code = ResponseCode("COPYUID", [Atom("77"), Atom("8"), Atom("9")])
    moved = Result(Tagged("a", "OK", None, "done"), [Untagged("OK", None, code, "Moved", [])])
    assert copied_to(moved) == {8: Located(77, 9)}
    # An untagged NO carrying the code is not a success report.
    refused = Result(Tagged("a", "OK", None, "done"), [Untagged("NO", None, code, "x", [])])
    assert copied_to(refused) == {}


def _uid_set(uids: list[int]) -> bytes:
    """The compact set a server writes: runs as ranges."""
    pieces: list[str] = []
    start = prev = uids[0]
    for uid in [*uids[1:], None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        pieces.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(pieces).encode()


@given(
    sources=st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=40, unique=True).map(sorted),
    first_target=st.integers(1, 2**31),
    uidvalidity=st.integers(1, 2**32 - 1),
)
def test_any_copyuid_round_trips(sources: list[int], first_target: int, uidvalidity: int) -> None:
    targets = list(range(first_target, first_target + len(sources)))
    line = b"a OK [COPYUID %d %s %s] Done" % (uidvalidity, _uid_set(sources), _uid_set(targets))
    expected = {src: Located(uidvalidity, dst) for src, dst in zip(sources, targets, strict=True)}
    assert copied_to(result(line)) == expected
    untagged = result(line.replace(b"a OK", b"* OK", 1), b"a OK Move completed.")
    assert copied_to(untagged) == expected


def test_a_range_larger_than_what_was_asked_is_not_expanded() -> None:
    """A server's `1:4294967295` would otherwise be four billion UIDs in memory."""
    huge = result(b"A1 OK [COPYUID 38505 1:4294967295 1:4294967295] Done")
    started = time.perf_counter()
    assert copied_to(huge, 3) == {}
    assert time.perf_counter() - started < 1.0
    fits = result(b"A1 OK [COPYUID 38505 4:6 10:12] Done")
    assert copied_to(fits, 3) == {
        4: Located(38505, 10),
        5: Located(38505, 11),
        6: Located(38505, 12),
    }
