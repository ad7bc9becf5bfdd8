"""The CalDAV adapter's error boundary: HTTP statuses and library exceptions -> BridgeError.

Two declared tables: what an HTTP status of a failed request means, and what an exception of
caldav, niquests (caldav's HTTP library) or lxml means. `mapped()` applies the second at every
request, chaining the cause; no foreign exception leaves the adapter. Only short phrases of our
own reach the client; the server's text goes to the debug log.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import niquests.exceptions as http_errors
from caldav.lib import error as dav_errors
from lxml import etree

from bridge.errors import BridgeError, ErrorKind

log = logging.getLogger("adapters.caldav")

# A failed request's status. 412 (an If-Match or If-None-Match that did not hold) and 409 are
# refined by the operation (see `conflict` and `exists`); there is no CONFLICT kind.
STATUS_KINDS: dict[int, ErrorKind] = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.AUTH_FAILED,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.NOT_SUPPORTED,
    409: ErrorKind.ALREADY_EXISTS,  # PUT: CALDAV:no-uid-conflict, another href holds the UID
    412: ErrorKind.BACKEND_REFUSED,  # changed (or created) by someone else meanwhile
    413: ErrorKind.LIMIT,
    415: ErrorKind.BAD_REQUEST,
    423: ErrorKind.BACKEND_REFUSED,  # locked
    429: ErrorKind.BACKEND_UNAVAILABLE,
    502: ErrorKind.BACKEND_UNAVAILABLE,
    503: ErrorKind.BACKEND_UNAVAILABLE,
    504: ErrorKind.BACKEND_UNAVAILABLE,
    507: ErrorKind.QUOTA,
}

# Exceptions raised while a request runs, first match wins (subclasses before their bases).
# caldav raises AuthorizationError for 401/403 itself; niquests' errors are OSErrors.
EXCEPTION_KINDS: tuple[tuple[type[BaseException], ErrorKind, str], ...] = (
    (dav_errors.RateLimitError, ErrorKind.BACKEND_UNAVAILABLE, "calendar server busy"),
    (http_errors.ConnectTimeout, ErrorKind.BACKEND_UNAVAILABLE, "calendar server unavailable"),
    (http_errors.Timeout, ErrorKind.TIMEOUT, "calendar server timed out"),
    (http_errors.ConnectionError, ErrorKind.BACKEND_UNAVAILABLE, "calendar server unavailable"),
    (http_errors.RequestException, ErrorKind.BACKEND_UNAVAILABLE, "calendar server unavailable"),
    (TimeoutError, ErrorKind.TIMEOUT, "calendar server timed out"),
    (OSError, ErrorKind.BACKEND_UNAVAILABLE, "calendar server unavailable"),
    # A reply the library could not make sense of (a bad multistatus, a propstat error).
    (dav_errors.DAVError, ErrorKind.BACKEND_REFUSED, "unexpected reply from the calendar server"),
    (etree.LxmlError, ErrorKind.BACKEND_REFUSED, "unexpected reply from the calendar server"),
    (ValueError, ErrorKind.BACKEND_REFUSED, "unexpected reply from the calendar server"),
)

# Client-facing phrases per status, where the table's kind text would mislead. (A 404 keeps
# the kind's text: a calendar is a mailbox to XIMSS clients; items pass their own detail.)
STATUS_DETAILS: dict[int, str] = {
    412: "the calendar item was changed by someone else",
    409: "an item with this UID already exists",
}


class CalDavRequestFailed(BridgeError):
    """A request the server answered with an error status; `status` lets callers refine."""

    def __init__(self, kind: ErrorKind, status: int, detail: str | None = None) -> None:
        super().__init__(kind, detail)
        self.status = status


def status_error(status: int, detail: str | None = None) -> CalDavRequestFailed:
    kind = STATUS_KINDS.get(status)
    if kind is None:
        kind = ErrorKind.BACKEND_UNAVAILABLE if status >= 500 else ErrorKind.BACKEND_REFUSED
    return CalDavRequestFailed(kind, status, detail or STATUS_DETAILS.get(status))


def exception_error(exc: BaseException) -> BridgeError:
    if isinstance(exc, dav_errors.AuthorizationError):
        status = exc.status or 401
        return CalDavRequestFailed(
            ErrorKind.AUTH_FAILED if status == 401 else ErrorKind.PERMISSION, status
        )
    for exc_type, kind, detail in EXCEPTION_KINDS:
        if isinstance(exc, exc_type):
            return BridgeError(kind, detail)
    return BridgeError(ErrorKind.INTERNAL)


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Translate whatever the library raises inside into a BridgeError (cause chained).

    `what` names the operation for the debug log. BridgeError passes through; CancelledError
    (a BaseException) is never touched."""
    try:
        yield
    except BridgeError:
        raise
    except Exception as exc:
        mapped_error = exception_error(exc)
        if mapped_error.kind is ErrorKind.INTERNAL:
            log.exception("unexpected error during CalDAV %s", what)
        else:
            log.debug("CalDAV %s failed: %r", what, exc)
        raise mapped_error from exc
