"""Change watchers: one IDLE connection per (account, mailbox), shared by every folder of every
session that shows the mailbox, so a mailbox is watched once however many clients look at it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from adapters.imap.client import ImapClient
from adapters.imap.wire import Arg, Atom, Untagged
from bridge.errors import BridgeError

log = logging.getLogger("adapters.imap")

CHANGE_KINDS = frozenset({"EXISTS", "EXPUNGE", "FETCH", "VANISHED"})
# Servers may drop an IDLE after 30 minutes (RFC 2177); renew well before.
IDLE_SECONDS = 25 * 60
RETRY_SECONDS = 2.0


async def keep_connected(
    connect: Callable[[], Awaitable[ImapClient]],
    use: Callable[[ImapClient], Awaitable[None]],
    stop: asyncio.Event,
    what: str,
    on_lost: Callable[[], None] | None = None,
) -> None:
    """Run `use` on a connection of its own until `stop` is set, connecting again (after
    RETRY_SECONDS) whenever the connection is lost; `on_lost` is told each time."""
    while not stop.is_set():
        client: ImapClient | None = None
        try:
            client = await connect()
            await use(client)
        except BridgeError as exc:
            log.info("%s lost its connection (%s); retrying", what, exc.kind.value)
        finally:
            if client is not None:
                await client.close()
        if not stop.is_set():
            if on_lost is not None:
                on_lost()  # whatever happened while we were away counts as a change
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RETRY_SECONDS):
                    await stop.wait()


class MailboxWatcher:
    def __init__(self, server_name: str, connect: Callable[[], Awaitable[ImapClient]]) -> None:
        self.server_name = server_name
        self._connect = connect
        self._callbacks: list[Callable[[], None]] = []
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"imap-watch {server_name}")
        self.ready = asyncio.Event()

    def add(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def remove(self, callback: Callable[[], None]) -> bool:
        """Forget a callback; True when nobody is left watching."""
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)
        return not self._callbacks

    def _event(self, response: Untagged) -> None:
        # A message added and expunged between two pushes can leave only a higher
        # HIGHESTMODSEQ behind: that is a change too.
        modseq = response.code is not None and response.code.name == "HIGHESTMODSEQ"
        if response.kind in CHANGE_KINDS or modseq:
            for callback in list(self._callbacks):
                callback()

    async def _run(self) -> None:
        await keep_connected(
            self._connect, self._watch, self._stop, "watcher of a mailbox", self._maybe_changed
        )

    def _maybe_changed(self) -> None:
        self._event(Untagged("EXISTS", None, None, "", []))

    async def _watch(self, client: ImapClient) -> None:
        client.on_unsolicited = self._event
        # EXAMINE: read-only, so watching never takes \\Recent from the user.
        # With CONDSTORE on, IDLE also reports a higher HIGHESTMODSEQ: the only trace a
        # message added and expunged again between two pushes leaves.
        modifier: list[Arg] = [[Atom("CONDSTORE")]] if client.has("CONDSTORE") else []
        await client.execute(
            "EXAMINE", self.server_name, *modifier,
            wants=("EXISTS", "RECENT", "FLAGS", "OK"),
        )  # fmt: skip
        self.ready.set()
        # A change between a folder's opening and this start would go unseen: say
        # "maybe changed" once (the spec lets a server send a notify too many).
        self._maybe_changed()
        while not self._stop.is_set() and not client.closed:
            await client.idle(self._stop, IDLE_SECONDS)

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(5):
                await self._task
        self._task.cancel()


class WatcherRegistry:
    """Watchers by (account, server mailbox name), started on first interest, stopped on last."""

    def __init__(self) -> None:
        self._watchers: dict[tuple[str, str], MailboxWatcher] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def subscribe(
        self,
        account: str,
        server_name: str,
        connect: Callable[[], Awaitable[ImapClient]],
        callback: Callable[[], None],
    ) -> Callable[[], None]:
        key = (account, server_name)
        watcher = self._watchers.get(key)
        if watcher is None:
            watcher = self._watchers[key] = MailboxWatcher(server_name, connect)
        watcher.add(callback)

        def unsubscribe() -> None:
            if watcher.remove(callback) and self._watchers.get(key) is watcher:
                del self._watchers[key]
                task = asyncio.create_task(watcher.stop(), name="imap-watch-stop")
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)

        return unsubscribe

    def watcher(self, account: str, server_name: str) -> MailboxWatcher | None:
        return self._watchers.get((account, server_name))

    def __len__(self) -> int:
        return len(self._watchers)

    async def stop(self) -> None:
        watchers, self._watchers = list(self._watchers.values()), {}
        await asyncio.gather(*(w.stop() for w in watchers), *self._stopping, return_exceptions=True)
