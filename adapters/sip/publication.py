"""Event state publication (RFC 3903): PUBLISH, then refresh and modify by entity tag.

The first PUBLISH carries the body and gets a SIP-ETag; refreshes carry no body and
SIP-If-Match; a modification carries the new body and SIP-If-Match; removal sets Expires: 0. A
412 means the compositor forgot our tag (a restart): we publish the body afresh once.
"""

from __future__ import annotations

import asyncio
import logging

from adapters.sip import errors
from adapters.sip.endpoint import Endpoint
from adapters.sip.headers import Headers
from adapters.sip.registration import refresh_delay
from adapters.sip.values import RequestResult
from bridge.transport.tasks import TaskSet

log = logging.getLogger("adapters.sip")

DEFAULT_PUBLISH_EXPIRES = 600
PIDF = "application/pidf+xml"


class Publication:
    def __init__(self, endpoint: Endpoint, tasks: TaskSet, event: str, expires: int) -> None:
        self.endpoint = endpoint
        self.event = event
        self.expires = expires
        self.etag: str | None = None
        self.body: str | None = None
        self.content_type = PIDF
        self._tasks = tasks
        self._refresher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _send(self, body: str | None, expires: int) -> RequestResult:
        headers = Headers().add("Event", self.event).add("Expires", str(expires))
        if self.etag is not None:
            headers = headers.add("SIP-If-Match", self.etag)
        aor = self.endpoint.aor.uri
        request = self.endpoint.out_of_dialog(
            "PUBLISH", aor, headers=headers, to=f"<{aor}>",
            body=(body or "").encode(), content_type=self.content_type if body else None,
        )  # fmt: skip
        _, response = await self.endpoint.send(request)
        if 200 <= response.status < 300:
            self.etag = response.headers.get("SIP-ETag") or self.etag
            granted = response.header_int("Expires") or expires
            if expires > 0:
                self._schedule(granted)
        return RequestResult(response.status, response.reason)

    async def publish(self, body: str, content_type: str = PIDF) -> RequestResult:
        """Publish (or replace) the state; SipError on a timeout, the status otherwise."""
        async with self._lock:
            self.body, self.content_type = body, content_type
            result = await self._send(body, self.expires)
            if result.status == 412:  # the tag is unknown there: start over
                self.etag = None
                result = await self._send(body, self.expires)
            return result

    def _schedule(self, granted: int) -> None:
        if self._refresher is not None and self._refresher is not asyncio.current_task():
            self._refresher.cancel()
        self._refresher = self._tasks.spawn(
            self._refresh(refresh_delay(granted)), f"sip-publish-refresh {self.event}"
        )

    async def _refresh(self, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock:
            try:
                result = await self._send(None, self.expires)
                if result.status == 412 and self.body is not None:
                    self.etag = None
                    await self._send(self.body, self.expires)
            except errors.SipError as exc:
                log.debug("publication refresh failed: %s", exc.status)
                self._schedule(int(self.expires))

    async def remove(self) -> RequestResult | None:
        """Withdraw the published state (Expires: 0)."""
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self.etag is None:
            return None
        async with self._lock:
            result = await self._send(None, 0)
            self.etag = None
            return result
