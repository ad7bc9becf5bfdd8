"""Zero-byte message framing for XIMSS and XMAP over TCP (sans-IO).

Each message is one XML document followed by a NUL byte. The decoder never buffers more than the
configured frame limit: once a frame grows past it, `FrameTooLarge` is raised and the caller closes
the connection, so a 50 MB frame costs at most `max_frame` bytes of memory.
"""

from __future__ import annotations


class FrameTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"frame exceeds {limit} bytes")
        self.limit = limit


class FrameDecoder:
    __slots__ = ("_buffer", "_max_frame", "_scan_from")

    def __init__(self, max_frame: int) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        # Where the NUL search resumes, so a frame arriving byte by byte is scanned once.
        self._scan_from = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every complete frame (without its NUL), in order."""
        self._buffer += data
        frames: list[bytes] = []
        start = 0
        scan = self._scan_from
        while True:
            end = self._buffer.find(b"\x00", scan)
            if end < 0:
                break
            if end - start > self._max_frame:
                raise FrameTooLarge(self._max_frame)
            frame = bytes(self._buffer[start:end])
            if frame.strip():
                frames.append(frame)
            start = end + 1
            scan = start
        if start:
            del self._buffer[:start]
        self._scan_from = len(self._buffer)
        if len(self._buffer) > self._max_frame:
            raise FrameTooLarge(self._max_frame)
        return frames

    @property
    def limit(self) -> int:
        return self._max_frame

    @property
    def pending(self) -> int:
        return len(self._buffer)


def encode_frame(document: bytes) -> bytes:
    return document + b"\x00"
