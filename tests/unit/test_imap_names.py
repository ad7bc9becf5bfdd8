"""Modified UTF-7 mailbox names: known vectors, round trips, and strict rejection."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.imap.names import decode_mutf7, encode_mutf7

VECTORS = [
    ("INBOX", "INBOX"),
    ("", ""),
    ("&", "&-"),
    ("a&b", "a&-b"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("台北", "&U,BTFw-"),
    ("Отчёты", "&BB4EQgRHBFEEQgRL-"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("😀", "&2D3eAA-"),
    ("ä&", "&AOQ-&-"),
    ("tab\there", "tab&AAk-here"),
]


@pytest.mark.parametrize(("text", "wire"), VECTORS)
def test_known_vectors(text: str, wire: str) -> None:
    assert encode_mutf7(text) == wire
    assert decode_mutf7(wire) == text


@given(st.text())
def test_round_trip_any_text(text: str) -> None:
    wire = encode_mutf7(text)
    assert wire.isascii()
    assert all(" " <= ch <= "~" for ch in wire)
    assert decode_mutf7(wire) == text


@given(st.text(alphabet=st.sampled_from("&-&-aZ09+,/ .ÄU")))
def test_encoding_is_canonical(text: str) -> None:
    wire = encode_mutf7(text)
    assert encode_mutf7(decode_mutf7(wire)) == wire


@given(st.text(alphabet=st.sampled_from("&-AOQUBTFwZ+,x. \x7f")))
def test_decode_accepts_only_canonical_names(wire: str) -> None:
    try:
        text = decode_mutf7(wire)
    except ValueError:
        return
    assert encode_mutf7(text) == wire


@pytest.mark.parametrize(
    "wire",
    [
        "&",  # shift never closed
        "a&AOQ",  # base64 never closed
        "&AGE-",  # printable ASCII ("a") must not be encoded
        "&ACY-",  # "&" must be written "&-"
        "&AOQ=-",  # padding is not allowed
        "&AO-",  # truncated UTF-16 unit
        "&AOR-",  # non-zero padding bits
        "&A/Q-",  # "/" is "," in modified base64
        "&2D0-",  # lone high surrogate
        "&AOQ-&AOQ-",  # two adjacent runs must be one
        "Entwürfe",  # 8-bit characters are never sent raw
        "a\r\nb",
    ],
)
def test_malformed_names_rejected(wire: str) -> None:
    with pytest.raises(ValueError):
        decode_mutf7(wire)


def test_lone_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode_mutf7("\ud800")
