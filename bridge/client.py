"""A small asyncio XIMSS client over TCP: for tests, benchmarks and the `shell` command.

Requests get ids of the client's choosing; `request()` returns the data messages that carried the
id and the final `<response>`. Messages without an id (alerts, notify reports) are queued as
unsolicited and can be awaited with `unsolicited()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from ssl import SSLContext

from lxml import etree

from bridge import xml
from bridge.ximss.framing import FrameDecoder, encode_frame


@dataclass(slots=True)
class Reply:
    data: list[etree._Element]
    response: etree._Element

    @property
    def ok(self) -> bool:
        return self.response.get("errorNum") is None

    @property
    def error_num(self) -> str | None:
        return self.response.get("errorNum")

    def of(self, tag: str) -> list[etree._Element]:
        return [item for item in self.data if item.tag == tag]


class XimssError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.response.get('errorNum')}: {reply.response.get('errorText')}")
        self.reply = reply


@dataclass(slots=True)
class _Waiting:
    data: list[etree._Element] = field(default_factory=list)
    future: asyncio.Future[Reply] | None = None


class XimssClient:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame: int
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_frame)
        self._waiting: dict[str, _Waiting] = {}
        self._unsolicited: asyncio.Queue[etree._Element] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._task = asyncio.create_task(self._read_loop(), name="ximss-client-reader")
        self.closed = asyncio.Event()
        self.session: etree._Element | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, max_frame: int = 64 << 20, *, ssl: SSLContext | None = None
    ) -> XimssClient:
        """A connection, encrypted from the start when `ssl` is given (the implicit-TLS port)."""
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
        return cls(reader, writer, max_frame)

    async def _read_loop(self) -> None:
        try:
            while chunk := await self._reader.read(65536):
                for frame in self._decoder.feed(chunk):
                    self._dispatch(xml.parse(frame, max_depth=1000))
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for waiting in self._waiting.values():
                if waiting.future is not None and not waiting.future.done():
                    waiting.future.set_exception(ConnectionError("connection closed"))

    def _dispatch(self, message: etree._Element) -> None:
        msg_id = message.get("id")
        waiting = self._waiting.get(msg_id) if msg_id is not None else None
        if waiting is None:
            self._unsolicited.put_nowait(message)
            return
        if message.tag == "response":
            del self._waiting[msg_id]  # type: ignore[arg-type]
            if waiting.future is not None and not waiting.future.done():
                waiting.future.set_result(Reply(waiting.data, message))
        else:
            waiting.data.append(message)

    def next_id(self) -> str:
        return f"C{next(self._ids)}"

    async def send_raw(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def request(
        self,
        tag: str,
        attrs: dict[str, str] | None = None,
        *,
        children: Sequence[etree._Element] = (),
    ) -> Reply:
        element = xml.element(tag, {"id": self.next_id(), **(attrs or {})})
        for child in children:
            element.append(child)
        return await self.send(element)

    async def send(self, element: etree._Element) -> Reply:
        msg_id = element.get("id")
        assert msg_id is not None, "requests need an id"
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = _Waiting(future=future)
        await self.send_raw(encode_frame(xml.serialize(element)))
        return await future

    async def call(
        self,
        tag: str,
        attrs: dict[str, str] | None = None,
        *,
        children: Sequence[etree._Element] = (),
    ) -> Reply:
        """`request` that raises XimssError on an error response."""
        reply = await self.request(tag, attrs, children=children)
        if not reply.ok:
            raise XimssError(reply)
        return reply

    async def login(self, user: str, password: str) -> etree._Element:
        reply = await self.call("login", {"authData": user, "password": password})
        self.session = reply.of("session")[0]
        return self.session

    async def starttls(self, context: SSLContext, server_hostname: str | None = None) -> Reply:
        """`starttls`, then the TLS handshake on this connection; raises XimssError when refused.

        The read loop goes on across the upgrade: the bridge sends nothing between its response
        and the handshake, and afterwards the stream hands it decrypted bytes.
        """
        reply = await self.call("starttls")
        if server_hostname is None:
            server_hostname = str(self._writer.get_extra_info("peername")[0])
        await self._writer.start_tls(context, server_hostname=server_hostname)
        return reply

    async def unsolicited(self, timeout: float = 5.0) -> etree._Element:
        async with asyncio.timeout(timeout):
            return await self._unsolicited.get()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
