"""The HTTP listener: XIMSS HTTP binding, WebSocket, health and metrics on one port.

Paths are matched case-insensitively by our own small table (clients send `/XIMSSLogin/` and
`/ximsslogin/` alike), and every session URL answers HTTP 550 once its session is unknown or ended,
which is how XIMSS HTTP clients learn to log in again.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from bridge import logs, metrics
from bridge.errors import BridgeError, ErrorKind
from bridge.services import Services
from bridge.transport import farewell, http_login, http_session, websocket, xmap_http
from bridge.transport.http_binding import HttpState
from bridge.transport.http_common import HttpContext, xml_response

log = logging.getLogger("bridge.http")

# Seconds a login's answer waits for its session directory entry to be written.
LOGIN_SETTLE = 2.0

# At stop, seconds requests still being handled get to finish before they are cancelled.
STOP_WAIT: Final = 5.0

Handler = Callable[[HttpContext, web.Request, list[str]], Awaitable[web.StreamResponse]]


async def healthz(ctx: HttpContext, request: web.Request, rest: list[str]) -> web.StreamResponse:
    return web.Response(text="ok\n")


async def readyz(ctx: HttpContext, request: web.Request, rest: list[str]) -> web.StreamResponse:
    try:
        async with asyncio.timeout(5):
            await ctx.services.domain(None).mail.probe()
    except (BridgeError, TimeoutError):
        return web.Response(status=503, text="not ready: mail backend unreachable\n")
    return web.Response(text="ready\n")


async def metrics_endpoint(
    ctx: HttpContext, request: web.Request, rest: list[str]
) -> web.StreamResponse:
    return web.Response(
        body=metrics.exposition(), content_type="text/plain", charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )  # fmt: skip


# First path segment, lower-cased -> handler and the endpoint label for metrics.
ROUTES: dict[str, tuple[Handler, str]] = {
    "ximsslogin": (http_login.handle, "login"),
    "session": (http_session.handle, "session"),
    "ximss": (websocket.handle, "websocket"),
    "healthz": (healthz, "health"),
    "readyz": (readyz, "health"),
    "metrics": (metrics_endpoint, "metrics"),
    "xmap": (xmap_http.handle, "xmap"),
}


class HttpListener:
    def __init__(
        self, services: Services, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.services = services
        self.state = HttpState(services)
        self.ctx = HttpContext(services, self.state)
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        # Shutdown drain: the socket is closed; requests on open connections that are not for
        # a live session answer 503.
        self.draining = False

    @property
    def port(self) -> int:
        assert self._runner is not None
        for address in self._runner.addresses:
            return int(address[1])
        raise RuntimeError("not listening")

    def _app(self) -> web.Application:
        settings = self.services.settings.http
        # aiohttp's own cap is the larger of the two limits; each endpoint enforces its own.
        app = web.Application(
            client_max_size=max(settings.max_body_bytes, settings.max_upload_bytes) + 65536,
            middlewares=[self._middleware],
        )
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        endpoint = _endpoint(request.path)
        logs.bind_peer(request.remote or "-")
        if self.draining and endpoint.partition("/")[0] != "session":
            response: web.StreamResponse = web.Response(
                status=503, text="shutting down\n", headers={"Connection": "close"}
            )
        elif request.method == "OPTIONS":
            response = web.Response(status=204)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                # Returned, not raised, so the CORS headers and metrics below apply to it too.
                response = web.Response(status=exc.status, reason=exc.reason, text=exc.text)
            except BridgeError as exc:
                response = xml_response(None, exc, status=_status_for(exc))
        self._cors(request, response)
        metrics.HTTP_REQUESTS.labels(endpoint, str(response.status)).inc()
        log.debug("%s %s -> %d in %.1f ms", request.method, endpoint, response.status,
                  (time.perf_counter() - started) * 1000)  # fmt: skip
        return response

    def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        allowed = self.services.settings.http.cors_origins
        origin = request.headers.get("Origin")
        if not allowed or origin is None or response.prepared:
            return
        if "*" in allowed or origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = (
                request.headers.get("Access-Control-Request-Headers")
                or "Content-Type, Authorization"
            )
            response.headers["Access-Control-Max-Age"] = "600"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [part for part in request.path.split("/") if part]
        head = parts[0].lower() if parts else ""
        route = ROUTES.get(head)
        if route is None:
            raise web.HTTPNotFound(text="not found\n")
        response = await route[0](self.ctx, request, parts[1:])
        if head == "ximsslogin" and self.services.cluster is not None:
            # Answered once others can find it (a hung store delays a login by at most this).
            await self.services.cluster.directory.settle(timeout=LOGIN_SETTLE)
        return response

    async def start(self) -> None:
        settings = self.services.settings.http
        self._runner = web.AppRunner(
            self._app(), access_log=None, handle_signals=False,
            keepalive_timeout=settings.read_timeout, shutdown_timeout=STOP_WAIT,
        )  # fmt: skip
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner, self._host, self._port, ssl_context=self._ssl,
            reuse_address=True, backlog=512,
        )  # fmt: skip
        await self._site.start()
        self.state.start()
        log.info("HTTP listening on %s:%d%s", self._host, self.port, " (TLS)" if self._ssl else "")

    async def stop_accepting(self) -> None:
        """Shutdown drain: everything but a live session's requests answers 503 from now on.
        A single bridge also closes its socket (its sessions go on polling on open
        connections); a replica keeps it open, as the others relay its sessions' requests to it
        on new connections and would take a refused one for a dead replica."""
        self.draining = True
        if self._site is not None and self.services.cluster is None:
            await self._site.stop()
            self._site = None

    def farewells(self) -> list[farewell.Farewell]:
        return self.state.farewells()

    async def stop(self) -> None:
        await self.state.stop()
        await xmap_http.stop(self.state)
        if self._runner is not None:
            await self._runner.cleanup()


def _endpoint(path: str) -> str:
    parts = [part for part in path.split("/") if part]
    head = parts[0].lower() if parts else ""
    route = ROUTES.get(head)
    if route is None:
        return "other"
    if head == "session" and len(parts) >= 3:
        return (
            f"session/{parts[2].lower()}" if parts[2].lower() in http_session.ACTIONS else "session"
        )
    return route[1]


# Failures outside a session's XML conversation, as HTTP statuses.
STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.AUTH_FAILED: 401,
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.LIMIT: 413,
    ErrorKind.UNKNOWN_DOMAIN: 404,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_SUPPORTED: 501,
    ErrorKind.BACKEND_UNAVAILABLE: 503,
    ErrorKind.TIMEOUT: 504,
}


def _status_for(error: BridgeError) -> int:
    return STATUS_BY_KIND.get(error.kind, 500)
