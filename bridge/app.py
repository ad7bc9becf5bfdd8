"""Wiring and lifecycle: build the adapters from settings, start the listeners, drain on stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

from adapters.imap.auth import ImapAuthenticator
from bridge.config import Settings
from bridge.services import DomainServices, Services
from bridge.session.registry import SessionRegistry
from bridge.transport.http import HttpListener
from bridge.transport.tcp import TcpListener

log = logging.getLogger("bridge")


def build_services(settings: Settings) -> Services:
    domains = {
        name.lower(): DomainServices(
            name=name.lower(),
            settings=domain,
            mail=ImapAuthenticator(name.lower(), domain.imap, settings.limits.backend_timeout),
        )
        for name, domain in settings.domains.items()
    }
    return Services(settings, domains, SessionRegistry(settings.sessions.max_per_user))


class Bridge:
    """The running service: listeners over one Services instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = build_services(settings)
        self.tcp: TcpListener | None = None
        self.http: HttpListener | None = None

    async def start(self) -> None:
        if self.settings.tcp.enabled:
            self.tcp = TcpListener(self.services, self.settings.tcp.host, self.settings.tcp.port)
            await self.tcp.start()
        if self.settings.http.enabled:
            http = self.settings.http
            self.http = HttpListener(self.services, http.host, http.port)
            await self.http.start()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self.tcp is not None:
            await self.tcp.stop()
        for session in self.services.sessions.all():
            await session.end()
            self.services.sessions.discard(session)

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then stop listeners and end every session."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Bridge(settings):
        # Everything allocated so far lives for the whole run: keep the collector from rescanning
        # it on every cycle (large IMAP responses allocate objects fast enough to trigger many).
        gc.freeze()
        await stop.wait()
        log.info("shutting down")


def install_event_loop_policy() -> None:
    """uvloop when installed: it roughly halves per-message overhead on busy listeners."""
    if sys.platform == "win32":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
