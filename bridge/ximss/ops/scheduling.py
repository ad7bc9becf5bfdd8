"""Calendar section, changing side: calendarPublish, calendarCancel, calendarUpdate,
calendarAccept, calendarDecline, with iTIP (RFC 5546) messages mailed by iMIP (RFC 6047) through
the session's SMTP submission, as the user.

- calendarPublish stores the item (replacing the resource that holds its UID, ETag-conditional);
  unless `sendRequests="no"`, the organizer's attendees get a REQUEST, and attendees dropped since
  the stored version a CANCEL. `MIME`/`copyMIME` elements become ATTACH properties (inline
  base64, with FMTTYPE and FILENAME).
- calendarCancel removes every resource with the item's UID (taken from the `iCalendar` element,
  or from the numeric `UID` findEvents gave); unless `sendRequests="no"` the attendees get a
  CANCEL with the `requestComment` text.
- calendarUpdate applies an attendee's REPLY (PARTSTAT) to the stored item.
- calendarAccept stores the item with the user's PARTSTAT and replies to the organizer unless
  `sendReply="no"` or the user's ATTENDEE line says RSVP=FALSE.
- calendarDecline replies DECLINED (with `replyComment`) to a request or a stored item, and removes
  the item from `calendar` when given; for a CANCEL it only removes, never replies.
Mail goes out only after the calendar change succeeded; a refused mail fails the operation with
the change already made (the response says so), never the reverse.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from icalendar import Calendar, vBinary
from lxml import etree

from adapters.protocols import CalendarInfo, CalendarResource, CalendarStore
from bridge.calendar import itip
from bridge.calendar.imip import imip_message
from bridge.calendar.xcal_in import calendar_text, publishable, xcal_to_calendar
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.calendar import calendar_store, item_of, open_calendar
from bridge.ximss.ops.sending import HOSTNAME, resolve_attachments
from bridge.ximss.ops.service import user_zoneinfo

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.ximss")

SUBJECTS = {
    itip.Method.REQUEST: "Invitation: {summary}",
    itip.Method.CANCEL: "Cancelled: {summary}",
    itip.Method.REPLY: "{status}: {summary}",
}


def _found_icalendar(request: Request) -> etree._Element | None:
    for child in request.element:
        if isinstance(child.tag, str) and etree.QName(child).localname == "iCalendar":
            return child
    return None


def _icalendar(request: Request) -> etree._Element:
    found = _found_icalendar(request)
    if found is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "an iCalendar element is required")
    return found


def _said_no(request: Request, name: str) -> bool:
    return (request.get(name) or "").lower() == "no"


def _text_of(request: Request, tag: str) -> str | None:
    found = request.element.find(tag)
    return (found.text or "").strip() or None if found is not None else None


def _uid(cal: Calendar) -> str:
    for comp in cal.subcomponents:
        if comp.name in ("VEVENT", "VTODO") and "UID" in comp:
            return str(comp["UID"])
    raise BridgeError(ErrorKind.BAD_REQUEST, "the item has no uid")


def _summary(cal: Calendar) -> str:
    for comp in cal.subcomponents:
        if comp.name in ("VEVENT", "VTODO"):
            return str(comp.get("SUMMARY", "")) or "(no title)"
    return "(no title)"


def _parsed(resource: CalendarResource) -> Calendar:
    try:
        return Calendar.from_ical(resource.text)
    except ValueError as exc:
        raise BridgeError(
            ErrorKind.BACKEND_REFUSED, "the stored item is not valid iCalendar"
        ) from exc


async def _mail(
    conv: Conversation,
    message: Calendar,
    recipients: Sequence[str],
    comment: str | None = None,
    status: str = "",
) -> None:
    """Mail an iTIP message to `recipients` (never to the user), as the user."""
    session = conv.require_session()
    me = itip.address(session.account)
    wanted = [who for who in dict.fromkeys(recipients) if who and who != me]
    if not wanted:
        return
    if session.submitter is None:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "this session cannot send mail")
    method = itip.kind(message)
    subject = SUBJECTS.get(method, "{summary}").format(summary=_summary(message), status=status)
    body = f"{subject}\n\n{comment}\n" if comment else f"{subject}\n"
    data = imip_message(
        message, sender=session.account, sender_name=session.real_name, recipients=wanted,
        subject=subject, body=body, now=dt.datetime.now(dt.UTC), hostname=HOSTNAME,
    )  # fmt: skip
    await session.submitter.submit(session.account, wanted, data)


async def _store_item(
    store: CalendarStore, info: CalendarInfo, cal: Calendar
) -> CalendarResource | None:
    """Put the item where its UID lives (replacing it, ETag-checked) or anew; returns the
    version it replaced. Extra resources with the same UID are removed (the spec: "the existing
    item(s) with the same UID are removed")."""
    existing = await store.by_uid(info, _uid(cal))
    text = calendar_text(cal)
    if not existing:
        await store.put(info, None, text, None)
        return None
    first, *rest = existing
    await store.put(info, first.href, text, first.etag)
    for extra in rest:
        await store.delete(info, extra.href, extra.etag)
    return first


async def _attach(conv: Conversation, request: Request, cal: Calendar) -> None:
    """MIME (uploads) and copyMIME elements of the request become inline ATTACH properties."""
    elements = [c for c in request.element if c.tag in ("MIME", "copyMIME")]
    if not elements:
        return
    resolve = await resolve_attachments(conv, request.element)
    item = next(c for c in cal.subcomponents if c.name in ("VEVENT", "VTODO"))
    for element in elements:
        found = resolve(element)
        data, content_type, filename = found.data, found.content_type, found.filename
        if found.entity:
            part = email.message_from_bytes(found.data, policy=email.policy.default)
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            content_type, filename = part.get_content_type(), part.get_filename()
        params = {"VALUE": "BINARY", "ENCODING": "BASE64"}
        if content_type:
            params["FMTTYPE"] = content_type.split(";")[0].strip()
        if filename:
            params["FILENAME"] = filename
        attach = vBinary(base64.b64encode(data).decode("ascii"))
        attach.params.update(params)
        item.add("ATTACH", attach, encode=False)


def _me(conv: Conversation) -> str:
    return itip.address(conv.require_session().account)


async def calendar_publish(conv: Conversation, request: Request) -> Outcome:
    calendar = open_calendar(conv, request)
    now = dt.datetime.now(dt.UTC)
    cal = publishable(_icalendar(request), user_zoneinfo(conv), hostname=HOSTNAME, now=now)
    await _attach(conv, request, cal)
    store = await calendar_store(conv)
    old = await _store_item(store, calendar.info, cal)
    if _said_no(request, "sendRequests") or itip.organizer(cal) != _me(conv):
        return Outcome.DONE
    if itip.attendees(cal):
        await _mail(conv, itip.request(cal, now=now), itip.attendees(cal))
    if old is not None:
        dropped = itip.dropped_attendees(_parsed(old), cal)
        if dropped:
            await _mail(conv, itip.cancel(_parsed(old), dropped, now=now), dropped)
    return Outcome.DONE


async def _item_to_cancel(conv: Conversation, request: Request) -> tuple[str, Calendar | None]:
    element = _found_icalendar(request)
    if element is not None:
        cal = xcal_to_calendar(element, user_zoneinfo(conv))
        return _uid(cal), cal
    calendar = open_calendar(conv, request)
    resource, _ = await item_of(conv, calendar, request.get("UID"))
    cal = _parsed(resource)
    return _uid(cal), cal


async def calendar_cancel(conv: Conversation, request: Request) -> Outcome:
    calendar = open_calendar(conv, request)
    uid, given = await _item_to_cancel(conv, request)
    store = await calendar_store(conv)
    stored = await store.by_uid(calendar.info, uid)
    # The attendees to tell are those of the stored item when there is one.
    item = _parsed(stored[0]) if stored else given
    for resource in stored:
        await store.delete(calendar.info, resource.href, resource.etag)
    if not stored and given is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "no such calendar item")
    if _said_no(request, "sendRequests") or item is None:
        return Outcome.DONE
    if itip.organizer(item) and itip.attendees(item):
        comment = _text_of(request, "requestComment")
        message = itip.cancel(item, None, comment, now=dt.datetime.now(dt.UTC))
        await _mail(conv, message, itip.attendees(item), comment)
    return Outcome.DONE


async def calendar_update(conv: Conversation, request: Request) -> Outcome:
    calendar = open_calendar(conv, request)
    answer = xcal_to_calendar(_icalendar(request), user_zoneinfo(conv))
    store = await calendar_store(conv)
    stored = await store.by_uid(calendar.info, _uid(answer))
    if not stored:
        raise BridgeError(ErrorKind.NOT_FOUND, "the item this reply answers is not in the calendar")
    updated = itip.apply_reply(_parsed(stored[0]), answer)
    await store.put(calendar.info, stored[0].href, calendar_text(updated), stored[0].etag)
    return Outcome.DONE


def _stored_form(cal: Calendar) -> Calendar:
    """An iTIP message as a calendar resource: no METHOD (RFC 4791 forbids it there)."""
    cal.pop("METHOD", None)
    return cal


async def calendar_accept(conv: Conversation, request: Request) -> Outcome:
    calendar = open_calendar(conv, request)
    partstat = request.require("PARTSTAT").upper()
    cal = xcal_to_calendar(_icalendar(request), user_zoneinfo(conv))
    if itip.kind(cal) in (itip.Method.CANCEL, itip.Method.REPLY):
        raise BridgeError(ErrorKind.BAD_REQUEST, "only a request or a published item is accepted")
    me = _me(conv)
    accepted = _stored_form(itip.set_partstat(cal, me, partstat))
    store = await calendar_store(conv)
    await _store_item(store, calendar.info, accepted)
    if not _said_no(request, "sendReply") and itip.rsvp_wanted(accepted, me):
        now = dt.datetime.now(dt.UTC)
        boss = itip.organizer(accepted)
        message = itip.reply(accepted, me, partstat, now=now)
        await _mail(conv, message, [boss] if boss else [], status=partstat.capitalize())
    return Outcome.DONE


async def calendar_decline(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    cal = xcal_to_calendar(_icalendar(request), user_zoneinfo(conv))
    method = itip.kind(cal)
    if method is itip.Method.REPLY:
        raise BridgeError(ErrorKind.BAD_REQUEST, "a reply cannot be declined")
    name = request.get("calendar")
    if name:
        calendar = session.calendars.get(name)
        store = await calendar_store(conv)
        for resource in await store.by_uid(calendar.info, _uid(cal)):
            await store.delete(calendar.info, resource.href, resource.etag)
    me = _me(conv)
    if method is itip.Method.CANCEL or _said_no(request, "sendReply"):
        return Outcome.DONE
    boss = itip.organizer(cal)
    if boss and boss != me and itip.find_attendee(cal, me) is not None:
        comment = _text_of(request, "replyComment")
        message = itip.reply(cal, me, "DECLINED", comment, now=dt.datetime.now(dt.UTC))
        await _mail(conv, message, [boss], comment, status="Declined")
    return Outcome.DONE
