"""XMAP responses out: every shape of xmap-0.90.txt lines 159-280, built from typed values.

Every answer is wrapped in `<XMAPROOT>` (line 165 and each response after it). Element and
attribute names are the text's, case included. Decisions where the text is silent or garbled:

- COPYFILE (line 227) is shown without XMAPROOT; it gets the wrapper like every other answer.
- Typos in the shapes are read as their evident intent: MOVEMESSAGE's `/;>` (line 215) and
  COPYMESSAGE's `TargetFolder=Full Path">` (line 231) are the empty element with a quoted value,
  as in the batch rows (lines 221, 237).
- RENAMEFOLDER (`Name="Folder Name"`, line 269) and MOVEFOLDER (`Name="Full Path"`, line 274)
  answer the folder's new full path (the request's Destination): the answer tells the client
  where the folder now is. `echo` encodes this in `_ECHO_FROM`.
- MOVEMESSAGE and COPYMESSAGE answer a MessageHandle (lines 215, 231); the front end passes the
  handle the message now has (for a copy: the copy's new handle), MOVE keeping its handle when
  the store re-maps it. NEWMESSAGEUPLOAD answers the new message's handle (line 249), SENDMAIL the
  copy's handle or no attribute when nothing was copied (line 279: "Handle if copied").
- Batch answers (lines 196-201, 219-224, 235-240) list one child per requested item, in request
  order: the item's own answer element when it succeeded, else an ERROR element with the item's
  request attributes added (errors.py), so a client can tell which items failed.
- GETFILE/GETMESSAGE (lines 180, 183: "BLOB DATA"): the header `<XMAPROOT><GETFILE Name=".."
  Length="N"/></XMAPROOT>` then the blob (DESIGN.md section 6); GETMESSAGE's header names the
  message by MessageHandle, its request attribute.
- Dates (lines 31, 42: "a date") are RFC 5322 date-times (`Sat, 22 Apr 2000 10:00:00 +0000`), the
  form of a mail's own Date header; a naive datetime is taken as UTC. Keys (MessageSessionKey,
  Key) are empty strings (DESIGN.md section 6).
- LOGIN (our extension) answers `<XMAPROOT><LOGIN UserName=".."/></XMAPROOT>`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import format_datetime

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError
from bridge.xmap import commands as c
from bridge.xmap.codec import request_attrs
from bridge.xmap.document import ROOT
from bridge.xmap.errors import error_item
from bridge.xmap.flags import XmapFlag
from bridge.xmap.text import clean


def root(*children: etree._Element) -> etree._Element:
    elem = xml.element(ROOT)
    elem.extend(children)
    return elem


def format_date(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return format_datetime(value)


# --- listings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """One MESSAGEHEADER row (lines 28-37, 174). `status` is the one MessageStatus word (line 30;
    flags.message_status chooses it from IMAP flags)."""

    handle: int
    status: XmapFlag
    date: dt.datetime
    sender: str  # MessageFrom
    recipients: str  # MessageTo
    subject: str
    attachments: int
    length: int
    session_key: str = ""


@dataclass(frozen=True, slots=True)
class FileHeader:
    """One FILEHEADER row (lines 40-44, 175)."""

    name: str
    date: dt.datetime
    length: int
    key: str = ""


def message_header(row: MessageHeader) -> etree._Element:
    return xml.element(
        "MESSAGEHEADER",
        {
            "MessageHandle": str(row.handle),
            "MessageFlags": row.status.value,
            "MessageDate": format_date(row.date),
            "MessageFrom": clean(row.sender),
            "MessageTo": clean(row.recipients),
            "MessageSubject": clean(row.subject),
            "MessageAttachments": str(row.attachments),
            "MessageLength": str(row.length),
            "MessageSessionKey": clean(row.session_key),
        },
    )


def file_header(row: FileHeader) -> etree._Element:
    return xml.element(
        "FILEHEADER",
        {
            "Name": clean(row.name),
            "Date": format_date(row.date),
            "Length": str(row.length),
            "Key": clean(row.key),
        },
    )


def list_all_folders(names: Iterable[str]) -> etree._Element:
    """`<XMAPROOT><LISTALLFOLDERS><FOLDER Name=".."/>...</LISTALLFOLDERS></XMAPROOT>`, 165-169."""
    listing = xml.element("LISTALLFOLDERS")
    for name in names:
        xml.sub(listing, "FOLDER", {"Name": clean(name)})
    return root(listing)


def list_folder(name: str, rows: Iterable[MessageHeader | FileHeader]) -> etree._Element:
    """`<XMAPROOT><LISTFOLDER Name="..">` with MESSAGEHEADER and FILEHEADER rows in the given
    order, lines 172-177."""
    listing = xml.element("LISTFOLDER", {"Name": clean(name)})
    for row in rows:
        listing.append(message_header(row) if isinstance(row, MessageHeader) else file_header(row))
    return root(listing)


# --- blob answers ------------------------------------------------------------------------------


def get_file_header(name: str, length: int) -> etree._Element:
    """`<XMAPROOT><GETFILE Name=".." Length="N"/></XMAPROOT>`, followed by the blob."""
    return root(xml.element("GETFILE", {"Name": clean(name), "Length": str(length)}))


def get_message_header(handle: int, length: int) -> etree._Element:
    """`<XMAPROOT><GETMESSAGE MessageHandle=".." Length="N"/></XMAPROOT>`, then the blob."""
    return root(xml.element("GETMESSAGE", {"MessageHandle": str(handle), "Length": str(length)}))


# --- acknowledgements --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """A command done; which fields show, and which must be set, is `RESPONSES[command]`."""

    command: str
    name: str | None = None
    handle: int | None = None
    target_folder: str | None = None
    user_name: str | None = None


@dataclass(frozen=True, slots=True)
class Out:
    xml: str
    field: str
    required: bool = True


_O_NAME = Out("Name", "name")
_O_HANDLE = Out("MessageHandle", "handle")
_O_TARGET = Out("TargetFolder", "target_folder")

# Answer shapes, as the text spells them (line numbers of the response rows).
RESPONSES: dict[str, tuple[Out, ...]] = {
    "LOGIN": (Out("UserName", "user_name"),),  # DESIGN.md section 6 extension
    "DELETEFILE": (_O_NAME,),  # 187
    "DELETEMESSAGE": (_O_HANDLE,),  # 192
    "EMPTYFOLDER": (_O_NAME,),  # 205
    "MOVEFILE": (_O_NAME, _O_TARGET),  # 210
    "MOVEMESSAGE": (_O_HANDLE, _O_TARGET),  # 215
    "COPYFILE": (_O_NAME, _O_TARGET),  # 227
    "COPYMESSAGE": (_O_HANDLE, _O_TARGET),  # 231
    "NEWFILEUPLOAD": (_O_NAME,),  # 244
    "NEWMESSAGEUPLOAD": (_O_HANDLE,),  # 249
    "UPDATEMESSAGEUPLOAD": (_O_HANDLE,),  # 254
    "UPDATEFILEUPLOAD": (_O_NAME,),  # 259
    "CREATEFOLDER": (_O_NAME,),  # 264
    "RENAMEFOLDER": (_O_NAME,),  # 269
    "MOVEFOLDER": (_O_NAME,),  # 274
    "SENDMAIL": (Out("MessageHandle", "handle", required=False),),  # 279
    "DELETEFOLDER": (_O_NAME,),  # extension
    "RENAMEFILE": (_O_NAME,),  # extension: the file's new full path
}

# Answer fields that come from a differently named request field.
_ECHO_FROM: dict[str, dict[str, str]] = {
    "RENAMEFOLDER": {"name": "destination"},
    "MOVEFOLDER": {"name": "destination"},
    "RENAMEFILE": {"name": "destination"},
}


def echo(command: c.Command, *, handle: int | None = None) -> Ack:
    """The answer a command gets when it succeeded, from its own fields; `handle` supplies (or
    replaces) the handle the answer shows (a new message's, a copy's)."""
    sources = _ECHO_FROM.get(command.COMMAND, {})
    values: dict[str, object] = {}
    for out in RESPONSES[command.COMMAND]:
        values[out.field] = getattr(command, sources.get(out.field, out.field), None)
    if handle is not None:
        values["handle"] = handle
    return Ack(command.COMMAND, **values)  # type: ignore[arg-type]


def ack_item(ack: Ack) -> etree._Element:
    """The answer element without the wrapper (a batch row)."""
    shape = RESPONSES.get(ack.command)
    if shape is None:
        raise ValueError(f"{ack.command} has no acknowledgement shape")
    elem = xml.element(ack.command)
    for out in shape:
        value = getattr(ack, out.field)
        if value is None:
            if out.required:
                raise ValueError(f"{ack.command} answers need {out.xml}")
            continue
        elem.set(out.xml, clean(str(value)))
    return elem


def ack(value: Ack) -> etree._Element:
    return root(ack_item(value))


# --- batches -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemFailure:
    item: c.Item
    error: BridgeError


def items(
    batch: c.DeleteItems | c.MoveItems | c.CopyItems, results: Sequence[Ack | ItemFailure]
) -> etree._Element:
    """The batch answer: one row per item, in request order."""
    if len(results) != len(batch.items):
        raise ValueError("a batch answer has one result per item")
    listing = xml.element(batch.COMMAND)
    for result in results:
        if isinstance(result, ItemFailure):
            row = error_item(result.item.COMMAND, result.error, request_attrs(result.item))
        else:
            row = ack_item(result)
        listing.append(row)
    return root(listing)
