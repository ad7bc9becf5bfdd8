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

import asyncio
import email.message
import hashlib
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Final

from aiohttp import BasicAuth, ClientError, web
from aiohttp.http_exceptions import HttpProcessingError
from lxml import etree

from bridge import xml
from bridge.config import LimitSettings
from bridge.errors import BridgeError, ErrorKind
from bridge.services import Services
from bridge.transport.http_binding import HttpState
from bridge.transport.http_common import HttpContext
from bridge.xmap import codec
from bridge.xmap import commands as c
from bridge.xmap.account import Reply
from bridge.xmap.conversation import XmapConversation
from bridge.xmap.document import command_element, guess_command, parse_document, wants_blob
from bridge.xmap.errors import CodecError, error_for

log = logging.getLogger("bridge.xmap.http")

TRANSPORT: Final = "xmap-http"
CHALLENGE: Final = 'Basic realm="XMAP", charset="UTF-8"'
XML_TYPE: Final = "text/xml; charset=utf-8"
LENGTH_HEADER: Final = "X-XMAP-Length"
READ_CHUNK: Final = 64 * 1024
NO_STORE: Final = {"Cache-Control": "no-cache, no-store"}
# Failures that leave a kept login useless: drop it, so the next request logs in afresh.
BROKEN_LOGIN: Final = frozenset({ErrorKind.BACKEND_UNAVAILABLE, ErrorKind.TIMEOUT})

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


class _BodyRefused(Exception):
    """The body is refused before it was read to its end: answer, then close the connection."""

    def __init__(self, status: int, error: BridgeError) -> None:
        super().__init__(error.detail)
        self.status = status
        self.error = error


# --- kept logins ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Login:
    key: tuple[str, bytes]
    conversation: XmapConversation | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one command at a time
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # the login has finished
    last_used: float = field(default_factory=time.monotonic)
    users: int = 0  # requests holding it (between login and answer): never reaped meanwhile
    dropped: bool = False

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
        self._entries: dict[tuple[str, bytes], _Login] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def _idle_timeout(self) -> float:
        return self._services.settings.xmap.http_session_idle_timeout

    async def obtain(self, user: str, password: str, peer: str) -> _Login:
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
            login.users += 1
            login.last_used = time.monotonic()
            return login

    async def _log_in(self, key: tuple[str, bytes], user: str, password: str, peer: str) -> _Login:
        login = _Login(key)

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

    def release(self, login: _Login) -> None:
        login.users -= 1
        login.last_used = time.monotonic()

    async def execute(self, login: _Login, command: c.Command) -> Reply:
        async with login.lock:
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

    def _forget(self, login: _Login) -> None:
        login.dropped = True
        if self._entries.get(login.key) is login:
            del self._entries[login.key]

    async def _end(self, login: _Login, why: str) -> None:
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


# --- the endpoint --------------------------------------------------------------------------


async def handle(ctx: HttpContext, request: web.Request, rest: list[str]) -> web.StreamResponse:
    settings = ctx.services.settings
    if not settings.xmap.http or rest:
        return web.Response(status=404, text="not found\n")
    if request.method != "POST":
        return web.Response(status=405, text="XMAP takes POST\n", headers={"Allow": "POST"})
    if settings.http.require_tls_for_clear_text and not request.secure:
        return _error(BridgeError(ErrorKind.PERMISSION, "XMAP over HTTP requires HTTPS"), 403)
    credentials = _basic_credentials(request)
    if credentials is None:
        return _error(BridgeError(ErrorKind.NOT_LOGGED_IN, "HTTP Basic credentials required"), 401)
    limits = settings.limits
    limit = limits.max_message_bytes + limits.max_frame_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refused(_BodyRefused(413, BridgeError(ErrorKind.LIMIT, "request body too large")))
    try:
        return await _serve(ctx, request, credentials, limit)
    except _BodyRefused as exc:
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
        return _error(exc, _login_status(exc.kind))
    try:
        settings = ctx.services.settings
        body = await _read_body(request, limit, settings.http.read_timeout)
        command = _command(request, body, settings.limits)
        del body  # the command holds what it needs: do not keep two copies of a blob
        reply = await logins.execute(login, command)
    finally:
        logins.release(login)
    return _answer(reply)


def _login_status(kind: ErrorKind) -> int:
    if kind in (ErrorKind.AUTH_FAILED, ErrorKind.UNKNOWN_DOMAIN):
        return 401
    if kind is ErrorKind.LIMIT:
        return 429  # too many sessions for the account
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


async def _read_body(request: web.Request, limit: int, timeout: float) -> bytearray:
    """The body, refused (413) as soon as it passes `limit`; each chunk must come within
    `timeout` (a whole-body deadline would cut off a large upload on a slow link)."""
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await request.content.read(READ_CHUNK)
        except TimeoutError:
            raise _BodyRefused(
                408, BridgeError(ErrorKind.TIMEOUT, "request body too slow")
            ) from None
        except (OSError, ClientError, HttpProcessingError) as exc:
            # The client went away or broke its framing: nothing to log beyond a line.
            log.info("peer=%s XMAP HTTP body not read: %r", request.remote, exc)
            raise _BodyRefused(
                400, BridgeError(ErrorKind.BAD_REQUEST, "request body incomplete")
            ) from None
        if not chunk:
            return body
        if len(body) + len(chunk) > limit:
            raise _BodyRefused(413, BridgeError(ErrorKind.LIMIT, "request body too large"))
        body += chunk


def _command(request: web.Request, body: bytearray, limits: LimitSettings) -> c.Command:
    max_frame, max_blob = limits.max_frame_bytes, limits.max_message_bytes
    multipart = request.content_type.lower().startswith("multipart/")
    if multipart:
        document, blob = _multipart(request.headers.get("Content-Type", ""), body)
    else:
        document, blob = _zero_split(body, max_frame)
    if len(document) > max_frame:
        raise CodecError(guess_command(document), ErrorKind.LIMIT,
                         f"the XML command is over {max_frame} bytes")  # fmt: skip
    try:
        root = parse_document(document, limits.max_xml_depth)
    except BridgeError as exc:
        raise CodecError(guess_command(document), exc.kind, exc.detail) from exc
    element = command_element(root)
    name = element.tag if isinstance(element.tag, str) else ""
    announced = wants_blob(root)
    if announced and blob is None:
        missing = "a second part" if multipart else "a zero byte and the data"
        raise CodecError(name, ErrorKind.BAD_REQUEST, f"<?GOREALLYSLOW?> without {missing}")
    if not multipart and not announced and blob:
        raise CodecError(name, ErrorKind.BAD_REQUEST, "data after a command without data")
    if not multipart and not announced:
        blob = None  # a lone trailing zero byte ends the XML, as on TCP
    if blob is not None and len(blob) > max_blob:
        raise CodecError(name, ErrorKind.LIMIT, f"the data is over {max_blob} bytes")
    command = codec.parse_command(root, blob)
    if isinstance(command, c.Login):
        raise CodecError(command.COMMAND, ErrorKind.NOT_SUPPORTED, "use HTTP Basic")
    return command


def _zero_split(body: bytearray, max_frame: int) -> tuple[bytes, bytes | None]:
    """XML, then optionally a zero byte and the blob (XML itself never holds a zero byte)."""
    end = body.find(b"\x00", 0, max_frame + 1)
    view = memoryview(body)
    if end < 0:
        # No zero byte within the frame limit: all XML, or XML too large (checked by the caller).
        return bytes(view[: max_frame + 1]), None
    return bytes(view[:end]), bytes(view[end + 1 :])


def _multipart(content_type: str, body: bytearray) -> tuple[bytes, bytes | None]:
    """The first part (XML) and the second (blob, if any) of a MIME multipart body."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70 or not boundary.isascii():
        raise CodecError("", ErrorKind.BAD_REQUEST, "multipart body without a valid boundary")
    parts = _split_parts(body, boundary.encode("ascii"))
    if not parts:
        raise CodecError("", ErrorKind.BAD_REQUEST, "multipart body without parts")
    if len(parts) > 2:
        raise CodecError("", ErrorKind.BAD_REQUEST, "more than two parts (XML, then data)")
    view = memoryview(body)
    document = bytes(view[parts[0][0] : parts[0][1]])
    blob = bytes(view[parts[1][0] : parts[1][1]]) if len(parts) == 2 else None
    return document, blob


def _split_parts(body: bytearray, boundary: bytes) -> list[tuple[int, int]]:
    """Each part's content as (start, end) offsets into the body (RFC 2046 section 5.1.1: a
    delimiter is CRLF "--" boundary; the first may open the body; "--" after one closes it).
    Stops past three parts: more is an error anyway."""
    delimiter = b"\r\n--" + boundary
    if body.startswith(delimiter[2:]):
        pos = len(delimiter) - 2
    else:
        found = body.find(delimiter)
        if found < 0:
            raise CodecError("", ErrorKind.BAD_REQUEST, "multipart boundary not found")
        pos = found + len(delimiter)
    parts: list[tuple[int, int]] = []
    while len(parts) <= 2:
        if body.startswith(b"--", pos):
            return parts
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise CodecError("", ErrorKind.BAD_REQUEST, "malformed multipart delimiter")
        start = line_end + 2
        end = body.find(delimiter, start)
        if end < 0:
            raise CodecError("", ErrorKind.BAD_REQUEST, "unterminated multipart part")
        # The part's header ends at its first empty line (none: CRLF right away).
        if body.startswith(b"\r\n", start):
            content = start + 2
        else:
            blank = body.find(b"\r\n\r\n", start, end)
            if blank < 0:
                raise CodecError("", ErrorKind.BAD_REQUEST, "multipart part without a header end")
            content = blank + 4
        parts.append((content, end))
        pos = end + len(delimiter)
    return parts


def _answer(reply: Reply) -> web.Response:
    if reply.blob is not None:
        headers = {
            "Content-Type": reply.content_type,
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


def _refused(refusal: _BodyRefused) -> web.Response:
    response = _error(refusal.error, refusal.status)
    # The rest of the body stays unread: this connection cannot carry another request.
    response.force_close()
    return response
