"""HTTP to one CalDAV server as one user, through caldav.aio's AsyncDAVClient.

The library does the HTTP (niquests), Basic authentication and the parsing of multistatus
replies; this module bounds every request (a semaphore for how many run at once, a timeout for
each) and translates whatever goes wrong at this one place (errors.mapped). Paths in and out are
percent-decoded server paths; they are quoted here when a URL is built.

Two caldav.aio behaviours are set aside deliberately:
- `auth_type="basic"` is always given. Without it the client sends each first request without
  credentials and negotiates on the 401, and after a failed connection it retries with a probe
  GET to look for an auth challenge.
- the feature "http.multiplexing" is declared unsupported. Left at its default, a 401 with a
  wrong password makes the client close its whole HTTP session (under every request in flight),
  open a new one and send the request again: two failed logins on the server for one.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from caldav.aio import AsyncDAVClient
from caldav.response import CalendarQueryResult, DAVResponse, PropfindResult

from adapters.caldav import errors, wire

log = logging.getLogger("adapters.caldav")

T = TypeVar("T")

_FEATURES: dict[str, Any] = {"http.multiplexing": {"support": "unsupported"}}
_USER_AGENT = "ximss-bridge"


def split_base_url(base_url: str) -> tuple[str, str]:
    """(origin, path) of the server's base URL; ValueError for anything but http(s)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError(f"not an http(s) base URL: {base_url!r}")
    return f"{parts.scheme}://{parts.netloc}", wire.collection_href(parts.path or "/")


@dataclass(frozen=True, slots=True)
class Reply:
    """A plain HTTP answer (GET, PUT, DELETE, MKCALENDAR): status, ETag header, body text."""

    status: int
    etag: str
    text: str


class DavSession:
    """One user's requests to one server; safe for concurrent use."""

    def __init__(
        self,
        base_url: str,
        username: str | None,
        password: str | None,
        *,
        timeout: float,
        max_parallel: int,
    ) -> None:
        self._origin, self.base_path = split_base_url(base_url)
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_parallel)
        self._client = AsyncDAVClient(
            url=self._origin + wire.quote_path(self.base_path),
            username=username,
            password=password,
            auth_type="basic" if username is not None else None,
            # The library's own per-socket-operation timeout, behind the whole-request one.
            timeout=math.ceil(timeout),
            headers={"User-Agent": _USER_AGENT},
            features=_FEATURES,
            enable_rfc6764=False,
        )
        self._closed = False

    def set_password(self, password: str) -> None:
        self._client.password = password
        self._client.build_auth_object(["basic"])

    def url(self, path: str) -> str:
        return self._origin + wire.quote_path(path)

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        async with self._slots:
            with errors.mapped(what):
                async with asyncio.timeout(self._timeout):
                    return await call()

    async def propfind(self, path: str, props: Sequence[str], depth: int) -> list[PropfindResult]:
        """PROPFIND; the responses in server order. A failure status raises CalDavRequestFailed."""

        async def call() -> DAVResponse:
            return await self._client.propfind(
                self.url(path), body=wire.propfind_body(props), depth=depth
            )

        response = await self._call("PROPFIND", call)
        if response.status not in (200, 207):
            raise errors.status_error(response.status)
        results = response.results or []
        return [r for r in results if isinstance(r, PropfindResult)]

    async def report(self, path: str, body: str) -> list[CalendarQueryResult]:
        """A calendar-query REPORT (Depth 1); the responses in server order."""

        async def call() -> list[CalendarQueryResult]:
            response = await self._client.report(self.url(path), body, depth=1)
            if response.status not in (200, 207):
                raise errors.status_error(response.status)
            return response.parse_calendar_query()

        return await self._call("REPORT", call)

    async def send(
        self, method: str, path: str, body: str = "", headers: Mapping[str, str] | None = None
    ) -> Reply:
        """Any other request; the status is the caller's to judge (401/403 raise, though)."""

        async def call() -> Reply:
            response = await self._client.request(self.url(path), method, body, headers)
            etag = response.headers.get("ETag") if response.headers is not None else None
            return Reply(response.status, str(etag or ""), response.raw)

        return await self._call(method, call)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._client.close()
        except Exception:
            log.debug("closing the CalDAV session failed", exc_info=True)
