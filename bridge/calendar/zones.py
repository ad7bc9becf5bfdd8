"""Time zone names as XIMSS clients use them, resolved to IANA zones.

XIMSS clients name time zones the way CommuniGate Pro does ("NorthAmerica/Pacific",
"Europe/Central", "(+0900) Japan/Korea"), and such names appear as TZID parameters in
iCalendar data with no VTIMEZONE beside them (the spec allows leaving it out "if this time
zone is one of the standard time zones known to the Server"). CalDAV servers and Python use
IANA keys. This module translates between the two.

Where the names come from. CommuniGate publishes its list as
``http://www.communigate.com/pub/client/TimeZones.data``; we could not fetch it, so the names
in ``_CG_ZONES`` are the copy of that list kept by Freeside's CommuniGate export
(``FS/FS/svc_CGP_Mixin.pm`` in freeside/Freeside, function ``cgp_timezone``), which is the
CommuniGate 5.x list that matches the XIMSS 5.1 spec. The names are CommuniGate's, the IANA
column is OURS: CommuniGate's list names regions, not cities, so we picked the zone that
carries that region's rules:

* the "(+hhmm) Place" names are CommuniGate's zones without daylight saving time, so they map
  to the fixed-offset ``Etc/GMT`` zones (whose sign is inverted by POSIX convention:
  ``(+0100)`` is ``Etc/GMT-1``), not to a city whose history has DST changes;
* ``Europe/Central``, ``Europe/Eastern`` and ``Europe/Western`` take the cities tzdata 2024b
  itself chose when it made the legacy ``CET``, ``EET`` and ``WET`` keys links (Brussels,
  Athens, Lisbon);
* the rest are the obvious capital or namesake city.

Special names:

* ``HostOS`` means "the server's own OS zone" in CommuniGate. The bridge's host zone is an
  accident of deployment (usually a container in UTC) that users cannot see, so we define it
  as ``UTC``: results then do not change when the bridge moves between hosts.
* the empty string means "not set" (use the default) and resolves to ``None``, like any name
  we do not know; the caller decides the fallback.

IANA keys are accepted as they are and also case-insensitively. Only keys that
``zoneinfo.available_timezones()`` lists are accepted, less the host-dependent ones
(``localtime``, ``posixrules``, ``Factory``), so a client-supplied name never makes us
probe arbitrary files.
"""

from __future__ import annotations

import functools
import zoneinfo

HOST_OS = "HostOS"

# (CommuniGate name, IANA key). The table is the documentation; see the module docstring for
# where each column comes from.
_CG_ZONES: tuple[tuple[str, str], ...] = (
    (HOST_OS, "UTC"),
    ("(+0100) Algeria/Congo", "Etc/GMT-1"),
    ("(+0200) Egypt/South Africa", "Etc/GMT-2"),
    ("(+0300) Saudi Arabia", "Etc/GMT-3"),
    ("(+0400) Oman", "Etc/GMT-4"),
    ("(+0500) Pakistan", "Etc/GMT-5"),
    ("(+0600) Bangladesh", "Etc/GMT-6"),
    ("(+0700) Thailand/Vietnam", "Etc/GMT-7"),
    ("(+0800) China/Malaysia", "Etc/GMT-8"),
    ("(+0900) Japan/Korea", "Etc/GMT-9"),
    ("(+1000) Queensland", "Etc/GMT-10"),
    ("(+1100) Micronesia", "Etc/GMT-11"),
    ("(+1200) Fiji", "Etc/GMT-12"),
    ("(+1300) Tonga/Kiribati", "Etc/GMT-13"),
    ("(+1400) Christmas Islands", "Etc/GMT-14"),
    ("(-0100) Azores/Cape Verde", "Etc/GMT+1"),
    ("(-0200) Fernando de Noronha", "Etc/GMT+2"),
    ("(-0300) Argentina/Uruguay", "Etc/GMT+3"),
    ("(-0400) Venezuela/Guyana", "Etc/GMT+4"),
    ("(-0500) Haiti/Peru", "Etc/GMT+5"),
    ("(-0600) Central America", "Etc/GMT+6"),
    # CommuniGate's own spelling; kept because it is the name clients send.
    ("(-0700) Arisona", "Etc/GMT+7"),
    ("(-0800) Adamstown", "Etc/GMT+8"),
    ("(-0900) Marquesas Islands", "Etc/GMT+9"),
    ("(-1000) Hawaii/Tahiti", "Etc/GMT+10"),
    ("(-1100) Samoa", "Etc/GMT+11"),
    ("Asia/Afghanistan", "Asia/Kabul"),
    ("Asia/India", "Asia/Kolkata"),
    ("Asia/Iran", "Asia/Tehran"),
    ("Asia/Iraq", "Asia/Baghdad"),
    ("Asia/Israel", "Asia/Jerusalem"),
    ("Asia/Jordan", "Asia/Amman"),
    ("Asia/Lebanon", "Asia/Beirut"),
    ("Asia/Syria", "Asia/Damascus"),
    ("Australia/Adelaide", "Australia/Adelaide"),
    ("Australia/East", "Australia/Sydney"),
    ("Australia/NorthernTerritory", "Australia/Darwin"),
    ("Europe/Central", "Europe/Brussels"),
    ("Europe/Eastern", "Europe/Athens"),
    ("Europe/Moscow", "Europe/Moscow"),
    ("Europe/Western", "Europe/Lisbon"),
    ("GMT (+0000)", "Etc/GMT"),
    ("Newfoundland", "America/St_Johns"),
    ("NewZealand/Auckland", "Pacific/Auckland"),
    ("NorthAmerica/Alaska", "America/Anchorage"),
    ("NorthAmerica/Atlantic", "America/Halifax"),
    ("NorthAmerica/Central", "America/Chicago"),
    ("NorthAmerica/Eastern", "America/New_York"),
    ("NorthAmerica/Mountain", "America/Denver"),
    ("NorthAmerica/Pacific", "America/Los_Angeles"),
    ("Russia/Ekaterinburg", "Asia/Yekaterinburg"),
    ("Russia/Irkutsk", "Asia/Irkutsk"),
    ("Russia/Kamchatka", "Asia/Kamchatka"),
    ("Russia/Krasnoyarsk", "Asia/Krasnoyarsk"),
    ("Russia/Magadan", "Asia/Magadan"),
    ("Russia/Novosibirsk", "Asia/Novosibirsk"),
    ("Russia/Vladivostok", "Asia/Vladivostok"),
    ("Russia/Yakutsk", "Asia/Yakutsk"),
    ("SouthAmerica/Brasil", "America/Sao_Paulo"),
    ("SouthAmerica/Chile", "America/Santiago"),
    ("SouthAmerica/Paraguay", "America/Asuncion"),
)

_CG_BY_FOLDED: dict[str, str] = {cg.casefold(): iana for cg, iana in _CG_ZONES}

# Keys in the zone database that describe the host, not a place.
_HOST_KEYS = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def _iana_by_folded() -> dict[str, str]:
    # Scanning the zone database costs tens of milliseconds; do it once per process.
    keys = zoneinfo.available_timezones() - _HOST_KEYS
    return {key.casefold(): key for key in keys}


def to_iana(name: str) -> str | None:
    """The IANA key for a CommuniGate or IANA zone name, or None if it names no zone we know.

    An exact IANA key wins, then a CommuniGate name, then an IANA key in another case.
    """
    name = name.strip()
    if not name:
        return None
    by_folded = _iana_by_folded()
    folded = name.casefold()
    if by_folded.get(folded) == name:
        return name
    cg = _CG_BY_FOLDED.get(folded)
    if cg is not None:
        return cg
    return by_folded.get(folded)


def zone_for(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone for a CommuniGate or IANA zone name, or None if it names no zone we know."""
    key = to_iana(name)
    if key is None:
        return None
    # ZoneInfo caches instances by key, so equal names give the identical object.
    return zoneinfo.ZoneInfo(key)


def known_zone_names() -> list[tuple[str, str]]:
    """(CommuniGate name, IANA key) pairs, sorted by name: the zones listKnownValues lists."""
    return sorted(_CG_ZONES)
