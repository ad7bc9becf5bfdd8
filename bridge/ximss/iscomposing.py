"""Composition indications: RFC 3994 isComposing documents <-> the XIMSS `composing` element.

XIMSS 5.1 lets sendIM and readIM carry, instead of text, "the composing element": the user is
preparing a message but has not sent it. Deployed CommuniGate clients also send <gone/> (the XMPP
chat state, XEP-0085) when the user leaves the conversation. On SIP the same news travels as a
MESSAGE whose body is an isComposing document:

    <isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">
      <state>active</state><contenttype>text/plain</contenttype><refresh>120</refresh>
    </isComposing>

The mapping is the table _XIMSS_STATES: <composing/> is active; the other XEP-0085 states a client
may send (paused, inactive, gone, and active, which there means "reading, not typing") are idle.
Toward the client only active has an element; an idle indication sends nothing, since 5.1 defines
no element for it and clients stop showing "typing" on their own.

We write a refresh interval with every active document (RFC 3994: an active state expires unless
refreshed, 120 s by default; we keep what we write between MIN_REFRESH_SECONDS and
MAX_REFRESH_SECONDS) and read a peer's, capping it at MAX_REFRESH_SECONDS.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind

ISCOMPOSING_NS = "urn:ietf:params:xml:ns:im-iscomposing"
CONTENT_TYPE = "application/im-iscomposing+xml"

MAX_ISCOMPOSING_BYTES = 4096  # the document is four short elements
MAX_ISCOMPOSING_DEPTH = 4
DEFAULT_REFRESH_SECONDS = 120
MIN_REFRESH_SECONDS = 60  # shorter refreshes only add MESSAGE traffic
MAX_REFRESH_SECONDS = 3600

_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
_DIGITS = re.compile(r"[0-9]{1,10}")


class ComposeState(enum.Enum):
    ACTIVE = "active"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class IsComposing:
    state: ComposeState
    refresh: int | None = None  # seconds the active state lasts without a refresh
    last_active: datetime | None = None  # when the user last typed (UTC)
    content_type: str | None = None  # what is being composed: text/plain, audio/...


_XIMSS_STATES = {
    "composing": ComposeState.ACTIVE,
    "paused": ComposeState.IDLE,
    "active": ComposeState.IDLE,
    "inactive": ComposeState.IDLE,
    "gone": ComposeState.IDLE,
}


def _bad(detail: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, detail)


def build_iscomposing(
    state: ComposeState,
    *,
    refresh: int | None = None,
    content_type: str | None = "text/plain",
    last_active: datetime | None = None,
) -> bytes:
    """An isComposing document; an active one gets DEFAULT_REFRESH_SECONDS unless told."""
    if state is ComposeState.ACTIVE:
        refresh = DEFAULT_REFRESH_SECONDS if refresh is None else refresh
        if not MIN_REFRESH_SECONDS <= refresh <= MAX_REFRESH_SECONDS:
            raise _bad("isComposing refresh out of range")
    elif refresh is not None:
        raise _bad("only an active isComposing has a refresh")  # RFC 3994 section 4
    if content_type is not None and not _MIME_TYPE.fullmatch(content_type):
        raise _bad("malformed isComposing content type")
    if last_active is not None and last_active.utcoffset() is None:
        raise _bad("isComposing lastactive needs a time zone")
    root = etree.Element(f"{{{ISCOMPOSING_NS}}}isComposing", nsmap={None: ISCOMPOSING_NS})  # type: ignore[dict-item]
    etree.SubElement(root, f"{{{ISCOMPOSING_NS}}}state").text = state.value
    if last_active is not None:
        stamp = _utc(last_active).replace(microsecond=0, tzinfo=None).isoformat() + "Z"
        etree.SubElement(root, f"{{{ISCOMPOSING_NS}}}lastactive").text = stamp
    if content_type is not None:
        etree.SubElement(root, f"{{{ISCOMPOSING_NS}}}contenttype").text = content_type
    if refresh is not None:
        etree.SubElement(root, f"{{{ISCOMPOSING_NS}}}refresh").text = str(refresh)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _child_text(root: etree._Element, name: str) -> str | None:
    found = [c for c in root if isinstance(c.tag, str) and etree.QName(c).localname == name]
    if len(found) > 1:
        raise _bad(f"isComposing has more than one {name}")
    return (found[0].text or "").strip() if found else None


def parse_iscomposing(data: bytes) -> IsComposing:
    """A peer's isComposing MESSAGE body; BAD_REQUEST for anything that is not one."""
    if len(data) > MAX_ISCOMPOSING_BYTES:
        raise BridgeError(ErrorKind.LIMIT, "isComposing document too large")
    root = xml.parse(data, max_depth=MAX_ISCOMPOSING_DEPTH)
    qname = etree.QName(root)
    if qname.localname != "isComposing" or qname.namespace not in (ISCOMPOSING_NS, None):
        raise _bad("not an isComposing document")
    try:
        state = ComposeState((_child_text(root, "state") or "").lower())
    except ValueError as exc:
        raise _bad("isComposing state must be active or idle") from exc
    refresh_text = _child_text(root, "refresh")
    refresh = None
    if refresh_text is not None:
        if not _DIGITS.fullmatch(refresh_text) or int(refresh_text) == 0:
            raise _bad("malformed isComposing refresh")
        refresh = min(int(refresh_text), MAX_REFRESH_SECONDS)
    content_type = _child_text(root, "contenttype")
    if content_type is not None and not _MIME_TYPE.fullmatch(content_type):
        raise _bad("malformed isComposing content type")
    return IsComposing(state, refresh, _last_active(_child_text(root, "lastactive")), content_type)


def _last_active(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _bad("malformed isComposing lastactive") from exc
    # xsd:dateTime may omit the zone; such a stamp is read as UTC.
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else _utc(stamp)


def _utc(stamp: datetime) -> datetime:
    try:
        return stamp.astimezone(UTC)
    except OverflowError as exc:  # an offset that pushes year 1 or 9999 out of range
        raise _bad("isComposing lastactive out of range") from exc


def state_from_ximss(indication: etree._Element) -> ComposeState:
    """The state a sendIM body element (<composing/>, <gone/>...) stands for."""
    state = _XIMSS_STATES.get(indication.tag) if isinstance(indication.tag, str) else None
    if state is None:
        raise _bad("unknown composing indication")
    return state


def ximss_indication(state: ComposeState) -> etree._Element | None:
    """The readIM body element for a peer's state: <composing/> when active, else none."""
    return xml.element("composing") if state is ComposeState.ACTIVE else None
