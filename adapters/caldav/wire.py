"""Sans-IO pieces of the CalDAV adapter: request bodies, hrefs, and iCalendar facts.

Bodies are built here (not with caldav's private `_build_*` helpers): the calendar-query the
library builds asks for calendar-data without getetag, and its `propfind(props=...)` silently
drops properties it does not know (CS:getctag). Replies are parsed by caldav's DAVResponse.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

import icalendar
from lxml import etree

from bridge.errors import BridgeError, ErrorKind

NS_DAV = "DAV:"
NS_CALDAV = "urn:ietf:params:xml:ns:caldav"
NS_CS = "http://calendarserver.org/ns/"
_NSMAP = {"D": NS_DAV, "C": NS_CALDAV, "CS": NS_CS}

# Property names in Clark notation, as caldav's PropfindResult keys them.
CURRENT_USER_PRINCIPAL = "{DAV:}current-user-principal"
CALENDAR_HOME_SET = f"{{{NS_CALDAV}}}calendar-home-set"
DISPLAYNAME = "{DAV:}displayname"
RESOURCETYPE = "{DAV:}resourcetype"
PRIVILEGES = "{DAV:}current-user-privilege-set"
COMPONENT_SET = f"{{{NS_CALDAV}}}supported-calendar-component-set"
SYNC_TOKEN = "{DAV:}sync-token"  # noqa: S105 (a property name, not a secret)
GETCTAG = f"{{{NS_CS}}}getctag"
GETETAG = "{DAV:}getetag"
CALENDAR_TYPE = f"{{{NS_CALDAV}}}calendar"

CALENDAR_PROPS = (DISPLAYNAME, RESOURCETYPE, COMPONENT_SET, PRIVILEGES)
# Privileges (RFC 3744) that let the user change a calendar's members.
_WRITE_PRIVILEGES = frozenset(
    {"{DAV:}all", "{DAV:}write", "{DAV:}write-content", "{DAV:}bind", "{DAV:}unbind"}
)
# The components a query looks at: RFC 4791 comp-filters at one level are ANDed, so each
# type takes its own calendar-query.
QUERY_COMPONENTS = ("VEVENT", "VTODO")

# Characters a generated resource name keeps as they are; others are replaced.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,120}")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_.@+-]")
# pchar (RFC 3986) minus what a server might read specially: kept unescaped in request paths.
_PATH_SAFE = "/@:+,;=!$&'()*~"


def _tostring(root: etree._Element) -> str:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8").decode("utf-8")


def _el(parent: etree._Element, clark: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, clark, attrs)


def propfind_body(props: Sequence[str]) -> str:
    root = etree.Element("{DAV:}propfind", nsmap=_NSMAP)
    prop = _el(root, "{DAV:}prop")
    for name in props:
        _el(prop, name)
    return _tostring(root)


def utc_stamp(moment: datetime) -> str:
    """An iCalendar UTC date-time for time-range attributes; naive datetimes count as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}{moment:%m%dT%H%M%SZ}"


def _query(component: str) -> tuple[etree._Element, etree._Element]:
    """A calendar-query asking for getetag and calendar-data; returns (root, component filter)."""
    root = etree.Element(f"{{{NS_CALDAV}}}calendar-query", nsmap=_NSMAP)
    prop = _el(root, "{DAV:}prop")
    _el(prop, GETETAG)
    _el(prop, f"{{{NS_CALDAV}}}calendar-data")
    filter_ = _el(root, f"{{{NS_CALDAV}}}filter")
    vcalendar = _el(filter_, f"{{{NS_CALDAV}}}comp-filter", name="VCALENDAR")
    return root, _el(vcalendar, f"{{{NS_CALDAV}}}comp-filter", name=component)


def time_range_query_body(component: str, start: datetime | None, end: datetime | None) -> str:
    root, comp = _query(component)
    if start is not None or end is not None:
        attrs = {}
        if start is not None:
            attrs["start"] = utc_stamp(start)
        if end is not None:
            attrs["end"] = utc_stamp(end)
        _el(comp, f"{{{NS_CALDAV}}}time-range", **attrs)
    return _tostring(root)


def uid_query_body(component: str, uid: str) -> str:
    # text-match is a substring match (RFC 4791 9.7.5): callers keep exact matches only.
    root, comp = _query(component)
    prop_filter = _el(comp, f"{{{NS_CALDAV}}}prop-filter", name="UID")
    _el(prop_filter, f"{{{NS_CALDAV}}}text-match", collation="i;octet").text = uid
    return _tostring(root)


def mkcalendar_body(display_name: str, components: Sequence[str]) -> str:
    root = etree.Element(f"{{{NS_CALDAV}}}mkcalendar", nsmap=_NSMAP)
    prop = _el(_el(root, "{DAV:}set"), "{DAV:}prop")
    _el(prop, DISPLAYNAME).text = display_name
    component_set = _el(prop, COMPONENT_SET)
    for name in components:
        _el(component_set, f"{{{NS_CALDAV}}}comp", name=name)
    return _tostring(root)


# --------------------------------------------------------------------------- hrefs


def quote_path(path: str) -> str:
    return quote(path, safe=_PATH_SAFE)


def collection_href(href: str) -> str:
    """A collection path with its trailing slash."""
    return href if href.endswith("/") else href + "/"


def last_segment(href: str) -> str:
    return href.rstrip("/").rpartition("/")[2]


def member_href(calendar_href: str, href: str) -> str:
    """A resource path: `href` as given when absolute, else a name inside the calendar."""
    if href.startswith("/"):
        return href
    if not href or "/" in href or href in (".", ".."):
        raise BridgeError(ErrorKind.BAD_REQUEST, "bad calendar item name")
    return calendar_href + href


def resource_name(uid: str) -> str:
    """A safe, stable file name for a new resource, derived from its UID."""
    if _SAFE_NAME.fullmatch(uid) and not uid.startswith("."):
        return uid + ".ics"
    digest = hashlib.sha256(uid.encode("utf-8")).hexdigest()[:16]
    readable = _UNSAFE_CHAR.sub("_", uid)[:40].lstrip(".")
    return f"{readable}-{digest}.ics" if readable else f"{digest}.ics"


def display_name(value: object, href: str) -> str:
    """The name to show: the display name, or the last segment when there is none (Radicale
    answers a calendar created without one with its path, "user@domain/Calendar")."""
    path = href.strip("/")
    if isinstance(value, str) and value.strip() and value.strip("/") != path:
        return value
    return last_segment(href)


def is_calendar(resourcetype: object) -> bool:
    return isinstance(resourcetype, list) and CALENDAR_TYPE in resourcetype


def writable(privileges: object) -> bool | None:
    if isinstance(privileges, list):
        return any(p in _WRITE_PRIVILEGES for p in privileges)
    return None


def components(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v).upper() for v in value if v)
    if isinstance(value, str) and value:
        return (value.upper(),)
    return ()


def first_href(value: object) -> str | None:
    """The first href of a property holding hrefs (caldav gives one as str, several as list),
    percent-decoded like the hrefs of the replies' responses (caldav decodes those)."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v), None)
    if not isinstance(value, str) or not value:
        return None
    path = urlsplit(value).path if "://" in value else value
    return collection_href(unquote(path))


# --------------------------------------------------------------------------- iCalendar


def crlf(text: str) -> str:
    """iCalendar line ends (XML replies and some servers give bare LF)."""
    return re.sub(r"\r?\n", "\r\n", text)


def _components(text: str) -> list[icalendar.Component]:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid iCalendar data") from exc
    return [c for c in calendar.subcomponents if c.name != "VTIMEZONE"]


def uid_of(text: str) -> str:
    """The UID of the (first) component a resource holds. BAD_REQUEST without one."""
    for component in _components(text):
        uid = component.get("UID")
        if uid:
            return str(uid)
    raise BridgeError(ErrorKind.BAD_REQUEST, "calendar item without UID")


def has_uid(text: str, uid: str) -> bool:
    """Whether a resource's components carry exactly this UID (unparsable text: no)."""
    try:
        return any(str(c.get("UID", "")) == uid for c in _components(text))
    except BridgeError:
        return False
