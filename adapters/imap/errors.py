"""The IMAP adapter's error boundary: server replies and socket failures -> BridgeError kinds.

Only short phrases of our own reach the client; the server's text goes to the debug log."""

from __future__ import annotations

from bridge.errors import BridgeError, ErrorKind

# RFC 5530 response codes, the most specific signal a server gives.
RESPONSE_CODE_KINDS: dict[str, ErrorKind] = {
    "NONEXISTENT": ErrorKind.NOT_FOUND,
    "TRYCREATE": ErrorKind.NOT_FOUND,
    "ALREADYEXISTS": ErrorKind.ALREADY_EXISTS,
    "NOPERM": ErrorKind.PERMISSION,
    "AUTHENTICATIONFAILED": ErrorKind.AUTH_FAILED,
    "AUTHORIZATIONFAILED": ErrorKind.AUTH_FAILED,
    "EXPIRED": ErrorKind.AUTH_FAILED,
    "OVERQUOTA": ErrorKind.QUOTA,
    "LIMIT": ErrorKind.LIMIT,
    "TOOBIG": ErrorKind.LIMIT,
    "INUSE": ErrorKind.BACKEND_UNAVAILABLE,
    "UNAVAILABLE": ErrorKind.BACKEND_UNAVAILABLE,
    "SERVERBUG": ErrorKind.BACKEND_REFUSED,
    "CANNOT": ErrorKind.BACKEND_REFUSED,
    "CONTACTADMIN": ErrorKind.PERMISSION,
    "PRIVACYREQUIRED": ErrorKind.PERMISSION,
}


class ImapCommandFailed(BridgeError):
    """A NO or BAD reply; keeps the status and response code for callers that refine the kind."""

    def __init__(self, kind: ErrorKind, status: str, code: str | None, server_text: str) -> None:
        super().__init__(kind)
        self.status = status
        self.code = code
        self.server_text = server_text


def command_failed(status: str, code: str | None, text: str) -> ImapCommandFailed:
    kind = RESPONSE_CODE_KINDS.get(code or "")
    if kind is None:
        kind = ErrorKind.BAD_REQUEST if status == "BAD" else ErrorKind.BACKEND_REFUSED
    return ImapCommandFailed(kind, status, code, text)


def unavailable(what: str = "IMAP server unavailable") -> BridgeError:
    return BridgeError(ErrorKind.BACKEND_UNAVAILABLE, what)
