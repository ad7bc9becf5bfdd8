"""The asyncio driver of the transaction layer: matches messages to transactions, runs timers,
carries out the machines' actions, and hands new requests to the transaction user.

Everything here runs on the event loop thread and nothing awaits while holding state, so the
tables of transactions need no locks. Timers are loop.call_later handles kept per transaction.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from adapters.sip import errors
from adapters.sip.address import MAGIC_COOKIE
from adapters.sip.headers import SipParseError
from adapters.sip.message import Message, Request, Response, serialize
from adapters.sip.transaction import (
    Actions,
    ClientInvite,
    ClientNonInvite,
    ClientTransaction,
    Deliver,
    Failed,
    ServerInvite,
    ServerNonInvite,
    ServerTransaction,
    StartTimer,
    StopTimer,
    Terminated,
    Timers,
    Transmit,
    client_key,
    server_key,
)
from adapters.sip.transport import Address, Transport

log = logging.getLogger("adapters.sip")

BRANCH_BYTES = 10
# Transactions alive at once per user agent; beyond it new requests are refused with 503.
MAX_TRANSACTIONS = 1024

ResponseSink = Callable[[Response], None]
FailureSink = Callable[[str], None]


@dataclass(slots=True, eq=False)
class _Client:
    tx: ClientTransaction
    dest: Address
    on_response: ResponseSink
    on_failure: FailureSink
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class ServerHandle:
    """A received request's server transaction, as the transaction user sees it."""

    tx: ServerTransaction
    source: Address
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    on_failure: FailureSink | None = None

    @property
    def request(self) -> Request:
        return self.tx.request


RequestSink = Callable[[Request, ServerHandle | None, Address], None]


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(BRANCH_BYTES)


class SipCore:
    def __init__(self, timers: Timers, on_request: RequestSink) -> None:
        self.timers = timers
        self.on_request = on_request
        self.transport: Transport | None = None
        self._clients: dict[tuple[str, str], _Client] = {}
        self._servers: dict[tuple[str, str, str], ServerHandle] = {}

    @property
    def reliable(self) -> bool:
        return self.transport is not None and self.transport.reliable

    # -- client side ---------------------------------------------------------------------------

    def start_client(
        self, request: Request, dest: Address, on_response: ResponseSink, on_failure: FailureSink
    ) -> ClientTransaction:
        if len(self._clients) >= MAX_TRANSACTIONS:
            raise errors.too_busy()
        kind = ClientInvite if request.method == "INVITE" else ClientNonInvite
        tx = kind(request, reliable=self.reliable, timers=self.timers)
        entry = _Client(tx, dest, on_response, on_failure)
        self._clients[client_key(request)] = entry
        self._run_client(entry, tx.start())
        return tx

    async def request(
        self,
        request: Request,
        dest: Address,
        on_provisional: ResponseSink | None = None,
        on_response: ResponseSink | None = None,
    ) -> Response:
        """Send through a client transaction and wait for its final response. A 2xx to an INVITE
        that comes again later goes to `on_response` (the dialog re-sends its ACK)."""
        final: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def got(response: Response) -> None:
            if response.provisional:
                if on_provisional is not None:
                    on_provisional(response)
            elif not final.done():
                final.set_result(response)
            elif on_response is not None:
                on_response(response)

        def failed(reason: str) -> None:
            if not final.done():
                final.set_exception(errors.transaction_failed(reason))

        self.start_client(request, dest, got, failed)
        return await final

    def send_stateless(self, message: Message, dest: Address) -> None:
        """Send outside any transaction (the ACK of a 2xx, section 13.2.2.4)."""
        if self.transport is not None:
            self.transport.send(serialize(message), dest)

    def _run_client(self, entry: _Client, actions: Actions) -> None:
        key = (entry.tx.branch, entry.tx.request.cseq.method)
        for action in actions:
            match action:
                case Transmit(message):
                    self.send_stateless(message, entry.dest)
                case Deliver(response):
                    entry.on_response(response)
                case Failed(reason):
                    entry.on_failure(reason)
                case StartTimer(name, delay):
                    self._arm(entry.timers, name, delay, partial(self._client_timer, key, name))
                case StopTimer(name):
                    _disarm(entry.timers, name)
                case Terminated():
                    for handle in entry.timers.values():
                        handle.cancel()
                    if self._clients.get(key) is entry:
                        del self._clients[key]

    def _client_timer(self, key: tuple[str, str], name: str) -> None:
        entry = self._clients.get(key)
        if entry is not None:
            entry.timers.pop(name, None)
            self._run_client(entry, entry.tx.timer(name))

    # -- server side ---------------------------------------------------------------------------

    def respond(self, handle: ServerHandle, response: Response) -> None:
        self._run_server(handle, handle.tx.respond(response))

    def acked(self, handle: ServerHandle) -> None:
        """The dialog saw the ACK of this INVITE's 2xx: stop retransmitting it."""
        if isinstance(handle.tx, ServerInvite):
            self._run_server(handle, handle.tx.acked())

    def invite_for_cancel(self, cancel: Request) -> ServerHandle | None:
        """Section 9.2: the INVITE server transaction a CANCEL names (same branch and sent-by)."""
        key = server_key(cancel)
        return self._servers.get((key[0], key[1], "INVITE"))

    def _response_dest(self, handle: ServerHandle) -> Address:
        if self.reliable:
            return handle.source
        return handle.tx.request.top_via.response_address(handle.source)

    def _run_server(self, handle: ServerHandle, actions: Actions) -> None:
        key = server_key(handle.tx.request)
        for action in actions:
            match action:
                case Transmit(message):
                    self.send_stateless(message, self._response_dest(handle))
                case Failed(reason):
                    if handle.on_failure is not None:
                        handle.on_failure(reason)
                case StartTimer(name, delay):
                    self._arm(handle.timers, name, delay, partial(self._server_timer, key, name))
                case StopTimer(name):
                    _disarm(handle.timers, name)
                case Terminated():
                    for timer in handle.timers.values():
                        timer.cancel()
                    if self._servers.get(key) is handle:
                        del self._servers[key]
                case Deliver():
                    pass

    def _server_timer(self, key: tuple[str, str, str], name: str) -> None:
        handle = self._servers.get(key)
        if handle is not None:
            handle.timers.pop(name, None)
            self._run_server(handle, handle.tx.timer(name))

    # -- input -----------------------------------------------------------------------------------

    def receive(self, message: Message, source: Address) -> None:
        """Called by the transport for every parsed message."""
        try:
            if isinstance(message, Response):
                self._receive_response(message)
            else:
                self._receive_request(message, source)
        except SipParseError as exc:
            log.debug("dropped message without usable Via/CSeq from %s: %s", source, exc)
        except Exception:
            # A fault in a handler must not take the transport's reader down with it.
            log.exception("SIP message from %s:%s not handled", source[0], source[1])

    def _receive_response(self, response: Response) -> None:
        entry = self._clients.get(client_key(response))
        if entry is None:
            log.debug("stray response %s", response.status)
            return
        self._run_client(entry, entry.tx.receive(response))

    def _receive_request(self, request: Request, source: Address) -> None:
        _ = request.call_id, request.cseq, request.from_, request.to  # raise early when missing
        key = server_key(request)
        handle = self._servers.get(key)
        if handle is not None:
            self._run_server(handle, handle.tx.receive(request))
            return
        if request.method == "ACK":
            self.on_request(request, None, source)  # the ACK of a 2xx: the dialog's
            return
        kind = ServerInvite if request.method == "INVITE" else ServerNonInvite
        tx: ServerTransaction = kind(request, reliable=self.reliable, timers=self.timers)
        handle = ServerHandle(tx, source)
        if len(self._servers) >= MAX_TRANSACTIONS:
            self._run_server(handle, tx.respond(errors.busy_response(request)))
            return
        self._servers[key] = handle
        self.on_request(request, handle, source)

    def transport_error(self, dest: Address) -> None:
        for entry in [e for e in self._clients.values() if e.dest == dest]:
            self._run_client(entry, entry.tx.transport_error())

    # -- timers ----------------------------------------------------------------------------------

    @staticmethod
    def _arm(
        table: dict[str, asyncio.TimerHandle], name: str, delay: float, fire: Callable[[], None]
    ) -> None:
        _disarm(table, name)
        table[name] = asyncio.get_running_loop().call_later(delay, fire)

    def close(self) -> None:
        for entry in self._clients.values():
            for handle in entry.timers.values():
                handle.cancel()
            entry.on_failure("closed")
        for server in self._servers.values():
            for timer in server.timers.values():
                timer.cancel()
        self._clients.clear()
        self._servers.clear()


def _disarm(table: dict[str, asyncio.TimerHandle], name: str) -> None:
    handle = table.pop(name, None)
    if handle is not None:
        handle.cancel()
