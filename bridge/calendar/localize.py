"""Give every date-time in one parsed calendar resource the time zone it means.

icalendar resolves a TZID while it parses, through a process-wide cache that the first
VTIMEZONE seen under a TZID fills for good. On a gateway that parses every user's resources in
one process, that means one resource's "Custom Zone" (or a VTIMEZONE that calls itself
"NorthAmerica/Pacific") would decide the times of another user's resources; and a CommuniGate
name without a VTIMEZONE stays a naive, floating time. So we never trust the zone icalendar
attached: we keep only the wall-clock value and the TZID parameter, and resolve the TZID
again for this resource alone, in this order:

1. a name ``zones.to_iana`` knows (IANA or CommuniGate). The zone database wins over a
   VTIMEZONE of the same name because it carries the full history, where exported VTIMEZONEs
   often carry only today's rule; icalendar makes the same choice.
2. a VTIMEZONE in this resource with that TZID.
3. otherwise the floating zone: an unknown TZID is read like a time without one, which the
   XIMSS spec says is "local time in the Time Zone selected for the current user".

Floating times (no TZID, no Z) are put in the floating zone: the calendar's X-WR-TIMEZONE when
it names a zone we know (the de facto way exports such as Google's say where floating times
are), else the user's zone. UTC times and dates are left alone; dates are placed in the user's
zone later, when occurrences are made.

The rewrite is in place, on the calendar object this resource's parse produced.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

from icalendar import Calendar, Component, Timezone

from bridge.calendar import zones

# The date-time properties of VEVENT and VTODO that recurrence expansion reads.
_SINGLE_PROPERTIES = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID")
_LIST_PROPERTIES = ("EXDATE", "RDATE")

Resolver = Callable[[str | None], datetime.tzinfo]


def localize(calendar: Calendar, items: list[Component], user_zone: datetime.tzinfo) -> None:
    """Rewrite the date-times of ``items`` (components of ``calendar``) to their true zones.

    Raises what icalendar raises (ValueError and kin) for a VTIMEZONE it cannot build.
    """
    floating = _floating_zone(calendar, user_zone)
    resolve = zone_resolver(calendar, floating)
    for item in items:
        for name in _SINGLE_PROPERTIES:
            for prop in _occurrences_of(item, name):
                tzid = prop.params.get("TZID")
                prop.dt = _placed(prop.dt, tzid, resolve)
        for name in _LIST_PROPERTIES:
            for prop in _occurrences_of(item, name):
                tzid = prop.params.get("TZID")
                for value in prop.dts:
                    value.dt = _placed(value.dt, value.params.get("TZID", tzid), resolve)
        _fix_until(item)


def _floating_zone(calendar: Calendar, user_zone: datetime.tzinfo) -> datetime.tzinfo:
    named = calendar.get("X-WR-TIMEZONE")
    zone = zones.zone_for(str(named)) if named is not None else None
    return user_zone if zone is None else zone


def zone_resolver(calendar: Calendar, floating: datetime.tzinfo) -> Resolver:
    """TZID -> zone for this calendar alone: a known name, else its own VTIMEZONE, else
    `floating` (also for no TZID). Never icalendar's process-wide cache of definitions."""
    definitions: dict[str, Timezone] = {}
    for sub in calendar.subcomponents:
        if isinstance(sub, Timezone) and "TZID" in sub:
            definitions.setdefault(str(sub["TZID"]), sub)
    built: dict[str, datetime.tzinfo] = {}

    def resolve(tzid: str | None) -> datetime.tzinfo:
        if tzid is None:
            return floating
        known = zones.zone_for(tzid)
        if known is not None:
            return known
        if tzid not in built:
            definition = definitions.get(tzid)
            # lookup_tzid=False: build from this text, never from icalendar's shared cache.
            built[tzid] = floating if definition is None else definition.to_tz(lookup_tzid=False)
        return built[tzid]

    return resolve


def _occurrences_of(item: Component, name: str) -> Iterator[Any]:
    # A property that appears on several lines comes back as a list.
    value = item.get(name)
    if value is None:
        return
    yield from value if isinstance(value, list) else (value,)


def _placed(value: Any, tzid: str | None, resolve: Resolver) -> Any:
    if isinstance(value, tuple):  # an RDATE period: (start, end or duration)
        return tuple(_placed(part, tzid, resolve) for part in value)
    if not isinstance(value, datetime.datetime):
        return value  # a date or a duration
    if tzid is None and value.tzinfo is not None:
        return value  # UTC
    return value.replace(tzinfo=resolve(tzid))


def _fix_until(item: Component) -> None:
    """Keep a local-time UNTIL meaning the same instant now that DTSTART has a zone.

    RFC 5545 wants UNTIL in UTC when DTSTART has a zone, and in local time when DTSTART is
    floating. Once a floating DTSTART is given a zone, dateutil would read its local UNTIL as
    UTC and move the end of the series by the zone's offset; the same holds for the common
    (invalid) local UNTIL beside a TZID. We read such an UNTIL in DTSTART's zone.
    """
    start = item.get("DTSTART")
    if start is None or not isinstance(start.dt, datetime.datetime):
        return
    zone = start.dt.tzinfo
    for rule in _occurrences_of(item, "RRULE"):
        until = rule.get("UNTIL")
        if not until:
            continue
        fixed = []
        for value in until:
            if isinstance(value, datetime.datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=zone).astimezone(datetime.UTC)  # noqa: PLW2901
            fixed.append(value)
        rule["UNTIL"] = fixed
