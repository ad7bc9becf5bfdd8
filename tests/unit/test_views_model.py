"""The view model, and diff against it: for random mailboxes, every sort field both ways and every
kind of filter, the reports for a random change turn the old view into the new one, and report
`updated` exactly for the messages that stayed in place and changed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import BridgeError, ErrorKind
from bridge.views.diff import apply, diff
from bridge.views.model import Message, ViewSpec, build_view

FLAG_POOL = [
    "\\Seen",
    "\\Answered",
    "\\Flagged",
    "\\Deleted",
    "\\Draft",
    "\\Recent",
    "$Media",
    "$label1",
    "$Forwarded",
    "Work",
    "Seen",  # a keyword spelled like a XIMSS name: hidden, so it must not change a FLAGS sort
]
TEXTS = st.sampled_from(["", "a", "A", "ab", "Ab", "b", "ba", "ä", "Ä"])  # ties and case
SORT_FIELDS = ["UID", "SIZE", "INTERNALDATE", "Date", "From", "To", "Subject", "FLAGS", "subject"]
FILTER_NAMES = [
    *("Seen", "Unseen", "Media", "NotMedia", "Flagged", "Unflagged", "Deleted", "Undeleted"),
    *("Recent", "NotRecent", "Label1", "NotLabel1", "Work", "Draft", "Undraft"),
]

FLAGS = st.frozensets(st.sampled_from(FLAG_POOL), max_size=4)


def message(uid: int) -> st.SearchStrategy[Message]:
    small = st.integers(0, 3)
    return st.builds(Message, st.just(uid), FLAGS, small, small, small, TEXTS, TEXTS, TEXTS)


@st.composite
def mailboxes(draw: st.DrawFn, uids: st.SearchStrategy[list[int]]) -> dict[int, Message]:
    return {uid: draw(message(uid)) for uid in draw(uids)}


MAILBOXES = mailboxes(st.lists(st.integers(1, 60), unique=True, max_size=25))

FILTERS = st.one_of(
    st.just((None, None)),
    st.tuples(st.lists(st.sampled_from(FILTER_NAMES), max_size=3).map(",".join), st.just("FLAGS")),
    st.tuples(
        st.sampled_from(["a", "A", "b", "ä", ""]), st.sampled_from(["From", "to", "Subject"])
    ),
)


@st.composite
def specs(draw: st.DrawFn) -> ViewSpec:
    filter_text, filter_field = draw(FILTERS)
    return ViewSpec(
        draw(st.sampled_from(SORT_FIELDS)), draw(st.booleans()), filter_text, filter_field
    )


@st.composite
def mutated(draw: st.DrawFn, mailbox: dict[int, Message]) -> dict[int, Message]:
    """What can happen to a mailbox between two syncs: expunges, flag changes (some of them to
    the flags the message already had), new messages, or nothing at all."""
    result = dict(mailbox)
    for uid in sorted(mailbox):
        action = draw(st.sampled_from(["keep", "keep", "remove", "reflag"]))
        if action == "remove":
            del result[uid]
        elif action == "reflag":
            old = mailbox[uid]
            result[uid] = Message(
                uid, draw(FLAGS), old.size, old.internaldate, old.date, old.from_, old.to,
                old.subject,
            )  # fmt: skip
    result.update(draw(mailboxes(st.lists(st.integers(61, 80), unique=True, max_size=5))))
    return result


@settings(max_examples=2000)
@given(st.data(), MAILBOXES, specs())
def test_reports_turn_old_view_into_new(
    data: st.DataObject, before: dict[int, Message], spec: ViewSpec
) -> None:
    after = data.draw(mutated(before))
    old = build_view(before.values(), spec)
    new = build_view(after.values(), spec)
    changed = {uid for uid in before.keys() & after.keys() if before[uid] != after[uid]}

    reports = diff(old, new, changed)

    assert apply(old, reports) == new
    removed = {r.uid for r in reports if r.mode == "removed"}
    kept = (set(old) & set(new)) - removed
    assert {r.uid for r in reports if r.mode == "updated"} == kept & changed


@settings(max_examples=300)
@given(MAILBOXES, specs())
def test_view_is_a_deterministic_selection(mailbox: dict[int, Message], spec: ViewSpec) -> None:
    view = build_view(mailbox.values(), spec)
    assert len(set(view)) == len(view) and set(view) <= set(mailbox)
    assert build_view(reversed(list(mailbox.values())), spec) == view
    unfiltered = build_view(mailbox.values(), ViewSpec(spec.sort_field, spec.descending))
    assert [uid for uid in unfiltered if uid in set(view)] == view  # filtering keeps the order


def msg(uid: int, **fields: Any) -> Message:
    return replace(Message(uid, frozenset(), 0, 0, 0, "", "", ""), **fields)


BOX = [
    msg(5, size=10, subject="beta", from_="Ann", flags=frozenset({"\\Seen"})),
    msg(3, size=30, subject="Alpha", from_="bob", flags=frozenset({"\\Seen", "$Media"})),
    msg(9, size=10, subject="alpha", from_="carl", flags=frozenset({"\\Flagged"})),
    msg(1, size=20, subject="Gamma", from_="ANN", flags=frozenset({"$Media"})),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ViewSpec(), [1, 3, 5, 9]),  # no sortField: mailbox (UID) order
        (ViewSpec("UID", descending=True), [9, 5, 3, 1]),
        (ViewSpec("SIZE"), [5, 9, 1, 3]),
        (ViewSpec("SIZE", descending=True), [3, 1, 5, 9]),  # ties stay in ascending UID order
        (ViewSpec("Subject"), [3, 9, 5, 1]),  # case-insensitive, ties by UID
        (ViewSpec("from"), [1, 5, 3, 9]),
        (ViewSpec("FLAGS"), [1, 9, 5, 3]),  # unseen first; then by the other flags shown
        (ViewSpec("FLAGS", descending=True), [3, 5, 9, 1]),
        (ViewSpec(filter="Media,Unseen", filter_field="FLAGS"), [1]),  # the spec's example
        (ViewSpec(filter="", filter_field="FLAGS"), [1, 3, 5, 9]),
        (ViewSpec(filter="ALPHA", filter_field="Subject"), [3, 9]),
        (ViewSpec("Subject", filter="ann", filter_field="From"), [5, 1]),
    ],
)
def test_examples(spec: ViewSpec, expected: list[int]) -> None:
    assert build_view(BOX, spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        ViewSpec("Cc"),
        ViewSpec(filter="x"),  # "anything": the server's search
        ViewSpec(filter="x", filter_field="body"),
        ViewSpec(filter="x", filter_field="X-Mailer"),
    ],
)
def test_what_the_model_does_not_carry_is_not_supported(spec: ViewSpec) -> None:
    with pytest.raises(BridgeError) as caught:
        build_view([], spec)
    assert caught.value.kind is ErrorKind.NOT_SUPPORTED


def test_bad_flag_filter_is_a_bad_request() -> None:
    with pytest.raises(BridgeError) as caught:
        build_view([], ViewSpec(filter="a b", filter_field="FLAGS"))
    assert caught.value.kind is ErrorKind.BAD_REQUEST
