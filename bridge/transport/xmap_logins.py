"""XMAP over HTTP: the kept logins of one HTTP listener (see xmap_http.py for the rules).

A successful HTTP Basic login stays open for the next requests with the same credentials, one
request at a time on it, until it idles past `[xmap] http_session_idle_timeout`, is ended from
outside, meets an unavailable mail server, or the listener stops.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Final

from bridge.errors import BridgeError, ErrorKind
from bridge.services import Services
from bridge.transport.http_binding import HttpState
from bridge.transport.http_common import HttpContext
from bridge.xmap import commands as c
from bridge.xmap.account import Reply
from bridge.xmap.conversation import XmapConversation
from bridge.xmap.errors import CodecError

log = logging.getLogger("bridge.xmap.http")

TRANSPORT: Final = "xmap-http"
# A kept login is checked against the mail server again after this many seconds in any case.
MAX_LOGIN_AGE: Final = 3600.0
# Failures that leave a kept login useless: drop it, so the next request logs in afresh.
BROKEN_LOGIN: Final = frozenset({ErrorKind.BACKEND_UNAVAILABLE, ErrorKind.TIMEOUT})


@dataclass(eq=False)
class Login:
    key: tuple[str, bytes]
    conversation: XmapConversation | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one command at a time
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # the login has finished
    last_used: float = field(default_factory=time.monotonic)
    created: float = field(default_factory=time.monotonic)
    users: int = 0  # requests holding it (between login and answer): never reaped meanwhile
    dropped: bool = False

    def holds_password(self, password: str) -> bool:
        conv = self.conversation
        credentials = conv.session.credentials if conv and conv.session else None
        if credentials is None:
            return False
        return hmac.compare_digest(credentials.password.encode(), password.encode())

    @property
    def alive(self) -> bool:
        conv = self.conversation
        return (
            not self.dropped
            and conv is not None
            and conv.session is not None
            and not conv.session.closed
        )


class XmapLogins:
    """The logged-in conversations of one HTTP listener, with their idle reaper."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._entries: dict[tuple[str, bytes], Login] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def _idle_timeout(self) -> float:
        return self._services.settings.xmap.http_session_idle_timeout

    async def obtain(self, user: str, password: str, peer: str) -> Login:
        """A live login for these credentials, held (`users`) until `release`."""
        key = (user.lower(), hashlib.sha256(password.encode("utf-8")).digest())
        while True:
            if self._closed:
                raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "the server is shutting down")
            login = self._entries.get(key)
            if login is None:
                return await self._log_in(key, user, password, peer)
            if not login.settled.is_set():
                # Another request is logging in with the same credentials: share its outcome.
                await login.settled.wait()
                continue
            if not login.alive:
                await self._end(login, "its session has ended")
                continue
            if time.monotonic() - login.created > MAX_LOGIN_AGE:
                # A password changed on the mail server is noticed at the next real login.
                await self._end(login, f"older than {MAX_LOGIN_AGE:g}s")
                continue
            if not login.holds_password(password):
                # passwordModify gave the session a new password: the old one opens nothing.
                await self._end(login, "its password was changed")
                continue
            login.users += 1
            login.last_used = time.monotonic()
            return login

    async def _log_in(self, key: tuple[str, bytes], user: str, password: str, peer: str) -> Login:
        login = Login(key)

        async def ended_from_outside() -> None:
            await self._end(login, "ended from outside")

        conversation = XmapConversation(
            self._services,
            peer=peer,
            transport=TRANSPORT,
            ender=ended_from_outside,
            password_allowed=False,  # credentials come from HTTP Basic, never a LOGIN command
        )
        login.conversation = conversation
        self._entries[key] = login
        try:
            await conversation.login(user, password)
            if self._closed:
                raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "the server is shutting down")
        except BaseException:
            self._forget(login)  # a failed login is never kept
            await conversation.close()
            raise
        finally:
            login.settled.set()
        login.users += 1
        login.last_used = time.monotonic()
        log.info("peer=%s XMAP HTTP login kept for %s", peer, user)
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap(), name="xmap-http-reaper")
        return login

    def release(self, login: Login) -> None:
        login.users -= 1
        login.last_used = time.monotonic()

    async def execute(self, login: Login, command: c.Command) -> Reply:
        """Run a command on the login; the caller holds `login.lock` (it also covers reading
        the request's body, so one login holds one body at a time, however many requests
        arrive at once)."""
        if not login.alive or login.conversation is None:
            raise CodecError(
                command.COMMAND,
                ErrorKind.BACKEND_UNAVAILABLE,
                "the login ended while the request was read; send it again",
            )
        try:
            return await login.conversation.run(command)
        except BridgeError as exc:
            if exc.kind in BROKEN_LOGIN:
                await self._end(login, f"the mail server failed ({exc.kind.value})")
            raise
        finally:
            login.last_used = time.monotonic()

    def _forget(self, login: Login) -> None:
        login.dropped = True
        if self._entries.get(login.key) is login:
            del self._entries[login.key]

    async def _end(self, login: Login, why: str) -> None:
        if login.dropped and login.conversation is None:
            return
        self._forget(login)
        conversation, login.conversation = login.conversation, None
        if conversation is None:
            return
        session = conversation.session
        if session is not None:
            log.info("peer=%s XMAP HTTP login of %s closed: %s", conversation.peer,
                     session.account, why)  # fmt: skip
        try:
            await conversation.close()
        except Exception:
            log.exception("closing an XMAP HTTP login failed")

    async def _reap(self) -> None:
        """Close logins idle past the timeout; ends when none is left (the next login restarts
        it), so an idle listener runs no task."""
        while self._entries:
            timeout = self._idle_timeout
            await asyncio.sleep(min(1.0, max(0.1, timeout / 4)))
            now = time.monotonic()
            for login in list(self._entries.values()):
                idle = now - login.last_used > timeout
                if idle and login.users == 0 and login.settled.is_set():
                    await self._end(login, f"idle for {timeout:g}s")

    async def close(self) -> None:
        """The listener stops: close every login, refuse new ones."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for login in list(self._entries.values()):
            await self._end(login, "the listener stopped")


# One per HTTP listener (its HttpState), created by the first request.
_LOGINS: weakref.WeakKeyDictionary[HttpState, XmapLogins] = weakref.WeakKeyDictionary()


def logins_for(ctx: HttpContext) -> XmapLogins:
    logins = _LOGINS.get(ctx.state)
    if logins is None:
        logins = _LOGINS[ctx.state] = XmapLogins(ctx.services)
    return logins


async def stop(state: HttpState) -> None:
    """Close the listener's kept logins (HttpListener.stop)."""
    logins = _LOGINS.get(state)
    if logins is not None:
        await logins.close()
