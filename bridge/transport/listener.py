"""What every TCP listener of the bridge shares: its server socket, connections run as tracked
tasks of ours (not asyncio's callback tasks: cancelling those at shutdown makes Python 3.11's
stream protocol log a spurious CancelledError), refusal past `limits.max_connections`, and a stop
that ends every connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Final, Protocol

from bridge.services import Services
from bridge.transport.tasks import TaskSet

log = logging.getLogger("bridge.tcp")

READ_CHUNK: Final = 64 * 1024


class Connection(Protocol):
    peer: str

    def run(self) -> Coroutine[Any, Any, None]: ...


class StreamListener:
    def __init__(self, services: Services, host: str, port: int, name: str) -> None:
        self._services = services
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections = TaskSet(name)
        # The connections being served, for the shutdown drain.
        self.live: set[Connection] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def _listen(self, **options: Any) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, limit=READ_CHUNK, reuse_address=True, **options
        )

    def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Connection:
        raise NotImplementedError

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self._services.settings.limits.max_connections:
            log.warning(
                "%s: connection limit reached, refusing a connection", self._connections.name
            )
            writer.close()
            return
        connection = self._connection(reader, writer)
        self.live.add(connection)
        task = self._connections.spawn(connection.run(), connection.peer)
        task.add_done_callback(lambda _: self.live.discard(connection))

    def stop_accepting(self) -> None:
        """Close the server socket: no new connections, those open go on (shutdown drain)."""
        if self._server is not None:
            self._server.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._connections.cancel_all()
        if self._server is not None:
            await self._server.wait_closed()
