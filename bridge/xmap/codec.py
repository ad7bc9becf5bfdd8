"""XMAP commands in: one parsed document (and its blob) -> a typed command, by table.

`COMMANDS` is the request half of xmap-0.90.txt (lines 69-157) as data: element name, the
attributes exactly as the text spells them, which are required, whether a blob must follow, and
which children a batch takes. Everything a client can get wrong becomes a `CodecError` carrying
the command name, which the front end answers with the ERROR element (errors.py).

Where the text is silent, this table decides (each row cites its line):
- Attributes the text shows are required, except SENDMAIL's two (line 154: "if present") and
  UPDATEFILEUPLOAD's FileKey (keys are never used, DESIGN.md section 6); an optional attribute
  given empty counts as absent. Attributes the text does not show are ignored.
- A handle (line 29, "an unsigned long in a string format") is 1 to 20 ASCII digits, value 1 to
  2**64-1: no sign, no spaces, and 0 is never a handle (the store issues none).
- A path ("Full Path") is 1 to `MAX_PATH_CHARS` characters without control characters.
- Upload commands (lines 126-157) must be followed by their blob; every other command must not.
- A batch (lines 93, 108, 120) holds only its two item kinds, up to `MAX_BATCH_ITEMS`, possibly
  none; anything wrong in one item refuses the whole batch, before any of it runs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from bridge import xml
from bridge.errors import ErrorKind
from bridge.xmap import commands as c
from bridge.xmap.document import SLOW_PI, command_element
from bridge.xmap.errors import CodecError
from bridge.xmap.flags import format_flags, parse_flags
from bridge.xmap.framing import Event, Malformed

MAX_HANDLE = 2**64 - 1
MAX_PATH_CHARS = 1024
MAX_TEXT_CHARS = 1024
MAX_BATCH_ITEMS = 10_000

_HANDLE = re.compile(r"[0-9]{1,20}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Kind(enum.Enum):
    PATH = "path"
    HANDLE = "handle"
    FLAGS = "flags"
    NAME = "name"  # non-empty text (UserName)
    TEXT = "text"  # any text (Password, FileKey)


class Blob(enum.Enum):
    NONE = "none"
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class Attr:
    xml: str  # as the text spells it
    field: str  # the dataclass field
    kind: Kind
    required: bool = True


@dataclass(frozen=True, slots=True)
class Spec:
    build: Callable[..., c.Command]
    attrs: tuple[Attr, ...]
    line: int  # where the request shape is in xmap-0.90.txt (0: an extension, README "XMAP")
    blob: Blob = Blob.NONE
    items: tuple[str, ...] = ()  # a batch's child commands


_NAME = Attr("Name", "name", Kind.PATH)
_HANDLE_ATTR = Attr("MessageHandle", "handle", Kind.HANDLE)
_TARGET = Attr("TargetFolder", "target_folder", Kind.PATH)
_FLAGS = Attr("MessageFlags", "flags", Kind.FLAGS)
_DESTINATION = Attr("Destination", "destination", Kind.PATH)

COMMANDS: dict[str, Spec] = {
    "LOGIN": Spec(
        c.Login,
        (Attr("UserName", "user_name", Kind.NAME), Attr("Password", "password", Kind.TEXT)),
        0,
    ),
    "LISTALLFOLDERS": Spec(c.ListAllFolders, (), 75),
    "LISTFOLDER": Spec(c.ListFolder, (_NAME,), 78),
    "GETFILE": Spec(c.GetFile, (_NAME,), 81),
    "GETMESSAGE": Spec(c.GetMessage, (_HANDLE_ATTR,), 84),
    "DELETEFILE": Spec(c.DeleteFile, (_NAME,), 87),
    "DELETEMESSAGE": Spec(c.DeleteMessage, (_HANDLE_ATTR,), 90),
    "DELETEITEMS": Spec(c.DeleteItems, (), 93, items=("DELETEMESSAGE", "DELETEFILE")),
    "EMPTYFOLDER": Spec(c.EmptyFolder, (_NAME,), 99),
    "MOVEFILE": Spec(c.MoveFile, (_NAME, _TARGET), 102),
    "MOVEMESSAGE": Spec(c.MoveMessage, (_HANDLE_ATTR, _TARGET), 105),
    "MOVEITEMS": Spec(c.MoveItems, (), 108, items=("MOVEMESSAGE", "MOVEFILE")),
    "COPYFILE": Spec(c.CopyFile, (_NAME, _TARGET), 114),
    "COPYMESSAGE": Spec(c.CopyMessage, (_HANDLE_ATTR, _TARGET), 117),
    "COPYITEMS": Spec(c.CopyItems, (), 120, items=("COPYMESSAGE", "COPYFILE")),
    "NEWFILEUPLOAD": Spec(c.NewFileUpload, (_NAME, _TARGET), 126, Blob.REQUIRED),
    "NEWMESSAGEUPLOAD": Spec(c.NewMessageUpload, (_TARGET, _FLAGS), 131, Blob.REQUIRED),
    "UPDATEMESSAGEUPLOAD": Spec(c.UpdateMessageUpload, (_HANDLE_ATTR, _FLAGS), 136, Blob.REQUIRED),
    "UPDATEFILEUPLOAD": Spec(
        c.UpdateFileUpload,
        (_NAME, Attr("FileKey", "file_key", Kind.TEXT, required=False)),
        141,
        Blob.REQUIRED,
    ),
    "CREATEFOLDER": Spec(c.CreateFolder, (_NAME,), 146),
    "RENAMEFOLDER": Spec(c.RenameFolder, (_NAME, _DESTINATION), 149),
    "MOVEFOLDER": Spec(c.MoveFolder, (_NAME, _DESTINATION), 152),
    "SENDMAIL": Spec(
        c.SendMail,
        (
            Attr("MessageHandle", "handle", Kind.HANDLE, required=False),
            Attr("TargetFolder", "target_folder", Kind.PATH, required=False),
        ),
        155,
        Blob.REQUIRED,
    ),
    # Extensions for what lines 17 and 20 require and no command of the text does.
    "DELETEFOLDER": Spec(c.DeleteFolder, (_NAME,), 0),
    "RENAMEFILE": Spec(c.RenameFile, (_NAME, _DESTINATION), 0),
}


def _path(value: str) -> str:
    if not value:
        raise ValueError("is empty")
    if len(value) > MAX_PATH_CHARS:
        raise ValueError(f"is longer than {MAX_PATH_CHARS} characters")
    if _CONTROL.search(value):
        raise ValueError("holds a control character")
    return value


def _handle(value: str) -> int:
    if not _HANDLE.fullmatch(value):
        raise ValueError("is not an unsigned number")
    handle = int(value)
    if not 1 <= handle <= MAX_HANDLE:
        raise ValueError("is out of range")
    return handle


def _name(value: str) -> str:
    if not value:
        raise ValueError("is empty")
    return _text(value)


def _text(value: str) -> str:
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"is longer than {MAX_TEXT_CHARS} characters")
    return value


_CONVERT: dict[Kind, Callable[[str], object]] = {
    Kind.PATH: _path,
    Kind.HANDLE: _handle,
    Kind.FLAGS: parse_flags,
    Kind.NAME: _name,
    Kind.TEXT: _text,
}


def decode(event: Event, *, max_items: int = MAX_BATCH_ITEMS) -> c.Command:
    """The command of one decoded frame; a Malformed frame raises its CodecError."""
    if isinstance(event, Malformed):
        raise CodecError(event.command, ErrorKind.BAD_REQUEST, event.detail)
    return parse_command(event.root, event.blob, max_items=max_items)


def parse_command(
    root: etree._Element, blob: bytes | None = None, *, max_items: int = MAX_BATCH_ITEMS
) -> c.Command:
    """A typed command from a document root (bare or in XMAPROOT) and the blob that followed it
    (the HTTP binding passes its own)."""
    element = command_element(root)
    name = element.tag if isinstance(element.tag, str) else ""
    spec = COMMANDS.get(name)
    if spec is None:
        raise CodecError(name, ErrorKind.UNKNOWN_OPERATION)
    if spec.blob is Blob.REQUIRED and blob is None:
        raise CodecError(name, ErrorKind.BAD_REQUEST, "<?GOREALLYSLOW?> and its data are missing")
    if spec.blob is Blob.NONE and blob is not None:
        raise CodecError(name, ErrorKind.BAD_REQUEST, "this command takes no data")
    fields = _fields(name, spec, element, "")
    if spec.items:
        fields["items"] = _items(name, spec, element, max_items)
    if spec.blob is Blob.REQUIRED:
        fields["data"] = blob
    return spec.build(**fields)


def _fields(command: str, spec: Spec, element: etree._Element, where: str) -> dict[str, object]:
    fields: dict[str, object] = {}
    for attr in spec.attrs:
        value = element.get(attr.xml)
        if value is None or (not attr.required and value == ""):
            if attr.required:
                raise CodecError(command, ErrorKind.BAD_REQUEST, f"{where}{attr.xml} is missing")
            fields[attr.field] = None
            continue
        try:
            fields[attr.field] = _CONVERT[attr.kind](value)
        except ValueError as exc:
            raise CodecError(command, ErrorKind.BAD_REQUEST, f"{where}{attr.xml} {exc}") from exc
    return fields


def _items(command: str, spec: Spec, element: etree._Element, max_items: int) -> tuple[c.Item, ...]:
    children = [child for child in element if isinstance(child.tag, str)]
    if len(children) > max_items:
        raise CodecError(command, ErrorKind.LIMIT, f"more than {max_items} items")
    items: list[c.Item] = []
    for index, child in enumerate(children, 1):
        tag = str(child.tag)
        if tag not in spec.items:
            raise CodecError(
                command, ErrorKind.BAD_REQUEST, f"item {index}: {tag} is not a {command} item"
            )
        item_spec = COMMANDS[tag]
        item = item_spec.build(**_fields(command, item_spec, child, f"item {index} ({tag}): "))
        assert isinstance(item, c.Item)
        items.append(item)
    return tuple(items)


# --- commands out (test clients, tools, and the ERROR items of batch answers) ------------------

_FORMAT: dict[Kind, Callable[[Any], str]] = {
    Kind.PATH: str,
    Kind.HANDLE: str,
    Kind.FLAGS: format_flags,
    Kind.NAME: str,
    Kind.TEXT: str,
}


def request_attrs(command: c.Command) -> dict[str, str]:
    """A command's attributes as the text spells them, in table order; absent optionals left out."""
    attrs: dict[str, str] = {}
    for attr in COMMANDS[command.COMMAND].attrs:
        value = getattr(command, attr.field)
        if value is not None:
            attrs[attr.xml] = _FORMAT[attr.kind](value)
    return attrs


def command_to_element(command: c.Command) -> etree._Element:
    """The request element for a command (with `<?GOREALLYSLOW?>` inside for an upload; its
    blob is `command.data`, written after the frame by framing.encode_command)."""
    elem = xml.element(command.COMMAND, request_attrs(command))
    for item in getattr(command, "items", ()):
        elem.append(xml.element(item.COMMAND, request_attrs(item)))
    if COMMANDS[command.COMMAND].blob is Blob.REQUIRED:
        elem.append(etree.PI(SLOW_PI))
    return elem
