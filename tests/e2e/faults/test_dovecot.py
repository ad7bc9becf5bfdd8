"""Dovecot killed (SIGKILL) and restarted under open XIMSS and XMAP sessions."""

from __future__ import annotations

import asyncio

from bridge.app import Bridge
from bridge.client import Reply, XimssClient
from bridge.xmap import commands as c
from bridge.xmap.client import XmapClient
from tests.conftest import devstack
from tests.e2e.faults import kit
from tests.e2e.faults.conftest import BACKEND_TIMEOUT, crashed, ximss
from tests.e2e.folderkit import ClientView, call, fields

# A failing operation answers within the backend timeout (and a little for the round trip).
PROMPT = BACKEND_TIMEOUT + 1.0


async def test_ximss_session_survives_and_the_open_folder_resynchronizes(
    fault_stack: devstack.DevStack, fault_bridge: Bridge
) -> None:
    imap_port = fault_stack.ports.imap
    account = fault_stack.new_account("dov")
    for subject in ("keep-one", "gone-one", "keep-two"):
        await kit.append(imap_port, account, "INBOX", subject)
    client = await ximss(fault_bridge, account)
    try:
        view = ClientView(client, "F")
        await view.open("INBOX", *fields("Subject"))
        before = await view.browse_all()
        assert len(before) == 3
        with crashed(fault_stack.dovecot):
            # The folder's connection and the session's are gone: both kinds of operation
            # fail at once with "backend unavailable", and nothing pretends to have worked.
            for tag, attrs in (("folderSync", {"folder": "F"}), ("mailboxList", {})):
                reply, took = await kit.request(client, tag, attrs)
                assert not reply.ok and took < PROMPT, (tag, took)
                assert reply.error_num is not None and reply.response.get("errorText")
            # The session itself lives on.
            noop, _ = await kit.request(client, "noop", {})
            assert noop.ok and not client.closed.is_set()
        # Changed while the bridge was not looking (its connections are fresh after restart).
        await kit.expunge_subject(imap_port, account, "INBOX", "gone-one")
        await kit.append(imap_port, account, "INBOX", "new-one")
        reply = await kit.until_ok(lambda: _sync(client))
        reports = [(r.get("mode"), r.get("UID")) for r in reply.of("folderReport")]
        for report in reply.of("folderReport"):
            view.apply(report)
        modes = sorted(mode or "" for mode, _ in reports)
        assert modes == ["added", "removed"], reports
        uids = await view.browse_all()
        assert len(uids) == 3 and before[0] in uids and before[2] in uids
        assert before[1] not in uids
        # The session's main connection logged in again too.
        await call(client, "mailboxList", {"filter": "INBOX"})
        assert not client.closed.is_set()
    finally:
        await client.close()


async def _sync(client: XimssClient) -> Reply:
    reply, _ = await kit.request(client, "folderSync", {"folder": "F"})
    return reply


async def test_xmap_session_survives_a_dovecot_restart(
    fault_stack: devstack.DevStack, fault_bridge: Bridge
) -> None:
    imap_port = fault_stack.ports.imap
    account = fault_stack.new_account("dovx")
    await kit.append(imap_port, account, "INBOX", "xmap-before")
    assert fault_bridge.xmap is not None
    client = await XmapClient.connect("127.0.0.1", fault_bridge.xmap.port)
    try:
        await client.login(account.address, account.password)
        listed = await client.call(c.ListFolder("INBOX"))
        assert len([row for row in listed.first if row.tag == "MESSAGEHEADER"]) == 1
        with crashed(fault_stack.dovecot):
            loop = asyncio.get_running_loop()
            started = loop.time()
            failed = await client.call(c.ListFolder("INBOX"), check=False)
            assert loop.time() - started < PROMPT
            assert failed.error is not None and failed.error.get("Code"), failed.first.tag
            assert failed.error.get("Text")
        await kit.append(imap_port, account, "INBOX", "xmap-after")
        deadline = loop.time() + 10
        while True:
            answer = await client.call(c.ListFolder("INBOX"), check=False)
            if answer.error is None:
                break
            assert loop.time() < deadline, answer.error.get("Text")
            await asyncio.sleep(0.1)
        rows = [row for row in answer.first if row.tag == "MESSAGEHEADER"]
        assert len(rows) == 2
    finally:
        await client.close()
