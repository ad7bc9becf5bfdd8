"""The default state store: one SQLite file, used from a worker thread so the event loop never
waits on the disk. WAL journaling and NORMAL sync: a crash may lose the last writes, which for a
cache is the right trade."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from bridge.state import counter_value

# Keys per SELECT ... IN (...): below SQLite's default limit of bound parameters.
BATCH = 500
SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)"


class SqliteStore:
    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._lock = asyncio.Lock()

    async def _run(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._db.execute(sql, args).fetchall())

    async def get(self, key: str) -> bytes | None:
        rows = await self._run("SELECT value FROM kv WHERE key = ?", key)
        value = rows[0][0] if rows else None
        return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None

    async def set(self, key: str, value: bytes) -> None:
        await self._run("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", key, value)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            marks = ",".join("?" * len(chunk))  # only placeholders go into the text
            query = f"SELECT key, value FROM kv WHERE key IN ({marks})"  # noqa: S608
            rows = await self._run(query, *chunk)
            for key, value in rows:
                if isinstance(key, str) and isinstance(value, bytes | bytearray | memoryview):
                    found[key] = bytes(value)
        return found

    async def set_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        rows = list(items.items())
        async with self._lock:
            await asyncio.to_thread(self._write_many, rows)

    def _write_many(self, rows: list[tuple[str, bytes]]) -> None:
        with self._db:  # one transaction: one sync, not one per key
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", rows)

    async def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        rows = [(key,) for key in keys]
        async with self._lock:
            await asyncio.to_thread(self._delete_many, rows)

    def _delete_many(self, rows: list[tuple[str]]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM kv WHERE key = ?", rows)

    async def increment(self, key: str, by: int = 1) -> int:
        async with self._lock:
            return await asyncio.to_thread(self._increment, key, by)

    def _increment(self, key: str, by: int) -> int:
        # IMMEDIATE takes the write lock before the read: another process on the same file
        # cannot slip a write in between.
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            value = counter_value(_blob(row[0]) if row is not None else None) + by
            self._db.execute(
                "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, str(value).encode())
            )
        return value

    async def delete(self, key: str) -> None:
        await self._run("DELETE FROM kv WHERE key = ?", key)

    async def close(self) -> None:
        async with self._lock:
            self._db.close()


def _blob(value: object) -> bytes:
    """A stored value as bytes (all are written as BLOBs; a hand-edited row may not be)."""
    return (
        bytes(value) if isinstance(value, bytes | bytearray | memoryview) else str(value).encode()
    )
