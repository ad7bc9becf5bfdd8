"""LISTFOLDER rows from message summaries: a file's message becomes a FILEHEADER, any other
message a MESSAGEHEADER (xmap-0.90.txt lines 28-44).

Where the text is vague this module decides:
- MessageDate is the Date header (the message's own date), else the arrival time; a file's Date
  is its arrival time (the upload).
- MessageFrom and MessageTo are the header values decoded (RFC 2047), as a reader shows them.
- MessageAttachments counts the parts a reader would call attachments: those with an
  `attachment` disposition or a file name, and leaf parts that are neither text nor the
  message's first part (an inline image, an enclosed message). The text bodies of a message and
  the alternatives of multipart/alternative are not attachments.
- MessageLength is the stored size (RFC822.SIZE); a file's Length is its byte count.
"""

from __future__ import annotations

import datetime as dt
import email.utils

from adapters.protocols import MessageSummary, MimePart
from bridge.mime.decode import decode_words
from bridge.xmap import files
from bridge.xmap.flags import message_status
from bridge.xmap.responses import FileHeader, MessageHeader

HEADER_FIELDS = ("Date", "From", "To", "Subject", files.FILE_FIELD, files.LENGTH_FIELD)


def message_date(summary: MessageSummary) -> dt.datetime:
    raw = summary.headers.get("Date")
    if raw:
        try:
            return email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return summary.internaldate


def attachment_count(part: MimePart | None) -> int:
    if part is None:
        return 0
    return sum(1 for _ in _attachments(part, top=True))


def _attachments(part: MimePart, *, top: bool) -> list[MimePart]:
    if part.type == "multipart":
        found: list[MimePart] = []
        for index, child in enumerate(part.children):
            # The first part of a message is its body (unless it says it is an attachment).
            first = top and index == 0 and part.subtype != "alternative"
            found += _attachments(child, top=first)
        return found
    named = part.disposition == "attachment" or "filename" in part.disposition_params
    named = named or "name" in part.params
    if named or (not top and part.type != "text"):
        return [part]
    return []


def is_file(summary: MessageSummary) -> bool:
    """A file stored by XMAP: its keyword and its name header (files.FILE_KEYWORD)."""
    flags = {flag.casefold() for flag in summary.flags}
    return files.FILE_KEYWORD.casefold() in flags and files.name_of(summary.headers) is not None


def row(folder: str, summary: MessageSummary, handle: int | None) -> MessageHeader | FileHeader:
    """The row of one message; `handle` is its MessageHandle (None for a file: files have none)."""
    name = files.name_of(summary.headers)
    if name is not None and is_file(summary):
        return FileHeader(
            name=f"{folder}/{name}",
            date=summary.internaldate,
            length=files.length_of(summary.headers, summary.size),
        )
    if handle is None:
        raise ValueError("a message row needs its handle")
    return MessageHeader(
        handle=handle,
        status=message_status(summary.flags),
        date=message_date(summary),
        sender=decode_words(summary.headers.get("From", "")),
        recipients=decode_words(summary.headers.get("To", "")),
        subject=decode_words(summary.headers.get("Subject", "")),
        attachments=attachment_count(summary.structure),
        length=summary.size,
    )
