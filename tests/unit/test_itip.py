"""iTIP messages and their effects: REQUEST, CANCEL and REPLY shapes per RFC 5546, PARTSTAT
updates on both sides, the attendees a re-publish drops."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar

from bridge.calendar import itip
from bridge.calendar.itip import Method
from bridge.calendar.xcal_in import calendar_text
from bridge.errors import BridgeError, ErrorKind

NOW = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)

ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)


def item(*extra: str, kind: str = "VEVENT", sequence: int = 2, method: str = "") -> Calendar:
    return Calendar.from_ical(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Client//EN\r\n"
        + (f"METHOD:{method}\r\n" if method else "")
        + ZONE
        + f"BEGIN:{kind}\r\nUID:meeting-1@example.com\r\nDTSTAMP:20240101T000000Z\r\n"
        f"SEQUENCE:{sequence}\r\nSUMMARY:Planning\r\nLOCATION:Room 1\r\n"
        "DTSTART;TZID=Europe/Berlin:20240510T100000\r\n"
        "DTEND;TZID=Europe/Berlin:20240510T110000\r\n"
        'ORGANIZER;CN="Big Boss":MAILTO:Boss@Company.dom\r\n'
        "ATTENDEE;CN=Small Boy;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:boy@company.dom\r\n"
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:mailto:quiet@company.dom\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:Girl@Company.dom\r\n"
        + "".join(f"{line}\r\n" for line in extra)
        + "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
        f"END:{kind}\r\nEND:VCALENDAR\r\n"
    )


def lines_of(cal: Calendar) -> list[str]:
    return re.sub(r"\r\n[ \t]", "", calendar_text(cal)).split("\r\n")


def only_item(cal: Calendar) -> list[str]:
    lines = lines_of(cal)
    return lines[lines.index("BEGIN:VEVENT") : lines.index("END:VEVENT") + 1]


def partstats(cal: Calendar) -> dict[str, str]:
    found = {}
    for comp in cal.walk("VEVENT") + cal.walk("VTODO"):
        for line in itip._all(comp, "ATTENDEE"):
            key = itip.address(line) + (
                f"@{comp['RECURRENCE-ID'].to_ical().decode()}" if "RECURRENCE-ID" in comp else ""
            )
            found[key] = str(line.params.get("PARTSTAT"))
    return found


def test_addresses() -> None:
    cal = item()
    assert itip.organizer(cal) == "boss@company.dom"
    assert itip.attendees(cal) == ("boy@company.dom", "quiet@company.dom", "girl@company.dom")
    line = itip.find_attendee(cal, "MAILTO:GIRL@company.dom")
    assert line is not None and line.params["PARTSTAT"] == "ACCEPTED"
    assert itip.find_attendee(cal, "nobody@company.dom") is None
    assert itip.address(" MailTo:X@Y.org ") == "x@y.org"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("", Method.PUBLISH),
        ("PUBLISH", Method.PUBLISH),
        ("REQUEST", Method.REQUEST),
        ("reply", Method.REPLY),
        ("CANCEL", Method.CANCEL),
    ],
)
def test_kind(method: str, expected: Method) -> None:
    assert itip.kind(item(method=method)) is expected


def test_kind_of_other_methods() -> None:
    with pytest.raises(BridgeError) as err:
        itip.kind(item(method="COUNTER"))
    assert err.value.kind is ErrorKind.NOT_SUPPORTED
    with pytest.raises(BridgeError) as err:
        itip.kind(item(method="PLEASE"))
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_request_shape() -> None:
    original = item()
    message = itip.request(original, now=NOW)
    assert itip.kind(message) is Method.REQUEST
    lines = only_item(message)
    assert "SEQUENCE:2" in lines and "DTSTAMP:20240501T080000Z" in lines
    assert sum(line.startswith("ATTENDEE") for line in lines) == 3
    assert "BEGIN:VALARM" not in lines  # the organizer's reminders stay home
    assert message.timezones[0]["TZID"] == "Europe/Berlin"
    assert "BEGIN:VALARM" in lines_of(original)  # the input is not changed
    assert Calendar.from_ical(calendar_text(message)) == message


def test_request_adds_a_vtimezone_a_server_left_out() -> None:
    bare = item()
    bare.subcomponents[:] = [comp for comp in bare.subcomponents if comp.name != "VTIMEZONE"]
    assert not bare.timezones
    message = itip.request(bare, now=NOW)
    assert [str(tz["TZID"]) for tz in message.timezones] == ["Europe/Berlin"]


def test_request_without_attendees_is_refused() -> None:
    text = re.sub(r"ATTENDEE[^\r]*\r\n", "", calendar_text(item()))
    with pytest.raises(BridgeError) as err:
        itip.request(Calendar.from_ical(text), now=NOW)
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_cancel_whole_item() -> None:
    original = item()
    before = calendar_text(original)
    message = itip.cancel(original, comment="Sorry, no room", now=NOW)
    assert calendar_text(original) == before
    assert itip.kind(message) is Method.CANCEL
    lines = only_item(message)
    assert "SEQUENCE:3" in lines and "STATUS:CANCELLED" in lines
    assert "UID:meeting-1@example.com" in lines and "DTSTAMP:20240501T080000Z" in lines
    assert 'ORGANIZER;CN="Big Boss":MAILTO:Boss@Company.dom' in lines
    assert "COMMENT:Sorry\\, no room" in lines
    assert sum(line.startswith("ATTENDEE") for line in lines) == 3
    assert "BEGIN:VALARM" not in lines and not any(
        line.startswith("RECURRENCE-ID") for line in lines
    )
    assert [str(tz["TZID"]) for tz in message.timezones] == ["Europe/Berlin"]


def test_cancel_for_removed_attendees_only() -> None:
    message = itip.cancel(item(), ["MAILTO:Quiet@company.dom", "stranger@x.org"], now=NOW)
    lines = only_item(message)
    attendees = [line for line in lines if line.startswith("ATTENDEE")]
    assert attendees == [
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:mailto:quiet@company.dom",
        "ATTENDEE:mailto:stranger@x.org",
    ]
    assert "SEQUENCE:3" in lines
    assert not any(line.startswith("STATUS") for line in lines)  # RFC 5546 3.2.5: uninviting


def test_cancel_of_one_instance_keeps_its_recurrence_id() -> None:
    cal = item("RECURRENCE-ID;TZID=Europe/Berlin:20240510T100000")
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20240510T100000" in only_item(
        itip.cancel(cal, now=NOW)
    )


def test_reply_shape() -> None:
    message = itip.reply(item(), "boy@company.dom", "accepted", "See you", now=NOW)
    assert itip.kind(message) is Method.REPLY
    lines = only_item(message)
    assert [line for line in lines if line.startswith("ATTENDEE")] == [
        'ATTENDEE;CN="Small Boy";PARTSTAT=ACCEPTED:mailto:boy@company.dom'
    ]
    for wanted in (
        "UID:meeting-1@example.com",
        "SEQUENCE:2",
        "DTSTAMP:20240501T080000Z",
        'ORGANIZER;CN="Big Boss":MAILTO:Boss@Company.dom',
        "COMMENT:See you",
        "SUMMARY:Planning",
        "DTSTART;TZID=Europe/Berlin:20240510T100000",
    ):
        assert wanted in lines
    assert "BEGIN:VALARM" not in lines and not any(
        line.startswith("RECURRENCE-ID") for line in lines
    )
    assert [str(tz["TZID"]) for tz in message.timezones] == ["Europe/Berlin"]


def test_reply_for_an_instance_carries_its_recurrence_id() -> None:
    cal = item("RECURRENCE-ID:20240510T080000Z")
    lines = only_item(itip.reply(cal, "boy@company.dom", "DECLINED", now=NOW))
    assert "RECURRENCE-ID:20240510T080000Z" in lines


@pytest.mark.parametrize(
    ("who", "partstat"),
    [
        ("stranger@x.org", "ACCEPTED"),
        ("boy@company.dom", "MAYBE"),
        ("boy@company.dom", "COMPLETED"),
    ],
)
def test_reply_refusals(who: str, partstat: str) -> None:
    with pytest.raises(BridgeError) as err:
        itip.reply(item(), who, partstat, now=NOW)
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_set_partstat_for_events_and_tasks() -> None:
    cal = item()
    accepted = itip.set_partstat(cal, "boy@company.dom", "TENTATIVE")
    assert partstats(accepted)["boy@company.dom"] == "TENTATIVE"
    assert partstats(cal)["boy@company.dom"] == "NEEDS-ACTION"
    for bad in ("IN-PROCESS", "COMPLETED", "junk"):
        with pytest.raises(BridgeError) as err:
            itip.set_partstat(cal, "boy@company.dom", bad)
        assert err.value.kind is ErrorKind.BAD_REQUEST
    task = itip.set_partstat(item(kind="VTODO"), "boy@company.dom", "IN-PROCESS")
    assert partstats(task)["boy@company.dom"] == "IN-PROCESS"
    with pytest.raises(BridgeError):
        itip.set_partstat(cal, "stranger@x.org", "ACCEPTED")
    assert {"ACCEPTED", "TENTATIVE", "IN-PROCESS", "COMPLETED"} == itip.ACCEPT_PARTSTATS


def test_rsvp_wanted() -> None:
    cal = item()
    assert itip.rsvp_wanted(cal, "boy@company.dom")
    assert not itip.rsvp_wanted(cal, "quiet@company.dom")  # RSVP=FALSE
    assert itip.rsvp_wanted(cal, "girl@company.dom")  # no RSVP: the spec replies
    assert not itip.rsvp_wanted(cal, "stranger@x.org")
    own = item("ATTENDEE:mailto:boss@company.dom")
    assert not itip.rsvp_wanted(own, "boss@company.dom")  # nobody to reply to but myself


def test_apply_reply_sets_partstat() -> None:
    stored = item()
    answer = itip.reply(stored, "boy@company.dom", "ACCEPTED", now=NOW)
    updated = itip.apply_reply(stored, answer)
    assert partstats(updated) == {
        "boy@company.dom": "ACCEPTED",
        "quiet@company.dom": "NEEDS-ACTION",
        "girl@company.dom": "ACCEPTED",
    }
    assert partstats(stored)["boy@company.dom"] == "NEEDS-ACTION"


def recurring_with_override() -> Calendar:
    text = calendar_text(item("RRULE:FREQ=DAILY;COUNT=5"))
    override = (
        "BEGIN:VEVENT\r\nUID:meeting-1@example.com\r\nDTSTAMP:20240101T000000Z\r\nSEQUENCE:2\r\n"
        "RECURRENCE-ID;TZID=Europe/Berlin:20240511T100000\r\n"
        "DTSTART;TZID=Europe/Berlin:20240511T140000\r\nDTEND;TZID=Europe/Berlin:20240511T150000\r\n"
        "ORGANIZER:mailto:boss@company.dom\r\n"
        "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:boy@company.dom\r\nEND:VEVENT\r\n"
    )
    return Calendar.from_ical(text.replace("END:VCALENDAR", override + "END:VCALENDAR"))


def reply_text(partstat: str, *extra: str, uid: str = "meeting-1@example.com") -> Calendar:
    return Calendar.from_ical(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\nMETHOD:REPLY\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20240502T000000Z\r\nSEQUENCE:2\r\n"
        "ORGANIZER:mailto:boss@company.dom\r\n"
        + "".join(f"{line}\r\n" for line in extra)
        + f"ATTENDEE;PARTSTAT={partstat}:mailto:BOY@company.dom\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_apply_reply_to_the_series_updates_the_overrides_too() -> None:
    updated = itip.apply_reply(recurring_with_override(), reply_text("TENTATIVE"))
    found = partstats(updated)
    assert found["boy@company.dom"] == "TENTATIVE"
    assert found["boy@company.dom@20240511T100000"] == "TENTATIVE"


def test_apply_reply_to_an_existing_override() -> None:
    # The same instance written in UTC: matched as an instant.
    answer = reply_text("DECLINED", "RECURRENCE-ID:20240511T080000Z")
    found = partstats(itip.apply_reply(recurring_with_override(), answer))
    assert found["boy@company.dom"] == "NEEDS-ACTION"
    assert found["boy@company.dom@20240511T100000"] == "DECLINED"


def test_apply_reply_to_an_instance_adds_an_override() -> None:
    answer = reply_text("DECLINED", "RECURRENCE-ID:20240512T080000Z")
    updated = itip.apply_reply(recurring_with_override(), answer)
    events = updated.walk("VEVENT")
    assert len(events) == 3
    added = next(
        event
        for event in events
        if "RECURRENCE-ID" in event and event["RECURRENCE-ID"].to_ical() == b"20240512T100000"
    )
    text = calendar_text(updated)
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20240512T100000" in text
    assert "RRULE" not in added and "BEGIN:VALARM" in added.to_ical().decode()
    assert added.decoded("DTSTART") == dt.datetime(2024, 5, 12, 8, 0, tzinfo=dt.UTC)
    assert added.decoded("DTEND") == dt.datetime(2024, 5, 12, 9, 0, tzinfo=dt.UTC)
    found = partstats(updated)
    assert found["boy@company.dom@20240512T100000"] == "DECLINED"
    assert found["girl@company.dom@20240512T100000"] == "ACCEPTED"
    assert found["boy@company.dom"] == "NEEDS-ACTION"  # the rest of the series is unanswered


@pytest.mark.parametrize(
    "answer",
    [
        reply_text("ACCEPTED", uid="another@example.com"),
        reply_text("ACCEPTED", "ATTENDEE:mailto:girl@company.dom"),  # two attendees
        Calendar.from_ical(
            calendar_text(reply_text("ACCEPTED")).replace("BOY@company.dom", "stranger@x.org")
        ),
        reply_text("MAYBE"),
        reply_text("ACCEPTED", "RECURRENCE-ID:20240512T080000Z"),  # the stored item does not recur
        Calendar.from_ical(
            calendar_text(reply_text("ACCEPTED")).replace("SEQUENCE:2", "SEQUENCE:1")
        ),
        Calendar.from_ical(
            calendar_text(reply_text("ACCEPTED")).replace("METHOD:REPLY", "METHOD:REQUEST")
        ),
    ],
)
def test_apply_reply_refusals(answer: Calendar) -> None:
    with pytest.raises(BridgeError) as err:
        itip.apply_reply(item(), answer)
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_dropped_attendees() -> None:
    old = item()
    new = Calendar.from_ical(
        calendar_text(old)
        .replace("ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:mailto:quiet@company.dom\r\n", "")
        .replace("mailto:Girl@Company.dom", "mailto:girl@company.dom")  # same person, other case
        .replace("END:VEVENT", "ATTENDEE:mailto:new@company.dom\r\nEND:VEVENT")
    )
    assert itip.dropped_attendees(old, new) == ("quiet@company.dom",)
    assert itip.dropped_attendees(new, old) == ("new@company.dom",)
    assert itip.dropped_attendees(old, old) == ()


@given(
    st.sampled_from(["boy@company.dom", "QUIET@company.dom", "mailto:girl@company.dom"]),
    st.sampled_from(sorted(itip.PARTSTATS["VEVENT"])),
)
def test_a_reply_applied_changes_only_its_attendee(me: str, partstat: str) -> None:
    stored = item()
    before = partstats(stored)
    updated = itip.apply_reply(stored, itip.reply(stored, me, partstat, now=NOW))
    after = partstats(updated)
    assert after == {**before, itip.address(me): partstat}
