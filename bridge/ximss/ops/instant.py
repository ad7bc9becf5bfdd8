"""Instant Messaging section: sendIM, closeIM, and readIM / errorIM messages, as SIP MESSAGE
(RFC 3428) through the session's user agent (signalBind first: only a registered agent receives).

sendIM is answered at once; delivery runs in the background and a failure becomes `errorIM`
(peer, errorText, errorNum, the text). A body that is an element (`<composing/>`, `<paused/>`...)
is a typing indication, sent as an RFC 3994 isComposing document; an incoming one becomes
`readIM` with a `<composing/>` body while the peer types (nothing for "idle"). closeIM has no SIP
counterpart (MESSAGE is pagemode): it is accepted and forgets nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from adapters.protocols import IncomingMessage
from bridge.errors import XIMSS_ERRORS, BridgeError, ErrorKind
from bridge.ximss import codec, iscomposing
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.signaling import binding, sip_target

if TYPE_CHECKING:
    from bridge.session.session import Session
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.ximss")

ISCOMPOSING_TYPE = "application/im-iscomposing+xml"
TEXT_TYPE = "text/plain; charset=utf-8"
# Longest IM text (UTF-8 bytes): MESSAGE is meant for short texts and a UDP datagram.
MAX_IM_BYTES = 8 * 1024
# SIP statuses whose meaning the client knows by its own numbers.
_KINDS = {404: ErrorKind.NOT_FOUND, 408: ErrorKind.TIMEOUT, 480: ErrorKind.NOT_FOUND,
          403: ErrorKind.PERMISSION, 413: ErrorKind.LIMIT}  # fmt: skip


def _address(peer: str) -> str:
    """The peer as the client knows it: sip:user@host -> user@host."""
    for scheme in ("sip:", "sips:"):
        if peer.lower().startswith(scheme):
            return peer[len(scheme) :]
    return peer


async def send_im(conv: Conversation, request: Request) -> Outcome:
    bound = binding(conv)
    peer = request.require("peer")
    target = sip_target(conv, peer)
    indication = next((c for c in request.element if isinstance(c.tag, str)), None)
    if indication is not None:
        state = iscomposing.state_from_ximss(indication)
        body = iscomposing.build_iscomposing(state).decode("utf-8")
        content_type, text = ISCOMPOSING_TYPE, None
    else:
        text = request.element.text or ""
        if not text.strip():
            raise BridgeError(ErrorKind.BAD_REQUEST, "the message text is empty")
        if len(text.encode("utf-8")) > MAX_IM_BYTES:
            raise BridgeError(ErrorKind.LIMIT, "the message is too long")
        body, content_type = text, TEXT_TYPE

    async def deliver() -> None:
        try:
            result = await bound.agent.message(target, body, content_type)
            failed = None if result.ok else (result.status, result.reason)
        except BridgeError as exc:
            failed = (0, str(exc))
        if failed is None or text is None:
            return  # typing indications that do not arrive are not worth an error
        status, reason = failed
        kind = _KINDS.get(status, ErrorKind.BACKEND_REFUSED)
        conv.unsolicited(codec.data("errorIM", None, {
            "peer": peer, "errorText": reason or XIMSS_ERRORS[kind].text,
            "errorNum": str(XIMSS_ERRORS[kind].num),
        }, text=text))  # fmt: skip

    bound.tasks.spawn(deliver(), "im")
    return Outcome.DONE


async def close_im(conv: Conversation, request: Request) -> Outcome:
    binding(conv)
    request.require("peer")
    return Outcome.DONE


def on_message(conv: Conversation, session: Session) -> Callable[[IncomingMessage], int | None]:
    """Incoming MESSAGE -> readIM (200), or 415 for content the client cannot be shown."""

    def received(message: IncomingMessage) -> int | None:
        if session.closed:
            return 480
        attrs = {"peer": _address(message.peer), "peerName": message.peer_name or None}
        media = message.content_type.split(";")[0].strip().lower()
        if media == ISCOMPOSING_TYPE:
            try:
                state = iscomposing.parse_iscomposing(message.body.encode("utf-8")).state
            except BridgeError:
                return 400
            indication = iscomposing.ximss_indication(state)
            if indication is not None:
                read = codec.data("readIM", None, attrs)
                read.append(indication)
                conv.unsolicited(read)
            return 200
        if media != "text/plain":
            return 415
        conv.unsolicited(codec.data("readIM", None, attrs, text=message.body))
        return 200

    return received
