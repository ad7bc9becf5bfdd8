"""XMAP errors: the table ErrorKind -> Code/Text, and the ERROR element.

The text defines no error response at all (xmap-0.90.txt has no ERROR, Code or status anywhere;
its responses, lines 159-280, show success shapes only). DESIGN.md section 6 chose
`<XMAPROOT><ERROR Command=".." Code=".." Text=".."/></XMAPROOT>`, and this module chose the
codes: the same numbers the XIMSS front end uses for the same kind (bridge.errors.XIMSS_ERRORS),
so one failure has one number in logs and docs whichever protocol the client speaks, and the
first digit tells a client whether a retry can help (4xx: try again later; 5xx: it will fail
again). The texts speak XMAP's vocabulary (folders, files, messages rather than mailboxes).

| Code | Kinds                                   |
| ---- | --------------------------------------- |
| 451  | BACKEND_UNAVAILABLE, TIMEOUT            |
| 500  | UNKNOWN_OPERATION                       |
| 501  | BAD_REQUEST (missing/invalid attribute) |
| 502  | NOT_SUPPORTED                           |
| 503  | ALREADY_LOGGED_IN                       |
| 512  | NOT_FOUND                               |
| 513  | ALREADY_EXISTS                          |
| 514  | HAS_CHILDREN                            |
| 517  | UNKNOWN_DOMAIN                          |
| 530  | NOT_LOGGED_IN                           |
| 535  | AUTH_FAILED                             |
| 550  | PERMISSION                              |
| 552  | LIMIT, QUOTA                            |
| 554  | BACKEND_REFUSED, INTERNAL               |

In a batch answer (DELETEITEMS, MOVEITEMS, COPYITEMS) a failed item is an ERROR element in the
item's place, with the item's own attributes added (see responses.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.xmap.document import ROOT
from bridge.xmap.text import clean

ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class XmapError:
    code: str
    text: str


XMAP_ERRORS: dict[ErrorKind, XmapError] = {
    ErrorKind.UNKNOWN_OPERATION: XmapError("500", "unknown command"),
    ErrorKind.BAD_REQUEST: XmapError("501", "invalid command parameters"),
    ErrorKind.NOT_LOGGED_IN: XmapError("530", "login required"),
    ErrorKind.ALREADY_LOGGED_IN: XmapError("503", "already logged in"),
    ErrorKind.AUTH_FAILED: XmapError("535", "incorrect password or account name"),
    ErrorKind.UNKNOWN_DOMAIN: XmapError("517", "unknown domain"),
    ErrorKind.NOT_FOUND: XmapError("512", "no such folder, file or message"),
    ErrorKind.ALREADY_EXISTS: XmapError("513", "folder or file already exists"),
    ErrorKind.HAS_CHILDREN: XmapError("514", "folder has nested folders"),
    ErrorKind.PERMISSION: XmapError("550", "access denied"),
    ErrorKind.NOT_SUPPORTED: XmapError("502", "not supported by this server"),
    ErrorKind.LIMIT: XmapError("552", "limit exceeded"),
    ErrorKind.QUOTA: XmapError("552", "quota exceeded"),
    ErrorKind.BACKEND_UNAVAILABLE: XmapError("451", "server unavailable, try again later"),
    ErrorKind.BACKEND_REFUSED: XmapError("554", "the server refused the operation"),
    ErrorKind.TIMEOUT: XmapError("451", "server timed out, try again later"),
    ErrorKind.INTERNAL: XmapError("554", "internal error"),
}


class CodecError(BridgeError):
    """A command the codec refuses, with the command's name for the ERROR element ("" when the
    message did not even show one)."""

    def __init__(self, command: str, kind: ErrorKind, detail: str | None = None) -> None:
        super().__init__(kind, detail)
        self.command = command


def wire_error(error: BridgeError) -> XmapError:
    """The Code and Text for an error; a client-safe `detail` replaces the table's text."""
    base = XMAP_ERRORS[error.kind]
    return XmapError(base.code, error.detail or base.text)


def error_item(
    command: str, error: BridgeError, attrs: Mapping[str, str] | None = None
) -> etree._Element:
    """The bare `<ERROR Command Code Text .../>` (a batch answer's failed item)."""
    wire = wire_error(error)
    elem = xml.element(
        ERROR, {"Command": clean(command), "Code": wire.code, "Text": clean(wire.text)}
    )
    for key, value in (attrs or {}).items():
        elem.set(key, clean(value))
    return elem


def error_element(command: str, error: BridgeError) -> etree._Element:
    """`<XMAPROOT><ERROR Command=".." Code=".." Text=".."/></XMAPROOT>` (DESIGN.md section 6)."""
    root = xml.element(ROOT)
    root.append(error_item(command, error))
    return root


def error_for(error: BridgeError, command: str = "") -> etree._Element:
    """The ERROR answer for any BridgeError; a CodecError brings its own command name."""
    return error_element(error.command if isinstance(error, CodecError) else command, error)
