"""Session-wide fixtures: the real dev stack on free loopback ports, and a bridge in this process.

Each fixture stops exactly what it started. Tests that need their own clean account ask for
`fresh_account`, so tests never see each other's mailboxes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from bridge import config
from bridge.app import Bridge
from bridge.client import XimssClient

REPO = Path(__file__).resolve().parent.parent


def _load_devstack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("devstack", REPO / "deploy" / "devstack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["devstack"] = module
    spec.loader.exec_module(module)
    return module


devstack = _load_devstack()
redis_server_module = devstack._load_sibling("redis_server")


@pytest.fixture(scope="session")
def stack() -> Iterator[devstack.DevStack]:
    # Not below pytest's tmp_path: that is mode 0700 and Dovecot's mail processes run as vmail.
    # Short, too: Dovecot's unix sockets live below the root and paths are capped at 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="xb-stack-"))
    root.chmod(0o755)
    try:
        with devstack.DevStack(root, devstack.free_stack_ports()) as running:
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[redis_server_module.RedisServer]:
    """A private redis-server for the whole run (its `url` is a state.url); tests keep to keys
    of their own, as they share it."""
    root = Path(tempfile.mkdtemp(prefix="xb-redis-"))
    try:
        with redis_server_module.RedisServer(root, devstack.free_ports(1)[0]) as running:
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(stack: devstack.DevStack) -> config.Settings:
    loaded = config.loads(stack.bridge_config_toml(0, http_port=0, xmap_port=0))
    # Every bridge of the run shares one state file in the stack's scratch folder.
    state = config.StateSettings(path=str(stack.root / "bridge-state.sqlite"))
    return dataclasses.replace(loaded, state=state)


@pytest.fixture(scope="session")
async def bridge(settings: config.Settings) -> AsyncIterator[Bridge]:
    async with Bridge(settings) as running:
        yield running


@pytest.fixture(scope="session")
def bridge_port(bridge: Bridge) -> int:
    assert bridge.tcp is not None
    return bridge.tcp.port


@pytest.fixture(scope="session")
def xmap_port(bridge: Bridge) -> int:
    assert bridge.xmap is not None
    return bridge.xmap.port


@pytest.fixture(scope="session")
def http_url(bridge: Bridge) -> str:
    assert bridge.http is not None
    return f"http://127.0.0.1:{bridge.http.port}"


@pytest.fixture
async def client(bridge_port: int) -> AsyncIterator[XimssClient]:
    connection = await XimssClient.connect("127.0.0.1", bridge_port)
    yield connection
    await connection.close()


@pytest.fixture
def fresh_account(stack: devstack.DevStack) -> devstack.Account:
    return stack.new_account()


@pytest.fixture
async def user_client(
    bridge_port: int, fresh_account: devstack.Account
) -> AsyncIterator[tuple[XimssClient, devstack.Account]]:
    connection = await XimssClient.connect("127.0.0.1", bridge_port)
    await connection.login(fresh_account.address, fresh_account.password)
    yield connection, fresh_account
    await connection.close()
