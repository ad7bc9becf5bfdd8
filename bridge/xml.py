"""The one hardened XML parser, and the compact serializer real XIMSS clients depend on.

Parsing: no DTDs, no entity expansion, no network, bounded depth and size. lxml's own `huge_tree`
stays off, which caps text nodes and depth far below what a frame may carry; we add an explicit
depth check because lxml allows up to 256 levels by default for libxml2 versions without the cap.

Serializing: no XML declaration, no whitespace between elements, double-quoted attributes, empty
elements as `<tag a="b"/>`; lxml's `tostring` already behaves so when no pretty printing is asked.
"""

from __future__ import annotations

import re
from typing import TypedDict

from lxml import etree

from bridge.errors import BridgeError, ErrorKind

DEFAULT_MAX_DEPTH = 64


# The options every parser of client input uses (the one-document parser and the incremental
# batch parser alike): nothing fetched, nothing expanded, no size relief.
class _Hardened(TypedDict):
    resolve_entities: bool
    no_network: bool
    load_dtd: bool
    huge_tree: bool
    remove_comments: bool
    remove_pis: bool


HARDENED: _Hardened = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
_PARSER = etree.XMLParser(**HARDENED, dtd_validation=False, collect_ids=False)


# libxml2 picks the encoding (BOM, declaration) before it reads a tag, so "<!DOCTYPE" written in
# UTF-16, UTF-32 or UTF-7 slips past a byte scan (found by tests/fuzz). Both protocols are UTF-8:
# the scan only has to be right for ASCII-compatible input, so anything else is refused.
_DECLARED_ENCODING = re.compile(rb"(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?encoding\s*=\s*[\"']([^\"']*)")
_ASCII_COMPATIBLE = re.compile(
    rb"utf-?8|(?:us-)?ascii|iso[-_]?8859-[0-9]{1,2}|latin-?1|(?:windows|cp)-?125[0-8]", re.I
)


def refuse_dtd(data: bytes) -> None:
    """A DOCTYPE is the door to entity tricks; refuse it before libxml2 sees it at all (and,
    so that this scan sees every DOCTYPE, documents that are not ASCII-compatible)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or b"<!doctype" in data:
        raise BridgeError(ErrorKind.BAD_REQUEST, "DTDs are not allowed")
    if b"\x00" in data:  # never XML, but in every UTF-16 or UTF-32 document
        raise BridgeError(ErrorKind.BAD_REQUEST, "malformed XML")
    declared = _DECLARED_ENCODING.match(data)
    if declared and not _ASCII_COMPATIBLE.fullmatch(declared[1].strip()):
        raise BridgeError(ErrorKind.BAD_REQUEST, "documents must be UTF-8")


def refuse_parsed_dtd(root: etree._Element) -> None:
    """The same rule after parsing, should an encoding trick the byte scan above ever miss."""
    if root.getroottree().docinfo.internalDTD is not None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "DTDs are not allowed")


def parse(data: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> etree._Element:
    """Parse one document; raise BridgeError(BAD_REQUEST) for anything not plain, small XML."""
    refuse_dtd(data)
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "malformed XML") from exc
    if root is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "empty document")
    refuse_parsed_dtd(root)
    if _depth_exceeds(root, max_depth):
        raise BridgeError(ErrorKind.BAD_REQUEST, "XML nested too deeply")
    return root


def _depth_exceeds(root: etree._Element, max_depth: int) -> bool:
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        elem, depth = stack.pop()
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in elem)
    return False


def serialize(elem: etree._Element) -> bytes:
    return etree.tostring(elem, encoding="utf-8", xml_declaration=False)


def element(
    tag: str, attrs: dict[str, str] | None = None, text: str | None = None
) -> etree._Element:
    """Build an element with attributes in the given order (clients compare transcripts)."""
    elem = etree.Element(tag)
    if attrs:
        for key, value in attrs.items():
            elem.set(key, value)
    if text is not None:
        elem.text = text
    return elem


def sub(
    parent: etree._Element, tag: str, attrs: dict[str, str] | None = None, text: str | None = None
) -> etree._Element:
    child = element(tag, attrs, text)
    parent.append(child)
    return child
