"""XMAP over HTTP: `POST /XMAP` on the HTTP listener, one XMAP command per request (DESIGN.md
section 6). The path is matched case-insensitively (`/XMAP`, `/xmap`); nothing may follow it.

Switch and method. `[xmap] http = false` answers 404. Any method but POST answers 405 (with
`Allow: POST`); OPTIONS is the listener's CORS preflight as on every other path.

Login. Every request carries HTTP Basic credentials (`Authorization: Basic base64(user:password)`,
UTF-8). On plain HTTP while `[http] require_tls_for_clear_text` is set, the answer is 403 before
any credential is looked at. Missing or unreadable credentials answer 401 with
`WWW-Authenticate: Basic realm="XMAP", charset="UTF-8"` and ERROR Code 530; a wrong password (or
an unknown domain) answers 401 with Code 535 (or 517) and is never remembered. A successful login
is kept for the next requests, keyed by the account name as given (lower-cased) and the SHA-256
of the password, so a request with the same credentials reuses the open IMAP login instead of
logging in again; a different password is a different key and is checked against the server.
A kept login is a bridge session of transport `xmap-http` (it counts against the account's
session limit and shows up where sessions are listed); one request at a time runs on it, in
arrival order. It closes when no request has used it for `[xmap] http_session_idle_timeout`
seconds, when it is ended from outside (KILL, shutdown), when a command on it finds the mail
server unavailable (so the next request logs in afresh), and when the listener stops (a password
changed on the mail server meanwhile is noticed at the next login). Too many
sessions for the account answers 429; a mail server that cannot be reached answers 503. A request
whose login ended while its body was being read answers 503 (Code 451): send it again.

Request body, read in chunks up to `[limits] max_message_bytes + max_frame_bytes`. A larger
Content-Length answers 413 before any of the body is read, and a body that grows past the limit
answers 413 as soon as it does; that answer says `Connection: close`, and what the client still
sends is dropped until it stops or the listener's lingering time ends. Each chunk must arrive
within `[http] read_timeout` seconds (else 408). Two forms:
- `multipart/*` (form-data, mixed...): the first part is the XML command, the second part, if
  any, is the blob, its content taken byte for byte (part headers are ignored, no
  Content-Transfer-Encoding is decoded). More than two parts is an error. `<?GOREALLYSLOW?>` in
  the XML is optional here (the second part is what carries the data), but an XML that has it
  without a second part is an error.
- anything else: the body is the XML command. A command carrying `<?GOREALLYSLOW?>` is followed by
  one zero byte and then the blob's raw bytes up to the end of the body; no `{N}` line, as
  Content-Length already frames it. A command without the PI may end with one zero byte and
  nothing after it (as on TCP).
The XML must fit `[limits] max_frame_bytes` (else 413) and is parsed hardened (no DTD, bounded
depth). A command announcing a blob without one, a blob after a command that takes none, and
any invalid command answer the ERROR with Code 501 (HTTP 400); an unknown command Code 500 (400);
LOGIN is refused with Code 502 ("use HTTP Basic", HTTP 501).

Answers. Success is 200. GETFILE and GETMESSAGE answer with the blob itself as the body, its
media type as Content-Type (the file name's type, or `message/rfc822`) and its size in
`X-XMAP-Length` (listed in Access-Control-Expose-Headers for cross-origin pages). Every other
answer is the XMAPROOT document, `Content-Type: text/xml; charset=utf-8`. A failed command
answers its `<XMAPROOT><ERROR Command Code Text/></XMAPROOT>` with an HTTP status from the
error's kind (`STATUS_BY_KIND`: 400 invalid or unknown command, 404 not found, 409 already
exists or has children, 403 permission, 413 limit, 501 not supported, 507 quota, 503/504 mail
server unavailable or timed out, 500 otherwise), so `curl -f` fails on errors. A batch
(DELETEITEMS, MOVEITEMS, COPYITEMS) whose items failed one by one is still 200, the failed items
being ERROR elements in its answer.
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import BasicAuth, web
from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.throttle import LoginThrottled
from bridge.transport.http_common import HttpContext
from bridge.transport.mime import ACTIVE_TYPES
from bridge.transport.xmap_body import BodyRefused, command_of, read_body
from bridge.transport.xmap_logins import logins_for, stop
from bridge.xmap.account import Reply
from bridge.xmap.errors import error_for

__all__ = ["handle", "stop"]

log = logging.getLogger("bridge.xmap.http")

CHALLENGE: Final = 'Basic realm="XMAP", charset="UTF-8"'
XML_TYPE: Final = "text/xml; charset=utf-8"
LENGTH_HEADER: Final = "X-XMAP-Length"
NO_STORE: Final = {"Cache-Control": "no-cache, no-store"}

# A failed command's HTTP status, so HTTP tools see failures (`curl -f`).
STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.UNKNOWN_OPERATION: 400,
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.NOT_LOGGED_IN: 401,
    ErrorKind.ALREADY_LOGGED_IN: 400,
    ErrorKind.AUTH_FAILED: 401,
    ErrorKind.UNKNOWN_DOMAIN: 404,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.HAS_CHILDREN: 409,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_SUPPORTED: 501,
    ErrorKind.LIMIT: 413,
    ErrorKind.QUOTA: 507,
    ErrorKind.BACKEND_UNAVAILABLE: 503,
    ErrorKind.TIMEOUT: 504,
}


def status_for(kind: ErrorKind) -> int:
    return STATUS_BY_KIND.get(kind, 500)


# --- the endpoint --------------------------------------------------------------------------


async def handle(ctx: HttpContext, request: web.Request, rest: list[str]) -> web.StreamResponse:
    settings = ctx.services.settings
    if not settings.xmap.http or rest:
        return web.Response(status=404, text="not found\n")
    if request.method != "POST":
        return web.Response(status=405, text="XMAP takes POST\n", headers={"Allow": "POST"})
    if settings.http.require_tls_for_clear_text and not request.secure:
        return _error(BridgeError(ErrorKind.PERMISSION, "XMAP over HTTP requires HTTPS"), 403)
    if not _origin_allowed(request, settings.http.cors_origins):
        return _error(BridgeError(ErrorKind.PERMISSION, "cross-site request refused"), 403)
    credentials = _basic_credentials(request)
    if credentials is None:
        return _error(BridgeError(ErrorKind.NOT_LOGGED_IN, "HTTP Basic credentials required"), 401)
    limits = settings.limits
    limit = limits.max_message_bytes + limits.max_frame_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refused(BodyRefused(413, BridgeError(ErrorKind.LIMIT, "request body too large")))
    try:
        return await _serve(ctx, request, credentials, limit)
    except BodyRefused as exc:
        return _refused(exc)
    except BridgeError as exc:
        return _error(exc, status_for(exc.kind))
    except Exception:
        log.exception("peer=%s XMAP HTTP request failed", request.remote)
        return _error(BridgeError(ErrorKind.INTERNAL), 500)


async def _serve(
    ctx: HttpContext, request: web.Request, credentials: tuple[str, str], limit: int
) -> web.StreamResponse:
    logins = logins_for(ctx)
    user, password = credentials
    try:
        login = await logins.obtain(user, password, request.remote or "-")
    except BridgeError as exc:
        response = _error(exc, _login_status(exc.kind))
        if isinstance(exc, LoginThrottled):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    try:
        settings = ctx.services.settings
        async with login.lock:  # one body read and held per login at a time
            body = await read_body(request, limit, settings.http.read_timeout)
            command = command_of(request, body, settings.limits)
            del body  # the command holds what it needs: do not keep two copies of a blob
            reply = await logins.execute(login, command)
    finally:
        logins.release(login)
    return _answer(reply)


def _login_status(kind: ErrorKind) -> int:
    if kind in (ErrorKind.AUTH_FAILED, ErrorKind.UNKNOWN_DOMAIN):
        return 401
    if kind is ErrorKind.LIMIT:
        return 429  # too many sessions for the account, or too many failed logins
    return status_for(kind)


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        auth = BasicAuth.decode(header, encoding="utf-8")
    except ValueError:
        return None
    if not auth.login:
        return None
    return auth.login, auth.password


def _origin_allowed(request: web.Request, allowed: tuple[str, ...]) -> bool:
    """Browsers keep Basic credentials and send them with any page's form POST, which can carry
    an XML command (a text/plain or multipart form): a request a browser marks as coming from
    another origin is refused unless `http.cors_origins` lets that origin in. Clients that are
    not browsers send no Origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin in allowed:  # listed by name: "*" lets no page act with a user's credentials
        return True
    return origin == f"{request.scheme}://{request.host}"


def _answer(reply: Reply) -> web.Response:
    if reply.blob is not None:
        # A stored HTML or SVG file must not run as a page of the bridge's origin: types a
        # browser would render go out as bytes to save, never sniffed.
        kind = reply.content_type.partition(";")[0].strip().lower()
        headers = {
            "Content-Type": "application/octet-stream" if kind in ACTIVE_TYPES else kind,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            LENGTH_HEADER: str(len(reply.blob)),
            # Readable by cross-origin pages too (the listener's CORS allows the request).
            "Access-Control-Expose-Headers": LENGTH_HEADER,
        }
        return web.Response(body=reply.blob, headers={**headers, **NO_STORE})
    return _xml(reply.element, 200)


def _xml(element: etree._Element, status: int) -> web.Response:
    return web.Response(
        body=xml.serialize(element), status=status,
        headers={"Content-Type": XML_TYPE, **NO_STORE},
    )  # fmt: skip


def _error(error: BridgeError, status: int) -> web.Response:
    response = _xml(error_for(error), status)
    if status == 401:
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def _refused(refusal: BodyRefused) -> web.Response:
    response = _error(refusal.error, refusal.status)
    # The rest of the body stays unread: this connection cannot carry another request.
    response.force_close()
    return response
