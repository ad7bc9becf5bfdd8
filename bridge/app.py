"""Wiring and lifecycle: build the adapters from settings, start the listeners, drain on stop.

Signals (`serve`): SIGTERM drains (no new connections, an alert to every XIMSS session,
`server.shutdown_grace` seconds to log out, then `<bye/>` and everything closed); SIGINT does the
same without the grace; a second SIGTERM or SIGINT cuts a running grace short; SIGHUP reloads
the settings file (bridge/reload.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import Final

from adapters.caldav import CalDavConnector
from adapters.imap.auth import ImapAuthenticator
from adapters.sip.connector import SipConnector
from bridge import cluster
from bridge.config import ConfigError, DomainSettings, Settings
from bridge.reload import Reloader
from bridge.services import DomainServices, Services
from bridge.session.registry import SessionRegistry
from bridge.transport.farewell import SHUTDOWN_ALERT, Farewell
from bridge.transport.http import HttpListener
from bridge.transport.tcp import TcpListener
from bridge.transport.tls import server_context
from bridge.transport.xmap_tcp import XmapTcpListener

log = logging.getLogger("bridge")

# After the grace: seconds every session's `<bye/>` and orderly close get, all together.
BYE_WAIT: Final = 5.0
# How often the grace checks whether every session has logged out.
LOGOUT_CHECK: Final = 0.1


def _calendars(domain: DomainSettings) -> CalDavConnector | None:
    caldav = domain.caldav
    if not caldav.url:
        return None
    return CalDavConnector(
        caldav.url, timeout=caldav.timeout, default_calendar=caldav.default_calendar
    )


def build_domain(
    name: str, domain: DomainSettings, backend_timeout: float,
    previous: DomainServices | None = None,
) -> DomainServices:  # fmt: skip
    """One domain's backends. With `previous` (SIGHUP) the parts whose settings did not change
    are kept, so the sessions sharing them (the IMAP change watchers) go on sharing them."""
    name = name.lower()
    if previous is None:
        return DomainServices(
            name=name, settings=domain,
            mail=ImapAuthenticator(name, domain.imap, backend_timeout),
            calendars=_calendars(domain),
            signaling=SipConnector(domain.sip, name) if domain.sip.host else None,
        )  # fmt: skip
    old = previous.settings
    if old == domain:
        return previous
    fresh = build_domain(name, domain, backend_timeout)
    return DomainServices(
        name=name, settings=domain,
        mail=previous.mail if old.imap == domain.imap else fresh.mail,
        calendars=previous.calendars if old.caldav == domain.caldav else fresh.calendars,
        signaling=previous.signaling if old.sip == domain.sip else fresh.signaling,
        # None: Services builds it from the settings.
        provisioner=previous.provisioner if old.provisioning == domain.provisioning else None,
    )  # fmt: skip


def build_services(settings: Settings) -> Services:
    timeout = settings.limits.backend_timeout
    domains = {
        name.lower(): build_domain(name, domain, timeout)
        for name, domain in settings.domains.items()
    }
    return Services(settings, domains, SessionRegistry(settings.sessions.max_per_user))


class Bridge:
    """The running service: listeners over one Services instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = build_services(settings)
        self.services.cluster = cluster.build(settings, self.services.state, self.services.sessions)
        # Loaded before any listener starts, so a bad certificate stops start-up with a clear
        # message; every TLS listener (and HTTPS) shares it.
        self.tls_context = server_context(settings.tls) if settings.tls.configured else None
        if settings.tcp.tls_port and self.tls_context is None:
            raise ConfigError("tcp.tls_port needs tls.cert_file and tls.key_file")
        self.tcp: TcpListener | None = None
        self.tcp_tls: TcpListener | None = None
        self.http: HttpListener | None = None
        self.xmap: XmapTcpListener | None = None
        # Domain backends a SIGHUP replaced: sessions from before it may still use them.
        self.retired: list[DomainServices] = []
        self._stopped = False

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

    async def drain(self, grace: float, hurry: asyncio.Event | None = None) -> None:
        """SIGTERM: take no more connections, alert every XIMSS session, give the clients
        `grace` seconds (less once every session has ended, or once `hurry` is set) to log out,
        then `<bye/>` to each XIMSS session left, and stop."""
        for listener in (self.tcp, self.tcp_tls, self.xmap):
            if listener is not None:
                listener.stop_accepting()
        if self.http is not None:
            await self.http.stop_accepting()
        alerted = self._farewells()
        for farewell in alerted:
            farewell.alert(SHUTDOWN_ALERT)
        log.info("shutting down: %d sessions, %d XIMSS connections alerted, %.1fs to log out",
                 len(self.services.sessions), len(alerted), grace)  # fmt: skip
        await self._wait_for_logouts(grace, hurry)
        remaining = self._farewells()
        if remaining:
            log.info("shutting down: bye to %d XIMSS connections", len(remaining))
            try:
                async with asyncio.timeout(BYE_WAIT):
                    await asyncio.gather(*(f.goodbye() for f in remaining), return_exceptions=True)
            except TimeoutError:
                log.warning("shutting down: some clients did not take their bye in %.0fs", BYE_WAIT)
        await self.stop()

    def _farewells(self) -> list[Farewell]:
        found: list[Farewell] = []
        for listener in (self.tcp, self.tcp_tls, self.http):
            if listener is not None:
                found.extend(listener.farewells())
        return found

    async def _wait_for_logouts(self, grace: float, hurry: asyncio.Event | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while len(self.services.sessions) and loop.time() < deadline:
            if hurry is not None and hurry.is_set():
                return
            await asyncio.sleep(min(LOGOUT_CHECK, max(0.0, deadline - loop.time())))

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
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
        current = [self.services.domain(name) for name in self.services.domain_names]
        closed: set[int] = set()
        for domain in [*current, *self.retired]:
            if id(domain.mail) not in closed:  # a reload may have kept it for several entries
                closed.add(id(domain.mail))
                await domain.mail.close()
        if self.services.cluster is not None:
            await self.services.cluster.close()  # the ended sessions' entries written first
        await self.services.state.close()

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(settings: Settings, config_file: Path | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain (module docstring); SIGHUP reloads `config_file`
    (or the file the environment names, as at start)."""
    stop = asyncio.Event()
    hurry = asyncio.Event()
    grace: list[float] = []
    bridge = Bridge(settings)
    reloader = Reloader(bridge, config_file, build_domain)

    def on_stop(with_grace: bool) -> None:
        if stop.is_set():
            hurry.set()  # a second signal: no more waiting
            return
        grace.append(bridge.settings.server.shutdown_grace if with_grace else 0.0)
        stop.set()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, on_stop, True)
    loop.add_signal_handler(signal.SIGINT, on_stop, False)
    loop.add_signal_handler(signal.SIGHUP, reloader.reload)
    async with bridge:
        # Everything allocated so far lives for the whole run: keep the collector from rescanning
        # it on every cycle (large IMAP responses allocate objects fast enough to trigger many).
        gc.freeze()
        await stop.wait()
        await bridge.drain(grace[0], hurry)
    log.info("stopped")


def install_event_loop_policy() -> None:
    """uvloop when installed: it roughly halves per-message overhead on busy listeners."""
    if sys.platform == "win32":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
