"""Looking at the backends directly (imaplib, in a thread), behind the bridge's back."""

from __future__ import annotations

import asyncio
import imaplib
import time
from collections.abc import Awaitable, Callable

from bridge import xml
from bridge.client import Reply, XimssClient
from tests.conftest import devstack


def _count(port: int, account: devstack.Account, mailbox: str, subject: str) -> int:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        status, _ = imap.select(f'"{mailbox}"', readonly=True)
        if status != "OK":
            return 0  # no such mailbox: nothing in it
        status, data = imap.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT", f'"{subject}"')
        assert status == "OK"
        return len((data[0] or b"").split())
    finally:
        imap.logout()


async def count(port: int, account: devstack.Account, mailbox: str, subject: str) -> int:
    """How many messages of `mailbox` have `subject` in their Subject."""
    return await asyncio.to_thread(_count, port, account, mailbox, subject)


def _append(port: int, account: devstack.Account, mailbox: str, subject: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        message = f"From: a@example.test\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()
        status, _ = imap.append(f'"{mailbox}"', "", None, message)
        assert status == "OK"
    finally:
        imap.logout()


async def append(port: int, account: devstack.Account, mailbox: str, subject: str) -> None:
    await asyncio.to_thread(_append, port, account, mailbox, subject)


def _create(port: int, account: devstack.Account, mailbox: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        imap.create(f'"{mailbox}"')
    finally:
        imap.logout()


async def create(port: int, account: devstack.Account, mailbox: str) -> None:
    await asyncio.to_thread(_create, port, account, mailbox)


def _expunge_subject(port: int, account: devstack.Account, mailbox: str, subject: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        imap.select(f'"{mailbox}"')
        _, data = imap.uid("SEARCH", "SUBJECT", f'"{subject}"')
        for uid in (data[0] or b"").split():
            imap.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
            imap.uid("EXPUNGE", uid)
    finally:
        imap.logout()


async def expunge_subject(port: int, account: devstack.Account, mailbox: str, subject: str) -> None:
    await asyncio.to_thread(_expunge_subject, port, account, mailbox, subject)


async def request(client: XimssClient, tag: str, attrs: dict[str, str],
                  *children: object) -> tuple[Reply, float]:  # fmt: skip
    """Send one request; its reply and how long it took."""
    element = xml.element(tag, {"id": client.next_id(), **attrs})
    for child in children:
        element.append(child)  # type: ignore[arg-type]
    started = time.monotonic()
    reply = await client.send(element)
    return reply, time.monotonic() - started


async def until_ok(
    attempt: Callable[[], Awaitable[Reply]], timeout: float = 15.0, pause: float = 0.1
) -> Reply:
    """Repeat until the bridge answers without an error (a backend coming back)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = await attempt()
        if reply.ok:
            return reply
        assert time.monotonic() < deadline, xml.serialize(reply.response)
        await asyncio.sleep(pause)


def email(subject: str, to: str, sender: str, body: str = "fault test body") -> object:
    element = xml.element("EMail")
    xml.sub(element, "From", None, sender)
    xml.sub(element, "To", None, to)
    xml.sub(element, "Subject", None, subject)
    xml.sub(element, "MIME", {"type": "text", "subtype": "plain"}, body)
    return element
