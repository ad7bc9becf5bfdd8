"""The summary cache: what folders show of messages, shared by every folder and session of an
account, kept current from the backend's change reports (CONDSTORE), bounded in size.

Keyed by (account, mailbox, UIDVALIDITY): a UIDVALIDITY change makes every old entry unreachable.
A mailbox's entries are valid up to its `modseq`; when a watcher reports a change the mailbox is
marked dirty, and the next reader first asks the backend what changed since `modseq` (one round
trip) before trusting the entries. Pure: no I/O here; the folder operations drive it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from adapters.protocols import FlagChanges, MessageSummary

MailboxKey = tuple[str, str, int]  # account, mailbox, UIDVALIDITY


@dataclass(slots=True)
class _MailboxState:
    modseq: int = 0
    dirty: bool = True
    entries: int = 0


class SummaryCache:
    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[MailboxKey, int], MessageSummary] = OrderedDict()
        self._mailboxes: dict[MailboxKey, _MailboxState] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _state(self, key: MailboxKey) -> _MailboxState:
        state = self._mailboxes.get(key)
        if state is None:
            state = self._mailboxes[key] = _MailboxState()
        return state

    def mark_dirty(self, key: MailboxKey) -> None:
        self._state(key).dirty = True

    def needs_refresh(self, key: MailboxKey) -> tuple[bool, int]:
        """(whether changes must be fetched before reading, the modseq to fetch them since)."""
        state = self._state(key)
        return state.dirty and state.entries > 0, state.modseq

    def apply(self, key: MailboxKey, changes: FlagChanges, since: int | None = None) -> None:
        """Bring the mailbox's entries up to `changes.highestmodseq`, given changes since
        `since` (default: since the cache's own modseq). Changes that start later than the
        cache's modseq would leave a gap: then the mailbox stays dirty for its next reader."""
        state = self._state(key)
        if since is not None and since > state.modseq and state.entries:
            state.dirty = True
            return
        for uid in changes.vanished:
            if self._entries.pop((key, uid), None) is not None:
                state.entries -= 1
        for uid, flags in changes.flags.items():
            entry = self._entries.get((key, uid))
            if entry is not None and entry.flags != flags:
                self._entries[(key, uid)] = replace(entry, flags=flags)
        state.modseq = max(state.modseq, changes.highestmodseq)
        state.dirty = False

    def lookup(
        self, key: MailboxKey, uids: Iterable[int], headers: Sequence[str]
    ) -> tuple[dict[int, MessageSummary], list[int]]:
        """Entries that hold every wanted header, and the UIDs that must be fetched."""
        found: dict[int, MessageSummary] = {}
        missing: list[int] = []
        for uid in uids:
            entry = self._entries.get((key, uid))
            if entry is not None and all(h in entry.headers for h in headers):
                self._entries.move_to_end((key, uid))
                found[uid] = entry
            else:
                missing.append(uid)
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def store(
        self, key: MailboxKey, modseq: int, summaries: Mapping[int, MessageSummary],
        headers: Sequence[str],
    ) -> None:  # fmt: skip
        """Keep fetched summaries; headers asked for but absent are remembered as absent."""
        state = self._state(key)
        if modseq and state.entries == 0:
            state.modseq, state.dirty = modseq, False
        for uid, summary in summaries.items():
            missing = tuple(h for h in headers if h not in summary.headers)
            entry = replace(summary, headers={**summary.headers, **dict.fromkeys(missing, _ABSENT)})
            if (key, uid) not in self._entries:
                state.entries += 1
            self._entries[(key, uid)] = entry
            self._entries.move_to_end((key, uid))
        while len(self._entries) > self._max:
            (old_key, _), _ = self._entries.popitem(last=False)
            self._state(old_key).entries -= 1


# A header the message does not have, remembered so it is not fetched again.
_ABSENT = "\x00absent"


def visible(summary: MessageSummary) -> MessageSummary:
    """The summary as the formatting code expects it: absent headers really absent."""
    if _ABSENT not in summary.headers.values():
        return summary
    return replace(summary, headers={k: v for k, v in summary.headers.items() if v != _ABSENT})
