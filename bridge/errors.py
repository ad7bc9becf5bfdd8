"""One backend-neutral error vocabulary, and the one table that maps it to XIMSS wire errors.

Every layer raises `BridgeError` with an `ErrorKind`; only the front ends decide how a kind looks
on their wire. Adapters translate their libraries' exceptions into these at their boundary, so no
foreign exception text ever reaches a client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorKind(enum.Enum):
    UNKNOWN_OPERATION = "unknown_operation"
    BAD_REQUEST = "bad_request"
    NOT_LOGGED_IN = "not_logged_in"
    ALREADY_LOGGED_IN = "already_logged_in"
    AUTH_FAILED = "auth_failed"
    UNKNOWN_DOMAIN = "unknown_domain"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    HAS_CHILDREN = "has_children"
    PERMISSION = "permission"
    NOT_SUPPORTED = "not_supported"
    LIMIT = "limit"
    QUOTA = "quota"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BACKEND_REFUSED = "backend_refused"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class WireError:
    num: int
    text: str


# The table is the documentation: the README's error list is generated from the same rows.
# Numbers follow CommuniGate's SMTP-like convention (500 for an unknown command, as the spec shows).
XIMSS_ERRORS: dict[ErrorKind, WireError] = {
    ErrorKind.UNKNOWN_OPERATION: WireError(500, "unknown command"),
    ErrorKind.BAD_REQUEST: WireError(501, "invalid request parameters"),
    ErrorKind.NOT_LOGGED_IN: WireError(530, "login required"),
    ErrorKind.ALREADY_LOGGED_IN: WireError(503, "already logged in"),
    ErrorKind.AUTH_FAILED: WireError(535, "incorrect password or account name"),
    ErrorKind.UNKNOWN_DOMAIN: WireError(517, "unknown domain"),
    ErrorKind.NOT_FOUND: WireError(512, "unknown mailbox"),
    ErrorKind.ALREADY_EXISTS: WireError(513, "mailbox already exists"),
    ErrorKind.HAS_CHILDREN: WireError(514, "mailbox has nested mailboxes"),
    ErrorKind.PERMISSION: WireError(550, "access denied"),
    ErrorKind.NOT_SUPPORTED: WireError(502, "not supported by this backend"),
    ErrorKind.LIMIT: WireError(552, "limit exceeded"),
    ErrorKind.QUOTA: WireError(552, "quota exceeded"),
    ErrorKind.BACKEND_UNAVAILABLE: WireError(451, "backend server unavailable"),
    ErrorKind.BACKEND_REFUSED: WireError(554, "backend server refused the operation"),
    ErrorKind.TIMEOUT: WireError(451, "backend server timed out"),
    ErrorKind.INTERNAL: WireError(554, "internal error"),
}


class BridgeError(Exception):
    """An error with a kind every front end can translate, and optional client-safe detail.

    `detail` is shown to the client in place of the table's text, so it must never carry backend
    or library text that may leak internals; adapters pass short phrases of their own.
    """

    def __init__(self, kind: ErrorKind, detail: str | None = None) -> None:
        super().__init__(detail or kind.value)
        self.kind = kind
        self.detail = detail

    def wire(self) -> WireError:
        base = XIMSS_ERRORS[self.kind]
        return WireError(base.num, self.detail or base.text)
