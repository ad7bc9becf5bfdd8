"""Service operations: noop, bye, readTime, listKnownValues."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache
from typing import TYPE_CHECKING

from bridge import xml
from bridge.calendar.zones import known_zone_names, zone_for
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

# XIMSS dates are ISO 8601 basic format without a zone suffix ("20061022T091143").
TIME_FORMAT = "%Y%m%dT%H%M%S"

# Character sets the bridge can decode and encode (Python codecs), as clients name them.
KNOWN_CHARSETS = (
    "utf-8", "us-ascii", "iso-8859-1", "iso-8859-2", "iso-8859-5", "iso-8859-7", "iso-8859-9",
    "iso-8859-15", "windows-1250", "windows-1251", "windows-1252", "koi8-r", "koi8-u",
    "iso-2022-jp", "shift_jis", "euc-jp", "euc-kr", "gb2312", "gbk", "gb18030", "big5", "utf-16",
)  # fmt: skip


async def noop(conv: Conversation, request: Request) -> Outcome:
    return Outcome.DONE


async def bye(conv: Conversation, request: Request) -> Outcome:
    return Outcome.CLOSE


def format_time(moment: dt.datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def user_zone(conv: Conversation) -> dt.tzinfo:
    """The session's TimeZone preference, else the configured default."""
    name = conv.services.settings.server.time_zone
    if conv.session is not None:
        name = conv.session.prefs.get("TimeZone", name)
    return zone_for(name) or dt.UTC


def user_zoneinfo(conv: Conversation) -> zoneinfo.ZoneInfo:
    """user_zone as a ZoneInfo (what the calendar code takes), UTC when none is set."""
    zone = user_zone(conv)
    return zone if isinstance(zone, zoneinfo.ZoneInfo) else zoneinfo.ZoneInfo("UTC")


async def read_time(conv: Conversation, request: Request) -> Outcome:
    now = dt.datetime.now(dt.UTC)
    conv.send(
        codec.data(
            "currentTime",
            request.id,
            {
                "gmtTime": format_time(now),
                "localTime": format_time(now.astimezone(user_zone(conv))),
            },
        )
    )
    return Outcome.DONE


@cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


async def list_known_values(conv: Conversation, request: Request) -> Outcome:
    known = codec.data("knownValues", request.id)
    # CommuniGate's zone names first (the spec's own examples use them), then every IANA one.
    for name, _iana in known_zone_names():
        xml.sub(known, "tzid", {"name": name})
    for zone in _zone_names():
        xml.sub(known, "tzid", {"name": zone})
    for charset in KNOWN_CHARSETS:
        xml.sub(known, "charset", {"name": charset})
    conv.send(known)
    return Outcome.DONE


async def clear_uploaded(conv: Conversation, request: Request) -> Outcome:
    """Remove one file (uploadID) or every file from the session's uploaded file set."""
    uploads = conv.require_session().uploads
    upload_id = request.get("uploadID")
    if upload_id is None:
        uploads.clear()
    elif not uploads.remove(upload_id):
        raise BridgeError(ErrorKind.NOT_FOUND, "unknown uploadID")
    return Outcome.DONE


async def cli_execute(conv: Conversation, request: Request) -> Outcome:
    # CommuniGate's CLI administers the server itself; behind the bridge there is no such thing.
    raise BridgeError(ErrorKind.NOT_SUPPORTED, "the bridge has no administrator CLI")
