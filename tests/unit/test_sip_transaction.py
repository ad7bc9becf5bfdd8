"""RFC 3261 section 17 state machines, driven by hand: no clock, no socket."""

from __future__ import annotations

from adapters.sip.dialog import response_to
from adapters.sip.headers import Headers
from adapters.sip.message import Request, Response
from adapters.sip.transaction import (
    ClientInvite,
    ClientNonInvite,
    Deliver,
    Failed,
    ServerInvite,
    ServerNonInvite,
    StartTimer,
    State,
    StopTimer,
    Terminated,
    Timers,
    Transmit,
    ack_for,
    client_key,
    server_key,
)

TIMERS = Timers(t1=0.5, t2=4.0, t4=5.0, d=32.0)


def _request(method: str = "OPTIONS", branch: str = "z9hG4bK1") -> Request:
    headers = (
        Headers()
        .add("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport")
        .add("Route", "<sip:p.test;lr>")
        .add("From", "<sip:a@x>;tag=f")
        .add("To", "<sip:b@x>")
        .add("Call-ID", "c1")
        .add("CSeq", f"7 {method}")
    )
    return Request(headers=headers, body=b"", method=method, uri="sip:b@x")


def _response(request: Request, status: int) -> Response:
    return response_to(request, status, to_tag="t" if status > 100 else None)


def _started(actions: list[object]) -> dict[str, float]:
    return {a.name: a.delay for a in actions if isinstance(a, StartTimer)}


def test_client_non_invite_retransmits_with_backoff_capped_at_t2() -> None:
    tx = ClientNonInvite(_request(), reliable=False, timers=TIMERS)
    actions = tx.start()
    assert actions[0] == Transmit(tx.request)
    assert _started(actions) == {"E": 0.5, "F": 32.0}
    delays = []
    for _ in range(5):
        fired = tx.timer("E")
        assert fired[0] == Transmit(tx.request)
        delays.append(_started(fired)["E"])
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]
    # In Proceeding, E restarts at T2.
    assert tx.receive(_response(tx.request, 100)) == [Deliver(_response(tx.request, 100))]
    assert tx.state is State.PROCEEDING
    assert _started(tx.timer("E")) == {"E": 4.0}
    final = _response(tx.request, 200)
    actions = tx.receive(final)
    assert Deliver(final) in actions and StopTimer("E") in actions and StopTimer("F") in actions
    assert _started(actions) == {"K": 5.0} and tx.state is State.COMPLETED
    assert tx.receive(final) == []  # retransmission absorbed
    assert tx.timer("E") == []  # a late timer has no row
    assert tx.timer("K") == [Terminated()] and tx.terminated


def test_client_non_invite_timeout_and_reliable_transport() -> None:
    tx = ClientNonInvite(_request(), reliable=True, timers=TIMERS)
    assert _started(tx.start()) == {"F": 32.0}  # no retransmissions over TCP
    assert tx.timer("F") == [StopTimer("E"), Failed("timeout"), Terminated()]
    tx = ClientNonInvite(_request(), reliable=True, timers=TIMERS)
    tx.start()
    actions = tx.receive(_response(tx.request, 404))
    assert actions[-1] == Terminated()  # timer K is zero over TCP


def test_client_invite_failure_generates_ack() -> None:
    invite = _request("INVITE")
    tx = ClientInvite(invite, reliable=False, timers=TIMERS)
    assert _started(tx.start()) == {"A": 0.5, "B": 32.0}
    assert _started(tx.timer("A")) == {"A": 1.0}
    assert _started(tx.timer("A")) == {"A": 2.0}  # A doubles without a cap
    ringing = _response(invite, 180)
    assert tx.receive(ringing) == [StopTimer("A"), Deliver(ringing)]
    assert tx.timer("B") == []  # B only matters while Calling
    busy = _response(invite, 486)
    actions = tx.receive(busy)
    ack = ack_for(invite, busy)
    assert Transmit(ack) in actions and Deliver(busy) in actions
    assert _started(actions) == {"D": 32.0}
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert ack.cseq.number == 7 and ack.cseq.method == "ACK"
    assert ack.top_via.branch == "z9hG4bK1" and ack.to.tag == "t"
    assert ack.headers.values("Route") == ["<sip:p.test;lr>"]
    assert tx.receive(busy) == [Transmit(ack)]  # retransmitted final: ACK again
    assert tx.timer("D") == [Terminated()]


def test_client_invite_success_passes_retransmissions_to_the_tu() -> None:
    tx = ClientInvite(_request("INVITE"), reliable=True, timers=TIMERS)
    tx.start()
    ok = _response(tx.request, 200)
    actions = tx.receive(ok)
    assert Deliver(ok) in actions and _started(actions) == {"M": 32.0}
    assert tx.state is State.ACCEPTED
    assert tx.receive(ok) == [Deliver(ok)]
    assert tx.timer("M") == [Terminated()]


def test_client_invite_timer_b() -> None:
    tx = ClientInvite(_request("INVITE"), reliable=False, timers=TIMERS)
    tx.start()
    assert tx.timer("B") == [StopTimer("A"), Failed("timeout"), Terminated()]
    assert tx.transport_error() == []


def test_server_non_invite_absorbs_and_repeats() -> None:
    request = _request()
    tx = ServerNonInvite(request, reliable=False, timers=TIMERS)
    assert tx.receive(request) == []  # nothing to repeat yet
    trying = _response(request, 100)
    assert tx.respond(trying) == [Transmit(trying)]
    assert tx.receive(request) == [Transmit(trying)]
    ok = _response(request, 200)
    assert tx.respond(ok) == [Transmit(ok), StartTimer("J", 32.0)]
    assert tx.receive(request) == [Transmit(ok)]
    assert tx.respond(_response(request, 500)) == []  # after the final nothing goes
    assert tx.timer("J") == [Terminated()]


def test_server_invite_failure_waits_for_ack() -> None:
    invite = _request("INVITE")
    tx = ServerInvite(invite, reliable=False, timers=TIMERS)
    ringing = _response(invite, 180)
    assert tx.respond(ringing) == [Transmit(ringing)]
    assert tx.receive(invite) == [Transmit(ringing)]
    busy = _response(invite, 486)
    assert _started(tx.respond(busy)) == {"H": 32.0, "G": 0.5}
    assert [_started(tx.timer("G"))["G"] for _ in range(5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert tx.receive(invite) == [Transmit(busy)]
    ack = ack_for(invite, busy)
    assert _started(tx.receive(ack)) == {"I": 5.0} and tx.state is State.CONFIRMED
    assert tx.receive(ack) == []
    assert tx.timer("I") == [Terminated()]


def test_server_invite_timer_h_without_ack() -> None:
    tx = ServerInvite(_request("INVITE"), reliable=True, timers=TIMERS)
    assert _started(tx.respond(_response(tx.request, 603))) == {"H": 32.0}
    assert tx.timer("H") == [StopTimer("G"), Failed("timeout"), Terminated()]


def test_server_invite_retransmits_2xx_until_acked() -> None:
    invite = _request("INVITE")
    tx = ServerInvite(invite, reliable=False, timers=TIMERS)
    ok = _response(invite, 200)
    assert _started(tx.respond(ok)) == {"L": 32.0, "G2": 0.5}
    assert tx.timer("G2")[0] == Transmit(ok)
    assert tx.receive(invite) == []  # Accepted absorbs INVITE retransmissions
    assert tx.acked() == [StopTimer("G2")]
    assert tx.acked() == []
    assert tx.timer("L") == [StopTimer("G2"), Terminated()]
    unacked = ServerInvite(invite, reliable=False, timers=TIMERS)
    unacked.respond(ok)
    assert Failed("no-ack") in unacked.timer("L")


def test_transaction_keys() -> None:
    invite = _request("INVITE")
    assert client_key(_response(invite, 180)) == ("z9hG4bK1", "INVITE")
    ack = ack_for(invite, _response(invite, 486))
    assert server_key(ack) == server_key(invite) == ("z9hG4bK1", "127.0.0.1:5070", "INVITE")
    cancel = _request("CANCEL")
    assert server_key(cancel)[2] == "CANCEL"
