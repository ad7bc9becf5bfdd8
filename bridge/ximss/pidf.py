"""Presence: PIDF (RFC 3863) with RPID activities (RFC 4480) <-> the XIMSS presence presentation.

What XIMSS says. The 5.1 text stops inside rosterSet. CommuniGate's "Instant Messaging and
Presence" page (CommuniGatePro/IMPresence.html) says each client reports a "presence state" such
as online, away or busy, that the server aggregates them (busy wins over online) and that an
account without clients is offline. A deployed XIMSS client for CommuniGate Pro 6.x
(github.com/sipnet/ximsswrapper) shows the wire shapes, which we follow:

    C: <presenceSet id="A1"><presence>away</presence><status>Back at two</status></presenceSet>
    S: <presence peer="bob@example.com"><show>away</show><presence>away</presence>
         <status>Back at two</status></presence>
    S: <presence peer="carol@example.com" type="unavailable"/>

<presence> carries CommuniGate's word, <show> the XMPP one (XIMSS's roster model is XMPP's), and
type="unavailable" marks an offline contact. What is ours: the full word list, and how each word
maps to PIDF. online, offline, away and busy are CommuniGate's; on-the-phone and meeting are the
RFC 4480 activities softphones publish, under their RFC names. The table _WORDS is the mapping;
XMPP <show> values a client may send instead (chat, dnd, xa) are read as the word they mean.

PUBLISH bodies carry one <tuple> (basic open or closed, the status text as its <note>) and, for
any word but online and offline, a data-model <person> with the activity. NOTIFY bodies are read
loosely: any prefixes, several tuples (open if any is open), activities on <person> or, as older
RPID writers put them, inside a tuple (also as <activity>away</activity>); the note of a person
first, then of a tuple, then of the document; a note that is only a known word ("Busy", "On the
phone") stands for the activity when there is none. Multipart resource-list NOTIFYs (RFC 4662)
are the adapter's to split.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
DATA_MODEL_NS = "urn:ietf:params:xml:ns:pidf:data-model"
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"
CONTENT_TYPE = "application/pidf+xml"

MAX_PIDF_BYTES = 64 * 1024  # a presence server's aggregate of a few dozen devices
MAX_PIDF_DEPTH = 16
MAX_ELEMENTS = 64  # tuples and persons in one document
MAX_NOTE_CHARS = 1024  # a longer note from a peer is cut, a longer status from a client refused
MAX_ENTITY_CHARS = 512

# RFC 4480 section 3.2, the activities a person element may carry.
ACTIVITIES = frozenset(
    {
        *("appointment", "away", "breakfast", "busy", "dinner", "holiday", "in-transit"),
        *("looking-for-work", "meal", "meeting", "on-the-phone", "performance"),
        *("permanent-absence", "playing", "presentation", "shopping", "sleeping", "spectator"),
        *("steering", "travel", "tv", "unknown", "vacation", "working", "worship"),
    }
)


class Basic(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Presence:
    """What a PIDF document says: reachable or not, what the person is doing, and a note."""

    basic: Basic | None
    activity: str | None = None
    note: str | None = None
    entity: str | None = None


@dataclass(frozen=True, slots=True)
class XimssPresence:
    """A presence word of the table below and the free-text status."""

    presence: str
    status: str | None = None


@dataclass(frozen=True, slots=True)
class _Word:
    basic: Basic
    activity: str | None
    show: str | None  # XMPP's <show>; none means plainly available


_WORDS: dict[str, _Word] = {
    "online": _Word(Basic.OPEN, None, None),
    "offline": _Word(Basic.CLOSED, None, None),
    "away": _Word(Basic.OPEN, "away", "away"),
    "busy": _Word(Basic.OPEN, "busy", "dnd"),
    "on-the-phone": _Word(Basic.OPEN, "on-the-phone", "dnd"),
    "meeting": _Word(Basic.OPEN, "meeting", "dnd"),
}
PRESENCE_WORDS = frozenset(_WORDS)
# XMPP <show> and <presence type> values clients send in presenceSet.
_ALIASES = {"available": "online", "chat": "online", "dnd": "busy", "xa": "away"}
_ALIASES["unavailable"] = "offline"
# The word a peer's activity reads as; any other activity of an open presentity reads as online.
_ACTIVITY_WORDS = {
    **dict.fromkeys(("away", "breakfast", "dinner", "meal", "sleeping", "holiday"), "away"),
    **dict.fromkeys(("vacation", "travel", "in-transit", "permanent-absence"), "away"),
    **dict.fromkeys(("busy", "appointment", "presentation", "performance", "steering"), "busy"),
    "on-the-phone": "on-the-phone",
    "meeting": "meeting",
}
# Notes that stand for an activity when a client sends only a note (X-Lite, older Bria).
_NOTE_ACTIVITIES = {
    "away": "away",
    "idle": "away",
    "be right back": "away",
    "out to lunch": "meal",
    "busy": "busy",
    "do not disturb": "busy",
    "on the phone": "on-the-phone",
    "on-the-phone": "on-the-phone",
    "in a meeting": "meeting",
}
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")  # an XML ID, as tuple and person ids must be
_ENTITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _bad(detail: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, detail)


def _text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if _NOT_XML.search(value):
        raise _bad(f"{what} holds characters XML cannot carry")
    if len(value) > MAX_NOTE_CHARS:
        raise BridgeError(ErrorKind.LIMIT, f"{what} too long")
    return value


# --- PIDF for PUBLISH ----------------------------------------------------------------------------


def build_pidf(
    entity: str,
    basic: Basic,
    note: str | None = None,
    activity: str | None = None,
    *,
    tuple_id: str = "t1",
    person_id: str = "p1",
) -> bytes:
    """A PIDF document; an entity without a scheme (user@domain) is taken as a sip: URI."""
    if ":" not in entity:
        entity = "sip:" + entity
    if len(entity) > MAX_ENTITY_CHARS or not _ENTITY.fullmatch(entity):
        raise _bad("malformed presence entity")
    if activity is not None and activity not in ACTIVITIES:
        raise _bad("unknown presence activity")
    if not (_ID.fullmatch(tuple_id) and _ID.fullmatch(person_id)):
        raise _bad("malformed PIDF id")
    note = _text(note, "presence note")
    root = etree.Element(
        f"{{{PIDF_NS}}}presence",
        nsmap={None: PIDF_NS, "dm": DATA_MODEL_NS, "rpid": RPID_NS},  # type: ignore[dict-item]
        entity=entity,
    )
    tuple_ = etree.SubElement(root, f"{{{PIDF_NS}}}tuple", id=tuple_id)
    status = etree.SubElement(tuple_, f"{{{PIDF_NS}}}status")
    etree.SubElement(status, f"{{{PIDF_NS}}}basic").text = basic.value
    if note:
        etree.SubElement(tuple_, f"{{{PIDF_NS}}}note").text = note
    if activity is not None:
        person = etree.SubElement(root, f"{{{DATA_MODEL_NS}}}person", id=person_id)
        activities = etree.SubElement(person, f"{{{RPID_NS}}}activities")
        etree.SubElement(activities, f"{{{RPID_NS}}}{activity}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def publish_body(entity: str, presence: XimssPresence, *, tuple_id: str = "t1") -> bytes:
    """The PUBLISH body for a client's presenceSet."""
    word = _WORDS.get(presence.presence)
    if word is None:
        raise _bad("unknown presence")
    return build_pidf(entity, word.basic, presence.status, word.activity, tuple_id=tuple_id)


# --- PIDF from NOTIFY ----------------------------------------------------------------------------


def _local(elem: etree._Element) -> str:
    return etree.QName(elem).localname if isinstance(elem.tag, str) else ""


def _children(elem: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in elem if _local(child) == name]


def _note(elems: list[etree._Element]) -> str | None:
    for elem in elems:
        for note in _children(elem, "note"):
            text = " ".join((note.text or "").split())
            if text:
                return text[:MAX_NOTE_CHARS]
    return None


def _activity(containers: list[etree._Element]) -> str | None:
    """The first activity: <rpid:activities><rpid:away/>, or the older rpid-status drafts'
    <activities><activity>away</activity> (eyeBeam, X-Lite), in whatever namespace."""
    for container in containers:
        for activities in container.iter():
            if _local(activities) != "activities":
                continue
            for child in activities:
                name = _local(child)
                name = (child.text or "").strip().lower() if name == "activity" else name
                if name in ACTIVITIES:
                    return name
    return None


def parse_pidf(data: bytes) -> Presence:
    """A NOTIFY's PIDF body; BAD_REQUEST for anything that is not one, LIMIT for a huge one."""
    if len(data) > MAX_PIDF_BYTES:
        raise BridgeError(ErrorKind.LIMIT, "presence document too large")
    root = xml.parse(data, max_depth=MAX_PIDF_DEPTH)
    if _local(root) != "presence" or etree.QName(root).namespace not in (PIDF_NS, None):
        raise _bad("not a PIDF document")
    tuples = _children(root, "tuple")
    persons = _children(root, "person")
    if len(tuples) + len(persons) > MAX_ELEMENTS:
        raise BridgeError(ErrorKind.LIMIT, "presence document has too many tuples")
    basics = {
        (basic.text or "").strip().lower()
        for tuple_ in tuples
        for status in _children(tuple_, "status")
        for basic in _children(status, "basic")
    }
    basic = Basic.OPEN if "open" in basics else Basic.CLOSED if "closed" in basics else None
    note = _note([*persons, *tuples, root])
    activity = _activity([*persons, *tuples])
    if activity is None and note is not None:
        activity = _NOTE_ACTIVITIES.get(note.lower())
    return Presence(basic, activity, note, root.get("entity"))


# --- the XIMSS side ------------------------------------------------------------------------------


def parse_presence_set(request: etree._Element) -> XimssPresence:
    """<presenceSet><presence>word</presence><status>text</status></presenceSet>."""
    words = _children(request, "presence")
    if len(words) != 1:
        raise _bad("presenceSet needs one presence element")
    word = (words[0].text or "").strip().lower()
    word = _ALIASES.get(word, word)
    if word not in _WORDS:
        raise _bad("unknown presence")
    statuses = _children(request, "status")
    status = (statuses[0].text or "").strip() if statuses else ""
    return XimssPresence(word, _text(status, "presence status") or None)


def ximss_word(presence: Presence) -> str:
    """The CommuniGate word for a peer's presence: closed (or no tuple) is offline."""
    if presence.basic is Basic.CLOSED or (presence.basic is None and presence.activity is None):
        return "offline"
    return _ACTIVITY_WORDS.get(presence.activity or "", "online")


def presence_message(peer: str, presence: Presence) -> etree._Element:
    """The <presence peer="..."> data message for a contact's presence."""
    word = ximss_word(presence)
    elem = xml.element("presence", {"peer": peer})
    if word == "offline":
        elem.set("type", "unavailable")
    show = _WORDS[word].show
    if show is not None:
        xml.sub(elem, "show", text=show)
    xml.sub(elem, "presence", text=word)
    if presence.note:
        xml.sub(elem, "status", text=presence.note)
    return elem
