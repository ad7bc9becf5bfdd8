"""Wiring and lifecycle: build the adapters from settings, start the listeners, drain on stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

from adapters.caldav import CalDavConnector
from adapters.imap.auth import ImapAuthenticator
from adapters.sip.connector import SipConnector
from bridge.config import ConfigError, DomainSettings, Settings
from bridge.services import DomainServices, Services
from bridge.session.registry import SessionRegistry
from bridge.transport.http import HttpListener
from bridge.transport.tcp import TcpListener
from bridge.transport.tls import server_context
from bridge.transport.xmap_tcp import XmapTcpListener

log = logging.getLogger("bridge")


def _calendars(domain: DomainSettings) -> CalDavConnector | None:
    caldav = domain.caldav
    if not caldav.url:
        return None
    return CalDavConnector(
        caldav.url, timeout=caldav.timeout, default_calendar=caldav.default_calendar
    )


def build_services(settings: Settings) -> Services:
    domains = {
        name.lower(): DomainServices(
            name=name.lower(),
            settings=domain,
            mail=ImapAuthenticator(name.lower(), domain.imap, settings.limits.backend_timeout),
            calendars=_calendars(domain),
            signaling=SipConnector(domain.sip, name.lower()) if domain.sip.host else None,
        )
        for name, domain in settings.domains.items()
    }
    return Services(settings, domains, SessionRegistry(settings.sessions.max_per_user))


class Bridge:
    """The running service: listeners over one Services instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = build_services(settings)
        # Loaded before any listener starts, so a bad certificate stops start-up with a clear
        # message; every TLS listener (and HTTPS) shares it.
        self.tls_context = server_context(settings.tls) if settings.tls.configured else None
        if settings.tcp.tls_port and self.tls_context is None:
            raise ConfigError("tcp.tls_port needs tls.cert_file and tls.key_file")
        self.tcp: TcpListener | None = None
        self.tcp_tls: TcpListener | None = None
        self.http: HttpListener | None = None
        self.xmap: XmapTcpListener | None = None

    async def start(self) -> None:
        if self.settings.tcp.enabled:
            tcp = self.settings.tcp
            starttls = self.tls_context if tcp.starttls else None
            self.tcp = TcpListener(self.services, tcp.host, tcp.port, starttls=starttls)
            await self.tcp.start()
            if tcp.tls_port:
                self.tcp_tls = TcpListener(
                    self.services, tcp.host, tcp.tls_port, tls=self.tls_context
                )
                await self.tcp_tls.start()
        if self.settings.xmap.enabled:
            xmap = self.settings.xmap
            self.xmap = XmapTcpListener(self.services, xmap.host, xmap.port)
            await self.xmap.start()
        if self.settings.http.enabled:
            http = self.settings.http
            https = self.tls_context if http.tls else None
            self.http = HttpListener(self.services, http.host, http.port, https)
            await self.http.start()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self.xmap is not None:
            await self.xmap.stop()
        if self.tcp is not None:
            await self.tcp.stop()
        if self.tcp_tls is not None:
            await self.tcp_tls.stop()
        for session in self.services.sessions.all():
            await session.end()
            self.services.sessions.discard(session)
        await self.services.calendar_pollers.stop()
        for name in self.services.domain_names:
            await self.services.domain(name).mail.close()
        await self.services.state.close()

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
