"""Change polling for open calendars: one poller per (account, calendar), shared by every session
that has the calendar open, asking the server for the calendar's sync state (sync-token or
getctag: one PROPFIND) every `caldav.poll_seconds`. A changed state calls every subscriber, which
sends its one `calendarReport mode="notify"` until the client's next findEvents."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable

from adapters.protocols import CalendarInfo, CalendarStore
from bridge.errors import BridgeError

log = logging.getLogger("bridge.session")

StoreGetter = Callable[[], Awaitable[CalendarStore]]


class CalendarPoller:
    def __init__(self, info: CalendarInfo, interval: float) -> None:
        self.info = info
        self.interval = interval
        # token -> (changed callback, how to reach the server as that subscriber)
        self._subscribers: dict[int, tuple[Callable[[], None], StoreGetter]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, token: int, changed: Callable[[], None], store: StoreGetter) -> None:
        self._subscribers[token] = (changed, store)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"calendar-poll {self.info.href}")

    def remove(self, token: int) -> bool:
        """Forget a subscriber; True when nobody is left (the poller has then stopped)."""
        self._subscribers.pop(token, None)
        if self._subscribers:
            return False
        if self._task is not None:
            self._task.cancel()
            self._task = None
        return True

    async def _state(self) -> str | None:
        # Any subscriber's login will do; the newest is the likeliest to be alive.
        for _, getter in reversed(list(self._subscribers.values())):
            try:
                store = await getter()
                return await store.sync_state(self.info)
            except BridgeError as exc:
                log.info("calendar poll failed (%s)", exc.kind.value)
            except Exception:
                # A bug must not end the polling of everyone's calendar silently.
                log.exception("calendar poll failed unexpectedly")
        return None

    async def _run(self) -> None:
        last = await self._state()
        while self._subscribers:
            await asyncio.sleep(self.interval)
            state = await self._state()
            if state is None:
                continue
            if last is not None and state != last:
                for changed, _ in list(self._subscribers.values()):
                    changed()
            last = state

    async def stop(self) -> None:
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class CalendarPollers:
    """Pollers by (account, calendar href), started on first interest, stopped on last."""

    def __init__(self) -> None:
        self._pollers: dict[tuple[str, str], CalendarPoller] = {}
        self._tokens = itertools.count(1)

    def subscribe(
        self,
        account: str,
        info: CalendarInfo,
        interval: float,
        changed: Callable[[], None],
        store: StoreGetter,
    ) -> Callable[[], None]:
        key = (account, info.href)
        poller = self._pollers.get(key)
        if poller is None:
            poller = self._pollers[key] = CalendarPoller(info, interval)
        token = next(self._tokens)
        poller.add(token, changed, store)

        def unsubscribe() -> None:
            if poller.remove(token) and self._pollers.get(key) is poller:
                del self._pollers[key]

        return unsubscribe

    def __len__(self) -> int:
        return len(self._pollers)

    async def stop(self) -> None:
        pollers, self._pollers = list(self._pollers.values()), {}
        for poller in pollers:
            await poller.stop()
