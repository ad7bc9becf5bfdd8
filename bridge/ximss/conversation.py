"""One client's XIMSS conversation, independent of the transport that carries it.

The transport hands in decoded requests one at a time, in arrival order, and gives a sink for
outgoing messages. Each request's data messages go to the sink before its `<response>`, so
pipelined requests are answered in order. A login with a challenge-response SASL method is the one
request whose response waits for a later request (`auth` with the same id); that pending state
lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge import logs, metrics, xml
from bridge.errors import BridgeError, ErrorKind
from bridge.services import Services
from bridge.session.session import Session
from bridge.ximss import codec
from bridge.ximss.dispatch import OPERATIONS
from bridge.ximss.ops import folder as folder_ops
from bridge.ximss.ops.base import Outcome, PendingSasl, Phase

log = logging.getLogger("bridge.ximss")

Sink = Callable[[codec.Message], None]


@dataclass(slots=True, eq=False)
class Conversation:
    services: Services
    # Messages that answer a request (data messages with its id, its response).
    send: Sink
    peer: str = "-"
    # Messages that belong to no request (alerts, notify reports); None sends them with `send`.
    push: Sink | None = None
    # The connection is encrypted (TLS port, after starttls, HTTPS).
    secure: bool = False
    # The transport can upgrade this connection in place: `starttls` is offered.
    starttls_offered: bool = False
    # The transport that carries this conversation, for logs and metrics.
    transport: str = "tcp"
    # The target domain: set by a login-section operation's `domain` attribute.
    domain: str | None = None
    session: Session | None = None
    pending_sasl: dict[str, PendingSasl] = field(default_factory=dict)
    closing: bool = False
    # The login has been logged and the log context set (once per session).
    login_noted: bool = False

    async def handle(self, request: codec.Request) -> Outcome:
        """Process one request completely: its data messages and, unless deferred, its response."""
        if request.id is None:
            self.send(
                codec.response(None, BridgeError(ErrorKind.BAD_REQUEST, "id is missing").wire())
            )
            return Outcome.DONE
        operation = OPERATIONS.get(request.name)
        # Label only with names from the table, so clients cannot grow the metric without bound.
        name = request.name if operation is not None else "unknown"
        started = time.perf_counter()
        outcome_label = "ok"
        try:
            if operation is None:
                raise BridgeError(ErrorKind.UNKNOWN_OPERATION)
            if operation.phase is Phase.SESSION and self.session is None:
                raise BridgeError(ErrorKind.NOT_LOGGED_IN)
            if operation.phase is Phase.PRELOGIN and self.session is not None:
                raise BridgeError(ErrorKind.ALREADY_LOGGED_IN)
            outcome = await operation.handler(self, request)
        except BridgeError as exc:
            outcome_label = exc.kind.value
            self.send(codec.response(request.id, exc.wire()))
            return Outcome.DONE
        except Exception:
            outcome_label = ErrorKind.INTERNAL.value
            # The session lives on; the details go to the log, never to the wire.
            log.exception(
                "internal error peer=%s session=%s op=%s id=%s",
                self.peer,
                self.session.url_id[:6] if self.session else "-",
                request.name,
                request.id,
            )
            self.send(codec.response(request.id, BridgeError(ErrorKind.INTERNAL).wire()))
            return Outcome.DONE
        finally:
            metrics.REQUESTS.labels(self.transport, name, outcome_label).inc()
            metrics.REQUEST_SECONDS.labels(name).observe(time.perf_counter() - started)
        if self.session is not None and not self.login_noted:
            self.note_login()
        if outcome is not Outcome.DEFERRED:
            self.send(codec.response(request.id))
        if outcome is Outcome.CLOSE:
            self.closing = True
        # Outcome.STARTTLS is the transport's to act on after the response has been written.
        return outcome

    def note_login(self) -> None:
        """Log the login and tag the work that follows (this task's log context) with it."""
        session = self.require_session()
        self.login_noted = True
        logs.bind_session(session.url_id, session.account)
        log.info("login account=%s transport=%s peer=%s", session.account, self.transport,
                 self.peer)  # fmt: skip

    def reject(self, request_id: str | None, error: BridgeError) -> None:
        """Answer a request that could not be decoded far enough to dispatch."""
        self.send(codec.response(request_id, error.wire()))

    def unsolicited(self, message: codec.Message) -> None:
        """A data message that belongs to no request (no id): sent at once."""
        (self.push or self.send)(message)

    def alert(self, text: str) -> None:
        self.unsolicited(xml.element("alert", text=text))

    def tls_started(self) -> None:
        """The transport has upgraded the connection to TLS. What the client said before is not
        trusted (anyone on the path could have said it), so the target domain it chose is
        forgotten; `starttls` is refused while a login waits, so no login state carries over."""
        self.secure = True
        self.starttls_offered = False
        self.domain = None

    def require_session(self) -> Session:
        if self.session is None:
            raise BridgeError(ErrorKind.NOT_LOGGED_IN)
        return self.session

    async def close(self) -> None:
        """End the conversation: abort pending logins and end the session."""
        pending, self.pending_sasl = self.pending_sasl, {}
        for item in pending.values():
            await item.exchange.abort()
        session, self.session = self.session, None
        if session is not None:
            session.mail.on_alert(None)
            saving = asyncio.ensure_future(self._save_folders(session))
            try:
                await asyncio.shield(saving)
            except asyncio.CancelledError:
                # A shutdown cancels connections: the views and rows are still worth keeping.
                await saving
                raise
            finally:
                self.services.sessions.discard(session)
                await session.close()

    async def _save_folders(self, session: Session) -> None:
        for folder in session.folders.all():
            with contextlib.suppress(Exception):
                await folder_ops.save(self, folder, rows=True)
