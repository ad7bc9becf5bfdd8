"""XIMSS messages in and out (sans-IO): one frame -> `Request`, values -> serialized elements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind, WireError


@dataclass(frozen=True, slots=True)
class Request:
    """One client request: its element name, its id (None when the client sent none) and the
    parsed element for the operation to read its attributes and body from."""

    name: str
    id: str | None
    element: etree._Element

    def get(self, attr: str, default: str | None = None) -> str | None:
        value = self.element.get(attr)
        return default if value is None else value

    def require(self, attr: str) -> str:
        value = self.element.get(attr)
        if value is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, f"{attr} attribute is missing")
        return value

    def flag(self, attr: str) -> bool:
        """Presence-style attributes (`children`): present means set, unless explicitly "no"."""
        value = self.element.get(attr)
        return value is not None and value.strip().lower() not in ("no", "false", "0")


def decode(frame: bytes, max_depth: int) -> Request:
    root = xml.parse(frame, max_depth)
    tag = root.tag
    if not isinstance(tag, str) or tag.startswith("{"):
        raise BridgeError(ErrorKind.BAD_REQUEST, "unsupported element")
    return Request(name=tag, id=root.get("id"), element=root)


def response(request_id: str | None, error: WireError | None = None) -> etree._Element:
    attrs: dict[str, str] = {}
    if request_id is not None:
        attrs["id"] = request_id
    if error is not None:
        attrs["errorText"] = error.text
        attrs["errorNum"] = str(error.num)
    return xml.element("response", attrs)


def data(
    tag: str,
    request_id: str | None,
    attrs: Mapping[str, str | int | None] | None = None,
    text: str | None = None,
) -> etree._Element:
    """A data message; the request id goes first, attributes with None values are left out."""
    elem = xml.element(tag, {"id": request_id} if request_id is not None else None, text)
    if attrs:
        for key, value in attrs.items():
            if value is not None:
                elem.set(key, str(value))
    return elem


class Batch(tuple[bytes, ...]):
    """Several serialized messages sent as one (a browse's rows): each stays its own message
    on the wire, but the transport queues and writes them at once."""

    __slots__ = ()


# A message on its way out: an element, one already serialized (folder rows, see reports.py),
# or a batch of serialized ones.
Message = etree._Element | bytes | Batch


def encode(message: etree._Element | bytes) -> bytes:
    return message if isinstance(message, bytes) else xml.serialize(message)


def pieces(message: Message) -> list[bytes]:
    """The serialized messages in `message`, one per XIMSS message."""
    if isinstance(message, Batch):
        return list(message)
    return [encode(message)]
