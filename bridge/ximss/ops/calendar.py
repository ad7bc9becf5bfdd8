"""Calendar section, reading side: calendarOpen, calendarClose, findEvents, calendarRead (the
publishing and scheduling operations are in `scheduling`).

A calendar is a CalDAV calendar collection of the user (or, as `~user@domain/Name`, another
user's, where the server allows). `mailbox="Calendar"` (the configured default name) is the
user's default calendar, created when missing; other names match a calendar's display name or
last path segment.

findEvents expands recurrences in the bridge (bridge.calendar.occurrences, over the icalendar and
recurring-ical-events libraries) from a CalDAV time-range query of unexpanded resources: one
expansion for every server, with time zones as the item defines them, rather than trusting each
server's `<C:expand>` (which returns UTC and drops the zone the client asked in). Each occurrence
gets a numeric `UID` (bridge.session.calendars.ItemIds). `timeFrom`/`timeTill` and the events'
`timeFrom` are in the user's TimeZone preference.

calendarRead answers `calendarMessage` (calendar, UID, and `recurrenceId` for an occurrence of a
recurring item) holding the stored item as the XML `iCalendar` presentation: the whole resource,
master and overrides, so that it can be changed and published back.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from adapters.protocols import CalendarInfo, CalendarResource, CalendarStore
from bridge import xml
from bridge.calendar.occurrences import expand
from bridge.errors import BridgeError, ErrorKind
from bridge.mime.xcal import ical_to_xcal
from bridge.session.calendars import OpenCalendar
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.service import TIME_FORMAT, format_time, user_zoneinfo

if TYPE_CHECKING:
    from bridge.session.session import Session
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

# Open calendars one session may hold (each polls the server).
MAX_OPEN_CALENDARS = 32


def parse_time(text: str | None, zone: dt.tzinfo, name: str) -> dt.datetime:
    """A XIMSS time (`YYYYMMDDTHHMMSS`, or a date `YYYYMMDD` for its midnight) in `zone`."""
    for shape in (TIME_FORMAT, "%Y%m%d"):
        try:
            return dt.datetime.strptime(text or "", shape).replace(tzinfo=zone)
        except ValueError:
            continue
    raise BridgeError(ErrorKind.BAD_REQUEST, f"{name} is not YYYYMMDDTHHMMSS")


def _count(request: Request, name: str) -> int | None:
    text = request.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise BridgeError(ErrorKind.BAD_REQUEST, f"{name} must be a non-negative number")
    return int(text)


def open_calendar(conv: Conversation, request: Request) -> OpenCalendar:
    return conv.require_session().calendars.get(request.require("calendar"))


async def calendar_store(conv: Conversation) -> CalendarStore:
    return await conv.require_session().calendars.store()


async def _find(conv: Conversation, store: CalendarStore, mailbox: str) -> CalendarInfo:
    domain = conv.services.domain(conv.require_session().domain)
    if mailbox.lower() == domain.settings.caldav.default_calendar.lower():
        return await store.default_calendar()
    info = await store.find(mailbox)
    if info is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "no such calendar")
    return info


def _notify(conv: Conversation, session: Session, calendar: OpenCalendar) -> None:
    """The calendar changed on the server: one notify until the client's next findEvents."""
    if (
        calendar.notified
        or session.closed
        or session.calendars.open.get(calendar.name) is not calendar
    ):
        return
    calendar.notified = True
    conv.unsolicited(
        codec.data("calendarReport", None, {"calendar": calendar.name, "mode": "notify"})
    )


async def calendar_open(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    name = request.require("calendar")
    if name in session.calendars.open:
        raise BridgeError(ErrorKind.ALREADY_EXISTS, "a calendar with this name is open")
    if len(session.calendars.open) >= MAX_OPEN_CALENDARS:
        raise BridgeError(ErrorKind.LIMIT, "too many open calendars")
    store = await calendar_store(conv)
    info = await _find(conv, store, request.get("mailbox") or name)
    ids = await conv.services.calendar_ids.get(session.account, info.href)
    calendar = OpenCalendar(name, info, ids)
    if name in session.calendars.open:  # opened meanwhile by a pipelined twin
        raise BridgeError(ErrorKind.ALREADY_EXISTS, "a calendar with this name is open")
    interval = conv.services.domain(session.domain).settings.caldav.poll_seconds
    calendar.unwatch = conv.services.calendar_pollers.subscribe(
        session.account, info, interval,
        lambda: _notify(conv, session, calendar), session.calendars.store,
    )  # fmt: skip
    session.calendars.open[name] = calendar
    return Outcome.DONE


async def calendar_close(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    if session.calendars.close(request.require("calendar")) is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "unknown calendar")
    return Outcome.DONE


async def find_events(conv: Conversation, request: Request) -> Outcome:
    calendar = open_calendar(conv, request)
    zone = user_zoneinfo(conv)
    start = parse_time(request.get("timeFrom"), zone, "timeFrom")
    end = parse_time(request.get("timeTill"), zone, "timeTill")
    if end < start:
        raise BridgeError(ErrorKind.BAD_REQUEST, "timeTill is before timeFrom")
    limit, skip = _count(request, "limit"), _count(request, "skip") or 0
    store = await calendar_store(conv)
    # The flag first: a change while the query runs must notify again.
    calendar.notified = False
    resources = await store.query(calendar.info, start.astimezone(dt.UTC), end.astimezone(dt.UTC))
    session = conv.require_session()
    caldav = conv.services.domain(session.domain).settings.caldav
    found = expand(
        ((r.href, r.text) for r in resources), start, end, zone,
        max_occurrences=caldav.max_occurrences,
    )  # fmt: skip
    occurrences = found.occurrences
    if occurrences:
        attrs = {
            "calendar": calendar.name,
            "timeFrom": request.get("timeFrom"),
            "timeTill": request.get("timeTill"),
            "skip": request.get("skip"),
            "items": str(len(occurrences)),
        }
        events = codec.data("events", request.id, attrs)
        chosen = occurrences[skip:] if limit is None else occurrences[skip : skip + limit]
        for occurrence in chosen:
            number = calendar.ids.number(occurrence.href, occurrence.recurrence_id)
            event = xml.sub(events, "event", {"UID": str(number)})
            if not occurrence.all_day:
                event.set("timeFrom", format_time(occurrence.start))
                event.set("duration", str(occurrence.duration))
            event.set("busyStatus", occurrence.busy_status)
            xml.sub(event, "summary", text=occurrence.summary)
        conv.send(events)
    await calendar.ids.save()
    return Outcome.DONE


async def item_of(
    conv: Conversation, calendar: OpenCalendar, number_text: str | None
) -> tuple[CalendarResource, str]:
    """The stored resource and recurrence id behind an item number findEvents gave."""
    if not number_text or not number_text.isdigit():
        raise BridgeError(ErrorKind.BAD_REQUEST, "UID is required")
    item = calendar.ids.item(int(number_text))
    if item is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "unknown calendar item")
    href, recurrence_id = item
    resource = await (await calendar_store(conv)).get(calendar.info, href)
    if resource is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "the calendar item is gone")
    return resource, recurrence_id


async def calendar_read(conv: Conversation, request: Request) -> Outcome:
    calendar = open_calendar(conv, request)
    resource, recurrence_id = await item_of(conv, calendar, request.get("UID"))
    presented = ical_to_xcal(resource.text)
    if presented is None:
        raise BridgeError(ErrorKind.BACKEND_REFUSED, "the stored item is not valid iCalendar")
    attrs = {
        "calendar": calendar.name,
        "UID": request.get("UID"),
        "recurrenceId": recurrence_id or None,
    }
    message = codec.data("calendarMessage", request.id, attrs)
    message.append(presented)
    conv.send(message)
    return Outcome.DONE
