"""A backend that accepts connections and never answers, as the IMAP server (login), the
submission server (messageSubmit) and the CalDAV server (calendarOpen): each operation fails
within its timeout with a clear error, and other sessions are served meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable

import pytest

from bridge import config, xml
from bridge.app import Bridge
from bridge.client import Reply, XimssError
from tests.conftest import devstack
from tests.e2e.faults import kit
from tests.e2e.faults.conftest import BACKEND_TIMEOUT, fault_settings, running_bridge, ximss
from tests.e2e.faults.proxy import HangingServer

HUNG_DOMAIN = "hung.test"
# The timeout, and the bridge's own bookkeeping around it.
WITHIN = BACKEND_TIMEOUT + 1.5


@pytest.fixture(scope="module")
async def hanging() -> AsyncIterator[HangingServer]:
    async with HangingServer() as server:
        yield server


@pytest.fixture(scope="module")
async def hung_bridge(
    fault_stack: devstack.DevStack, hanging: HangingServer
) -> AsyncIterator[Bridge]:
    base = fault_settings(fault_stack)
    _, domain = next(iter(base.domains.items()))
    # A second domain whose IMAP server hangs; the stack's domain keeps its real IMAP server.
    hung = config.DomainSettings(
        imap=dataclasses.replace(domain.imap, port=hanging.port),
    )
    settings = fault_settings(fault_stack, smtp_port=hanging.port, caldav_port=hanging.port,
                              extra_domains={HUNG_DOMAIN: hung})  # fmt: skip
    async with running_bridge(settings) as bridge:
        yield bridge


async def while_others_work(
    bridge: Bridge, stack: devstack.DevStack, stuck: Awaitable[Reply | BaseException]
) -> tuple[Reply | BaseException, float]:
    """Runs `stuck` while another session lists mailboxes over and over; that session's
    answers must come quickly all along."""
    bystander = await ximss(bridge, stack.new_account("by"))
    task = asyncio.ensure_future(stuck)
    started = time.monotonic()
    try:
        rounds = 0
        while not task.done():
            reply, took = await kit.request(bystander, "mailboxList", {"filter": "INBOX"})
            assert reply.ok and took < 1.0, took
            rounds += 1
            await asyncio.sleep(0.1)
        assert rounds >= 5  # the stuck operation took a while, and others were served
        return await task, time.monotonic() - started
    finally:
        await bystander.close()


async def test_hanging_imap_server_fails_the_login_in_time(
    fault_stack: devstack.DevStack, hung_bridge: Bridge, hanging: HangingServer
) -> None:
    client = await ximss(hung_bridge)

    async def login() -> Reply | BaseException:
        try:
            await client.login(f"someone@{HUNG_DOMAIN}", "secret")
        except XimssError as exc:
            return exc.reply
        raise AssertionError("logged in to a server that never answered")

    try:
        accepted = hanging.accepted
        outcome, took = await while_others_work(hung_bridge, fault_stack, login())
        assert isinstance(outcome, Reply) and took < WITHIN, took
        assert outcome.error_num == "451", xml.serialize(outcome.response)
        assert hanging.accepted > accepted  # it did reach the hanging server
    finally:
        await client.close()


async def test_hanging_submission_server_fails_the_submit_in_time(
    fault_stack: devstack.DevStack, hung_bridge: Bridge
) -> None:
    sender = fault_stack.new_account("hs")
    client = await ximss(hung_bridge, sender)

    async def submit() -> Reply:
        mail = kit.email("never-sent", "someone@example.test", sender.address)
        reply, _ = await kit.request(client, "messageSubmit", {"targetMailbox": "Sent"}, mail)
        return reply

    try:
        outcome, took = await while_others_work(hung_bridge, fault_stack, submit())
        assert isinstance(outcome, Reply) and took < WITHIN, took
        assert outcome.error_num == "451", xml.serialize(outcome.response)
        assert await kit.count(fault_stack.ports.imap, sender, "Sent", "never-sent") == 0
    finally:
        await client.close()


async def test_hanging_caldav_server_fails_calendar_open_in_time(
    fault_stack: devstack.DevStack, hung_bridge: Bridge
) -> None:
    client = await ximss(hung_bridge, fault_stack.new_account("hc"))

    async def open_calendar() -> Reply:
        reply, _ = await kit.request(client, "calendarOpen",
                                     {"calendar": "Main", "mailbox": "Calendar"})  # fmt: skip
        return reply

    try:
        outcome, took = await while_others_work(hung_bridge, fault_stack, open_calendar())
        assert isinstance(outcome, Reply) and took < WITHIN, took
        assert outcome.error_num == "451", xml.serialize(outcome.response)
    finally:
        await client.close()
