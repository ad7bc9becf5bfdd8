"""Shared helpers of the hostile-client tests: bridges of their own, clients from chosen source
addresses, the in-process bridge's memory, metric samples."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bridge import config, metrics
from bridge.app import Bridge
from bridge.client import XimssClient
from bridge.xmap.client import XmapClient


def rss_mb() -> float:
    """The resident set of this process, which hosts the bridge under test (VmRSS, not the peak:
    a bound that holds shows as a flat line)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def own_bridge(
    settings: config.Settings, *, limits: dict[str, object] | None = None,
    http: dict[str, object] | None = None,
) -> AsyncIterator[Bridge]:  # fmt: skip
    """A bridge of its own (so its limits and throttling touch no other test)."""
    changed = dataclasses.replace(
        settings,
        limits=dataclasses.replace(settings.limits, **(limits or {})),  # type: ignore[arg-type]
        http=dataclasses.replace(settings.http, **(http or {})),  # type: ignore[arg-type]
    )
    async with Bridge(changed) as running:
        yield running


def ports(bridge: Bridge) -> tuple[int, int, str]:
    """XIMSS TCP port, XMAP TCP port, HTTP base URL."""
    assert bridge.tcp is not None and bridge.xmap is not None and bridge.http is not None
    return bridge.tcp.port, bridge.xmap.port, f"http://127.0.0.1:{bridge.http.port}"


async def ximss_from(source: str, port: int) -> XimssClient:
    """A XIMSS client whose connection comes from `source` (any 127.x.y.z on Linux)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return XimssClient(reader, writer, 64 << 20)


async def xmap_from(source: str, port: int) -> XmapClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return XmapClient(reader, writer)
