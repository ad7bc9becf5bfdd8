"""One XMAP client, whatever carries it: login, then commands in order, each with one Reply.

On TCP the client logs in with `<LOGIN UserName Password/>` before anything else (DESIGN.md
section 6); the HTTP binding logs in with HTTP Basic through `login`. A logged-in XMAP client is
a bridge session like any other: counted against the account's session limit, ended by shutdown,
KILL and killOld, and its mail reached through the same adapters as XIMSS. Every failure becomes
the ERROR element; nothing a client sends raises out of `handle`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from adapters.smtp.submit import SmtpSubmitter
from bridge import metrics, throttle
from bridge.errors import BridgeError, ErrorKind
from bridge.services import Services
from bridge.session.session import Credentials, Session
from bridge.session.uploads import UploadSet
from bridge.ximss.ops.login import split_account
from bridge.ximss.ops.prefs import record_failed_login
from bridge.xmap import codec, dispatch, responses
from bridge.xmap import commands as c
from bridge.xmap.account import Reply, XmapAccount, acked
from bridge.xmap.errors import CodecError, error_for
from bridge.xmap.framing import Event
from bridge.xmap.pool import MailboxPool

log = logging.getLogger("bridge.xmap")


class XmapConversation:
    def __init__(
        self,
        services: Services,
        *,
        peer: str,
        transport: str,
        ender: Callable[[], Awaitable[None]] | None = None,
        password_allowed: bool = True,
    ) -> None:
        self.services = services
        # False on a listener that must not carry passwords in clear text.
        self._password_allowed = password_allowed
        self.peer = peer
        self.transport = transport
        self._ender = ender
        self.account: XmapAccount | None = None
        self.failed_logins = 0

    @property
    def session(self) -> Session | None:
        return self.account.session if self.account is not None else None

    async def handle(self, event: Event) -> Reply:
        """The reply to one decoded frame (a Malformed one gets its ERROR)."""
        command_name = ""
        try:
            command = codec.decode(event, max_items=codec.MAX_BATCH_ITEMS)
            command_name = command.COMMAND
            return await self.run(command)
        except BridgeError as exc:
            return Reply(error_for(exc, command_name))
        except Exception:
            log.exception("peer=%s XMAP %s failed", self.peer, command_name or "command")
            return Reply(error_for(BridgeError(ErrorKind.INTERNAL), command_name))

    async def run(self, command: c.Command) -> Reply:
        if isinstance(command, c.Login):
            if self.account is not None:
                raise CodecError(command.COMMAND, ErrorKind.ALREADY_LOGGED_IN)
            if not self._password_allowed:
                raise CodecError(command.COMMAND, ErrorKind.PERMISSION, "LOGIN requires TLS")
            try:
                await self.login(command.user_name, command.password)
            except BridgeError as exc:
                if exc.kind is ErrorKind.AUTH_FAILED:
                    self.failed_logins += 1
                raise
            assert self.account is not None
            return acked(responses.Ack(command.COMMAND, user_name=self.account.session.account))
        if self.account is None or self.account.session.closed:
            raise CodecError(command.COMMAND, ErrorKind.NOT_LOGGED_IN)
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await dispatch.run(self.account, command)
        except BridgeError as exc:
            outcome = exc.kind.value
            raise CodecError(command.COMMAND, exc.kind, exc.detail) from exc
        finally:
            metrics.REQUESTS.labels(self.transport, command.COMMAND, outcome).inc()
            metrics.REQUEST_SECONDS.labels(command.COMMAND).observe(time.perf_counter() - started)

    async def login(self, user: str, password: str) -> None:
        """A password login; AUTH_FAILED (and the rest) as BridgeError."""
        name, user_domain = split_account(user, self.services.settings.server.default_domain)
        backend = self.services.domain(user_domain)
        account = f"{name}@{backend.name}"
        limiter = throttle.for_services(self.services)
        # TCP peers are "host:port", HTTP ones the bare host.
        address = throttle.client_address(self.peer, with_port=self.transport == "xmap")
        try:
            limiter.check(account, address, self.transport)
            store = await backend.mail.login(account, password)
        except BridgeError as exc:
            metrics.LOGINS.labels(self.transport, exc.kind.value).inc()
            if exc.kind is ErrorKind.AUTH_FAILED:
                limiter.failed(account, address)
                await record_failed_login(self.services.state, account, self.peer)
            raise
        limiter.succeeded(account)
        sessions = self.services.sessions
        try:
            await sessions.make_room(account, kill_old=False)
        except BaseException:
            await store.close()
            raise
        smtp = backend.settings.smtp
        http = self.services.settings.http
        session = Session(
            account=account,
            domain=backend.name,
            real_name=backend.settings.real_names.get(name),
            mail=store,
            uploads=UploadSet(http.max_upload_bytes, http.max_uploads_total_bytes),
            transport=self.transport,
            submitter=SmtpSubmitter(smtp, account, password) if smtp.host else None,
            credentials=Credentials(password),
            ender=self._ender,
        )
        settings = self.services.settings
        self.account = XmapAccount(
            session,
            self.services.xmap_handles.for_account(account),
            MailboxPool(store, settings.xmap.open_mailboxes),
            settings.limits.max_message_bytes,
        )
        sessions.add(session)
        metrics.LOGINS.labels(self.transport, "ok").inc()

    async def close(self) -> None:
        account, self.account = self.account, None
        if account is None:
            return
        await account.close()
        await account.session.close()
        self.services.sessions.discard(account.session)
