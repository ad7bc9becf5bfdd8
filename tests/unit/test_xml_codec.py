from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import xml
from bridge.errors import XIMSS_ERRORS, BridgeError, ErrorKind
from bridge.ximss import codec


def test_response_serialization_is_compact_and_ordered() -> None:
    ok = codec.encode(codec.response("A001"))
    assert ok == b'<response id="A001"/>'
    error = codec.encode(codec.response("A002", BridgeError(ErrorKind.UNKNOWN_OPERATION).wire()))
    assert error == b'<response id="A002" errorText="unknown command" errorNum="500"/>'


def test_data_message_skips_none_and_keeps_order() -> None:
    elem = codec.data("mailbox", "x", {"mailbox": "Отчёты", "UIDVALIDITY": 5, "CLASS": None})
    assert codec.encode(elem) == '<mailbox id="x" mailbox="Отчёты" UIDVALIDITY="5"/>'.encode()


def test_nested_serialization_has_no_whitespace() -> None:
    parent = codec.data("features", "1")
    xml.sub(parent, "sasl", text="PLAIN")
    xml.sub(parent, "starttls")
    assert codec.encode(parent) == b'<features id="1"><sasl>PLAIN</sasl><starttls/></features>'


def test_id_is_echoed_whatever_its_form() -> None:
    request = codec.decode('<noop id="a &amp; &lt;b&gt; &quot;q&quot; тест"/>'.encode(), 10)
    assert request.id == 'a & <b> "q" тест'
    assert codec.encode(codec.response(request.id)) == (
        '<response id="a &amp; &lt;b&gt; &quot;q&quot; тест"/>'.encode()
    )


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE x [<!ENTITY a "b">]><noop id="1">&a;</noop>',
        b"<noop id='1'",
        b"",
        b"<a>" * 100 + b"</a>" * 100,
        b'<noop id="\xff"/>',
    ],
)
def test_bad_documents_raise_bad_request(document: bytes) -> None:
    with pytest.raises(BridgeError) as caught:
        codec.decode(document, 64)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_bridge_errors(data: bytes) -> None:
    try:
        codec.decode(data, 64)
    except BridgeError as exc:
        assert exc.kind is ErrorKind.BAD_REQUEST


def test_every_error_kind_has_number_and_text() -> None:
    for kind in ErrorKind:
        wire = XIMSS_ERRORS[kind]
        assert 400 <= wire.num <= 599 and wire.text
