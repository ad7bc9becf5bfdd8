"""Folder views and cached rows kept in the state store, so a restarted bridge reopens a large
folder from the stored order plus what changed since (one CONDSTORE round trip) instead of sorting
it again, and browses it without fetching every row again.

A view's key holds everything its order and filter depend on, UIDVALIDITY included, so a rebuilt
mailbox never matches."""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Sequence

from adapters.protocols import ViewQuery

_HEADER = struct.Struct("<Q")


def view_key(account: str, mailbox: str, uidvalidity: int, query: ViewQuery) -> str | None:
    if not uidvalidity:
        return None
    order = f"{(query.sort_field or '').lower()} {'desc' if query.descending else 'asc'}"
    flags = f"{','.join(query.flags_set)} {','.join(query.flags_unset)}"
    text = "" if query.text is None else f"{query.text_field or ''}\x00{query.text}"
    spec = "\x00".join([account, mailbox, str(uidvalidity), order, flags, text])
    return "view:" + hashlib.sha256(spec.encode()).hexdigest()


def rows_key(account: str, mailbox: str, uidvalidity: int) -> str:
    spec = "\x00".join([account, mailbox, str(uidvalidity)])
    return "rows:" + hashlib.sha256(spec.encode()).hexdigest()


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
