"""A small asyncio XMAP client over TCP, for tests, benchmarks and tools.

`call(command)` sends one typed command (bridge/xmap/commands.py) with its blob, and returns the
answer: the document root and, for GETFILE/GETMESSAGE, the blob. XMAP answers in order, so one
call at a time is all a client needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from lxml import etree

from bridge.xmap import commands as c
from bridge.xmap.codec import command_to_element
from bridge.xmap.framing import Decoder, Malformed, Message, Role, encode_command

READ_CHUNK = 64 * 1024
# Answers are larger than commands: a LISTFOLDER of 10,000 messages is about 3 MB of XML.
MAX_ANSWER_BYTES = 256 << 20


@dataclass(frozen=True, slots=True)
class Answer:
    root: etree._Element
    blob: bytes | None

    @property
    def first(self) -> etree._Element:
        """The answer's element inside XMAPROOT."""
        return next(child for child in self.root if isinstance(child.tag, str))

    @property
    def error(self) -> etree._Element | None:
        return self.first if self.first.tag == "ERROR" else None


class XmapFailed(Exception):
    def __init__(self, answer: Answer) -> None:
        error = answer.first
        super().__init__(f"{error.get('Command')} {error.get('Code')}: {error.get('Text')}")
        self.answer = answer
        self.code = error.get("Code")


class XmapClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_answer: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = Decoder(role=Role.CLIENT, max_frame=max_answer, max_blob=max_answer)
        self._ready: list[Message] = []

    @classmethod
    async def connect(cls, host: str, port: int) -> XmapClient:
        reader, writer = await asyncio.open_connection(host, port, limit=READ_CHUNK)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self, timeout: float = 30.0) -> Answer:
        """The next answer; EOFError when the server closed the connection first."""
        async with asyncio.timeout(timeout):
            while not self._ready:
                chunk = await self._reader.read(READ_CHUNK)
                if not chunk:
                    raise EOFError("the server closed the connection")
                for event in self._decoder.feed(chunk):
                    if isinstance(event, Malformed):
                        raise ValueError(f"malformed answer: {event.detail}")
                    self._ready.append(event)
        message = self._ready.pop(0)
        return Answer(message.root, message.blob)

    async def call(self, command: c.Command, *, check: bool = True) -> Answer:
        blob = getattr(command, "data", None)
        await self.send_raw(encode_command(command_to_element(command), blob))
        answer = await self.receive()
        if check and answer.error is not None:
            raise XmapFailed(answer)
        return answer

    async def login(self, user: str, password: str) -> Answer:
        return await self.call(c.Login(user, password))

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
