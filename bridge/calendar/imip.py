"""iMIP (RFC 6047): an iTIP calendar as the mail that carries it. Pure: the clock and the host
name come from the caller; randomness only for the Message-ID, unless it is given.

The message is multipart/alternative: a short text/plain for people, then the text/calendar part
with the iTIP method as a parameter, as RFC 6047 section 2.4 has it (both UTF-8). The stdlib
email package (policy SMTP: CRLF, RFC 2047 for non-ASCII header text) chooses each part's
Content-Transfer-Encoding: 7bit for ASCII, 8bit for other text with short lines (the iCalendar
text is folded at 75 octets), quoted-printable or base64 when a line of the text is long, so no
line exceeds 998 octets. 8bit is what compose.py sends too.
"""

from __future__ import annotations

import datetime as dt
import email.errors
import email.utils
import re
import secrets
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP

from icalendar import Calendar

from bridge.calendar.itip import kind
from bridge.errors import BridgeError, ErrorKind

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def imip_message(
    itip: Calendar,
    *,
    sender: str,
    sender_name: str | None,
    recipients: Sequence[str],
    subject: str,
    body: str,
    now: dt.datetime,
    hostname: str,
    message_id: str | None = None,
) -> bytes:
    """The RFC 5322 bytes of the iMIP message for `itip` (which must carry a METHOD).

    Addresses are bare (`a@b.example`, no "mailto:"). BAD_REQUEST for an address the email
    package cannot write; ValueError for the caller's own mistakes (no METHOD, no recipients,
    a naive `now`, a bad hostname).
    """
    if "METHOD" not in itip or not recipients or now.tzinfo is None:
        raise ValueError("an iTIP calendar with METHOD, recipients and an aware `now` are needed")
    if _HOSTNAME.match(hostname) is None:
        raise ValueError("hostname must be a domain name")
    method = kind(itip).value
    msg = EmailMessage(policy=SMTP)
    try:
        msg["From"] = Address(_one_line(sender_name or ""), addr_spec=sender)
        msg["To"] = [Address(addr_spec=who) for who in recipients]
        msg["Subject"] = _one_line(subject)
        msg["Date"] = email.utils.format_datetime(now)
        msg["Message-ID"] = message_id or f"<ximss-{secrets.token_hex(12)}@{hostname}>"
        msg.set_content(body, subtype="plain", charset="utf-8")
        text: bytes = itip.to_ical()
        msg.add_alternative(
            text.decode("utf-8"), subtype="calendar", charset="utf-8", params={"method": method}
        )
        for part in msg.iter_parts():
            del part["MIME-Version"]  # add_alternative gives each part one; the top is enough
        return msg.as_bytes()
    except (ValueError, IndexError, email.errors.MessageError) as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "an address cannot be written in mail") from exc


def _one_line(text: str) -> str:
    # Header text comes from the item (a SUMMARY may hold line breaks): never a new header line.
    # splitlines knows every break the email package does (FF, NEL, U+2028...).
    return _CONTROL.sub(" ", " ".join(text.splitlines())).strip()
