"""Calendar item numbers (kept in the state store) and the shared change pollers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.protocols import CalendarInfo, CalendarStore
from bridge.errors import BridgeError, ErrorKind
from bridge.session import calendars
from bridge.session.calendar_watch import CalendarPollers
from bridge.session.calendars import ItemIdRegistry
from bridge.state.sqlite import SqliteStore


async def test_item_numbers_are_stable_across_sessions_and_restarts(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite")
    first = SqliteStore(path)
    registry = ItemIdRegistry(first)
    ids = await registry.get("a@x.test", "/a@x.test/Calendar/")
    one, two = ids.number("/c/1.ics", ""), ids.number("/c/2.ics", "20260101T090000Z")
    assert (one, two) == (1, 2)
    assert ids.number("/c/1.ics", "") == one  # the same item keeps its number
    assert await registry.get("a@x.test", "/a@x.test/Calendar/") is ids  # shared by sessions
    await ids.save()
    await first.close()

    restarted = SqliteStore(path)
    again = await ItemIdRegistry(restarted).get("a@x.test", "/a@x.test/Calendar/")
    assert again.item(two) == ("/c/2.ics", "20260101T090000Z")
    assert again.number("/c/3.ics", "") == 3  # numbers are never reused
    other = await ItemIdRegistry(restarted).get("b@x.test", "/a@x.test/Calendar/")
    assert other.item(one) is None  # per account
    await restarted.close()


async def test_item_numbers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendars, "MAX_IDS_PER_CALENDAR", 3)
    store = SqliteStore(":memory:")
    ids = await ItemIdRegistry(store).get("a@x.test", "/cal/")
    numbers = [ids.number(f"/c/{n}.ics", "") for n in range(5)]
    assert numbers == [1, 2, 3, 4, 5]
    assert ids.item(1) is None and ids.item(2) is None  # the oldest were forgotten
    assert ids.item(5) == ("/c/4.ics", "")
    await store.close()


class FakeStore:
    def __init__(self) -> None:
        self.state = "1"
        self.calls = 0
        self.fail = False

    async def sync_state(self, calendar: CalendarInfo) -> str:
        self.calls += 1
        if self.fail:
            raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE)
        return self.state


async def test_one_poller_per_calendar_notifies_every_subscriber_of_a_change() -> None:
    fake = FakeStore()

    async def getter() -> CalendarStore:
        return fake  # type: ignore[return-value]

    info = CalendarInfo("/a/Calendar/", "Calendar", "a@x.test")
    pollers = CalendarPollers()
    seen: list[str] = []
    stop_one = pollers.subscribe("a@x.test", info, 0.05, lambda: seen.append("one"), getter)
    stop_two = pollers.subscribe("a@x.test", info, 0.05, lambda: seen.append("two"), getter)
    assert len(pollers) == 1
    await asyncio.sleep(0.2)
    assert seen == []  # nothing changed yet
    fake.fail = True
    await asyncio.sleep(0.15)  # a server that does not answer is no change either
    fake.fail, fake.state = False, "2"
    await asyncio.sleep(0.2)
    assert sorted(seen) == ["one", "two"]
    stop_one()
    stop_two()
    assert len(pollers) == 0
    calls = fake.calls
    await asyncio.sleep(0.15)
    assert fake.calls == calls  # stopped with its last subscriber
    await pollers.stop()
