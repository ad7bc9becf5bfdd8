"""A state store in a dict: for `state.path = ":memory:"`-like uses in tests and tools, where
nothing needs to outlive the process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bridge.state import counter_value


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.closed = False

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def set(self, key: str, value: bytes) -> None:
        self.data[key] = bytes(value)

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return {key: self.data[key] for key in keys if key in self.data}

    async def set_many(self, items: Mapping[str, bytes]) -> None:
        for key, value in items.items():
            await self.set(key, value)

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.data.pop(key, None)

    async def increment(self, key: str, by: int = 1) -> int:
        # No await between the read and the write: atomic on the event loop.
        value = counter_value(self.data.get(key)) + by
        self.data[key] = str(value).encode()
        return value

    async def close(self) -> None:
        self.closed = True
