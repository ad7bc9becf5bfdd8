"""A fault-injecting TCP proxy: forwards between the bridge and a backend, and cuts one
connection after N bytes in one direction, counted from a trigger the client sends.

Arm it with a :class:`Cut`; the first connection whose client->server bytes contain the trigger
(or, with no trigger, the first connection opened afterwards) is the one cut. Counting starts at
the trigger's first byte in both directions: ``c2s`` counts what the client sends from the
trigger on, ``s2c`` what the server sends after the trigger was seen. When a direction would go
past N bytes, the first N are forwarded, then both sockets are closed (the backend "died" at that
byte). With ``n=None`` nothing is cut and the bytes of both directions are recorded, which is how
a test learns the exchange it then steps through.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Literal, Self

Direction = Literal["c2s", "s2c"]


@dataclass(eq=False)
class Cut:
    trigger: bytes | None
    direction: Direction = "c2s"
    n: int | None = None  # None: record only
    recorded: dict[str, bytearray] = field(
        default_factory=lambda: {"c2s": bytearray(), "s2c": bytearray()}
    )
    claimed: bool = False  # a connection has taken it
    fired: bool = False  # the connection was cut
    stopped: bool = False  # stop counting and recording (the operation is over)

    def allowed(self, direction: Direction, size: int) -> int | None:
        """How many of `size` further bytes may pass; None: all, and no cut."""
        if self.stopped or self.n is None or direction != self.direction:
            return None
        left = self.n - len(self.recorded[direction])
        return None if size <= left else max(0, left)


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and forwards each connection to ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.armed: Cut | None = None
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self._server.wait_closed()

    def arm(self, cut: Cut) -> Cut:
        self.armed = cut
        return cut

    def disarm(self) -> None:
        if self.armed is not None:
            self.armed.stopped = True
        self.armed = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        mine: list[Cut | None] = [None]
        if self.armed is not None and self.armed.trigger is None and not self.armed.claimed:
            self.armed.claimed = True
            mine[0] = self.armed
        done = asyncio.Event()

        def cut_all() -> None:
            writer.transport.abort()  # the bridge sees a reset, as from a crashed server
            up_writer.close()  # the server sees the connection end
            done.set()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, d: Direction) -> None:
            try:
                while chunk := await src.read(65536):
                    if mine[0] is not None and mine[0].stopped:
                        mine[0] = None  # that operation is over: look for the next trigger
                    if mine[0] is None and d == "c2s":
                        cut = self.armed
                        if cut is not None and not cut.claimed and cut.trigger is not None:
                            at = chunk.find(cut.trigger)
                            if at >= 0:
                                cut.claimed = True
                                mine[0] = cut
                                dst.write(chunk[:at])
                                chunk = chunk[at:]
                    cut = mine[0]
                    if cut is not None and not cut.stopped:
                        allowed = cut.allowed(d, len(chunk))
                        if allowed is not None:
                            cut.recorded[d] += chunk[:allowed]
                            dst.write(chunk[:allowed])
                            with contextlib.suppress(OSError):
                                await dst.drain()
                            cut.fired = True
                            cut_all()
                            return
                        cut.recorded[d] += chunk
                    dst.write(chunk)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                done.set()

        tasks = [
            asyncio.create_task(pump(reader, up_writer, "c2s")),
            asyncio.create_task(pump(up_reader, writer, "s2c")),
        ]
        try:
            await done.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()


class HangingServer:
    """Accepts connections and never says a byte (a backend stuck after accept)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []
        self.port = 0
        self.accepted = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._held:
            writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._held.append(writer)  # kept open, never written to
