"""Keeping one contact registered: REGISTER, refresh before expiry, retry with back-off.

The loop never gives up while the owner wants the registration: a registrar that restarts (and
forgets its in-memory location table and nonces) is found again at the next refresh or retry,
and every change of state is reported through the callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from adapters.sip import errors
from adapters.sip.dialog import new_call_id, new_tag
from adapters.sip.endpoint import Endpoint
from adapters.sip.headers import Headers
from adapters.sip.message import Request, Response
from adapters.sip.values import RegistrationState, RegistrationStatus

log = logging.getLogger("adapters.sip")

DEFAULT_EXPIRES = 600
# Refresh when this share of the granted time has passed, but at least this long before expiry.
REFRESH_SHARE = 0.5
REFRESH_MARGIN = 5.0
MIN_REFRESH = 1.0
RETRY_MIN = 1.0
RETRY_MAX = 60.0

StateSink = Callable[[RegistrationStatus], None]


def refresh_delay(granted: int) -> float:
    return max(MIN_REFRESH, min(granted * REFRESH_SHARE, granted - REFRESH_MARGIN))


def granted_expires(response: Response, contact_uri: str, asked: int) -> int:
    """Section 10.2.4: our Contact's expires parameter, else the Expires header, else ours."""
    for contact in response.contacts:
        if contact.uri == contact_uri:
            value = contact.params.get("expires")
            if value and value.isdigit():
                return int(value)
    header = response.header_int("Expires")
    return header if header is not None else asked


# What a proxy answers for an address of record with no registered contact.
FORGOTTEN = frozenset({404, 480})


class Registration:
    def __init__(self, endpoint: Endpoint, expires: int, on_state: StateSink | None) -> None:
        self.endpoint = endpoint
        self.expires = expires
        self.on_state = on_state
        self.status = RegistrationStatus(RegistrationState.UNREGISTERED)
        self._call_id = new_call_id(endpoint.transport.local[0])
        self._tag = new_tag()
        self._cseq = 0
        self._task: asyncio.Task[None] | None = None
        self._check: asyncio.Task[None] | None = None
        self._first: asyncio.Future[RegistrationStatus] | None = None
        self._wake = asyncio.Event()

    def _set(self, status: RegistrationStatus) -> None:
        self.status = status
        settled = status.state in (RegistrationState.REGISTERED, RegistrationState.FAILED)
        if settled and self._first is not None and not self._first.done():
            self._first.set_result(status)
        if self.on_state is not None:
            self.on_state(status)

    def _request(self, expires: int) -> Request:
        self._cseq += 1
        aor = str(self.endpoint.aor.uri)
        headers = Headers().add("Expires", str(expires))
        return self.endpoint.out_of_dialog(
            "REGISTER", f"sip:{self.endpoint.config.domain}", headers=headers, to=f"<{aor}>",
            call_id=self._call_id, cseq=self._cseq, from_tag=self._tag, contact=True,
        )  # fmt: skip

    async def start(self) -> RegistrationStatus:
        """Start the loop and wait for the first outcome (REGISTERED or FAILED); the loop goes
        on retrying after a failure."""
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"sip-register {self.endpoint.aor.uri}")
        interval = self.endpoint.config.registration_check
        if interval > 0:
            self._check = asyncio.create_task(
                self._watch(interval), name=f"sip-register-check {self.endpoint.aor.uri}"
            )
        return await self._first

    def refresh_now(self) -> None:
        """Re-register at once (the owner learned the registrar restarted)."""
        self._wake.set()

    async def _once(self) -> float:
        """One REGISTER; returns seconds until the next one."""
        self._set(RegistrationStatus(RegistrationState.REGISTERING))
        asked = self.expires
        for _attempt in range(2):
            sent, response = await self.endpoint.send(self._request(asked))
            self._cseq = max(self._cseq, sent.cseq.number)
            if response.status == 423:  # Interval Too Brief: ask for Min-Expires
                minimum = response.header_int("Min-Expires")
                if minimum is not None and minimum > asked:
                    asked = minimum
                    continue
            break
        if response.status >= 300:
            raise errors.rejected(response)
        granted = granted_expires(response, self.endpoint.contact_uri, asked)
        self._set(RegistrationStatus(RegistrationState.REGISTERED, response.status,
                                     response.reason, granted))  # fmt: skip
        return refresh_delay(granted)

    async def _run(self) -> None:
        retry = RETRY_MIN
        while True:
            try:
                delay = await self._once()
                retry = RETRY_MIN
            except errors.SipError as exc:
                log.info("registration of %s failed: %s", self.endpoint.aor.uri, exc.status)
                self._set(RegistrationStatus(RegistrationState.FAILED, exc.status, exc.reason))
                # A registrar that restarted has forgotten our nonces.
                self.endpoint.auth.forget()
                delay, retry = retry, min(retry * 2, RETRY_MAX)
            self._wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _watch(self, interval: float) -> None:
        """A registrar that restarted has forgotten us, and says nothing until our next refresh
        (minutes away). So ask it now and then: an OPTIONS to our own address of record comes
        back to us while we are registered, and gets 404/480 from the proxy once we are not."""
        while True:
            await asyncio.sleep(interval)
            if self.status.state is not RegistrationState.REGISTERED:
                continue
            request = self.endpoint.out_of_dialog("OPTIONS", str(self.endpoint.aor.uri))
            try:
                _, response = await self.endpoint.send(request)
            except errors.SipError as exc:
                status = exc.status
            else:
                status = response.status
            if status in FORGOTTEN:
                log.info("registrar forgot %s (%s): again", self.endpoint.aor.uri, status)
                self.refresh_now()

    async def stop(self, *, unregister: bool = True) -> None:
        """Stop refreshing and (by default) remove the contact with Expires: 0."""
        check, self._check = self._check, None
        if check is not None:
            check.cancel()
            await asyncio.wait([check])
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # its cancellation is not ours to re-raise
        if unregister and self.status.state is RegistrationState.REGISTERED:
            try:
                await self.endpoint.send(self._request(0))
            except errors.SipError as exc:
                log.debug("unregister failed: %s", exc.status)
        self._set(RegistrationStatus(RegistrationState.UNREGISTERED))
