"""XMAP and XIMSS on one account (the same IMAP mailboxes, the same handles), and XMAP SENDMAIL
through the real Postfix to another account's INBOX."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import imaplib
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest
from lxml import etree

from bridge import xml
from bridge.client import XimssClient
from bridge.xmap import commands as c
from bridge.xmap.flags import XmapFlag
from tests.conftest import devstack
from tests.e2e.folderkit import ClientView, call, fields, index_range, uids
from tests.e2e.test_xmap import Xmap, connect, imap_messages, mail, shape

Both = tuple[Xmap, XimssClient, devstack.Account]


@pytest.fixture
async def both(
    xmap_port: int, bridge_port: int, fresh_account: devstack.Account
) -> AsyncIterator[Both]:
    xmap_client = await connect(xmap_port, fresh_account)
    ximss = await XimssClient.connect("127.0.0.1", bridge_port)
    await ximss.login(fresh_account.address, fresh_account.password)
    yield Xmap(xmap_client, fresh_account), ximss, fresh_account
    await ximss.close()
    await xmap_client.close()


@pytest.fixture
async def xm(xmap_port: int, fresh_account: devstack.Account) -> AsyncIterator[Xmap]:
    client = await connect(xmap_port, fresh_account)
    yield Xmap(client, fresh_account)
    await client.close()


async def browse(ximss: XimssClient, mailbox: str) -> list[etree._Element]:
    """folderOpen + folderBrowse of a whole mailbox: its folderReports (UID, From, Subject)."""
    view = ClientView(ximss, mailbox)
    await view.open(mailbox, *fields("From", "Subject"))
    reports: list[etree._Element] = []
    if view.uids:
        reply = await call(ximss, "folderBrowse", {"folder": mailbox},
                           index_range(0, len(view.uids) - 1))  # fmt: skip
        reports = reply.of("folderReport")
    await call(ximss, "folderClose", {"folder": mailbox})
    return reports


# --- 5. interop with XIMSS ---------------------------------------------------------------------


async def test_xmap_upload_shows_in_ximss_and_ximss_append_shows_in_xmap(both: Both) -> None:
    xm, ximss, account = both
    handle = await xm.upload("INBOX", mail("From XMAP", sender="Alice Archer <alice@example.org>"))
    (report,) = await browse(ximss, "INBOX")
    assert report.findtext("Subject") == "From XMAP"
    sender = report.find("From")
    assert sender is not None and "Alice Archer" in "".join(sender.itertext())

    body = xml.parse(
        (
            f'<EMail><From realName="Bob Baker">bob@example.org</From>'
            f"<Subject>From XIMSS</Subject><To>{account.address}</To>"
            '<MIME type="text" subtype="plain">Appended by XIMSS.&#x0A;</MIME></EMail>'
        ).encode(),
        64,
    )
    await call(ximss, "messageAppend", {"targetMailbox": "INBOX", "flags": "Seen"}, body)
    rows = await xm.headers("INBOX")
    assert handle in rows and len(rows) == 2
    (appended,) = [row for h, row in rows.items() if h != handle]
    assert appended.get("MessageSubject") == "From XIMSS"
    # The header as XIMSS composed it, decoded: the real name (quoted or not) and the address.
    assert email.utils.parseaddr(appended.get("MessageFrom", "")) == (
        "Bob Baker",
        "bob@example.org",
    )
    assert appended.get("MessageTo") == account.address
    assert appended.get("MessageFlags") == "READ"
    raw = await xm.get(int(appended.get("MessageHandle", "0")))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "From XIMSS"
    assert isinstance(parsed, EmailMessage)
    content = parsed.get_body(("plain",))
    assert content is not None and "Appended by XIMSS." in str(content.get_content())


async def test_ximss_message_move_keeps_the_xmap_handle(
    both: Both, stack: devstack.DevStack
) -> None:
    xm, ximss, account = both
    await xm.call(c.CreateFolder("Filed"))
    handle = await xm.upload("INBOX", mail("Filed by XIMSS"))
    other = await xm.upload("INBOX", mail("Stays in INBOX"))
    # The XMAP session has INBOX selected (the uploads): the move happens behind its back.
    assert set(await xm.headers("INBOX")) == {handle, other}

    view = ClientView(ximss, "INBOX")
    await view.open("INBOX", *fields("Subject"))
    reply = await call(ximss, "folderBrowse", {"folder": "INBOX"}, index_range(0, 1))
    by_subject = {r.findtext("Subject"): r.get("UID", "") for r in reply.of("folderReport")}
    uid = int(by_subject["Filed by XIMSS"])
    await call(ximss, "messageMove", {"folder": "INBOX", "targetMailbox": "Filed"}, *uids(uid))
    assert [m.raw for m in await imap_messages(stack, account, "Filed")] == [mail("Filed by XIMSS")]

    # The old handle reaches the message in its new folder, and the listing shows it there.
    assert await xm.get(handle) == mail("Filed by XIMSS")
    assert set(await xm.headers("Filed")) == {handle}
    assert set(await xm.headers("INBOX")) == {other}
    # XMAP can go on working with it: move it back.
    await xm.call(c.MoveMessage(handle, "INBOX"))
    assert await xm.get(handle) == mail("Filed by XIMSS")


async def test_ximss_mailbox_rename_keeps_xmap_handles(
    both: Both, stack: devstack.DevStack
) -> None:
    xm, ximss, _ = both
    await xm.call(c.CreateFolder("Old"))
    await xm.call(c.CreateFolder("Old/Inner"))
    top = await xm.upload("Old", mail("Top of old"))
    inner = await xm.upload("Old/Inner", mail("Inner of old"))
    assert await xm.get(top) == mail("Top of old")  # Old stays selected in the XMAP session

    await ximss.call("mailboxRename", {"mailbox": "Old", "newName": "New", "children": ""})
    assert await xm.get(top) == mail("Top of old")
    assert await xm.get(inner) == mail("Inner of old")
    assert set(await xm.headers("New")) == {top}
    assert set(await xm.headers("New/Inner")) == {inner}
    assert await xm.code_of(c.ListFolder("Old")) == "512"
    (report,) = await browse(ximss, "New")
    assert report.findtext("Subject") == "Top of old"


# --- 6. SENDMAIL -------------------------------------------------------------------------------


def _inbox(port: int, account: devstack.Account, mailbox: str) -> list[EmailMessage]:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        if imap.select(f'"{mailbox}"', readonly=True)[0] != "OK":
            return []
        _, data = imap.uid("SEARCH", "ALL")
        found: list[EmailMessage] = []
        for uid in (data[0] or b"").split():
            _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found
    finally:
        imap.logout()


async def wait_for(stack: devstack.DevStack, account: devstack.Account, subject: str,
                   mailbox: str = "INBOX", timeout: float = 15.0) -> EmailMessage:  # fmt: skip
    """Poll the account's mailbox over IMAP until a message with this subject arrives."""
    deadline = time.monotonic() + timeout
    while True:
        for message in await asyncio.to_thread(_inbox, stack.ports.imap, account, mailbox):
            if str(message.get("Subject", "")) == subject:
                return message
        if time.monotonic() > deadline:
            raise AssertionError(f"no message {subject!r} in {account.address}/{mailbox}")
        await asyncio.sleep(0.2)


def outgoing(sender: devstack.Account, to: devstack.Account, subject: str,
             bcc: devstack.Account | None = None) -> bytes:  # fmt: skip
    extra = f"Bcc: {bcc.address}\r\n" if bcc is not None else ""
    return mail(subject, sender=f"Sender <{sender.address}>", to=to.address, extra=extra,
                body="Sent through XMAP.\r\n")  # fmt: skip


async def test_sendmail_delivers_and_keeps_a_copy_with_bcc(
    xm: Xmap, stack: devstack.DevStack
) -> None:
    recipient, hidden = stack.new_account("rcpt"), stack.new_account("bcc")
    raw = outgoing(xm.account, recipient, "XMAP sendmail with copy", bcc=hidden)
    answer = await xm.call(c.SendMail(None, "Sent", raw))
    assert answer.first.tag == "SENDMAIL" and list(answer.first.attrib) == ["MessageHandle"]
    copy = int(answer.first.get("MessageHandle", "0"))
    assert copy > 0
    assert shape(answer) == f'<XMAPROOT><SENDMAIL MessageHandle="{copy}"/></XMAPROOT>'.encode()

    delivered = await wait_for(stack, recipient, "XMAP sendmail with copy")
    assert "Bcc" not in delivered
    assert delivered["Message-ID"] == email.message_from_bytes(raw)["Message-ID"]
    assert "Sent through XMAP." in str(delivered.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    secret = await wait_for(stack, hidden, "XMAP sendmail with copy")
    assert "Bcc" not in secret

    # The copy in Sent is the message as written, Bcc included, and its handle works.
    assert await xm.get(copy) == raw
    kept = email.message_from_bytes(await xm.get(copy))
    assert kept["Bcc"] == hidden.address
    rows = await xm.headers("Sent")
    assert set(rows) == {copy} and rows[copy].get("MessageFlags") == "READ"
    (stored,) = await imap_messages(stack, xm.account, "Sent")
    assert stored.raw == raw and "\\Seen" in stored.flags


async def test_sendmail_of_a_draft_deletes_the_draft(xm: Xmap, stack: devstack.DevStack) -> None:
    recipient = stack.new_account("rcpt")
    draft = outgoing(xm.account, recipient, "XMAP draft sent")
    handle = await xm.upload("Drafts", draft, frozenset({XmapFlag.DRAFT}))
    assert (await xm.headers("Drafts"))[handle].get("MessageFlags") == "DRAFT"
    answer = await xm.call(c.SendMail(handle, "Sent", draft))
    copy = int(answer.first.get("MessageHandle", "0"))
    assert copy not in (0, handle)
    await wait_for(stack, recipient, "XMAP draft sent")
    assert await xm.code_of(c.GetMessage(handle)) == "512"
    assert await imap_messages(stack, xm.account, "Drafts") == []
    assert await xm.headers("Drafts") == {}
    assert await xm.get(copy) == draft


async def test_sendmail_without_target_folder_answers_no_handle(
    xm: Xmap, stack: devstack.DevStack
) -> None:
    recipient = stack.new_account("rcpt")
    raw = outgoing(xm.account, recipient, "XMAP sendmail no copy")
    answer = await xm.call(c.SendMail(None, None, raw))
    assert shape(answer) == b"<XMAPROOT><SENDMAIL/></XMAPROOT>"
    await wait_for(stack, recipient, "XMAP sendmail no copy")
    assert await imap_messages(stack, xm.account, "Sent") == []


async def test_sendmail_refusals(xm: Xmap, stack: devstack.DevStack) -> None:
    recipient = stack.new_account("rcpt")
    nobody = b"From: Sender <s@example.org>\r\nSubject: Nobody\r\n\r\nno recipients\r\n"
    assert await xm.code_of(c.SendMail(None, "Sent", nobody)) == "501"
    raw = outgoing(xm.account, recipient, "XMAP refused send")
    assert await xm.code_of(c.SendMail(None, "NoSuchFolder", raw)) == "512"
    assert await xm.code_of(c.SendMail(987654, "Sent", raw)) == "512"
    # Nothing was sent or stored by any of these.
    await asyncio.sleep(1.0)
    assert await asyncio.to_thread(_inbox, stack.ports.imap, recipient, "INBOX") == []
    assert await imap_messages(stack, xm.account, "Sent") == []


async def test_sendmail_answers_sent_even_when_the_copy_cannot_be_stored(
    xmap_port: int, stack: devstack.DevStack
) -> None:
    """Once the server took the mail the answer is success: a copy refused afterwards (here over
    quota) is logged, and the draft stays rather than the user having neither."""
    sender, recipient = stack.new_account("quota"), stack.new_account("rcpt")
    stack.set_quota(sender.address, 4096)  # room for the draft, not for a second copy
    client = await connect(xmap_port, sender)
    try:
        xm = Xmap(client, sender)
        draft = outgoing(sender, recipient, "XMAP sent over quota").replace(
            b"Sent through XMAP.\r\n", b"x" * 2500 + b"\r\n"
        )
        handle = await xm.upload("Drafts", draft, frozenset({XmapFlag.DRAFT}))
        answer = await xm.call(c.SendMail(handle, "Sent", draft))
        assert shape(answer) == b"<XMAPROOT><SENDMAIL/></XMAPROOT>"
        await wait_for(stack, recipient, "XMAP sent over quota")
        assert await xm.get(handle) == draft  # the draft is kept: no copy was stored
        assert await imap_messages(stack, sender, "Sent") == []
    finally:
        await client.close()
