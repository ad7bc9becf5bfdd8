"""An HTTP session: the conversation of a session that lives across HTTP requests.

`/sync` batches and `/async` requests of one session are processed one at a time (the lock), so
mailbox state stays consistent as on TCP. Replies to `/sync` go straight into that HTTP response;
replies to `/async` and every unsolicited message go to the long-poll outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Final

from adapters.protocols import SaslExchange
from bridge.errors import BridgeError
from bridge.services import Services
from bridge.session.outbox import Outbox
from bridge.session.session import Session
from bridge.transport import farewell
from bridge.transport.tasks import TaskSet
from bridge.ximss import codec
from bridge.ximss.conversation import Conversation
from bridge.ximss.ops.base import Outcome

log = logging.getLogger("bridge.http")

# Shutdown: how long the `<bye/>` waits for a client that is between two polls to poll again.
BYE_POLL_WAIT: Final = 1.0
BYE_POLL_CHECK: Final = 0.05


class HttpBinding:
    def __init__(self, conversation: Conversation, outbox_limit: int) -> None:
        assert conversation.session is not None
        self.conversation = conversation
        self.session: Session = conversation.session
        self.outbox = Outbox(outbox_limit)
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()
        self.polling = 0
        self.ended = False
        self._tasks = TaskSet(f"http-async {self.session.url_id[:6]}")
        conversation.push = self._push

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def _push(self, message: codec.Message) -> None:
        for piece in codec.pieces(message):
            self.outbox.push(piece)

    async def run_batch(
        self, requests: Iterable[codec.Request], trailing_error: BridgeError | None
    ) -> list[bytes]:
        """Process requests in order; return every message they produced, in order."""
        out: list[bytes] = []
        async with self.lock:
            self.touch()
            self.conversation.send = lambda message: out.extend(codec.pieces(message))
            for request in requests:
                if self.ended:
                    break
                outcome = await self.conversation.handle(request)
                if outcome is Outcome.CLOSE:
                    self.ended = True
            if trailing_error is not None:
                self.conversation.reject(None, trailing_error)
            self.conversation.send = self._push
            self.touch()
        return out

    def run_async(self, requests: list[codec.Request], trailing_error: BridgeError | None) -> None:
        """Process in the background; everything produced goes to the long poll."""

        async def work() -> None:
            async with self.lock:
                self.conversation.send = self._push
                for request in requests:
                    if self.ended:
                        return
                    if await self.conversation.handle(request) is Outcome.CLOSE:
                        self.ended = True
                if trailing_error is not None:
                    self.conversation.reject(None, trailing_error)

        self._tasks.spawn(work(), "batch")

    def alert(self, text: str) -> None:
        if not self.ended:
            self.conversation.alert(text)  # to the poll queue, as every unsolicited message

    async def goodbye(self) -> None:
        """Shutdown: `<bye/>` as the last poll reply, then the session ends. A poll that is
        waiting takes it at once; a client between two polls gets BYE_POLL_WAIT to ask."""
        if self.ended:
            return
        self.conversation.unsolicited(farewell.bye())
        for _ in range(int(BYE_POLL_WAIT / BYE_POLL_CHECK)):
            if self.polling:
                break
            await asyncio.sleep(BYE_POLL_CHECK)
        await asyncio.sleep(0)  # the waiting poll takes the bye; an ended binding keeps it
        await self.session.end()

    async def close(self) -> None:
        """End the binding and its session (bye, KILL, expiry, shutdown)."""
        self.ended = True
        self.outbox.close()
        await self._tasks.cancel_all()
        await self.conversation.close()


class PendingNonce:
    """A CRAM-MD5 login begun by an HTTP listFeatures: the IMAP exchange waits for the answer."""

    __slots__ = ("domain", "exchange", "expires")

    def __init__(self, exchange: SaslExchange, domain: str, expires: float) -> None:
        self.exchange = exchange
        self.domain = domain
        self.expires = expires


class HttpState:
    """Every live HTTP binding by urlID, the pending CRAM-MD5 nonces, and their expiry."""

    MAX_NONCES = 256
    NONCE_LIFETIME = 60.0

    def __init__(self, services: Services) -> None:
        self.services = services
        self.bindings: dict[str, HttpBinding] = {}
        self.nonces: dict[str, PendingNonce] = {}
        self._sweeper: asyncio.Task[None] | None = None
        # WebSocket conversations, for the shutdown drain.
        self.sockets: set[farewell.Farewell] = set()

    def farewells(self) -> list[farewell.Farewell]:
        return [*self.bindings.values(), *self.sockets]

    def add(self, binding: HttpBinding) -> None:
        self.bindings[binding.session.url_id] = binding

        async def end_from_outside() -> None:
            await self.end(binding)

        binding.session.ender = end_from_outside

    def get(self, url_id: str) -> HttpBinding | None:
        binding = self.bindings.get(url_id)
        if binding is None or binding.ended or binding.session.closed:
            return None
        return binding

    async def end(self, binding: HttpBinding) -> None:
        self.bindings.pop(binding.session.url_id, None)
        binding.session.ender = None
        await binding.close()

    async def add_nonce(self, nonce: str, exchange: SaslExchange, domain: str) -> None:
        while len(self.nonces) >= self.MAX_NONCES:
            oldest = next(iter(self.nonces))
            await self.nonces.pop(oldest).exchange.abort()
        self.nonces[nonce] = PendingNonce(exchange, domain, time.monotonic() + self.NONCE_LIFETIME)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="http-session-sweeper")

    async def _sweep(self) -> None:
        while True:
            default = self.services.settings.http.session_idle_timeout  # SIGHUP may change it
            # A session's setSessionOption idleTimeout replaces the listener's limit; a sweep
            # a second (a walk over the bindings) notices one set meanwhile soon enough.
            shortest = min(
                (b.session.idle_timeout or default for b in self.bindings.values()),
                default=default,
            )
            await asyncio.sleep(min(1.0, max(0.2, shortest / 4)))
            now = time.monotonic()
            for binding in list(self.bindings.values()):
                timeout = binding.session.idle_timeout or default
                idle = binding.polling == 0 and now - binding.last_used > timeout
                if idle or binding.outbox.overflowed:
                    log.info(
                        "session=%s ended: %s",
                        binding.session.url_id[:6],
                        "idle" if idle else "long-poll backlog over its limit",
                    )
                    await self.end(binding)
            for nonce, pending in list(self.nonces.items()):
                if pending.expires < now:
                    del self.nonces[nonce]
                    await pending.exchange.abort()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for binding in list(self.bindings.values()):
            await self.end(binding)
        for pending in self.nonces.values():
            await pending.exchange.abort()
        self.nonces.clear()
