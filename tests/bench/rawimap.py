"""A raw-socket IMAP client for benchmarks: the floor any client pays for the same work.

asyncio streams only; a command is written and bytes are read until its tagged reply. No response
parsing beyond finding the tag, except the few helpers used outside timed sections (`modseq`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterable

READ_CHUNK = 1 << 18
_PAIR = re.compile(rb"([A-Za-z]+) (\d+)")


class ImapError(Exception):
    pass


class RawImap:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._counter = 0
        self._capabilities: bytes | None = None

    @classmethod
    async def connect(
        cls, port: int, user: str, password: str, mailbox: str | None = "INBOX"
    ) -> RawImap:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        try:
            greeting = await reader.readline()
            if not greeting.startswith(b"* OK"):
                raise ImapError(f"unexpected greeting {greeting!r}")
            await client.command(f'LOGIN "{user}" "{password}"')
            if mailbox is not None:
                await client.command(f'SELECT "{mailbox}" (CONDSTORE)')
        except BaseException:
            await client.close()
            raise
        return client

    def _tag(self) -> bytes:
        self._counter += 1
        return b"r%d" % self._counter

    async def _until_tagged(self, tag: bytes) -> bytes:
        """Read until the line starting with `tag`; the whole response, tagged line included."""
        buffer = bytearray()
        marker = b"\r\n" + tag + b" "
        searched = 0
        while True:
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                raise ImapError("connection closed")
            buffer += chunk
            if buffer.startswith(tag + b" "):
                at = 0
            else:
                found = buffer.find(marker, max(0, searched - len(marker)))
                at = -1 if found < 0 else found + 2
            searched = len(buffer)
            if at >= 0:
                end = buffer.find(b"\r\n", at)
                while end < 0:
                    more = await self._reader.read(READ_CHUNK)
                    if not more:
                        raise ImapError("connection closed")
                    buffer += more
                    end = buffer.find(b"\r\n", at)
                line = bytes(buffer[at:end])
                if not line.startswith(tag + b" OK"):
                    raise ImapError(line.decode("utf-8", "replace"))
                return bytes(buffer)

    async def command(self, text: str) -> bytes:
        tag = self._tag()
        self._writer.write(tag + b" " + text.encode() + b"\r\n")
        return await self._until_tagged(tag)

    async def timed(self, text: str) -> tuple[float, int]:
        """Seconds from writing the command to reading its tagged OK, and the bytes received."""
        started = time.perf_counter()
        data = await self.command(text)
        return time.perf_counter() - started, len(data)

    async def append(self, mailbox: str, message: bytes, flags: str = "") -> None:
        tag = self._tag()
        flag_part = f" ({flags})" if flags else ""
        self._writer.write(tag + f' APPEND "{mailbox}"{flag_part} {{{len(message)}}}\r\n'.encode())
        line = await self._reader.readline()
        if not line.startswith(b"+"):
            raise ImapError(f"APPEND refused: {line!r}")
        self._writer.write(message + b"\r\n")
        await self._until_tagged(tag)

    async def has(self, capability: str) -> bool:
        if self._capabilities is None:
            self._capabilities = (await self.command("CAPABILITY")).upper()
        first_line = self._capabilities.split(b"\r\n", 1)[0]
        return capability.upper().encode() in first_line.split()

    async def status(self, mailbox: str, *items: str) -> dict[str, int]:
        """STATUS values by item name (untimed use: this parses the response)."""
        data = await self.command(f'STATUS "{mailbox}" ({" ".join(items)})')
        found = {m.group(1).decode().upper(): int(m.group(2)) for m in _PAIR.finditer(data)}
        missing = [item for item in items if item.upper() not in found]
        if missing:
            raise ImapError(f"STATUS without {missing}")
        return found

    async def modseq(self, mailbox: str = "INBOX") -> int:
        return (await self.status(mailbox, "HIGHESTMODSEQ"))["HIGHESTMODSEQ"]

    async def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            self._writer.write(b"z LOGOUT\r\n")
            await asyncio.wait_for(self._writer.drain(), 2)
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 2)


def sequence_set(uids: Iterable[int]) -> str:
    """1,2,3,7,9,10 -> "1:3,7,9:10"."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("empty set")
    parts: list[str] = []
    low = high = ordered[0]
    for uid in ordered[1:]:
        if uid == high + 1:
            high = uid
            continue
        parts.append(f"{low}:{high}" if high > low else str(low))
        low = high = uid
    parts.append(f"{low}:{high}" if high > low else str(low))
    return ",".join(parts)
