"""Message operations on an open folder: messageMark, messageCopy, messageMove, messageRemove.

Message sets name messages by UID or by index in the folder's logical view (never both)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.errors import BridgeError, ErrorKind
from bridge.session.folders import Folder
from bridge.views import flags as flag_names
from bridge.views.messageset import parse_message_set, resolve
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.folder import folder_of

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

DELETED = "\\Deleted"


def _selected(folder: Folder, request: Request) -> list[int]:
    return resolve(parse_message_set(request.element), folder.view)


async def message_mark(conv: Conversation, request: Request) -> Outcome:
    folder = folder_of(conv, request)
    add, remove = flag_names.parse_mark(request.require("flags"))
    await folder.mailbox.mark(_selected(folder, request), add, remove)
    return Outcome.DONE


def _target(request: Request) -> str:
    target = request.require("targetMailbox")
    if not target:
        raise BridgeError(ErrorKind.BAD_REQUEST, "targetMailbox is empty")
    if (request.get("encrypt") or "").lower() == "yes":
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "S/MIME encryption is not supported")
    return target


async def message_copy(conv: Conversation, request: Request) -> Outcome:
    folder = folder_of(conv, request)
    await folder.mailbox.copy(_selected(folder, request), _target(request))
    return Outcome.DONE


async def message_move(conv: Conversation, request: Request) -> Outcome:
    folder = folder_of(conv, request)
    await _move(conv, folder, _selected(folder, request), _target(request))
    return Outcome.DONE


async def _move(conv: Conversation, folder: Folder, uids: list[int], target: str) -> None:
    """Move, and re-point the XMAP handles of the moved messages (DESIGN.md section 6): an XMAP
    client keeps reaching a message a XIMSS client filed elsewhere. Accounts that never used
    XMAP pay one state-store read for it."""
    if not uids:
        return
    placed = await folder.mailbox.move(uids, target)
    handles = conv.services.xmap_handles.for_account(conv.require_session().account)
    if placed and await handles.in_use():
        uidvalidity = (await folder.mailbox.status()).uidvalidity
        await handles.relocated(folder.mailbox.name, uidvalidity, placed, target)


async def message_remove(conv: Conversation, request: Request) -> Outcome:
    """Per the DeleteMode preference: expunge now, move to the TrashBox, or mark Deleted."""
    folder = folder_of(conv, request)
    uids = _selected(folder, request)
    defaults = conv.services.settings.preferences
    # The session's preferences (prefsStore), else the configured defaults.
    prefs = conv.require_session().prefs
    mode = prefs.get("DeleteMode", defaults.delete_mode)
    trash_box = prefs.get("TrashBox", defaults.trash_box)
    in_trash = folder.mailbox.name.lower() == trash_box.lower()
    if mode == "Mark":
        await folder.mailbox.mark(uids, [DELETED], [])
    elif mode == "Move To Trash" and not in_trash:
        await _move(conv, folder, uids, trash_box)
    else:
        await folder.mailbox.mark(uids, [DELETED], [])
        await folder.mailbox.expunge(uids)
    return Outcome.DONE
