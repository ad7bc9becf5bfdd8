"""A raw NUL-framed TCP connection for byte-exact transcripts and hostile input."""

from __future__ import annotations

import asyncio
import contextlib

from bridge.ximss.framing import FrameDecoder


class RawConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._decoder = FrameDecoder(64 << 20)
        self._frames: list[bytes] = []

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frames(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """Exactly the next `count` messages (without their NULs)."""
        async with asyncio.timeout(timeout):
            while len(self._frames) < count:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(f"closed after {len(self._frames)} of {count} frames")
                self._frames.extend(self._decoder.feed(chunk))
        taken, self._frames = self._frames[:count], self._frames[count:]
        return taken

    async def closed_by_peer(self, timeout: float = 10.0) -> bool:
        """True once the bridge closes the connection; frames sent before are kept."""
        try:
            async with asyncio.timeout(timeout):
                while chunk := await self.reader.read(65536):
                    self._frames.extend(self._decoder.feed(chunk))
        except TimeoutError:
            return False
        except ConnectionError:
            pass  # a reset: the bridge closed with our unread bytes still in its buffer
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
