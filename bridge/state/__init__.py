"""State stores: the bridge's own small state (cached folder views) behind one interface.

SQLite (an embedded file, nothing to run) is the default; a Redis store for several replicas
implements the same Protocol. Everything kept here is a cache: losing it costs speed, never data.
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

    async def close(self) -> None: ...
