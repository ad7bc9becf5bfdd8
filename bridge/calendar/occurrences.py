"""The occurrences of calendar resources that fall in a time window, for XIMSS findEvents.

``expand`` takes CalDAV resources as (href, iCalendar text) and a window, and returns every
VEVENT and VTODO instance that overlaps the window, expanded by recurring_ical_events and
placed in the user's zone. What it decides, so callers need not:

* Time zones: see ``localize``. TZIDs may be IANA or CommuniGate names without a VTIMEZONE, or
  a VTIMEZONE of the resource's own; floating times and unknown TZIDs are the user's zone.
* Overlap: the window is [start, end). An occurrence with a duration overlaps it when it
  starts before ``end`` and ends after ``start``; one without a duration when it starts in
  the window. An all-day occurrence runs from local midnight of its first date to local
  midnight after its last date, in the user's zone, so it overlaps by date.
* Order: by start instant; at the same instant all-day before timed; then summary, href, UID,
  recurrence id and kind, so that equal inputs always give the same list.
* Items without dates: a VTODO with neither DTSTART nor DUE has no place in time and is left
  out (RFC 5545 ties it to "each successive calendar date", which a window query cannot
  list); so is a VEVENT without DTSTART, which RFC 5545 does not allow. A VTODO with only a
  DUE occurs at its DUE with duration 0.
* Malformed resources (not iCalendar, not a VCALENDAR, a broken RRULE or date, a
  non-Gregorian CALSCALE) are skipped whole and their hrefs returned in
  ``Expansion.skipped``, in input order; the other resources are unaffected. An end before
  its start is not an error: recurring_ical_events swaps the two, and so do we.
* Limits: ``max_occurrences`` caps the result and ``max_expansion`` caps the recurrence
  instances generated for one resource (from each DTSTART on, so a dense rule that began
  long before the window counts too). A resource whose rules would exceed either is expanded
  only up to the instant that keeps it within both (``rulecost``), and its href is listed in
  ``Expansion.limited``. When any limit is reached ``truncated`` is true, and the result is
  still a prefix of the full answer in the order above: we drop every occurrence that starts
  at or after the earliest such instant, so what is returned is complete up to there, then
  cut to ``max_occurrences``. One exception keeps a single bad series from emptying the
  answer: a resource that cannot be expanded even up to the window's start (a dense rule
  that began long before it) adds nothing and is listed in ``limited``, without cutting the
  others short.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable

import recurring_ical_events  # type: ignore[import-untyped]
from icalendar import Calendar, Component

from bridge.calendar.localize import localize
from bridge.calendar.rulecost import RuleCost, query_stop, rule_cost

DEFAULT_MAX_OCCURRENCES = 10_000
# About a second of dateutil's time for one resource.
DEFAULT_MAX_EXPANSION = 100_000

KINDS = ("VEVENT", "VTODO")
_END_PROPERTY = {"VEVENT": "DTEND", "VTODO": "DUE"}

# What the libraries raise on text that is not valid iCalendar. recurring_ical_events'
# own errors derive from ValueError.
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)

# Explicit busy states, by the property that carries them, first match wins: CommuniGate's
# own (the spec's <busystatus>), then Microsoft's, which many clients write. OOF is Outlook's
# "out of office".
_BUSY_PROPERTIES = ("BUSYSTATUS", "X-MICROSOFT-CDO-BUSYSTATUS")
_BUSY_VALUES = {
    "BUSY": "BUSY",
    "TENTATIVE": "TENTATIVE",
    "UNAVAILABLE": "UNAVAILABLE",
    "FREE": "FREE",
    "OOF": "UNAVAILABLE",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Occurrence:
    """One instance of a VEVENT or VTODO, as findEvents reports it."""

    href: str  # the resource it came from
    uid: str  # the iCalendar UID
    # "" for an item that does not recur; else the instance's original start (its
    # RECURRENCE-ID) as UTC "YYYYMMDDTHHMMSSZ", or "YYYYMMDD" for all-day: stable across
    # queries, so (href, recurrence_id) can be mapped to a numeric id. Floating series are
    # in the user's zone, so theirs changes with it.
    recurrence_id: str
    start: datetime.datetime  # aware, in the user's zone; local midnight when all-day
    all_day: bool
    duration: int  # seconds; for all-day, whole days of 86400 seconds
    busy_status: str  # BUSY, TENTATIVE, UNAVAILABLE or FREE
    summary: str
    kind: str  # "VEVENT" or "VTODO"


@dataclasses.dataclass(frozen=True, slots=True)
class Expansion:
    """What ``expand`` found."""

    occurrences: tuple[Occurrence, ...]
    skipped: tuple[str, ...]  # hrefs of resources that were not valid iCalendar
    limited: tuple[str, ...]  # hrefs whose recurrences a limit cut short, in input order
    truncated: bool  # a limit was reached: the occurrences are a prefix of the full answer


def expand(
    resources: Iterable[tuple[str, str]],
    start: datetime.datetime,
    end: datetime.datetime,
    zone: datetime.tzinfo,
    *,
    max_occurrences: int = DEFAULT_MAX_OCCURRENCES,
    max_expansion: int = DEFAULT_MAX_EXPANSION,
) -> Expansion:
    """The occurrences of ``resources`` (href, iCalendar text) that overlap [start, end).

    ``start`` and ``end`` must be aware; ``zone`` is the user's. Raises ValueError for a
    naive or reversed window or a limit below 1.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("the window must be given as aware datetimes")
    if end < start:
        raise ValueError("the window ends before it starts")
    if max_occurrences < 1 or max_expansion < 1:
        raise ValueError("limits must be positive")
    window = _Window(start.astimezone(zone), end.astimezone(zone), zone)
    found: list[Occurrence] = []
    skipped: list[str] = []
    limited: list[str] = []
    complete_before = window.end
    for href, text in resources:
        try:
            occurrences, stop = _expand_resource(href, text, window, max_occurrences, max_expansion)
        except _MALFORMED:
            skipped.append(href)
            continue
        found.extend(occurrences)
        if stop < window.end:
            limited.append(href)
            if stop > window.start:
                complete_before = min(complete_before, stop)
    if complete_before < window.end:
        found = [item for item in found if item.start < complete_before]
    found.sort(key=_order)
    return Expansion(
        occurrences=tuple(found[:max_occurrences]),
        skipped=tuple(skipped),
        limited=tuple(limited),
        truncated=bool(limited) or len(found) > max_occurrences,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Window:
    start: datetime.datetime
    end: datetime.datetime
    zone: datetime.tzinfo

    def instant(self, value: datetime.date) -> datetime.datetime:
        """A date as local midnight, a floating time as local time, an aware one as is."""
        if not isinstance(value, datetime.datetime):
            return datetime.datetime.combine(value, datetime.time(), tzinfo=self.zone)
        return value if value.tzinfo is not None else value.replace(tzinfo=self.zone)

    def overlaps(self, start: datetime.datetime, end: datetime.datetime) -> bool:
        if start == end:
            return self.start <= start < self.end
        return start < self.end and end > self.start


def _order(item: Occurrence) -> tuple[datetime.datetime, bool, str, str, str, str, str]:
    return (
        item.start,
        not item.all_day,
        item.summary,
        item.href,
        item.uid,
        item.recurrence_id,
        item.kind,
    )


def _expand_resource(
    href: str, text: str, window: _Window, max_occurrences: int, max_expansion: int
) -> tuple[list[Occurrence], datetime.datetime]:
    """The occurrences of one resource in the window, and the instant they are complete up to.

    That instant is the window's end unless a limit cut the expansion short.
    """
    if window.start == window.end:
        return [], window.end
    parsed = Calendar.from_ical(text)
    if not isinstance(parsed, Calendar):
        raise ValueError("not a VCALENDAR")
    if str(parsed.get("CALSCALE", "GREGORIAN")).upper() != "GREGORIAN":
        raise ValueError("only Gregorian calendars are supported")
    items = [sub for sub in parsed.subcomponents if sub.name in KINDS and _has_dates(sub)]
    for item in items:
        # A VEVENT or VTODO inside another is not iCalendar; keep the library from finding it.
        item.subcomponents = [sub for sub in item.subcomponents if sub.name not in KINDS]
    localize(parsed, items, window.zone)
    # Only the dated items go to the query; VTIMEZONEs have done their work in localize.
    calendar = Calendar()
    for item in items:
        calendar.add_component(item)
    costs = [cost for item in items for cost in _rule_costs(item, window)]
    stop = window.end
    if costs:
        stop = query_stop(
            costs,
            window.start,
            window.end,
            max_expansion=max_expansion,
            max_occurrences=max_occurrences,
        )
    if stop <= window.start:
        return [], stop
    query = recurring_ical_events.CalendarQuery(calendar, components=KINDS)
    ids = _RecurrenceIds(items)
    result = []
    for component in query.between(window.start, stop):
        occurrence = _occurrence(href, component, window, ids)
        if occurrence is not None:
            result.append(occurrence)
    return result, stop


def _has_dates(item: Component) -> bool:
    if item.name == "VTODO":
        return "DTSTART" in item or "DUE" in item
    return "DTSTART" in item


def _when(component: Component, name: str) -> datetime.date | None:
    """The date or date-time value of a property, or None when it has none."""
    value = getattr(component.get(name), "dt", None)
    return value if isinstance(value, datetime.date) else None


def _rule_costs(item: Component, window: _Window) -> list[RuleCost]:
    rules = item.get("RRULE")
    start_value = _when(item, "DTSTART") or _when(item, "DUE")
    if not rules or start_value is None:
        return []
    start = window.instant(start_value)
    end_value = _when(item, _END_PROPERTY[str(item.name)])
    duration = getattr(item.get("DURATION"), "dt", None)
    if end_value is not None:
        duration = window.instant(end_value) - start
    if not isinstance(duration, datetime.timedelta):
        duration = datetime.timedelta(0)
    return [
        rule_cost(rule, start, duration) for rule in (rules if isinstance(rules, list) else [rules])
    ]


class _RecurrenceIds:
    """Finds each instance's original start, which recurring_ical_events does not give.

    For an instance of a RANGE=THISANDFUTURE override the library copies that override's
    RECURRENCE-ID onto every later instance; we move each one back by the override's shift
    (its DTSTART minus its RECURRENCE-ID), the same arithmetic the library moved it by.
    """

    def __init__(self, items: list[Component]) -> None:
        self.recurring = {
            str(item.get("UID", ""))
            for item in items
            if any(name in item for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
        }
        self.shifts: dict[tuple[str, str], datetime.timedelta] = {}
        for item in items:
            rid, start = _when(item, "RECURRENCE-ID"), _when(item, "DTSTART")
            if rid is None or start is None or not _this_and_future(item):
                continue
            if type(start) is type(rid):
                uid = str(item.get("UID", ""))
                self.shifts[uid, _utc_key(rid)] = start - rid

    def of(self, uid: str, component: Component) -> str:
        if uid not in self.recurring:
            return ""
        rid, start = _when(component, "RECURRENCE-ID"), _when(component, "DTSTART")
        if rid is None or start is None:
            raise ValueError("an occurrence without RECURRENCE-ID or DTSTART")
        key = _utc_key(rid)
        shift = self.shifts.get((uid, key))
        if shift is None:
            return key
        return _utc_key(start - shift)


def _this_and_future(item: Component) -> bool:
    params = getattr(item.get("RECURRENCE-ID"), "params", {})
    return str(params.get("RANGE", "")).upper() == "THISANDFUTURE"


def _utc_key(value: datetime.date) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def _occurrence(
    href: str, component: Component, window: _Window, ids: _RecurrenceIds
) -> Occurrence | None:
    kind = str(component.name)
    start_value = _when(component, "DTSTART")
    end_value = _when(component, _END_PROPERTY[kind])
    if start_value is None or end_value is None:
        # recurring_ical_events sets both on every occurrence it returns.
        raise ValueError("an occurrence without DTSTART or end")
    all_day = not isinstance(start_value, datetime.datetime)
    start = window.instant(start_value)
    end = window.instant(end_value)
    if not window.overlaps(start, end):
        return None
    if all_day:
        duration = max(0, (end.date() - start.date()).days) * 86400
    else:
        start = start.astimezone(window.zone)
        duration = max(0, round((end - start).total_seconds()))
    uid = str(component.get("UID", ""))
    return Occurrence(
        href=href,
        uid=uid,
        recurrence_id=ids.of(uid, component),
        start=start,
        all_day=all_day,
        duration=duration,
        busy_status=_busy_status(component),
        summary=str(component.get("SUMMARY", "")),
        kind=kind,
    )


def _busy_status(component: Component) -> str:
    for name in _BUSY_PROPERTIES:
        value = _BUSY_VALUES.get(str(component.get(name, "")).strip().upper())
        if value is not None:
            return value
    if str(component.get("STATUS", "")).upper() == "CANCELLED":
        return "FREE"  # it will not take place, so it takes no time
    if component.name == "VTODO":
        # RFC 5545 lets only events consume time (TRANSP is an event property); CalDAV's
        # free-busy-query reads VEVENTs alone.
        return "FREE"
    if str(component.get("TRANSP", "")).upper() == "TRANSPARENT":
        return "FREE"
    if str(component.get("STATUS", "")).upper() == "TENTATIVE":
        return "TENTATIVE"
    return "BUSY"
