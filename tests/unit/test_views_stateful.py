"""A mailbox that gets messages, loses them and has them re-flagged, and a client that learns
about it only through folderSync reports: after every sync its view equals a fresh build.

This is the bridge's situation: the logical view is the only copy of what the client holds, and
nothing but `apply(diff(...))` ever changes it here.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bridge.views.diff import apply, diff
from bridge.views.model import Message, ViewSpec, build_view

FLAGS = st.frozensets(
    st.sampled_from(
        ["\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "$Media", "$Label2", "Work"]
    ),
    max_size=3,
)
TEXTS = st.sampled_from(["", "a", "B", "b", "ab"])
SORT_FIELDS = ["UID", "SIZE", "INTERNALDATE", "Date", "From", "To", "Subject", "FLAGS"]
FILTERS = [
    (None, None),
    ("Unseen", "FLAGS"),
    ("Media,Undeleted", "FLAGS"),
    ("NotLabel2", "FLAGS"),
    ("b", "From"),
    ("a", "Subject"),
]


class FolderSync(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mailbox: dict[int, Message] = {}
        self.synced: dict[int, Message] = {}  # the mailbox as of the client's last sync
        self.next_uid = 1
        self.spec = ViewSpec()
        self.client: list[int] = []

    @initialize(
        sort_field=st.sampled_from(SORT_FIELDS),
        descending=st.booleans(),
        filter_=st.sampled_from(FILTERS),
        count=st.integers(0, 8),
        data=st.data(),
    )
    def open_folder(
        self,
        sort_field: str,
        descending: bool,
        filter_: tuple[str | None, str | None],
        count: int,
        data: st.DataObject,
    ) -> None:
        self.spec = ViewSpec(sort_field, descending, *filter_)
        for _ in range(count):
            self.add(data)
        self.synced = dict(self.mailbox)
        self.client = build_view(self.mailbox.values(), self.spec)  # folderOpen: init + browse

    def new_message(self, data: st.DataObject) -> Message:
        small = st.integers(0, 3)
        uid = self.next_uid
        self.next_uid += data.draw(st.integers(1, 3))
        return data.draw(
            st.builds(Message, st.just(uid), FLAGS, small, small, small, TEXTS, TEXTS, TEXTS)
        )

    @rule(data=st.data())
    def add(self, data: st.DataObject) -> None:
        message = self.new_message(data)
        self.mailbox[message.uid] = message

    @precondition(lambda self: self.mailbox)
    @rule(data=st.data())
    def expunge(self, data: st.DataObject) -> None:
        for uid in data.draw(
            st.lists(st.sampled_from(sorted(self.mailbox)), min_size=1, max_size=3)
        ):
            self.mailbox.pop(uid, None)

    @precondition(lambda self: self.mailbox)
    @rule(data=st.data())
    def reflag(self, data: st.DataObject) -> None:
        for uid in data.draw(
            st.lists(st.sampled_from(sorted(self.mailbox)), min_size=1, max_size=4)
        ):
            m = self.mailbox[uid]
            flags = data.draw(FLAGS)
            self.mailbox[uid] = Message(
                uid, flags, m.size, m.internaldate, m.date, m.from_, m.to, m.subject
            )

    @rule()
    def sync(self) -> None:
        changed = {
            uid for uid, m in self.mailbox.items() if uid in self.synced and self.synced[uid] != m
        }
        current = build_view(self.mailbox.values(), self.spec)
        reports = diff(self.client, current, changed)
        self.client = apply(self.client, reports)
        self.synced = dict(self.mailbox)
        assert self.client == current
        assert {r.uid for r in reports if r.mode == "updated"} <= changed

    @invariant()
    def client_view_is_stale_until_synced(self) -> None:
        # Between syncs the client's view is the view of the last synced state, whatever happened.
        assert self.client == build_view(self.synced.values(), self.spec)


FolderSync.TestCase.settings = settings(max_examples=500, stateful_step_count=30, deadline=None)
test_folder_sync = FolderSync.TestCase
