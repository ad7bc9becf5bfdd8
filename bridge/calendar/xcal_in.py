"""The XIMSS XML iCalendar element -> an icalendar.Calendar: the reverse of bridge.mime.xcal.

The scheme read back is the one xcal.py writes (its docstring): <vCalendar> attributes are
VCALENDAR properties; each child element is a component (a known component name, or an X- name
with children) or a property, named in lower case; a property's attributes are its parameters
(`tzid` is TZID, several values of MEMBER and DELEGATED-TO/FROM are comma-joined); TEXT values are
escaped here, the other types are taken as written after a check of their shape, so junk is a
BAD_REQUEST and never a library crash. Namespaces are ignored (clients differ in sending one).

What a CalDAV server receives must stand on its own, so time zones are settled here:
- a TZID defined by a <vtimezone> of the element is kept as written;
- any other TZID must name a zone zones.py knows (CommuniGate or IANA); it is rewritten to the IANA
  key and a VTIMEZONE generated from the zone database is added; an unknown one is BAD_REQUEST;
- a date-time with neither TZID nor Z is, per the spec's calendarPublish note, local time in the
  user's zone: it gets that zone's TZID (and VTIMEZONE), or Z when the user's zone is UTC;
  properties RFC 5545 wants in UTC (DTSTAMP, CREATED, LAST-MODIFIED, COMPLETED, FREEBUSY) are
  converted to UTC instead; all-day values (VALUE=DATE, or a bare 8-digit date, which gets
  VALUE=DATE) take no zone; STANDARD/DAYLIGHT inside a VTIMEZONE are local by definition;
- an RRULE UNTIL given as local time is converted to UTC in its DTSTART's zone, as RFC 5545
  requires of a zoned DTSTART (dateutil, which Radicale uses, refuses anything else).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
import zoneinfo
from collections.abc import Callable

from icalendar import Calendar, Component, Timezone
from icalendar.prop import vRecur
from lxml import etree

from bridge.calendar.localize import Resolver, zone_resolver
from bridge.calendar.zones import to_iana, zone_for
from bridge.errors import BridgeError, ErrorKind
from bridge.mime.contentline import escape_value, fold_line, param_value
from bridge.mime.xcal import DEFAULT_TYPES, MAX_COMPONENT_DEPTH

PRODID = "-//ximss-bridge//XIMSS//EN"
ITEM_COMPONENTS = frozenset({"VEVENT", "VTODO"})
# Each distinct zone costs a VTIMEZONE of a few kilobytes built from the zone database; an item
# needs one or two, so more than this is abuse.
MAX_ADDED_ZONES = 16

_COMPONENTS = frozenset(
    {
        *("VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VTIMEZONE", "STANDARD", "DAYLIGHT"),
        *("VALARM", "VAVAILABILITY", "AVAILABLE", "PARTICIPANT", "VLOCATION", "VRESOURCE"),
    }
)
_LIST_PARAMS = frozenset({"MEMBER", "DELEGATED-TO", "DELEGATED-FROM"})
_LIST_TEXT = frozenset({"CATEGORIES", "RESOURCES"})  # commas separate values, as RFC 5545 writes
# TRIGGER only when VALUE=DATE-TIME: its default is a duration.
_UTC_ONLY = frozenset({"DTSTAMP", "CREATED", "LAST-MODIFIED", "COMPLETED", "FREEBUSY", "TRIGGER"})
_UTC_KEYS = frozenset({"UTC", "Etc/UTC"})
_RECUR_PARTS = frozenset(
    {
        *("FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY"),
        *("BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST", "RSCALE", "SKIP"),
    }
)

_NAME = re.compile(r"[A-Za-z0-9-]+\Z")
_DATE = r"\d{8}"
_DATE_TIME = r"\d{8}T\d{6}Z?"
_DURATION = r"[+-]?P(?:\d+W|(?=\d|T\d)(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)"
_SHAPES = {
    "DATE": re.compile(rf"{_DATE}(?:,{_DATE})*\Z"),
    "DATE-TIME": re.compile(rf"{_DATE_TIME}(?:,{_DATE_TIME})*\Z"),
    "DURATION": re.compile(rf"{_DURATION}\Z"),
}
_PERIOD = re.compile(rf"{_DATE_TIME}/(?:{_DATE_TIME}|{_DURATION})\Z")  # each of a list
_TIME_TOKEN = re.compile(r"(\d{8}T\d{6})(Z?)")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+\Z")
_BARE_EMAIL = re.compile(r"[^\s@:<>]+@[^\s@:<>]+\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})\Z")


def xcal_to_calendar(elem: etree._Element, user_zone: zoneinfo.ZoneInfo) -> Calendar:
    """An <iCalendar> (or bare <vCalendar>) element as a Calendar, values checked, zones settled.

    Any number of components; see `publishable` for what calendarPublish accepts. VERSION 2.0 and
    a PRODID are added when missing. Raises BridgeError BAD_REQUEST for anything malformed, LIMIT
    for more than MAX_ADDED_ZONES zones to add.
    """
    vcal = _vcalendar(elem)
    defined = {
        (tzid.text or "").strip()
        for tz in _elements(vcal)
        if _local(tz) == "VTIMEZONE"
        for tzid in _elements(tz)
        if _local(tzid) == "TZID"
    }
    writer = _Writer(user_zone, defined)
    lines = ["BEGIN:VCALENDAR"]
    for attr, value in _attributes(vcal):
        lines.append(f"{_checked_name(attr)}:{escape_value(value, text=True)}")
    for child in _elements(vcal):
        lines.extend(writer.node(child, depth=1, in_zone=False))
    lines.append("END:VCALENDAR")
    if len(writer.needed) > MAX_ADDED_ZONES:
        raise BridgeError(ErrorKind.LIMIT, "too many time zones")
    cal = _parse("".join(f"{fold_line(line)}\r\n" for line in lines))
    if str(cal.get("VERSION", "2.0")) != "2.0":
        raise BridgeError(ErrorKind.BAD_REQUEST, "only iCalendar version 2.0 is supported")
    for key, default in (("VERSION", "2.0"), ("PRODID", PRODID)):
        if key not in cal:
            cal.add(key, default)
    for key in sorted(writer.needed, reverse=True):
        cal.subcomponents.insert(0, Timezone.from_ical(_vtimezone(key)))
    resolve = zone_resolver(cal, user_zone)
    for comp in cal.subcomponents:
        if comp.name != "VTIMEZONE":
            _until_in_utc(comp, resolve)
    return cal


def publishable(
    elem: etree._Element, user_zone: zoneinfo.ZoneInfo, *, hostname: str, now: dt.datetime
) -> Calendar:
    """calendarPublish's item, ready to store: `xcal_to_calendar` plus the spec's rules.

    "exactly one calendaring item element": one VEVENT or VTODO, besides VTIMEZONEs. So that a
    client can publish back what calendarRead showed, a recurring item's overrides count as part
    of it: several components of one kind sharing one UID, only one of them without RECURRENCE-ID.
    A lone item without UID gets `uuid4@hostname`; DTSTAMP (`now`, aware) is added where missing;
    a VEVENT must have DTSTART. METHOD is removed: RFC 4791 forbids it in stored objects.
    """
    if _HOSTNAME.match(hostname) is None or now.tzinfo is None:
        raise ValueError("a hostname and an aware `now` are required")
    cal = xcal_to_calendar(elem, user_zone)
    items = [comp for comp in cal.subcomponents if comp.name in ITEM_COMPONENTS]
    if any(comp.name not in ITEM_COMPONENTS | {"VTIMEZONE"} for comp in cal.subcomponents):
        raise BridgeError(ErrorKind.BAD_REQUEST, "only vevent, vtodo and vtimezone are allowed")
    _check_one_item(items)
    for item in items:
        if "UID" not in item:
            item.add("UID", f"{uuid.uuid4()}@{hostname}")
        if "DTSTAMP" not in item:
            item.add("DTSTAMP", now.astimezone(dt.UTC))
        if item.name == "VEVENT" and "DTSTART" not in item:
            raise BridgeError(ErrorKind.BAD_REQUEST, "an event needs dtstart")
    cal.pop("METHOD", None)
    return cal


def calendar_text(cal: Calendar) -> str:
    """The iCalendar text of `cal` (CRLF lines folded at 75 octets), as CalDAV stores it."""
    text: bytes = cal.to_ical()
    return text.decode("utf-8")


def _check_one_item(items: list[Component]) -> None:
    if not items:
        raise BridgeError(ErrorKind.BAD_REQUEST, "no vevent or vtodo")
    if len(items) == 1:
        return
    uids = {str(item.get("UID", "")) for item in items}
    kinds = {item.name for item in items}
    masters = [item for item in items if "RECURRENCE-ID" not in item]
    ids = [item["RECURRENCE-ID"].to_ical() for item in items if "RECURRENCE-ID" in item]
    if len(uids) != 1 or "" in uids or len(kinds) != 1 or len(masters) > 1:
        raise BridgeError(ErrorKind.BAD_REQUEST, "exactly one calendaring item is allowed")
    if len(set(ids)) != len(ids):
        raise BridgeError(ErrorKind.BAD_REQUEST, "the same recurrence-id twice")


class _Writer:
    """Content lines from elements; collects the IANA zones whose VTIMEZONE must be added."""

    def __init__(self, user_zone: zoneinfo.ZoneInfo, defined: set[str]) -> None:
        self.user_zone = user_zone
        self.defined = defined
        self.needed: set[str] = set()

    def node(self, elem: etree._Element, depth: int, in_zone: bool) -> list[str]:
        name = _checked_name(_local(elem))
        children = _elements(elem)
        if name not in _COMPONENTS and not (name.startswith("X-") and children):
            if children:
                raise BridgeError(ErrorKind.BAD_REQUEST, f"{name.lower()} is not a component")
            return [self._property(name, elem, in_zone)]
        if depth >= MAX_COMPONENT_DEPTH:
            raise BridgeError(ErrorKind.BAD_REQUEST, "iCalendar components nested too deeply")
        # Inside VTIMEZONE, STANDARD and DAYLIGHT onsets are local times of the zone defined.
        inner = in_zone or name == "VTIMEZONE"
        lines = [f"BEGIN:{name}"]
        for child in children:
            lines.extend(self.node(child, depth + 1, inner))
        lines.append(f"END:{name}")
        return lines

    def _property(self, name: str, elem: etree._Element, in_zone: bool) -> str:
        params: dict[str, list[str]] = {}
        for attr, raw in _attributes(elem):
            key = _checked_name(attr)
            if key in params:
                raise BridgeError(ErrorKind.BAD_REQUEST, f"parameter {key} given twice")
            params[key] = raw.split(",") if key in _LIST_PARAMS else [raw]
        value_type = params["VALUE"][0].upper() if "VALUE" in params else None
        text = elem.text or ""
        if (value_type or DEFAULT_TYPES.get(name, "TEXT")) == "TEXT":
            value = _text_value(name, text)
        else:
            value = text.strip()
            if _CONTROL.search(value):
                raise _bad(name)
            value = self._typed(name, value, value_type, params, in_zone)
        head = "".join(
            f";{key}={','.join(param_value(v) for v in vals)}" for key, vals in params.items()
        )
        return f"{name}{head}:{value}"

    def _typed(
        self,
        name: str,
        value: str,
        value_type: str | None,
        params: dict[str, list[str]],
        in_zone: bool,
    ) -> str:
        kind = value_type or DEFAULT_TYPES[name]
        if kind == "DATE-TIME" and value_type is None and _SHAPES["DATE"].match(value):
            kind = "DATE"  # a bare date where a date-time is the default: an all-day value
            params["VALUE"] = ["DATE"]
        if kind in ("DATE", "DATE-TIME", "PERIOD"):
            if kind == "PERIOD":
                valid = all(_PERIOD.match(piece) for piece in value.split(","))
            else:
                valid = _SHAPES[kind].match(value) is not None
            if not valid:
                raise _bad(name)
            _check_dates(name, value)
            if kind == "DATE":
                params.pop("TZID", None)  # a date is the same day in every zone
                return value
            return value if in_zone else self._zoned(name, value, params)
        if kind == "DURATION" and not _SHAPES["DURATION"].match(value):
            raise _bad(name)
        if kind == "RECUR":
            _check_recur(name, value)
        if kind == "CAL-ADDRESS":
            return _cal_address(name, value)
        return value  # INTEGER, FLOAT, UTC-OFFSET...: icalendar's parse flags bad ones

    def _zoned(self, name: str, value: str, params: dict[str, list[str]]) -> str:
        utc = {mark for _, mark in _TIME_TOKEN.findall(value)}
        if len(utc) > 1:
            raise BridgeError(ErrorKind.BAD_REQUEST, f"{name.lower()} mixes UTC and local times")
        tzid = params.pop("TZID", [None])[0]
        if utc == {"Z"}:
            return value  # UTC already; a TZID beside Z would contradict it
        if name in _UTC_ONLY:
            zone = self.user_zone if tzid is None else zone_for(tzid)
            if zone is None:
                raise BridgeError(ErrorKind.BAD_REQUEST, f"unknown time zone in {name.lower()}")
            return _map_times(value, lambda local: _to_utc(local, zone))
        if tzid is None and self.user_zone.key in _UTC_KEYS:
            return _map_times(value, lambda local: local + "Z")
        params["TZID"] = [self._tzid(tzid)]
        return value

    def _tzid(self, tzid: str | None) -> str:
        if tzid is None:
            tzid = self.user_zone.key
        if tzid in self.defined:
            return tzid
        key = to_iana(tzid)
        if key is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, "unknown time zone")
        if key not in self.defined:
            self.needed.add(key)
        return key


def _vcalendar(elem: etree._Element) -> etree._Element:
    if _local(elem) == "VCALENDAR":
        return elem
    found = [child for child in _elements(elem) if _local(child) == "VCALENDAR"]
    if _local(elem) != "ICALENDAR" or len(found) != 1:
        raise BridgeError(ErrorKind.BAD_REQUEST, "an iCalendar element needs one vCalendar")
    return found[0]


def _attributes(elem: etree._Element) -> list[tuple[str, str]]:
    # Namespaced attributes (xml:lang and the like) describe the XML, not the calendar.
    return [
        (str(key), str(value))
        for key, value in elem.attrib.items()
        if not etree.QName(key).namespace
    ]


def _elements(elem: etree._Element) -> list[etree._Element]:
    return [child for child in elem if isinstance(child.tag, str)]  # not comments or PIs


def _local(elem: etree._Element) -> str:
    return etree.QName(elem).localname.upper()


def _checked_name(name: str) -> str:
    # BEGIN and END as property names would open or close components of their own.
    if _NAME.match(name) is None or name.upper() in ("BEGIN", "END"):
        raise BridgeError(ErrorKind.BAD_REQUEST, "not an iCalendar name")
    return name.upper()


def _bad(name: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, f"invalid {name.lower()} value")


def _text_value(name: str, text: str) -> str:
    if name in _LIST_TEXT:
        return escape_value(text, text=True, commas=True)
    if name == "REQUEST-STATUS":  # code;description[;data]: only the pieces are text
        return ";".join(escape_value(piece, text=True) for piece in text.split(";", 2))
    return escape_value(text, text=True)


def _check_dates(name: str, value: str) -> None:
    for token in re.findall(r"\d{8}(?:T\d{6})?", value):
        try:
            dt.datetime.strptime(token, "%Y%m%dT%H%M%S" if "T" in token else "%Y%m%d")
        except ValueError as exc:
            raise _bad(name) from exc


def _check_recur(name: str, value: str) -> None:
    parts = [part.partition("=") for part in value.upper().split(";")]
    keys = [key for key, eq, part in parts if eq and part]
    if len(keys) != len(parts) or len(set(keys)) != len(keys) or not set(keys) <= _RECUR_PARTS:
        raise _bad(name)
    if "FREQ" not in keys or {"UNTIL", "COUNT"} <= set(keys):
        raise _bad(name)
    numbers = {key: part for key, _, part in parts if key in ("COUNT", "INTERVAL")}
    if any(not part.isdigit() or int(part) < 1 for part in numbers.values()):
        raise _bad(name)
    until = [part for key, _, part in parts if key == "UNTIL"]
    if until and not re.fullmatch(rf"{_DATE}|{_DATE_TIME}", until[0]):
        raise _bad(name)
    try:
        vRecur.from_ical(value)
    except ValueError as exc:
        raise _bad(name) from exc


def _cal_address(name: str, value: str) -> str:
    if _URI.match(value):
        return value
    if _BARE_EMAIL.match(value):  # clients write plain addresses; the property wants a URI
        return f"mailto:{value}"
    raise _bad(name)


def _map_times(value: str, change: Callable[[str], str]) -> str:
    return _TIME_TOKEN.sub(lambda m: change(m.group(1)), value)


def _to_utc(local: str, zone: dt.tzinfo) -> str:
    moment = dt.datetime.strptime(local, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _parse(text: str) -> Calendar:
    try:
        cal = Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid iCalendar data") from exc
    # icalendar keeps what it cannot read as vBroken and lists it in `errors`.
    if any(comp.errors for comp in cal.walk()):
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid iCalendar value")
    return cal


@functools.lru_cache(maxsize=64)
def _vtimezone(key: str) -> bytes:
    # Building a VTIMEZONE walks the zone's transitions: once per zone, then parsed afresh per
    # use so that no caller shares a mutable component.
    text: bytes = Timezone.from_tzid(key).to_ical()
    return text


def _until_in_utc(comp: Component, resolve: Resolver) -> None:
    # The zone comes from this calendar's own definitions (zone_resolver): the tzinfo icalendar
    # decoded may be another calendar's definition of the same TZID (its cache is process-wide).
    start = comp.get("DTSTART")
    value = getattr(start, "dt", None)
    zone: dt.tzinfo | None = None
    if type(value) is dt.datetime:
        # Without TZID: UTC (Z), or floating (None), where UNTIL stays floating too.
        zone = resolve(start.params["TZID"]) if "TZID" in start.params else value.tzinfo
    rules = comp.get("RRULE")
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        until = rule.get("UNTIL")
        if zone is not None and until and type(until[0]) is dt.datetime and until[0].tzinfo is None:
            rule["UNTIL"] = [until[0].replace(tzinfo=zone).astimezone(dt.UTC)]
    for sub in comp.subcomponents:
        _until_in_utc(sub, resolve)
