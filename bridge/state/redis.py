"""The state store several replicas share: one Redis server (`state.backend = "redis"`).

Keys and values are stored as they are (values are bytes, never decoded). Batches go in chunks,
so a listing of thousands is a few round trips and no single command grows without bound.

Failures: an unreachable server (refused, reset, timed out, a wrong password) raises
BridgeError(BACKEND_UNAVAILABLE); any other Redis error BridgeError(BACKEND_REFUSED); the cause
is chained. Callers already treat the store as fallible (the roster translates every failure to
BACKEND_UNAVAILABLE, login bookkeeping logs and goes on, the rest reaches the front end), and a
BridgeError gives the client a 451 where a foreign exception would give an internal error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from redis import exceptions
from redis.asyncio import BlockingConnectionPool, Redis

from bridge.errors import BridgeError, ErrorKind

# Keys per MGET, MSET or DEL.
BATCH = 500
# Connections per process: commands beyond this many at once wait for one (up to POOL_WAIT s).
DEFAULT_MAX_CONNECTIONS = 32
POOL_WAIT = 10.0
CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 10.0


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (exceptions.ConnectionError, exceptions.TimeoutError, OSError) as exc:
        raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "the state store is unreachable") from exc
    except exceptions.RedisError as exc:
        raise BridgeError(ErrorKind.BACKEND_REFUSED, "the state store refused a change") from exc


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), BATCH):
        yield keys[start : start + BATCH]


class RedisStore:
    def __init__(self, url: str, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        # Nothing connects yet: the first command does (a replica starts while Redis is down).
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=POOL_WAIT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
        )
        self._redis = Redis(connection_pool=self._pool)

    async def get(self, key: str) -> bytes | None:
        with _translated():
            value = await self._redis.get(key)
        return value if isinstance(value, bytes) else None  # never decoded: bytes or None

    async def set(self, key: str, value: bytes) -> None:
        with _translated():
            await self._redis.set(key, value)

    async def delete(self, key: str) -> None:
        with _translated():
            await self._redis.delete(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        with _translated():
            async with self._redis.pipeline(transaction=False) as pipe:
                for chunk in _chunks(wanted):
                    pipe.mget(chunk)
                replies: list[list[bytes | None]] = await pipe.execute()
        values = (value for reply in replies for value in reply)
        return {key: value for key, value in zip(wanted, values, strict=True) if value is not None}

    async def set_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        rows = list(items.items())
        with _translated():
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in range(0, len(rows), BATCH):
                    pipe.mset(dict(rows[start : start + BATCH]))
                await pipe.execute()

    async def delete_many(self, keys: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return
        with _translated():
            async with self._redis.pipeline(transaction=False) as pipe:
                for chunk in _chunks(wanted):
                    pipe.delete(*chunk)
                await pipe.execute()

    async def increment(self, key: str, by: int = 1) -> int:
        with _translated():
            try:
                return int(await self._redis.incrby(key, by))
            except exceptions.ResponseError as exc:
                # Not an integer, or past 64 bits: the Protocol's ValueError for both. Any other
                # refusal (READONLY after a failover, OOM, MISCONF) is the server's trouble.
                if "not an integer" in str(exc) or "overflow" in str(exc):
                    raise ValueError("not a counter") from exc
                raise

    async def close(self) -> None:
        await self._redis.aclose()
        await self._pool.disconnect()
