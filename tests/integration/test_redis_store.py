"""The state store contract (bridge/state) on all three stores, Redis on a real redis-server; and
what several replicas sharing one Redis rely on: atomic counters, XMAP handles that never collide.

The `redis_server` fixture (tests/conftest.py) is shared by the run: every test here writes
only keys under a prefix of its own."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import StateSettings
from bridge.errors import BridgeError, ErrorKind
from bridge.services import STORES
from bridge.session.handles import HandleStore, MessageRef
from bridge.state import Store
from bridge.state.memory import MemoryStore
from bridge.state.redis import RedisStore
from bridge.state.sqlite import SqliteStore
from tests.conftest import devstack, redis_server_module

KINDS = ["memory", "sqlite", "redis"]


@pytest.fixture
def ns() -> str:
    """A key prefix no other test uses (the Redis server is shared)."""
    return f"t{uuid.uuid4().hex}:"


def _open(kind: str, tmp_path: Path, redis_server: Any) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(str(tmp_path / "state.sqlite"))
    return RedisStore(redis_server.url)


@pytest.fixture(params=KINDS)
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: Any
) -> AsyncIterator[Store]:
    opened = _open(request.param, tmp_path, redis_server)
    yield opened
    await opened.close()


async def test_get_set_delete(store: Store, ns: str) -> None:
    assert await store.get(f"{ns}a") is None
    await store.set(f"{ns}a", b"one")
    assert await store.get(f"{ns}a") == b"one"
    await store.set(f"{ns}a", b"two")  # replaces
    assert await store.get(f"{ns}a") == b"two"
    await store.delete(f"{ns}a")
    assert await store.get(f"{ns}a") is None
    await store.delete(f"{ns}a")  # deleting a missing key is no error


async def test_batches_of_1200_keys(store: Store, ns: str) -> None:
    items = {f"{ns}k{n}": f"value {n}".encode() for n in range(1200)}
    await store.set_many(items)
    keys = list(items)
    # Missing keys are left out; a key asked twice is answered once.
    found = await store.get_many([*keys, f"{ns}missing", keys[0]])
    assert found == items
    await store.delete_many(keys[:600])
    assert await store.get_many(keys) == {key: items[key] for key in keys[600:]}
    assert await store.get(keys[599]) is None and await store.get(keys[600]) == items[keys[600]]
    # Empty batches are no round trip and no error.
    assert await store.get_many([]) == {}
    await store.set_many({})
    await store.delete_many([])


async def test_binary_values_keep_every_byte(store: Store, ns: str) -> None:
    values = {
        f"{ns}zeros": b"\0\0a\0",
        f"{ns}all": bytes(range(256)) * 4,
        f"{ns}empty": b"",
        f"{ns}not-utf8": b"\xff\xfe\x00\xc3",
    }
    for key, value in values.items():
        await store.set(key, value)
        assert await store.get(key) == value
    assert await store.get_many(list(values)) == values
    copies = {f"{ns}many-{key}": value for key, value in values.items()}
    await store.set_many(copies)
    assert await store.get_many(list(copies)) == copies


async def test_increment_counts_from_zero_and_refuses_non_counters(store: Store, ns: str) -> None:
    assert await store.increment(f"{ns}c") == 1
    assert await store.increment(f"{ns}c", 10) == 11
    assert await store.increment(f"{ns}c", -1) == 10
    assert await store.get(f"{ns}c") == b"10"  # decimal text, readable by get
    await store.set(f"{ns}old", b"5")
    assert await store.increment(f"{ns}old") == 6
    await store.set(f"{ns}text", b"five")
    with pytest.raises(ValueError):
        await store.increment(f"{ns}text")
    assert await store.get(f"{ns}text") == b"five"  # left as it was


async def test_increments_are_atomic_under_concurrency(store: Store, ns: str) -> None:
    got = await asyncio.gather(*(store.increment(f"{ns}c") for _ in range(200)))
    assert sorted(got) == list(range(1, 201))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_two_replicas_increment_one_counter(
    kind: str, tmp_path: Path, redis_server: Any, ns: str
) -> None:
    # Two stores on one file or one server, as two replicas would have; a small Redis pool,
    # so most increments wait for a connection.
    if kind == "redis":
        first: Store = RedisStore(redis_server.url, max_connections=4)
        second: Store = RedisStore(redis_server.url, max_connections=4)
    else:
        first, second = _open(kind, tmp_path, None), _open(kind, tmp_path, None)
    try:
        got = await asyncio.gather(
            *((first if n % 2 else second).increment(f"{ns}c", 1) for n in range(200))
        )
        assert sorted(got) == list(range(1, 201))
        assert await first.get(f"{ns}c") == b"200"
    finally:
        await first.close()
        await second.close()


async def test_handles_over_two_redis_stores_never_collide(redis_server: Any, ns: str) -> None:
    account = f"{ns.rstrip(':')}@x.test"
    states = [RedisStore(redis_server.url), RedisStore(redis_server.url)]
    replicas = [HandleStore(states[0], account), HandleStore(states[1], account)]
    try:
        refs = [[MessageRef(f"Box{n}", 7, uid) for uid in range(1, 11)] for n in range(30)]
        batches = await asyncio.gather(
            *(replicas[n % 2].handles_for(batch) for n, batch in enumerate(refs))
        )
        given = [handle for batch in batches for handle in batch]
        assert sorted(given) == list(range(1, 301))  # none twice, none lost, first is 1
        for batch, handles in zip(refs, batches, strict=True):
            for ref, handle in zip(batch, handles, strict=True):
                assert await replicas[handle % 2].resolve(handle) == ref
                assert await replicas[(handle + 1) % 2].handle_for(ref) == handle
    finally:
        for state in states:
            await state.close()


async def test_unreachable_redis_is_backend_unavailable(ns: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="xb-redis-"))
    server = redis_server_module.RedisServer(root, devstack.free_ports(1)[0], password="right pass")
    try:
        with server:
            right = RedisStore(server.url)
            await right.set(f"{ns}k", b"v")
            assert await right.get(f"{ns}k") == b"v"
            wrong = RedisStore(server.url.replace("right%20pass", "wrong"))
            with pytest.raises(BridgeError) as caught:
                await wrong.get(f"{ns}k")
            assert caught.value.kind is ErrorKind.BACKEND_UNAVAILABLE
            await wrong.close()
        # Stopped: every operation says so, with the library's error chained.
        calls = [
            right.get(f"{ns}k"),
            right.set(f"{ns}k", b"v"),
            right.delete(f"{ns}k"),
            right.get_many([f"{ns}k", f"{ns}j"]),
            right.set_many({f"{ns}k": b"v"}),
            right.delete_many([f"{ns}k"]),
            right.increment(f"{ns}c"),
        ]
        for call in calls:
            with pytest.raises(BridgeError) as caught:
                await call
            assert caught.value.kind is ErrorKind.BACKEND_UNAVAILABLE
            assert caught.value.__cause__ is not None
        await right.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_the_backend_setting_chooses_the_store(tmp_path: Path, redis_server: Any) -> None:
    sqlite = STORES["sqlite"](StateSettings(path=str(tmp_path / "s.sqlite")))
    redis = STORES["redis"](StateSettings(backend="redis", url=redis_server.url))
    try:
        assert isinstance(sqlite, SqliteStore) and isinstance(redis, RedisStore)
    finally:
        await sqlite.close()
        await redis.close()
