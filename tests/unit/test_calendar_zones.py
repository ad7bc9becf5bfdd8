"""Time zone names: CommuniGate's names and IANA keys both resolve, nothing else does, and the
table listKnownValues shows is sorted, unique and made of real zones."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.calendar.zones import HOST_OS, known_zone_names, to_iana, zone_for

JANUARY = dt.datetime(2024, 1, 15, 12, 0)
JULY = dt.datetime(2024, 7, 15, 12, 0)


def offset_hours(name: str, when: dt.datetime) -> float:
    zone = zone_for(name)
    assert zone is not None, name
    offset = when.replace(tzinfo=zone).utcoffset()
    assert offset is not None
    return offset.total_seconds() / 3600


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NorthAmerica/Pacific", "America/Los_Angeles"),  # the spec's example
        ("NorthAmerica/Mountain", "America/Denver"),
        ("NorthAmerica/Central", "America/Chicago"),
        ("NorthAmerica/Eastern", "America/New_York"),
        ("Europe/Central", "Europe/Brussels"),
        ("Europe/Western", "Europe/Lisbon"),
        ("Europe/Eastern", "Europe/Athens"),
        ("Asia/India", "Asia/Kolkata"),
        ("Australia/East", "Australia/Sydney"),
        ("Russia/Ekaterinburg", "Asia/Yekaterinburg"),
        ("(+0900) Japan/Korea", "Etc/GMT-9"),
        ("(-0500) Haiti/Peru", "Etc/GMT+5"),
        ("GMT (+0000)", "Etc/GMT"),
    ],
)
def test_communigate_names_map_to_their_iana_zone(name: str, key: str) -> None:
    assert to_iana(name) == key
    assert zone_for(name) == zoneinfo.ZoneInfo(key)


@pytest.mark.parametrize(
    "name", ["northamerica/pacific", "NORTHAMERICA/PACIFIC", " NorthAmerica/Pacific "]
)
def test_communigate_names_ignore_case_and_surrounding_space(name: str) -> None:
    assert to_iana(name) == "America/Los_Angeles"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("America/Los_Angeles", "America/Los_Angeles"),
        ("america/los_angeles", "America/Los_Angeles"),
        ("EUROPE/BERLIN", "Europe/Berlin"),
        ("UTC", "UTC"),
        ("Etc/GMT-9", "Etc/GMT-9"),
    ],
)
def test_iana_keys_resolve_in_any_case(name: str, key: str) -> None:
    assert to_iana(name) == key
    zone = zone_for(name)
    assert zone is not None and zone.key == key


def test_every_available_iana_key_maps_to_itself() -> None:
    # A CommuniGate name that happens to be an IANA key too (Europe/Moscow) must not shadow it.
    for key in zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"}:
        assert to_iana(key) == key


def test_fixed_offset_names_have_no_daylight_saving() -> None:
    assert offset_hours("(+0900) Japan/Korea", JANUARY) == 9
    assert offset_hours("(+0900) Japan/Korea", JULY) == 9
    assert offset_hours("(-0700) Arisona", JANUARY) == -7
    assert offset_hours("(-0700) Arisona", JULY) == -7
    assert offset_hours("(+1400) Christmas Islands", JULY) == 14


def test_regional_names_follow_their_region_s_daylight_saving() -> None:
    assert offset_hours("Europe/Central", JANUARY) == 1
    assert offset_hours("Europe/Central", JULY) == 2
    assert offset_hours("NorthAmerica/Pacific", JANUARY) == -8
    assert offset_hours("NorthAmerica/Pacific", JULY) == -7
    assert offset_hours("Australia/East", JANUARY) == 11  # southern summer
    assert offset_hours("Australia/East", JULY) == 10
    assert offset_hours("Asia/India", JULY) == 5.5


def test_host_os_is_utc() -> None:
    assert to_iana(HOST_OS) == "UTC"
    assert to_iana("hostos") == "UTC"
    assert zone_for(HOST_OS) == zoneinfo.ZoneInfo("UTC")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "Nowhere/Special",
        "NorthAmerica",
        "America",  # a directory of the zone database, not a zone
        "localtime",  # the host's zone, whatever it is
        "posixrules",
        "Factory",
        "../../etc/passwd",
        "/etc/localtime",
        "America/../Europe/Berlin",
        "Europe/Berlin\x00",
        "(+0900)",
    ],
)
def test_unknown_and_unsafe_names_resolve_to_none(name: str) -> None:
    assert to_iana(name) is None
    assert zone_for(name) is None


def test_known_zone_names_is_sorted_unique_and_made_of_real_zones() -> None:
    table = known_zone_names()
    names = [name for name, _ in table]
    assert table == sorted(table)
    assert len({name.casefold() for name in names}) == len(names)
    assert ("NorthAmerica/Pacific", "America/Los_Angeles") in table
    assert (HOST_OS, "UTC") in table
    available = zoneinfo.available_timezones()
    for name, key in table:
        assert key in available, key
        assert to_iana(name) == key


def test_known_zone_names_is_a_fresh_list_each_time() -> None:
    first = known_zone_names()
    first.clear()
    assert known_zone_names() != []


@given(st.text(max_size=40))
def test_any_text_resolves_to_none_or_a_real_key(name: str) -> None:
    key = to_iana(name)
    zone = zone_for(name)
    if key is None:
        assert zone is None
    else:
        assert key in zoneinfo.available_timezones()
        assert zone is not None and zone.key == key
