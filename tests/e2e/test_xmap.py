"""XMAP over TCP end to end, against the real dev stack (Dovecot, Postfix): every command of
xmap-0.90.txt with the exact response shapes of its lines 159-280, LOGIN and the ERROR element
(DESIGN.md section 6), batches, binary files, handles across a bridge restart, and malformed
blob framing. XIMSS interop and SENDMAIL are in test_xmap_interop.py."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import imaplib
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from lxml import etree

from bridge import config
from bridge.app import Bridge
from bridge.xmap import commands as c
from bridge.xmap import files
from bridge.xmap.client import Answer, XmapClient, XmapFailed
from bridge.xmap.flags import XmapFlag
from tests.conftest import devstack

NOTHING = frozenset[XmapFlag]()
MESSAGEHEADER_ATTRS = [
    "MessageHandle", "MessageFlags", "MessageDate", "MessageFrom", "MessageTo",
    "MessageSubject", "MessageAttachments", "MessageLength", "MessageSessionKey",
]  # fmt: skip
FILEHEADER_ATTRS = ["Name", "Date", "Length", "Key"]
RFC5322_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"
)


# --- helpers -----------------------------------------------------------------------------------


def shape(answer: Answer) -> bytes:
    """The answer document as compact XML, for comparing with the text's shapes."""
    return etree.tostring(answer.root)


def mail(subject: str, *, sender: str = "Carol <carol@example.org>", to: str = "Dave <dave@example.org>",
         body: str = "hello\r\n", extra: str = "", date: bool = True) -> bytes:  # fmt: skip
    """A complete RFC 822 message (Date and Message-ID included unless `date` is False)."""
    head = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
    if date:
        head += (
            "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{re.sub(r'[^A-Za-z0-9]', '.', subject)}.{os.getpid()}@example.org>\r\n"
        )
    return f"{head}\r\n{body}".encode()


def with_attachment(subject: str) -> bytes:
    return (
        "From: Carol <carol@example.org>\r\nTo: Dave <dave@example.org>\r\n"
        f"Subject: {subject}\r\nDate: Tue, 03 Mar 2026 11:30:00 +0100\r\n"
        f"Message-ID: <attached.{os.getpid()}@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the report.\r\n"
        '--b1\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
        'Content-Disposition: attachment; filename="report.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n--b1--\r\n"
    ).encode()


@dataclass
class Xmap:
    client: XmapClient
    account: devstack.Account

    async def call(self, command: c.Command, *, check: bool = True) -> Answer:
        return await self.client.call(command, check=check)

    async def upload(self, folder: str, raw: bytes, flags: frozenset[XmapFlag] = NOTHING) -> int:
        answer = await self.call(c.NewMessageUpload(folder, flags, raw))
        assert answer.first.tag == "NEWMESSAGEUPLOAD"
        return int(answer.first.get("MessageHandle", "0"))

    async def get(self, handle: int) -> bytes:
        answer = await self.call(c.GetMessage(handle))
        assert answer.first.tag == "GETMESSAGE" and answer.blob is not None
        assert answer.first.get("MessageHandle") == str(handle)
        assert answer.first.get("Length") == str(len(answer.blob))
        return answer.blob

    async def get_file(self, path: str) -> bytes:
        answer = await self.call(c.GetFile(path))
        assert answer.first.tag == "GETFILE" and answer.blob is not None
        assert answer.first.get("Name") == path
        assert answer.first.get("Length") == str(len(answer.blob))
        return answer.blob

    async def listing(self, folder: str) -> list[etree._Element]:
        answer = await self.call(c.ListFolder(folder))
        assert answer.first.tag == "LISTFOLDER" and answer.first.get("Name") == folder
        return [row for row in answer.first if isinstance(row.tag, str)]

    async def headers(self, folder: str) -> dict[int, etree._Element]:
        rows = await self.listing(folder)
        return {int(r.get("MessageHandle", "0")): r for r in rows if r.tag == "MESSAGEHEADER"}

    async def file_rows(self, folder: str) -> dict[str, etree._Element]:
        rows = await self.listing(folder)
        return {r.get("Name", ""): r for r in rows if r.tag == "FILEHEADER"}

    async def code_of(self, command: c.Command) -> str | None:
        answer = await self.call(command, check=False)
        assert answer.error is not None, shape(answer)
        assert answer.error.get("Command") == command.COMMAND
        assert answer.error.get("Text")
        return answer.error.get("Code")


async def connect(port: int, account: devstack.Account) -> XmapClient:
    client = await XmapClient.connect("127.0.0.1", port)
    await client.login(account.address, account.password)
    return client


@pytest.fixture
async def xm(xmap_port: int, fresh_account: devstack.Account) -> AsyncIterator[Xmap]:
    client = await connect(xmap_port, fresh_account)
    yield Xmap(client, fresh_account)
    await client.close()


@dataclass(frozen=True)
class Stored:
    uid: int
    flags: frozenset[str]
    raw: bytes


def _imap_messages(port: int, account: devstack.Account, mailbox: str) -> list[Stored] | None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        status, _ = imap.select(f'"{mailbox}"', readonly=True)
        if status != "OK":
            return None
        _, data = imap.uid("SEARCH", "ALL")
        found = []
        for uid in (data[0] or b"").split():
            _, parts = imap.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
            head, raw = next(p for p in parts if isinstance(p, tuple))
            flags = re.search(rb"FLAGS \(([^)]*)\)", head)
            assert flags is not None
            found.append(Stored(int(uid), frozenset(flags.group(1).decode().split()), raw))
        return found
    finally:
        imap.logout()


async def imap_messages(stack: devstack.DevStack, account: devstack.Account,
                        mailbox: str) -> list[Stored]:  # fmt: skip
    """The messages of a mailbox seen directly on Dovecot ([] when it does not exist)."""
    return await asyncio.to_thread(_imap_messages, stack.ports.imap, account, mailbox) or []


def _imap_command(port: int, account: devstack.Account, mailbox: str, *args: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        assert imap.select(f'"{mailbox}"')[0] == "OK"
        status, _ = imap.uid(*args)
        assert status == "OK"
    finally:
        imap.logout()


async def imap_expunge(stack: devstack.DevStack, account: devstack.Account, mailbox: str,
                       uid: int) -> None:  # fmt: skip
    await asyncio.to_thread(_imap_command, stack.ports.imap, account, mailbox,
                            "STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")  # fmt: skip
    await asyncio.to_thread(_imap_command, stack.ports.imap, account, mailbox, "EXPUNGE", str(uid))


async def imap_mailboxes(stack: devstack.DevStack, account: devstack.Account) -> set[str]:
    def run() -> set[str]:
        imap = imaplib.IMAP4("127.0.0.1", stack.ports.imap)
        try:
            imap.login(account.address, account.password)
            _, lines = imap.list()
            return {
                line.decode().rpartition(' "/" ')[2].strip('"')
                for line in lines
                if isinstance(line, bytes)
            }
        finally:
            imap.logout()

    return await asyncio.to_thread(run)


# --- 1. LOGIN ----------------------------------------------------------------------------------


async def test_login_answers_the_user_name_and_refuses_the_rest(
    xmap_port: int, fresh_account: devstack.Account
) -> None:
    client = await XmapClient.connect("127.0.0.1", xmap_port)
    try:
        # Any command before LOGIN: 530, naming the command.
        early = await client.call(c.ListAllFolders(), check=False)
        assert early.error is not None
        assert early.error.get("Command") == "LISTALLFOLDERS" and early.error.get("Code") == "530"
        assert early.error.get("Text")
        early = await client.call(c.GetMessage(1), check=False)
        assert early.error is not None
        assert (early.error.get("Command"), early.error.get("Code")) == ("GETMESSAGE", "530")

        wrong = await client.call(c.Login(fresh_account.address, "not-the-password"), check=False)
        assert wrong.error is not None
        assert (wrong.error.get("Command"), wrong.error.get("Code")) == ("LOGIN", "535")

        answer = await client.login(fresh_account.address, fresh_account.password)
        assert shape(answer) == (
            f'<XMAPROOT><LOGIN UserName="{fresh_account.address}"/></XMAPROOT>'.encode()
        )
        again = await client.call(c.Login(fresh_account.address, fresh_account.password),
                                  check=False)  # fmt: skip
        assert again.error is not None
        assert (again.error.get("Command"), again.error.get("Code")) == ("LOGIN", "503")
        # Still logged in and working.
        assert (await client.call(c.ListAllFolders())).first.tag == "LISTALLFOLDERS"
    finally:
        await client.close()


async def test_three_wrong_passwords_close_the_connection(
    xmap_port: int, fresh_account: devstack.Account
) -> None:
    client = await XmapClient.connect("127.0.0.1", xmap_port)
    try:
        for _ in range(3):
            wrong = await client.call(c.Login(fresh_account.address, "guess"), check=False)
            assert wrong.error is not None and wrong.error.get("Code") == "535"
        with pytest.raises(EOFError):
            await client.call(c.Login(fresh_account.address, fresh_account.password))
    finally:
        await client.close()


# --- 2. every command --------------------------------------------------------------------------


async def test_list_all_folders_create_rename_and_move_folders(
    xm: Xmap, stack: devstack.DevStack
) -> None:
    answer = await xm.call(c.ListAllFolders())
    assert [child.tag for child in answer.first] == ["FOLDER"] * len(answer.first)
    names = {folder.get("Name") for folder in answer.first}
    assert {"INBOX", "Drafts", "Sent", "Trash", "Junk"} <= names
    assert all(list(folder.attrib) == ["Name"] for folder in answer.first)

    created = await xm.call(c.CreateFolder("Projects"))
    assert shape(created) == b'<XMAPROOT><CREATEFOLDER Name="Projects"/></XMAPROOT>'
    await xm.call(c.CreateFolder("Projects/Sub"))
    await xm.call(c.CreateFolder("Archive"))
    assert await xm.code_of(c.CreateFolder("Projects")) == "513"
    names = {f.get("Name") for f in (await xm.call(c.ListAllFolders())).first}
    assert {"Projects", "Projects/Sub", "Archive"} <= names

    top = await xm.upload("Projects", mail("In projects"))
    nested = await xm.upload("Projects/Sub", mail("In sub"))

    renamed = await xm.call(c.RenameFolder("Projects", "Plans"))
    assert shape(renamed) == b'<XMAPROOT><RENAMEFOLDER Name="Plans"/></XMAPROOT>'
    on_server = await imap_mailboxes(stack, xm.account)
    assert {"Plans", "Plans/Sub"} <= on_server and "Projects" not in on_server
    # Handles of messages inside, nested folder included, keep working.
    assert await xm.get(top) == mail("In projects")
    assert await xm.get(nested) == mail("In sub")
    assert set(await xm.headers("Plans/Sub")) == {nested}
    assert set(await xm.headers("Plans")) == {top}

    # MOVEFOLDER: Destination is the parent; the answer names the new full path.
    moved = await xm.call(c.MoveFolder("Plans", "Archive"))
    assert shape(moved) == b'<XMAPROOT><MOVEFOLDER Name="Archive/Plans"/></XMAPROOT>'
    on_server = await imap_mailboxes(stack, xm.account)
    assert {"Archive/Plans", "Archive/Plans/Sub"} <= on_server and "Plans" not in on_server
    assert await xm.get(top) == mail("In projects")
    assert await xm.get(nested) == mail("In sub")
    assert set(await xm.headers("Archive/Plans/Sub")) == {nested}

    # Back to the top level.
    moved = await xm.call(c.MoveFolder("Archive/Plans/Sub", "/"))
    assert shape(moved) == b'<XMAPROOT><MOVEFOLDER Name="Sub"/></XMAPROOT>'
    assert await xm.get(nested) == mail("In sub")
    assert await xm.code_of(c.RenameFolder("Nowhere", "Elsewhere")) == "512"


async def test_list_folder_rows_carry_every_attribute(xm: Xmap, stack: devstack.DevStack) -> None:
    await xm.call(c.CreateFolder("Mixed"))
    subject = "Grüße aus Köln"
    header_subject = "=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?="
    plain = mail(header_subject, sender="=?UTF-8?Q?J=C3=B6rg?= <jorg@example.org>")
    flagged = {
        "READ": await xm.upload("Mixed", mail("Read one"), frozenset({XmapFlag.READ})),
        "NEW": await xm.upload("Mixed", plain),
        "ANSWERED": await xm.upload(
            "Mixed", mail("Answered one"), frozenset({XmapFlag.ANSWERED, XmapFlag.READ})
        ),
        "FORWARDED": await xm.upload(
            "Mixed", mail("Forwarded one"), frozenset({XmapFlag.FORWARDED})
        ),
        "DRAFT": await xm.upload("Mixed", mail("Draft one"), frozenset({XmapFlag.DRAFT})),
    }
    attached = await xm.upload("Mixed", with_attachment("With a report"))
    payload = b"file bytes\x00\x01\x02 end"
    uploaded = await xm.call(c.NewFileUpload("notes.bin", "Mixed", payload))
    assert shape(uploaded) == b'<XMAPROOT><NEWFILEUPLOAD Name="Mixed/notes.bin"/></XMAPROOT>'

    answer = await xm.call(c.ListFolder("Mixed"))
    assert answer.first.tag == "LISTFOLDER" and list(answer.first.attrib) == ["Name"]
    rows = list(answer.first)
    messages = [r for r in rows if r.tag == "MESSAGEHEADER"]
    file_rows = [r for r in rows if r.tag == "FILEHEADER"]
    assert len(messages) == 6 and len(file_rows) == 1 and len(rows) == 7
    by_handle = {int(r.get("MessageHandle", "0")): r for r in messages}
    assert set(by_handle) == {*flagged.values(), attached}
    for row in messages:
        assert list(row.attrib) == MESSAGEHEADER_ATTRS
        assert row.get("MessageFlags") in {"READ", "NEW", "ANSWERED", "FORWARDED", "DRAFT"}
        assert RFC5322_DATE.fullmatch(row.get("MessageDate", "")), row.get("MessageDate")
        assert row.get("MessageSessionKey") == ""
    for status, handle in flagged.items():
        assert by_handle[handle].get("MessageFlags") == status

    # Decoded From/To/Subject, date from the Date header, length of the stored bytes.
    row = by_handle[flagged["NEW"]]
    assert row.get("MessageSubject") == subject
    assert row.get("MessageFrom") == "Jörg <jorg@example.org>"
    assert row.get("MessageTo") == "Dave <dave@example.org>"
    assert row.get("MessageDate") == "Mon, 02 Mar 2026 10:00:00 +0000"
    assert row.get("MessageAttachments") == "0"
    assert row.get("MessageLength") == str(len(plain))
    report = by_handle[attached]
    assert report.get("MessageAttachments") == "1"
    assert report.get("MessageSubject") == "With a report"
    assert report.get("MessageLength") == str(len(with_attachment("With a report")))
    assert email.utils.parsedate_to_datetime(report.get("MessageDate", "")) == (
        email.utils.parsedate_to_datetime("Tue, 03 Mar 2026 11:30:00 +0100")
    )

    (file_row,) = file_rows
    assert list(file_row.attrib) == FILEHEADER_ATTRS
    assert file_row.get("Name") == "Mixed/notes.bin"
    assert file_row.get("Length") == str(len(payload))
    assert file_row.get("Key") == ""
    assert RFC5322_DATE.fullmatch(file_row.get("Date", ""))
    uploaded_at = email.utils.parsedate_to_datetime(file_row.get("Date", ""))
    assert abs(uploaded_at.timestamp() - time.time()) < 600

    # The flags are really stored on Dovecot.
    stored = {m.raw: m.flags for m in await imap_messages(stack, xm.account, "Mixed")}
    assert stored[mail("Read one")] == {"\\Seen"}
    assert stored[plain] == set()
    assert stored[mail("Answered one")] == {"\\Seen", "\\Answered"}
    assert stored[mail("Forwarded one")] == {"$Forwarded"}
    assert stored[mail("Draft one")] == {"\\Draft"}


async def test_get_message_returns_the_uploaded_bytes(xm: Xmap) -> None:
    complete = mail("Exact bytes", body="line one\r\nline two\r\n\r\n-- \r\nsig\r\n")
    handle = await xm.upload("INBOX", complete)
    answer = await xm.call(c.GetMessage(handle))
    assert (
        shape(answer)
        == (
            f'<XMAPROOT><GETMESSAGE MessageHandle="{handle}" Length="{len(complete)}"/></XMAPROOT>'
        ).encode()
    )
    assert answer.blob == complete

    # Without Date and Message-ID: both are added at the top, the rest is as sent.
    bare = mail("No date", date=False)
    handle = await xm.upload("INBOX", bare)
    got = await xm.get(handle)
    assert got.endswith(bare)
    lines = got[: -len(bare)].decode().split("\r\n")
    assert lines[-1] == "" and len(lines) == 3
    added = dict(line.split(": ", 1) for line in lines[:2])
    assert sorted(added) == ["Date", "Message-ID"]
    assert RFC5322_DATE.fullmatch(added["Date"]), added["Date"]
    assert re.fullmatch(r"<[^<>@\s]+@example\.test>", added["Message-ID"]), added["Message-ID"]


async def test_delete_message_then_its_handle_is_unknown(
    xm: Xmap, stack: devstack.DevStack
) -> None:
    handle = await xm.upload("INBOX", mail("Delete me"))
    keep = await xm.upload("INBOX", mail("Keep me"))
    answer = await xm.call(c.DeleteMessage(handle))
    assert (
        shape(answer) == f'<XMAPROOT><DELETEMESSAGE MessageHandle="{handle}"/></XMAPROOT>'.encode()
    )
    assert await xm.code_of(c.GetMessage(handle)) == "512"
    assert await xm.code_of(c.DeleteMessage(handle)) == "512"
    assert [m.raw for m in await imap_messages(stack, xm.account, "INBOX")] == [mail("Keep me")]
    assert set(await xm.headers("INBOX")) == {keep}


async def test_move_and_copy_message(xm: Xmap, stack: devstack.DevStack) -> None:
    await xm.call(c.CreateFolder("Kept"))
    handle = await xm.upload("INBOX", mail("Move me"), frozenset({XmapFlag.READ}))
    moved = await xm.call(c.MoveMessage(handle, "Kept"))
    assert (
        shape(moved)
        == (
            f'<XMAPROOT><MOVEMESSAGE MessageHandle="{handle}" TargetFolder="Kept"/></XMAPROOT>'
        ).encode()
    )
    assert await xm.get(handle) == mail("Move me")
    assert await imap_messages(stack, xm.account, "INBOX") == []
    assert [m.raw for m in await imap_messages(stack, xm.account, "Kept")] == [mail("Move me")]
    assert set(await xm.headers("Kept")) == {handle}
    assert (await xm.headers("Kept"))[handle].get("MessageFlags") == "READ"

    copied = await xm.call(c.CopyMessage(handle, "INBOX"))
    assert copied.first.tag == "COPYMESSAGE" and list(copied.first.attrib) == [
        "MessageHandle", "TargetFolder"]  # fmt: skip
    assert copied.first.get("TargetFolder") == "INBOX"
    copy = int(copied.first.get("MessageHandle", "0"))
    assert copy not in (0, handle)
    assert await xm.get(copy) == mail("Move me")
    assert await xm.get(handle) == mail("Move me")
    assert set(await xm.headers("INBOX")) == {copy}
    assert set(await xm.headers("Kept")) == {handle}
    # Deleting the copy leaves the original.
    await xm.call(c.DeleteMessage(copy))
    assert await xm.get(handle) == mail("Move me")
    assert await xm.code_of(c.MoveMessage(handle, "NoSuchFolder")) == "512"
    assert await xm.code_of(c.CopyMessage(handle, "NoSuchFolder")) == "512"
    assert await xm.get(handle) == mail("Move me")


async def test_update_message_upload_keeps_the_handle(xm: Xmap, stack: devstack.DevStack) -> None:
    handle = await xm.upload("Drafts", mail("First draft"), frozenset({XmapFlag.DRAFT}))
    answer = await xm.call(
        c.UpdateMessageUpload(
            handle, frozenset({XmapFlag.DRAFT, XmapFlag.READ}), mail("Second draft")
        )
    )
    assert (
        shape(answer)
        == (f'<XMAPROOT><UPDATEMESSAGEUPLOAD MessageHandle="{handle}"/></XMAPROOT>').encode()
    )
    assert await xm.get(handle) == mail("Second draft")
    stored = await imap_messages(stack, xm.account, "Drafts")
    assert [(m.raw, m.flags) for m in stored] == [(mail("Second draft"), {"\\Draft", "\\Seen"})]
    rows = await xm.headers("Drafts")
    assert set(rows) == {handle}
    assert rows[handle].get("MessageSubject") == "Second draft"
    assert rows[handle].get("MessageFlags") == "DRAFT"
    assert await xm.code_of(c.UpdateMessageUpload(987654321, NOTHING, mail("x"))) == "512"


async def test_file_commands(xm: Xmap, stack: devstack.DevStack) -> None:
    await xm.call(c.CreateFolder("Docs"))
    await xm.call(c.CreateFolder("Backup"))
    first = b"first version\x00\xff\xfe" * 100
    # Name as a full path inside TargetFolder works too.
    answer = await xm.call(c.NewFileUpload("Docs/report.pdf", "Docs", first))
    assert shape(answer) == b'<XMAPROOT><NEWFILEUPLOAD Name="Docs/report.pdf"/></XMAPROOT>'
    assert await xm.get_file("Docs/report.pdf") == first
    # Files are never listed as messages.
    rows = await xm.listing("Docs")
    assert [r.tag for r in rows] == ["FILEHEADER"]

    second = os.urandom(3000)
    answer = await xm.call(c.UpdateFileUpload("Docs/report.pdf", None, second))
    assert shape(answer) == b'<XMAPROOT><UPDATEFILEUPLOAD Name="Docs/report.pdf"/></XMAPROOT>'
    assert await xm.get_file("Docs/report.pdf") == second
    assert len(await imap_messages(stack, xm.account, "Docs")) == 1
    assert (await xm.file_rows("Docs"))["Docs/report.pdf"].get("Length") == "3000"

    copied = await xm.call(c.CopyFile("Docs/report.pdf", "Backup"))
    assert shape(copied) == (
        b'<XMAPROOT><COPYFILE Name="Docs/report.pdf" TargetFolder="Backup"/></XMAPROOT>'
    )
    assert await xm.get_file("Backup/report.pdf") == second
    assert await xm.get_file("Docs/report.pdf") == second
    assert await xm.code_of(c.CopyFile("Docs/report.pdf", "Backup")) == "513"

    await xm.call(c.NewFileUpload("notes.txt", "Docs", b"notes"))
    moved = await xm.call(c.MoveFile("Docs/notes.txt", "INBOX"))
    assert shape(moved) == (
        b'<XMAPROOT><MOVEFILE Name="Docs/notes.txt" TargetFolder="INBOX"/></XMAPROOT>'
    )
    assert await xm.get_file("INBOX/notes.txt") == b"notes"
    assert await xm.code_of(c.GetFile("Docs/notes.txt")) == "512"
    assert set(await xm.file_rows("INBOX")) == {"INBOX/notes.txt"}
    assert await xm.headers("INBOX") == {}

    deleted = await xm.call(c.DeleteFile("Backup/report.pdf"))
    assert shape(deleted) == b'<XMAPROOT><DELETEFILE Name="Backup/report.pdf"/></XMAPROOT>'
    assert await xm.code_of(c.GetFile("Backup/report.pdf")) == "512"
    assert await imap_messages(stack, xm.account, "Backup") == []
    assert await xm.code_of(c.DeleteFile("Backup/report.pdf")) == "512"
    assert await xm.code_of(c.UpdateFileUpload("Backup/report.pdf", None, b"x")) == "512"


async def test_empty_folder_removes_messages_and_files(xm: Xmap, stack: devstack.DevStack) -> None:
    await xm.call(c.CreateFolder("Full"))
    await xm.call(c.CreateFolder("Full/Child"))
    gone = await xm.upload("Full", mail("One"))
    await xm.upload("Full", mail("Two"))
    await xm.call(c.NewFileUpload("f.bin", "Full", b"abc"))
    child = await xm.upload("Full/Child", mail("Nested"))
    answer = await xm.call(c.EmptyFolder("Full"))
    assert shape(answer) == b'<XMAPROOT><EMPTYFOLDER Name="Full"/></XMAPROOT>'
    assert await xm.listing("Full") == []
    assert await imap_messages(stack, xm.account, "Full") == []
    assert await xm.code_of(c.GetMessage(gone)) == "512"
    # Nested folders and their contents stay.
    assert await xm.get(child) == mail("Nested")
    assert await xm.code_of(c.EmptyFolder("NoSuchFolder")) == "512"


# --- 3. batches --------------------------------------------------------------------------------


async def test_delete_items_reports_each_item_and_goes_on(
    xm: Xmap, stack: devstack.DevStack
) -> None:
    good = await xm.upload("INBOX", mail("Batch one"))
    await xm.call(c.NewFileUpload("batch.txt", "INBOX", b"batch"))
    unknown = 424242
    answer = await xm.call(
        c.DeleteItems(
            (c.DeleteMessage(good), c.DeleteMessage(unknown), c.DeleteFile("INBOX/batch.txt"))
        )
    )
    assert answer.first.tag == "DELETEITEMS"
    rows = list(answer.first)
    assert [r.tag for r in rows] == ["DELETEMESSAGE", "ERROR", "DELETEFILE"]
    assert etree.tostring(rows[0]) == f'<DELETEMESSAGE MessageHandle="{good}"/>'.encode()
    error = rows[1]
    assert list(error.attrib) == ["Command", "Code", "Text", "MessageHandle"]
    assert error.get("Command") == "DELETEMESSAGE" and error.get("Code") == "512"
    assert error.get("Text") and error.get("MessageHandle") == str(unknown)
    assert etree.tostring(rows[2]) == b'<DELETEFILE Name="INBOX/batch.txt"/>'
    # The good ones really happened.
    assert await imap_messages(stack, xm.account, "INBOX") == []
    assert await xm.code_of(c.GetMessage(good)) == "512"
    assert await xm.code_of(c.GetFile("INBOX/batch.txt")) == "512"


async def test_move_items_and_copy_items(xm: Xmap, stack: devstack.DevStack) -> None:
    await xm.call(c.CreateFolder("Dest"))
    first = await xm.upload("INBOX", mail("Batch move"))
    await xm.call(c.NewFileUpload("moved.txt", "INBOX", b"moved"))
    answer = await xm.call(
        c.MoveItems(
            (
                c.MoveMessage(first, "Dest"),
                c.MoveFile("INBOX/missing.txt", "Dest"),
                c.MoveFile("INBOX/moved.txt", "Dest"),
            )
        )
    )
    assert answer.first.tag == "MOVEITEMS"
    rows = list(answer.first)
    assert [r.tag for r in rows] == ["MOVEMESSAGE", "ERROR", "MOVEFILE"]
    assert etree.tostring(rows[0]) == (
        f'<MOVEMESSAGE MessageHandle="{first}" TargetFolder="Dest"/>'.encode()
    )
    assert rows[1].get("Command") == "MOVEFILE" and rows[1].get("Code") == "512"
    assert rows[1].get("Name") == "INBOX/missing.txt" and rows[1].get("TargetFolder") == "Dest"
    assert etree.tostring(rows[2]) == b'<MOVEFILE Name="INBOX/moved.txt" TargetFolder="Dest"/>'
    assert await xm.get(first) == mail("Batch move")
    assert set(await xm.headers("Dest")) == {first}
    assert set(await xm.file_rows("Dest")) == {"Dest/moved.txt"}
    assert await xm.listing("INBOX") == []

    answer = await xm.call(
        c.CopyItems(
            (
                c.CopyMessage(first, "INBOX"),
                c.CopyMessage(first, "Nowhere"),
                c.CopyFile("Dest/moved.txt", "INBOX"),
            )
        )
    )
    assert answer.first.tag == "COPYITEMS"
    rows = list(answer.first)
    assert [r.tag for r in rows] == ["COPYMESSAGE", "ERROR", "COPYFILE"]
    copy = int(rows[0].get("MessageHandle", "0"))
    assert copy not in (0, first) and rows[0].get("TargetFolder") == "INBOX"
    assert rows[1].get("Command") == "COPYMESSAGE" and rows[1].get("Code") == "512"
    assert rows[1].get("MessageHandle") == str(first)
    assert rows[1].get("TargetFolder") == "Nowhere"
    assert etree.tostring(rows[2]) == b'<COPYFILE Name="Dest/moved.txt" TargetFolder="INBOX"/>'
    assert await xm.get(copy) == mail("Batch move")
    assert await xm.get(first) == mail("Batch move")
    assert await xm.get_file("INBOX/moved.txt") == b"moved"
    assert await xm.get_file("Dest/moved.txt") == b"moved"
    assert len(await imap_messages(stack, xm.account, "INBOX")) == 2
    assert len(await imap_messages(stack, xm.account, "Dest")) == 2


# --- 4. a big binary file ----------------------------------------------------------------------


LOOKALIKE = b"\x00\r\n\x00{5}\r\n\x00<GETFILE/>\x00"


async def test_five_megabyte_binary_file_round_trips(xm: Xmap) -> None:
    buffer = bytearray(os.urandom(5 << 20))
    for offset in range(0, 5 << 20, 1 << 20):  # zero runs, and bytes that look like framing
        buffer[offset : offset + 1024] = b"\x00" * 1024
        buffer[offset + 4096 : offset + 4096 + len(LOOKALIKE)] = LOOKALIKE
    buffer[-3:] = b"\x00\x00\x00"
    data = bytes(buffer)
    assert len(data) == 5 << 20 and b"\x00" * 1024 in data
    answer = await xm.call(c.NewFileUpload("big.bin", "INBOX", data))
    assert answer.first.get("Name") == "INBOX/big.bin"
    assert (await xm.file_rows("INBOX"))["INBOX/big.bin"].get("Length") == str(len(data))
    got = await xm.get_file("INBOX/big.bin")
    assert len(got) == len(data) and got == data


# --- 7. handles across a restart, and handles of vanished messages -----------------------------


async def test_handles_survive_a_bridge_restart(
    xm: Xmap, settings: config.Settings, stack: devstack.DevStack
) -> None:
    handle = await xm.upload("INBOX", mail("Survives restart"))
    await xm.call(c.CreateFolder("Later"))
    moved = await xm.upload("INBOX", mail("Moved before restart"))
    await xm.call(c.MoveMessage(moved, "Later"))
    async with Bridge(settings) as second:
        assert second.xmap is not None
        client = await connect(second.xmap.port, xm.account)
        try:
            other = Xmap(client, xm.account)
            assert await other.get(handle) == mail("Survives restart")
            assert await other.get(moved) == mail("Moved before restart")
            assert set(await other.headers("INBOX")) == {handle}
        finally:
            await client.close()


async def test_a_message_expunged_elsewhere_answers_512(xm: Xmap, stack: devstack.DevStack) -> None:
    handle = await xm.upload("INBOX", mail("Expunged elsewhere"))
    assert await xm.get(handle) == mail("Expunged elsewhere")
    (stored,) = await imap_messages(stack, xm.account, "INBOX")
    await imap_expunge(stack, xm.account, "INBOX", stored.uid)
    answer = await xm.call(c.GetMessage(handle), check=False)
    assert answer.error is not None
    assert answer.error.get("Command") == "GETMESSAGE" and answer.error.get("Code") == "512"
    assert answer.error.get("Text") == f"message {handle} no longer exists"
    with pytest.raises(XmapFailed) as failed:
        await xm.call(c.MoveMessage(handle, "Trash"))
    assert failed.value.code == "512"


def _kick(stack: devstack.DevStack, account: devstack.Account) -> None:
    """Dovecot ends every IMAP connection of the account (as a restart would)."""
    done = subprocess.run(
        ["doveadm", "-c", str(stack.dovecot.conf_path), "kick", account.address],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_lost_imap_connections_are_opened_again(xm: Xmap, stack: devstack.DevStack) -> None:
    """The session keeps folders selected between commands; when the server ends those
    connections, the next command on each kind of thing (message, file, folder) still works."""
    await xm.call(c.CreateFolder("Box"))
    handle = await xm.upload("Box", mail("Before the kick"))
    await xm.call(c.NewFileUpload("kept.txt", "Box", b"kept"))
    assert await xm.get(handle) == mail("Before the kick")
    assert await xm.get_file("Box/kept.txt") == b"kept"

    await asyncio.to_thread(_kick, stack, xm.account)
    assert await xm.get(handle) == mail("Before the kick")
    await asyncio.to_thread(_kick, stack, xm.account)
    assert await xm.get_file("Box/kept.txt") == b"kept"
    await asyncio.to_thread(_kick, stack, xm.account)
    assert await xm.code_of(c.NewFileUpload("kept.txt", "Box", b"again")) == "513"
    await asyncio.to_thread(_kick, stack, xm.account)
    after = await xm.upload("Box", mail("After the kick"))
    assert await xm.get(after) == mail("After the kick")
    await asyncio.to_thread(_kick, stack, xm.account)
    assert (await xm.call(c.EmptyFolder("Box"))).first.tag == "EMPTYFOLDER"
    assert await imap_messages(stack, xm.account, "Box") == []


# --- 8. malformed blob framing -----------------------------------------------------------------

UPLOAD_FRAME = (
    b'<NEWFILEUPLOAD Name="x.bin" TargetFolder="INBOX"><?GOREALLYSLOW?></NEWFILEUPLOAD>\x00'
)


async def closed_by_server(client: XmapClient, timeout: float = 5.0) -> None:
    with pytest.raises((EOFError, ConnectionResetError)):
        await client.receive(timeout)


async def expect_error_then_close(client: XmapClient, code: str) -> None:
    started = time.monotonic()
    answer = await client.receive(5.0)
    assert answer.error is not None, shape(answer)
    assert answer.error.get("Code") == code and answer.error.get("Text")
    await closed_by_server(client)
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (b"{99999999999}\r\n", "552"),  # past max_message_bytes: refused before any data
        (b"{-5}\r\n", "501"),
        (b"{12a}\r\n", "501"),
        (b"{}\r\n", "501"),
    ],
)
async def test_bad_blob_lengths_get_an_error_and_the_connection_closes(
    xmap_port: int, fresh_account: devstack.Account, header: bytes, code: str
) -> None:
    client = await connect(xmap_port, fresh_account)
    try:
        await client.send_raw(UPLOAD_FRAME + header)
        await expect_error_then_close(client, code)
    finally:
        await client.close()


async def test_blob_longer_than_the_limit_is_refused_at_once(
    xmap_port: int, fresh_account: devstack.Account, settings: config.Settings
) -> None:
    client = await connect(xmap_port, fresh_account)
    try:
        # Only the length: the bridge refuses it without waiting for any data.
        await client.send_raw(UPLOAD_FRAME + b"{%d}\r\n" % (settings.limits.max_message_bytes + 1))
        await expect_error_then_close(client, "552")
    finally:
        await client.close()


async def test_half_close_inside_a_blob_ends_without_an_answer(
    xmap_port: int, fresh_account: devstack.Account
) -> None:
    client = await connect(xmap_port, fresh_account)
    try:
        await client.send_raw(UPLOAD_FRAME + b"{1000}\r\n" + b"only a little")
        client._writer.write_eof()
        started = time.monotonic()
        await closed_by_server(client)
        assert time.monotonic() - started < 5.0
    finally:
        await client.close()


async def test_a_frame_past_the_limit_without_a_zero_byte_is_refused(
    xmap_port: int, fresh_account: devstack.Account, settings: config.Settings
) -> None:
    client = await connect(xmap_port, fresh_account)
    try:
        # Exactly one byte too many: the bridge reads it all, so the close is not a reset.
        size = settings.limits.max_frame_bytes + 1
        await client.send_raw(b'<LISTFOLDER Name="' + b"a" * (size - 18))
        await expect_error_then_close(client, "552")
    finally:
        await client.close()
    # The bridge still serves new connections.
    again = await connect(xmap_port, fresh_account)
    try:
        assert (await again.call(c.ListAllFolders())).first.tag == "LISTALLFOLDERS"
    finally:
        await again.close()


async def test_the_bridge_serves_after_malformed_framing(
    xmap_port: int, fresh_account: devstack.Account
) -> None:
    for header in (b"{99999999999}\r\n", b"{-5}\r\n", b"{x}\r\n"):
        bad = await XmapClient.connect("127.0.0.1", xmap_port)
        try:
            await bad.send_raw(UPLOAD_FRAME + header)
            await expect_error_then_close(bad, "552" if b"9" in header else "501")
        finally:
            await bad.close()
    client = await connect(xmap_port, fresh_account)
    try:
        handle = await Xmap(client, fresh_account).upload("INBOX", mail("After the storm"))
        assert await Xmap(client, fresh_account).get(handle) == mail("After the storm")
    finally:
        await client.close()


async def test_pipelined_commands_and_malformed_xml_keep_the_connection(xm: Xmap) -> None:
    await xm.call(c.NewFileUpload("p.txt", "INBOX", b"pipelined"))
    # Three commands in one write: three answers, in order, the blob after its header.
    await xm.client.send_raw(
        b'<LISTFOLDER Name="INBOX"/>\x00<GETFILE Name="INBOX/p.txt"/>\x00<LISTALLFOLDERS/>\x00'
    )
    first, second, third = [await xm.client.receive() for _ in range(3)]
    assert first.first.tag == "LISTFOLDER" and first.blob is None
    assert second.first.tag == "GETFILE" and second.blob == b"pipelined"
    assert third.first.tag == "LISTALLFOLDERS"
    # XML that does not parse is answered (its blob read and dropped); the session goes on.
    await xm.client.send_raw(b'<GETFILE Name="x"\x00')
    answer = await xm.client.receive()
    assert shape(answer) == (
        b'<XMAPROOT><ERROR Command="GETFILE" Code="501" Text="malformed XML"/></XMAPROOT>'
    )
    await xm.client.send_raw(b'<NEWFILEUPLOAD Name="a" <?GOREALLYSLOW?>\x00{3}\r\nabc')
    answer = await xm.client.receive()
    assert answer.error is not None and answer.error.get("Code") == "501"
    await xm.client.send_raw(b'<!DOCTYPE x [<!ENTITY e "y">]><GETFILE Name="&e;"/>\x00')
    answer = await xm.client.receive()
    assert answer.error is not None and answer.error.get("Code") == "501"
    # The text's own upload shape (the element closed twice around the PI) is understood.
    await xm.client.send_raw(
        b'<NEWFILEUPLOAD Name="t.txt" TargetFolder="INBOX"/>\r\n<?GOREALLYSLOW?>\r\n'
        b"</NEWFILEUPLOAD>\x00{2}\r\nhi"
    )
    answer = await xm.client.receive()
    assert shape(answer) == b'<XMAPROOT><NEWFILEUPLOAD Name="INBOX/t.txt"/></XMAPROOT>'
    assert await xm.get_file("INBOX/t.txt") == b"hi"
    assert await xm.get_file("INBOX/p.txt") == b"pipelined"


# --- 9. error shapes ---------------------------------------------------------------------------


async def test_error_shapes(xm: Xmap) -> None:
    await xm.client.send_raw(b"<FOO/>\x00")
    unknown = await xm.client.receive()
    assert (
        shape(unknown)
        == b'<XMAPROOT><ERROR Command="FOO" Code="500" Text="unknown command"/></XMAPROOT>'
    )

    await xm.client.send_raw(b"<GETFILE/>\x00")
    missing = await xm.client.receive()
    assert missing.error is not None and list(missing.error.attrib) == ["Command", "Code", "Text"]
    assert missing.error.get("Command") == "GETFILE" and missing.error.get("Code") == "501"
    assert "Name" in (missing.error.get("Text") or "")

    await xm.client.send_raw(b'<GETMESSAGE MessageHandle="-1"/>\x00')
    bad_handle = await xm.client.receive()
    assert bad_handle.error is not None and bad_handle.error.get("Code") == "501"

    assert await xm.code_of(c.GetFile("INBOX/none.txt")) == "512"
    assert await xm.code_of(c.ListFolder("NoSuchFolder")) == "512"
    await xm.call(c.NewFileUpload("twice.txt", "INBOX", b"1"))
    assert await xm.code_of(c.NewFileUpload("twice.txt", "INBOX", b"2")) == "513"
    assert await xm.get_file("INBOX/twice.txt") == b"1"
    assert await xm.code_of(c.NewMessageUpload("NoSuchFolder", NOTHING, mail("x"))) == "512"
    assert await xm.code_of(c.NewFileUpload("f.txt", "NoSuchFolder", b"x")) == "512"
    handle = await xm.upload("INBOX", mail("Stays"))
    assert await xm.code_of(c.MoveMessage(handle, "NoSuchFolder")) == "512"
    assert await xm.code_of(c.MoveFile("INBOX/twice.txt", "NoSuchFolder")) == "512"
    assert await xm.code_of(c.GetMessage(99999999)) == "512"
    # After all of these the session is still fine.
    assert await xm.get(handle) == mail("Stays")


async def test_delete_folder_and_rename_file_extensions(xm: Xmap, stack: devstack.DevStack) -> None:
    """The two commands the text's MUST list needs and its 22 commands lack (lines 17 and 20)."""
    await xm.call(c.CreateFolder("Old"))
    await xm.call(c.CreateFolder("Old/Inner"))
    await xm.call(c.CreateFolder("Keep"))
    handle = await xm.upload("Old/Inner", mail("inside"))
    assert await xm.code_of(c.DeleteFolder("Old")) == "514"  # a whole tree is never removed
    answer = await xm.call(c.DeleteFolder("Old/Inner"))
    assert shape(answer) == b'<XMAPROOT><DELETEFOLDER Name="Old/Inner"/></XMAPROOT>'
    folders = [f.get("Name") for f in (await xm.call(c.ListAllFolders())).first]
    assert "Old/Inner" not in folders and "Old" in folders
    assert await xm.code_of(c.GetMessage(handle)) == "512"
    assert await xm.code_of(c.DeleteFolder("Nowhere")) == "512"

    data = os.urandom(4000) + b"\x00" * 50
    await xm.call(c.NewFileUpload("draft.bin", "Old", data))
    await xm.call(c.NewFileUpload("taken.bin", "Keep", b"other"))
    renamed = await xm.call(c.RenameFile("Old/draft.bin", "Old/final.bin"))
    assert shape(renamed) == b'<XMAPROOT><RENAMEFILE Name="Old/final.bin"/></XMAPROOT>'
    assert await xm.get_file("Old/final.bin") == data
    assert await xm.code_of(c.GetFile("Old/draft.bin")) == "512"
    assert await xm.code_of(c.RenameFile("Old/final.bin", "Keep/taken.bin")) == "513"
    await xm.call(c.RenameFile("Old/final.bin", "Keep/moved.bin"))  # into another folder
    assert await xm.get_file("Keep/moved.bin") == data
    assert list(await xm.file_rows("Old")) == []
    assert sorted(await xm.file_rows("Keep")) == ["Keep/moved.bin", "Keep/taken.bin"]
    assert len(await imap_messages(stack, xm.account, "Keep")) == 2


def _imap_append(
    port: int, account: devstack.Account, mailbox: str, flags: str, raw: bytes
) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        status, _ = imap.append(f'"{mailbox}"', flags, None, raw)
        assert status == "OK"
    finally:
        imap.logout()


async def test_a_mail_posing_as_a_file_stays_a_message(xm: Xmap, stack: devstack.DevStack) -> None:
    """Anyone can send a mail with an X-XMAP-File header; only the keyword the bridge sets makes
    a stored message a file, so a spoofed one neither hides nor replaces the user's file."""
    await xm.call(c.CreateFolder("Docs"))
    await xm.call(c.NewFileUpload("report.pdf", "Docs", b"the real report"))
    spoof = mail("report", extra="X-XMAP-File: report.pdf\r\nX-XMAP-File-Length: 9\r\n")
    await asyncio.to_thread(_imap_append, stack.ports.imap, xm.account, "Docs", "", spoof)
    assert await xm.get_file("Docs/report.pdf") == b"the real report"
    rows = await xm.listing("Docs")
    assert sorted(r.tag for r in rows) == ["FILEHEADER", "MESSAGEHEADER"]
    await xm.call(c.DeleteFile("Docs/report.pdf"))
    assert [r.tag for r in await xm.listing("Docs")] == ["MESSAGEHEADER"]
    assert await xm.code_of(c.GetFile("Docs/report.pdf")) == "512"


async def test_a_name_stored_twice_at_once_leaves_one_file(
    xm: Xmap, stack: devstack.DevStack
) -> None:
    """Two sessions storing one name at the same moment leave two copies; the next store of the
    name keeps only itself, and DELETEFILE removes every copy (none comes back)."""
    await xm.call(c.CreateFolder("Docs"))
    await xm.call(c.NewFileUpload("a.txt", "Docs", b"first"))
    # What a concurrent session's store leaves: a second copy of the same name, as we store it.
    twin = files.compose("a.txt", b"second", owner=xm.account.address)
    await asyncio.to_thread(
        _imap_append, stack.ports.imap, xm.account, "Docs", f"(\\Seen {files.FILE_KEYWORD})", twin
    )
    assert await xm.get_file("Docs/a.txt") == b"second"  # the newest wins
    await xm.call(c.UpdateFileUpload("Docs/a.txt", None, b"third"))
    assert len(await imap_messages(stack, xm.account, "Docs")) == 1
    await asyncio.to_thread(
        _imap_append, stack.ports.imap, xm.account, "Docs", f"(\\Seen {files.FILE_KEYWORD})", twin
    )
    await xm.call(c.DeleteFile("Docs/a.txt"))
    assert await imap_messages(stack, xm.account, "Docs") == []


async def test_one_open_mailbox_is_enough(
    settings: config.Settings, fresh_account: devstack.Account
) -> None:
    """A command using two folders keeps both open even when the pool's size is one."""
    xmap = dataclasses.replace(settings.xmap, open_mailboxes=1)
    async with Bridge(dataclasses.replace(settings, xmap=xmap)) as bridge:
        assert bridge.xmap is not None
        client = await connect(bridge.xmap.port, fresh_account)
        try:
            one = Xmap(client, fresh_account)
            await one.call(c.CreateFolder("A"))
            await one.call(c.CreateFolder("B"))
            handle = await one.upload("A", mail("moving"))
            await one.call(c.MoveMessage(handle, "B"))
            copied = await one.call(c.CopyMessage(handle, "A"))
            assert await one.get(int(copied.first.get("MessageHandle", "0"))) == mail("moving")
            await one.call(c.NewFileUpload("f.bin", "A", b"\x00file"))
            await one.call(c.CopyFile("A/f.bin", "B"))
            await one.call(c.RenameFile("B/f.bin", "A/g.bin"))
            assert await one.get_file("A/g.bin") == b"\x00file"
            assert sorted(await one.file_rows("A")) == ["A/f.bin", "A/g.bin"]
        finally:
            await client.close()
