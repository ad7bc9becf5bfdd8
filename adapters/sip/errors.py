"""The SIP adapter's error boundary: final responses and transaction failures -> BridgeError.

Callers that need the SIP status (a call's failure code for the client) read `SipError.status`;
the client-facing text is ours, the server's reason phrase only goes to the debug log.
"""

from __future__ import annotations

from adapters.sip.headers import Headers
from adapters.sip.message import Request, Response
from bridge.errors import BridgeError, ErrorKind

# The most specific statuses first; classes of statuses in CLASS_KINDS below.
STATUS_KINDS: dict[int, ErrorKind] = {
    401: ErrorKind.AUTH_FAILED,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.NOT_SUPPORTED,
    407: ErrorKind.AUTH_FAILED,
    408: ErrorKind.TIMEOUT,
    410: ErrorKind.NOT_FOUND,
    413: ErrorKind.LIMIT,
    415: ErrorKind.NOT_SUPPORTED,
    420: ErrorKind.NOT_SUPPORTED,
    423: ErrorKind.BAD_REQUEST,
    480: ErrorKind.NOT_FOUND,
    481: ErrorKind.NOT_FOUND,
    484: ErrorKind.BAD_REQUEST,
    486: ErrorKind.BACKEND_REFUSED,
    489: ErrorKind.NOT_SUPPORTED,
    503: ErrorKind.BACKEND_UNAVAILABLE,
    504: ErrorKind.TIMEOUT,
    603: ErrorKind.BACKEND_REFUSED,
    604: ErrorKind.NOT_FOUND,
}
CLASS_KINDS: dict[int, ErrorKind] = {
    3: ErrorKind.BACKEND_REFUSED,
    4: ErrorKind.BAD_REQUEST,
    5: ErrorKind.BACKEND_UNAVAILABLE,
    6: ErrorKind.BACKEND_REFUSED,
}
FAILURE_KINDS: dict[str, ErrorKind] = {
    "timeout": ErrorKind.TIMEOUT,
    "transport": ErrorKind.BACKEND_UNAVAILABLE,
    "closed": ErrorKind.BACKEND_UNAVAILABLE,
    "no-ack": ErrorKind.TIMEOUT,
}
# What a failed transaction looks like to code that reports SIP statuses (RFC 3261 8.1.3.1).
FAILURE_STATUS: dict[str, tuple[int, str]] = {
    "timeout": (408, "Request Timeout"),
    "transport": (503, "Service Unavailable"),
    "closed": (503, "Service Unavailable"),
    "no-ack": (408, "Request Timeout"),
}

REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 415: "Unsupported Media Type",
    420: "Bad Extension", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 603: "Decline",
}  # fmt: skip


def reason_for(status: int) -> str:
    return REASONS.get(status, "Unknown")


class SipError(BridgeError):
    """A request ended with a non-2xx final response, or its transaction failed."""

    def __init__(self, kind: ErrorKind, status: int, reason: str, detail: str | None = None):
        super().__init__(kind, detail)
        self.status = status
        self.reason = reason


def kind_for(status: int) -> ErrorKind:
    return STATUS_KINDS.get(status) or CLASS_KINDS.get(status // 100, ErrorKind.BACKEND_REFUSED)


def rejected(response: Response) -> SipError:
    return SipError(kind_for(response.status), response.status, response.reason)


def transaction_failed(reason: str) -> SipError:
    status, text = FAILURE_STATUS.get(reason, (500, "Server Internal Error"))
    return SipError(FAILURE_KINDS.get(reason, ErrorKind.INTERNAL), status, text)


def too_busy() -> BridgeError:
    return BridgeError(ErrorKind.LIMIT, "too many SIP transactions")


def busy_response(request: Request) -> Response:
    """A 503 for a request we cannot take on (section 8.2.6 copies the identifying headers)."""
    headers = Headers()
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in request.headers.lines(name):
            headers = headers.add(name, value)
    return Response(headers=headers.add("Retry-After", "5"), body=b"", status=503,
                    reason=reason_for(503))  # fmt: skip
