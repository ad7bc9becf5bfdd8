"""Message commands: GETMESSAGE, DELETEMESSAGE, MOVEMESSAGE, COPYMESSAGE, NEWMESSAGEUPLOAD,
UPDATEMESSAGEUPLOAD, SENDMAIL (xmap-0.90.txt lines 84, 90, 105, 117, 131-138, 155-157).

Messages are named by MessageHandle (bridge/session/handles.py). A move keeps the handle (it is
re-pointed where the server's COPYUID says the message went); a copy is a new message with a new
handle; UPDATEMESSAGEUPLOAD stores the new content and removes the old, keeping the handle.
Uploads need the server to say where it stored a message (UIDPLUS, RFC 4315), as every handle is
a location.
"""

from __future__ import annotations

import logging

from adapters.protocols import Located
from bridge.errors import BridgeError, ErrorKind
from bridge.session.handles import MessageRef
from bridge.xmap import commands as c
from bridge.xmap import mimeblob, responses
from bridge.xmap.account import Found, Reply, XmapAccount, acked
from bridge.xmap.flags import imap_flags

log = logging.getLogger("bridge.xmap")

DELETED = "\\Deleted"
SEEN = "\\Seen"
MESSAGE_TYPE = "message/rfc822"


def _placed(located: Located | None, what: str) -> Located:
    if located is None:
        raise BridgeError(
            ErrorKind.BACKEND_REFUSED,
            f"the mail server did not say where it stored the {what} (no UIDPLUS)",
        )
    return located


async def get_message(account: XmapAccount, command: c.GetMessage) -> Reply:
    found = await account.find(command.handle)
    data = await found.opened.mailbox.fetch_section(found.ref.uid, "")
    if data is None:
        raise BridgeError(ErrorKind.NOT_FOUND, f"message {command.handle} no longer exists")
    header = responses.get_message_header(command.handle, len(data))
    return Reply(header, data, MESSAGE_TYPE)


async def _remove(found: Found) -> None:
    mailbox = found.opened.mailbox
    await mailbox.mark([found.ref.uid], [DELETED], [])
    await mailbox.expunge([found.ref.uid])


async def delete_message(account: XmapAccount, command: c.DeleteMessage) -> Reply:
    found = await account.find(command.handle)
    await _remove(found)
    await account.handles.forget(command.handle)
    return acked(responses.echo(command))


async def _target_exists(account: XmapAccount, folder: str) -> None:
    """Refuse early (NOT_FOUND) a TargetFolder that does not exist (asking the server: another
    session may have deleted a folder this one still has selected)."""
    if not await account.pool.exists(folder, fresh=True):
        raise BridgeError(ErrorKind.NOT_FOUND, f"no folder {folder}")


async def move_message(account: XmapAccount, command: c.MoveMessage) -> Reply:
    found = await account.find(command.handle)
    if not account.same_mailbox(found.ref.mailbox, command.target_folder):
        await _target_exists(account, command.target_folder)
        placed = await found.opened.mailbox.move([found.ref.uid], command.target_folder)
        where = placed.get(found.ref.uid)
        if where is None:
            await account.handles.forget(command.handle)
            raise BridgeError(
                ErrorKind.BACKEND_REFUSED,
                "moved, but the mail server did not say where (no UIDPLUS): the handle is gone",
            )
        new = MessageRef(command.target_folder, where.uidvalidity, where.uid)
        await account.handles.moved(command.handle, new)
    return acked(responses.echo(command))


async def copy_message(account: XmapAccount, command: c.CopyMessage) -> Reply:
    found = await account.find(command.handle)
    await _target_exists(account, command.target_folder)
    placed = await found.opened.mailbox.copy([found.ref.uid], command.target_folder)
    where = _placed(placed.get(found.ref.uid), "copy")
    copy = MessageRef(command.target_folder, where.uidvalidity, where.uid)
    handle = await account.handles.handle_for(copy)
    return acked(responses.echo(command, handle=handle))


async def _store(account: XmapAccount, folder: str, message: bytes, flags: list[str]) -> int:
    located = _placed(await account.session.mail.append(folder, message, flags), "message")
    return await account.handles.handle_for(MessageRef(folder, located.uidvalidity, located.uid))


async def new_message_upload(account: XmapAccount, command: c.NewMessageUpload) -> Reply:
    fields = mimeblob.check_message(command.data, account.max_message_bytes)
    message = mimeblob.complete(command.data, account.session.account, fields)
    await _target_exists(account, command.target_folder)
    flags = sorted(imap_flags(command.flags))
    handle = await _store(account, command.target_folder, message, flags)
    return acked(responses.echo(command, handle=handle))


async def update_message_upload(account: XmapAccount, command: c.UpdateMessageUpload) -> Reply:
    fields = mimeblob.check_message(command.data, account.max_message_bytes)
    message = mimeblob.complete(command.data, account.session.account, fields)
    found = await account.find(command.handle)
    flags = sorted(imap_flags(command.flags))
    # The new content first: a failure leaves the old message, never neither.
    located = _placed(
        await account.session.mail.append(found.ref.mailbox, message, flags), "message"
    )
    await _remove(found)
    new = MessageRef(found.ref.mailbox, located.uidvalidity, located.uid)
    await account.handles.moved(command.handle, new)
    return acked(responses.echo(command))


async def send_mail(account: XmapAccount, command: c.SendMail) -> Reply:
    outgoing = mimeblob.prepare(command.data, account.session.account, account.max_message_bytes)
    submitter = account.submitter
    # Everything that can be refused is checked before the mail leaves: after that, it is sent,
    # and the answer says so whatever happens to the copy and the draft (a client told
    # "failed" would send it again).
    existing = await account.find(command.handle) if command.handle is not None else None
    if command.target_folder is not None:
        await _target_exists(account, command.target_folder)
    await submitter.submit(account.session.account, outgoing.recipients, outgoing.transmit)
    copied = None
    if command.target_folder is not None:
        try:
            copied = await _store(account, command.target_folder, outgoing.stored, [SEEN])
        except BridgeError as exc:
            log.warning("%s: SENDMAIL sent, but its copy in %s was not stored: %s",
                        account.session.account, command.target_folder, exc)  # fmt: skip
    # The draft goes only once the copy is safe (or none was asked for).
    if existing is not None and (copied is not None or command.target_folder is None):
        try:
            await _remove(existing)
            await account.handles.forget(existing.handle)
        except BridgeError as exc:
            log.warning("%s: SENDMAIL sent, but message %d was not deleted: %s",
                        account.session.account, existing.handle, exc)  # fmt: skip
    return acked(responses.Ack(command.COMMAND, handle=copied))
