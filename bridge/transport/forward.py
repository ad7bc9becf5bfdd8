"""Forwarding `/Session/<urlID>/...` to the replica that holds the session.

A replica asked about a session it does not hold looks the owner up in the session directory
(bridge/cluster.py) and relays the request there: method, path and query as received, the
end-to-end headers, the body streamed; the answer comes back the same way (status, headers, body
streamed), so a long poll waits as long as the owner makes it wait and a download never sits in
memory.

`X-Bridge-Forwarded: <replica>` marks a relayed request; one carrying it is never relayed again
(two replicas each believing the other holds a session would bounce it forever). A client can
send the header too: all it can do is make its own request answer 550, never reach anything.

An owner that refuses the connection (the replica died: a draining replica keeps its socket
open until its sessions end) loses its entry and the request answers 550, which tells XIMSS
clients to log in again, on any replica. One that does not answer the connection in time may be
only busy: the request answers 503 and the entry stays. A relayed answer must start within the
longest poll a client may ask for, plus a margin, or the request answers 550.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bridge.transport.http_common import session_gone

if TYPE_CHECKING:
    from bridge.cluster import Owner, SessionDirectory

log = logging.getLogger("bridge.cluster")

FORWARDED = "X-Bridge-Forwarded"
# Seconds to reach the owner's listener: on a LAN a live replica answers in well under one.
CONNECT_TIMEOUT = 3.0
RELAY_CHUNK = 1 << 16
# Seconds beyond the longest long poll a relayed answer may take to send its next bytes.
READ_MARGIN = 30.0
# Headers of one connection, not of the request (RFC 9110 7.6.1), and what the relay sets itself.
_HOP_BY_HOP = frozenset(
    name.lower()
    for name in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
        "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host", FORWARDED,
        # Answered by this replica's server already (100 Continue); the owner gets the body.
        "Expect",
    )
)  # fmt: skip


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in _HOP_BY_HOP:
            out.add(name, value)
    return out


class Forwarder:
    def __init__(self, directory: SessionDirectory, max_poll_wait: float = 120.0) -> None:
        self.directory = directory
        self._read_timeout = max_poll_wait + READ_MARGIN
        self._client: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession(
                # A new connection per request: a pooled one the owner has just closed for
                # idleness would fail like a dead owner, and make us forget a live session.
                connector=aiohttp.TCPConnector(limit=0, force_close=True),
                # A long poll answers after its maxWait: reads may wait that long, no longer.
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=CONNECT_TIMEOUT, sock_read=self._read_timeout
                ),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._client

    async def handle(self, request: web.Request, url_id: str) -> web.StreamResponse:
        """The answer for a session this replica does not hold."""
        me = self.directory.me
        if FORWARDED in request.headers:
            # Relayed to us as the owner, and we do not hold it: an entry naming us is stale.
            owner = await self.directory.owner(url_id)
            if owner is not None and owner.address == me.address:
                await self.directory.forget(url_id)
            return session_gone()
        owner = await self.directory.owner(url_id)
        if owner is None:
            return session_gone()
        if owner.address == me.address:
            # Recorded by this replica in an earlier run: that session died with it.
            await self.directory.forget(url_id)
            return session_gone()
        return await self._relay(request, owner, url_id)

    async def _relay(self, request: web.Request, owner: Owner, url_id: str) -> web.StreamResponse:
        headers = _end_to_end(request.headers)
        headers[FORWARDED] = self.directory.me.replica
        # The path and query only (an absolute-form request target names a host of its own).
        url = URL(f"http://{owner.address}{request.rel_url.raw_path_qs}", encoded=True)
        body = request.content if request.body_exists else None
        try:
            upstream_cm = self._session().request(
                request.method, url, headers=headers, data=body, allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )  # fmt: skip
            async with upstream_cm as upstream:
                return await self._answer(request, upstream)
        except aiohttp.ConnectionTimeoutError:
            log.warning("session=%s owner %s (%s) did not answer in time",
                        url_id[:6], owner.replica, owner.address)  # fmt: skip
            return web.Response(status=503, text="the session's replica is busy, retry\n",
                                headers={"Retry-After": "1"})  # fmt: skip
        except aiohttp.ClientConnectorError:
            log.warning("session=%s owner %s (%s) unreachable: entry dropped",
                        url_id[:6], owner.replica, owner.address)  # fmt: skip
            await self.directory.forget(url_id)
            return session_gone()
        except aiohttp.ClientError as exc:
            # Reached, then lost before it answered (it may have died): the client logs in again;
            # the entry goes when a later request finds the owner unreachable.
            log.warning("session=%s owner %s failed: %s", url_id[:6], owner.replica,
                        type(exc).__name__)  # fmt: skip
            return session_gone()

    async def _answer(
        self, request: web.Request, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=_end_to_end(upstream.headers)
        )
        started = False
        try:
            async for chunk in upstream.content.iter_chunked(RELAY_CHUNK):
                if not started:
                    await response.prepare(request)
                    started = True
                await response.write(chunk)
        except aiohttp.ClientError as exc:
            if not started:
                raise
            # Half an answer already went out: only a cut connection tells the client so.
            raise ConnectionResetError("the owning replica went away mid-answer") from exc
        if not started:
            await response.prepare(request)
        await response.write_eof()
        return response

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
