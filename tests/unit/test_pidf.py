"""PIDF/RPID presence <-> the XIMSS presence presentation."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss.pidf import (
    ACTIVITIES,
    DATA_MODEL_NS,
    MAX_ELEMENTS,
    MAX_NOTE_CHARS,
    MAX_PIDF_BYTES,
    PIDF_NS,
    PRESENCE_WORDS,
    RPID_NS,
    Basic,
    Presence,
    XimssPresence,
    build_pidf,
    parse_pidf,
    parse_presence_set,
    presence_message,
    publish_body,
    ximss_word,
)

# What a presence server (Kamailio's presence_xml) sends after aggregating two devices' PUBLISHes.
AGGREGATED = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:c="urn:ietf:params:xml:ns:pidf:cipid" entity="sip:bob@example.com">
  <tuple id="0x7f3a01"><status><basic>closed</basic></status>
    <contact priority="0.8">sip:bob@192.0.2.4</contact></tuple>
  <tuple id="a2b3"><status><basic>open</basic></status><note>On the road</note></tuple>
  <dm:person id="p1">
    <rpid:activities><rpid:on-the-phone/></rpid:activities>
    <dm:note>Calling Alice</dm:note>
  </dm:person>
</presence>"""

# Every name prefixed, and prefixes of its own choosing.
PREFIXED = b"""<pidf:presence xmlns:pidf="urn:ietf:params:xml:ns:pidf"
    xmlns:pdm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="pres:carol@example.com">
  <pidf:tuple id="t"><pidf:status><pidf:basic> OPEN </pidf:basic></pidf:status></pidf:tuple>
  <pdm:person id="p"><r:activities><r:meeting/></r:activities></pdm:person>
</pidf:presence>"""

# Older RPID drafts (eyeBeam, X-Lite): the activity inside the tuple's status, as text.
OLD_RPID = b"""<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:es="urn:ietf:params:xml:ns:pidf:status:rpid-status" entity="sip:dave@example.com">
  <tuple id="x"><status><basic>open</basic>
    <es:activities><es:activity>away</es:activity></es:activities></status>
  <note>Away</note></tuple>
</presence>"""

# A softphone that only writes a note.
NOTE_ONLY = b"""<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:erin@example.com">
  <tuple id="1"><status><basic>open</basic></status><note>Busy</note></tuple>
</presence>"""

CLOSED = b"""<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:frank@example.com">
  <tuple id="1"><status><basic>closed</basic></status></tuple></presence>"""


def test_aggregate_of_devices_is_open_and_on_the_phone() -> None:
    presence = parse_pidf(AGGREGATED)
    assert presence == Presence(Basic.OPEN, "on-the-phone", "Calling Alice", "sip:bob@example.com")
    assert ximss_word(presence) == "on-the-phone"


@pytest.mark.parametrize(
    ("body", "expected", "word"),
    [
        (PREFIXED, Presence(Basic.OPEN, "meeting", None, "pres:carol@example.com"), "meeting"),
        (OLD_RPID, Presence(Basic.OPEN, "away", "Away", "sip:dave@example.com"), "away"),
        (NOTE_ONLY, Presence(Basic.OPEN, "busy", "Busy", "sip:erin@example.com"), "busy"),
        (CLOSED, Presence(Basic.CLOSED, None, None, "sip:frank@example.com"), "offline"),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf'/>", Presence(None), "offline"),
        (b"<presence/>", Presence(None), "offline"),
    ],
)
def test_notify_bodies_are_read_loosely(body: bytes, expected: Presence, word: str) -> None:
    assert parse_pidf(body) == expected
    assert ximss_word(parse_pidf(body)) == word


def test_person_without_tuple_and_activities_without_word() -> None:
    person_only = (
        f"<presence xmlns='{PIDF_NS}' xmlns:dm='{DATA_MODEL_NS}' xmlns:rpid='{RPID_NS}'>"
        "<dm:person id='p'><rpid:activities><rpid:tv/></rpid:activities></dm:person></presence>"
    ).encode()
    assert parse_pidf(person_only).activity == "tv"
    assert ximss_word(parse_pidf(person_only)) == "online"  # doing something, reachable
    assert ximss_word(Presence(Basic.OPEN, "vacation")) == "away"
    assert ximss_word(Presence(Basic.OPEN, "appointment")) == "busy"


def test_published_document_shape() -> None:
    body = build_pidf("alice@example.com", Basic.OPEN, "Back at two", "away", tuple_id="dev1")
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(body)
    assert root.tag == f"{{{PIDF_NS}}}presence" and root.get("entity") == "sip:alice@example.com"
    tuple_, person = root
    assert tuple_.get("id") == "dev1"
    assert tuple_.findtext(f"{{{PIDF_NS}}}status/{{{PIDF_NS}}}basic") == "open"
    assert tuple_.findtext(f"{{{PIDF_NS}}}note") == "Back at two"
    assert person.tag == f"{{{DATA_MODEL_NS}}}person"
    (activities,) = person
    assert [child.tag for child in activities] == [f"{{{RPID_NS}}}away"]


def test_publish_refuses_a_word_outside_the_table() -> None:
    with pytest.raises(BridgeError) as caught:
        publish_body("sip:a@example.com", XimssPresence("sleepy"))
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_online_and_offline_publish_no_person() -> None:
    for word, basic in (("online", "open"), ("offline", "closed")):
        root = etree.fromstring(publish_body("sip:a@example.com", XimssPresence(word)))
        assert len(root) == 1 and root.findtext(f".//{{{PIDF_NS}}}basic") == basic
        assert root.find(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}note") is None


@given(
    st.sampled_from(sorted(PRESENCE_WORDS)),
    st.none() | st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=80),
)
def test_every_word_survives_publish_and_notify(word: str, status: str | None) -> None:
    presence = parse_pidf(publish_body("sip:a@example.com", XimssPresence(word, status)))
    assert ximss_word(presence) == word
    normalized = " ".join((status or "").split()) or None
    assert presence.note == normalized


@given(st.sampled_from(sorted(ACTIVITIES)), st.sampled_from(Basic))
def test_any_activity_survives(activity: str, basic: Basic) -> None:
    assert parse_pidf(build_pidf("sip:a@b", basic, None, activity)).activity == activity


@pytest.mark.parametrize(
    ("request_xml", "expected"),
    [
        (
            "<presenceSet id='A1'><presence>away</presence><status>Back at two</status></presenceSet>",
            XimssPresence("away", "Back at two"),
        ),
        # What a deployed client sends right after signalBind.
        (
            "<presenceSet><presence>online</presence><status/></presenceSet>",
            XimssPresence("online"),
        ),
        ("<presenceSet><presence> Busy </presence></presenceSet>", XimssPresence("busy")),
        ("<presenceSet><presence>dnd</presence></presenceSet>", XimssPresence("busy")),
        ("<presenceSet><presence>xa</presence></presenceSet>", XimssPresence("away")),
        ("<presenceSet><presence>chat</presence></presenceSet>", XimssPresence("online")),
        ("<presenceSet><presence>unavailable</presence></presenceSet>", XimssPresence("offline")),
    ],
)
def test_presence_set_requests(request_xml: str, expected: XimssPresence) -> None:
    assert parse_presence_set(xml.parse(request_xml.encode())) == expected


@pytest.mark.parametrize(
    "request_xml",
    [
        "<presenceSet/>",
        "<presenceSet><presence>sleepy</presence></presenceSet>",
        "<presenceSet><presence>away</presence><presence>busy</presence></presenceSet>",
    ],
)
def test_bad_presence_set_requests(request_xml: str) -> None:
    with pytest.raises(BridgeError) as caught:
        parse_presence_set(xml.parse(request_xml.encode()))
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_long_status_is_a_limit() -> None:
    status = "x" * (MAX_NOTE_CHARS + 1)
    request = xml.parse(
        f"<presenceSet><presence>away</presence><status>{status}</status></presenceSet>".encode()
    )
    with pytest.raises(BridgeError) as caught:
        parse_presence_set(request)
    assert caught.value.kind is ErrorKind.LIMIT


@pytest.mark.parametrize(
    ("presence", "expected"),
    [
        (
            Presence(Basic.OPEN, "away", "Lunch"),
            b'<presence peer="bob@example.com"><show>away</show><presence>away</presence>'
            b"<status>Lunch</status></presence>",
        ),
        (
            Presence(Basic.OPEN),
            b'<presence peer="bob@example.com"><presence>online</presence></presence>',
        ),
        (
            Presence(Basic.OPEN, "on-the-phone"),
            b'<presence peer="bob@example.com"><show>dnd</show><presence>on-the-phone</presence>'
            b"</presence>",
        ),
        (
            Presence(Basic.CLOSED, None, "Gone home"),
            b'<presence peer="bob@example.com" type="unavailable"><presence>offline</presence>'
            b"<status>Gone home</status></presence>",
        ),
    ],
)
def test_presence_data_messages(presence: Presence, expected: bytes) -> None:
    assert xml.serialize(presence_message("bob@example.com", presence)) == expected


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", Basic.OPEN), {}),
        (("sip:a b@example.com", Basic.OPEN), {}),
        (("sip:a@example.com", Basic.OPEN, None, "dancing"), {}),
        (("sip:a@example.com", Basic.OPEN, "bell\x07"), {}),
        (("sip:a@example.com", Basic.OPEN), {"tuple_id": "1abc"}),
        (("sip:a@example.com", Basic.OPEN), {"person_id": "a b"}),
    ],
)
def test_build_refuses_junk(args: tuple[object, ...], kwargs: dict[str, str]) -> None:
    with pytest.raises(BridgeError) as caught:
        build_pidf(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<notpresence xmlns='urn:ietf:params:xml:ns:pidf'/>",
        b"<presence xmlns='urn:example:other'/>",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<presence>&lol2;</presence>",
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf'>"
        + b"<a>" * 40
        + b"</a>" * 40
        + b"</presence>",
    ],
)
def test_parse_refuses_junk(body: bytes) -> None:
    with pytest.raises(BridgeError) as caught:
        parse_pidf(body)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_parse_limits() -> None:
    many = b"<presence>" + b"<tuple id='t'/>" * (MAX_ELEMENTS + 1) + b"</presence>"
    huge = b"<presence><note>" + b"x" * MAX_PIDF_BYTES + b"</note></presence>"
    for body in (many, huge):
        with pytest.raises(BridgeError) as caught:
            parse_pidf(body)
        assert caught.value.kind is ErrorKind.LIMIT
    long_note = b"<presence><note>" + b"y" * (MAX_NOTE_CHARS * 2) + b"</note></presence>"
    assert parse_pidf(long_note).note == "y" * MAX_NOTE_CHARS  # a peer's note is cut, not refused


@given(st.binary(max_size=512))
def test_binary_junk_raises_only_bridge_errors(data: bytes) -> None:
    with contextlib.suppress(BridgeError):
        parse_pidf(data)
