"""The CalDAV adapter (adapters/caldav) against a real private Radicale (deploy/caldav_server.py).

One Radicale for the module, on a free loopback port in a scratch root. Each test logs in as its
own fresh user (added while the server runs), so tests never see each other's calendars; the
sharing tests use the fixed users the server was started with.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from adapters.caldav import CalDavConnector, CalDavRequestFailed, CalDavStore
from adapters.caldav.wire import resource_name
from adapters.protocols import CalendarInfo, CalendarResource, CalendarStore
from bridge.errors import BridgeError, ErrorKind

REPO = Path(__file__).resolve().parents[2]


def _load_radicale_module() -> ModuleType:
    # By path, under a name of its own: "import radicale" is the server package (or, with
    # deploy/ on sys.path, whichever of the two comes first).
    spec = importlib.util.spec_from_file_location(
        "devstack_radicale", REPO / "deploy" / "caldav_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["devstack_radicale"] = module
    spec.loader.exec_module(module)
    return module


rad = _load_radicale_module()

OWNER = "owner@example.test"
READER = "reader@example.test"
WRITER = "writer@example.test"
STRANGER = "stranger@example.test"
FIXED_USERS = {u: u.partition("@")[0] + "pass" for u in (OWNER, READER, WRITER, STRANGER)}
SHARES = (
    rad.Share(OWNER, "Calendar", READER),
    rad.Share(OWNER, "Team", WRITER, write=True),
)
_counter = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def radicale() -> Iterator[rad.Radicale]:
    root = Path(tempfile.mkdtemp(prefix="xb-radicale-"))
    server = rad.Radicale(root, free_port(), FIXED_USERS, shares=SHARES)
    try:
        server.start()
        yield server
    finally:
        pid = server.pid
        server.stop()
        assert pid is None or not pid_alive(pid)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def connector(radicale: rad.Radicale) -> CalDavConnector:
    return CalDavConnector(radicale.url, timeout=10)


def new_user(radicale: rad.Radicale) -> tuple[str, str]:
    login = f"cal{os.getpid()}x{next(_counter)}@example.test"
    password = f"pw-ü€-{next(_counter)}"  # UTF-8 in HTTP Basic, as IMAP passwords may be
    radicale.add_user(login, password)
    return login, password


@pytest.fixture
def user(radicale: rad.Radicale) -> tuple[str, str]:
    """A fresh login and password, added while the server runs."""
    return new_user(radicale)


@pytest.fixture
async def store(connector: CalDavConnector, user: tuple[str, str]) -> AsyncIterator[CalDavStore]:
    opened = await connector.connect(*user)
    yield opened
    await opened.close()


def event(
    uid: str, start: str = "20250110T100000Z", end: str = "20250110T110000Z", **extra: str
) -> str:
    lines = [f"{k.replace('_', '-').upper()}:{v}" for k, v in extra.items()]
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//ximss-bridge tests//EN", "BEGIN:VEVENT",
        f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"DTSTART:{start}", f"DTEND:{end}",
        "SUMMARY:test event", *lines, "END:VEVENT", "END:VCALENDAR", "",
    ])  # fmt: skip


def todo(uid: str, due: str) -> str:
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//ximss-bridge tests//EN", "BEGIN:VTODO",
        f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"DUE:{due}", "SUMMARY:test task",
        "END:VTODO", "END:VCALENDAR", "",
    ])  # fmt: skip


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(login, password)}


async def raw_request(
    radicale: rad.Radicale, method: str, path: str, login: str, password: str,
    body: str = "", headers: dict[str, str] | None = None,
) -> tuple[int, str]:  # fmt: skip
    """A request by another client than the adapter (plain aiohttp)."""
    url = radicale.url.rstrip("/") + path.replace("@", "%40")
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, url, data=body.encode(), headers={**basic(login, password), **(headers or {})}
        ) as response,
    ):
        return response.status, await response.text()


def failed_logins(radicale: rad.Radicale) -> int:
    return radicale.log_path.read_text(errors="replace").count("Failed login attempt")


# --------------------------------------------------------------------------- discovery


async def test_discovery_and_default_calendar_is_idempotent(store: CalDavStore) -> None:
    assert store.home == f"/{store.account}/"
    assert await store.calendars() == []
    created = await store.default_calendar()
    assert created.href == f"/{store.account}/Calendar/"
    assert created.name == "Calendar"
    assert created.owner == store.account
    assert set(created.components) == {"VEVENT", "VTODO"}
    assert created.writable is True
    assert await store.default_calendar() == created
    assert await store.calendars() == [created]
    assert await store.find("Calendar") == created
    assert await store.find(f"~{store.account}/Calendar") == created
    assert await store.find("Nothing") is None
    with pytest.raises(BridgeError) as info:
        await store.find("")
    assert info.value.kind is ErrorKind.BAD_REQUEST


async def test_default_calendar_created_once_by_concurrent_sessions(
    radicale: rad.Radicale, connector: CalDavConnector
) -> None:
    login, password = new_user(radicale)
    stores = [await connector.connect(login, password) for _ in range(4)]
    try:
        found = await asyncio.gather(*(s.default_calendar() for s in stores))
        assert len(set(found)) == 1
        assert await stores[0].calendars() == [found[0]]
    finally:
        for s in stores:
            await s.close()


def mkcalendar_body(display_name: str) -> str:
    return (
        '<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<D:set><D:prop><D:displayname>{display_name}</D:displayname></D:prop></D:set>"
        "</C:mkcalendar>"
    )


async def test_find_prefers_display_names_to_path_segments(
    radicale: rad.Radicale, user: tuple[str, str], store: CalDavStore
) -> None:
    login, password = user
    # Two calendars whose names cross: segment "a" shown as "b", segment "b" shown as "a".
    for segment, shown in (("a", "b"), ("b", "a")):
        status, _ = await raw_request(
            radicale, "MKCALENDAR", f"/{login}/{segment}/", login, password,
            mkcalendar_body(shown),
        )  # fmt: skip
        assert status == 201
    found_a = await store.find("a")
    assert found_a is not None and found_a.href == f"/{login}/b/" and found_a.name == "a"
    assert [c.name for c in await store.calendars()] == ["b", "a"]  # href order
    # A calendar without a display name is named by its segment (Radicale shows its path).
    status, _ = await raw_request(radicale, "MKCALENDAR", f"/{login}/plain/", login, password)
    assert status == 201
    plain = await store.find("plain")
    assert plain is not None and plain.name == "plain"


# --------------------------------------------------------------------------- items


async def test_put_get_query_and_by_uid(store: CalDavStore) -> None:
    calendar = await store.default_calendar()
    created = await store.put(calendar, None, event("meeting-1"), None)
    assert created.href == calendar.href + "meeting-1.ics"
    assert created.etag.startswith('"')
    fetched = await store.get(calendar, "meeting-1.ics")
    assert fetched is not None
    assert fetched.href == created.href and fetched.etag == created.etag
    assert "UID:meeting-1\r\n" in fetched.text and "\n" not in fetched.text.replace("\r\n", "")
    assert await store.get(calendar, created.href) == fetched
    assert await store.get(calendar, "missing.ics") is None

    task = await store.put(calendar, None, todo("task-1", "20250111T120000Z"), None)
    recurring = await store.put(
        calendar, None, event("daily-1", "20250101T080000Z", "20250101T083000Z",
                              rrule="FREQ=DAILY;COUNT=30"), None,
    )  # fmt: skip

    def hrefs(found: list[CalendarResource]) -> set[str]:
        return {r.href for r in found}

    assert hrefs(await store.query(calendar, utc(2025, 1, 10), utc(2025, 1, 11))) == {
        created.href, recurring.href,
    }  # fmt: skip
    assert hrefs(await store.query(calendar, utc(2025, 1, 11), utc(2025, 1, 12))) == {
        task.href, recurring.href,
    }  # fmt: skip
    assert hrefs(await store.query(calendar, utc(2025, 3, 1), None)) == set()
    assert hrefs(await store.query(calendar, None, None)) == {
        created.href, task.href, recurring.href,
    }  # fmt: skip
    # Not expanded: the master with its RRULE, as stored.
    [raw] = await store.query(calendar, utc(2025, 1, 20), utc(2025, 1, 21))
    assert raw.href == recurring.href and "RRULE:FREQ=DAILY;COUNT=30" in raw.text
    assert "RECURRENCE-ID" not in raw.text
    # Naive datetimes count as UTC.
    assert hrefs(await store.query(calendar, datetime(2025, 1, 10), datetime(2025, 1, 11))) == {
        created.href, recurring.href,
    }  # fmt: skip

    assert [r.href for r in await store.by_uid(calendar, "meeting-1")] == [created.href]
    assert [r.href for r in await store.by_uid(calendar, "task-1")] == [task.href]
    assert await store.by_uid(calendar, "meeting") == []  # text-match is a substring match
    assert await store.by_uid(calendar, "nope") == []


async def test_unsafe_uid_gets_a_safe_name(store: CalDavStore) -> None:
    calendar = await store.default_calendar()
    uid = "weird/uid with spaces?&#%ü"
    created = await store.put(calendar, None, event(uid), None)
    assert created.href == calendar.href + resource_name(uid)
    assert re.fullmatch(r"[A-Za-z0-9_.@+-]+\.ics", created.href.rpartition("/")[2])
    assert [r.href for r in await store.by_uid(calendar, uid)] == [created.href]
    fetched = await store.get(calendar, created.href)
    assert fetched is not None and fetched.etag == created.etag


async def test_replace_with_etag_and_refuse_a_stale_one(store: CalDavStore) -> None:
    calendar = await store.default_calendar()
    v1 = await store.put(calendar, None, event("edit-1"), None)
    v2 = await store.put(calendar, v1.href, event("edit-1", x_version="v2"), v1.etag)
    assert v2.href == v1.href and v2.etag != v1.etag
    fetched = await store.get(calendar, v1.href)
    assert fetched is not None and fetched.etag == v2.etag and "X-VERSION:v2\r\n" in fetched.text

    with pytest.raises(CalDavRequestFailed) as stale:
        await store.put(calendar, v1.href, event("edit-1", x_version="v3"), v1.etag)
    assert stale.value.kind is ErrorKind.BACKEND_REFUSED and stale.value.status == 412
    with pytest.raises(CalDavRequestFailed) as exists:
        await store.put(calendar, v1.href, event("edit-1"), None)
    assert exists.value.kind is ErrorKind.ALREADY_EXISTS and exists.value.status == 412
    # The same UID under another name: CALDAV:no-uid-conflict.
    with pytest.raises(CalDavRequestFailed) as uid_taken:
        await store.put(calendar, "other-name.ics", event("edit-1"), None)
    assert uid_taken.value.kind is ErrorKind.ALREADY_EXISTS and uid_taken.value.status == 409

    with pytest.raises(CalDavRequestFailed) as stale_delete:
        await store.delete(calendar, v1.href, v1.etag)
    assert stale_delete.value.kind is ErrorKind.BACKEND_REFUSED
    await store.delete(calendar, v1.href, v2.etag)
    assert await store.get(calendar, v1.href) is None
    with pytest.raises(BridgeError) as gone:
        await store.delete(calendar, v1.href, None)
    assert gone.value.kind is ErrorKind.NOT_FOUND


async def test_bad_icalendar_is_refused_before_sending(store: CalDavStore) -> None:
    calendar = await store.default_calendar()
    for text in ("not a calendar", event("x").replace("UID:x\r\n", "")):
        with pytest.raises(BridgeError) as info:
            await store.put(calendar, None, text, None)
        assert info.value.kind is ErrorKind.BAD_REQUEST
    for bad in ("../other.ics", "a/b.ics", ""):
        with pytest.raises(BridgeError) as info:
            await store.get(calendar, bad)
        assert info.value.kind is ErrorKind.BAD_REQUEST


async def test_sync_state_changes_when_another_client_writes(
    radicale: rad.Radicale, connector: CalDavConnector
) -> None:
    login, password = new_user(radicale)
    store = await connector.connect(login, password)
    try:
        calendar = await store.default_calendar()
        before = await store.sync_state(calendar)
        assert before and await store.sync_state(calendar) == before
        status, _ = await raw_request(
            radicale, "PUT", calendar.href + "foreign.ics", login, password, event("foreign-1"),
            {"Content-Type": "text/calendar"},
        )  # fmt: skip
        assert status == 201
        after_put = await store.sync_state(calendar)
        assert after_put != before
        [foreign] = await store.by_uid(calendar, "foreign-1")
        await store.delete(calendar, foreign.href, foreign.etag)
        assert await store.sync_state(calendar) not in (before, after_put)
    finally:
        await store.close()


# --------------------------------------------------------------------------- errors


async def test_wrong_password_is_auth_failed_in_one_request(
    radicale: rad.Radicale, connector: CalDavConnector
) -> None:
    login, _ = new_user(radicale)
    before = failed_logins(radicale)
    started = time.monotonic()
    with pytest.raises(BridgeError) as info:
        await connector.connect(login, "wrong")
    elapsed = time.monotonic() - started
    assert info.value.kind is ErrorKind.AUTH_FAILED
    assert isinstance(info.value.__cause__, Exception)
    assert "caldav" in type(info.value.__cause__).__module__
    assert elapsed < 0.5, f"{elapsed:.2f}s: is [auth] delay still on?"
    await asyncio.sleep(0.05)  # another process writes the log
    assert failed_logins(radicale) == before + 1  # no retry on a new HTTP session


async def test_users_and_passwords_change_without_restart(
    radicale: rad.Radicale, connector: CalDavConnector
) -> None:
    login = f"late{os.getpid()}x{next(_counter)}@example.test"
    with pytest.raises(BridgeError) as info:
        await connector.connect(login, "first")
    assert info.value.kind is ErrorKind.AUTH_FAILED
    radicale.add_user(login, "first")
    store = await connector.connect(login, "first")
    try:
        calendar = await store.default_calendar()
        radicale.add_user(login, "second")
        with pytest.raises(BridgeError) as old:
            await store.calendars()
        assert old.value.kind is ErrorKind.AUTH_FAILED
        store.set_password("second")
        assert await store.calendars() == [calendar]
    finally:
        await store.close()
    # Mixed case logins are the same account (lc_username), with the same home.
    upper = await connector.connect(login.upper(), "second")
    try:
        assert upper.home == f"/{login}/"
        assert await upper.calendars() == [calendar]
    finally:
        await upper.close()


async def test_connection_refused_is_backend_unavailable() -> None:
    dead = CalDavConnector(f"http://127.0.0.1:{free_port()}/", timeout=5)
    for call in (dead.connect("user@example.test", "pw"), dead.probe()):
        with pytest.raises(BridgeError) as info:
            await call
        assert info.value.kind is ErrorKind.BACKEND_UNAVAILABLE
        assert "niquests" in type(info.value.__cause__).__module__


async def test_silent_server_is_timeout() -> None:
    release = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await release.wait()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(BridgeError) as info:
            await CalDavConnector(f"http://127.0.0.1:{port}/", timeout=0.3).connect("u@x.test", "p")
        assert info.value.kind is ErrorKind.TIMEOUT
        assert time.monotonic() - started < 2
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def test_probe(connector: CalDavConnector) -> None:
    await connector.probe()


async def test_other_users_calendar_is_refused(
    radicale: rad.Radicale, connector: CalDavConnector, store: CalDavStore
) -> None:
    mine = await store.default_calendar()
    await store.put(mine, None, event("private-1"), None)
    login, password = new_user(radicale)
    other = await connector.connect(login, password)
    try:
        for name in (f"~{store.account}/Calendar", f"~{store.account}/Nothing"):
            with pytest.raises(BridgeError) as info:
                await other.find(name)
            assert info.value.kind is ErrorKind.PERMISSION
        # Even with the href in hand.
        for call in (
            other.query(mine, None, None),
            other.get(mine, "private-1.ics"),
            other.put(mine, None, event("intruder-1"), None),
            other.sync_state(mine),
        ):
            with pytest.raises(BridgeError) as info:
                await call
            assert info.value.kind is ErrorKind.PERMISSION
        with pytest.raises(BridgeError) as bad:
            await other.find("~/Calendar")
        assert bad.value.kind is ErrorKind.BAD_REQUEST
    finally:
        await other.close()


# --------------------------------------------------------------------------- sharing


async def test_read_only_share(radicale: rad.Radicale, connector: CalDavConnector) -> None:
    owner = await connector.connect(OWNER, FIXED_USERS[OWNER])
    reader = await connector.connect(READER, FIXED_USERS[READER])
    stranger = await connector.connect(STRANGER, FIXED_USERS[STRANGER])
    try:
        calendar = await owner.default_calendar()
        item = await owner.put(calendar, None, event("shared-ro-1"), None)
        shared = await reader.find(f"~{OWNER}/Calendar")
        assert shared is not None
        assert shared.href == calendar.href and shared.owner == OWNER
        assert shared.writable is False
        assert [r.href for r in await reader.query(shared, utc(2025, 1, 10), utc(2025, 1, 11))] == [
            item.href
        ]
        assert await reader.sync_state(shared) == await owner.sync_state(calendar)
        with pytest.raises(BridgeError) as info:
            await reader.put(shared, None, event("shared-ro-2"), None)
        assert info.value.kind is ErrorKind.PERMISSION
        with pytest.raises(BridgeError) as info:
            await reader.delete(shared, item.href, item.etag)
        assert info.value.kind is ErrorKind.PERMISSION
        with pytest.raises(BridgeError) as info:
            await stranger.find(f"~{OWNER}/Calendar")
        assert info.value.kind is ErrorKind.PERMISSION
        assert await reader.calendars() == []  # shares do not appear in one's own home
        await owner.delete(calendar, item.href, None)
    finally:
        for s in (owner, reader, stranger):
            await s.close()


async def test_read_write_share_found_by_display_name(
    radicale: rad.Radicale, connector: CalDavConnector
) -> None:
    status, _ = await raw_request(
        radicale, "MKCALENDAR", f"/{OWNER}/Team/", OWNER, FIXED_USERS[OWNER],
        '<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:set><D:prop><D:displayname>Team Plans</D:displayname></D:prop></D:set></C:mkcalendar>",
    )  # fmt: skip
    assert status == 201
    writer = await connector.connect(WRITER, FIXED_USERS[WRITER])
    try:
        for name in (f"~{OWNER}/Team Plans", f"~{OWNER}/Team"):
            team = await writer.find(name)
            assert team is not None and team.href == f"/{OWNER}/Team/"
            assert team.name == "Team Plans" and team.writable is True
        assert team is not None
        created = await writer.put(team, None, event("team-1"), None)
        await writer.delete(team, created.href, created.etag)
        # The owner's other calendars stay closed to the writer.
        with pytest.raises(BridgeError) as info:
            await writer.find(f"~{OWNER}/Calendar")
        assert info.value.kind is ErrorKind.PERMISSION
    finally:
        await writer.close()


# --------------------------------------------------------------------------- load


async def test_parallel_queries_do_not_stall(radicale: rad.Radicale, user: tuple[str, str]) -> None:
    """Radicale's listen backlog of 5 made every connection past the first dozen or so wait
    1 s for a SYN retry: 20 concurrent queries are 40 concurrent REPORTs here."""
    wide = await CalDavConnector(radicale.url, timeout=10, max_parallel=64).connect(*user)
    try:
        calendar = await wide.default_calendar()
        await wide.put(calendar, None, event("load-1"), None)

        async def timed_query(s: CalendarStore, cal: CalendarInfo) -> float:
            started = time.monotonic()
            assert len(await s.query(cal, utc(2025, 1, 10), utc(2025, 1, 11))) == 1
            return time.monotonic() - started

        started = time.monotonic()
        durations = await asyncio.gather(*(timed_query(wide, calendar) for _ in range(20)))
        total = time.monotonic() - started
        # A SYN retry takes 1 s: anything stalled by a full backlog is slower than this.
        assert max(durations) < 0.95 and total < 0.95, (max(durations), total)
    finally:
        await wide.close()


async def test_server_takes_many_connections_at_once(
    radicale: rad.Radicale, user: tuple[str, str]
) -> None:
    login, password = user
    body = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/></D:prop></D:propfind>'

    async def timed_propfind() -> float:
        started = time.monotonic()
        status, _ = await raw_request(
            radicale, "PROPFIND", f"/{login}/", login, password, body, {"Depth": "1"}
        )
        assert status == 207
        return time.monotonic() - started

    durations = await asyncio.gather(*(timed_propfind() for _ in range(40)))
    assert max(durations) < 0.95, max(durations)


def test_listen_backlog_is_raised(radicale: rad.Radicale) -> None:
    """The kernel's view of the listening socket: Send-Q is the backlog (socketserver's 5
    unless the launcher raised it)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{radicale.port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "LISTEN" and int(out[2]) == rad.DEFAULT_BACKLOG, out


# --------------------------------------------------------------------------- Radicale itself


async def test_server_side_expansion_is_supported(
    radicale: rad.Radicale, user: tuple[str, str], store: CalDavStore
) -> None:
    """Not used by the adapter (the bridge expands), but good to know: <C:expand> works."""
    login, password = user
    calendar = await store.default_calendar()
    await store.put(calendar, None, event("exp-1", "20250101T080000Z", "20250101T090000Z",
                                          rrule="FREQ=DAILY;COUNT=10"), None)  # fmt: skip
    body = (
        '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data>'
        '<C:expand start="20250103T000000Z" end="20250105T000000Z"/></C:calendar-data></D:prop>'
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:time-range start="20250103T000000Z" end="20250105T000000Z"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    status, text = await raw_request(
        radicale, "REPORT", calendar.href, login, password, body, {"Depth": "1"}
    )
    assert status == 207
    assert "RRULE" not in text
    assert re.findall(r"RECURRENCE-ID:(\d{8}T\d{6}Z)", text) == [
        "20250103T080000Z",
        "20250104T080000Z",
    ]


def test_radicale_lifecycle_and_errors(radicale: rad.Radicale) -> None:
    root = Path(tempfile.mkdtemp(prefix="xb-radicale-"))
    try:
        busy = rad.Radicale(root / "busy", radicale.port, {"a@example.test": "pw"})
        with pytest.raises(RuntimeError, match="not free"):
            busy.start()
        assert busy.pid is None
        # A start that fails says why, with the log's tail (here: a negative socket timeout).
        broken = rad.Radicale(root / "broken", free_port(), {"a@example.test": "pw"},
                              socket_timeout=-1)  # fmt: skip
        with pytest.raises(RuntimeError, match=r"(?s)exited with 1.*Invalid configuration"):
            broken.start()
        assert broken.pid is None
        started = time.monotonic()
        with rad.Radicale(root / "ok", free_port(), {"a@example.test": "pw"}) as server:
            up = time.monotonic() - started
            pid = server.pid
            assert pid is not None and pid_alive(pid)
            assert "Radicale server ready" in server.log_tail()
            config = server.config_path.read_text()
            assert "delay = 0" in config and "max_connections = 64" in config
        assert not pid_alive(pid)
        assert up < 5, up
        with pytest.raises(ValueError):
            rad.Radicale(root, 1, {"bad:login@example.test": "pw"})
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_dovecot_auth_follows_the_mail_accounts(stack: Any, fresh_account: Any) -> None:
    """With dovecot_auth, a mail account made a moment ago logs in to CalDAV as it is."""
    root = Path(tempfile.mkdtemp(prefix="xb-radicale-"))
    server = rad.Radicale(root, free_port(), dovecot_auth=("127.0.0.1", stack.ports.auth))
    try:
        await asyncio.to_thread(server.start)
        assert "type = dovecot" in server.config_path.read_text()
        connector = CalDavConnector(server.url, timeout=10)
        store = await connector.connect(fresh_account.address, fresh_account.password)
        try:
            calendar = await store.default_calendar()
            assert calendar.href == f"/{fresh_account.address}/Calendar/"
        finally:
            await store.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
