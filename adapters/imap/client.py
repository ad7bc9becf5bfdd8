"""The asyncio driver for one IMAP connection: pipelined tagged commands over the sans-IO wire.

Commands are written in order under one lock (a synchronizing literal holds it until the server's
`+` arrives, so no other bytes interleave). A single reader task parses every response and routes
it: a tagged reply completes its command; an untagged reply goes to the oldest command in flight
that declared it wants that kind (ESEARCH goes by its TAG correlator); anything else is an
unsolicited event (EXISTS, EXPUNGE, FETCH FLAGS...) handed to the owner's callback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from adapters.imap import errors
from adapters.imap.wire import (
    Arg,
    Atom,
    Continuation,
    ProtocolError,
    Response,
    ResponseParser,
    Tagged,
    Untagged,
    encode_command,
)
from bridge import metrics
from bridge.errors import BridgeError, ErrorKind

log = logging.getLogger("adapters.imap")

READ_CHUNK = 256 * 1024
Security = Literal["none", "starttls", "tls"]
UnsolicitedHandler = Callable[[Untagged], None]


@dataclass(slots=True)
class Result:
    tagged: Tagged
    untagged: list[Untagged]

    def of(self, kind: str) -> list[Untagged]:
        return [item for item in self.untagged if item.kind == kind]


@dataclass(slots=True, eq=False)
class _InFlight:
    tag: str
    wants: frozenset[str]
    done: asyncio.Future[Tagged]
    untagged: list[Untagged] = field(default_factory=list)


class ImapClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: ResponseParser,
        *,
        command_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = parser
        self._command_timeout = command_timeout
        self._in_flight: list[_InFlight] = []
        self._send_lock = asyncio.Lock()
        # Untagged FETCH replies name no command, and Dovecot may interleave those of pipelined
        # FETCHes: commands that want them run one at a time on a connection.
        self._fetch_lock = asyncio.Lock()
        self._continuation: asyncio.Future[Continuation] | None = None
        self._counter = 0
        self._read_task: asyncio.Task[None] | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.on_unsolicited: UnsolicitedHandler | None = None
        # Sees every untagged response first, whichever command it then goes to.
        self.on_untagged: UnsolicitedHandler | None = None
        self.closed = False
        # The mailbox this connection has selected, kept by whoever selects.
        self.selected: str | None = None
        # Extensions ENABLEd on this connection (RFC 5161), so each is enabled once.
        self.enabled: set[str] = set()

    # -- connection lifecycle -------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        security: Security = "none",
        connect_timeout: float = 10.0,
        command_timeout: float = 60.0,
        max_literal: int = 64 << 20,
    ) -> ImapClient:
        context = ssl.create_default_context() if security != "none" else None
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=context if security == "tls" else None, limit=READ_CHUNK
                )
                client = cls(
                    reader, writer, ResponseParser(max_literal=max_literal),
                    command_timeout=command_timeout,
                )  # fmt: skip
                greeting = await client._read_greeting()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise errors.unavailable() from exc
        client._start_reader()
        if greeting.code is not None and greeting.code.name == "CAPABILITY":
            client.capabilities = _capability_set(greeting.code.args)
        else:
            await client.refresh_capabilities()
        if security == "starttls":
            await client._starttls(context, host)
        return client

    async def _read_greeting(self) -> Untagged:
        while True:
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                raise ConnectionError("closed before greeting")
            for response in self._parser.feed(chunk):
                if isinstance(response, Untagged) and response.kind in ("OK", "PREAUTH"):
                    return response
                raise ConnectionError("server refused the connection")

    async def _starttls(self, context: ssl.SSLContext | None, host: str) -> None:
        if "STARTTLS" not in self.capabilities:
            raise errors.unavailable("IMAP server does not offer STARTTLS")
        await self.execute("STARTTLS")
        assert context is not None
        # The reader task must not read the first TLS bytes as IMAP: stop it, upgrade, restart.
        await self._stop_reader()
        await self._writer.start_tls(context, server_hostname=host)
        self._start_reader()
        await self.refresh_capabilities()

    def _start_reader(self) -> None:
        self._read_task = asyncio.create_task(self._read_loop(), name="imap-reader")

    async def _stop_reader(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._read_task
            self._read_task = None

    async def refresh_capabilities(self) -> None:
        result = await self.execute("CAPABILITY", wants=("CAPABILITY",))
        for item in result.of("CAPABILITY"):
            self.capabilities = _capability_set(item.values)

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    async def close(self) -> None:
        """LOGOUT politely if possible, then drop the socket. Never raises."""
        if self.closed:
            return
        with contextlib.suppress(BridgeError, OSError):
            async with asyncio.timeout(2):
                await self.execute("LOGOUT", check=False)
        self._shutdown(errors.unavailable("connection closed"))
        await self._stop_reader()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def _shutdown(self, reason: BridgeError) -> None:
        if not self.closed:
            self.closed = True
            self._writer.close()
        for item in self._in_flight:
            if not item.done.done():
                item.done.set_exception(reason)
        self._in_flight.clear()
        if self._continuation is not None and not self._continuation.done():
            self._continuation.set_exception(reason)

    # -- reading ------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = errors.unavailable()
        try:
            while True:
                chunk = await self._reader.read(READ_CHUNK)
                if not chunk:
                    break
                for response in self._parser.feed(chunk):
                    self._route(response)
        except ProtocolError:
            log.warning("IMAP protocol error from server; dropping the connection")
        except OSError:
            pass
        finally:
            self._shutdown(reason)

    def _route(self, response: Response) -> None:
        if isinstance(response, Tagged):
            self._complete(response)
        elif isinstance(response, Continuation):
            if self._continuation is not None and not self._continuation.done():
                self._continuation.set_result(response)
        else:
            self._deliver(response)

    def _complete(self, tagged: Tagged) -> None:
        for index, item in enumerate(self._in_flight):
            if item.tag == tagged.tag:
                del self._in_flight[index]
                if tagged.code is not None and tagged.code.name == "CAPABILITY":
                    self.capabilities = _capability_set(tagged.code.args)
                if not item.done.done():
                    item.done.set_result(tagged)
                return
        log.debug("tagged reply for unknown tag %s", tagged.tag)

    def _deliver(self, untagged: Untagged) -> None:
        if self.on_untagged is not None:
            self.on_untagged(untagged)
        target: _InFlight | None = None
        if untagged.kind == "ESEARCH":
            target = self._by_correlator(untagged)
        else:
            target = next((i for i in self._in_flight if untagged.kind in i.wants), None)
        if target is not None:
            target.untagged.append(untagged)
        elif untagged.kind == "CAPABILITY":
            self.capabilities = _capability_set(untagged.values)
        elif self.on_unsolicited is not None:
            self.on_unsolicited(untagged)

    def _by_correlator(self, untagged: Untagged) -> _InFlight | None:
        first = untagged.values[0] if untagged.values else None
        if isinstance(first, list) and len(first) == 2 and str(first[0]).upper() == "TAG":
            tag = first[1].decode() if isinstance(first[1], bytes) else str(first[1])
            return next((i for i in self._in_flight if i.tag == tag), None)
        return next((i for i in self._in_flight if "ESEARCH" in i.wants), None)

    # -- commands -----------------------------------------------------------------------

    def _next_tag(self) -> str:
        self._counter += 1
        return f"B{self._counter}"

    async def execute(
        self,
        name: str,
        *args: Arg,
        wants: Iterable[str] = (),
        check: bool = True,
        timeout: float | None = None,
    ) -> Result:
        """Send one command and wait for its tagged reply; NO/BAD raise unless check=False."""
        if self.closed:
            raise errors.unavailable()
        wanted = frozenset(w.upper() for w in wants)
        if "FETCH" in wanted:
            async with self._fetch_lock:
                return await self._execute(name, args, wanted, check, timeout)
        return await self._execute(name, args, wanted, check, timeout)

    async def _execute(
        self, name: str, args: Sequence[Arg], wanted: frozenset[str], check: bool,
        timeout: float | None,
    ) -> Result:  # fmt: skip
        tag = self._next_tag()
        loop = asyncio.get_running_loop()
        item = _InFlight(tag, wanted, loop.create_future())
        segments = encode_command(tag, name, list(args), literal_plus=self.has("LITERAL+"))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout or self._command_timeout):
                await self._send(item, segments)
                tagged = await item.done
        except TimeoutError as exc:
            # A command with no reply leaves the connection in an unknown state: drop it.
            self._shutdown(errors.unavailable())
            metrics.BACKEND_ERRORS.labels("imap", "timeout").inc()
            raise BridgeError(ErrorKind.TIMEOUT) from exc
        except BridgeError:
            metrics.BACKEND_ERRORS.labels("imap", "connection").inc()
            raise
        finally:
            metrics.BACKEND_SECONDS.labels("imap").observe(time.perf_counter() - started)
        metrics.BACKEND_COMMANDS.labels("imap", name, tagged.status).inc()
        if check and tagged.status != "OK":
            log.debug("IMAP %s failed: %s %s", name, tagged.status, tagged.text)
            raise errors.command_failed(
                tagged.status, tagged.code.name if tagged.code else None, tagged.text
            )
        return Result(tagged, item.untagged)

    async def _send(self, item: _InFlight, segments: Sequence[bytes]) -> None:
        async with self._send_lock:
            self._in_flight.append(item)
            try:
                for index, segment in enumerate(segments):
                    if index:
                        await self._await_continuation(item)
                    self._writer.write(segment)
                    if index < len(segments) - 1:
                        self._continuation = asyncio.get_running_loop().create_future()
                await self._writer.drain()
            except OSError as exc:
                self._shutdown(errors.unavailable())
                raise errors.unavailable() from exc

    async def _await_continuation(self, item: _InFlight) -> Continuation:
        assert self._continuation is not None
        await self._writer.drain()
        waiter = self._continuation
        done, _ = await asyncio.wait((waiter, item.done), return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            # The server answered the command before accepting the literal (a NO): stop sending.
            waiter.cancel()
            raise errors.command_failed("NO", None, "literal refused")
        return waiter.result()

    async def authenticate(self, mechanism: str) -> SaslTurn:
        """Start AUTHENTICATE; the caller reads the first challenge and answers through the turn."""
        tag = self._next_tag()
        loop = asyncio.get_running_loop()
        item = _InFlight(tag, frozenset(), loop.create_future())
        self._continuation = loop.create_future()
        await self._send(item, [f"{tag} AUTHENTICATE {mechanism}\r\n".encode()])
        return SaslTurn(self, item)

    async def login(self, user: str, password: str) -> None:
        await self.execute("LOGIN", user, password)

    async def idle(self, stop: asyncio.Event, max_seconds: float) -> None:
        """IDLE (RFC 2177) until `stop` is set or max_seconds pass (servers drop IDLE after
        30 minutes), then DONE. What the server pushes meanwhile goes to `on_unsolicited`."""
        if not self.has("IDLE"):
            raise BridgeError(ErrorKind.NOT_SUPPORTED, "the IMAP server has no IDLE")
        tag = self._next_tag()
        loop = asyncio.get_running_loop()
        item = _InFlight(tag, frozenset(), loop.create_future())
        self._continuation = loop.create_future()
        await self._send(item, [f"{tag} IDLE\r\n".encode()])
        try:
            async with asyncio.timeout(self._command_timeout):
                await self._await_continuation(item)
        except TimeoutError as exc:
            self._shutdown(errors.unavailable())
            raise BridgeError(ErrorKind.TIMEOUT) from exc
        waiter = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((waiter, item.done), timeout=max_seconds,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            waiter.cancel()
        if item.done.done():
            item.done.result()  # the server ended IDLE itself (or the connection dropped)
            return
        try:
            self._writer.write(b"DONE\r\n")
            async with asyncio.timeout(self._command_timeout):
                await self._writer.drain()
                await item.done
        except (OSError, TimeoutError) as exc:
            self._shutdown(errors.unavailable())
            raise errors.unavailable() from exc


class SaslTurn:
    """An AUTHENTICATE in progress: one challenge out, one response in."""

    def __init__(self, client: ImapClient, item: _InFlight) -> None:
        self._client = client
        self._item = item

    async def challenge(self) -> bytes:
        async with asyncio.timeout(self._client._command_timeout):
            turn = await self._client._await_continuation(self._item)
        try:
            return base64.b64decode(turn.text.strip(), validate=True)
        except ValueError as exc:
            raise errors.unavailable("IMAP server sent a malformed challenge") from exc

    async def respond(self, response: bytes) -> None:
        client = self._client
        client._writer.write(base64.b64encode(response) + b"\r\n")
        try:
            async with asyncio.timeout(client._command_timeout):
                await client._writer.drain()
                tagged = await self._item.done
        except TimeoutError as exc:
            client._shutdown(errors.unavailable())
            raise BridgeError(ErrorKind.TIMEOUT) from exc
        except OSError as exc:
            raise errors.unavailable() from exc
        if tagged.status != "OK":
            raise errors.command_failed(
                tagged.status, tagged.code.name if tagged.code else None, tagged.text
            )

    async def cancel(self) -> None:
        if not self._item.done.done() and not self._client.closed:
            with contextlib.suppress(OSError):
                self._client._writer.write(b"*\r\n")


def _capability_set(values: Iterable[object]) -> frozenset[str]:
    return frozenset(str(v).upper() for v in values if isinstance(v, str | Atom))
