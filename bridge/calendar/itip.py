"""iTIP (RFC 5546) on icalendar objects: the scheduling messages calendarPublish, calendarCancel,
calendarAccept/Decline and calendarUpdate need. Pure: `now` is passed in; inputs are never changed,
every result is a new Calendar.

An "item" is a Calendar holding one VEVENT or VTODO, possibly with overrides (components of the
same UID with RECURRENCE-ID) and VTIMEZONEs. Its primary component is the one without
RECURRENCE-ID, else the first. Addresses are compared as `address()` gives them: "mailto:"
stripped, lower case.

Decisions beyond the RFC's letter:
- REQUEST carries the item as stored, DTSTAMP set to `now` (RFC 5545: when METHOD is present,
  DTSTAMP is the message's creation time); VALARMs are dropped, being the organizer's reminders.
  SEQUENCE is the client's business on publish and is sent as it is.
- CANCEL of the whole item has STATUS:CANCELLED and every attendee; a CANCEL to some attendees
  (the ones a re-publish dropped) lists only them and, as RFC 5546 3.2.5 requires when
  uninviting, no STATUS. Both bump SEQUENCE by one.
- rsvp_wanted: only RSVP=FALSE stops a reply, as the spec's calendarAccept says (RFC 5545's own
  default would be FALSE, which would silence most invitations).
- REPLY holds my ATTENDEE (PARTSTAT set, RSVP dropped) plus what identifies the item (UID,
  SEQUENCE, RECURRENCE-ID, ORGANIZER) and, for the reader's sake, SUMMARY, LOCATION and times.
- apply_reply: a reply without RECURRENCE-ID updates the master and every override listing that
  attendee (the answer is for the whole series); a reply for one instance updates its override, or
  adds one (a copy of the master moved to that instance, no recurrence rules) when the master
  recurs: RFC 5546 lets an attendee answer a single instance and the stored item is the only place
  to keep that answer. Whether the instance is really in the recurrence set is not checked.
  A reply with a SEQUENCE lower than the stored one is outdated and refused; delegation
  (DELEGATED-TO adding attendees) is not processed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

from icalendar import Calendar, Component, Event, Todo, vCalAddress

from bridge.calendar.xcal_in import PRODID
from bridge.errors import BridgeError, ErrorKind


class Method(enum.StrEnum):
    PUBLISH = "PUBLISH"
    REQUEST = "REQUEST"
    REPLY = "REPLY"
    CANCEL = "CANCEL"


# RFC 5545 section 3.2.12: the participation statuses each component allows.
_EVENT_PARTSTATS = frozenset({"NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"})
PARTSTATS: dict[str, frozenset[str]] = {
    "VEVENT": _EVENT_PARTSTATS,
    "VTODO": _EVENT_PARTSTATS | {"COMPLETED", "IN-PROCESS"},
}
# calendarAccept's PARTSTAT attribute (IN-PROCESS and COMPLETED are for tasks, as PARTSTATS says).
ACCEPT_PARTSTATS = frozenset({"ACCEPTED", "TENTATIVE", "IN-PROCESS", "COMPLETED"})
_NOT_SUPPORTED_METHODS = frozenset({"ADD", "REFRESH", "COUNTER", "DECLINECOUNTER"})
_ITEM_CLASSES: dict[str, type[Component]] = {"VEVENT": Event, "VTODO": Todo}
_IDENTITY = ("UID", "SEQUENCE", "RECURRENCE-ID", "ORGANIZER")
_DISPLAY = ("SUMMARY", "LOCATION", "DTSTART", "DTEND", "DURATION", "DUE")
_RECURRENCE = ("RRULE", "RDATE", "EXDATE", "EXRULE")


def address(value: object) -> str:
    """A calendar address as compared here: "mailto:" stripped, lower case."""
    text = str(value).strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.strip().lower()


def kind(cal: Calendar) -> Method:
    """The iTIP method of `cal`; none is PUBLISH (a stored or published item)."""
    method = str(cal.get("METHOD", "PUBLISH")).strip().upper()
    if method in _NOT_SUPPORTED_METHODS:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, f"iTIP {method} is not supported")
    try:
        return Method(method)
    except ValueError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "unknown iTIP method") from exc


def organizer(cal: Calendar) -> str | None:
    found = _primary(cal).get("ORGANIZER")
    return address(found) if found is not None else None


def attendees(cal: Calendar) -> tuple[str, ...]:
    """Every attendee address of the item, overrides included, in order of appearance."""
    seen: dict[str, None] = {}
    for item in _items(cal):
        for line in _all(item, "ATTENDEE"):
            seen.setdefault(address(line), None)
    return tuple(seen)


def find_attendee(cal: Calendar, me: str) -> vCalAddress | None:
    """My ATTENDEE line in the primary component, if I am on it."""
    return _attendee(_primary(cal), me)


def dropped_attendees(old: Calendar, new: Calendar) -> tuple[str, ...]:
    """Attendees of `old` that `new` no longer has: who gets a CANCEL on re-publish."""
    kept = set(attendees(new))
    return tuple(who for who in attendees(old) if who not in kept)


def rsvp_wanted(cal: Calendar, me: str) -> bool:
    """Whether I should reply: I am an attendee, someone else organizes, and not RSVP=FALSE."""
    line = find_attendee(cal, me)
    boss = organizer(cal)
    if line is None or boss is None or boss == address(me):
        return False
    return str(line.params.get("RSVP", "TRUE")).upper() != "FALSE"


def request(cal: Calendar, *, now: dt.datetime) -> Calendar:
    """METHOD:REQUEST for the item, to all its attendees."""
    out = _copy(cal)
    primary = _primary(out)
    if "ORGANIZER" not in primary or not attendees(out):
        raise BridgeError(ErrorKind.BAD_REQUEST, "a request needs an organizer and attendees")
    _set_method(out, Method.REQUEST)
    for item in _items(out):
        _replace(item, "DTSTAMP", now.astimezone(dt.UTC))
        item.subcomponents[:] = [sub for sub in item.subcomponents if sub.name != "VALARM"]
    out.add_missing_timezones()  # a CalDAV server may have stored IANA TZIDs bare
    return out


def cancel(
    cal: Calendar,
    attendees: Iterable[str] | None = None,
    comment: str | None = None,
    *,
    now: dt.datetime,
) -> Calendar:
    """METHOD:CANCEL: the whole item to everyone (`attendees` None), or uninviting some."""
    primary = _primary(cal)
    if "ORGANIZER" not in primary:
        raise BridgeError(ErrorKind.BAD_REQUEST, "a cancel needs an organizer")
    slim = _slim(primary, _IDENTITY + _DISPLAY, now)
    _replace(slim, "SEQUENCE", _sequence(primary) + 1)
    lines = {address(line): line for item in _items(cal) for line in _all(item, "ATTENDEE")}
    if attendees is None:
        chosen = list(lines.values())
        slim.add("STATUS", "CANCELLED")
    else:
        wanted = dict.fromkeys(address(who) for who in attendees)
        chosen = [lines.get(who) or vCalAddress(f"mailto:{who}") for who in wanted]
    for line in chosen:
        slim.add("ATTENDEE", line)
    if comment:
        slim.add("COMMENT", comment)
    return _message(cal, slim, Method.CANCEL)


def reply(
    cal: Calendar, me: str, partstat: str, comment: str | None = None, *, now: dt.datetime
) -> Calendar:
    """METHOD:REPLY from attendee `me` with `partstat`, for the organizer."""
    primary = _primary(cal)
    partstat = _checked_partstat(primary, partstat)
    line = _attendee(primary, me)
    if line is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "you are not an attendee of this item")
    if "ORGANIZER" not in primary:
        raise BridgeError(ErrorKind.BAD_REQUEST, "the item has no organizer to reply to")
    mine = vCalAddress(str(line))
    mine.params.update({k: v for k, v in line.params.items() if k.upper() != "RSVP"})
    mine.params["PARTSTAT"] = partstat
    slim = _slim(primary, _IDENTITY + _DISPLAY, now)
    slim.add("ATTENDEE", mine)
    if comment:
        slim.add("COMMENT", comment)
    return _message(cal, slim, Method.REPLY)


def set_partstat(cal: Calendar, me: str, partstat: str) -> Calendar:
    """The item with my PARTSTAT set wherever I am an attendee (calendarAccept's stored copy)."""
    out = _copy(cal)
    partstat = _checked_partstat(_primary(out), partstat)
    lines = [line for item in _items(out) if (line := _attendee(item, me)) is not None]
    if not lines:
        raise BridgeError(ErrorKind.BAD_REQUEST, "you are not an attendee of this item")
    for line in lines:
        line.params["PARTSTAT"] = partstat
    return out


def apply_reply(stored: Calendar, answer: Calendar) -> Calendar:
    """The stored item with the PARTSTATs an attendee's REPLY (`answer`) carries."""
    if kind(answer) is not Method.REPLY:
        raise BridgeError(ErrorKind.BAD_REQUEST, "not a reply")
    out = _copy(stored)
    master = _primary(out)
    replies = _items(answer)
    if not replies:
        raise BridgeError(ErrorKind.BAD_REQUEST, "the reply has no vevent or vtodo")
    for part in replies:
        if str(part.get("UID", "")) != str(master.get("UID", "")):
            raise BridgeError(ErrorKind.BAD_REQUEST, "the reply is for another item")
        lines = _all(part, "ATTENDEE")
        if len(lines) != 1:
            raise BridgeError(ErrorKind.BAD_REQUEST, "a reply has exactly one attendee")
        who = address(lines[0])
        partstat = _checked_partstat(master, str(lines[0].params.get("PARTSTAT", "NEEDS-ACTION")))
        targets = _reply_targets(out, part, who)
        if _sequence(part) < _sequence(targets[0]):
            raise BridgeError(ErrorKind.BAD_REQUEST, "the reply is for an older version")
        for target in targets:
            line = _attendee(target, who)
            if line is not None:
                line.params["PARTSTAT"] = partstat
    return out


def _reply_targets(out: Calendar, part: Component, who: str) -> list[Component]:
    # The components the reply's answer goes to, the one it names first.
    items = _items(out)
    rid = _when(part, "RECURRENCE-ID")
    if rid is None:
        masters = [item for item in items if "RECURRENCE-ID" not in item]
        if not masters or _attendee(masters[0], who) is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, "the replying attendee is not invited")
        return masters + [item for item in items if item is not masters[0]]
    for item in items:
        if (found := _when(item, "RECURRENCE-ID")) is not None and _same(found, rid):
            if _attendee(item, who) is None:
                raise BridgeError(ErrorKind.BAD_REQUEST, "the replying attendee is not invited")
            return [item]
    master = _primary(out)
    if "RECURRENCE-ID" in master or not any(name in master for name in ("RRULE", "RDATE")):
        raise BridgeError(ErrorKind.BAD_REQUEST, "the reply names no instance of the item")
    if _attendee(master, who) is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "the replying attendee is not invited")
    override = _override(master, rid)
    out.subcomponents.insert(out.subcomponents.index(master) + 1, override)
    return [override]


def _override(master: Component, instance: dt.date) -> Component:
    # A copy of the master moved to one instance, as a recurrence override is written.
    copy = _ITEM_CLASSES[_name(master)].from_ical(master.to_ical())
    for name in _RECURRENCE:
        copy.pop(name, None)
    start = _when(master, "DTSTART")
    if isinstance(start, dt.datetime) and isinstance(instance, dt.datetime):
        if instance.tzinfo is None:
            instance = instance.replace(tzinfo=start.tzinfo)
        elif start.tzinfo is not None:
            instance = instance.astimezone(start.tzinfo)
        if (start.tzinfo is None) != (instance.tzinfo is None):
            raise _misfit()
    if start is not None and type(start) is not type(instance):
        raise _misfit()
    _replace(copy, "RECURRENCE-ID", instance)
    if start is not None:
        moved = instance - start
        for name in ("DTSTART", "DTEND", "DUE"):
            if (when := _when(master, name)) is not None:
                _replace(copy, name, when + moved)
    return copy


def _misfit() -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, "the reply's recurrence-id does not fit the item")


def _when(comp: Component, name: str) -> dt.date | None:
    # A date or date-time property's value (datetime is a date too); None for anything else.
    value: object = getattr(comp.get(name), "dt", None)
    return value if isinstance(value, dt.date) else None


def _same(one: dt.date, other: dt.date) -> bool:
    # RECURRENCE-IDs match as instants: the same time written in two zones is one instance.
    if isinstance(one, dt.datetime) and isinstance(other, dt.datetime):
        if (one.tzinfo is None) == (other.tzinfo is None):
            return one == other
        return False
    return type(one) is type(other) and one == other


def _name(comp: Component) -> str:
    return str(comp.name)


def _items(cal: Calendar) -> list[Component]:
    return [comp for comp in cal.subcomponents if comp.name in _ITEM_CLASSES]


def _primary(cal: Calendar) -> Component:
    items = _items(cal)
    if not items:
        raise BridgeError(ErrorKind.BAD_REQUEST, "no vevent or vtodo")
    return next((item for item in items if "RECURRENCE-ID" not in item), items[0])


def _all(comp: Component, name: str) -> list[Any]:
    value = comp.get(name)
    return [] if value is None else value if isinstance(value, list) else [value]


def _attendee(comp: Component, me: str) -> vCalAddress | None:
    wanted = address(me)
    return next((line for line in _all(comp, "ATTENDEE") if address(line) == wanted), None)


def _checked_partstat(item: Component, partstat: str) -> str:
    value = partstat.strip().upper()
    if value not in PARTSTATS.get(_name(item), frozenset()):
        raise BridgeError(ErrorKind.BAD_REQUEST, f"PARTSTAT {value} is not valid here")
    return value


def _sequence(comp: Component) -> int:
    try:
        return int(comp.get("SEQUENCE", 0))
    except (TypeError, ValueError) as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid sequence") from exc


def _copy(cal: Calendar) -> Calendar:
    return Calendar.from_ical(cal.to_ical())


def _replace(comp: Component, name: str, value: object) -> None:
    comp.pop(name, None)
    comp.add(name, value)


def _set_method(cal: Calendar, method: Method) -> None:
    _replace(cal, "METHOD", method.value)


def _slim(item: Component, names: tuple[str, ...], now: dt.datetime) -> Component:
    # A new component of the item's kind with only the named properties, stamped now.
    out = _ITEM_CLASSES[_name(item)]()
    for name in names:
        if name in item:
            out[name] = item[name]
    out.add("DTSTAMP", now.astimezone(dt.UTC))
    return out


def _message(source: Calendar, item: Component, method: Method) -> Calendar:
    # One component under a new VCALENDAR, with the VTIMEZONEs its times refer to.
    out = Calendar()
    out.add("PRODID", PRODID)
    out.add("VERSION", "2.0")
    out.add("METHOD", method.value)
    out.add_component(item)
    used = out.get_used_tzids()
    for zone in source.timezones:
        if str(zone.get("TZID")) in used:
            out.subcomponents.insert(len(out.subcomponents) - 1, zone)
    out.add_missing_timezones()
    return _copy(out)
