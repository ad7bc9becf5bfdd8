"""Command -> handler, by table; the batch commands (DELETEITEMS, MOVEITEMS, COPYITEMS) run each
item through the same handlers and report per item, going on past failures."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bridge.errors import BridgeError, ErrorKind
from bridge.xmap import commands as c
from bridge.xmap import ops_files, ops_folders, ops_messages, responses
from bridge.xmap.account import Reply, XmapAccount

log = logging.getLogger("bridge.xmap")

Handler = Callable[[XmapAccount, Any], Awaitable[Reply]]

HANDLERS: dict[type[c.Command], Handler] = {
    c.ListAllFolders: ops_folders.list_all_folders,
    c.ListFolder: ops_folders.list_folder,
    c.CreateFolder: ops_folders.create_folder,
    c.RenameFolder: ops_folders.rename_folder,
    c.MoveFolder: ops_folders.move_folder,
    c.EmptyFolder: ops_folders.empty_folder,
    c.DeleteFolder: ops_folders.delete_folder,
    c.GetMessage: ops_messages.get_message,
    c.DeleteMessage: ops_messages.delete_message,
    c.MoveMessage: ops_messages.move_message,
    c.CopyMessage: ops_messages.copy_message,
    c.NewMessageUpload: ops_messages.new_message_upload,
    c.UpdateMessageUpload: ops_messages.update_message_upload,
    c.SendMail: ops_messages.send_mail,
    c.GetFile: ops_files.get_file,
    c.DeleteFile: ops_files.delete_file,
    c.MoveFile: ops_files.move_file,
    c.CopyFile: ops_files.copy_file,
    c.NewFileUpload: ops_files.new_file_upload,
    c.UpdateFileUpload: ops_files.update_file_upload,
    c.RenameFile: ops_files.rename_file,
}


async def run(account: XmapAccount, command: c.Command) -> Reply:
    await account.pool.sync(account.handles.folder_epoch)
    if isinstance(command, c.DeleteItems | c.MoveItems | c.CopyItems):
        return await _batch(account, command)
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise BridgeError(ErrorKind.UNKNOWN_OPERATION)
    return await handler(account, command)


async def _batch(account: XmapAccount, batch: c.DeleteItems | c.MoveItems | c.CopyItems) -> Reply:
    results: list[responses.Ack | responses.ItemFailure] = []
    for item in batch.items:
        try:
            reply = await HANDLERS[type(item)](account, item)
        except BridgeError as exc:
            results.append(responses.ItemFailure(item, exc))
            continue
        except Exception:
            log.exception("%s item %s failed", batch.COMMAND, item.COMMAND)
            results.append(responses.ItemFailure(item, BridgeError(ErrorKind.INTERNAL)))
            continue
        if reply.ack is None:
            raise RuntimeError(f"{item.COMMAND} gave no acknowledgement")
        results.append(reply.ack)
    return Reply(responses.items(batch, results))
