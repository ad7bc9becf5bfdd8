"""File commands: GETFILE, DELETEFILE, MOVEFILE, COPYFILE, NEWFILEUPLOAD, UPDATEFILEUPLOAD
(xmap-0.90.txt lines 81, 87, 102, 114, 126-128, 141-143), on files stored as messages
(files.py). A folder holds at most one file of a name: NEWFILEUPLOAD, MOVEFILE and COPYFILE
refuse to replace one (ALREADY_EXISTS), UPDATEFILEUPLOAD replaces one that exists.
RENAMEFILE (our extension: line 17 requires renaming files, no command of the text does it) gives
a file a new full path, in its folder or another; the name is inside the stored message, so the
file is stored again under the new name and the old one removed.

Two sessions of an account may store a name at the same moment; whatever stores a file removes
every other copy of its name in the folder afterwards, so the last one stored is the file and
none is left behind to reappear after a DELETEFILE.
"""

from __future__ import annotations

from adapters.protocols import ViewQuery
from bridge.errors import BridgeError, ErrorKind
from bridge.xmap import commands as c
from bridge.xmap import files, responses
from bridge.xmap.account import Reply, XmapAccount, acked
from bridge.xmap.pool import Opened

DELETED = "\\Deleted"


async def _copies(opened: Opened, name: str) -> list[int]:
    """The UIDs holding the file `name` in an open folder, oldest first."""
    mailbox = opened.mailbox
    query = ViewQuery(
        flags_set=(files.FILE_KEYWORD,), text=files.encode_name(name), text_field=files.FILE_FIELD
    )
    uids = await mailbox.view(query)
    if not uids:
        return []
    # SEARCH HEADER matches substrings: keep the exact name only.
    summaries = await mailbox.summaries(uids, [files.FILE_FIELD])
    return sorted(
        uid for uid in uids if uid in summaries and files.name_of(summaries[uid].headers) == name
    )


async def _find_in(opened: Opened, name: str) -> int | None:
    """The UID of the file `name` (the newest, should two sessions have stored it at once)."""
    copies = await _copies(opened, name)
    return copies[-1] if copies else None


async def _store(account: XmapAccount, folder: str, name: str, data: bytes) -> None:
    """Store the file, then remove any other copy of its name (see the module text)."""
    message = files.compose(name, data, owner=account.session.account)
    placed = await account.session.mail.append(folder, message, list(files.FILE_FLAGS))
    if placed is not None:
        opened = await account.pool.get(folder)
        await _remove(opened, [uid for uid in await _copies(opened, name) if uid < placed.uid])


async def _locate(account: XmapAccount, path: str) -> tuple[Opened, int]:
    folder, name = files.split_path(path)

    async def search(opened: Opened) -> tuple[Opened, int | None]:
        return opened, await _find_in(opened, name)

    # pool.run: once more on a fresh connection if the kept one was lost.
    opened, uid = await account.pool.run(folder, search)
    if uid is None:
        raise BridgeError(ErrorKind.NOT_FOUND, f"no file {path}")
    return opened, uid


async def _refuse_existing(account: XmapAccount, folder: str, name: str) -> None:
    async def search(opened: Opened) -> int | None:
        return await _find_in(opened, name)

    if await account.pool.run(folder, search) is not None:
        raise BridgeError(ErrorKind.ALREADY_EXISTS, f"{folder}/{name} already exists")


async def _remove(opened: Opened, uids: list[int]) -> None:
    if uids:
        await opened.mailbox.mark(uids, [DELETED], [])
        await opened.mailbox.expunge(uids)


async def _content(opened: Opened, uid: int, path: str) -> bytes:
    body = await opened.mailbox.fetch_section(uid, "1")
    if body is None:
        raise BridgeError(ErrorKind.NOT_FOUND, f"no file {path}")
    return files.decode_body(body)


async def get_file(account: XmapAccount, command: c.GetFile) -> Reply:
    opened, uid = await _locate(account, command.name)
    data = await _content(opened, uid, command.name)
    _, name = files.split_path(command.name)
    header = responses.get_file_header(command.name, len(data))
    return Reply(header, data, files.content_type(name))


async def delete_file(account: XmapAccount, command: c.DeleteFile) -> Reply:
    opened, _ = await _locate(account, command.name)
    _, name = files.split_path(command.name)
    await _remove(opened, await _copies(opened, name))
    return acked(responses.echo(command))


async def move_file(account: XmapAccount, command: c.MoveFile) -> Reply:
    opened, uid = await _locate(account, command.name)
    if not account.same_mailbox(opened.mailbox.name, command.target_folder):
        _, name = files.split_path(command.name)
        await _refuse_existing(account, command.target_folder, name)
        await opened.mailbox.move([uid], command.target_folder)
    return acked(responses.echo(command))


async def copy_file(account: XmapAccount, command: c.CopyFile) -> Reply:
    opened, uid = await _locate(account, command.name)
    _, name = files.split_path(command.name)
    await _refuse_existing(account, command.target_folder, name)
    await opened.mailbox.copy([uid], command.target_folder)
    return acked(responses.echo(command))


def _check_size(account: XmapAccount, data: bytes) -> None:
    if files.stored_size(len(data)) > account.max_message_bytes:
        raise BridgeError(ErrorKind.LIMIT, "the file is too large to store")


async def new_file_upload(account: XmapAccount, command: c.NewFileUpload) -> Reply:
    _check_size(account, command.data)
    path = files.upload_path(command.name, command.target_folder)
    folder, name = files.split_path(path)
    await _refuse_existing(account, folder, name)
    await _store(account, folder, name, command.data)
    return acked(responses.Ack(command.COMMAND, name=path))


async def update_file_upload(account: XmapAccount, command: c.UpdateFileUpload) -> Reply:
    _check_size(account, command.data)
    await _locate(account, command.name)
    folder, name = files.split_path(command.name)
    # The new content first (the old copies go after it): a failure leaves the old file.
    await _store(account, folder, name, command.data)
    return acked(responses.echo(command))


async def rename_file(account: XmapAccount, command: c.RenameFile) -> Reply:
    folder, name = files.split_path(command.destination)
    opened, uid = await _locate(account, command.name)
    if command.destination != command.name:
        await _refuse_existing(account, folder, name)
        data = await _content(opened, uid, command.name)
        # The new name stored first: a failure leaves the old file, never neither.
        await _store(account, folder, name, data)
        _, old_name = files.split_path(command.name)
        old = await account.pool.get(opened.mailbox.name)
        await _remove(old, await _copies(old, old_name))
    return acked(responses.echo(command))
