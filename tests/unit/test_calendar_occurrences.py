"""findEvents' occurrence expansion: the spec's weekly meeting, time zones of every kind (CommuniGate
names, IANA names, a resource's own VTIMEZONE, floating, UTC), all-day items, EXDATE and
overrides, VTODOs, malformed resources, and the limits that keep a dense rule from exhausting
the gateway; plus properties checked against independent oracles."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bridge.calendar.occurrences import Expansion, Occurrence, expand
from bridge.calendar.rulecost import query_stop, rule_cost

UTC = dt.UTC
PACIFIC = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
ZONES = [UTC, PACIFIC, BERLIN, TOKYO, ZoneInfo("Australia/Sydney"), ZoneInfo("America/Santiago")]


def vevent(*lines: str, uid: str = "u1", summary: str = "Item", kind: str = "VEVENT") -> str:
    body = "".join(line + "\r\n" for line in lines)
    return (
        f"BEGIN:{kind}\r\nUID:{uid}\r\nDTSTAMP:20240101T000000Z\r\nSUMMARY:{summary}\r\n"
        f"{body}END:{kind}\r\n"
    )


def calendar(*components: str, head: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        + head
        + "".join(components)
        + "END:VCALENDAR\r\n"
    )


def vtimezone(tzid: str, standard: str, daylight: str | None = None) -> str:
    """A VTIMEZONE with EU-style rules: daylight from the last Sunday of March to October's."""
    text = (
        f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
        f"TZOFFSETFROM:{daylight or standard}\r\nTZOFFSETTO:{standard}\r\nEND:STANDARD\r\n"
    )
    if daylight:
        text += (
            "BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
            f"TZOFFSETFROM:{standard}\r\nTZOFFSETTO:{daylight}\r\nEND:DAYLIGHT\r\n"
        )
    return text + "END:VTIMEZONE\r\n"


def at(zone: dt.tzinfo, *parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def run(
    text: str,
    start: dt.datetime,
    end: dt.datetime,
    zone: dt.tzinfo = UTC,
    **limits: int,
) -> Expansion:
    return expand([("/cal/item.ics", text)], start, end, zone, **limits)


def starts(result: Expansion, zone: dt.tzinfo | None = None) -> list[dt.datetime]:
    return [o.start if zone is None else o.start.astimezone(zone) for o in result.occurrences]


SPEC_MEETING = calendar(
    vevent(
        "RRULE:FREQ=WEEKLY;BYDAY=MO,TH",
        "DTSTART;TZID=NorthAmerica/Pacific:20060515T100000",
        "DTEND;TZID=NorthAmerica/Pacific:20060515T110000",
        "BUSYSTATUS:BUSY",
        uid="18927897984@kjjkjkjk-123444",
        summary="Report Meeting",
    )
)


# The spec's example -------------------------------------------------------------------------


def test_spec_weekly_meeting_over_two_weeks_gives_four_occurrences_at_ten_pacific() -> None:
    result = run(SPEC_MEETING, at(PACIFIC, 2006, 5, 15), at(PACIFIC, 2006, 5, 29), PACIFIC)
    assert starts(result) == [
        at(PACIFIC, 2006, 5, 15, 10),
        at(PACIFIC, 2006, 5, 18, 10),
        at(PACIFIC, 2006, 5, 22, 10),
        at(PACIFIC, 2006, 5, 25, 10),
    ]
    for occurrence in result.occurrences:
        assert occurrence.start.tzinfo is PACIFIC
        assert occurrence.start.hour == 10
        assert occurrence.duration == 3600
        assert occurrence.all_day is False
        assert occurrence.busy_status == "BUSY"
        assert occurrence.summary == "Report Meeting"
        assert occurrence.kind == "VEVENT"
        assert occurrence.uid == "18927897984@kjjkjkjk-123444"
        assert occurrence.href == "/cal/item.ics"
    assert [o.recurrence_id for o in result.occurrences] == [
        "20060515T170000Z",
        "20060518T170000Z",
        "20060522T170000Z",
        "20060525T170000Z",
    ]
    assert result.skipped == () and result.limited == () and not result.truncated


def test_spec_meeting_keeps_ten_local_across_the_2006_dst_change() -> None:
    # US Pacific left daylight time on 2006-10-29.
    result = run(SPEC_MEETING, at(PACIFIC, 2006, 10, 23), at(PACIFIC, 2006, 11, 6), PACIFIC)
    assert [o.start.hour for o in result.occurrences] == [10, 10, 10, 10]
    assert starts(result, UTC) == [
        at(UTC, 2006, 10, 23, 17),
        at(UTC, 2006, 10, 26, 17),
        at(UTC, 2006, 10, 30, 18),
        at(UTC, 2006, 11, 2, 18),
    ]


def test_weekly_meeting_across_the_2024_dst_change_seen_from_berlin() -> None:
    # Berlin left daylight time on 2024-10-27, Los Angeles on 2024-11-03: in the week
    # between, the Pacific 10:00 meeting is at 18:00 in Berlin, not 19:00.
    text = SPEC_MEETING.replace("20060515T", "20241021T")
    result = run(text, at(BERLIN, 2024, 10, 28), at(BERLIN, 2024, 11, 11), BERLIN)
    assert starts(result) == [
        at(BERLIN, 2024, 10, 28, 18),
        at(BERLIN, 2024, 10, 31, 18),
        at(BERLIN, 2024, 11, 4, 19),
        at(BERLIN, 2024, 11, 7, 19),
    ]
    assert all(o.start.tzinfo is BERLIN for o in result.occurrences)
    assert [o.start.astimezone(PACIFIC).hour for o in result.occurrences] == [10] * 4
    assert {o.duration for o in result.occurrences} == {3600}


def test_communigate_tzid_is_case_insensitive() -> None:
    text = SPEC_MEETING.replace("NorthAmerica/Pacific", "northamerica/PACIFIC")
    result = run(text, at(PACIFIC, 2006, 5, 15), at(PACIFIC, 2006, 5, 29), UTC)
    assert starts(result)[0] == at(UTC, 2006, 5, 15, 17)


# Time zones ---------------------------------------------------------------------------------


def test_iana_tzid_without_vtimezone() -> None:
    text = calendar(
        vevent("DTSTART;TZID=Europe/Berlin:20240329T090000", "RRULE:FREQ=DAILY;COUNT=3")
    )
    result = run(text, at(UTC, 2024, 3, 1), at(UTC, 2024, 4, 30))
    # Berlin moved to summer time on 2024-03-31: 09:00 local is 08:00 UTC, then 07:00.
    assert starts(result) == [
        at(UTC, 2024, 3, 29, 8),
        at(UTC, 2024, 3, 30, 8),
        at(UTC, 2024, 3, 31, 7),
    ]


def test_a_resource_s_own_vtimezone_is_honoured_with_its_daylight_rules() -> None:
    tzid = f"Custom Zone {uuid.uuid4()}"
    text = calendar(
        vevent(
            f"DTSTART;TZID={tzid}:20240115T120000", "DURATION:PT30M", "RRULE:FREQ=MONTHLY;COUNT=12"
        ),
        head=vtimezone(tzid, "+0300", "+0400"),
    )
    result = run(text, at(UTC, 2024, 1, 1), at(UTC, 2025, 1, 1))
    assert len(result.occurrences) == 12
    utc_hours = [o.start.hour for o in result.occurrences]
    assert utc_hours == [9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 9, 9]  # +03 in winter, +04 Apr-Oct
    assert {o.duration for o in result.occurrences} == {1800}


def test_two_resources_defining_one_tzid_differently_each_keep_their_own() -> None:
    # icalendar caches the first VTIMEZONE it sees under a TZID for the whole process;
    # a resource must never get another resource's (or another user's) definition.
    tzid = f"Shared {uuid.uuid4()}"
    east = calendar(vevent(f"DTSTART;TZID={tzid}:20240115T120000"), head=vtimezone(tzid, "+0500"))
    west = calendar(vevent(f"DTSTART;TZID={tzid}:20240115T120000"), head=vtimezone(tzid, "-0300"))
    window = (at(UTC, 2024, 1, 1), at(UTC, 2024, 2, 1))
    both = expand([("/east.ics", east), ("/west.ics", west)], *window, UTC)
    assert [(o.href, o.start) for o in both.occurrences] == [
        ("/east.ics", at(UTC, 2024, 1, 15, 7)),
        ("/west.ics", at(UTC, 2024, 1, 15, 15)),
    ]
    later = expand([("/west.ics", west)], *window, UTC)
    assert starts(later) == [at(UTC, 2024, 1, 15, 15)]


def test_a_known_zone_name_wins_over_a_vtimezone_that_misstates_it() -> None:
    text = calendar(
        vevent("DTSTART;TZID=NorthAmerica/Pacific:20240115T120000"),
        head=vtimezone("NorthAmerica/Pacific", "+0500"),
    )
    result = run(text, at(UTC, 2024, 1, 1), at(UTC, 2024, 2, 1))
    assert starts(result) == [at(UTC, 2024, 1, 15, 20)]


def test_an_unknown_tzid_without_vtimezone_is_the_user_s_zone() -> None:
    text = calendar(vevent("DTSTART;TZID=Mars/Olympus_Mons:20240115T120000"))
    result = run(text, at(UTC, 2024, 1, 1), at(UTC, 2024, 2, 1), TOKYO)
    assert starts(result) == [at(TOKYO, 2024, 1, 15, 12)]


@pytest.mark.parametrize("zone", [TOKYO, PACIFIC, BERLIN])
def test_floating_times_are_the_user_s_zone(zone: ZoneInfo) -> None:
    text = calendar(vevent("DTSTART:20240601T090000", "DTEND:20240601T100000"))
    result = run(text, at(UTC, 2024, 5, 30), at(UTC, 2024, 6, 3), zone)
    assert starts(result) == [at(zone, 2024, 6, 1, 9)]
    assert result.occurrences[0].duration == 3600


@pytest.mark.parametrize("zone", [TOKYO, PACIFIC])
def test_a_floating_until_ends_the_series_in_the_user_s_zone(zone: ZoneInfo) -> None:
    # RFC 5545: a floating DTSTART takes a floating UNTIL; read as UTC it would cut the last
    # instance in Tokyo (09:00 there is 00:00 UTC) and keep one too many nowhere.
    text = calendar(vevent("DTSTART:20240601T090000", "RRULE:FREQ=DAILY;UNTIL=20240603T090000"))
    result = run(text, at(UTC, 2024, 5, 1), at(UTC, 2024, 7, 1), zone)
    assert starts(result) == [at(zone, 2024, 6, day, 9) for day in (1, 2, 3)]


def test_x_wr_timezone_places_floating_times() -> None:
    text = calendar(vevent("DTSTART:20240601T090000"), head="X-WR-TIMEZONE:Europe/Berlin\r\n")
    result = run(text, at(UTC, 2024, 5, 30), at(UTC, 2024, 6, 3), TOKYO)
    assert starts(result, UTC) == [at(UTC, 2024, 6, 1, 7)]


def test_utc_times_are_converted_to_the_user_s_zone() -> None:
    text = calendar(vevent("DTSTART:20240601T120000Z", "DTEND:20240601T123000Z"))
    result = run(text, at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2), BERLIN)
    assert starts(result) == [at(BERLIN, 2024, 6, 1, 14)]
    assert result.occurrences[0].start.tzinfo is BERLIN
    assert result.occurrences[0].duration == 1800


# All-day items ------------------------------------------------------------------------------


def test_an_all_day_event_starts_at_local_midnight_and_lasts_a_day() -> None:
    text = calendar(vevent("DTSTART;VALUE=DATE:20240315"))
    result = run(text, at(TOKYO, 2024, 3, 15), at(TOKYO, 2024, 3, 16), TOKYO)
    (occurrence,) = result.occurrences
    assert occurrence.all_day is True
    assert occurrence.start == at(TOKYO, 2024, 3, 15)
    assert occurrence.start.tzinfo is TOKYO
    assert occurrence.duration == 86400
    assert occurrence.recurrence_id == ""


@pytest.mark.parametrize(
    ("window", "found"),
    [
        ((at(BERLIN, 2024, 3, 15, 23), at(BERLIN, 2024, 3, 16)), True),  # its last local hour
        ((at(BERLIN, 2024, 3, 16), at(BERLIN, 2024, 3, 17)), False),  # the next local day
        ((at(BERLIN, 2024, 3, 14), at(BERLIN, 2024, 3, 15)), False),  # the day before
        # 23:30 UTC on the 15th is already the 16th in Berlin: the date is the user's.
        ((at(UTC, 2024, 3, 15, 23, 30), at(UTC, 2024, 3, 16, 1)), False),
    ],
)
def test_all_day_events_overlap_by_date_in_the_user_s_zone(
    window: tuple[dt.datetime, dt.datetime], found: bool
) -> None:
    text = calendar(vevent("DTSTART;VALUE=DATE:20240315", "DTEND;VALUE=DATE:20240316"))
    result = run(text, *window, BERLIN)
    assert bool(result.occurrences) is found


def test_a_multi_day_all_day_event() -> None:
    text = calendar(vevent("DTSTART;VALUE=DATE:20240315", "DTEND;VALUE=DATE:20240318"))
    inside = run(text, at(PACIFIC, 2024, 3, 17, 12), at(PACIFIC, 2024, 3, 17, 13), PACIFIC)
    (occurrence,) = inside.occurrences
    assert occurrence.all_day and occurrence.start == at(PACIFIC, 2024, 3, 15)
    assert occurrence.duration == 3 * 86400
    assert run(text, at(PACIFIC, 2024, 3, 18), at(PACIFIC, 2024, 3, 19), PACIFIC).occurrences == ()


def test_a_recurring_all_day_event_with_an_excluded_date() -> None:
    text = calendar(
        vevent(
            "DTSTART;VALUE=DATE:20240101", "RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;VALUE=DATE:20240115"
        )
    )
    result = run(text, at(BERLIN, 2024, 1, 1), at(BERLIN, 2024, 2, 1), BERLIN)
    assert starts(result) == [at(BERLIN, 2024, 1, day) for day in (1, 8, 22)]
    assert [o.recurrence_id for o in result.occurrences] == ["20240101", "20240108", "20240122"]
    assert all(o.all_day for o in result.occurrences)


def test_all_day_events_sort_before_timed_ones_at_the_same_instant() -> None:
    text = calendar(
        vevent("DTSTART:20240315T000000", uid="timed", summary="A timed"),
        vevent("DTSTART;VALUE=DATE:20240315", uid="day", summary="Z all day"),
    )
    result = run(text, at(BERLIN, 2024, 3, 15), at(BERLIN, 2024, 3, 16), BERLIN)
    assert [o.uid for o in result.occurrences] == ["day", "timed"]


# Exceptions to a series ---------------------------------------------------------------------


def test_exdate_removes_an_occurrence() -> None:
    text = calendar(
        vevent(
            "DTSTART;TZID=NorthAmerica/Pacific:20060515T100000",
            "DTEND;TZID=NorthAmerica/Pacific:20060515T110000",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,TH",
            "EXDATE;TZID=NorthAmerica/Pacific:20060518T100000",
        )
    )
    result = run(text, at(PACIFIC, 2006, 5, 15), at(PACIFIC, 2006, 5, 29), PACIFIC)
    assert [o.start.day for o in result.occurrences] == [15, 22, 25]


def test_an_override_replaces_its_instance() -> None:
    text = calendar(
        vevent(
            "DTSTART;TZID=America/Los_Angeles:20060515T100000",
            "DTEND;TZID=America/Los_Angeles:20060515T110000",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,TH",
            summary="Report Meeting",
        ),
        vevent(
            "RECURRENCE-ID;TZID=America/Los_Angeles:20060518T100000",
            "DTSTART;TZID=America/Los_Angeles:20060518T143000",
            "DTEND;TZID=America/Los_Angeles:20060518T160000",
            summary="Report Meeting (moved)",
        ),
    )
    result = run(text, at(PACIFIC, 2006, 5, 15), at(PACIFIC, 2006, 5, 29), PACIFIC)
    assert [(o.start, o.summary, o.duration) for o in result.occurrences] == [
        (at(PACIFIC, 2006, 5, 15, 10), "Report Meeting", 3600),
        (at(PACIFIC, 2006, 5, 18, 14, 30), "Report Meeting (moved)", 5400),
        (at(PACIFIC, 2006, 5, 22, 10), "Report Meeting", 3600),
        (at(PACIFIC, 2006, 5, 25, 10), "Report Meeting", 3600),
    ]
    # The moved instance keeps the identity of the one it replaces.
    assert result.occurrences[1].recurrence_id == "20060518T170000Z"


def test_this_and_future_override_gives_each_instance_its_own_recurrence_id() -> None:
    text = calendar(
        vevent("DTSTART:20240101T100000Z", "DTEND:20240101T110000Z", "RRULE:FREQ=DAILY;COUNT=5"),
        vevent(
            "RECURRENCE-ID;RANGE=THISANDFUTURE:20240103T100000Z",
            "DTSTART:20240103T120000Z",
            "DTEND:20240103T130000Z",
            summary="Later",
        ),
    )
    result = run(text, at(UTC, 2024, 1, 1), at(UTC, 2024, 1, 10))
    assert [o.start.hour for o in result.occurrences] == [10, 10, 12, 12, 12]
    assert [o.recurrence_id for o in result.occurrences] == [
        f"202401{day:02}T100000Z" for day in range(1, 6)
    ]


# VTODO ----------------------------------------------------------------------------------------


def test_a_vtodo_with_start_and_due() -> None:
    text = calendar(
        vevent(
            "DTSTART:20240601T090000Z", "DUE:20240601T170000Z", kind="VTODO", summary="Write report"
        )
    )
    (occurrence,) = run(text, at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2)).occurrences
    assert occurrence.kind == "VTODO"
    assert occurrence.start == at(UTC, 2024, 6, 1, 9)
    assert occurrence.duration == 8 * 3600
    assert occurrence.summary == "Write report"
    assert occurrence.busy_status == "FREE"


def test_a_vtodo_with_only_a_due_occurs_at_its_due() -> None:
    text = calendar(vevent("DUE:20240601T170000Z", kind="VTODO"))
    (occurrence,) = run(text, at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2)).occurrences
    assert occurrence.kind == "VTODO"
    assert occurrence.start == at(UTC, 2024, 6, 1, 17)
    assert occurrence.duration == 0


def test_items_without_dates_are_left_out_and_the_rest_kept() -> None:
    text = calendar(
        vevent(kind="VTODO", uid="undated-todo"),
        vevent("DURATION:PT1H", kind="VTODO", uid="duration-only-todo"),
        vevent(uid="undated-event"),
        vevent("DTSTART:20240601T090000Z", uid="dated"),
    )
    result = run(text, at(UTC, 2000, 1, 1), at(UTC, 2100, 1, 1))
    assert [o.uid for o in result.occurrences] == ["dated"]
    assert result.skipped == ()


# Durations and the edges of the window --------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "duration"),
    [
        (("DTSTART:20240601T090000Z", "DTEND:20240601T093000Z"), 1800),
        (("DTSTART:20240601T090000Z", "DURATION:PT2H"), 7200),
        (("DTSTART:20240601T090000Z",), 0),  # RFC 5545: a date-time DTSTART alone lasts 0
        (("DTSTART;VALUE=DATE:20240601",), 86400),  # a date DTSTART alone lasts the day
        (("DTSTART;VALUE=DATE:20240601", "DURATION:P2D"), 2 * 86400),
    ],
)
def test_duration_defaults(lines: tuple[str, ...], duration: int) -> None:
    (occurrence,) = run(
        calendar(vevent(*lines)), at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2)
    ).occurrences
    assert occurrence.duration == duration


def test_an_end_before_the_start_is_read_swapped() -> None:
    text = calendar(vevent("DTSTART:20240601T100000Z", "DTEND:20240601T090000Z"))
    (occurrence,) = run(text, at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2)).occurrences
    assert occurrence.start == at(UTC, 2024, 6, 1, 9) and occurrence.duration == 3600


@pytest.mark.parametrize(
    ("window", "found"),
    [
        ((at(UTC, 2024, 6, 1, 10), at(UTC, 2024, 6, 1, 11)), False),  # ends as the window starts
        ((at(UTC, 2024, 6, 1, 8), at(UTC, 2024, 6, 1, 9)), False),  # starts as the window ends
        ((at(UTC, 2024, 6, 1, 9, 59), at(UTC, 2024, 6, 1, 11)), True),
        ((at(UTC, 2024, 6, 1, 9, 30), at(UTC, 2024, 6, 1, 9, 31)), True),  # inside it
    ],
)
def test_the_window_is_half_open(window: tuple[dt.datetime, dt.datetime], found: bool) -> None:
    text = calendar(vevent("DTSTART:20240601T090000Z", "DTEND:20240601T100000Z"))
    assert bool(run(text, *window).occurrences) is found


@pytest.mark.parametrize(
    ("window", "found"),
    [
        ((at(UTC, 2024, 6, 1, 9), at(UTC, 2024, 6, 1, 10)), True),
        ((at(UTC, 2024, 6, 1, 8), at(UTC, 2024, 6, 1, 9)), False),
    ],
)
def test_an_instant_item_counts_when_it_starts_in_the_window(
    window: tuple[dt.datetime, dt.datetime], found: bool
) -> None:
    text = calendar(vevent("DTSTART:20240601T090000Z"))
    assert bool(run(text, *window).occurrences) is found


def test_an_empty_window_holds_nothing() -> None:
    text = calendar(vevent("DTSTART:20240601T090000Z"))
    assert run(text, at(UTC, 2024, 6, 1, 9), at(UTC, 2024, 6, 1, 9)).occurrences == ()


@pytest.mark.parametrize(
    ("start", "end", "limits"),
    [
        (dt.datetime(2024, 1, 1), at(UTC, 2024, 2, 1), {}),
        (at(UTC, 2024, 1, 1), dt.datetime(2024, 2, 1), {}),
        (at(UTC, 2024, 2, 1), at(UTC, 2024, 1, 1), {}),
        (at(UTC, 2024, 1, 1), at(UTC, 2024, 2, 1), {"max_occurrences": 0}),
        (at(UTC, 2024, 1, 1), at(UTC, 2024, 2, 1), {"max_expansion": 0}),
    ],
)
def test_bad_windows_and_limits_are_refused(
    start: dt.datetime, end: dt.datetime, limits: dict[str, int]
) -> None:
    with pytest.raises(ValueError):
        expand([], start, end, UTC, **limits)


# Busy status ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        ((), "BUSY"),
        (("BUSYSTATUS:TENTATIVE",), "TENTATIVE"),
        (("BUSYSTATUS:unavailable",), "UNAVAILABLE"),
        (("X-MICROSOFT-CDO-BUSYSTATUS:OOF",), "UNAVAILABLE"),
        (("X-MICROSOFT-CDO-BUSYSTATUS:FREE",), "FREE"),
        (("BUSYSTATUS:BUSY", "X-MICROSOFT-CDO-BUSYSTATUS:FREE"), "BUSY"),
        (("BUSYSTATUS:SOMETIMES", "STATUS:TENTATIVE"), "TENTATIVE"),
        (("TRANSP:TRANSPARENT",), "FREE"),
        (("TRANSP:OPAQUE",), "BUSY"),
        (("STATUS:TENTATIVE",), "TENTATIVE"),
        (("STATUS:CONFIRMED",), "BUSY"),
        (("STATUS:CANCELLED",), "FREE"),
        (("TRANSP:TRANSPARENT", "BUSYSTATUS:BUSY"), "BUSY"),
    ],
)
def test_busy_status(lines: tuple[str, ...], status: str) -> None:
    text = calendar(vevent("DTSTART:20240601T090000Z", "DTEND:20240601T100000Z", *lines))
    (occurrence,) = run(text, at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2)).occurrences
    assert occurrence.busy_status == status


# Malformed resources ----------------------------------------------------------------------------


def test_malformed_resources_are_skipped_and_counted_and_the_others_kept() -> None:
    good = calendar(vevent("DTSTART:20240601T090000Z", summary="Good"))
    resources = [
        ("/garbage.ics", "this is not iCalendar"),
        ("/good.ics", good),
        ("/bad-freq.ics", calendar(vevent("DTSTART:20240601T090000Z", "RRULE:FREQ=SOMETIMES"))),
        ("/bad-date.ics", calendar(vevent("DTSTART:2024060"))),
        ("/not-a-calendar.ics", vevent("DTSTART:20240601T090000Z")),
        (
            "/gregorian-only.ics",
            calendar(vevent("DTSTART:20240601T090000Z"), head="CALSCALE:HEBREW\r\n"),
        ),
        ("/empty.ics", ""),
        ("/good-too.ics", good.replace("Good", "Also good")),
    ]
    result = expand(resources, at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2), UTC)
    assert [(o.href, o.summary) for o in result.occurrences] == [
        ("/good-too.ics", "Also good"),
        ("/good.ics", "Good"),
    ]
    assert result.skipped == (
        "/garbage.ics",
        "/bad-freq.ics",
        "/bad-date.ics",
        "/not-a-calendar.ics",
        "/gregorian-only.ics",
        "/empty.ics",
    )
    assert not result.truncated


LINES = [
    "BEGIN:VCALENDAR",
    "END:VCALENDAR",
    "BEGIN:VEVENT",
    "END:VEVENT",
    "BEGIN:VTODO",
    "END:VTODO",
    "BEGIN:VTIMEZONE",
    "END:VTIMEZONE",
    "BEGIN:STANDARD",
    "END:STANDARD",
    "TZID:Z",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "UID:x",
    "DTSTART:20240601T090000Z",
    "DTSTART;TZID=Z:20240601T090000",
    "DTSTART;VALUE=DATE:20240601",
    "DTSTART:19700101T000000",
    "DTEND:20240601T080000Z",
    "DUE;VALUE=DATE:20240602",
    "DURATION:-PT1H",
    "DURATION:P1W",
    "RRULE:FREQ=DAILY;COUNT=3",
    "RRULE:FREQ=HOURLY;UNTIL=20240602",
    "RRULE:FREQ=YEARLY;BYMONTH=13",
    "RRULE:FREQ=MONTHLY;BYDAY=-1FR;INTERVAL=0",
    "EXDATE:20240602T090000Z",
    "RDATE;VALUE=PERIOD:20240601T120000Z/PT1H",
    "RECURRENCE-ID:20240602T090000Z",
    "RECURRENCE-ID;RANGE=THISANDFUTURE:20240602",
    "X-WR-TIMEZONE:Nowhere",
    "SUMMARY:\\,;:",
    ":",
    "",
    "\x00",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=25), st.sampled_from(ZONES))
def test_any_resource_is_either_expanded_or_skipped(lines: list[str], zone: dt.tzinfo) -> None:
    text = "\r\n".join(lines) + "\r\n"
    start, end = at(UTC, 2024, 5, 25), at(UTC, 2024, 6, 10)
    result = expand(
        [("/fuzz.ics", text), ("/good.ics", calendar(vevent("DTSTART:20240601T090000Z")))],
        start,
        end,
        zone,
    )
    assert ("/good.ics" in {o.href for o in result.occurrences}) is True
    assert result.skipped in ((), ("/fuzz.ics",))
    for occurrence in result.occurrences:
        assert_inside(occurrence, start, end)


# Limits -------------------------------------------------------------------------------------


def test_a_secondly_rule_stops_at_the_occurrence_limit() -> None:
    text = calendar(vevent("DTSTART:20240601T000000Z", "RRULE:FREQ=SECONDLY"))
    began = time.monotonic()
    result = run(text, at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2))
    assert time.monotonic() - began < 10
    assert result.truncated and result.limited == ("/cal/item.ics",)
    assert 9_000 <= len(result.occurrences) <= 10_000
    # What is returned is the beginning of the series, second by second, with nothing missing.
    assert starts(result) == [
        at(UTC, 2024, 6, 1) + dt.timedelta(seconds=n) for n in range(len(result.occurrences))
    ]


def test_a_minutely_rule_that_began_a_year_before_the_window_is_not_expanded() -> None:
    # dateutil would have to walk 500,000 instances to reach the window.
    text = calendar(vevent("DTSTART:20230601T000000Z", "RRULE:FREQ=MINUTELY"))
    began = time.monotonic()
    result = run(text, at(UTC, 2024, 6, 1), at(UTC, 2024, 6, 2))
    assert time.monotonic() - began < 5
    assert result.truncated and result.limited == ("/cal/item.ics",)
    assert result.occurrences == ()


def test_a_minutely_rule_over_a_year_is_cut_but_other_resources_are_not() -> None:
    dense = calendar(vevent("DTSTART:20240101T000000Z", "RRULE:FREQ=MINUTELY", summary="Dense"))
    sparse = calendar(vevent("DTSTART:20241201T120000Z", summary="Sparse"))
    result = expand(
        [("/dense.ics", dense), ("/sparse.ics", sparse)],
        at(UTC, 2024, 1, 1),
        at(UTC, 2025, 1, 1),
        UTC,
        max_occurrences=600,
    )
    assert result.truncated and result.limited == ("/dense.ics",)
    assert 500 <= len(result.occurrences) <= 600
    # A prefix of the full answer: minute by minute from the window's start, and the sparse
    # item of December, which lies beyond what the dense series was expanded to, left out.
    assert starts(result) == [
        at(UTC, 2024, 1, 1) + dt.timedelta(minutes=n) for n in range(len(result.occurrences))
    ]
    assert {o.href for o in result.occurrences} == {"/dense.ics"}


def test_a_series_too_costly_to_reach_the_window_does_not_hide_the_others() -> None:
    dense = calendar(vevent("DTSTART:20230601T000000Z", "RRULE:FREQ=MINUTELY", summary="Dense"))
    sparse = calendar(vevent("DTSTART:20240601T120000Z", summary="Sparse"))
    result = expand(
        [("/dense.ics", dense), ("/sparse.ics", sparse)],
        at(UTC, 2024, 6, 1),
        at(UTC, 2024, 6, 2),
        UTC,
    )
    assert [o.summary for o in result.occurrences] == ["Sparse"]
    assert result.truncated and result.limited == ("/dense.ics",)


def test_the_result_is_cut_to_the_earliest_max_occurrences() -> None:
    resources = [
        (f"/{day}.ics", calendar(vevent(f"DTSTART:202406{day:02}T090000Z", uid=f"u{day}")))
        for day in range(1, 11)
    ]
    result = expand(resources, at(UTC, 2024, 6, 1), at(UTC, 2024, 7, 1), UTC, max_occurrences=3)
    assert [o.href for o in result.occurrences] == ["/1.ics", "/2.ics", "/3.ics"]
    assert result.truncated and result.limited == ()


def test_an_ordinary_long_series_is_not_limited() -> None:
    # A daily meeting since 1990 walks some 12,000 instances: well inside the default budget.
    text = calendar(vevent("DTSTART;TZID=Europe/Berlin:19900102T090000", "RRULE:FREQ=DAILY"))
    result = run(text, at(BERLIN, 2024, 6, 1), at(BERLIN, 2024, 7, 1), BERLIN)
    assert len(result.occurrences) == 30 and not result.truncated
    assert {o.start.hour for o in result.occurrences} == {9}


# Properties -------------------------------------------------------------------------------------


def assert_inside(occurrence: Occurrence, start: dt.datetime, end: dt.datetime) -> None:
    stop = occurrence.start + dt.timedelta(seconds=occurrence.duration)
    if occurrence.all_day:
        # All-day lengths are in calendar days: midnight to midnight, whatever DST does.
        last = occurrence.start.date() + dt.timedelta(days=occurrence.duration // 86400)
        stop = dt.datetime.combine(last, dt.time(), tzinfo=occurrence.start.tzinfo)
    if occurrence.duration == 0:
        assert start <= occurrence.start < end
    else:
        assert occurrence.start < end and stop > start


@settings(max_examples=60, deadline=None)
@given(
    days=st.integers(1, 60),
    hour=st.integers(0, 23),
    zone=st.sampled_from(ZONES),
    first=st.dates(dt.date(2000, 1, 1), dt.date(2030, 12, 31)),
)
def test_a_daily_rule_gives_one_occurrence_per_day(
    days: int, hour: int, zone: dt.tzinfo, first: dt.date
) -> None:
    # Floating, so the hour is the user's; the window is whole local days from the first.
    text = calendar(
        vevent(f"DTSTART:{first:%Y%m%d}T{hour:02}3000", "DURATION:PT10M", "RRULE:FREQ=DAILY")
    )
    start = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(first + dt.timedelta(days=days), dt.time(), tzinfo=zone)
    result = run(text, start, end, zone)
    assert len(result.occurrences) == days
    assert [o.start.date() for o in result.occurrences] == [
        first + dt.timedelta(days=n) for n in range(days)
    ]


EVENT = st.tuples(
    st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2024, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.integers(0, 3 * 86400),
    st.booleans(),  # all-day
    st.sampled_from(["Z", "", ";TZID=Europe/Berlin", ";TZID=NorthAmerica/Pacific"]),
    st.sampled_from(["Alpha", "Beta", ""]),
)


def expected_span(
    event: tuple[dt.datetime, int, bool, str, str], zone: dt.tzinfo
) -> tuple[dt.datetime, dt.datetime]:
    """An independent reading of one generated event's place in time."""
    moment, seconds, all_day, where, _ = event
    if all_day:
        days = max(1, seconds // 86400)
        first = dt.datetime.combine(moment.date(), dt.time(), tzinfo=zone)
        last = dt.datetime.combine(moment.date() + dt.timedelta(days=days), dt.time(), tzinfo=zone)
        return first, last
    source = {
        "Z": UTC,
        "": zone,
        ";TZID=Europe/Berlin": BERLIN,
        ";TZID=NorthAmerica/Pacific": PACIFIC,
    }[where]
    begin = moment.replace(tzinfo=source)
    return begin, begin + dt.timedelta(seconds=seconds)


def event_text(number: int, event: tuple[dt.datetime, int, bool, str, str]) -> str:
    moment, seconds, all_day, where, summary = event
    if all_day:
        days = max(1, seconds // 86400)
        end = moment.date() + dt.timedelta(days=days)
        lines = (f"DTSTART;VALUE=DATE:{moment:%Y%m%d}", f"DTEND;VALUE=DATE:{end:%Y%m%d}")
    else:
        stamp = f"{moment:%Y%m%dT%H%M%S}" + ("Z" if where == "Z" else "")
        tz = "" if where == "Z" else where
        lines = (f"DTSTART{tz}:{stamp}", f"DURATION:PT{seconds}S")
    return calendar(vevent(*lines, uid=f"e{number}", summary=summary))


@settings(max_examples=80, deadline=None)
@given(
    events=st.lists(EVENT, max_size=12),
    zone=st.sampled_from(ZONES),
    window_start=st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2024, 12, 31)),
    window_days=st.integers(0, 40),
)
def test_expansion_matches_an_independent_overlap_check_and_is_sorted(
    events: list[tuple[dt.datetime, int, bool, str, str]],
    zone: dt.tzinfo,
    window_start: dt.datetime,
    window_days: int,
) -> None:
    start = window_start.replace(tzinfo=UTC)
    end = start + dt.timedelta(days=window_days)
    resources = [(f"/{n}.ics", event_text(n, event)) for n, event in enumerate(events)]
    result = expand(resources, start, end, zone)
    expected = set()
    for n, event in enumerate(events):
        first, last = expected_span(event, zone)
        # Half-open intervals: an empty window holds nothing, an instant item must start in it.
        inside = start <= first < end if first == last else first < end and last > start
        if inside and start < end:
            expected.add((f"/{n}.ics", first))
    assert {(o.href, o.start) for o in result.occurrences} == expected
    for occurrence in result.occurrences:
        assert_inside(occurrence, start, end)
        assert occurrence.start.tzinfo is zone
    keys = [(o.start, not o.all_day, o.summary, o.href) for o in result.occurrences]
    assert keys == sorted(keys)
    assert result.skipped == () and not result.truncated


# The cost bound ---------------------------------------------------------------------------------

RULES = st.builds(
    lambda freq, interval, hours, minutes, days, count: ";".join(
        part
        for part in (
            f"FREQ={freq}",
            f"INTERVAL={interval}",
            f"BYHOUR={','.join(map(str, hours))}" if hours else "",
            f"BYMINUTE={','.join(map(str, minutes))}" if minutes else "",
            f"BYDAY={','.join(days)}" if days else "",
            f"COUNT={count}" if count else "",
        )
        if part
    ),
    st.sampled_from(["MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    st.integers(1, 5),
    st.lists(st.integers(0, 23), max_size=3, unique=True),
    st.lists(st.integers(0, 59), max_size=3, unique=True),
    st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), max_size=3, unique=True),
    st.one_of(st.none(), st.integers(1, 50)),
)


@settings(max_examples=150, deadline=None)
@given(
    rule=RULES,
    offset=st.integers(0, 20 * 86400),
    span=st.integers(0, 10 * 86400),
)
def test_the_cost_bound_is_never_below_the_real_count(rule: str, offset: int, span: int) -> None:
    from icalendar import vRecur

    dtstart = at(UTC, 2024, 1, 31, 9, 15)
    start = dtstart + dt.timedelta(seconds=offset)
    stop = start + dt.timedelta(seconds=span)
    try:
        parsed = rrulestr(rule, dtstart=dtstart)
    except ValueError:  # a rule dateutil itself refuses, such as one that can never hit
        assume(False)
    cost = rule_cost(vRecur.from_ical(rule), dtstart, dt.timedelta(0))
    assert cost.instances(start, stop) >= len(parsed.between(start, stop, inc=True))
    assert cost.instances(dtstart, stop) >= len(parsed.between(dtstart, stop, inc=True))


def test_query_stop_keeps_within_both_budgets() -> None:
    from icalendar import vRecur

    begin = at(UTC, 2024, 1, 1)
    secondly = rule_cost(vRecur.from_ical("FREQ=SECONDLY"), begin, dt.timedelta(0))
    daily = rule_cost(vRecur.from_ical("FREQ=DAILY"), begin, dt.timedelta(0))
    end = begin + dt.timedelta(days=1)
    assert query_stop([daily], begin, end, max_expansion=100, max_occurrences=100) == end
    stop = query_stop([secondly], begin, end, max_expansion=10**9, max_occurrences=1000)
    assert begin < stop < begin + dt.timedelta(seconds=1000)
    assert secondly.instances(begin, stop) <= 1000
    late = begin + dt.timedelta(days=30)
    assert (
        query_stop(
            [secondly], late, late + dt.timedelta(days=1), max_expansion=1000, max_occurrences=1000
        )
        == late
    )
