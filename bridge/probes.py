"""`check-config` probes: can this host reach the backends the settings name?

One probe per backend each domain uses, all at once, each bounded by a short timeout: IMAP
(connect, CAPABILITY), SMTP (connect, EHLO, STARTTLS as submissions would), CalDAV (OPTIONS on
the URL: any HTTP answer below 500 means the server is there), SIP (OPTIONS over the configured
transport: any SIP response will do), and Redis (PING) when it holds the state. Nothing logs in:
a probe shows the server answers, not that the accounts work.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import aiohttp
import aiosmtplib
import redis.asyncio as redis

from adapters.imap.client import ImapClient
from bridge.config import (
    CalDavSettings,
    ImapSettings,
    Settings,
    SipSettings,
    SmtpSettings,
    StateSettings,
)
from bridge.errors import BridgeError

DEFAULT_TIMEOUT: Final = 5.0
# Bytes read from a SIP server for its status line.
SIP_READ: Final = 4096


class ProbeFailed(Exception):
    """The server answered, but not as one should."""


@dataclass(frozen=True, slots=True)
class Probe:
    scope: str  # the domain, or "state"
    kind: str  # IMAP, SMTP, CalDAV, SIP, Redis
    target: str
    run: Callable[[float], Awaitable[str]]  # a detail for the ok line


@dataclass(frozen=True, slots=True)
class Result:
    probe: Probe
    error: str | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        p = self.probe
        what = f"{p.scope} {p.kind} {p.target}"
        if self.error is not None:
            return f"failed  {what}: {self.error}"
        return f"ok      {what}" + (f" ({self.detail})" if self.detail else "")


def plan(settings: Settings) -> list[Probe]:
    """The probes the settings call for, domain by domain."""
    probes: list[Probe] = []
    for name, domain in settings.domains.items():
        imap = domain.imap
        probes.append(Probe(name, "IMAP", f"{imap.host}:{imap.port}", _imap(imap)))
        if domain.smtp.host:
            smtp = domain.smtp
            probes.append(Probe(name, "SMTP", f"{smtp.host}:{smtp.port}", _smtp(smtp)))
        if domain.caldav.url:
            probes.append(Probe(name, "CalDAV", domain.caldav.url, _caldav(domain.caldav)))
        if domain.sip.host:
            sip = domain.sip
            target = f"{sip.host}:{sip.port}/{sip.transport}"
            probes.append(Probe(name, "SIP", target, _sip(sip, sip.domain or name)))
    if settings.state.backend == "redis":
        probes.append(
            Probe("state", "Redis", _redacted(settings.state.url), _redis(settings.state))
        )
    return probes


async def run_all(probes: list[Probe], timeout: float = DEFAULT_TIMEOUT) -> list[Result]:
    return list(await asyncio.gather(*(_run(probe, timeout) for probe in probes)))


async def _run(probe: Probe, timeout: float) -> Result:
    try:
        async with asyncio.timeout(timeout):
            detail = await probe.run(timeout)
    except TimeoutError:
        return Result(probe, f"no answer in {timeout:g}s")
    except Exception as exc:  # every failure is a line of the report, never a traceback
        return Result(probe, _reason(exc))
    return Result(probe, None, detail)


def _reason(exc: BaseException) -> str:
    # The underlying error says more than our wrappers ("connection refused", a TLS failure).
    cause = exc.__cause__ if isinstance(exc, BridgeError) and exc.__cause__ else exc
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _redacted(url: str) -> str:
    """A Redis URL without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at and credentials else ''}{host}"


def _imap(settings: ImapSettings) -> Callable[[float], Awaitable[str]]:
    async def probe(timeout: float) -> str:
        client = await ImapClient.connect(
            settings.host, settings.port, security=settings.security,
            connect_timeout=timeout, command_timeout=timeout,
        )  # fmt: skip
        try:
            await client.refresh_capabilities()
            if not client.has("IMAP4REV1") and not client.has("IMAP4REV2"):
                raise ProbeFailed("not an IMAP4rev1 server")
            return f"{len(client.capabilities)} capabilities"
        finally:
            await client.close()

    return probe


def _smtp(settings: SmtpSettings) -> Callable[[float], Awaitable[str]]:
    async def probe(timeout: float) -> str:
        smtp = aiosmtplib.SMTP(hostname=settings.host, port=settings.port, timeout=timeout,
                               start_tls=None if settings.starttls else False)  # fmt: skip
        await smtp.connect()
        try:
            if smtp.last_ehlo_response is None:
                await smtp.ehlo()
            return f"{len(smtp.esmtp_extensions)} extensions"
        finally:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()

    return probe


def _caldav(settings: CalDavSettings) -> Callable[[float], Awaitable[str]]:
    async def probe(timeout: float) -> str:
        limit = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=limit) as http,
            http.options(settings.url, allow_redirects=False) as response,
        ):
            if response.status >= 500:
                raise ProbeFailed(f"HTTP {response.status}")
            return f"HTTP {response.status}"

    return probe


def _sip(settings: SipSettings, domain: str) -> Callable[[float], Awaitable[str]]:
    async def probe(timeout: float) -> str:
        if settings.transport == "tcp":
            return await _sip_tcp(settings, domain)
        return await _sip_udp(settings, domain)

    return probe


def _options(transport: str, local: tuple[str, int], domain: str) -> bytes:
    branch = "z9hG4bK" + secrets.token_hex(8)
    tag = secrets.token_hex(4)
    host, port = local
    return (
        f"OPTIONS sip:{domain} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:{port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:ximss-bridge-probe@{domain}>;tag={tag}\r\n"
        f"To: <sip:{domain}>\r\n"
        f"Call-ID: {secrets.token_hex(12)}@ximss-bridge\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Accept: application/sdp\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode("ascii")


def _status(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode("ascii", "replace")
    parts = line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        raise ProbeFailed("not a SIP response")
    return " ".join(parts[1:])


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def _sip_udp(settings: SipSettings, domain: str) -> str:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Datagrams, remote_addr=(settings.host, settings.port)
    )
    try:
        local = transport.get_extra_info("sockname")
        transport.sendto(_options("UDP", (str(local[0]), int(local[1])), domain))
        return _status(await protocol.answer)
    finally:
        transport.close()


async def _sip_tcp(settings: SipSettings, domain: str) -> str:
    reader, writer = await asyncio.open_connection(settings.host, settings.port)
    try:
        local = writer.get_extra_info("sockname")
        writer.write(_options("TCP", (str(local[0]), int(local[1])), domain))
        await writer.drain()
        data = await reader.readuntil(b"\r\n")
        return _status(data)
    except asyncio.IncompleteReadError as exc:
        raise ProbeFailed("closed without an answer") from exc
    finally:
        writer.close()


def _redis(settings: StateSettings) -> Callable[[float], Awaitable[str]]:
    async def probe(timeout: float) -> str:
        client = redis.from_url(settings.url, socket_connect_timeout=timeout,
                                socket_timeout=timeout)  # fmt: skip
        try:
            if not await client.ping():
                raise ProbeFailed("PING was not answered with PONG")
            return "PONG"
        finally:
            await client.aclose()

    return probe
