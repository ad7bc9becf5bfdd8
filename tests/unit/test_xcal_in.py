"""XIMSS XML iCalendar -> icalendar: the spec's example, round trips through xcal.py, time zones,
calendarPublish's rules, and junk refused as BAD_REQUEST."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from bridge import xml
from bridge.calendar.xcal_in import (
    MAX_ADDED_ZONES,
    PRODID,
    calendar_text,
    publishable,
    xcal_to_calendar,
)
from bridge.errors import BridgeError, ErrorKind
from bridge.mime.xcal import ical_to_xcal

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
NS = 'xmlns="urn:ietf:params:xml:ns:xcal"'

# The spec's calendarPublish example (lines 1404-1425), its iCalendar element as sent.
SPEC_PUBLISH = b"""<iCalendar xmlns="urn:ietf:params:xml:ns:xcal">
    <vCalendar method="PUBLISH" prodid="CommuniGate Pro 5.1.7" version="2.0">
     <vevent>
      <organizer CN="Big Boss">MAILTO:boss@company.dom</organizer>
      <attendee CN="Small Boy">MAILTO:boy@company.dom</attendee>
      <rrule>FREQ=WEEKLY;BYDAY=MO,TH</rrule>
      <dtstamp>20061022T091143Z</dtstamp>
      <uid>18927897984@kjjkjkjk-123444</uid>
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


def publish(document: bytes | str, zone: zoneinfo.ZoneInfo = BERLIN) -> Calendar:
    data = document.encode() if isinstance(document, str) else document
    return publishable(xml.parse(data), zone, hostname="bridge.example", now=NOW)


def convert(document: bytes | str, zone: zoneinfo.ZoneInfo = BERLIN) -> Calendar:
    data = document.encode() if isinstance(document, str) else document
    return xcal_to_calendar(xml.parse(data), zone)


def event_xml(*props: str, method: str = "") -> str:
    attrs = f' method="{method}"' if method else ""
    return (
        f'<iCalendar {NS}><vCalendar version="2.0"{attrs}><vevent>'
        + "".join(props)
        + "</vevent></vCalendar></iCalendar>"
    )


def lines_of(cal: Calendar) -> list[str]:
    return re.sub(r"\r\n[ \t]", "", calendar_text(cal)).split("\r\n")


def event_of(cal: Calendar) -> Event:
    events = [comp for comp in cal.subcomponents if comp.name == "VEVENT"]
    assert len(events) == 1
    return events[0]


def test_spec_publish_example_becomes_self_contained_icalendar() -> None:
    cal = publish(SPEC_PUBLISH)
    text = calendar_text(cal)
    parsed = Calendar.from_ical(text)  # what a CalDAV server would get parses on its own
    assert [comp.name for comp in parsed.subcomponents] == ["VTIMEZONE", "VEVENT"]
    assert parsed.subcomponents[0]["TZID"] == "America/Los_Angeles"
    assert {sub.name for sub in parsed.subcomponents[0].subcomponents} == {"STANDARD", "DAYLIGHT"}
    lines = lines_of(cal)
    assert "DTSTART;TZID=America/Los_Angeles:20060515T100000" in lines
    assert "DTEND;TZID=America/Los_Angeles:20060515T110000" in lines
    assert 'ORGANIZER;CN="Big Boss":MAILTO:boss@company.dom' in lines
    assert "RRULE:FREQ=WEEKLY;BYDAY=MO,TH" in lines
    assert "UID:18927897984@kjjkjkjk-123444" in lines
    assert "BUSYSTATUS:BUSY" in lines
    assert "PRODID:CommuniGate Pro 5.1.7" in lines and "VERSION:2.0" in lines
    assert not any(line.startswith("METHOD") for line in lines)  # RFC 4791: not in stored items
    event = event_of(parsed)
    start = event.decoded("DTSTART")
    assert start == dt.datetime(2006, 5, 15, 17, 0, tzinfo=dt.UTC)
    assert str(event["DESCRIPTION"]).startswith("A twice-a-week meeting")
    assert event["DTSTAMP"].dt == dt.datetime(2006, 10, 22, 9, 11, 43, tzinfo=dt.UTC)


def test_spec_example_survives_being_shown_again() -> None:
    cal = publish(SPEC_PUBLISH)
    shown = ical_to_xcal(calendar_text(cal))
    assert shown is not None
    assert convert(xml.serialize(shown)) == cal


# ---- round trips: xcal_to_calendar(ical_to_xcal(text)) == text --------------------------------

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo")
SAFE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\n,;:\\\"'^"),
    max_size=40,
)
WORD = st.text(st.characters(whitelist_categories=("L", "N"), max_codepoint=0x2FF), min_size=1)
RRULES = st.sampled_from(
    [
        None,
        "FREQ=DAILY;COUNT=5",
        "FREQ=WEEKLY;BYDAY=MO,TH;INTERVAL=2",
        "FREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20301231T235959Z",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    ]
)


@st.composite
def calendars(draw: st.DrawFn) -> str:
    cal = Calendar()
    cal.add("prodid", draw(st.sampled_from(["-//Test//EN", "Some; odd, prodid"])))
    cal.add("version", "2.0")
    event = Event()
    event.add("uid", draw(WORD) + "@example.com")
    event.add("dtstamp", NOW)
    kind = draw(st.sampled_from(["utc", "date", "zoned"]))
    start = draw(st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2036, 1, 1))).replace(
        microsecond=0
    )
    if kind == "date":
        event.add("dtstart", start.date())
        event.add("dtend", start.date() + dt.timedelta(days=1))
    else:
        zone = dt.UTC if kind == "utc" else zoneinfo.ZoneInfo(draw(st.sampled_from(ZONES)))
        event.add("dtstart", start.replace(tzinfo=zone))
        event.add("duration", dt.timedelta(minutes=draw(st.integers(1, 6000))))
        if kind == "zoned":
            cal.add_component(Timezone.from_tzid(str(zone)))
    for name in ("summary", "description", "location"):
        if draw(st.booleans()):
            event.add(name, draw(SAFE_TEXT))
    if draw(st.booleans()):
        event.add("categories", draw(st.lists(WORD, min_size=1, max_size=3)))
    if (rule := draw(RRULES)) is not None:
        event.add("rrule", rule if kind != "date" else "FREQ=DAILY;COUNT=3")
    event.add("sequence", draw(st.integers(0, 1000)))
    organizer = vCalAddress("mailto:org@example.com")
    organizer.params["CN"] = draw(SAFE_TEXT.filter(lambda s: "\n" not in s))
    event.add("organizer", organizer)
    for address in draw(st.lists(WORD, max_size=3, unique=True)):
        attendee = vCalAddress(f"mailto:{address}@example.org")
        attendee.params["PARTSTAT"] = draw(st.sampled_from(["ACCEPTED", "NEEDS-ACTION"]))
        attendee.params["RSVP"] = "TRUE"
        event.add("attendee", attendee)
    event.add("x-custom-prop", vText(draw(SAFE_TEXT)))  # X- values are TEXT: escaped
    cal.add_component(event)
    return calendar_text(cal)


@settings(max_examples=60, deadline=None)
@given(calendars())
def test_round_trip_through_the_xml_presentation(text: str) -> None:
    shown = ical_to_xcal(text)
    assert shown is not None
    back = convert(xml.serialize(shown), zoneinfo.ZoneInfo("Asia/Kolkata"))
    assert back == Calendar.from_ical(text)


def test_round_trip_of_a_rich_item() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nX-WR-CALNAME:Work\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:Custom Zone\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        "TZOFFSETFROM:+0330\r\nTZOFFSETTO:+0330\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VTODO\r\nUID:todo-1\r\nDTSTAMP:20240101T000000Z\r\n"
        "DTSTART;TZID=Custom Zone:20240105T090000\r\nDUE;VALUE=DATE:20240110\r\n"
        "SUMMARY:Pay\\, then file\\; done\r\nDESCRIPTION:Two\\nlines \\\\ backslash\r\n"
        "PERCENT-COMPLETE:40\r\nPRIORITY:1\r\nGEO:37.386013;-122.082932\r\n"
        "CATEGORIES:Work,Money\r\nURL:https://example.com/a?b=c;d\r\n"
        "RDATE;VALUE=PERIOD:20240201T090000Z/PT1H,20240301T090000Z/20240301T100000Z\r\n"
        "EXDATE;TZID=Custom Zone:20240112T090000,20240119T090000\r\n"
        'ATTENDEE;DELEGATED-TO="mailto:a@x.org","mailto:b@x.org";CN="Doe, Jane";'
        "PARTSTAT=DELEGATED:mailto:jane@x.org\r\n"
        "REQUEST-STATUS:2.0;Success\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER;RELATED=END:-PT15M\r\n"
        "END:VALARM\r\nBEGIN:VALARM\r\nACTION:AUDIO\r\nTRIGGER;VALUE=DATE-TIME:20240105T080000Z\r\n"
        "END:VALARM\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    shown = ical_to_xcal(text)
    assert shown is not None
    back = convert(xml.serialize(shown))
    assert back == Calendar.from_ical(text)
    assert back["X-WR-CALNAME"] == "Work"
    lines = lines_of(back)
    assert "DTSTART;TZID=Custom Zone:20240105T090000" in lines  # defined in the item: kept
    assert sum(line.startswith("BEGIN:VTIMEZONE") for line in lines) == 1


# ---- time zones ----------------------------------------------------------------------------


def test_local_times_take_the_user_zone() -> None:
    cal = publish(
        event_xml(
            "<uid>u1</uid><dtstart>20240510T093000</dtstart><dtend>20240510T103000</dtend>",
            "<exdate>20240517T093000,20240524T093000</exdate><rrule>FREQ=WEEKLY</rrule>",
            "<created>20240501T120000</created>",  # UTC-only: converted, not zoned
        ),
        zoneinfo.ZoneInfo("America/New_York"),
    )
    lines = lines_of(cal)
    assert "DTSTART;TZID=America/New_York:20240510T093000" in lines
    assert "EXDATE;TZID=America/New_York:20240517T093000,20240524T093000" in lines
    assert "CREATED:20240501T160000Z" in lines
    assert cal.subcomponents[0].name == "VTIMEZONE"
    assert cal.subcomponents[0]["TZID"] == "America/New_York"


def test_user_zone_utc_means_z() -> None:
    cal = publish(
        event_xml("<uid>u</uid><dtstart>20240510T093000</dtstart>"), zoneinfo.ZoneInfo("UTC")
    )
    assert "DTSTART:20240510T093000Z" in lines_of(cal)
    assert [comp.name for comp in cal.subcomponents] == ["VEVENT"]


def test_all_day_values_take_no_zone() -> None:
    cal = publish(
        event_xml(
            '<uid>u</uid><dtstart VALUE="DATE">20240510</dtstart>',
            '<dtend tzid="Europe/Paris">20240511</dtend>',  # a bare date: VALUE=DATE, no TZID
        )
    )
    lines = lines_of(cal)
    assert "DTSTART;VALUE=DATE:20240510" in lines and "DTEND;VALUE=DATE:20240511" in lines
    assert [comp.name for comp in cal.subcomponents] == ["VEVENT"]
    assert event_of(cal).decoded("DTEND") == dt.date(2024, 5, 11)


def test_zones_are_rewritten_to_iana_keys_once_each() -> None:
    cal = publish(
        event_xml(
            '<uid>u</uid><dtstart tzid="Europe/Central">20240510T093000</dtstart>',
            '<dtend tzid="europe/brussels">20240510T103000</dtend>',
            '<recurrence-id tzid="NorthAmerica/Eastern">20240510T033000</recurrence-id>',
        )
    )
    lines = lines_of(cal)
    assert "DTSTART;TZID=Europe/Brussels:20240510T093000" in lines
    assert "DTEND;TZID=Europe/Brussels:20240510T103000" in lines
    assert "RECURRENCE-ID;TZID=America/New_York:20240510T033000" in lines
    assert sorted(str(tz["TZID"]) for tz in cal.timezones) == [
        "America/New_York",
        "Europe/Brussels",
    ]


def test_a_zone_defined_in_the_element_is_kept_and_not_added_again() -> None:
    cal = publish(
        f"<iCalendar {NS}><vCalendar><vtimezone><tzid>NorthAmerica/Pacific</tzid>"
        "<standard><dtstart>19700101T000000</dtstart><tzoffsetfrom>-0800</tzoffsetfrom>"
        "<tzoffsetto>-0800</tzoffsetto></standard></vtimezone>"
        '<vevent><uid>u</uid><dtstart tzid="NorthAmerica/Pacific">20240510T093000</dtstart>'
        "</vevent></vCalendar></iCalendar>"
    )
    lines = lines_of(cal)
    assert "DTSTART;TZID=NorthAmerica/Pacific:20240510T093000" in lines
    assert "DTSTART:19700101T000000" in lines  # the onset stays local: no TZID inside VTIMEZONE
    assert len(cal.timezones) == 1
    assert "TZOFFSETTO:-0800" in lines


def test_a_local_until_uses_this_elements_zone_not_one_seen_before() -> None:
    """icalendar caches VTIMEZONEs by TZID for the whole process: another user's definition of
    the same name must not move this one's UNTIL."""

    def element(offset: str) -> str:
        return (
            f"<iCalendar {NS}><vCalendar><vtimezone><tzid>Custom Zone</tzid>"
            f"<standard><dtstart>19700101T000000</dtstart><tzoffsetfrom>{offset}</tzoffsetfrom>"
            f"<tzoffsetto>{offset}</tzoffsetto></standard></vtimezone>"
            '<vevent><uid>u</uid><dtstart tzid="Custom Zone">20240510T093000</dtstart>'
            "<rrule>FREQ=DAILY;UNTIL=20240520T093000</rrule></vevent></vCalendar></iCalendar>"
        )

    first = publish(element("+0500"))
    event_of(first).decoded("DTSTART")  # icalendar now holds +05:00 under "Custom Zone"
    assert "RRULE:FREQ=DAILY;UNTIL=20240520T043000Z" in lines_of(first)
    assert "RRULE:FREQ=DAILY;UNTIL=20240520T173000Z" in lines_of(publish(element("-0800")))


def test_local_until_becomes_utc_in_the_start_zone() -> None:
    cal = publish(
        event_xml(
            '<uid>u</uid><dtstart tzid="Asia/Tokyo">20240510T093000</dtstart>',
            "<rrule>FREQ=DAILY;UNTIL=20240520T093000</rrule>",
        )
    )
    assert "RRULE:FREQ=DAILY;UNTIL=20240520T003000Z" in lines_of(cal)


def test_utc_values_keep_z_and_lose_a_contradicting_tzid() -> None:
    cal = publish(event_xml('<uid>u</uid><dtstart tzid="Asia/Tokyo">20240510T093000Z</dtstart>'))
    assert "DTSTART:20240510T093000Z" in lines_of(cal)
    assert not cal.timezones


def test_unknown_zone_is_a_bad_request() -> None:
    with pytest.raises(BridgeError) as err:
        publish(event_xml('<uid>u</uid><dtstart tzid="Mars/Olympus">20240510T093000</dtstart>'))
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_too_many_zones_is_a_limit() -> None:
    zones = sorted(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"})
    dates = "".join(
        f'<rdate tzid="{zone}">20240510T093000</rdate>' for zone in zones[: MAX_ADDED_ZONES + 1]
    )
    with pytest.raises(BridgeError) as err:
        publish(event_xml("<uid>u</uid><dtstart>20240510T093000</dtstart>", dates))
    assert err.value.kind is ErrorKind.LIMIT


# ---- calendarPublish's rules ----------------------------------------------------------------


def test_uid_and_dtstamp_are_generated_when_missing() -> None:
    cal = publish(event_xml("<summary>x</summary><dtstart>20240510T093000</dtstart>"))
    event = event_of(cal)
    assert re.fullmatch(r"[0-9a-f-]{36}@bridge\.example", str(event["UID"]))
    assert event["DTSTAMP"].dt == NOW
    assert cal["PRODID"] == PRODID and cal["VERSION"] == "2.0"
    other = event_of(publish(event_xml("<dtstart>20240510T093000</dtstart>")))
    assert other["UID"] != event["UID"]


def test_a_todo_is_an_item_too() -> None:
    cal = publish(f"<vCalendar {NS}><vtodo><summary>t</summary></vtodo></vCalendar>")
    assert [comp.name for comp in cal.subcomponents] == ["VTODO"]


def test_a_recurring_item_with_its_overrides_is_one_item() -> None:
    cal = publish(
        f'<iCalendar {NS}><vCalendar method="REQUEST">'
        "<vevent><uid>r</uid><dtstart>20240510T093000</dtstart><rrule>FREQ=DAILY</rrule></vevent>"
        "<vevent><uid>r</uid><recurrence-id>20240511T093000</recurrence-id>"
        "<dtstart>20240511T100000</dtstart></vevent></vCalendar></iCalendar>"
    )
    assert [comp.name for comp in cal.subcomponents] == ["VTIMEZONE", "VEVENT", "VEVENT"]
    assert "METHOD" not in cal


@pytest.mark.parametrize(
    "body",
    [
        "",  # no item
        "<vevent><uid>a</uid><dtstart>20240510T093000</dtstart></vevent>"
        "<vevent><uid>b</uid><dtstart>20240510T093000</dtstart></vevent>",
        "<vevent><dtstart>20240510T093000</dtstart></vevent>"
        "<vevent><dtstart>20240510T093000</dtstart></vevent>",
        "<vevent><uid>a</uid><dtstart>20240510T093000</dtstart></vevent>"
        "<vtodo><uid>a</uid><recurrence-id>20240510T093000</recurrence-id></vtodo>",
        "<vevent><uid>a</uid><dtstart>20240510T093000</dtstart></vevent>"
        "<vevent><uid>a</uid><dtstart>20240511T093000</dtstart></vevent>",
        "<vevent><uid>a</uid><recurrence-id>20240510T093000</recurrence-id></vevent>"
        "<vevent><uid>a</uid><recurrence-id>20240510T093000</recurrence-id></vevent>",
        "<vevent><uid>a</uid><dtstart>20240510T093000</dtstart></vevent><vjournal/>",
        "<vevent><uid>a</uid></vevent>",  # an event needs DTSTART
    ],
)
def test_not_exactly_one_item_is_a_bad_request(body: str) -> None:
    with pytest.raises(BridgeError) as err:
        publish(f"<iCalendar {NS}><vCalendar>{body}</vCalendar></iCalendar>")
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_conversion_alone_keeps_method_and_several_items() -> None:
    cal = convert(
        f'<iCalendar {NS}><vCalendar method="REPLY"><vevent><uid>a</uid></vevent>'
        "<vevent><uid>b</uid></vevent></vCalendar></iCalendar>"
    )
    assert cal["METHOD"] == "REPLY" and len(cal.subcomponents) == 2


def test_bare_addresses_become_mailto_uris() -> None:
    cal = publish(event_xml("<dtstart>20240510T093000</dtstart><attendee>Bob@X.org</attendee>"))
    assert "ATTENDEE:mailto:Bob@X.org" in lines_of(cal)


# ---- junk ----------------------------------------------------------------------------------

JUNK_PROPERTIES = [
    "<dtstart>tomorrow</dtstart>",
    "<dtstart>20241340T093000</dtstart>",
    "<dtstart>20240510T253000</dtstart>",
    "<dtstart>2024-05-10T09:30:00</dtstart>",
    '<dtstart VALUE="DATE">20240510T093000</dtstart>',
    "<dtend>20240510T093000Z,20240511T093000</dtend>",
    "<exdate>20240510T093000,x</exdate>",
    "<duration>PT</duration>",
    "<duration>1 hour</duration>",
    "<trigger>-P15M</trigger>",
    "<rrule>junk</rrule>",
    "<rrule>BYDAY=MO</rrule>",
    "<rrule>FREQ=SOMETIMES</rrule>",
    "<rrule>FREQ=DAILY;COUNT=x</rrule>",
    "<rrule>FREQ=DAILY;COUNT=0</rrule>",
    "<rrule>FREQ=DAILY;COUNT=2;UNTIL=20240101T000000Z</rrule>",
    "<rrule>FREQ=DAILY;FREQ=WEEKLY</rrule>",
    "<rrule>FREQ=DAILY;UNTIL=soon</rrule>",
    "<rrule>FREQ=DAILY;BYDAY=XX</rrule>",
    "<rrule>FREQ=DAILY;NOPE=1</rrule>",
    "<sequence>first</sequence>",
    "<priority>1.5</priority>",
    "<geo>north</geo>",
    "<attendee>not an address</attendee>",
    "<organizer></organizer>",
    '<rdate VALUE="PERIOD">20240510T093000Z/soon</rdate>',
    "<url>http://x/\nEND:VEVENT</url>",
    "<begin>VTODO</begin>",
    "<end>VEVENT</end>",
    "<summary><b>bold</b></summary>",
    '<summary X_Y="1">underscore parameter</summary>',
    '<summary tzid="a" TZID="b">twice</summary>',
]


@pytest.mark.parametrize("junk", JUNK_PROPERTIES)
def test_junk_values_are_bad_requests(junk: str) -> None:
    document = event_xml("<uid>u</uid><dtstart>20240510T093000</dtstart>", junk)
    if junk.startswith("<dtstart"):
        document = event_xml("<uid>u</uid>", junk)
    with pytest.raises(BridgeError) as err:
        publish(document)
    assert err.value.kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize(
    "document",
    [
        b"<iCalendar/>",
        b"<vCard><FN>x</FN></vCard>",
        b"<iCalendar><vCalendar/><vCalendar/></iCalendar>",
        b'<vCalendar version="1.0"><vevent><dtstart>20240510T093000</dtstart></vevent></vCalendar>',
        b'<vCalendar end="x"><vevent/></vCalendar>',
        b"<vCalendar><vevent><x_y>1</x_y></vevent></vCalendar>",
        b"<vCalendar>" + b"<x-c>" * 8 + b"<p>1</p>" + b"</x-c>" * 8 + b"</vCalendar>",
    ],
)
def test_malformed_elements_are_bad_requests(document: bytes) -> None:
    with pytest.raises(BridgeError) as err:
        publish(document)
    assert err.value.kind is ErrorKind.BAD_REQUEST


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["dtstart", "dtend", "rrule", "duration", "attendee", "exdate", "trigger"]),
    st.text(max_size=30),
    st.dictionaries(st.sampled_from(["tzid", "VALUE", "CN", "RSVP"]), st.text(max_size=12)),
)
def test_fuzzed_values_convert_or_are_bad_requests(
    name: str, value: str, attrs: dict[str, str]
) -> None:
    root = xml.parse(event_xml("<uid>u</uid><dtstart>20240510T093000</dtstart>").encode())
    event = root[0][0]
    try:
        xml.sub(event, f"{{urn:ietf:params:xml:ns:xcal}}{name}", attrs, value)
    except ValueError:
        return  # lxml refuses characters XML cannot carry: no client can send them
    try:
        cal = publishable(root, BERLIN, hostname="h.example", now=NOW)
    except BridgeError as err:
        assert err.kind in (ErrorKind.BAD_REQUEST, ErrorKind.LIMIT)
        return
    assert Calendar.from_ical(calendar_text(cal)) == cal
