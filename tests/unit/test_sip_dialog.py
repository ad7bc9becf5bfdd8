"""Dialogs: identity from both ends, route sets, loose and strict routing, CSeq order."""

from __future__ import annotations

from adapters.sip.dialog import Dialog, response_to
from adapters.sip.headers import Headers
from adapters.sip.message import Request

INVITE = Request(
    headers=Headers()
    .add("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1")
    .add("Record-Route", "<sip:p1.test;lr>")
    .add("Record-Route", "<sip:p2.test;lr>")
    .add("From", '"A" <sip:a@x>;tag=ftag')
    .add("To", "<sip:b@x>")
    .add("Call-ID", "cid")
    .add("CSeq", "10 INVITE")
    .add("Contact", "<sip:a@127.0.0.1:5070>"),
    body=b"",
    method="INVITE",
    uri="sip:b@x",
)


def test_uac_and_uas_views_mirror_each_other() -> None:
    ok = response_to(
        INVITE, 200, to_tag="ttag", headers=Headers().add("Contact", "<sip:b@127.0.0.1:5080>")
    )
    assert ok.headers.values("Record-Route") == ["<sip:p1.test;lr>", "<sip:p2.test;lr>"]
    assert ok.to.tag == "ttag"
    uac = Dialog.as_uac(INVITE, ok)
    uas = Dialog.as_uas(INVITE, "ttag")
    assert uac.id == ("cid", "ftag", "ttag") and uas.id == ("cid", "ttag", "ftag")
    assert uac.route_set == ("<sip:p2.test;lr>", "<sip:p1.test;lr>")  # reversed for the UAC
    assert uas.route_set == ("<sip:p1.test;lr>", "<sip:p2.test;lr>")
    assert uac.remote_target == "sip:b@127.0.0.1:5080"
    assert uas.remote_target == "sip:a@127.0.0.1:5070"

    bye = uac.request("BYE")
    assert bye.uri == "sip:b@127.0.0.1:5080"
    assert bye.headers.values("Route") == ["<sip:p2.test;lr>", "<sip:p1.test;lr>"]
    assert bye.cseq.number == 11 and bye.from_.tag == "ftag" and bye.to.tag == "ttag"
    assert uas.accept_request(bye)
    assert not uas.accept_request(bye)  # the same CSeq again is out of order
    ack = uac.ack(10)
    assert ack.cseq.number == 10 and ack.method == "ACK" and uac.local_seq == 11
    assert uas.accept_request(ack)  # ACK does not move the remote sequence


def test_strict_route_puts_the_route_in_the_request_uri() -> None:
    dialog = Dialog(
        call_id="c", local_tag="l", remote_tag="r",
        local=INVITE.from_.without_tag(), remote=INVITE.to,
        remote_target="sip:b@10.0.0.2", route_set=("<sip:strict.test>", "<sip:p2.test;lr>"),
        local_seq=1,
    )  # fmt: skip
    request = dialog.request("INFO", body=b"x", content_type="text/plain")
    assert request.uri == "sip:strict.test"
    assert request.headers.values("Route") == ["<sip:p2.test;lr>", "<sip:b@10.0.0.2>"]
    assert request.content_type == "text/plain"


def test_target_refresh_and_sent_cseq() -> None:
    dialog = Dialog.as_uas(INVITE, "t")
    reinvite = Request(
        headers=INVITE.headers.with_("CSeq", "11 INVITE").with_("Contact", "<sip:a@10.9.9.9>"),
        body=b"",
        method="INVITE",
        uri="sip:b@x",
    )
    assert dialog.accept_request(reinvite)
    assert dialog.remote_target == "sip:a@10.9.9.9"
    dialog.sent(dialog.request("INFO").with_headers(Headers().add("CSeq", "99999 INFO")))
    assert dialog.local_seq == 99999


def test_response_to_copies_identity_and_skips_tag_on_100() -> None:
    trying = response_to(INVITE, 100, to_tag="t")
    assert trying.to.tag is None and trying.reason == "Trying"
    assert not trying.headers.has("Record-Route")
    assert response_to(INVITE, 486, to_tag="t").to.tag == "t"
