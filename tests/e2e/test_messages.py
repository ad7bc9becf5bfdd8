"""Message operations end to end: compose into IMAP, read back, submit through Postfix to
Dovecot, redirect, forward, confirm, contacts. Messages are compared structurally (headers,
part tree, decoded bodies), as the spec's examples show them."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from lxml import etree

from bridge import xml
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.folderkit import call, request
from tests.e2e.httpcheck import curl
from tests.unit.test_vcard_xcal import SPEC_CONTACT

People = tuple[XimssClient, devstack.Account, devstack.Account]


@pytest.fixture
async def people(bridge_port: int, stack: devstack.DevStack) -> AsyncIterator[People]:
    sender, recipient = stack.new_account("sender"), stack.new_account("rcpt")
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    await client.login(sender.address, sender.password)
    yield client, sender, recipient
    await client.close()


def email_xml(text: str) -> etree._Element:
    return xml.parse(text.encode(), 64)


def imap_messages(port: int, account: devstack.Account, mailbox: str) -> list[EmailMessage]:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        status, _ = imap.select(f'"{mailbox}"')
        if status != "OK":
            return []
        _, data = imap.uid("SEARCH", "ALL")
        found = []
        for uid in (data[0] or b"").split():
            _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            found.append(email.message_from_bytes(raw, policy=email.policy.default))
        return found  # type: ignore[return-value]
    finally:
        imap.logout()


async def wait_for(port: int, account: devstack.Account, mailbox: str, subject: str,
                   timeout: float = 10.0) -> EmailMessage:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        for message in await asyncio.to_thread(imap_messages, port, account, mailbox):
            if subject in str(message.get("Subject", "")):
                return message
        if time.monotonic() > deadline:
            raise AssertionError(f"no message {subject!r} in {account.address}/{mailbox}")
        await asyncio.sleep(0.2)


def text_of(message: Message) -> str:
    part = message.get_body(("plain",)) if isinstance(message, EmailMessage) else message
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[union-attr]


SIMPLE = """<EMail>
  <From realName="Sender Name">{sender}</From><Subject>I'll be there! {tag}</Subject>
  <To realName="Recipient Name">{to}</To><X-Mailer>SuperClient v7.77</X-Mailer>
  <MIME type="text" subtype="plain">Dear Susan,&#x0A;&#x0A;I will come to your place tomorrow, thank you for the invitation!&#x0A;Mary.&#x0A;</MIME>
</EMail>"""
BODY = "Dear Susan,\n\nI will come to your place tomorrow, thank you for the invitation!\nMary.\n"


async def test_append_a_simple_text_message_and_read_it_back(
    people: People, stack: devstack.DevStack
) -> None:
    client, sender, recipient = people
    body = email_xml(SIMPLE.format(sender=sender.address, to=recipient.address, tag="A"))
    await call(client, "messageAppend", {"targetMailbox": "Sent", "flags": "Seen,Answered",
                                         "mailboxClass": ""}, body)  # fmt: skip
    stored = await wait_for(stack.ports.imap, sender, "Sent", "I'll be there! A")
    assert stored["From"] == f'"Sender Name" <{sender.address}>' or str(stored["From"]) == (
        f"Sender Name <{sender.address}>"
    )
    assert stored["X-Mailer"] == "SuperClient v7.77"
    assert stored["Message-ID"] and stored["Date"]
    assert stored.get_content_type() == "text/plain"
    assert stored.get_content_charset() == "utf-8"
    assert text_of(stored) == BODY
    # folderRead renders it; the rendering can be composed again into the same content.
    await call(client, "folderOpen", {"folder": "Sent", "mailbox": "Sent"})
    browse = await call(client, "folderBrowse", {"folder": "Sent"},
                        request("index", {"from": "0", "till": "0"}))  # fmt: skip
    uid = browse.of("folderReport")[0].get("UID")
    read = await call(client, "folderRead", {"folder": "Sent", "UID": uid or ""})
    (shown,) = read.of("folderMessage")
    assert shown.get("UID") == uid
    rendered = shown.find("EMail")
    assert rendered is not None
    assert rendered.findtext("Subject") == "I'll be there! A"
    sender_element = rendered.find("From")
    assert sender_element is not None and sender_element.get("realName") == "Sender Name"
    assert (sender_element.text or "").strip() == sender.address
    mime = rendered.find("MIME")
    assert mime is not None and (mime.get("type"), mime.get("subtype")) == ("text", "plain")
    assert (mime.text or "") == BODY
    again = etree.fromstring(etree.tostring(rendered))
    again.find("Subject").text = "Round trip A"  # type: ignore[union-attr]
    await call(client, "messageAppend", {"targetMailbox": "Sent"}, again)
    copy = await wait_for(stack.ports.imap, sender, "Sent", "Round trip A")
    assert text_of(copy) == BODY and copy["X-Mailer"] == "SuperClient v7.77"


async def test_multipart_with_uploads_replaces_and_reports(
    people: People, stack: devstack.DevStack, http_url: str, tmp_path: Path
) -> None:
    client, sender, _ = people
    session_id = client.session.get("urlID") if client.session is not None else ""
    gif, pdf = tmp_path / "test.gif", tmp_path / "sample.pdf"
    gif.write_bytes(b"GIF89a" + bytes(range(256)) * 4)
    pdf.write_bytes(b"%PDF-1.4\n" + b"x" * 3000)
    await curl(
        "-F", f"fileData=@{gif};type=image/gif", f"{http_url}/Session/{session_id}/UPLOAD/att01"
    )
    await curl("-F", f"fileData=@{pdf}", f"{http_url}/Session/{session_id}/UPLOAD/att02")
    await call(client, "mailboxCreate", {"mailbox": "Drafts"})
    await call(client, "folderOpen", {"folder": "Drafts", "mailbox": "Drafts"})
    first = email_xml(SIMPLE.format(sender=sender.address, to="x@example.test", tag="old draft"))
    reply = await call(client, "messageAppend", {"folder": "Drafts", "report": "uid"}, first)
    (added,) = reply.of("messageAdded")
    old_uid = added.get("UID") or ""
    body = email_xml(f"""<EMail>
      <From realName="Sender Name">{sender.address}</From><Subject>Text with attachments</Subject>
      <To realName="Recipient Name">toName@example.test</To><X-Mailer>SuperClient v7.77</X-Mailer>
      <MIME type="multipart" subtype="mixed">
        <MIME type="multipart" subtype="alternative">
          <MIME type="text" subtype="plain">Dear Susan,&#x0A;Mary.&#x0A;</MIME>
          <MIME type="text" subtype="html">&lt;html&gt;&lt;body&gt;&lt;i&gt;Dear Susan,&lt;/i&gt;</MIME>
        </MIME>
        <MIME uploadID="att01" />
        <MIME uploadID="att02" type="application" subtype="pdf" />
      </MIME>
    </EMail>""")
    reply = await call(client, "messageAppend", {"folder": "Drafts", "flags": "Draft",
                                                 "replacesUID": old_uid, "report": "uid"}, body)  # fmt: skip
    (added,) = reply.of("messageAdded")
    assert added.get("folder") == "Drafts" and int(added.get("UID") or 0) > int(old_uid)
    stored = await asyncio.to_thread(imap_messages, stack.ports.imap, sender, "Drafts")
    assert [str(m["Subject"]) for m in stored] == ["Text with attachments"]
    (message,) = stored
    assert message.get_content_type() == "multipart/mixed"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "multipart/alternative", "image/gif", "application/pdf"
    ]  # fmt: skip
    assert [p.get_content_type() for p in parts[0].iter_parts()] == ["text/plain", "text/html"]
    assert parts[1].get_filename() == "test.gif" and parts[2].get_filename() == "sample.pdf"
    assert parts[1].get_content() == gif.read_bytes()
    assert parts[2].get_content() == pdf.read_bytes()
    # copyMIME: parts 2 and 3 of that message into a note.
    note = email_xml(f"""<EMail>
      <From realName="Sender Name">{sender.address}</From><Subject>Vacation Pictures</Subject>
      <MIME type="multipart" subtype="mixed">
        <MIME type="text" subtype="plain">The first part of the underwater shots.</MIME>
        <copyMIME folder="Drafts" UID="{added.get("UID")}" partID="2"/>
        <copyMIME folder="Drafts" UID="{added.get("UID")}" partID="3"/>
      </MIME>
    </EMail>""")
    await call(client, "messageAppend", {"targetMailbox": "Notes", "flags": "Seen",
                                         "mailboxClass": ""}, note)  # fmt: skip
    copied = await wait_for(stack.ports.imap, sender, "Notes", "Vacation Pictures")
    kinds = [p.get_content_type() for p in copied.iter_parts()]
    assert kinds == ["text/plain", "image/gif", "application/pdf"]
    assert list(copied.iter_parts())[1].get_content() == gif.read_bytes()
    # folderRead shows the binary parts as metadata with partIDs.
    read = await call(client, "folderRead", {"folder": "Drafts", "UID": added.get("UID") or ""})
    (shown,) = read.of("folderMessage")
    leaves = [m for m in shown.iter("MIME") if m.get("type") != "multipart"]
    assert [(m.get("type"), m.get("subtype"), m.get("partID")) for m in leaves] == [
        ("text", "plain", "1.1"), ("text", "html", "1.2"), ("image", "gif", "2"),
        ("application", "pdf", "3"),
    ]  # fmt: skip


async def test_flowed_text(people: People, stack: devstack.DevStack) -> None:
    client, _, _ = people
    line = ("This is a very long long long long long long long long long long superlong long long "
            "long long long long line, followed with a shorter line:")  # fmt: skip
    body = email_xml(f"""<EMail><Subject>Test text flowed</Subject>
      <MIME type="text" subtype="plain" format="flowed">{line}&#x0A;This is a shorter line.</MIME>
    </EMail>""")
    await call(client, "messageAppend", {"targetMailbox": "Notes", "flags": "Seen",
                                         "mailboxClass": ""}, body)  # fmt: skip
    stored = await wait_for(stack.ports.imap, people[1], "Notes", "Test text flowed")
    assert stored.get_param("format") == "flowed"
    raw_lines = stored.get_payload(decode=True).decode().split("\r\n")  # type: ignore[union-attr]
    assert all(len(raw) <= 78 for raw in raw_lines)
    assert raw_lines[0].endswith(" ")  # a soft break
    # Read back through the bridge: the flowed lines are joined again.
    await call(client, "folderOpen", {"folder": "Notes", "mailbox": "Notes"})
    found = await call(client, "folderBrowse", {"folder": "Notes"},
                       request("index", {"from": "0", "till": "99"}))  # fmt: skip
    uids = [r.get("UID") or "" for r in found.of("folderReport")]
    texts = []
    for uid in uids:
        read = await call(client, "folderRead", {"folder": "Notes", "UID": uid})
        texts.append(read.of("folderMessage")[0].findtext("EMail/MIME") or "")
    assert any(text.startswith(line + "\nThis is a shorter line.") for text in texts), texts


async def test_submit_with_bcc_and_a_delivery_report(
    people: People, stack: devstack.DevStack
) -> None:
    client, sender, recipient = people
    hidden = stack.new_account("bcc")
    body = email_xml(f"""<EMail>
      <From realName="Sender Name">{sender.address}</From><Subject>Submitted with Bcc</Subject>
      <To realName="Recipient Name">{recipient.address}</To><X-Mailer>SuperClient v7.77</X-Mailer>
      <Bcc>{hidden.address}</Bcc>
      <MIME type="text" subtype="plain">{BODY.replace(chr(10), "&#x0A;")}</MIME>
    </EMail>""")
    await call(client, "messageSubmit", {"useDSN": "yes"}, body)
    delivered = await wait_for(stack.ports.imap, recipient, "INBOX", "Submitted with Bcc")
    assert "Bcc" not in delivered and text_of(delivered) == BODY
    secret = await wait_for(stack.ports.imap, hidden, "INBOX", "Submitted with Bcc")
    assert "Bcc" not in secret
    report = await wait_for_report(stack, sender)
    assert report.get_content_type() == "multipart/report"


async def wait_for_report(stack: devstack.DevStack, account: devstack.Account) -> EmailMessage:
    deadline = time.monotonic() + 15
    while True:
        for message in await asyncio.to_thread(imap_messages, stack.ports.imap, account, "INBOX"):
            if message.get_content_type() == "multipart/report":
                return message
        if time.monotonic() > deadline:
            raise AssertionError("no delivery report arrived")
        await asyncio.sleep(0.3)


async def test_submit_to_envelope_addresses_with_a_sent_copy(
    people: People, stack: devstack.DevStack
) -> None:
    client, sender, recipient = people
    other = stack.new_account("env")
    body = xml.element("EMail")
    xml.sub(body, "From", {"realName": "Sender Name"}, sender.address)
    xml.sub(body, "Subject", None, "Envelope only")
    xml.sub(body, "To", {"realName": "Recipient Name"}, "shown-only@example.test")
    xml.sub(body, "Cc", None, "cc-shown-only@example.test")
    xml.sub(body, "MIME", {"type": "text", "subtype": "plain"}, "Hello")
    await call(client, "messageSubmit", {"targetMailbox": "Sent Items", "flags": "Seen"},
               xml.element("Envelope-To", text=recipient.address),
               xml.element("Envelope-To", text=other.address), body)  # fmt: skip
    for account in (recipient, other):
        got = await wait_for(stack.ports.imap, account, "INBOX", "Envelope only")
        assert got["To"] == '"Recipient Name" <shown-only@example.test>' or "shown-only" in str(
            got["To"]
        )
    sent = await wait_for(stack.ports.imap, sender, "Sent Items", "Envelope only")
    assert text_of(sent).strip() == "Hello"


async def test_refused_recipient_is_named_and_nothing_is_stored(
    people: People, stack: devstack.DevStack
) -> None:
    client, sender, recipient = people
    body = xml.element("EMail")
    xml.sub(body, "From", None, sender.address)
    xml.sub(body, "Subject", None, "Never sent")
    xml.sub(body, "To", None, recipient.address)
    xml.sub(body, "Cc", None, "nobody-here@example.test")
    xml.sub(body, "MIME", {"type": "text", "subtype": "plain"}, "x")
    submit = request("messageSubmit", {"id": client.next_id(), "targetMailbox": "Sent"}, body)
    reply = await client.send(submit)
    assert not reply.ok
    assert "nobody-here@example.test" in (reply.response.get("errorText") or "")
    await asyncio.sleep(1.0)
    subjects = [str(m["Subject"]) for m in
                await asyncio.to_thread(imap_messages, stack.ports.imap, sender, "Sent")]  # fmt: skip
    assert "Never sent" not in subjects
    inbox = await asyncio.to_thread(imap_messages, stack.ports.imap, recipient, "INBOX")
    assert "Never sent" not in [str(m["Subject"]) for m in inbox]


async def test_forward_redirect_and_confirm(people: People, stack: devstack.DevStack) -> None:
    client, sender, recipient = people
    # A message in the sender's INBOX that asks for a read confirmation.
    original = (
        f"From: Barbara Smith <{recipient.address}>\r\nTo: {sender.address}\r\n"
        "Subject: Sorry, I cannot make it :-(\r\nDate: Wed, 21 Jun 2006 21:51:24 -0800\r\n"
        "Message-ID: <zzzzzzzzz@other.server.dom>\r\n"
        f"Disposition-Notification-To: {recipient.address}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nMary,\r\n\r\nI will be out of town.\r\n"
    ).encode()
    await asyncio.to_thread(_append, stack.ports.imap, sender, original)
    await call(client, "folderOpen", {"folder": "INBOX", "mailbox": "INBOX"},
               xml.element("field", text="FLAGS"))  # fmt: skip
    found = await call(client, "folderBrowse", {"folder": "INBOX"},
                       request("index", {"from": "0", "till": "0"}))  # fmt: skip
    uid = found.of("folderReport")[0].get("UID") or ""
    # Forward with copyMIME: the message goes as a message/rfc822 part.
    forward = email_xml(f"""<EMail>
      <From realName="Sender Name">{sender.address}</From>
      <Subject>Fwd: Sorry, I cannot make it :-(</Subject>
      <To realName="Recipient Name">{recipient.address}</To>
      <MIME type="multipart" subtype="mixed">
        <MIME type="text" subtype="plain">Attached please find the message I received.</MIME>
        <copyMIME folder="INBOX" UID="{uid}" />
      </MIME>
    </EMail>""")
    await call(client, "messageSubmit", {}, forward)
    got = await wait_for(stack.ports.imap, recipient, "INBOX", "Fwd: Sorry")
    attached = [p for p in got.iter_parts() if p.get_content_type() == "message/rfc822"]
    assert len(attached) == 1
    assert "I will be out of town." in attached[0].as_string()
    # messageForward (the server composes) and messageRedirect (Resent-* on top).
    await call(client, "messageForward", {"folder": "INBOX", "UID": uid},
               xml.element("To", {"realName": "R"}, recipient.address))  # fmt: skip
    await call(client, "messageRedirect", {"folder": "INBOX", "UID": uid},
               xml.element("To", {"realName": "R"}, recipient.address))  # fmt: skip
    redirected = await wait_for_header(stack, recipient, "Resent-From")
    assert redirected["Message-ID"] == "<zzzzzzzzz@other.server.dom>"
    assert "I will be out of town." in text_of(redirected)
    # messageConfirm: an MDN to the address asked, once ($MDNSent).
    await call(client, "messageConfirm", {"folder": "INBOX", "UID": uid, "type": "manual"})
    await call(client, "messageConfirm", {"folder": "INBOX", "UID": uid, "type": "manual"})
    await asyncio.sleep(1.5)
    inbox = await asyncio.to_thread(imap_messages, stack.ports.imap, recipient, "INBOX")
    mdns = [m for m in inbox if m.get_content_type() == "multipart/report"
            and m.get_param("report-type") == "disposition-notification"]  # fmt: skip
    assert len(mdns) == 1
    await call(client, "folderSync", {"folder": "INBOX"})
    again = await call(client, "folderBrowse", {"folder": "INBOX"},
                       request("index", {"from": "0", "till": "0"}))  # fmt: skip
    assert "MDNSent" in (again.of("folderReport")[0].findtext("FLAGS") or "").split(",")


async def wait_for_header(stack: devstack.DevStack, account: devstack.Account,
                          header: str) -> EmailMessage:  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        for message in await asyncio.to_thread(imap_messages, stack.ports.imap, account, "INBOX"):
            if header in message:
                return message
        if time.monotonic() > deadline:
            raise AssertionError(f"no message with {header}")
        await asyncio.sleep(0.2)


def _append(port: int, account: devstack.Account, message: bytes) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        status, _ = imap.append("INBOX", "", None, message)
        assert status == "OK"
    finally:
        imap.logout()


async def test_smime_is_refused_clearly(people: People) -> None:
    client, _, _ = people
    reply = await client.send(request("SMIMEUnlock", {"id": client.next_id(), "password": "x"}))
    assert reply.response.get("errorNum") == "502"


CORPUS = Path(__file__).resolve().parents[1] / "data" / "mime"


def _big_message(size: int) -> bytes:
    """A short text and a `size`-byte attachment (base64 on the wire)."""
    import base64

    payload = base64.encodebytes(bytes(range(256)) * (size // 256))
    return (b"From: Big <big@example.test>\r\nSubject: thirty megabytes\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n--b\r\n"
            b'Content-Type: application/octet-stream; name="big.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + payload.replace(b"\n", b"\r\n")
            + b"--b--\r\n")  # fmt: skip


async def test_awkward_messages_all_render_and_memory_stays_bounded(
    people: People, stack: devstack.DevStack
) -> None:
    import tracemalloc

    client, sender, _ = people
    corpus = sorted(CORPUS.glob("*.eml"))
    assert len(corpus) >= 8
    for path in corpus:
        await asyncio.to_thread(_append, stack.ports.imap, sender, path.read_bytes())
    await asyncio.to_thread(_append, stack.ports.imap, sender, _big_message(30 << 20))
    await call(client, "folderOpen", {"folder": "all", "mailbox": "INBOX"})
    listing = await call(client, "folderBrowse", {"folder": "all"},
                         request("index", {"from": "0", "till": "99"}))  # fmt: skip
    uids = [r.get("UID") or "" for r in listing.of("folderReport")]
    assert len(uids) == len(corpus) + 1
    for uid in uids[:-1]:
        read = await call(client, "folderRead", {"folder": "all", "UID": uid})
        (shown,) = read.of("folderMessage")
        assert shown.find("EMail/MIME") is not None
    # The 30 MB attachment is never read: only its text part is, within totalSizeLimit.
    tracemalloc.start()
    try:
        read = await call(client, "folderRead",
                          {"folder": "all", "UID": uids[-1], "totalSizeLimit": "100000"})  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (shown,) = read.of("folderMessage")
    leaves = [m for m in shown.iter("MIME") if m.get("type") != "multipart"]
    assert leaves[0].text == "See the attachment."  # the CRLF before a boundary is its own
    assert leaves[1].get("partID") == "2" and int(leaves[1].get("size") or 0) > 30 << 20
    assert peak < 8 << 20, f"peak {peak} bytes for a 30 MB message"


SPEC_VCARD = SPEC_CONTACT.decode()


def _shape(element: etree._Element) -> list[tuple[str, str]]:
    """Every element's tag and text, in document order (whitespace between elements aside)."""
    return [(str(e.tag), (e.text or "").strip()) for e in element.iter()]


async def test_contact_append_and_read_back(people: People, stack: devstack.DevStack) -> None:
    client, sender, _ = people
    reply = await call(client, "contactAppend", {"targetMailbox": "Contacts"},
                       email_xml(SPEC_VCARD))  # fmt: skip
    assert reply.ok
    stored = await wait_for(stack.ports.imap, sender, "Contacts", "Jensen")
    assert stored.get_content_type() == "text/directory"
    text = stored.get_content()
    assert "BEGIN:VCARD" in text and "UID:" in text and "FN:" in text
    await call(client, "folderOpen", {"folder": "Contacts", "mailbox": "Contacts"},
               xml.element("field", text="FLAGS"))  # fmt: skip
    listing = await call(client, "folderBrowse", {"folder": "Contacts"},
                         request("index", {"from": "0", "till": "0"}))  # fmt: skip
    (row,) = listing.of("folderReport")
    assert row.findtext("FLAGS") == "Seen"
    read = await call(client, "folderRead", {"folder": "Contacts", "UID": row.get("UID") or ""})
    card = read.of("folderMessage")[0].find("EMail/MIME/vCard")
    assert card is not None, xml.serialize(read.of("folderMessage")[0])
    expected = dict(_shape(email_xml(SPEC_VCARD)))
    got = dict(_shape(card))
    for tag, value in expected.items():
        assert got.get(tag) == value, (tag, got.get(tag), value)
    assert card.find("UID") is not None and card.find("FN") is not None


async def test_a_sent_message_whose_copy_is_refused_is_reported_sent(
    bridge_port: int, stack: devstack.DevStack
) -> None:
    """The server took the message: the answer is success (a failure would make the client send
    it again), and the lost Sent copy is told as an alert."""
    sender, recipient = stack.new_account("fullbox"), stack.new_account("rcpt")
    stack.set_quota(sender.address, 1024)  # no room for the copy
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await client.login(sender.address, sender.password)
        body = xml.element("EMail")
        xml.sub(body, "From", None, sender.address)
        xml.sub(body, "Subject", None, "Sent over quota")
        xml.sub(body, "To", None, recipient.address)
        xml.sub(body, "MIME", {"type": "text", "subtype": "plain"}, "x" * 4000)
        await call(client, "messageSubmit", {"targetMailbox": "Sent"}, body)
        alert = await client.unsolicited(10)
        assert alert.tag == "alert" and "was sent" in (alert.text or "")
        await wait_for(stack.ports.imap, recipient, "INBOX", "Sent over quota")
        assert await asyncio.to_thread(imap_messages, stack.ports.imap, sender, "Sent") == []
    finally:
        await client.close()
