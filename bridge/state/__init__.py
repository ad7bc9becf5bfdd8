"""State stores: the bridge's own small state (cached folder views) behind one interface.

SQLite (an embedded file, nothing to run) is the default; Redis (redis.py) is the store several
replicas share. Almost everything kept here is a cache: losing it costs speed, never data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of the keys that exist, in one round trip (a listing needs thousands)."""
        ...

    async def set_many(self, items: Mapping[str, bytes]) -> None: ...

    async def delete_many(self, keys: Sequence[str]) -> None: ...

    async def increment(self, key: str, by: int = 1) -> int:
        """Add `by` to the decimal integer at `key` (a missing key counts as 0) and return the
        new value, atomically even between replicas sharing the store. ValueError when the key
        holds something else, or the result is past what the store can count."""
        ...

    async def close(self) -> None: ...


def counter_value(raw: bytes | None) -> int:
    """A counter as stored: decimal ASCII, as Redis keeps one (0 when missing); ValueError for
    anything else."""
    if raw is None:
        return 0
    text = raw.decode("ascii")  # UnicodeDecodeError is a ValueError
    if not text.removeprefix("-").isdigit():
        raise ValueError("not a counter")
    return int(text)
