"""RFC 3261 section 17 transactions as pure state machines (with RFC 6026's Accepted state).

A transaction takes events (start, a received message, a fired timer, a TU response) and returns
actions (transmit, start or stop a timer, deliver a response, fail, terminate); the asyncio core
carries them out. No clock and no socket here, so every path is tested by driving events by hand.

Each machine's legal moves are a table keyed by (state, event); an event with no row in the
current state is absorbed, which is exactly what the RFC asks of retransmissions and late
responses. Over a reliable transport the retransmission timers (A, E, G) never start and the
linger timers (D, K, I, J) are zero, so the transaction ends at once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from adapters.sip.headers import Headers
from adapters.sip.message import Message, Request, Response


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 timer bases (section 17.1.1.1, table 4); tests shrink them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    # Timer D: how long an INVITE client transaction absorbs final-response retransmissions.
    d: float = 32.0


DEFAULT_TIMERS = Timers()


class State(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Transmit:
    message: Message


@dataclass(frozen=True, slots=True)
class StartTimer:
    name: str
    delay: float


@dataclass(frozen=True, slots=True)
class StopTimer:
    name: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """A response for the transaction user (client transactions)."""

    response: Response


@dataclass(frozen=True, slots=True)
class Failed:
    """The transaction gave up: "timeout" (B, F, H), "transport", or "no-ack" (2xx never ACKed)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Terminated:
    pass


Action = Transmit | StartTimer | StopTimer | Deliver | Failed | Terminated
Actions = list[Action]
# Table rows hold plain functions of the subclass; `Any` stands for "this machine's class".
TimerHandler = Callable[[Any], Actions]
ResponseHandler = Callable[[Any, Response], Actions]
RequestHandler = Callable[[Any, Request], Actions]


def response_class(status: int) -> str:
    return "1xx" if status < 200 else "2xx" if status < 300 else "final"


class Transaction:
    state: State
    _on_timer: ClassVar[dict[tuple[State, str], TimerHandler]] = {}

    def __init__(self, request: Request, *, reliable: bool, timers: Timers) -> None:
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.branch = request.top_via.branch or ""
        self._interval = timers.t1
        self.last_response: Response | None = None

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def timer(self, name: str) -> Actions:
        handler = self._on_timer.get((self.state, name))
        return handler(self) if handler else []

    def transport_error(self) -> Actions:
        if self.terminated:
            return []
        return self._terminate([Failed("transport")])

    def _terminate(self, actions: Actions) -> Actions:
        self.state = State.TERMINATED
        return [*actions, Terminated()]

    def _linger(self, state: State, timer: str, delay: float, actions: Actions) -> Actions:
        """Enter a state that only absorbs retransmissions; none come over a reliable link."""
        if self.reliable or delay <= 0:
            return self._terminate(actions)
        self.state = state
        return [*actions, StartTimer(timer, delay)]

    def _retransmit(self, message: Message, timer: str, cap: float | None) -> Actions:
        self._interval = self._interval * 2 if cap is None else min(self._interval * 2, cap)
        return [Transmit(message), StartTimer(timer, self._interval)]


# -- client side -------------------------------------------------------------------------------


class ClientTransaction(Transaction):
    _on_response: ClassVar[dict[tuple[State, str], ResponseHandler]]

    def receive(self, response: Response) -> Actions:
        handler = self._on_response.get((self.state, response_class(response.status)))
        return handler(self, response) if handler else []


class ClientNonInvite(ClientTransaction):
    """Figure 6: Trying -> Proceeding -> Completed -> Terminated."""

    def start(self) -> Actions:
        self.state = State.TRYING
        actions: Actions = [Transmit(self.request), StartTimer("F", 64 * self.timers.t1)]
        if not self.reliable:
            actions.append(StartTimer("E", self.timers.t1))
        return actions

    def _provisional(self, response: Response) -> Actions:
        self.state = State.PROCEEDING
        return [Deliver(response)]

    def _final(self, response: Response) -> Actions:
        self.last_response = response
        stop: Actions = [StopTimer("E"), StopTimer("F"), Deliver(response)]
        return self._linger(State.COMPLETED, "K", self.timers.t4, stop)

    def _timer_e(self) -> Actions:
        cap = self.timers.t2
        if self.state is State.PROCEEDING:
            self._interval = cap / 2
        return self._retransmit(self.request, "E", cap)

    def _timer_f(self) -> Actions:
        return self._terminate([StopTimer("E"), Failed("timeout")])

    def _timer_k(self) -> Actions:
        return self._terminate([])

    _on_response: ClassVar[dict[tuple[State, str], ResponseHandler]] = {
        (State.TRYING, "1xx"): _provisional,
        (State.PROCEEDING, "1xx"): _provisional,
        (State.TRYING, "2xx"): _final,
        (State.TRYING, "final"): _final,
        (State.PROCEEDING, "2xx"): _final,
        (State.PROCEEDING, "final"): _final,
    }
    _on_timer: ClassVar[dict[tuple[State, str], TimerHandler]] = {
        (State.TRYING, "E"): _timer_e,
        (State.PROCEEDING, "E"): _timer_e,
        (State.TRYING, "F"): _timer_f,
        (State.PROCEEDING, "F"): _timer_f,
        (State.COMPLETED, "K"): _timer_k,
    }


def ack_for(invite: Request, response: Response) -> Request:
    """The ACK an INVITE client transaction sends for a non-2xx final (section 17.1.1.3)."""
    headers = Headers()
    for name in ("Via", "Route"):
        values = invite.headers.values(name)
        if values:
            headers = (
                headers.add(name, values[0])
                if name == "Via"
                else headers.add(name, ", ".join(values))
            )
    headers = (
        headers.add("Max-Forwards", "70")
        .add("From", invite.headers.get("From") or "")
        .add("To", response.headers.get("To") or "")
        .add("Call-ID", invite.call_id)
        .add("CSeq", f"{invite.cseq.number} ACK")
    )
    return Request(headers=headers, body=b"", method="ACK", uri=invite.uri)


class ClientInvite(ClientTransaction):
    """Figure 5 with RFC 6026: Calling -> Proceeding -> Accepted | Completed -> Terminated."""

    def start(self) -> Actions:
        self.state = State.CALLING
        actions: Actions = [Transmit(self.request), StartTimer("B", 64 * self.timers.t1)]
        if not self.reliable:
            actions.append(StartTimer("A", self.timers.t1))
        return actions

    def _provisional(self, response: Response) -> Actions:
        self.state = State.PROCEEDING
        return [StopTimer("A"), Deliver(response)]

    def _success(self, response: Response) -> Actions:
        # The 2xx's ACK is the dialog's (end to end); we stay to pass on retransmissions.
        self.state = State.ACCEPTED
        return [
            StopTimer("A"),
            StopTimer("B"),
            Deliver(response),
            StartTimer("M", 64 * self.timers.t1),
        ]

    def _success_again(self, response: Response) -> Actions:
        return [Deliver(response)]

    def _failure(self, response: Response) -> Actions:
        self.last_response = response
        actions: Actions = [
            StopTimer("A"),
            StopTimer("B"),
            Transmit(ack_for(self.request, response)),
        ]
        return self._linger(State.COMPLETED, "D", self.timers.d, [*actions, Deliver(response)])

    def _failure_again(self, response: Response) -> Actions:
        return [Transmit(ack_for(self.request, response))]

    def _timer_a(self) -> Actions:
        return self._retransmit(self.request, "A", None)

    def _timer_b(self) -> Actions:
        return self._terminate([StopTimer("A"), Failed("timeout")])

    def _timer_end(self) -> Actions:
        return self._terminate([])

    _on_response: ClassVar[dict[tuple[State, str], ResponseHandler]] = {
        (State.CALLING, "1xx"): _provisional,
        (State.PROCEEDING, "1xx"): _provisional,
        (State.CALLING, "2xx"): _success,
        (State.PROCEEDING, "2xx"): _success,
        (State.ACCEPTED, "2xx"): _success_again,
        (State.CALLING, "final"): _failure,
        (State.PROCEEDING, "final"): _failure,
        (State.COMPLETED, "final"): _failure_again,
    }
    _on_timer: ClassVar[dict[tuple[State, str], TimerHandler]] = {
        (State.CALLING, "A"): _timer_a,
        (State.CALLING, "B"): _timer_b,
        (State.ACCEPTED, "M"): _timer_end,
        (State.COMPLETED, "D"): _timer_end,
    }


# -- server side -------------------------------------------------------------------------------


class ServerTransaction(Transaction):
    _on_respond: ClassVar[dict[tuple[State, str], ResponseHandler]]
    _on_request: ClassVar[dict[tuple[State, str], RequestHandler]]

    def respond(self, response: Response) -> Actions:
        """The TU's response; a response after the final one is dropped (returns no actions)."""
        handler = self._on_respond.get((self.state, response_class(response.status)))
        return handler(self, response) if handler else []

    def receive(self, request: Request) -> Actions:
        kind = "ACK" if request.method == "ACK" else "request"
        handler = self._on_request.get((self.state, kind))
        return handler(self, request) if handler else []

    def _resend(self, _request: Request) -> Actions:
        return [Transmit(self.last_response)] if self.last_response is not None else []

    def _send_provisional(self, response: Response) -> Actions:
        self.state = State.PROCEEDING
        self.last_response = response
        return [Transmit(response)]


class ServerNonInvite(ServerTransaction):
    """Figure 8: Trying -> Proceeding -> Completed -> Terminated."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers) -> None:
        super().__init__(request, reliable=reliable, timers=timers)
        self.state = State.TRYING

    def _send_final(self, response: Response) -> Actions:
        self.last_response = response
        return self._linger(State.COMPLETED, "J", 64 * self.timers.t1, [Transmit(response)])

    def _timer_j(self) -> Actions:
        return self._terminate([])

    _on_respond: ClassVar[dict[tuple[State, str], ResponseHandler]] = {
        (State.TRYING, "1xx"): ServerTransaction._send_provisional,
        (State.PROCEEDING, "1xx"): ServerTransaction._send_provisional,
        (State.TRYING, "2xx"): _send_final,
        (State.TRYING, "final"): _send_final,
        (State.PROCEEDING, "2xx"): _send_final,
        (State.PROCEEDING, "final"): _send_final,
    }
    _on_request: ClassVar[dict[tuple[State, str], RequestHandler]] = {
        (State.PROCEEDING, "request"): ServerTransaction._resend,
        (State.COMPLETED, "request"): ServerTransaction._resend,
    }
    _on_timer: ClassVar[dict[tuple[State, str], TimerHandler]] = {(State.COMPLETED, "J"): _timer_j}


class ServerInvite(ServerTransaction):
    """Figure 7 with RFC 6026. The 2xx is retransmitted here (timer G2, the UAS core's job in
    section 13.3.1.4) until the dialog reports its ACK with `acked()`."""

    def __init__(self, request: Request, *, reliable: bool, timers: Timers) -> None:
        super().__init__(request, reliable=reliable, timers=timers)
        self.state = State.PROCEEDING
        self.ack_received = False

    def acked(self) -> Actions:
        if self.state is not State.ACCEPTED or self.ack_received:
            return []
        self.ack_received = True
        return [StopTimer("G2")]

    def _send_success(self, response: Response) -> Actions:
        self.state = State.ACCEPTED
        self.last_response = response
        actions: Actions = [Transmit(response), StartTimer("L", 64 * self.timers.t1)]
        if not self.reliable:
            actions.append(StartTimer("G2", self.timers.t1))
        return actions

    def _send_failure(self, response: Response) -> Actions:
        self.state = State.COMPLETED
        self.last_response = response
        actions: Actions = [Transmit(response), StartTimer("H", 64 * self.timers.t1)]
        if not self.reliable:
            actions.append(StartTimer("G", self.timers.t1))
        return actions

    def _ack(self, _request: Request) -> Actions:
        return self._linger(State.CONFIRMED, "I", self.timers.t4, [StopTimer("G"), StopTimer("H")])

    def _timer_g(self) -> Actions:
        assert self.last_response is not None
        return self._retransmit(self.last_response, "G", self.timers.t2)

    def _timer_g2(self) -> Actions:
        assert self.last_response is not None
        return self._retransmit(self.last_response, "G2", self.timers.t2)

    def _timer_h(self) -> Actions:
        return self._terminate([StopTimer("G"), Failed("timeout")])

    def _timer_l(self) -> Actions:
        failed: Actions = [] if self.ack_received else [Failed("no-ack")]
        return self._terminate([StopTimer("G2"), *failed])

    def _timer_i(self) -> Actions:
        return self._terminate([])

    _on_respond: ClassVar[dict[tuple[State, str], ResponseHandler]] = {
        (State.PROCEEDING, "1xx"): ServerTransaction._send_provisional,
        (State.PROCEEDING, "2xx"): _send_success,
        (State.PROCEEDING, "final"): _send_failure,
    }
    _on_request: ClassVar[dict[tuple[State, str], RequestHandler]] = {
        (State.PROCEEDING, "request"): ServerTransaction._resend,
        (State.COMPLETED, "request"): ServerTransaction._resend,
        (State.COMPLETED, "ACK"): _ack,
    }
    _on_timer: ClassVar[dict[tuple[State, str], TimerHandler]] = {
        (State.COMPLETED, "G"): _timer_g,
        (State.COMPLETED, "H"): _timer_h,
        (State.ACCEPTED, "G2"): _timer_g2,
        (State.ACCEPTED, "L"): _timer_l,
        (State.CONFIRMED, "I"): _timer_i,
    }


def client_key(message: Message) -> tuple[str, str]:
    """Section 17.1.3: a response matches by top Via branch and CSeq method."""
    return message.top_via.branch or "", message.cseq.method


def server_key(request: Request) -> tuple[str, str, str]:
    """Section 17.2.3: branch, sent-by and method, with ACK matching its INVITE."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    host, port = via.sent_by
    return via.branch or "", f"{host}:{port}", method
