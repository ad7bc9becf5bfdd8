"""folderRead: a stored message as the XIMSS `<EMail>` presentation in a `folderMessage`.

Built from IMAP BODYSTRUCTURE and only the sections worth showing (text, calendars, cards, the
headers of attached messages), fetched and cut at `totalSizeLimit`:
a 30 MB attachment is never read; its bytes come from the HTTP MIME download URL by partID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.errors import BridgeError, ErrorKind
from bridge.mime import present as presenter
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.folder import folder_of
from bridge.ximss.ops.sending import uid_of
from bridge.ximss.ops.service import user_zone

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation


def _limit(conv: Conversation, request: Request) -> int:
    default = conv.services.settings.limits.read_text_bytes
    text = request.get("totalSizeLimit")
    if not text:
        return default
    if not text.isdigit():
        raise BridgeError(ErrorKind.BAD_REQUEST, "totalSizeLimit is not a number")
    return min(int(text), default)


async def folder_read(conv: Conversation, request: Request) -> Outcome:
    folder = folder_of(conv, request)
    uid = uid_of(request.get("UID"))
    found = await folder.mailbox.structure(uid)
    if found is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "no such message")
    header, root = found
    wanted = presenter.sections_to_fetch(root, _limit(conv, request))
    fetched: dict[str, bytes] = {}
    # One after another: Dovecot may answer pipelined FETCHes of one message interleaved, and
    # the replies carry nothing that tells them apart.
    for item in wanted:
        body = await folder.mailbox.fetch_section(uid, item.section, 0, item.max_bytes)
        if body is not None:
            fetched[item.section] = body
    message = codec.data("folderMessage", request.id, {"folder": folder.name, "UID": uid})
    message.append(presenter.present(header, root, fetched, zone=user_zone(conv), uid=uid))
    conv.send(message)
    return Outcome.DONE
