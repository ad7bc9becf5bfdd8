"""The I/O of retrieveXML: resolve, vet (bridge/netguard.py), connect to the vetted addresses only.

Each hop resolves its host once, vets every address, and hands aiohttp a resolver that can only
answer with those addresses, so the connection goes where the check looked (no DNS rebinding),
while the Host header and TLS server name stay the URL's host. Redirects are followed by hand so
each one is checked like the first URL. One deadline covers the whole retrieval, and the body is
read in chunks and abandoned as soon as it passes the size limit.

Every foreign exception is translated here; no library text reaches a client.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bridge import netguard
from bridge.config import RetrieveXmlSettings
from bridge.errors import BridgeError, ErrorKind

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 << 10


class _PinnedResolver(AbstractResolver):
    """Answers for the one vetted host with the vetted addresses, and for nothing else."""

    def __init__(self, host: str, addresses: tuple[netguard.IPAddress, ...]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".").lower() != self._host:
            raise OSError("host was not vetted")
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self._addresses
        ]

    async def close(self) -> None:
        return None


async def _resolve(target: netguard.Target) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "cannot resolve the host") from exc
    return [str(info[4][0]) for info in infos]


async def _hop(
    target: netguard.Target, addresses: tuple[netguard.IPAddress, ...], limits: RetrieveXmlSettings
) -> tuple[int, str | None, bytes]:
    """One GET: (status, Location, body); the body only for a 200 answer."""
    connector = aiohttp.TCPConnector(
        resolver=_PinnedResolver(target.host, addresses), use_dns_cache=False, force_close=True
    )
    async with (
        aiohttp.ClientSession(connector=connector, trust_env=False) as http,
        http.get(
            URL(target.url, encoded=True),
            allow_redirects=False,
            headers={"Accept": "application/xml, text/xml, */*", "Accept-Encoding": "identity"},
        ) as reply,
    ):
        if reply.status != 200:
            return reply.status, reply.headers.get("Location"), b""
        if reply.content_length is not None and reply.content_length > limits.max_bytes:
            raise BridgeError(ErrorKind.LIMIT, "the document is too large")
        body = bytearray()
        async for chunk in reply.content.iter_chunked(CHUNK_BYTES):
            body += chunk
            if len(body) > limits.max_bytes:
                raise BridgeError(ErrorKind.LIMIT, "the document is too large")
        return 200, None, bytes(body)


async def _retrieve(url: str, limits: RetrieveXmlSettings) -> bytes:
    target = netguard.check_url(url, limits.allowlist)
    for hop in range(limits.max_redirects + 1):
        addresses = netguard.vet_addresses(target, await _resolve(target), limits.allow_private)
        status, location, body = await _hop(target, addresses, limits)
        if status == 200:
            return body
        if status not in REDIRECT_STATUSES or not location:
            raise BridgeError(ErrorKind.BACKEND_REFUSED, f"the remote server answered {status}")
        if hop == limits.max_redirects:
            raise BridgeError(ErrorKind.PERMISSION, "the document is redirected elsewhere")
        target = netguard.check_url(urljoin(target.url, location), limits.allowlist)
    raise AssertionError("unreachable")  # the loop returns or raises on its last hop


async def fetch(url: str, limits: RetrieveXmlSettings) -> bytes:
    """The document's bytes; BridgeError with a client-safe text for every refusal or failure."""
    if not limits.enabled:
        raise BridgeError(ErrorKind.PERMISSION, "retrieveXML is disabled on this server")
    try:
        async with asyncio.timeout(limits.timeout):
            return await _retrieve(url, limits)
    except BridgeError:
        raise
    except TimeoutError as exc:
        raise BridgeError(ErrorKind.TIMEOUT, "the remote server did not answer in time") from exc
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        log.info("retrieveXML failed: %s", type(exc).__name__)
        raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "cannot retrieve the document") from exc
