"""Helpers for folder tests: a client-side logical view kept only from folderReport messages,
exactly as the spec tells clients to, and a plain IMAP client acting behind the bridge's back."""

from __future__ import annotations

import asyncio
import imaplib
from collections.abc import Sequence

from lxml import etree

from bridge import xml
from bridge.client import Reply, XimssClient
from tests.conftest import devstack


def request(tag: str, attrs: dict[str, str], *children: etree._Element) -> etree._Element:
    element = xml.element(tag, attrs)
    for child in children:
        element.append(child)
    return element


def fields(*names: str) -> list[etree._Element]:
    return [xml.element("field", text=name) for name in names]


def index_range(low: int, high: int) -> etree._Element:
    return xml.element("index", {"from": str(low), "till": str(high)})


def uids(*values: int) -> list[etree._Element]:
    return [xml.element("UID", text=str(v)) for v in values]


async def call(client: XimssClient, tag: str, attrs: dict[str, str],
               *children: etree._Element) -> Reply:  # fmt: skip
    element = request(tag, {"id": client.next_id(), **attrs}, *children)
    reply = await client.send(element)
    assert reply.ok, xml.serialize(reply.response)
    return reply


class ClientView:
    """The client's copy of a folder: UIDs by index, changed only by reports."""

    def __init__(self, client: XimssClient, folder: str) -> None:
        self.client = client
        self.folder = folder
        self.uids: list[int | None] = []

    async def open(self, mailbox: str, *children: etree._Element, **attrs: str) -> Reply:
        reply = await call(self.client, "folderOpen",
                           {"folder": self.folder, "mailbox": mailbox, **attrs}, *children)  # fmt: skip
        (init,) = reply.of("folderReport")
        assert init.get("mode") == "init"
        self.uids = [None] * int(init.get("messages", "0"))
        return reply

    async def browse_all(self) -> list[int]:
        if self.uids:
            reply = await call(self.client, "folderBrowse", {"folder": self.folder},
                               index_range(0, len(self.uids) - 1))  # fmt: skip
            for report in reply.of("folderReport"):
                self.uids[int(report.get("index", "-1"))] = int(report.get("UID", "0"))
        return [u for u in self.uids if u is not None]

    async def sync(self) -> Reply:
        reply = await call(self.client, "folderSync", {"folder": self.folder})
        for report in reply.of("folderReport"):
            self.apply(report)
        return reply

    def apply(self, report: etree._Element) -> None:
        mode, index = report.get("mode"), int(report.get("index", "-1"))
        uid = int(report.get("UID", "0"))
        if mode == "removed":
            assert self.uids[index] in (uid, None), (index, uid, self.uids[index])
            del self.uids[index]
        elif mode == "added":
            self.uids.insert(index, uid)
        elif mode == "updated":
            assert self.uids[index] in (uid, None)
        if mode in ("removed", "added"):
            assert int(report.get("messages", "-1")) == len(self.uids)


class BehindTheBack:
    """Another IMAP client (stdlib imaplib, in a thread) changing the mailbox."""

    def __init__(self, port: int, account: devstack.Account) -> None:
        self.port = port
        self.account = account

    def _run(self, mailbox: str, work: str, *args: object) -> object:
        imap = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            imap.login(self.account.address, self.account.password)
            imap.select(mailbox)
            return getattr(self, f"_{work}")(imap, *args)
        finally:
            imap.logout()

    async def run(self, mailbox: str, work: str, *args: object) -> object:
        return await asyncio.to_thread(self._run, mailbox, work, *args)

    @staticmethod
    def _append(imap: imaplib.IMAP4, mailbox: str, message: bytes) -> None:
        status, _ = imap.append(mailbox, "", None, message)
        assert status == "OK"

    @staticmethod
    def _store(imap: imaplib.IMAP4, uid_set: str, change: str, flags: str) -> None:
        status, _ = imap.uid("STORE", uid_set, change, flags)
        assert status == "OK"

    @staticmethod
    def _expunge(imap: imaplib.IMAP4, uid_set: str) -> None:
        imap.uid("STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
        status, _ = imap.uid("EXPUNGE", uid_set)
        assert status == "OK"

    @staticmethod
    def _sort(imap: imaplib.IMAP4, program: str, *criteria: str) -> list[int]:
        status, data = imap.uid("SORT", program, "UTF-8", *(criteria or ("ALL",)))
        assert status == "OK"
        return [int(x) for x in (data[0] or b"").split()]

    @staticmethod
    def _uids(imap: imaplib.IMAP4) -> list[int]:
        status, data = imap.uid("SEARCH", "ALL")
        assert status == "OK"
        return [int(x) for x in (data[0] or b"").split()]


def message(subject: str, sender: str = "Carol <carol@example.org>", body: str = "hi") -> bytes:
    return (f"From: {sender}\r\nTo: user@example.test\r\nSubject: {subject}\r\n"
            f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@t>\r\n"
            f"\r\n{body}\r\n").encode()  # fmt: skip


def names(reply: Reply, field: str) -> Sequence[str]:
    return [r.findtext(field) or "" for r in reply.of("folderReport")]
