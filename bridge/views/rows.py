"""The row cache: what folders show of messages, shared by every folder and session of an
account, kept current from the backend's change reports (CONDSTORE), bounded in size.

Keyed by (account, mailbox, UIDVALIDITY): a UIDVALIDITY change makes every old entry unreachable.
A mailbox's entries are valid up to its `modseq`; when a watcher reports a change the mailbox is
marked dirty, and the next reader first asks the backend what changed since `modseq` (one round
trip) before trusting the entries.

Storage is column-wise, in pages of 64 consecutive UIDs (UIDs are mostly dense): per message a
flag-set number, size and arrival time in typed arrays, and its cells (see `bridge.ximss.fields`)
joined by NUL (which XML text never holds) in one UTF-8 blob per page. About 20 bytes a message
plus its text, where a dict of objects per message cost ~670. Eviction drops the pages least
recently read, so cold mailboxes go first. Pure: no I/O here; the folder operations drive it.
"""

from __future__ import annotations

import itertools
import json
import struct
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from adapters.protocols import FlagChanges

MailboxKey = tuple[str, str, int]  # account, mailbox, UIDVALIDITY

# A date cell for a header that is there but unreadable (an absent one is "").
NO_DATE = "?"
PAGE_BITS = 6
PAGE = 1 << PAGE_BITS
_SLOT = PAGE - 1
_SEP = "\x00"
# Columns a mailbox keeps at most (the union over its folders); past it the mailbox starts over.
MAX_COLUMNS = 64
# Distinct flag sets the cache can number ("H" array); past it the cache starts over.
MAX_FLAG_SETS = 65535
# Eviction frees this share of the bound at once, so it runs rarely.
EVICT_SHARE = 0.1
# Exported mailboxes (see RowCache.export): magic, modseq, page count, JSON length.
_EXPORT = struct.Struct("<4sQII")
_MAGIC = b"XBR1"
_PAGE_NUMBER = struct.Struct("<II")  # page number, blob length


class _Full(Exception):
    """Every flag-set number is taken."""


class Row(NamedTuple):
    uid: int
    flags: frozenset[str]
    size: int
    internal: int  # arrival (INTERNALDATE), epoch seconds
    cells: Mapping[str, str]  # column -> cell


class _Page:
    __slots__ = ("blob", "ends", "flags", "internal", "ncols", "size", "used")

    def __init__(self) -> None:
        self.flags = array("H", bytes(2 * PAGE))  # flag-set number + 1; 0: no message here
        self.size = array("I", bytes(4 * PAGE))
        self.internal = array("q", bytes(8 * PAGE))
        self.ncols = array("B", bytes(PAGE))  # the record holds the mailbox's first n columns
        self.ends = array("I", bytes(4 * PAGE))  # record i is blob[ends[i - 1]:ends[i]]
        self.blob = b""
        self.used = 0

    def record(self, slot: int) -> bytes:
        return self.blob[self.ends[slot - 1] if slot else 0 : self.ends[slot]]

    def rewrite(self, records: dict[int, bytes]) -> None:
        """Replace the given slots' records; those of emptied slots are dropped."""
        parts = [
            records[slot] if slot in records else self.record(slot) if self.flags[slot] else b""
            for slot in range(PAGE)
        ]
        self.blob = b"".join(parts)
        self.ends = array("I", itertools.accumulate(map(len, parts)))


@dataclass(slots=True)
class _Mailbox:
    modseq: int = 0
    dirty: bool = True
    entries: int = 0
    columns: list[str] = field(default_factory=list)
    pages: dict[int, _Page] = field(default_factory=dict)

    def column_positions(self, columns: Sequence[str]) -> list[int] | None:
        try:
            return [self.columns.index(column) for column in columns]
        except ValueError:
            return None


class RowCache:
    def __init__(self, max_entries: int) -> None:
        self._max_pages = max(1, max_entries // PAGE)
        self._pages = 0
        self._mailboxes: dict[MailboxKey, _Mailbox] = {}
        self._flag_numbers: dict[frozenset[str], int] = {}
        self._flag_sets: list[frozenset[str]] = []
        self._clock = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return sum(mailbox.entries for mailbox in self._mailboxes.values())

    def footprint(self) -> int:
        """Bytes held for the cached rows (pages, their arrays and text, the page tables)."""
        total = sys.getsizeof(self._mailboxes)
        for state in self._mailboxes.values():
            total += sys.getsizeof(state.pages) + sys.getsizeof(state.columns)
            for page in state.pages.values():
                total += sys.getsizeof(page) + sys.getsizeof(page.blob)
                total += sum(map(sys.getsizeof, (page.flags, page.size, page.internal,
                                                 page.ncols, page.ends)))  # fmt: skip
        return total

    def _state(self, key: MailboxKey) -> _Mailbox:
        state = self._mailboxes.get(key)
        if state is None:
            state = self._mailboxes[key] = _Mailbox()
        return state

    def claim(self, key: MailboxKey) -> bool:
        """True the first time a mailbox is asked for (then its stored rows may be loaded)."""
        if key in self._mailboxes:
            return False
        self._state(key)
        return True

    def mark_dirty(self, key: MailboxKey) -> None:
        state = self._mailboxes.get(key)
        if state is not None:
            state.dirty = True

    def needs_refresh(self, key: MailboxKey) -> tuple[bool, int]:
        """(whether changes must be fetched before reading, the modseq to fetch them since)."""
        state = self._mailboxes.get(key)
        if state is None:
            return False, 0
        return state.dirty and state.entries > 0, state.modseq

    def columns_for(self, key: MailboxKey, wanted: Iterable[str]) -> list[str]:
        """The columns to fetch for a miss: every column the mailbox keeps, the wanted ones
        added, so one stored row serves all the mailbox's folders."""
        state = self._state(key)
        new = [column for column in dict.fromkeys(wanted) if column not in state.columns]
        if len(state.columns) + len(new) > MAX_COLUMNS:
            self._drop(key)
            state = self._state(key)
        state.columns.extend(new)
        return list(state.columns)

    def apply(self, key: MailboxKey, changes: FlagChanges, since: int | None = None) -> None:
        """Bring the mailbox's entries up to `changes.highestmodseq`, given changes since
        `since` (default: since the cache's own modseq). Changes that start later than the
        cache's modseq would leave a gap: then the mailbox stays dirty for its next reader."""
        state = self._mailboxes.get(key)
        if state is None:
            return
        if since is not None and since > state.modseq and state.entries:
            state.dirty = True
            return
        try:
            self._apply(state, changes)
        except _Full:
            self._reset()

    def _apply(self, state: _Mailbox, changes: FlagChanges) -> None:
        for uid in changes.vanished:
            page = state.pages.get(uid >> PAGE_BITS)
            if page is not None and page.flags[uid & _SLOT]:
                page.flags[uid & _SLOT] = 0
                state.entries -= 1
        for uid, flags in changes.flags.items():
            page = state.pages.get(uid >> PAGE_BITS)
            if page is not None and page.flags[uid & _SLOT]:
                page.flags[uid & _SLOT] = self._flag_number(flags)
        state.modseq = max(state.modseq, changes.highestmodseq)
        state.dirty = False

    def lookup(
        self, key: MailboxKey, uids: Iterable[int], columns: Sequence[str]
    ) -> tuple[dict[int, Row], list[int]]:
        """Rows that hold every wanted column, and the UIDs that must be fetched."""
        found: dict[int, Row] = {}
        missing: list[int] = []
        state = self._mailboxes.get(key)
        positions = state.column_positions(columns) if state is not None else None
        if state is None or positions is None:
            missing = list(uids)
            self.misses += len(missing)
            return found, missing
        need = max(positions, default=-1) + 1
        self._clock += 1
        clock, pages, flag_sets = self._clock, state.pages, self._flag_sets
        pairs = list(zip(columns, positions, strict=True))
        for uid in uids:
            page = pages.get(uid >> PAGE_BITS)
            slot = uid & _SLOT
            if page is None or not page.flags[slot] or page.ncols[slot] < need:
                missing.append(uid)
                continue
            page.used = clock
            ends = page.ends
            cells = page.blob[ends[slot - 1] if slot else 0 : ends[slot]].decode().split(_SEP)
            flags = flag_sets[page.flags[slot] - 1]
            shown = {column: cells[position] for column, position in pairs}
            found[uid] = Row(uid, flags, page.size[slot], page.internal[slot], shown)
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def store(self, key: MailboxKey, modseq: int, rows: Mapping[int, Row]) -> None:
        """Keep fetched rows: each with as many of the mailbox's columns, in order, as it has."""
        state = self._state(key)
        if modseq and state.entries == 0:
            state.modseq, state.dirty = modseq, False
        try:
            self._store(state, rows)
        except _Full:
            self._reset()
            return
        if self._pages > self._max_pages:
            self._evict()

    def _store(self, state: _Mailbox, rows: Mapping[int, Row]) -> None:
        self._clock += 1
        by_page: dict[int, list[Row]] = {}
        for row in rows.values():
            by_page.setdefault(row.uid >> PAGE_BITS, []).append(row)
        for number, page_rows in by_page.items():
            page = state.pages.get(number)
            if page is None:
                page = state.pages[number] = _Page()
                self._pages += 1
            records: dict[int, bytes] = {}
            for row in page_rows:
                slot = row.uid & _SLOT
                kept = _leading(state.columns, row.cells)
                records[slot] = _SEP.join(row.cells[c] for c in kept).encode()
                if not page.flags[slot]:
                    state.entries += 1
                page.flags[slot] = self._flag_number(row.flags)
                page.size[slot] = min(row.size, 0xFFFFFFFF)
                page.internal[slot] = row.internal
                page.ncols[slot] = len(kept)
            page.rewrite(records)
            page.used = self._clock

    def export(self, key: MailboxKey) -> bytes | None:
        """The mailbox's rows as bytes for the state store (None when it holds none); the
        arrays in this machine's byte order, flag sets and columns as JSON."""
        state = self._mailboxes.get(key)
        if state is None or not state.entries or not state.modseq:
            return None
        used = sorted({n for page in state.pages.values() for n in page.flags if n})
        renumber = {number: index + 1 for index, number in enumerate(used)}
        meta = json.dumps({
            "columns": state.columns,
            "flags": [sorted(self._flag_sets[number - 1]) for number in used],
        }).encode()  # fmt: skip
        parts = [_EXPORT.pack(_MAGIC, state.modseq, len(state.pages), len(meta)), meta]
        for number, page in state.pages.items():
            flags = array("H", (renumber.get(n, 0) for n in page.flags))
            parts.append(_PAGE_NUMBER.pack(number, len(page.blob)))
            parts += [flags.tobytes(), page.size.tobytes(), page.internal.tobytes(),
                      page.ncols.tobytes(), page.ends.tobytes(), page.blob]  # fmt: skip
        return b"".join(parts)

    def load(self, key: MailboxKey, blob: bytes) -> bool:
        """Take rows exported by an earlier run, unless the mailbox already has some. They are
        marked dirty: the next reader brings them up to date from their modseq first."""
        if key in self._mailboxes and self._mailboxes[key].entries:
            return False
        try:
            state = self._imported(blob)
        except (ValueError, KeyError, IndexError, TypeError, struct.error, _Full):
            return False
        self._drop(key)
        self._mailboxes[key] = state
        self._pages += len(state.pages)
        if self._pages > self._max_pages:
            self._evict()
        return True

    def _imported(self, blob: bytes) -> _Mailbox:
        magic, modseq, pages, meta_size = _EXPORT.unpack_from(blob)
        if magic != _MAGIC:
            raise ValueError("not exported rows")
        offset = _EXPORT.size
        meta = json.loads(blob[offset : offset + meta_size])
        offset += meta_size
        numbers = [self._flag_number(frozenset(map(str, flags))) for flags in meta["flags"]]
        columns = [str(column) for column in meta["columns"]][:MAX_COLUMNS]
        state = _Mailbox(modseq=modseq, dirty=True, columns=columns)
        self._clock += 1
        for _ in range(pages):
            number, blob_size = _PAGE_NUMBER.unpack_from(blob, offset)
            offset += _PAGE_NUMBER.size
            page = _Page()
            for part in (page.flags, page.size, page.internal, page.ncols, page.ends):
                size = part.itemsize * PAGE
                chunk = blob[offset : offset + size]
                if len(chunk) != size:
                    raise ValueError("truncated")
                del part[:]
                part.frombytes(chunk)
                offset += size
            page.blob = blob[offset : offset + blob_size]
            offset += blob_size
            if len(page.blob) != blob_size or page.ends[-1] != blob_size:
                raise ValueError("truncated")
            page.flags = array("H", (numbers[n - 1] if n else 0 for n in page.flags))
            page.used = self._clock
            state.pages[number] = page
            state.entries += sum(1 for n in page.flags if n)
        return state

    def _flag_number(self, flags: frozenset[str]) -> int:
        number = self._flag_numbers.get(flags)
        if number is None:
            if len(self._flag_sets) >= MAX_FLAG_SETS:
                raise _Full
            self._flag_sets.append(flags)
            number = self._flag_numbers[flags] = len(self._flag_sets)
        return number

    def _reset(self) -> None:
        """Start over (it takes 65,535 distinct keyword sets to get here)."""
        self._mailboxes.clear()
        self._flag_numbers.clear()
        self._flag_sets.clear()
        self._pages = 0

    def _drop(self, key: MailboxKey) -> None:
        state = self._mailboxes.pop(key, None)
        if state is not None:
            self._pages -= len(state.pages)

    def _evict(self) -> None:
        """Drop the least recently read pages until the cache is a share below its bound."""
        target = int(self._max_pages * (1 - EVICT_SHARE))
        by_age = sorted(
            (page.used, number, key)
            for key, state in self._mailboxes.items()
            for number, page in state.pages.items()
        )
        for _, number, key in by_age[: max(0, self._pages - target)]:
            state = self._mailboxes[key]
            page = state.pages.pop(number)
            state.entries -= sum(1 for flags in page.flags if flags)
            self._pages -= 1
            if not state.pages:
                del self._mailboxes[key]


def _leading(columns: list[str], cells: Mapping[str, str]) -> list[str]:
    """The columns, in order, up to the first one the cells lack."""
    return list(itertools.takewhile(cells.__contains__, columns))
