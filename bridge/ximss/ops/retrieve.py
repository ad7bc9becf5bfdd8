"""retrieveXML: a document fetched from an operator-allowlisted URL, returned parsed.

The fetch and its network guard live outside the sans-IO core (bridge/xmlfetch.py,
bridge/netguard.py); here the document meets the same hardened parser as client input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge import xml, xmlfetch
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation


async def retrieve_xml(conv: Conversation, request: Request) -> Outcome:
    url = request.require("url")
    settings = conv.services.settings
    body = await xmlfetch.fetch(url, settings.retrieve_xml)
    try:
        document = xml.parse(body, settings.limits.max_xml_depth)
    except BridgeError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "the retrieved document is not XML") from exc
    reply = codec.data("retrievedXML", request.id, {"url": url})
    reply.append(document)
    conv.send(reply)
    return Outcome.DONE
