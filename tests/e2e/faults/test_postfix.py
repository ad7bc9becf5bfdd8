"""Postfix killed (SIGKILL) and restarted: nothing is reported sent, nor stored in Sent, that
the server did not take."""

from __future__ import annotations

import asyncio

from bridge import xml
from bridge.app import Bridge
from bridge.client import Reply, XimssClient
from tests.conftest import devstack
from tests.e2e.faults import kit
from tests.e2e.faults.conftest import BACKEND_TIMEOUT, crashed, ximss


async def test_submit_fails_clearly_while_postfix_is_down_then_works(
    fault_stack: devstack.DevStack, fault_bridge: Bridge
) -> None:
    imap_port = fault_stack.ports.imap
    sender, recipient = fault_stack.new_account("pfs"), fault_stack.new_account("pfr")
    client = await ximss(fault_bridge, sender)
    try:
        with crashed(fault_stack.postfix):
            mail = kit.email("while-down", recipient.address, sender.address)
            reply, took = await kit.request(client, "messageSubmit", {"targetMailbox": "Sent"},
                                            mail)  # fmt: skip
            assert not reply.ok and took < BACKEND_TIMEOUT + 1
            assert reply.error_num == "451", xml.serialize(reply.response)
        # No "sent" copy of mail that was never taken.
        assert await kit.count(imap_port, sender, "Sent", "while-down") == 0
        mail = kit.email("after-restart", recipient.address, sender.address)
        await kit.until_ok(lambda: _submit(client, mail))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while await kit.count(imap_port, recipient, "INBOX", "after-restart") == 0:
            assert loop.time() < deadline, "the message was not delivered"
            await asyncio.sleep(0.1)
        assert await kit.count(imap_port, sender, "Sent", "after-restart") == 1
        assert await kit.count(imap_port, recipient, "INBOX", "while-down") == 0
    finally:
        await client.close()


async def _submit(client: XimssClient, mail: object) -> Reply:
    reply, _ = await kit.request(client, "messageSubmit", {"targetMailbox": "Sent"}, mail)
    return reply
