"""Several replicas, one user base: which replica holds which session.

Replicas share one state store (Redis). When a session starts on a clustered replica (one with
`[cluster] advertise` set), `cluster:session:<urlID>` records that replica's HTTP address and
name; when it ends, the entry goes. A replica asked for `/Session/<urlID>/...` of a session it does
not hold looks the owner up here and forwards the request (bridge/transport/forward.py).

One store write at login and one at the end, nothing at start: entries of a replica that died
stay until a request finds the owner unreachable (it deletes them then) or, for a replica started
again at the same address, until a request for one reaches it (it knows it does not hold it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge.config import ClusterSettings, ConfigError, Settings
from bridge.session.registry import SessionRegistry
from bridge.session.session import Session
from bridge.state import Store
from bridge.transport.forward import Forwarder
from bridge.transport.tasks import TaskSet

log = logging.getLogger("bridge.cluster")

PREFIX = "cluster:session:"
# What a urlID may look like before it becomes part of a store key (new_url_id gives
# "123456-" and 24 letters and digits); anything else is unknown everywhere.
_URL_ID = re.compile(r"[A-Za-z0-9-]{1,64}")  # fullmatch: "$" would let a final newline in
# XMAP sessions are never named by a URL: no entry for them.
_UNADDRESSED_TRANSPORTS = ("xmap",)


@dataclass(frozen=True, slots=True)
class Owner:
    """The replica holding a session: where its HTTP listener is reached, and its name."""

    address: str
    replica: str


def replica_name(settings: ClusterSettings) -> str:
    return settings.replica_id or f"{socket.gethostname()}-{os.getpid()}"


def _key(url_id: str) -> str:
    return PREFIX + url_id


def _decode(blob: bytes) -> Owner | None:
    try:
        value = json.loads(blob)
        return Owner(str(value["address"]), str(value["replica"]))
    except (ValueError, KeyError, TypeError):
        return None


class SessionDirectory:
    """The `cluster:session:*` entries of this replica's sessions, kept as sessions come and go.

    Registry observer: `added`/`removed` are called synchronously by the registry and write in
    the background, one task per change; a removal waits for its session's addition, so the two
    writes never land in the wrong order."""

    def __init__(self, store: Store, me: Owner) -> None:
        self.store = store
        self.me = me
        self._tasks = TaskSet("cluster-directory")
        self._pending: dict[str, asyncio.Task[None]] = {}

    def added(self, session: Session) -> None:
        if session.transport.startswith(_UNADDRESSED_TRANSPORTS):
            return
        value = json.dumps({"address": self.me.address, "replica": self.me.replica}).encode()
        key = _key(session.url_id)
        self._write(session.url_id, lambda: self.store.set(key, value), "record")

    def removed(self, session: Session) -> None:
        if session.transport.startswith(_UNADDRESSED_TRANSPORTS):
            return
        key = _key(session.url_id)
        self._write(session.url_id, lambda: self.store.delete(key), "forget")

    def _write(self, url_id: str, write: Callable[[], Awaitable[None]], what: str) -> None:
        before = self._pending.get(url_id)

        async def ordered() -> None:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            try:
                await write()
            except Exception:
                # The store being down costs forwarding for this session, not the session.
                log.warning("session=%s directory %s failed", url_id[:6], what, exc_info=True)

        task = self._tasks.spawn(ordered(), what)
        self._pending[url_id] = task
        task.add_done_callback(lambda done: self._settled(url_id, done))

    def _settled(self, url_id: str, task: asyncio.Task[None]) -> None:
        if self._pending.get(url_id) is task:
            del self._pending[url_id]

    async def settle(self, timeout: float | None = None) -> None:
        """Wait for the writes under way (a login is answered once others can find it), at most
        `timeout` seconds: a store that hangs costs forwarding, not the login."""
        pending = list(self._pending.values())
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*pending, return_exceptions=True)

    async def owner(self, url_id: str) -> Owner | None:
        if not _URL_ID.fullmatch(url_id):
            return None
        blob = await self.store.get(_key(url_id))
        return _decode(blob) if blob is not None else None

    async def forget(self, url_id: str) -> None:
        """Drop an entry whose owner is gone (unreachable, or this replica in an earlier run)."""
        if _URL_ID.fullmatch(url_id):
            await self.store.delete(_key(url_id))

    async def close(self) -> None:
        await self.settle()


class Cluster:
    """This replica's part in a cluster: its identity, the session directory kept from the
    registry, and the forwarder of HTTP requests for sessions other replicas hold."""

    def __init__(
        self,
        settings: ClusterSettings,
        store: Store,
        sessions: SessionRegistry,
        max_poll_wait: float = 120.0,
    ) -> None:
        self.me = Owner(settings.advertise, replica_name(settings))
        self.directory = SessionDirectory(store, self.me)
        self.forwarder = Forwarder(self.directory, max_poll_wait)
        self._sessions = sessions
        sessions.observers.append(self.directory)

    async def close(self) -> None:
        """After every session has ended: their removals are written, the forwarder's
        connections closed."""
        if self.directory in self._sessions.observers:
            self._sessions.observers.remove(self.directory)
        await self.directory.close()
        await self.forwarder.close()


def build(settings: Settings, store: Store, sessions: SessionRegistry) -> Cluster | None:
    """A Cluster when `[cluster] advertise` is set; None for a replica on its own."""
    advertise = settings.cluster.advertise
    if not advertise:
        return None
    host, _, port = advertise.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"cluster.advertise must be host:port, not {advertise!r}")
    # Replicas relay to each other in plain HTTP (inside the cluster's network; clients reach
    # them through the load balancer, which terminates TLS).
    if not settings.http.enabled or settings.http.tls:
        raise ConfigError("cluster.advertise needs a plain-HTTP listener: [http] enabled, no tls")
    return Cluster(settings.cluster, store, sessions, settings.http.max_poll_wait)
