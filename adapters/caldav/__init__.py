"""The CalDAV adapter: calendars of one user on a CalDAV server, through caldav.aio.

`CalDavConnector(base_url).connect(user, password)` gives a `CalDavStore`
(adapters.protocols.CalendarStore). Every library exception is translated in `errors`.
"""

from adapters.caldav.errors import CalDavRequestFailed
from adapters.caldav.store import CalDavConnector, CalDavStore

__all__ = ["CalDavConnector", "CalDavRequestFailed", "CalDavStore"]
