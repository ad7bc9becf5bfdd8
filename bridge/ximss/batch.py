"""An HTTP request body: `<XIMSS>` holding several requests, parsed incrementally (sans-IO).

Incremental so that a batch broken in the middle still has its earlier, well-formed requests
answered: the client learns exactly where the body went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss.codec import Request

ROOT = "XIMSS"
_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class Batch:
    requests: list[Request]
    # Why the body stopped being readable, after `requests`; None when all of it was fine.
    error: BridgeError | None


def parse_batch(body: bytes, max_depth: int) -> Batch:
    try:
        xml.refuse_dtd(body)
    except BridgeError as exc:
        return Batch([], exc)
    parser = etree.XMLPullParser(events=("start", "end"), **xml.HARDENED)
    requests: list[Request] = []
    depth = 0
    error: BridgeError | None = None
    seen_root = False
    for offset in range(0, max(len(body), 1), _CHUNK):
        try:
            parser.feed(body[offset : offset + _CHUNK])
        except etree.XMLSyntaxError:
            error = BridgeError(ErrorKind.BAD_REQUEST, "malformed XML")
        for event, elem in parser.read_events():
            if not isinstance(elem, etree._Element):
                continue
            if event == "start":
                depth += 1
                if depth == 1 and elem.tag != ROOT:
                    return Batch(requests, BridgeError(ErrorKind.BAD_REQUEST, "body is not XIMSS"))
                seen_root = True
                if depth > max_depth:
                    return Batch(
                        requests, BridgeError(ErrorKind.BAD_REQUEST, "XML nested too deeply")
                    )
            else:
                if depth == 2 and isinstance(elem.tag, str):
                    requests.append(Request(elem.tag, elem.get("id"), elem))
                depth -= 1
        if error is not None:
            return Batch(requests, error)
    try:
        parser.close()
    except etree.XMLSyntaxError:
        return Batch(requests, BridgeError(ErrorKind.BAD_REQUEST, "malformed XML"))
    if not seen_root:
        return Batch(requests, BridgeError(ErrorKind.BAD_REQUEST, "empty body"))
    return Batch(requests, None)
