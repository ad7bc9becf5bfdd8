"""What a selected connection has been told of changes since its folder's last sync (QRESYNC).

A connection with QRESYNC enabled hears of every change to its mailbox as the server syncs it
at the end of each command: `FETCH (UID MODSEQ FLAGS)` for a flag change made elsewhere,
`FETCH (UID MODSEQ)` for its own `STORE .SILENT`, `VANISHED` for expunges (its own too), and
`EXISTS` when messages arrived. Kept here between syncs, those make the next sync a NOOP plus,
when something arrived or a flag is unknown, one FETCH of just those messages, instead of
`UID FETCH 1:* (CHANGEDSINCE)`, which makes Dovecot walk every message (7 ms for 100,000).

The journal is anchored at a modseq: it holds every change after it that the connection has
heard of, and is used only by a sync from exactly that modseq; anything else takes the
CHANGEDSINCE path and re-anchors it. Dovecot reports changes in the order they were made, so
once a change with modseq M has been heard, everything up to M has been heard too (new messages
as EXISTS); that makes the highest modseq heard a safe base for the next CHANGEDSINCE.
"""

from __future__ import annotations

import contextlib

from adapters.imap.wire import Value, parse_sequence_set
from adapters.imap.wire_types import Untagged

# Past this many remembered changes, a full CHANGEDSINCE is as cheap and the memory is freed.
MAX_ENTRIES = 20_000


class ChangeJournal:
    def __init__(self) -> None:
        self.recording = False
        self.base: int | None = None  # None: not anchored, not used for a sync
        # Every message with a UID below this is known to the folder (in its view or reported).
        self.uidnext = 0
        self.flags: dict[int, tuple[frozenset[str], int]] = {}  # uid -> (flags, modseq)
        self.unknown: set[int] = set()  # changed (own STORE), flags not heard
        self.vanished: set[int] = set()
        self.arrived = False

    def _forget(self) -> None:
        self.flags.clear()
        self.unknown.clear()
        self.vanished.clear()
        self.arrived = False

    def anchor(self, modseq: int, uidnext: int) -> None:
        """A view is built from here: everything up to `modseq` and below `uidnext` is known."""
        self._forget()
        self.recording, self.base, self.uidnext = True, modseq, uidnext

    def restart(self) -> None:
        """A CHANGEDSINCE begins: record what is said from now on, anchored by `settle`."""
        self._forget()
        self.recording, self.base = True, None

    def settle(self, modseq: int, uidnext: int) -> None:
        """The CHANGEDSINCE reported everything up to `modseq` and below `uidnext`; what was
        heard while it ran and is newer stays for the next sync."""
        if not self.recording or uidnext <= 0:
            self.drop()
            return
        self.base, self.uidnext = modseq, max(self.uidnext, uidnext)
        self.flags = {uid: entry for uid, entry in self.flags.items() if entry[1] > modseq}

    def drop(self) -> None:
        """The connection's story has a gap (expunge by sequence number, too much to keep) or
        cannot be kept (a shared connection, no QRESYNC)."""
        self._forget()
        self.recording, self.base = False, None

    def serves(self, modseq: int) -> bool:
        return self.base is not None and self.base == modseq

    def observe(self, response: Untagged) -> None:
        """Every untagged response the connection receives, solicited or not."""
        if not self.recording:
            return
        kind = response.kind
        if kind == "FETCH":
            self._fetch(response.values[0] if response.values else None)
        elif kind == "VANISHED" and not _earlier(response):
            # VANISHED (EARLIER) answers a CHANGEDSINCE, which reports it itself.
            ranges = str(response.values[-1]) if response.values else ""
            for low, high in parse_sequence_set(ranges):
                for uid in range(low, (high or low) + 1):
                    self.vanished.add(uid)
                    self.flags.pop(uid, None)
                    self.unknown.discard(uid)
        elif kind == "EXISTS":
            self.arrived = True
        elif kind == "EXPUNGE":  # by sequence number: without QRESYNC, no UIDs to go on
            self.drop()
        if len(self.flags) + len(self.unknown) + len(self.vanished) > MAX_ENTRIES:
            self.drop()

    def _fetch(self, pairs: Value) -> None:
        if not isinstance(pairs, list):
            return
        uid = modseq = None
        flags: frozenset[str] | None = None
        for key, value in zip(pairs[::2], pairs[1::2], strict=False):
            name = str(key).upper()
            if name == "UID":
                with contextlib.suppress(ValueError):
                    uid = int(str(value))
            elif name == "MODSEQ" and isinstance(value, list) and value:
                with contextlib.suppress(ValueError):
                    modseq = int(str(value[0]))
            elif name == "FLAGS" and isinstance(value, list):
                flags = frozenset(str(flag) for flag in value)
        # Without MODSEQ it is data the bridge asked for, not news of a change.
        if uid is None or modseq is None:
            return
        if flags is None:
            self.unknown.add(uid)
        else:
            self.flags[uid] = (flags, modseq)
            self.unknown.discard(uid)

    def read(self) -> tuple[dict[int, frozenset[str]], frozenset[int], int]:
        """(flags of changed and new messages, UIDs expunged, the highest modseq heard) since
        the anchor. Changes at or below it were reported already; messages from `uidnext` on
        are new to the folder whatever their modseq."""
        assert self.base is not None
        base, uidnext = self.base, self.uidnext
        changed = {
            uid: flags
            for uid, (flags, modseq) in self.flags.items()
            if modseq > base or uid >= uidnext
        }
        highest = max([base, *(modseq for _, modseq in self.flags.values())])
        return changed, frozenset(self.vanished), highest

    def take(self) -> tuple[dict[int, frozenset[str]], frozenset[int], int]:
        """What `read` gives, and the journal emptied for the next sync."""
        changed, vanished, highest = self.read()
        self.flags.clear()
        self.vanished.clear()
        self.uidnext = max([self.uidnext, *(uid + 1 for uid in changed)])
        return changed, vanished, highest


def _earlier(response: Untagged) -> bool:
    first = response.values[0] if len(response.values) > 1 else None
    return isinstance(first, list) and any(str(v).upper() == "EARLIER" for v in first)
