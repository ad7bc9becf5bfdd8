"""A session's calendars: the CalDAV login it makes when first needed, its open calendars, and
the numeric item UIDs clients see.

XIMSS names calendar items by a number ("the message UID") while CalDAV names them by resource
href, and a recurring item has many occurrences in one resource. `ItemIds` numbers each
(href, recurrence id) pair once and keeps the number for as long as the bridge runs, for every
session of the account (the registry is shared), and across restarts (it is kept in the state
store, key `ximss:calids:<account>:<calendar href>`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.protocols import CalendarConnector, CalendarInfo, CalendarStore
from bridge.errors import BridgeError, ErrorKind
from bridge.state import Store

log = logging.getLogger("bridge.session")

# Item numbers one calendar keeps; past it the oldest are forgotten (a client still holding one
# gets "not found" and finds events again).
MAX_IDS_PER_CALENDAR = 200_000


class CalendarLogin:
    """The session's CalDAV store, logged in with the mail credentials on first use."""

    def __init__(self, connector: CalendarConnector, account: str, password: str) -> None:
        self._connector = connector
        self._account = account
        self._password = password
        self._store: CalendarStore | None = None
        self._stale = False  # the password changed since the store logged in
        self._lock = asyncio.Lock()

    async def store(self) -> CalendarStore:
        async with self._lock:
            if self._stale and self._store is not None:
                await self._store.close()
                self._store = None
            self._stale = False
            if self._store is None:
                self._store = await self._connector.connect(self._account, self._password)
            return self._store

    def set_password(self, password: str) -> None:
        """passwordModify: the next request logs in again with the new password."""
        self._password = password
        self._stale = True

    async def close(self) -> None:
        async with self._lock:
            old, self._store = self._store, None
        if old is not None:
            await old.close()


class ItemIds:
    """Numbers for (href, recurrence id) pairs of one calendar; numbers are never reused."""

    def __init__(self, key: str, state: Store) -> None:
        self._key = key
        self._state = state
        self._by_item: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, tuple[str, str]] = {}
        self._next = 1
        self._dirty = False
        self._loaded = False
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        async with self._lock:
            if self._loaded:
                return
            self._loaded = True
            try:
                raw = await self._state.get(self._key)
            except Exception:
                log.exception("calendar item numbers could not be read")
                return
            if raw is None:
                return
            try:
                stored = json.loads(raw)
                self._next = int(stored["next"])
                for href, rid, number in stored["ids"]:
                    self._remember((str(href), str(rid)), int(number))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring unreadable calendar item numbers at %s", self._key)

    def _remember(self, item: tuple[str, str], number: int) -> None:
        self._by_item[item] = number
        self._by_id[number] = item

    def number(self, href: str, recurrence_id: str) -> int:
        item = (href, recurrence_id)
        found = self._by_item.get(item)
        if found is not None:
            return found
        number = self._next
        self._next += 1
        self._remember(item, number)
        while len(self._by_id) > MAX_IDS_PER_CALENDAR:
            oldest = next(iter(self._by_id))
            del self._by_item[self._by_id.pop(oldest)]
        self._dirty = True
        return number

    def item(self, number: int) -> tuple[str, str] | None:
        """(href, recurrence id) of a number handed out before; None when unknown."""
        return self._by_id.get(number)

    async def save(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        ids = [[href, rid, number] for number, (href, rid) in self._by_id.items()]
        try:
            await self._state.set(self._key, json.dumps({"next": self._next, "ids": ids}).encode())
        except Exception:
            log.exception("calendar item numbers could not be stored")


class ItemIdRegistry:
    """One ItemIds per (account, calendar href) for the whole process."""

    def __init__(self, state: Store) -> None:
        self._state = state
        self._ids: dict[tuple[str, str], ItemIds] = {}

    async def get(self, account: str, href: str) -> ItemIds:
        key = (account, href)
        ids = self._ids.get(key)
        if ids is None:
            ids = self._ids[key] = ItemIds(f"ximss:calids:{account}:{href}", self._state)
        await ids.load()
        return ids


@dataclass(eq=False)
class OpenCalendar:
    name: str  # the client's name for it
    info: CalendarInfo
    ids: ItemIds
    # A notify report was sent and no findEvents has happened since (one per findEvents).
    notified: bool = False
    # Ends the change polling for this calendar.
    unwatch: Callable[[], None] | None = None


@dataclass(eq=False)
class Calendars:
    login: CalendarLogin | None = None
    open: dict[str, OpenCalendar] = field(default_factory=dict)

    async def store(self) -> CalendarStore:
        if self.login is None:
            raise BridgeError(
                ErrorKind.NOT_SUPPORTED,
                "calendars need a CalDAV server for the domain and a password login",
            )
        return await self.login.store()

    def get(self, name: str) -> OpenCalendar:
        found = self.open.get(name)
        if found is None:
            raise BridgeError(ErrorKind.NOT_FOUND, "unknown calendar")
        return found

    def close(self, name: str) -> OpenCalendar | None:
        calendar = self.open.pop(name, None)
        if calendar is not None and calendar.unwatch is not None:
            calendar.unwatch()
        return calendar

    async def close_all(self) -> None:
        for name in list(self.open):
            self.close(name)
        if self.login is not None:
            await self.login.close()
