"""Pure parts of the signaling operations: DTMF codes and peer addresses."""

from __future__ import annotations

import pytest

from bridge.errors import BridgeError, ErrorKind
from bridge.ximss.ops.signaling import DTMF_CODES, DTMF_DIGITS, sip_target


def test_dtmf_codes_follow_the_spec_both_ways() -> None:
    assert DTMF_DIGITS["10"] == "*" and DTMF_DIGITS["11"] == "#"
    assert [DTMF_DIGITS[str(n)] for n in range(10)] == list("0123456789")
    assert DTMF_CODES["*"] == "10" and DTMF_CODES["#"] == "11" and DTMF_CODES["7"] == "7"
    assert DTMF_CODES["A"] == "12"  # RFC 4733 events beyond the keypad keep distinct codes


@pytest.mark.parametrize(
    ("peer", "uri"),
    [
        ("user2@example.test", "sip:user2@example.test"),
        ("sip:user2@example.test;transport=tcp", "sip:user2@example.test;transport=tcp"),
        ("tel:+4930123", "tel:+4930123"),
    ],
)
def test_peers_become_request_uris(peer: str, uri: str) -> None:
    assert sip_target(None, peer) == uri  # type: ignore[arg-type]


@pytest.mark.parametrize("peer", ["", "  ", "a b@example.test", "<sip:x@y>", "x@y\r\nVia: z"])
def test_bad_peers_are_refused(peer: str) -> None:
    with pytest.raises(BridgeError) as caught:
        sip_target(None, peer)  # type: ignore[arg-type]
    assert caught.value.kind is ErrorKind.BAD_REQUEST


class _EndedConversation:
    """A conversation whose session has gone: what late SIP events may still find."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    def unsolicited(self, message: object) -> None:
        self.sent.append(message)

    def require_session(self) -> object:
        raise BridgeError(ErrorKind.NOT_LOGGED_IN)


def test_late_call_events_of_an_ended_session_are_dropped_not_raised() -> None:
    from adapters.protocols import TransferProgress, TransferRequested
    from bridge.session.signaling import CallLeg
    from bridge.ximss.ops.signaling import listener

    conv = _EndedConversation()
    leg = CallLeg("c1", object(), incoming=False, peer="sip:x@y")  # type: ignore[arg-type]
    on_event = listener(conv, leg)  # type: ignore[arg-type]
    on_event(TransferRequested("sip:z@y", None, None))  # needs the session: dropped
    on_event(TransferProgress(200, "OK", final=True))
    assert conv.sent == []
