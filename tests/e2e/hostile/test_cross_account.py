"""Cross-account access without rights: another user's mailboxes through `~user@domain/...`
names, another user's XMAP handle numbers, another session's uploads and open folders on the
HTTP binding. Every attempt fails, and the other account is left exactly as it was."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge import xml
from bridge.client import XimssClient
from bridge.xmap import commands as c
from bridge.xmap.client import XmapClient
from bridge.xmap.flags import XmapFlag
from tests.conftest import devstack
from tests.e2e.httpcheck import url_id
from tests.e2e.test_messages import imap_messages

Pair = tuple[devstack.Account, devstack.Account]
SECRET = b"From: b@example.test\r\nSubject: private\r\n\r\nonly for the owner\r\n"


@pytest.fixture
async def pair(stack: devstack.DevStack) -> AsyncIterator[Pair]:
    """An attacker and a victim, the victim with one message in INBOX."""
    attacker, victim = stack.new_account("attacker"), stack.new_account("victim")
    yield attacker, victim


async def _xmap(port: int, account: devstack.Account) -> XmapClient:
    client = await XmapClient.connect("127.0.0.1", port)
    await client.login(account.address, account.password)
    return client


async def test_other_users_mailboxes_by_name(
    bridge_port: int, xmap_port: int, stack: devstack.DevStack, pair: Pair
) -> None:
    attacker, victim = pair
    owner = await _xmap(xmap_port, victim)
    try:
        await owner.call(c.NewMessageUpload("INBOX", frozenset[XmapFlag](), SECRET))
    finally:
        await owner.close()
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await client.login(attacker.address, attacker.password)
        theirs = f"~{victim.address}/INBOX"
        attempts = [
            ("folderOpen", {"folder": "f", "mailbox": theirs}),
            ("mailboxRemove", {"mailbox": theirs}),
            ("mailboxRename", {"mailbox": theirs, "newName": "Stolen"}),
            ("mailboxCreate", {"mailbox": f"~{victim.address}/Planted"}),
            ("mailboxRightsGet", {"mailbox": theirs}),
            ("mailboxACLUpdate", {"mailbox": theirs}),
        ]
        for operation, attrs in attempts:
            reply = await client.request(operation, attrs)
            assert not reply.ok, (operation, reply.data)
        body = xml.element("EMail")
        xml.sub(body, "Subject", text="planted")
        xml.sub(body, "MIME", {"type": "text", "subtype": "plain"}, text="x")
        append = xml.element("messageAppend", {"id": "ap", "targetMailbox": theirs})
        append.append(body)
        assert not (await client.send(append)).ok
        listed = await client.call("mailboxList", {"filter": "~*"})
        assert not listed.of("mailbox"), [m.attrib for m in listed.of("mailbox")]
    finally:
        await client.close()
    stored = await asyncio.to_thread(imap_messages, stack.ports.imap, victim, "INBOX")
    assert [str(m["Subject"]) for m in stored] == ["private"]


async def test_other_users_xmap_handles(
    xmap_port: int, stack: devstack.DevStack, pair: Pair
) -> None:
    attacker, victim = pair
    owner = await _xmap(xmap_port, victim)
    thief = await _xmap(xmap_port, attacker)
    try:
        answer = await owner.call(c.NewMessageUpload("INBOX", frozenset[XmapFlag](), SECRET))
        handle = int(answer.first.get("MessageHandle") or 0)
        assert handle > 0
        for command in (
            c.GetMessage(handle),
            c.DeleteItems((c.DeleteMessage(handle),)),
            c.MoveItems((c.MoveMessage(handle, "INBOX"),)),
            c.CopyMessage(handle, "INBOX"),
        ):
            answer = await thief.call(command, check=False)
            failed = answer.error is not None or any(
                child.tag == "ERROR" for child in answer.first.iter()
            )
            assert failed, (command, answer.first.attrib)
            assert answer.blob is None or b"only for the owner" not in answer.blob
        # The handle still works for its owner: nothing was moved or deleted.
        assert b"only for the owner" in ((await owner.call(c.GetMessage(handle))).blob or b"")
    finally:
        await owner.close()
        await thief.close()
    stored = await asyncio.to_thread(imap_messages, stack.ports.imap, attacker, "INBOX")
    assert stored == []


async def test_other_sessions_uploads_and_folders(http_url: str, pair: Pair) -> None:
    attacker, victim = pair
    async with aiohttp.ClientSession() as http:

        async def login(account: devstack.Account) -> str:
            query = {"userName": account.address, "password": account.password}
            async with http.get(f"{http_url}/XIMSSLogin/", params=query) as response:
                return url_id(await response.text())

        theirs, mine = await login(victim), await login(attacker)
        form = aiohttp.FormData()
        form.add_field("fileData", b"victim's upload", filename="secret.txt")
        async with http.post(f"{http_url}/Session/{theirs}/UPLOAD/doc1", data=form) as response:
            assert response.status == 200
        batch = b'<XIMSS><folderOpen id="1" folder="box" mailbox="INBOX"/></XIMSS>'
        async with http.post(f"{http_url}/Session/{theirs}/sync", data=batch) as response:
            assert b'<response id="1"/>' in await response.read()
        # The attacker's own session knows neither the upload nor the folder.
        steal = (
            b'<XIMSS><messageAppend id="2" targetMailbox="INBOX"><EMail><Subject>x</Subject>'
            b'<MIME uploadID="doc1"/></EMail></messageAppend></XIMSS>'
        )
        async with http.post(f"{http_url}/Session/{mine}/sync", data=steal) as response:
            reply = await response.read()
            assert b'id="2"' in reply and b"errorNum=" in reply, reply
        async with http.get(f"{http_url}/Session/{mine}/MIME/box/1-P.txt") as response:
            assert response.status == 404
            assert b"only for the owner" not in await response.read()
        # A mangled or truncated urlID of the victim is no urlID at all.
        for wrong in (theirs[:-1], theirs + "x", theirs.upper(), theirs[:7], theirs.split("-")[0]):
            async with http.get(f"{http_url}/Session/{wrong}/get") as response:
                assert response.status == 550, wrong
