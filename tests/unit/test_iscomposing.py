"""RFC 3994 isComposing documents <-> the XIMSS composing indications."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss.iscomposing import (
    DEFAULT_REFRESH_SECONDS,
    ISCOMPOSING_NS,
    MAX_ISCOMPOSING_BYTES,
    MAX_REFRESH_SECONDS,
    MIN_REFRESH_SECONDS,
    ComposeState,
    IsComposing,
    build_iscomposing,
    parse_iscomposing,
    state_from_ximss,
    ximss_indication,
)

# The shape of RFC 3994's examples, with the schema's optional elements all present.
ACTIVE = b"""<?xml version="1.0" encoding="UTF-8"?>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <state>active</state>
  <lastactive>2024-03-05T10:43:00Z</lastactive>
  <contenttype>text/plain</contenttype>
  <refresh>90</refresh>
</isComposing>"""

IDLE = b"""<ic:isComposing xmlns:ic="urn:ietf:params:xml:ns:im-iscomposing">
  <ic:state>idle</ic:state><ic:lastactive>2024-03-05T11:43:00+01:00</ic:lastactive>
</ic:isComposing>"""


def test_active_document_is_read() -> None:
    stamp = datetime(2024, 3, 5, 10, 43, tzinfo=UTC)
    assert parse_iscomposing(ACTIVE) == IsComposing(ComposeState.ACTIVE, 90, stamp, "text/plain")


def test_idle_document_with_prefix_and_offset_is_read_in_utc() -> None:
    parsed = parse_iscomposing(IDLE)
    assert parsed == IsComposing(ComposeState.IDLE, None, datetime(2024, 3, 5, 10, 43, tzinfo=UTC))
    assert parsed.last_active is not None and parsed.last_active.utcoffset() == timedelta(0)


def test_built_active_document() -> None:
    body = build_iscomposing(ComposeState.ACTIVE)
    root = etree.fromstring(body)
    assert root.tag == f"{{{ISCOMPOSING_NS}}}isComposing" and root.nsmap == {None: ISCOMPOSING_NS}
    assert [(etree.QName(c).localname, c.text) for c in root] == [
        ("state", "active"),
        ("contenttype", "text/plain"),
        ("refresh", str(DEFAULT_REFRESH_SECONDS)),
    ]
    assert parse_iscomposing(body).refresh == DEFAULT_REFRESH_SECONDS


def test_built_idle_document_has_no_refresh() -> None:
    stamp = datetime(2024, 3, 5, 11, 43, tzinfo=timezone(timedelta(hours=1)))
    body = build_iscomposing(ComposeState.IDLE, last_active=stamp, content_type=None)
    root = etree.fromstring(body)
    assert [(etree.QName(c).localname, c.text) for c in root] == [
        ("state", "idle"),
        ("lastactive", "2024-03-05T10:43:00Z"),
    ]


@given(
    st.sampled_from(ComposeState),
    st.integers(MIN_REFRESH_SECONDS, MAX_REFRESH_SECONDS),
    st.none() | st.sampled_from(["text/plain", "text/html", "audio/ogg", "image/png"]),
    st.none() | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
)
def test_built_documents_read_back(
    state: ComposeState, refresh: int, content_type: str | None, stamp: datetime | None
) -> None:
    refresh_or_none = refresh if state is ComposeState.ACTIVE else None
    body = build_iscomposing(
        state, refresh=refresh_or_none, content_type=content_type, last_active=stamp
    )
    assert parse_iscomposing(body) == IsComposing(state, refresh_or_none, stamp, content_type)


def test_early_years_keep_four_digits() -> None:
    # strftime("%Y") writes year 999 as "999", which no dateTime reader takes.
    stamp = datetime(999, 1, 1, tzinfo=UTC)
    body = build_iscomposing(ComposeState.IDLE, last_active=stamp)
    assert b"<lastactive>0999-01-01T00:00:00Z</lastactive>" in body
    assert parse_iscomposing(body).last_active == stamp


def test_stamp_pushed_out_of_range_by_its_offset_is_refused() -> None:
    body = _doc("<state>idle</state><lastactive>0001-01-01T00:00:00+01:00</lastactive>")
    with pytest.raises(BridgeError) as caught:
        parse_iscomposing(body)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_peer_refresh_is_capped_and_naive_stamps_are_utc() -> None:
    body = (
        f"<isComposing xmlns='{ISCOMPOSING_NS}'><state>ACTIVE</state>"
        "<lastactive>2024-03-05T10:43:00</lastactive><refresh>86400</refresh></isComposing>"
    ).encode()
    parsed = parse_iscomposing(body)
    assert parsed.state is ComposeState.ACTIVE and parsed.refresh == MAX_REFRESH_SECONDS
    assert parsed.last_active == datetime(2024, 3, 5, 10, 43, tzinfo=UTC)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"refresh": MIN_REFRESH_SECONDS - 1},
        {"refresh": MAX_REFRESH_SECONDS + 1},
        {"content_type": "plain text"},
        {"last_active": datetime(2024, 3, 5, 10, 43)},  # naive, the point of the test
    ],
)
def test_build_refuses_bad_active_documents(kwargs: dict[str, object]) -> None:
    with pytest.raises(BridgeError) as caught:
        build_iscomposing(ComposeState.ACTIVE, **kwargs)  # type: ignore[arg-type]
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_build_refuses_refresh_on_idle() -> None:
    with pytest.raises(BridgeError) as caught:
        build_iscomposing(ComposeState.IDLE, refresh=DEFAULT_REFRESH_SECONDS)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def _doc(inner: str) -> bytes:
    return f"<isComposing xmlns='{ISCOMPOSING_NS}'>{inner}</isComposing>".encode()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<typing/>",
        b"<isComposing xmlns='urn:example:other'><state>active</state></isComposing>",
        _doc(""),
        _doc("<state>typing</state>"),
        _doc("<state>active</state><state>idle</state>"),
        _doc("<state>active</state><refresh>0</refresh>"),
        _doc("<state>active</state><refresh>soon</refresh>"),
        _doc("<state>active</state><refresh>-5</refresh>"),
        _doc("<state>active</state><lastactive>yesterday</lastactive>"),
        _doc("<state>active</state><contenttype>not a type</contenttype>"),
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><isComposing>&e;</isComposing>',
    ],
)
def test_parse_refuses_junk(body: bytes) -> None:
    with pytest.raises(BridgeError) as caught:
        parse_iscomposing(body)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_parse_refuses_huge_documents() -> None:
    body = _doc(
        "<state>active</state><contenttype>" + "x" * MAX_ISCOMPOSING_BYTES + "</contenttype>"
    )
    with pytest.raises(BridgeError) as caught:
        parse_iscomposing(body)
    assert caught.value.kind is ErrorKind.LIMIT


@pytest.mark.parametrize(
    ("body", "state"),
    [
        ("<composing/>", ComposeState.ACTIVE),
        ("<gone/>", ComposeState.IDLE),
        ("<paused/>", ComposeState.IDLE),
        ("<inactive/>", ComposeState.IDLE),
        ("<active/>", ComposeState.IDLE),
    ],
)
def test_ximss_indications(body: str, state: ComposeState) -> None:
    assert state_from_ximss(xml.parse(body.encode())) is state


def test_unknown_ximss_indication_is_refused() -> None:
    with pytest.raises(BridgeError) as caught:
        state_from_ximss(xml.parse(b"<typing/>"))
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_readim_indications() -> None:
    element = ximss_indication(ComposeState.ACTIVE)
    assert element is not None and xml.serialize(element) == b"<composing/>"
    assert ximss_indication(ComposeState.IDLE) is None


@given(st.binary(max_size=256))
def test_binary_junk_raises_only_bridge_errors(data: bytes) -> None:
    with contextlib.suppress(BridgeError):
        parse_iscomposing(data)
