"""The directory of live sessions by urlID, shared by every transport."""

from __future__ import annotations

from bridge.session.session import Session


class SessionRegistry:
    def __init__(self) -> None:
        self._by_url: dict[str, Session] = {}

    def add(self, session: Session) -> None:
        self._by_url[session.url_id] = session

    def get(self, url_id: str) -> Session | None:
        return self._by_url.get(url_id)

    def discard(self, session: Session) -> None:
        if self._by_url.get(session.url_id) is session:
            del self._by_url[session.url_id]

    def __len__(self) -> int:
        return len(self._by_url)

    def all(self) -> list[Session]:
        return list(self._by_url.values())
