"""The directory of live sessions by urlID, shared by every transport, with per-user limits."""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

from bridge import metrics
from bridge.errors import BridgeError, ErrorKind
from bridge.session.session import Session


class SessionObserver(Protocol):
    """Told of every session added and removed (the cluster's session directory)."""

    def added(self, session: Session) -> None: ...

    def removed(self, session: Session) -> None: ...


class SessionRegistry:
    def __init__(self, max_per_user: int = 20) -> None:
        self._by_url: dict[str, Session] = {}
        self._by_account: defaultdict[str, list[Session]] = defaultdict(list)
        self._max_per_user = max_per_user
        self.observers: list[SessionObserver] = []

    async def make_room(self, account: str, kill_old: bool) -> None:
        """Before a login: end the account's older sessions (killOld) or refuse past the limit."""
        existing = list(self._by_account.get(account, ()))
        if kill_old:
            for session in existing:
                await session.end()
                self.discard(session)
        elif len(existing) >= self._max_per_user:
            raise BridgeError(ErrorKind.LIMIT, "too many sessions for this account")

    def add(self, session: Session) -> None:
        self._by_url[session.url_id] = session
        self._by_account[session.account].append(session)
        metrics.SESSIONS.labels(session.transport).inc()
        for observer in self.observers:
            observer.added(session)

    def get(self, url_id: str) -> Session | None:
        session = self._by_url.get(url_id)
        return None if session is None or session.closed else session

    def discard(self, session: Session) -> None:
        if self._by_url.get(session.url_id) is not session:
            return
        del self._by_url[session.url_id]
        sessions = self._by_account.get(session.account, [])
        if session in sessions:
            sessions.remove(session)
        if not sessions:
            self._by_account.pop(session.account, None)
        metrics.SESSIONS.labels(session.transport).dec()
        for observer in self.observers:
            observer.removed(session)

    def __len__(self) -> int:
        return len(self._by_url)

    def all(self) -> list[Session]:
        return list(self._by_url.values())
