"""The default state store: one SQLite file, used from a worker thread so the event loop never
waits on the disk. WAL journaling and NORMAL sync: a crash may lose the last writes, which for a
cache is the right trade."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

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

    async def delete(self, key: str) -> None:
        await self._run("DELETE FROM kv WHERE key = ?", key)

    async def close(self) -> None:
        async with self._lock:
            self._db.close()
