"""Folder views kept in the state store, so a restarted bridge reopens a large folder from the
stored order plus what changed since (one CONDSTORE round trip) instead of sorting it again.

Only views the incremental sync can bring up to date are stored: no text filters. The key holds
everything the order depends on, UIDVALIDITY included, so a rebuilt mailbox never matches."""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Sequence

from adapters.protocols import ViewQuery

_HEADER = struct.Struct("<Q")


def view_key(account: str, mailbox: str, uidvalidity: int, query: ViewQuery) -> str | None:
    if query.text is not None or not uidvalidity:
        return None
    order = f"{(query.sort_field or '').lower()} {'desc' if query.descending else 'asc'}"
    flags = f"{','.join(query.flags_set)} {','.join(query.flags_unset)}"
    spec = "|".join([account, mailbox, str(uidvalidity), order, flags])
    return "view:" + hashlib.sha256(spec.encode()).hexdigest()


def encode(modseq: int, view: Sequence[int]) -> bytes:
    stored = view if isinstance(view, array) else array("I", view)
    return _HEADER.pack(modseq) + stored.tobytes()


def decode(blob: bytes) -> tuple[int, array[int]] | None:
    if len(blob) < _HEADER.size or (len(blob) - _HEADER.size) % 4:
        return None
    (modseq,) = _HEADER.unpack_from(blob)
    uids = array("I")
    uids.frombytes(blob[_HEADER.size :])
    return modseq, uids
