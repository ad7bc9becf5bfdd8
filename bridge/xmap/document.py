"""One XMAP document in: the hardened parser, with processing instructions kept.

`bridge.xml.parse` drops processing instructions (its HARDENED options remove them), but XMAP
marks a command followed by a blob with the PI `<?GOREALLYSLOW?>` (xmap-0.90.txt lines 127, 132,
137, 142, 156). So this module parses with the same HARDENED options except `remove_pis`, refuses
DTDs with `bridge.xml.refuse_dtd`, and bounds the depth itself.

Where the PI may stand (the text is not well-formed there, see `_TEXT_SHAPE`): inside the command
element, before it or after it (XML allows PIs around the root). Anywhere in the document counts.
"""

from __future__ import annotations

import re

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind

SLOW_PI = "GOREALLYSLOW"
ROOT = "XMAPROOT"  # the response wrapper, xmap-0.90.txt line 165 and every response after it

_OPTIONS = xml.HARDENED.copy()
_OPTIONS["remove_pis"] = False
_PARSER = etree.XMLParser(**_OPTIONS, dtd_validation=False, collect_ids=False)

# The text's upload shapes (lines 126-128, 131-133, 136-138, 141-143, 155-157) read
#   <NEWFILEUPLOAD Name="Full Path" TargetFolder="Full Path"/>
#   <?GOREALLYSLOW?>
#   </NEWFILEUPLOAD> BLOB DATA
# which closes the element twice. We accept that exact shape by reading it as the well-formed
# `<NEWFILEUPLOAD ...><?GOREALLYSLOW?></NEWFILEUPLOAD>`, and nothing looser. The attribute part
# matches quoted values as units, so `>` inside a value works and matching stays linear.
_TEXT_SHAPE = re.compile(
    rb"\s*<([A-Za-z][A-Za-z0-9]*)((?:\s(?:[^<>\"'/]|\"[^\"]*\"|'[^']*')*)?)/>"
    rb"\s*<\?GOREALLYSLOW\?>\s*</\1\s*>\s*"
)
_FIRST_NAME = re.compile(rb"<([A-Za-z][A-Za-z0-9]{0,31})")
_NAME_SCAN_BYTES = 256


def parse_document(frame: bytes, max_depth: int = xml.DEFAULT_MAX_DEPTH) -> etree._Element:
    """Parse one frame; raise BridgeError(BAD_REQUEST) for anything not plain, small XML."""
    xml.refuse_dtd(frame)
    try:
        root = etree.fromstring(frame, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        repaired = _repair_text_shape(frame)
        if repaired is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, "malformed XML") from exc
        # The shape matches any quoted value, so the repair can still be malformed
        # (`<A B="&"/><?GOREALLYSLOW?></A>`, found by tests/fuzz).
        try:
            root = etree.fromstring(repaired, _PARSER)
        except (etree.XMLSyntaxError, ValueError):
            raise BridgeError(ErrorKind.BAD_REQUEST, "malformed XML") from exc
    if root is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "empty document")
    xml.refuse_parsed_dtd(root)
    if _depth_exceeds(root, max_depth):
        raise BridgeError(ErrorKind.BAD_REQUEST, "XML nested too deeply")
    return root


def _repair_text_shape(frame: bytes) -> bytes | None:
    match = _TEXT_SHAPE.fullmatch(frame) if mentions_slow(frame) else None
    if match is None:
        return None
    name, attrs = match.group(1), match.group(2)
    return b"<" + name + attrs + b"><?" + SLOW_PI.encode() + b"?></" + name + b">"


def _depth_exceeds(root: etree._Element, max_depth: int) -> bool:
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        elem, depth = stack.pop()
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in elem)
    return False


def wants_blob(root: etree._Element) -> bool:
    """True when the document carries `<?GOREALLYSLOW?>` anywhere: a blob follows it."""
    around = (*root.itersiblings(preceding=True), *root.itersiblings())
    return any(_is_slow(node) for node in around) or any(
        _is_slow(node) for node in root.iter(etree.PI)
    )


def _is_slow(node: etree._Element) -> bool:
    return isinstance(node, etree._ProcessingInstruction) and node.target == SLOW_PI


def mentions_slow(frame: bytes) -> bool:
    """For a frame that did not parse: does it look like it announced a blob? The decoder then
    still reads (and drops) the blob, so one bad command does not desynchronize the stream."""
    return b"<?" + SLOW_PI.encode() in frame


def command_element(root: etree._Element) -> etree._Element:
    """The command of a request document. The text shows requests bare (`<LISTALLFOLDERS/>`,
    line 75); a client mirroring the response wrapper (`<XMAPROOT><LISTALLFOLDERS/></XMAPROOT>`)
    is served too when the wrapper holds exactly one element."""
    if root.tag == ROOT:
        children = [child for child in root if isinstance(child.tag, str)]
        if len(children) == 1:
            return children[0]
    return root


def guess_command(frame: bytes) -> str:
    """The command name of a frame that did not parse, for the ERROR element's `Command`, or ""
    when none shows in its first bytes."""
    for match in _FIRST_NAME.finditer(frame[:_NAME_SCAN_BYTES]):
        name = match.group(1).decode("ascii")
        if name != ROOT:
            return name
    return ""
