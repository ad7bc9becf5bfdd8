"""Mailbox management through the bridge, checked on the IMAP server by an independent client."""

from __future__ import annotations

import asyncio
import imaplib

from lxml import etree

from adapters.imap.store import ImapMailStore
from bridge import xml
from bridge.app import Bridge
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.imapcheck import imap_view

PLANS = "Projects/2026 Plans"
REPORTS = "Отчёты"


async def _names(client: XimssClient, **attrs: str) -> dict[str, dict[str, str]]:
    reply = await client.call("mailboxList", attrs)
    return {item.get("mailbox", ""): dict(item.attrib) for item in reply.of("mailbox")}


async def test_create_list_rename_subscribe_remove(
    user_client: tuple[XimssClient, devstack.Account], stack: devstack.DevStack
) -> None:
    client, account = user_client
    port = stack.ports.imap
    async with imap_view(port, account.address, account.password) as server:
        await client.call("mailboxCreate", {"mailbox": PLANS})
        await client.call("mailboxCreate", {"mailbox": REPORTS})
        on_server = await server.mailboxes()
        assert PLANS in on_server and REPORTS in on_server

        listed = await _names(client)
        for name in (PLANS, REPORTS, "INBOX"):
            attrs = listed[name]
            for key in ("UIDVALIDITY", "MESSAGES", "UIDNEXT", "UNSEEN", "INTERNALSIZE"):
                assert attrs[key].isdigit(), (name, key, attrs)
            assert "pureFolder" not in attrs
        assert listed["Projects"].get("pureFolder") == "YES"
        assert set(await _names(client, filter="Projects/%")) == {PLANS}

        # Without `children`, a parent cannot be renamed alone: a clear error, nothing changed.
        refused = await client.request(
            "mailboxRename", {"mailbox": "Projects", "newName": "Archive"}
        )
        assert refused.error_num == "514"
        assert PLANS in await server.mailboxes()

        await client.call(
            "mailboxRename", {"mailbox": "Projects", "newName": "Archive/Projects", "children": ""}
        )
        on_server = await server.mailboxes()
        assert "Archive/Projects/2026 Plans" in on_server
        assert PLANS not in on_server

        await client.call(
            "mailboxSubUpdate",
            children=[
                _sub("Archive/Projects/2026 Plans", "add"),
                _sub(REPORTS, "add"),
            ],
        )
        assert {"Archive/Projects/2026 Plans", REPORTS} <= set(await server.mailboxes("LSUB"))
        subs = await client.call("mailboxSubList")
        names = {item.get("mailbox") for item in subs.of("mailboxSubscription")}
        assert {"Archive/Projects/2026 Plans", REPORTS} <= names
        await client.call("mailboxSubUpdate", children=[_sub(REPORTS, "remove")])
        assert REPORTS not in await server.mailboxes("LSUB")

        refused = await client.request("mailboxRemove", {"mailbox": "Archive"})
        assert refused.error_num == "514"
        await client.call("mailboxRemove", {"mailbox": "Archive", "children": ""})
        await client.call("mailboxRemove", {"mailbox": REPORTS})
        on_server = await server.mailboxes()
        assert not any(name.startswith("Archive") for name in on_server)
        assert REPORTS not in on_server


def _sub(name: str, mode: str) -> etree._Element:
    return xml.element("mailboxSubscription", {"mailbox": name, "mode": mode})


async def test_mailbox_class_is_kept(user_client: tuple[XimssClient, devstack.Account]) -> None:
    client, _ = user_client
    await client.call("mailboxCreate", {"mailbox": "Calendar", "mailboxClass": "IPF.Appointment"})
    listed = await _names(client)
    assert listed["Calendar"]["CLASS"] == "IPF.Appointment"
    assert "CLASS" not in listed["INBOX"]
    only_calendars = await _names(client, mailboxClass="IPF.Appointment")
    assert set(only_calendars) == {"Calendar"}
    mail_only = await _names(client, mailboxClass="")
    assert "Calendar" not in mail_only and "INBOX" in mail_only


async def test_errors_for_missing_and_existing(
    user_client: tuple[XimssClient, devstack.Account],
) -> None:
    client, _ = user_client
    await client.call("mailboxCreate", {"mailbox": "Twice"})
    again = await client.request("mailboxCreate", {"mailbox": "Twice"})
    assert again.error_num == "513"
    missing = await client.request("mailboxRename", {"mailbox": "Nope", "newName": "Still"})
    assert missing.error_num == "512"
    gone = await client.request("mailboxRemove", {"mailbox": "Nope"})
    assert gone.error_num == "512"
    bad = await client.request("mailboxCreate", {})
    assert bad.error_num == "501"


async def test_other_users_inbox_after_setacl(
    bridge: Bridge, bridge_port: int, stack: devstack.DevStack
) -> None:
    owner = stack.new_account("owner")
    reader = stack.new_account("reader")
    # Plain IMAP, behind the bridge's back: the owner grants lookup and read.
    await asyncio.to_thread(_setacl, stack.ports.imap, owner, "INBOX", reader.address, "lr")
    stack.fill_maildir(owner.address, "INBOX", 3)

    client = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await client.login(reader.address, reader.password)
        shared = f"~{owner.address}/INBOX"
        listed = await _names(client)
        assert shared in listed, sorted(listed)
        assert listed[shared]["MESSAGES"] == "3"
        assert listed[f"~{owner.address}"].get("pureFolder") == "YES"
        assert set(await _names(client, filter=f"~{owner.address}/*")) == {shared}

        # Opened: the session's own IMAP connection selects the mapped mailbox read-only.
        # (The XIMSS folderOpen operation on top of this arrives with folder views.)
        assert client.session is not None
        session = bridge.services.sessions.get(client.session.get("urlID", ""))
        assert session is not None and isinstance(session.mail, ImapMailStore)
        imap = await session.mail.client()
        opened = await imap.execute("EXAMINE", session.mail.server_name(shared), wants=("EXISTS",))
        assert [item.number for item in opened.of("EXISTS")] == [3]
    finally:
        await client.close()


def _setacl(port: int, owner: devstack.Account, mailbox: str, who: str, rights: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(owner.address, owner.password)
        status, _ = imap.setacl(mailbox, who, rights)
        assert status == "OK"
    finally:
        imap.logout()
