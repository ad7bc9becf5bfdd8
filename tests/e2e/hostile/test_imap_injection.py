"""IMAP literal and quoting injection through mailbox names and search filters: names with
quotes, backslashes, braces (`{5}`), CR/LF, `*` and `%`, and filters with the same, on
mailboxCreate, mailboxRename, mailboxDelete, mailboxList, folderOpen and messageAppend. A name
is either refused or used exactly as given; no second command ever runs (INBOX and its message
survive a name carrying `" DELETE INBOX`), as Dovecot shows over imaplib."""

from __future__ import annotations

import asyncio
import imaplib
import re

from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.imapcheck import imap_view

HOSTILE_NAMES = [
    'x" DELETE INBOX', 'x"\r\nA1 DELETE INBOX', "x\r\nA1 DELETE INBOX", "x {5}", "x {5}\r\nhello",
    "x {5+}\r\nhello", "x\\", 'x\\" DELETE "INBOX', "x)(", "a*b", "a%b", "*", "%", '"', "{0}",
    "x\" {3}\r\nabc", "~user2@example.test/INBOX", "x\0y",
]  # fmt: skip
HOSTILE_FILTERS = [
    'x" DELETE INBOX', "x {5}\r\nhello", "x\r\nA1 DELETE INBOX", "x) OR ALL (", '\\"', "*", "%",
    "x {3+}\r\nabc",
]  # fmt: skip


def _mailboxes(port: int, account: devstack.Account) -> tuple[set[str], int]:
    """Mailbox names as Dovecot lists them, and the INBOX message count."""
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        _, lines = imap.list()
        names = set()
        for line in lines:
            if isinstance(line, bytes):
                match = re.match(rb'^\([^)]*\) (?:"[^"]*"|NIL) (.+)$', line)
                if match:
                    name = match.group(1).decode()
                    if name.startswith('"'):
                        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                    names.add(name)
        status, count = imap.select("INBOX")
        assert status == "OK"
        return names, int(count[0] or 0)
    finally:
        imap.logout()


async def test_hostile_mailbox_names_run_no_second_command(
    user_client: tuple[XimssClient, devstack.Account], stack: devstack.DevStack
) -> None:
    client, account = user_client
    seed = b"From: a@example.test\r\nSubject: keep me\r\n\r\nbody\r\n"
    async with imap_view(stack.ports.imap, account.address, account.password) as view:
        assert (await view.imap.append(seed, mailbox="INBOX")).result == "OK"
    await client.call("mailboxCreate", {"mailbox": "Scratch"})
    before, inbox_count = await asyncio.to_thread(_mailboxes, stack.ports.imap, account)
    assert inbox_count == 1
    created = []
    for name in HOSTILE_NAMES:
        if "\0" in name:
            raw = f'<mailboxCreate id="nul" mailbox="{name}"/>\0'.encode()
            await client.send_raw(raw.replace(b"\0", b"&#0;", 1))
            continue  # not XML: refused by the parser (501), checked below by the state
        reply = await client.request("mailboxCreate", {"mailbox": name})
        assert reply.ok or reply.error_num in ("501", "512", "513", "550", "554"), (name, reply)
        if reply.ok:
            created.append(name)
            listed = await client.call("mailboxList", {"filter": name.replace("*", "%")})
            shown = {item.get("mailbox") for item in listed.of("mailbox")}
            assert name in shown or "*" in name or "%" in name, (name, shown)
        # Renaming onto and away from a hostile name.
        moved = await client.request("mailboxRename", {"mailbox": "Scratch", "newName": name})
        if moved.ok:
            await client.call("mailboxRename", {"mailbox": name, "newName": "Scratch"})
    for name in created:
        reply = await client.request("mailboxRemove", {"mailbox": name})
        assert reply.ok, (name, reply.response.attrib)
    await client.call("noop")
    after, count = await asyncio.to_thread(_mailboxes, stack.ports.imap, account)
    assert (after, count) == (before, 1)


async def test_hostile_filters_and_patterns(
    user_client: tuple[XimssClient, devstack.Account], stack: devstack.DevStack
) -> None:
    client, account = user_client
    seed = b"From: a@example.test\r\nSubject: keep me\r\n\r\nbody\r\n"
    async with imap_view(stack.ports.imap, account.address, account.password) as view:
        assert (await view.imap.append(seed, mailbox="INBOX")).result == "OK"
    before = await asyncio.to_thread(_mailboxes, stack.ports.imap, account)
    for index, text in enumerate(HOSTILE_FILTERS):
        listed = await client.request("mailboxList", {"filter": text})
        assert listed.ok or listed.error_num == "501", (text, listed.response.attrib)
        subs = await client.request("mailboxSubList", {"filter": text})
        assert subs.ok or subs.error_num in ("501", "500"), (text, subs.response.attrib)
        for field in ("Body", "Subject", "From", "FLAGS", "Any"):
            folder = f"f{index}{field}"
            opened = await client.request("folderOpen", {
                "folder": folder, "mailbox": "INBOX", "filter": text, "filterField": field,
                "sortField": "Date",
            })  # fmt: skip
            assert opened.ok or opened.error_num in ("501", "502"), (text, field, opened)
            if opened.ok:
                await client.call("folderClose", {"folder": folder})
    assert await asyncio.to_thread(_mailboxes, stack.ports.imap, account) == before


async def test_wildcard_names_touch_no_other_mailbox(
    user_client: tuple[XimssClient, devstack.Account], stack: devstack.DevStack
) -> None:
    """IMAP LIST patterns cannot escape `*` and `%`: a mailbox named `*` whose nested mailboxes
    are looked up with `LIST "" "*/*"` would take every nested mailbox of the account for its
    own, and removing it with children would delete them all."""
    client, account = user_client
    for name in ("Archive", "Archive/2024", "Projects", "Projects/Old/Deep"):
        await client.call("mailboxCreate", {"mailbox": name})
    for wild in ("*", "%", "A*", "Pro%"):
        await client.call("mailboxCreate", {"mailbox": wild})
        before, _ = await asyncio.to_thread(_mailboxes, stack.ports.imap, account)
        await client.call("mailboxRemove", {"mailbox": wild, "children": "1"})
        after, _ = await asyncio.to_thread(_mailboxes, stack.ports.imap, account)
        assert after == before - {wild}, (wild, before - after)
        # Without children (it has none), and renamed there and back.
        await client.call("mailboxCreate", {"mailbox": wild})
        await client.call("mailboxRename", {"mailbox": wild, "newName": f"renamed{len(wild)}"})
        await client.call("mailboxRename", {"mailbox": f"renamed{len(wild)}", "newName": wild})
        await client.call("mailboxRemove", {"mailbox": wild})
        assert await asyncio.to_thread(_mailboxes, stack.ports.imap, account) == (after, 0)
    names, _ = await asyncio.to_thread(_mailboxes, stack.ports.imap, account)
    assert {"Archive/2024", "Projects/Old/Deep"} <= names
