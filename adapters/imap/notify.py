"""Account-wide change reports with IMAP NOTIFY (RFC 5465), for `reportMailboxChanges`.

One connection of its own per watching session, with nothing selected: `NOTIFY SET (personal
(MessageNew MessageExpunge FlagChange))` makes the server push a `STATUS` response for a mailbox
whose messages came, went or changed flags. Dovecot sends them about half a second after the
change, coalesced, with or without IDLE; the connection idles anyway so that servers which only
push during IDLE work too, and so it is never dropped as inactive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from adapters.imap.client import ImapClient
from adapters.imap.watch import IDLE_SECONDS, keep_connected
from adapters.imap.wire import Atom, Untagged
from bridge.errors import BridgeError, ErrorKind

log = logging.getLogger("adapters.imap")

EVENTS = (Atom("MessageNew"), Atom("MessageExpunge"), Atom("FlagChange"))


class AccountNotifier:
    """Calls `changed(server_name)` for each mailbox the server reports; reconnects on loss."""

    def __init__(
        self, connect: Callable[[], Awaitable[ImapClient]], changed: Callable[[str], None]
    ) -> None:
        self._connect = connect
        self._changed = changed
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="imap-notify")

    def _event(self, response: Untagged) -> None:
        if response.kind == "STATUS" and response.values:
            name = response.values[0]
            self._changed(name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name))

    async def _run(self) -> None:
        await keep_connected(self._connect, self._watch, self._stop, "mailbox change reports")

    async def _watch(self, client: ImapClient) -> None:
        if not client.has("NOTIFY"):
            log.info("the IMAP server has no NOTIFY: mailbox changes are not reported")
            self._stop.set()
            return
        client.on_unsolicited = self._event
        await client.execute("NOTIFY", Atom("SET"), [Atom("personal"), list(EVENTS)])
        self.ready.set()
        while not self._stop.is_set() and not client.closed:
            await client.idle(self._stop, IDLE_SECONDS)

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(5):
                await self._task
        self._task.cancel()


def unsupported() -> BridgeError:
    return BridgeError(
        ErrorKind.NOT_SUPPORTED, "mailbox change reports need a password login and IMAP NOTIFY"
    )
