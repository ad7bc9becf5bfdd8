"""Header injection through XML fields: CR/LF (CRLF, bare CR, bare LF, folded) in subjects, real
names, addresses and extra header fields of messageAppend and messageSubmit, and CR/LF, braces
and parentheses in flags and mailbox names. Each request is refused, or the text stays inside
its one field: the stored and the delivered messages (read over imaplib) carry no injected
header, an injected recipient gets nothing, and no extra IMAP command runs. (NUL cannot be sent
at all: XML has no way to carry it, and test_hostile.py covers invalid bytes.)"""

from __future__ import annotations

import asyncio
import imaplib
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest
from lxml import etree

from bridge import xml
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.test_messages import imap_messages, wait_for

BREAKS = ["\r\n", "\n", "\r", "\r\n\t"]
INJECTED = {"bcc", "cc", "x-injected", "reply-to"}
Trio = tuple[XimssClient, devstack.Account, devstack.Account, devstack.Account]


@pytest.fixture
async def trio(bridge_port: int, stack: devstack.DevStack) -> AsyncIterator[Trio]:
    sender, rcpt, bystander = (stack.new_account(n) for n in ("inj", "injrcpt", "injbcc"))
    client = await XimssClient.connect("127.0.0.1", bridge_port)
    await client.login(sender.address, sender.password)
    yield client, sender, rcpt, bystander
    await client.close()


def composed(
    sender: str, to: str, subject: str, *, real_name: str = "Sender", note: str = "note"
) -> etree._Element:
    element = xml.element("EMail")
    xml.sub(element, "From", {"realName": real_name}, text=sender)
    xml.sub(element, "Subject", text=subject)
    xml.sub(element, "To", text=to)
    xml.sub(element, "X-Note", text=note)
    xml.sub(element, "MIME", {"type": "text", "subtype": "plain"}, text="the body\n")
    return element


def injected_headers(message: EmailMessage) -> set[str]:
    return {name.lower() for name in message} & INJECTED


async def send(
    client: XimssClient, operation: str, attrs: dict[str, str], body: etree._Element
) -> str | None:
    element = xml.element(operation, {"id": client.next_id(), **attrs})
    element.append(body)
    return (await client.send(element)).error_num


@pytest.mark.parametrize("crlf", BREAKS, ids=["crlf", "lf", "cr", "folded"])
async def test_append_keeps_every_field_in_its_header(
    trio: Trio, stack: devstack.DevStack, crlf: str
) -> None:
    client, sender, _, _ = trio
    me = sender.address
    cases = {
        "subject": composed(me, me, f"s{crlf}X-Injected: yes"),
        "real name": composed(me, me, "n", real_name=f"Evil{crlf}Bcc: x@example.test"),
        "extra field": composed(me, me, "x", note=f"v{crlf}X-Injected: yes"),
        "address": composed(f"{me}{crlf}Bcc: x@example.test", me, "a"),
    }
    outcomes = {}
    for name, body in cases.items():
        outcomes[name] = await send(client, "messageAppend", {"targetMailbox": "INBOX"}, body)
        assert outcomes[name] in (None, "501"), (name, outcomes[name])
    stored = await asyncio.to_thread(imap_messages, stack.ports.imap, sender, "INBOX")
    assert len(stored) == sum(error is None for error in outcomes.values())
    for message in stored:
        assert not injected_headers(message), message.as_string()[:600]


async def test_submit_delivers_to_no_injected_recipient(
    trio: Trio, stack: devstack.DevStack
) -> None:
    client, sender, rcpt, bystander = trio
    me, to, bcc = sender.address, rcpt.address, f"Bcc: {bystander.address}"
    cases = {
        "submit-s": composed(me, to, f"submit-s\r\n{bcc}"),
        "submit-a": composed(me, f"{to}\r\n{bcc}", "submit-a"),
        "submit-x": composed(me, to, "submit-x", note=f"v\r\n{bcc}"),
        "submit-n": composed(me, to, "submit-n", real_name=f"Evil\r\n{bcc}"),
    }
    results = {tag: await send(client, "messageSubmit", {}, body) for tag, body in cases.items()}
    assert all(error in (None, "501") for error in results.values()), results
    delivered = [tag for tag, error in results.items() if error is None]
    assert delivered, results
    for tag in delivered:
        message = await wait_for(stack.ports.imap, rcpt, "INBOX", tag)
        assert not injected_headers(message), message.as_string()[:600]
    await asyncio.sleep(2)  # a delivery to the bystander would have happened by now
    assert await asyncio.to_thread(imap_messages, stack.ports.imap, bystander, "INBOX") == []


def _imap_state(port: int, account: devstack.Account) -> tuple[list[bytes], list[bytes]]:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        _, boxes = imap.list()
        imap.select("INBOX")
        _, flags = imap.fetch("1:*", "(FLAGS)")
        return sorted(b for b in boxes if isinstance(b, bytes)), [f for f in flags if f]
    finally:
        imap.logout()


async def test_flags_and_mailbox_names_cannot_carry_commands(
    trio: Trio, stack: devstack.DevStack
) -> None:
    client, sender, _, _ = trio
    me = sender.address
    assert await send(client, "messageAppend", {"targetMailbox": "INBOX"},
                      composed(me, me, "first")) is None  # fmt: skip
    boxes_before, _ = await asyncio.to_thread(_imap_state, stack.ports.imap, sender)
    hostile_flags = [
        "Seen\r\nA1 DELETE INBOX", "Seen) A1 DELETE INBOX", "$x\r\n", "Seen {5}\r\nhello",
        "Seen\r\nA2 STORE 1 +FLAGS (\\Deleted)", "Seen (",
    ]  # fmt: skip
    for flags in hostile_flags:
        error = await send(client, "messageAppend", {"targetMailbox": "INBOX", "flags": flags},
                           composed(me, me, "flagged"))  # fmt: skip
        assert error in (None, "501"), (flags, error)
    for name in ["x\r\nA1 DELETE INBOX", "x {5}\r\nhello", "x\rA1 DELETE INBOX"]:
        error = await send(client, "messageAppend", {"targetMailbox": name},
                           composed(me, me, "boxed"))  # fmt: skip
        assert error is not None, name
    boxes, flags = await asyncio.to_thread(_imap_state, stack.ports.imap, sender)
    assert boxes == boxes_before
    assert not any(b"\\Deleted" in line for line in flags), flags
    stored = await asyncio.to_thread(imap_messages, stack.ports.imap, sender, "INBOX")
    assert len(stored) >= 1
