"""Ending XIMSS sessions from the server side at shutdown, the same way on every transport.

First an `<alert>` (an unsolicited data message, as the spec's "Please logout, as we are shutting
down." example) while the clients still have the grace period to finish and log out; then
`<bye/>`, the data message that tells a client the server has ended its session, as the last
message it gets before the connection closes (over the HTTP binding: the last poll reply).
"""

from __future__ import annotations

from typing import Final, Protocol

from lxml import etree

from bridge import xml

SHUTDOWN_ALERT: Final = "The server is shutting down: please log out."


def bye() -> etree._Element:
    return xml.element("bye")


class Farewell(Protocol):
    """One XIMSS conversation as the shutdown drain sees it."""

    def alert(self, text: str) -> None:
        """Send an alert now, if a session is logged in (nothing before a login)."""
        ...

    async def goodbye(self) -> None:
        """Send `<bye/>` after whatever is queued, then end the session and its connection in
        order; returns once the bye has been handed to the client (or could not be)."""
        ...
