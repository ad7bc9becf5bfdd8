"""A raw-socket XIMSS client for benchmarks, the counterpart of rawimap.RawImap: a request is
written as one zero-terminated frame and bytes are read until its `<response>` frame, with no
parsing beyond finding it. Both sides of a comparison then pay only the socket."""

from __future__ import annotations

import asyncio
import contextlib
import time
from xml.sax.saxutils import quoteattr

READ_CHUNK = 1 << 18


class XimssError(Exception):
    pass


class RawXimss:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._counter = 0

    @classmethod
    async def connect(cls, port: int, user: str, password: str) -> RawXimss:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        try:
            reply = await client.call(
                "login", f"userName={quoteattr(user)} password={quoteattr(password)}"
            )
            if b"errorNum" in reply:
                raise XimssError(reply.decode(errors="replace"))
        except BaseException:
            await client.close()
            raise
        return client

    async def call(self, operation: str, attributes: str = "", body: str = "") -> bytes:
        """Send `<operation id=N attributes>body</operation>`; every frame up to its response."""
        self._counter += 1
        request_id = str(self._counter)
        text = f'<{operation} id="{request_id}" {attributes}>{body}</{operation}>'
        self._writer.write(text.encode() + b"\x00")
        return await self._until_response(request_id.encode())

    async def timed(
        self, operation: str, attributes: str = "", body: str = ""
    ) -> tuple[float, bytes]:
        started = time.perf_counter()
        reply = await self.call(operation, attributes, body)
        return time.perf_counter() - started, reply

    async def _until_response(self, request_id: bytes) -> bytes:
        buffer = bytearray()
        marker = b'<response id="' + request_id + b'"'
        searched = 0
        while True:
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                raise XimssError("connection closed")
            buffer += chunk
            found = buffer.find(marker, max(0, searched - len(marker)))
            if found >= 0 and buffer.find(b"\x00", found) >= 0:
                return bytes(buffer)
            searched = len(buffer)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self._writer.wait_closed()
