"""An independent view of the IMAP server (aioimaplib), to see what the bridge changed there."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aioimaplib

LIST_LINE = re.compile(rb'^\(([^)]*)\) (?:"[^"]*"|NIL) (.+)$')


def decode_mutf7(name: str) -> str:
    """RFC 3501 modified UTF-7, decoded without the bridge's own codec."""
    out, i = [], 0
    while i < len(name):
        if name[i] == "&":
            end = name.index("-", i)
            chunk = name[i + 1 : end]
            if not chunk:
                out.append("&")
            else:
                raw = chunk.replace(",", "/")
                raw += "=" * (-len(raw) % 4)
                out.append(base64.b64decode(raw).decode("utf-16-be"))
            i = end + 1
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


class ImapView:
    def __init__(self, imap: aioimaplib.IMAP4) -> None:
        self.imap = imap

    async def mailboxes(self, command: str = "LIST") -> dict[str, set[str]]:
        """name (UTF-8) -> flags, for every mailbox the user can see."""
        if command == "LIST":
            response = await self.imap.list('""', "*")
        else:
            response = await self.imap.lsub('""', "*")
        found: dict[str, set[str]] = {}
        for line in response.lines:
            if not isinstance(line, bytes | bytearray):
                continue
            match = LIST_LINE.match(bytes(line))
            if match is None:
                continue
            name = match.group(2).decode()
            if name.startswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            found[decode_mutf7(name)] = set(match.group(1).decode().split())
        return found


@asynccontextmanager
async def imap_view(port: int, user: str, password: str) -> AsyncIterator[ImapView]:
    imap = aioimaplib.IMAP4(host="127.0.0.1", port=port, timeout=10)
    await imap.wait_hello_from_server()
    response = await imap.login(user, password)
    assert response.result == "OK", response
    try:
        yield ImapView(imap)
    finally:
        await imap.logout()
