"""The change journal of a selected QRESYNC connection, fed the responses Dovecot sends."""

from __future__ import annotations

from adapters.imap.journal import MAX_ENTRIES, ChangeJournal
from adapters.imap.wire_parse import ResponseParser
from adapters.imap.wire_types import Untagged


def feed(journal: ChangeJournal, *lines: bytes) -> None:
    for line in lines:
        (response,) = ResponseParser().feed(line + b"\r\n")
        assert isinstance(response, Untagged)
        journal.observe(response)


def test_what_dovecot_pushes_becomes_the_next_sync() -> None:
    journal = ChangeJournal()
    journal.anchor(10, 101)
    feed(
        journal,
        b"* 5 FETCH (UID 5 MODSEQ (11) FLAGS (\\Answered \\Seen))",
        b"* 3 FETCH (UID 3 FLAGS (\\Seen) RFC822.SIZE 255)",  # data we asked for: no news
        b"* 7 FETCH (UID 7 MODSEQ (12))",  # our own STORE .SILENT: flags not heard
        b"* VANISHED 6,8:9",
        b"* 100 EXISTS",
    )
    assert journal.unknown == {7} and journal.arrived
    feed(journal, b"* 7 FETCH (UID 7 FLAGS (\\Flagged) MODSEQ (12))")
    feed(journal, b"* 101 FETCH (UID 101 FLAGS () MODSEQ (9))")  # new, whatever its modseq
    flags, vanished, highest = journal.take()
    assert flags == {5: {"\\Answered", "\\Seen"}, 7: {"\\Flagged"}, 101: frozenset()}
    assert vanished == {6, 8, 9} and highest == 12
    assert journal.uidnext == 102


def test_changes_at_or_below_the_anchor_are_not_news() -> None:
    journal = ChangeJournal()
    journal.anchor(10, 50)
    feed(journal, b"* 5 FETCH (UID 5 MODSEQ (10) FLAGS (\\Seen))")
    assert journal.take() == ({}, frozenset(), 10)


def test_settle_keeps_what_was_heard_while_changedsince_ran() -> None:
    journal = ChangeJournal()
    journal.anchor(10, 50)
    journal.restart()
    assert not journal.serves(10)
    feed(
        journal,
        b"* VANISHED (EARLIER) 1:3",  # the CHANGEDSINCE's own answer
        b"* 4 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (15))",
        b"* VANISHED 9",  # expunged while the FETCH ran
        b"* 20 FETCH (UID 20 MODSEQ (17) FLAGS (\\Flagged))",
        b"* 51 EXISTS",
    )
    journal.settle(15, 51)
    assert journal.serves(15) and journal.arrived and journal.vanished == {9}
    assert journal.flags == {20: (frozenset({"\\Flagged"}), 17)}


def test_gaps_drop_the_journal() -> None:
    journal = ChangeJournal()
    journal.anchor(10, 50)
    feed(journal, b"* 3 EXPUNGE")
    assert not journal.serves(10) and not journal.recording
    journal.anchor(10, 50)
    for uid in range(MAX_ENTRIES + 1):
        journal.unknown.add(uid)
    feed(journal, b"* 1 EXISTS")
    assert journal.base is None
