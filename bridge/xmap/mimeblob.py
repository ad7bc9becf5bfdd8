"""The MIME blobs of NEWMESSAGEUPLOAD, UPDATEMESSAGEUPLOAD and SENDMAIL (xmap-0.90.txt line 158:
"BLOB DATA must be encapsulated within a MIME package").

The blob is stored or sent as given, byte for byte; the server reads its header for what it
needs (line 158: "interpret the contents of the MIME encapsulated BLOB in order to fill out some
of the Meta-Data"): the listing takes From, To, Subject and Date from it, SENDMAIL its envelope
recipients from To, Cc and Bcc. Only what must change does:
- a message without Date or Message-ID gets them (RFC 5322 requires Date; a Sent copy without a
  Message-ID cannot be threaded), added at the top of the header;
- the copy handed to SMTP loses its Bcc field (RFC 5322 3.6.3), the TargetFolder copy keeps it.
"""

from __future__ import annotations

import email.utils
import re
import secrets
from dataclasses import dataclass

from bridge.errors import BridgeError, ErrorKind

_FIELD_NAME = re.compile(rb"[!-9;-~]+:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
MAX_RECIPIENTS = 1000


def _bad(text: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, text)


def split_header(raw: bytes) -> tuple[bytes, bytes]:
    """(header block with its last line end, the rest from the blank line on)."""
    end = _HEADER_END.search(raw)
    if end is None:
        return raw, b""
    cut = end.start() + (2 if raw[end.start()] == 13 else 1)
    return raw[:cut], raw[cut:]


def header_fields(header: bytes) -> list[tuple[str, bytes]]:
    """(lower-case name, whole field with its folded lines and line end), in order."""
    fields: list[tuple[str, bytes]] = []
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            name, text = fields[-1]
            fields[-1] = (name, text + line)
            continue
        match = _FIELD_NAME.match(line)
        if match is None:
            raise _bad("the message header holds a line that is not a header field")
        fields.append((match.group()[:-1].decode("ascii").lower(), line))
    return fields


def check_message(raw: bytes, limit: int) -> list[tuple[str, bytes]]:
    """A blob fit to store as a message: its header fields, else BAD_REQUEST/LIMIT."""
    if not raw:
        raise _bad("the message is empty")
    if len(raw) > limit:
        raise BridgeError(ErrorKind.LIMIT, f"a message is at most {limit} bytes")
    if b"\x00" in raw:
        raise _bad("a MIME message holds no zero bytes (encode binary parts, e.g. base64)")
    header, _ = split_header(raw)
    fields = header_fields(header)
    if not fields:
        raise _bad("the message has no header")
    return fields


def _value(field: bytes) -> str:
    text = field.decode("utf-8", "replace").partition(":")[2]
    return " ".join(text.split())


def complete(raw: bytes, owner: str, fields: list[tuple[str, bytes]]) -> bytes:
    """The message with Date and Message-ID added when missing."""
    names = {name for name, _ in fields}
    # The line end of the header's first line (a CRLF in an LF message's body is not its own).
    newline = b"\r\n" if fields[0][1].endswith(b"\r\n") else b"\n"
    added = b""
    if "date" not in names:
        added += b"Date: " + email.utils.formatdate(localtime=False).encode() + newline
    if "message-id" not in names:
        domain = owner.rpartition("@")[2] or "localhost"
        added += f"Message-ID: <xmap.{secrets.token_hex(12)}@{domain}>".encode() + newline
    return added + raw


@dataclass(frozen=True, slots=True)
class Outgoing:
    recipients: tuple[str, ...]
    transmit: bytes  # to SMTP: without Bcc
    stored: bytes  # to TargetFolder: as written, with Date and Message-ID


def prepare(raw: bytes, owner: str, limit: int) -> Outgoing:
    fields = check_message(raw, limit)
    stored = complete(raw, owner, fields)
    header, body = split_header(stored)
    fields = header_fields(header)
    values = [_value(text) for name, text in fields if name in ("to", "cc", "bcc")]
    recipients: list[str] = []
    for _, address in email.utils.getaddresses(values):
        if address and "@" in address and address not in recipients:
            recipients.append(address)
    if not recipients:
        raise _bad("the message names no recipient (To, Cc or Bcc)")
    if len(recipients) > MAX_RECIPIENTS:
        raise BridgeError(ErrorKind.LIMIT, f"at most {MAX_RECIPIENTS} recipients")
    transmit = b"".join(text for name, text in fields if name != "bcc") + body
    return Outgoing(tuple(recipients), transmit, stored)
