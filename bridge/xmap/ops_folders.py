"""Folder commands: LISTALLFOLDERS, LISTFOLDER, CREATEFOLDER, RENAMEFOLDER, MOVEFOLDER,
EMPTYFOLDER (xmap-0.90.txt lines 75-78, 99, 146-152).

Folders are the account's own IMAP mailboxes, by their full path with `/` between levels (the
same names a XIMSS session sees). Decisions where the text is silent:
- LISTALLFOLDERS lists the user's own selectable mailboxes ("that belong to the user", line
  76), not mailboxes other users share.
- RENAMEFOLDER's Destination is the folder's new full path; MOVEFOLDER's Destination is the
  folder it goes into (`/` for the top level), the folder keeping its own last name, as `mv dir
  target/` does. Both take nested folders along and answer the folder's new full path.
- EMPTYFOLDER removes every message and file in the folder; nested folders stay.
- DELETEFOLDER (our extension: line 20 requires deleting folders, no command of the text does it)
  deletes a folder with its messages and files; a folder holding nested folders is refused
  (514), so one command never removes a whole tree by surprise.
"""

from __future__ import annotations

from adapters.protocols import ViewQuery
from bridge.errors import BridgeError, ErrorKind
from bridge.session.handles import MessageRef, record_rename
from bridge.xmap import commands as c
from bridge.xmap import listing, responses
from bridge.xmap.account import Reply, XmapAccount, acked
from bridge.xmap.pool import Opened
from bridge.xmap.responses import FileHeader, MessageHeader

LIST_CHUNK = 500
DELETED = "\\Deleted"


async def list_all_folders(account: XmapAccount, command: c.ListAllFolders) -> Reply:
    infos = await account.session.mail.list_mailboxes("*", with_status=False, with_class=False)
    names = [info.name for info in infos if info.selectable and not info.name.startswith("~")]
    return Reply(responses.list_all_folders(names))


async def list_folder(account: XmapAccount, command: c.ListFolder) -> Reply:
    async def rows(opened: Opened) -> list[MessageHeader | FileHeader]:
        mailbox = opened.mailbox
        uids = await mailbox.view(ViewQuery())
        found: list[MessageHeader | FileHeader] = []
        for start in range(0, len(uids), LIST_CHUNK):
            chunk = uids[start : start + LIST_CHUNK]
            summaries = await mailbox.summaries(chunk, listing.HEADER_FIELDS, with_structure=True)
            present = [summaries[uid] for uid in chunk if uid in summaries]  # gone meanwhile
            messages = [summary for summary in present if not listing.is_file(summary)]
            refs = [MessageRef(mailbox.name, opened.uidvalidity, m.uid) for m in messages]
            handles = dict(
                zip([m.uid for m in messages], await account.handles.handles_for(refs), strict=True)
            )
            found += [
                listing.row(command.name, summary, handles.get(summary.uid)) for summary in present
            ]
        return found

    return Reply(responses.list_folder(command.name, await account.pool.run(command.name, rows)))


async def create_folder(account: XmapAccount, command: c.CreateFolder) -> Reply:
    await account.session.mail.create_mailbox(_folder(command.name), None)
    return acked(responses.echo(command))


async def _rename(account: XmapAccount, old: str, new: str) -> None:
    if account.same_mailbox(old, new):
        raise BridgeError(ErrorKind.ALREADY_EXISTS, "the folder already has that name")
    # Selected mailboxes would keep their old names: close them first.
    await account.pool.close()
    store = account.session.mail
    await store.rename_mailbox(old, new, children=True)
    account.handles.folders_changed()
    await record_rename(store, account.handles, old, new)


async def rename_folder(account: XmapAccount, command: c.RenameFolder) -> Reply:
    new = _folder(command.destination)
    await _rename(account, _folder(command.name), new)
    return acked(responses.Ack(command.COMMAND, name=new))


async def move_folder(account: XmapAccount, command: c.MoveFolder) -> Reply:
    own_name = command.name.rstrip("/").rpartition("/")[2]
    parent = command.destination.strip("/")
    new = f"{parent}/{own_name}" if parent else own_name
    old = _folder(command.name)
    if new.startswith(old + "/"):
        raise BridgeError(ErrorKind.BAD_REQUEST, "a folder cannot move into itself")
    if new != old:  # already there: nothing to do
        await _rename(account, old, new)
    return acked(responses.Ack(command.COMMAND, name=new))


async def empty_folder(account: XmapAccount, command: c.EmptyFolder) -> Reply:
    async def empty(opened: Opened) -> None:
        mailbox = opened.mailbox
        uids = await mailbox.view(ViewQuery())
        if uids:
            await mailbox.mark(uids, [DELETED], [])
            await mailbox.expunge(uids)
            await account.handles.forget_removed(mailbox.name, opened.uidvalidity, uids)

    # pool.run: once more on a fresh connection if the kept one was lost.
    await account.pool.run(command.name, empty)
    return acked(responses.echo(command))


async def delete_folder(account: XmapAccount, command: c.DeleteFolder) -> Reply:
    name = _folder(command.name)
    await account.pool.drop(name)
    await account.session.mail.delete_mailbox(name, children=False)
    account.handles.folders_changed()
    return acked(responses.echo(command))


def _folder(name: str) -> str:
    folder = name.strip("/")
    if not folder:
        raise BridgeError(ErrorKind.BAD_REQUEST, "a folder needs a name")
    return folder
