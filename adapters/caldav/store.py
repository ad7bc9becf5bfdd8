"""CalendarStore over CalDAV (RFC 4791), and the connector that logs users in.

Discovery runs once per login: the base URL's current-user-principal, then its
calendar-home-set (two PROPFINDs). Each later call is one request, or two concurrent REPORTs
for queries (VEVENT and VTODO: comp-filters at one level are ANDed, so one query cannot ask for
either). Resources travel as raw iCalendar text; expanding recurrences is the bridge's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Coroutine, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from caldav.response import CalendarQueryResult, PropfindResult

from adapters.caldav import wire
from adapters.caldav.client import DavSession, split_base_url
from adapters.caldav.errors import CalDavRequestFailed, status_error
from adapters.protocols import (
    CalendarConnector,
    CalendarInfo,
    CalendarResource,
    CalendarStore,
)
from bridge.errors import BridgeError, ErrorKind

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0  # seconds for one HTTP request, start to end
DEFAULT_MAX_PARALLEL = 8  # requests of one user in flight at once
DEFAULT_CALENDAR_NAME = "Calendar"
# Where another user's calendar home is, relative to the base URL's path: Radicale's layout
# (SabreDAV-based servers would use "calendars/{user}/").
DEFAULT_HOME_TEMPLATE = "{user}/"
# What a calendar made by default_calendar() holds.
DEFAULT_COMPONENTS = ("VEVENT", "VTODO")
_ICAL_HEADERS = {"Content-Type": 'text/calendar; charset="utf-8"'}


async def _all(calls: Iterable[tuple[str, Coroutine[Any, Any, T]]]) -> list[T]:
    """Run named calls concurrently; the first failure (a BridgeError) is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call, name=name) for name, call in calls]
    except BaseExceptionGroup as grouped:
        first = grouped.exceptions[0]
        raise first from first.__cause__  # keeps the library error it was mapped from
    return [task.result() for task in tasks]


class CalDavStore:
    """One user's calendars (adapters.protocols.CalendarStore)."""

    def __init__(
        self,
        session: DavSession,
        account: str,
        home: str,
        *,
        default_name: str = DEFAULT_CALENDAR_NAME,
        home_template: str = DEFAULT_HOME_TEMPLATE,
    ) -> None:
        self._session = session
        self._account = account
        self._home = home
        self._default_name = default_name
        self._home_template = home_template

    @property
    def account(self) -> str:
        return self._account

    @property
    def home(self) -> str:
        """The user's calendar home (a server path)."""
        return self._home

    def set_password(self, password: str) -> None:
        """Authenticate with this password from the next request on (after passwordModify)."""
        self._session.set_password(password)

    # -- calendars

    def _infos(self, results: Iterable[PropfindResult], owner: str) -> list[CalendarInfo]:
        infos = []
        for result in results:
            props = result.properties
            if result.status != 200 or not wire.is_calendar(props.get(wire.RESOURCETYPE)):
                continue
            href = wire.collection_href(result.href)
            infos.append(
                CalendarInfo(
                    href=href,
                    name=wire.display_name(props.get(wire.DISPLAYNAME), href),
                    owner=owner,
                    components=wire.components(props.get(wire.COMPONENT_SET)),
                    writable=wire.writable(props.get(wire.PRIVILEGES)),
                )
            )
        return sorted(infos, key=lambda info: info.href)

    async def calendars(self) -> list[CalendarInfo]:
        results = await self._session.propfind(self._home, wire.CALENDAR_PROPS, depth=1)
        return self._infos(results, self._account)

    @staticmethod
    def _match(infos: list[CalendarInfo], name: str) -> CalendarInfo | None:
        for info in infos:
            if info.name == name:
                return info
        for info in infos:
            if wire.last_segment(info.href) == name:
                return info
        return None

    async def default_calendar(self) -> CalendarInfo:
        found = self._match(await self.calendars(), self._default_name)
        if found is not None:
            return found
        body = wire.mkcalendar_body(self._default_name, DEFAULT_COMPONENTS)
        reply = await self._session.send("MKCALENDAR", self._home + self._default_name + "/", body)
        # 405/409: the collection appeared meanwhile (another session made it).
        if reply.status not in (200, 201, 405, 409):
            raise status_error(reply.status, "the default calendar could not be created")
        found = self._match(await self.calendars(), self._default_name)
        if found is None:
            raise BridgeError(
                ErrorKind.BACKEND_REFUSED, "the default calendar could not be created"
            )
        return found

    async def find(self, name: str) -> CalendarInfo | None:
        if name.startswith("~"):
            owner, _, rest = name[1:].partition("/")
            rest = rest.strip("/")
            if not owner or not rest or "@" not in owner:
                raise BridgeError(ErrorKind.BAD_REQUEST, "bad calendar name")
            if owner.lower() != self._account.lower():
                return await self._find_other(owner.lower(), rest)
            name = rest
        if not name:
            raise BridgeError(ErrorKind.BAD_REQUEST, "bad calendar name")
        return self._match(await self.calendars(), name)

    async def _find_other(self, owner: str, name: str) -> CalendarInfo | None:
        """Another user's calendar: first `name` as a path segment of their home, then as a
        display name among the calendars of their home the server lets us list."""
        if "/" in owner:
            raise BridgeError(ErrorKind.BAD_REQUEST, "bad calendar name")
        home = self._session.base_path + self._home_template.format(user=owner)
        denied = False
        try:
            direct = await self._session.propfind(f"{home}{name}/", wire.CALENDAR_PROPS, depth=0)
            infos = self._infos(direct, owner)
            if infos:
                return infos[0]
        except CalDavRequestFailed as exc:
            # Servers answer 403 for what does not exist where we may not look (Radicale).
            if exc.status not in (403, 404):
                raise
            denied = exc.status == 403
        try:
            listed = self._infos(await self._session.propfind(home, wire.CALENDAR_PROPS, 1), owner)
        except CalDavRequestFailed as exc:
            if exc.status == 403:
                raise BridgeError(ErrorKind.PERMISSION, "no access to this calendar") from exc
            if exc.status == 404:
                return None
            raise
        found = next((info for info in listed if info.name == name), None)
        if found is None and denied:
            raise BridgeError(ErrorKind.PERMISSION, "no access to this calendar")
        return found

    # -- items

    def _resources(self, results: Iterable[CalendarQueryResult]) -> dict[str, CalendarResource]:
        out = {}
        for result in results:
            if result.status == 200 and result.calendar_data:
                out[result.href] = CalendarResource(
                    result.href, result.etag or "", wire.crlf(result.calendar_data)
                )
        return out

    async def _report_each(
        self, calendar: CalendarInfo, bodies: dict[str, str]
    ) -> list[CalendarResource]:
        replies = await _all(
            (f"caldav-report-{component}", self._session.report(calendar.href, body))
            for component, body in bodies.items()
        )
        merged: dict[str, CalendarResource] = {}
        for results in replies:
            merged.update(self._resources(results))
        return [merged[href] for href in sorted(merged)]

    async def query(
        self, calendar: CalendarInfo, start: datetime | None, end: datetime | None
    ) -> list[CalendarResource]:
        return await self._report_each(
            calendar,
            {c: wire.time_range_query_body(c, start, end) for c in wire.QUERY_COMPONENTS},
        )

    async def by_uid(self, calendar: CalendarInfo, uid: str) -> list[CalendarResource]:
        if not uid:
            raise BridgeError(ErrorKind.BAD_REQUEST, "empty UID")
        found = await self._report_each(
            calendar, {c: wire.uid_query_body(c, uid) for c in wire.QUERY_COMPONENTS}
        )
        return [resource for resource in found if wire.has_uid(resource.text, uid)]

    async def get(self, calendar: CalendarInfo, href: str) -> CalendarResource | None:
        path = wire.member_href(calendar.href, href)
        reply = await self._session.send("GET", path)
        if reply.status in (404, 410):
            return None
        if reply.status != 200:
            raise status_error(reply.status)
        return CalendarResource(path, reply.etag, wire.crlf(reply.text))

    async def put(
        self, calendar: CalendarInfo, href: str | None, text: str, etag: str | None
    ) -> CalendarResource:
        text = wire.crlf(text)
        uid = wire.uid_of(text)  # BAD_REQUEST before anything is sent
        path = wire.member_href(calendar.href, href or wire.resource_name(uid))
        headers = dict(_ICAL_HEADERS)
        if etag:
            headers["If-Match"] = etag
        else:
            headers["If-None-Match"] = "*"
        reply = await self._session.send("PUT", path, text, headers)
        if reply.status == 412 and not etag:
            raise CalDavRequestFailed(
                ErrorKind.ALREADY_EXISTS, 412, "a calendar item with this name already exists"
            )
        if reply.status not in (200, 201, 204):
            raise status_error(reply.status)
        if reply.etag:
            return CalendarResource(path, reply.etag, text)
        # The server changed what it stored (RFC 4791 5.3.4 lets it omit the ETag then).
        stored = await self.get(calendar, path)
        if stored is None:
            raise BridgeError(ErrorKind.BACKEND_REFUSED, "the calendar item was not stored")
        return stored

    async def delete(self, calendar: CalendarInfo, href: str, etag: str | None) -> None:
        path = wire.member_href(calendar.href, href)
        reply = await self._session.send(
            "DELETE", path, headers={"If-Match": etag} if etag else None
        )
        if reply.status in (404, 410):
            raise status_error(404, "no such calendar item")
        if reply.status not in (200, 204):
            raise status_error(reply.status)

    async def sync_state(self, calendar: CalendarInfo) -> str:
        props = (wire.SYNC_TOKEN, wire.GETCTAG)
        for result in await self._session.propfind(calendar.href, props, depth=0):
            for name in props:
                value = result.properties.get(name)
                if isinstance(value, str) and value:
                    return value
        # Neither: a digest of the members' etags (one more PROPFIND, Depth 1).
        members = await self._session.propfind(calendar.href, (wire.GETETAG,), depth=1)
        digest = hashlib.sha256()
        for result in sorted(members, key=lambda r: r.href):
            etag = result.properties.get(wire.GETETAG)
            digest.update(f"{result.href}\0{etag}\0".encode())
        return "etags:" + digest.hexdigest()

    async def close(self) -> None:
        await self._session.close()


class CalDavConnector:
    """Logs users in to one CalDAV server (adapters.protocols.CalendarConnector).

    `base_url` is where discovery starts (the server root for Radicale,
    `http://127.0.0.1:5232/`). `timeout` bounds each HTTP request; `max_parallel` how many
    requests one user's store runs at once."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        default_calendar: str = DEFAULT_CALENDAR_NAME,
        home_template: str = DEFAULT_HOME_TEMPLATE,
    ) -> None:
        split_base_url(base_url)  # a bad URL fails here, at start-up
        if not default_calendar or "/" in default_calendar:
            raise ValueError(f"bad default calendar name: {default_calendar!r}")
        if "{user}" not in home_template or home_template.startswith("/"):
            raise ValueError(f"home_template must be relative and hold {{user}}: {home_template!r}")
        if max_parallel < 1 or timeout <= 0:
            raise ValueError("max_parallel and timeout must be positive")
        self.base_url = base_url
        self.timeout = timeout
        self.max_parallel = max_parallel
        self.default_calendar = default_calendar
        self.home_template = home_template

    def _session(self, username: str | None, password: str | None) -> DavSession:
        return DavSession(
            self.base_url, username, password, timeout=self.timeout, max_parallel=self.max_parallel
        )

    async def connect(self, username: str, password: str) -> CalDavStore:
        session = self._session(username, password)
        try:
            home = await self._discover(session, username)
        except BaseException:
            await session.close()
            raise
        # Accounts are addresses, case-insensitive like the mail server's logins.
        return CalDavStore(
            session,
            username.lower(),
            home,
            default_name=self.default_calendar,
            home_template=self.home_template,
        )

    async def _discover(self, session: DavSession, username: str) -> str:
        """The user's calendar home: principal's calendar-home-set, else the principal, else
        the home by the path convention (servers without current-user-principal)."""
        root = await session.propfind(session.base_path, (wire.CURRENT_USER_PRINCIPAL,), 0)
        principal = next(
            (
                h
                for r in root
                if (h := wire.first_href(r.properties.get(wire.CURRENT_USER_PRINCIPAL)))
            ),
            None,
        )
        if principal is None:
            if "/" in username:
                raise BridgeError(ErrorKind.AUTH_FAILED)
            return session.base_path + self.home_template.format(user=username.lower())
        found = await session.propfind(principal, (wire.CALENDAR_HOME_SET,), 0)
        home = next(
            (h for r in found if (h := wire.first_href(r.properties.get(wire.CALENDAR_HOME_SET)))),
            None,
        )
        return home or principal

    async def probe(self) -> None:
        """Any HTTP answer to OPTIONS (even 401) means the server is up."""
        session = self._session(None, None)
        try:
            with contextlib.suppress(CalDavRequestFailed):
                await session.send("OPTIONS", session.base_path)
        finally:
            await session.close()


if TYPE_CHECKING:

    def _conforms(
        store: CalDavStore, connector: CalDavConnector
    ) -> tuple[CalendarStore, CalendarConnector]:
        return store, connector  # mypy checks both against their protocols here
