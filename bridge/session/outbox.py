"""Messages waiting for an HTTP session's long poll, numbered and kept until acknowledged.

Each non-empty poll reply gets the next sequence number (respSeq 1, 2, 3...). The client
acknowledges a reply by sending its number as ackSeq in a later poll; a reply not yet acknowledged
is sent again, unchanged, so a reply lost with its HTTP connection is never lost to the client.
A poll without ackSeq acknowledges everything sent before (clients that do not track numbers).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PollReply:
    seq: int
    payload: bytes


class Outbox:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending: list[bytes] = []
        self._sent: list[PollReply] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self._generation = 0
        self.overflowed = False
        self.closed = False

    def push(self, message: bytes) -> None:
        if len(self._pending) >= self._limit:
            # The client stopped polling; the session ends rather than growing without bound.
            self.overflowed = True
        else:
            self._pending.append(message)
        self._wake.set()

    def close(self) -> None:
        """The session ended: a waiting poll returns at once."""
        self.closed = True
        self._wake.set()

    def __len__(self) -> int:
        return len(self._pending) + len(self._sent)

    def _acknowledge(self, ack: int | None) -> None:
        if ack is None:
            self._sent.clear()
        else:
            self._sent = [reply for reply in self._sent if reply.seq > ack]

    def _take(self) -> PollReply | None:
        if self._sent:
            return self._sent[0]
        if not self._pending:
            return None
        self._seq += 1
        reply = PollReply(self._seq, b"".join(self._pending))
        self._pending.clear()
        self._sent.append(reply)
        return reply

    async def poll(self, ack: int | None, max_wait: float) -> PollReply | None:
        """The oldest unacknowledged reply, or new messages, waiting up to max_wait for them.
        A newer poll on the same session ends an older one that is still waiting."""
        self._acknowledge(ack)
        self._generation += 1
        generation = self._generation
        self._wake.set()  # wake an older waiter so it notices it was superseded
        await asyncio.sleep(0)
        self._wake.clear()
        if (reply := self._take()) is not None:
            return reply
        try:
            async with asyncio.timeout(max_wait):
                while True:
                    await self._wake.wait()
                    self._wake.clear()
                    if generation != self._generation:
                        return None
                    if (reply := self._take()) is not None:
                        return reply
                    if self.overflowed or self.closed:
                        return None
        except TimeoutError:
            return None
