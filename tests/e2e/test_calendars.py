"""Calendars end to end: XIMSS through the bridge onto Radicale, iTIP mail through Postfix into
Dovecot, each outcome checked on the servers themselves (issue 7's acceptance)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from adapters.caldav import CalDavConnector
from adapters.protocols import CalendarStore
from bridge import xml
from bridge.client import Reply, XimssClient
from bridge.errors import BridgeError, ErrorKind
from tests.conftest import devstack
from tests.e2e.folderkit import call
from tests.e2e.httpcheck import curl
from tests.e2e.test_messages import wait_for

XCAL = "urn:ietf:params:xml:ns:xcal"

SPEC_EXAMPLE = """<iCalendar xmlns="urn:ietf:params:xml:ns:xcal">
 <vCalendar method="PUBLISH" prodid="CommuniGate Pro 5.1.7" version="2.0">
  <vevent>
   <organizer CN="Big Boss">MAILTO:boss@company.dom</organizer>
   <attendee CN="Small Boy">MAILTO:boy@company.dom</attendee>
   <rrule>FREQ=WEEKLY;BYDAY=MO,TH</rrule>
   <dtstamp>20061022T091143Z</dtstamp>
   <uid>{uid}</uid>
   <sequence>0</sequence>
   <summary>Report Meeting</summary>
   <dtstart tzid="NorthAmerica/Pacific">20060515T100000</dtstart>
   <dtend tzid="NorthAmerica/Pacific">20060515T110000</dtend>
   <busystatus>BUSY</busystatus>
   <last-modified>20060516T034850Z</last-modified>
   <created>20060516T034850Z</created>
   <priority>5</priority>
   <description>A twice-a-week meeting to discuss the progress of the assigned projects.</description>
  </vevent>
 </vCalendar>
</iCalendar>"""


def icalendar(text: str) -> etree._Element:
    return xml.parse(text.encode())


def vevent(body: str, uid: str | None = None) -> etree._Element:
    uid_line = f"<uid>{uid or uuid.uuid4()}@test</uid>"
    return icalendar(
        f'<iCalendar xmlns="{XCAL}"><vCalendar version="2.0"><vevent>{uid_line}{body}'
        "</vevent></vCalendar></iCalendar>"
    )


async def set_zone(client: XimssClient, zone: str) -> None:
    settings = xml.element("newSettings")
    xml.sub(settings, "TimeZone", text=zone)
    await call(client, "prefsStore", {}, settings)


async def events(client: XimssClient, start: str, till: str, **extra: str) -> list[etree._Element]:
    reply = await call(
        client, "findEvents", {"calendar": "Main", "timeFrom": start, "timeTill": till, **extra}
    )
    found = reply.of("events")
    return [event for message in found for event in message.iter("event")]


def starts(found: list[etree._Element]) -> list[tuple[str | None, str | None, str]]:
    return [(e.get("timeFrom"), e.get("duration"), e.findtext("summary") or "") for e in found]


@pytest.fixture
async def organizer(
    bridge_port: int, stack: devstack.DevStack
) -> AsyncIterator[tuple[XimssClient, devstack.Account]]:
    account = stack.new_account("calorg")
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    await client.login(account.address, account.password)
    await call(client, "calendarOpen", {"calendar": "Main", "mailbox": "Calendar"})
    yield client, account
    await client.close()


async def caldav(stack: devstack.DevStack, account: devstack.Account) -> CalendarStore:
    return await CalDavConnector(stack.radicale.url).connect(account.address, account.password)


async def test_spec_example_gives_four_meetings_in_two_weeks_also_across_dst(
    organizer: tuple[XimssClient, devstack.Account],
) -> None:
    client, _ = organizer
    # The CommuniGate zone names are listed, and taken as the TimeZone preference.
    (known,) = (await call(client, "listKnownValues", {})).of("knownValues")
    names = [tzid.get("name") for tzid in known.iter("tzid")]
    assert "NorthAmerica/Pacific" in names and "America/Los_Angeles" in names
    await set_zone(client, "NorthAmerica/Pacific")
    await call(client, "calendarPublish", {"calendar": "Main", "sendRequests": "no"},
               icalendar(SPEC_EXAMPLE.format(uid=uuid.uuid4())))  # fmt: skip
    may = await events(client, "20060515T000000", "20060529T000000")
    assert starts(may) == [
        ("20060515T100000", "3600", "Report Meeting"), ("20060518T100000", "3600", "Report Meeting"),
        ("20060522T100000", "3600", "Report Meeting"), ("20060525T100000", "3600", "Report Meeting"),
    ]  # fmt: skip
    assert {e.get("busyStatus") for e in may} == {"BUSY"}
    # Daylight saving time ended on 2006-10-29: the meetings stay at 10:00 Pacific...
    autumn = await events(client, "20061023T000000", "20061106T000000")
    assert [e.get("timeFrom") for e in autumn] == [
        "20061023T100000", "20061026T100000", "20061030T100000", "20061102T100000",
    ]  # fmt: skip
    # ...so seen from UTC they move an hour later.
    await set_zone(client, "UTC")
    utc = await events(client, "20061023T000000", "20061106T000000")
    assert [e.get("timeFrom") for e in utc] == [
        "20061023T170000", "20061026T170000", "20061030T180000", "20061102T180000",
    ]  # fmt: skip
    # limit and skip page through the same four; items counts them all.
    reply = await call(client, "findEvents", {"calendar": "Main", "timeFrom": "20061023T000000",
                                              "timeTill": "20061106T000000", "skip": "1", "limit": "2"})  # fmt: skip
    (page,) = reply.of("events")
    assert page.get("items") == "4"
    assert [e.get("timeFrom") for e in page.iter("event")] == ["20061026T170000", "20061030T180000"]


async def test_all_day_exdate_override_and_floating_events(
    organizer: tuple[XimssClient, devstack.Account],
) -> None:
    client, _ = organizer
    await set_zone(client, "Europe/Berlin")
    publish = {"calendar": "Main", "sendRequests": "no"}
    await call(client, "calendarPublish", publish, vevent(
        "<summary>Holiday</summary><dtstart>20260701</dtstart><dtend>20260703</dtend>"))  # fmt: skip
    series = uuid.uuid4()
    both = icalendar(
        f'<iCalendar xmlns="{XCAL}"><vCalendar version="2.0">'
        f"<vevent><uid>{series}</uid><summary>Standup</summary>"
        '<dtstart tzid="Europe/Berlin">20260706T090000</dtstart><duration>PT15M</duration>'
        "<rrule>FREQ=DAILY;COUNT=5</rrule>"
        '<exdate tzid="Europe/Berlin">20260708T090000</exdate></vevent>'
        f"<vevent><uid>{series}</uid><summary>Standup (late)</summary>"
        '<recurrence-id tzid="Europe/Berlin">20260709T090000</recurrence-id>'
        '<dtstart tzid="Europe/Berlin">20260709T113000</dtstart><duration>PT30M</duration></vevent>'
        "</vCalendar></iCalendar>"
    )
    await call(client, "calendarPublish", publish, both)
    # Floating: no zone and no Z means the user's zone at publish time (the spec's rule).
    await call(client, "calendarPublish", publish, vevent(
        "<summary>Lunch</summary><dtstart>20260710T123000</dtstart><dtend>20260710T133000</dtend>"))  # fmt: skip
    task = icalendar(
        f'<iCalendar xmlns="{XCAL}"><vCalendar version="2.0"><vtodo><uid>{uuid.uuid4()}</uid>'
        "<summary>File report</summary><dtstart>20260711T080000</dtstart>"
        "<due>20260711T100000</due></vtodo></vCalendar></iCalendar>"
    )
    await call(client, "calendarPublish", publish, task)
    found = await events(client, "20260630T000000", "20260712T000000")
    got = [(e.get("timeFrom"), e.get("duration"), e.findtext("summary")) for e in found]
    assert ("20260711T080000", "7200", "File report") in got  # a task, from start to due
    assert (None, None, "Holiday") in got
    holiday = next(e for e in found if e.findtext("summary") == "Holiday")
    assert holiday.get("UID", "").isdigit()
    standups = [g for g in got if (g[2] or "").startswith("Standup")]
    assert standups == [
        ("20260706T090000", "900", "Standup"), ("20260707T090000", "900", "Standup"),
        ("20260709T113000", "1800", "Standup (late)"), ("20260710T090000", "900", "Standup"),
    ]  # fmt: skip
    assert ("20260710T123000", "3600", "Lunch") in got
    # calendarRead gives the stored item back (master and override) in the XML presentation.
    late = next(e for e in found if e.findtext("summary") == "Standup (late)")
    reply = await call(client, "calendarRead", {"calendar": "Main", "UID": late.get("UID", "")})
    (message,) = reply.of("calendarMessage")
    assert message.get("recurrenceId") == "20260709T070000Z"
    summaries = [s.text for s in message.iter(f"{{{XCAL}}}summary")]
    assert summaries == ["Standup", "Standup (late)"]


async def test_invitation_accept_reply_and_cancel_through_mail(
    organizer: tuple[XimssClient, devstack.Account],
    bridge_port: int,
    stack: devstack.DevStack,
) -> None:
    boss_client, boss = organizer
    guest = stack.new_account("calguest")
    guest_client = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await guest_client.login(guest.address, guest.password)
        await call(guest_client, "calendarOpen", {"calendar": "Main", "mailbox": "Calendar"})
        uid = f"{uuid.uuid4()}@test"
        item = vevent(
            f'<organizer CN="Boss">mailto:{boss.address}</organizer>'
            f'<attendee CN="Guest" RSVP="TRUE" PARTSTAT="NEEDS-ACTION">mailto:{guest.address}</attendee>'
            '<summary>Planning</summary><dtstart tzid="Europe/Berlin">20261201T100000</dtstart>'
            '<dtend tzid="Europe/Berlin">20261201T110000</dtend>',
            uid=uid.removesuffix("@test"),
        )
        await call(boss_client, "calendarPublish", {"calendar": "Main"}, item)

        request = await invitation(guest_client, "Invitation: Planning")
        assert request.find(f"{{{XCAL}}}vCalendar").get("method") == "REQUEST"
        await call(guest_client, "calendarAccept", {"calendar": "Main", "PARTSTAT": "ACCEPTED"},
                   request)  # fmt: skip
        # The guest's own calendar now holds it, accepted.
        mine = await (await caldav(stack, guest)).by_uid(
            await (await caldav(stack, guest)).default_calendar(), uid
        )
        assert len(mine) == 1 and "PARTSTAT=ACCEPTED" in mine[0].text.replace("\r\n ", "")

        answer = await invitation(boss_client, "Accepted: Planning")
        assert answer.find(f"{{{XCAL}}}vCalendar").get("method") == "REPLY"
        await call(boss_client, "calendarUpdate", {"calendar": "Main"}, answer)
        store = await caldav(stack, boss)
        stored = await store.by_uid(await store.default_calendar(), uid)
        unfolded = stored[0].text.replace("\r\n ", "")
        assert "PARTSTAT=ACCEPTED" in unfolded and guest.address in unfolded

        # Cancel by the number findEvents gave: gone from Radicale, a CANCEL in the guest's INBOX.
        found = await events(boss_client, "20261201T000000", "20261202T000000")
        (planning,) = [e for e in found if e.findtext("summary") == "Planning"]
        await call(boss_client, "calendarCancel", {"calendar": "Main", "UID": planning.get("UID", "")},
                   xml.element("requestComment", text="Moved to next year"))  # fmt: skip
        assert await store.by_uid(await store.default_calendar(), uid) == []
        cancel = await invitation(guest_client, "Cancelled: Planning")
        assert cancel.find(f"{{{XCAL}}}vCalendar").get("method") == "CANCEL"
        # Declining the cancellation with the calendar named removes the guest's copy, no reply.
        await call(guest_client, "calendarDecline", {"calendar": "Main"}, cancel)
        gone = await (await caldav(stack, guest)).by_uid(
            await (await caldav(stack, guest)).default_calendar(), uid
        )
        assert gone == []
    finally:
        await guest_client.close()


async def invitation(client: XimssClient, subject: str, timeout: float = 15.0) -> etree._Element:
    """The iCalendar element of the INBOX message with this subject, read through folderRead."""
    deadline = time.monotonic() + timeout
    while True:
        opened = await client.request("folderOpen", {"folder": "invites", "mailbox": "INBOX",
                                                     "sortField": "UID"})  # fmt: skip
        assert opened.ok
        (init,) = opened.of("folderReport")
        count = int(init.get("messages", "0"))
        found = None
        if count:
            browse = await call(client, "folderBrowse", {"folder": "invites"},
                                xml.element("index", {"from": "0", "till": str(count - 1)}))  # fmt: skip
            for report in browse.of("folderReport"):
                read = await call(
                    client, "folderRead", {"folder": "invites", "UID": report.get("UID", "")}
                )
                (message,) = read.of("folderMessage")
                if subject in (message.findtext(".//Subject") or ""):
                    found = message.find(f".//{{{XCAL}}}iCalendar")
        await call(client, "folderClose", {"folder": "invites"})
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {subject!r} in the INBOX")
        await asyncio.sleep(0.5)


async def test_a_change_made_elsewhere_notifies_and_shows_in_find_events(
    organizer: tuple[XimssClient, devstack.Account], stack: devstack.DevStack
) -> None:
    client, account = organizer
    assert await events(client, "20270101T000000", "20270102T000000") == []
    store = await caldav(stack, account)
    calendar = await store.default_calendar()
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other client//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uuid.uuid4()}@elsewhere\r\nDTSTAMP:20261120T000000Z\r\nSUMMARY:From elsewhere\r\n"
        "DTSTART:20270101T090000Z\r\nDTEND:20270101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    started = time.monotonic()
    await store.put(calendar, None, text, None)
    report = await client.unsolicited(10)
    assert (report.tag, report.get("calendar"), report.get("mode")) == (
        "calendarReport",
        "Main",
        "notify",
    )
    assert time.monotonic() - started < 5  # the dev stack polls every 2 s
    found = await events(client, "20270101T000000", "20270102T000000")
    assert [e.findtext("summary") for e in found] == ["From elsewhere"]


async def test_errors(organizer: tuple[XimssClient, devstack.Account]) -> None:
    client, _ = organizer
    again = await client.request("calendarOpen", {"calendar": "Main"})
    assert again.error_num is not None
    missing = await client.request("calendarOpen", {"calendar": "X", "mailbox": "No Such"})
    assert missing.error_num == "512"
    bad_time = await client.request("findEvents", {"calendar": "Main", "timeFrom": "soon",
                                                   "timeTill": "later"})  # fmt: skip
    assert bad_time.error_num == "501"
    junk = await client.request(
        "calendarPublish", {"calendar": "Main"}, children=[vevent("<dtstart>not a date</dtstart>")]
    )
    assert junk.error_num == "501"
    unknown: Reply = await client.request("calendarRead", {"calendar": "Main", "UID": "999999"})
    assert unknown.error_num == "512"
    await call(client, "calendarClose", {"calendar": "Main"})
    closed = await client.request("findEvents", {"calendar": "Main", "timeFrom": "20260101T000000",
                                                 "timeTill": "20260102T000000"})  # fmt: skip
    assert closed.error_num == "512"


async def test_a_signed_up_account_has_calendars_and_keeps_them_after_a_password_change(
    client: XimssClient, bridge_port: int, stack: devstack.DevStack
) -> None:
    name = f"calsign{uuid.uuid4().hex[:8]}"
    address = f"{name}@example.test"
    await client.call("signup", {"userName": name, "password": "first-pw"})
    await client.login(address, "first-pw")
    await call(client, "calendarOpen", {"calendar": "Main", "mailbox": "Calendar"})
    await call(client, "calendarPublish", {"calendar": "Main"},
               vevent("<summary>Mine</summary><dtstart>20261224T180000Z</dtstart>"))  # fmt: skip
    await call(client, "passwordModify", {"oldPassword": "first-pw", "newPassword": "second-pw"})
    # The session's CalDAV login follows the new password; the old one is refused by the server.
    found = await events(client, "20261224T000000", "20261225T000000")
    assert [e.findtext("summary") for e in found] == ["Mine"]
    await call(client, "calendarOpen", {"calendar": "Again", "mailbox": "Calendar"})
    with pytest.raises(BridgeError) as refused:
        await CalDavConnector(stack.radicale.url).connect(address, "first-pw")
    assert refused.value.kind is ErrorKind.AUTH_FAILED


async def test_publish_attaches_uploads_and_cancels_for_dropped_attendees(
    organizer: tuple[XimssClient, devstack.Account],
    bridge_port: int,
    stack: devstack.DevStack,
    http_url: str,
    tmp_path: Path,
) -> None:
    client, boss = organizer
    kept, dropped = stack.new_account("calkept"), stack.new_account("caldrop")
    session_id = client.session.get("urlID") if client.session is not None else ""
    agenda = tmp_path / "agenda.pdf"
    agenda.write_bytes(b"%PDF-1.4\n" + bytes(range(256)))
    uploaded = await curl("-F", f"fileData=@{agenda};type=application/pdf",
                          f"{http_url}/Session/{session_id}/UPLOAD/agenda")  # fmt: skip
    assert uploaded.status == 200
    uid = uuid.uuid4().hex

    def item(*guests: devstack.Account) -> etree._Element:
        lines = "".join(f"<attendee>mailto:{g.address}</attendee>" for g in guests)
        return vevent(
            f"<organizer>mailto:{boss.address}</organizer>{lines}<summary>Review {uid[:6]}</summary>"
            "<dtstart>20261210T090000Z</dtstart><dtend>20261210T100000Z</dtend>",
            uid=uid,
        )

    await call(client, "calendarPublish", {"calendar": "Main"}, item(kept, dropped),
               xml.element("MIME", {"uploadID": "agenda"}))  # fmt: skip
    store = await caldav(stack, boss)
    (stored,) = await store.by_uid(await store.default_calendar(), f"{uid}@test")
    unfolded = stored.text.replace("\r\n ", "")
    assert "ATTACH;" in unfolded and "FMTTYPE=application/pdf" in unfolded
    assert "FILENAME=agenda.pdf" in unfolded
    for guest in (kept, dropped):
        assert await wait_for(stack.ports.imap, guest, "INBOX", f"Invitation: Review {uid[:6]}")
    # Published again without one attendee: a CANCEL to them, a new REQUEST to the other.
    await call(client, "calendarPublish", {"calendar": "Main"}, item(kept))
    cancel = await wait_for(stack.ports.imap, dropped, "INBOX", f"Cancelled: Review {uid[:6]}")
    calendar_part = cancel.get_body(("calendar",))
    assert calendar_part is not None and "METHOD:CANCEL" in calendar_part.get_content()
    assert len(await store.by_uid(await store.default_calendar(), f"{uid}@test")) == 1


async def test_another_users_calendar_shared_by_the_server(
    organizer: tuple[XimssClient, devstack.Account],
    bridge_port: int,
    stack: devstack.DevStack,
) -> None:
    owner_client, owner = organizer
    guest = stack.new_account("calshare")
    # The dev stack's Radicale shares a calendar named for-<login> with that login.
    shared = f"for-{guest.address}"
    headers = {"Authorization": aiohttp.encode_basic_auth(owner.address, owner.password)}
    async with aiohttp.ClientSession() as http:
        url = f"{stack.radicale.url}{owner.address}/{shared}/"
        made = await http.request("MKCALENDAR", url, headers=headers)
        assert made.status == 201
    await call(owner_client, "calendarOpen", {"calendar": "Theirs", "mailbox": shared})
    await call(owner_client, "calendarPublish", {"calendar": "Theirs", "sendRequests": "no"},
               vevent("<summary>Shared plan</summary><dtstart>20261105T120000Z</dtstart>"))  # fmt: skip
    guest_client = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await guest_client.login(guest.address, guest.password)
        await call(guest_client, "calendarOpen",
                   {"calendar": "Main", "mailbox": f"~{owner.address}/{shared}"})  # fmt: skip
        found = await events(guest_client, "20261105T000000", "20261106T000000")
        assert [e.findtext("summary") for e in found] == ["Shared plan"]
        # Write access too: the owner sees what the guest adds.
        await call(guest_client, "calendarPublish", {"calendar": "Main", "sendRequests": "no"},
                   vevent("<summary>Guest note</summary><dtstart>20261105T150000Z</dtstart>"))  # fmt: skip
        reply = await call(owner_client, "findEvents", {"calendar": "Theirs", "timeFrom": "20261105T000000",
                                                        "timeTill": "20261106T000000"})  # fmt: skip
        assert {e.findtext("summary") for e in reply.of("events")[0].iter("event")} == {
            "Shared plan", "Guest note",
        }  # fmt: skip
        # The owner's default calendar stays private.
        refused = await guest_client.request(
            "calendarOpen", {"calendar": "Private", "mailbox": f"~{owner.address}/Calendar"}
        )
        assert refused.error_num is not None
    finally:
        await guest_client.close()


async def test_declining_an_invitation_from_mail_replies_declined(
    organizer: tuple[XimssClient, devstack.Account],
    bridge_port: int,
    stack: devstack.DevStack,
) -> None:
    boss_client, boss = organizer
    guest = stack.new_account("caldecl")
    guest_client = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await guest_client.login(guest.address, guest.password)
        tag = uuid.uuid4().hex[:6]
        await call(boss_client, "calendarPublish", {"calendar": "Main"}, vevent(
            f"<organizer>mailto:{boss.address}</organizer><attendee>mailto:{guest.address}</attendee>"
            f"<summary>Offsite {tag}</summary><dtstart>20261215T090000Z</dtstart>"))  # fmt: skip
        request = await invitation(guest_client, f"Invitation: Offsite {tag}")
        # No calendar named: the invitation is only answered, nothing is stored or removed.
        await call(guest_client, "calendarDecline", {}, request,
                   xml.element("replyComment", text="Sorry, travelling"))  # fmt: skip
        answer = await wait_for(stack.ports.imap, boss, "INBOX", f"Declined: Offsite {tag}")
        calendar_part = answer.get_body(("calendar",))
        assert calendar_part is not None
        text = calendar_part.get_content().replace("\r\n ", "")
        assert "METHOD:REPLY" in text and "PARTSTAT=DECLINED" in text
        assert "COMMENT:Sorry\\, travelling" in text  # a TEXT value: the comma escaped
    finally:
        await guest_client.close()
