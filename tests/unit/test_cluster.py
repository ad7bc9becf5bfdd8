"""The session directory and the forwarder's decisions that need no second replica."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from types import SimpleNamespace
from typing import cast

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.test_utils import make_mocked_request

from bridge import config
from bridge.cluster import PREFIX, Owner, SessionDirectory, build
from bridge.session.registry import SessionRegistry
from bridge.state.memory import MemoryStore
from bridge.transport.forward import FORWARDED, Forwarder
from tests.conftest import devstack

ME = Owner("127.0.0.1:8100", "replica1")
URL_ID = "123456-abcdefghijklmnopqrstuvwx"


def session(url_id: str = URL_ID, transport: str = "http") -> SimpleNamespace:
    return SimpleNamespace(url_id=url_id, transport=transport, account="a@example.test",
                           closed=False)  # fmt: skip


def wired(store: MemoryStore) -> tuple[SessionDirectory, SessionRegistry]:
    directory = SessionDirectory(store, ME)
    registry = SessionRegistry()
    registry.observers.append(directory)
    return directory, registry


class SlowSets(MemoryStore):
    """A store whose writes of entries take a while: a removal must still land last."""

    async def set(self, key: str, value: bytes) -> None:
        await asyncio.sleep(0.05)
        await super().set(key, value)


async def test_a_session_is_recorded_while_it_lives() -> None:
    store = MemoryStore()
    directory, registry = wired(store)
    one = session()
    registry.add(one)  # type: ignore[arg-type]
    await directory.settle()
    assert json.loads(store.data[PREFIX + URL_ID]) == {"address": ME.address, "replica": ME.replica}
    assert await directory.owner(URL_ID) == ME
    registry.discard(one)  # type: ignore[arg-type]
    await directory.settle()
    assert store.data == {}


async def test_an_end_right_after_the_start_is_written_after_it() -> None:
    store = SlowSets()
    directory, registry = wired(store)
    one = session()
    registry.add(one)  # type: ignore[arg-type]
    registry.discard(one)  # type: ignore[arg-type]
    await directory.settle()
    assert store.data == {}


async def test_xmap_sessions_and_odd_ids_never_reach_the_store() -> None:
    store = MemoryStore()
    directory, registry = wired(store)
    registry.add(session("654321-xmapsession", "xmap"))  # type: ignore[arg-type]
    registry.add(session("654322-xmaphttp", "xmap-http"))  # type: ignore[arg-type]
    await directory.settle()
    assert store.data == {}
    store.data[PREFIX + "../x"] = b'{"address": "a", "replica": "b"}'
    assert await directory.owner("../x") is None
    assert await directory.owner("x" * 65) is None


async def test_a_damaged_entry_is_no_owner() -> None:
    store = MemoryStore()
    directory = SessionDirectory(store, ME)
    store.data[PREFIX + URL_ID] = b"not json"
    assert await directory.owner(URL_ID) is None


async def test_forwarder_decisions_without_relaying() -> None:
    store = MemoryStore()
    forwarder = Forwarder(SessionDirectory(store, ME))
    path = f"/Session/{URL_ID}/sync"
    other = json.dumps({"address": "127.0.0.1:8200", "replica": "replica2"}).encode()
    mine = json.dumps({"address": ME.address, "replica": ME.replica}).encode()
    try:
        # No entry: gone.
        assert (await forwarder.handle(make_mocked_request("GET", path), URL_ID)).status == 550
        # Already forwarded (or a client saying so): never relayed again, another's entry kept.
        store.data[PREFIX + URL_ID] = other
        spoofed = make_mocked_request("GET", path, headers={FORWARDED: "replica9"})
        assert (await forwarder.handle(spoofed, URL_ID)).status == 550
        assert PREFIX + URL_ID in store.data
        # An entry naming this replica, which does not hold the session: from an earlier run.
        store.data[PREFIX + URL_ID] = mine
        assert (await forwarder.handle(spoofed, URL_ID)).status == 550
        assert PREFIX + URL_ID not in store.data
        store.data[PREFIX + URL_ID] = mine
        assert (await forwarder.handle(make_mocked_request("GET", path), URL_ID)).status == 550
        assert PREFIX + URL_ID not in store.data
        # An owner nobody answers for: the entry goes, the client logs in again.
        dead = json.dumps(
            {"address": f"127.0.0.1:{devstack.free_ports(1)[0]}", "replica": "replica3"}
        )
        store.data[PREFIX + URL_ID] = dead.encode()
        assert (await forwarder.handle(make_mocked_request("GET", path), URL_ID)).status == 550
        assert PREFIX + URL_ID not in store.data
    finally:
        await forwarder.close()


async def test_build_checks_the_advertised_address() -> None:
    base = config.Settings()
    registry = SessionRegistry()
    assert build(base, MemoryStore(), registry) is None

    def clustered(advertise: str, **http: object) -> config.Settings:
        return dataclasses.replace(
            base,
            cluster=config.ClusterSettings(replica_id="r1", advertise=advertise),
            http=dataclasses.replace(base.http, **http),  # type: ignore[arg-type]
        )

    for bad in ("nohost", ":8100", "host:x", "host:70000"):
        with pytest.raises(config.ConfigError):
            build(clustered(bad), MemoryStore(), registry)
    for http in ({"tls": True}, {"enabled": False}):
        with pytest.raises(config.ConfigError):
            build(clustered("10.0.0.5:8100", **http), MemoryStore(), registry)
    made = build(clustered("10.0.0.5:8100"), MemoryStore(), registry)
    assert made is not None and made.me == Owner("10.0.0.5:8100", "r1")
    assert registry.observers == [made.directory]
    await made.close()
    assert registry.observers == []


async def test_a_trailing_newline_is_no_url_id() -> None:
    store = MemoryStore()
    directory = SessionDirectory(store, ME)
    store.data[PREFIX + URL_ID + "\n"] = json.dumps({"address": "a:1", "replica": "b"}).encode()
    assert await directory.owner(URL_ID + "\n") is None
    await directory.forget(URL_ID + "\n")
    assert PREFIX + URL_ID + "\n" in store.data  # never used as a key


class _Refusing:
    """A client session whose requests fail as aiohttp fails them, before any answer."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def request(self, *args: object, **kwargs: object) -> object:
        raise self.error


async def test_a_busy_owner_keeps_its_entry_and_a_dead_one_loses_it() -> None:
    store = MemoryStore()
    forwarder = Forwarder(SessionDirectory(store, ME))
    path = f"/Session/{URL_ID}/get"
    other = json.dumps({"address": "127.0.0.1:8200", "replica": "replica2"}).encode()
    store.data[PREFIX + URL_ID] = other
    busy = _Refusing(aiohttp.ConnectionTimeoutError("no accept in time"))
    forwarder._session = lambda: busy  # type: ignore[assignment, method-assign, return-value]
    answer = await forwarder.handle(make_mocked_request("GET", path), URL_ID)
    assert answer.status == 503 and answer.headers["Retry-After"] == "1"
    assert PREFIX + URL_ID in store.data  # only slow: the session lives on
    key = cast(ConnectionKey, SimpleNamespace(ssl=None, host="h", port=1))
    dead = _Refusing(aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused")))
    forwarder._session = lambda: dead  # type: ignore[assignment, method-assign, return-value]
    answer = await forwarder.handle(make_mocked_request("GET", path), URL_ID)
    assert answer.status == 550
    assert PREFIX + URL_ID not in store.data
