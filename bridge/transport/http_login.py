"""`/XIMSSLogin/`: log in over HTTP and get a session urlID, or run pre-login XML requests.

Accepted forms, all with case-insensitive parameter names: GET query or POST form with
`userName`/`password` (or HTTP Basic credentials); `sessionid` to revalidate a live session;
`nonce` + `authData` to finish a CRAM-MD5 login whose challenge (the nonce) a listFeatures sent;
an XML body `<XIMSS>` with listFeatures, signup, recoverPassword or login requests. Unknown
parameters (version, EnableUseCookie, x2auth, DisableIPWatch...) are ignored.
"""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import parse_qsl

from aiohttp import BasicAuth, web
from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.throttle import LoginThrottled
from bridge.transport.http_binding import HttpBinding
from bridge.transport.http_common import HttpContext, read_body, xml_response
from bridge.ximss import codec
from bridge.ximss.batch import parse_batch
from bridge.ximss.conversation import Conversation
from bridge.ximss.ops import login as login_ops
from bridge.ximss.ops.base import PendingSasl

log = logging.getLogger("bridge.http")
TRANSPORT = "http"
YES = {"1", "yes", "true", "on"}


async def handle(ctx: HttpContext, request: web.Request, rest: list[str]) -> web.StreamResponse:
    settings = ctx.services.settings
    body = b""
    if request.method == "POST" or request.can_read_body:
        body = await read_body(request, settings.http.max_body_bytes, settings.http.read_timeout)
    params = {key.lower(): value for key, value in request.query.items()}
    content_type = request.content_type.lower()
    if body and content_type == "application/x-www-form-urlencoded":
        text = body.decode(request.charset or "utf-8", "replace")
        params.update((k.lower(), v) for k, v in parse_qsl(text, keep_blank_values=True))
    as_xml = params.get("errorasxml", "").lower() in YES
    conversation = _conversation(ctx, request)
    try:
        if body.lstrip().startswith(b"<"):
            return await _xml_requests(ctx, conversation, body)
        messages = await _login_from_params(ctx, conversation, request, params)
    except BridgeError as exc:
        await conversation.close()
        status = 200 if as_xml else (401 if exc.kind is ErrorKind.AUTH_FAILED else 400)
        if exc.kind in (ErrorKind.BACKEND_UNAVAILABLE, ErrorKind.TIMEOUT) and not as_xml:
            status = 503
        if isinstance(exc, LoginThrottled):
            response = xml_response(None, exc, status=200 if as_xml else 429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        return xml_response(None, exc, status=status)
    return xml_response(messages)


def _conversation(ctx: HttpContext, request: web.Request) -> Conversation:
    peer = request.remote or "-"
    return Conversation(ctx.services, lambda _: None, peer=peer, transport=TRANSPORT,
                        secure=request.secure)  # fmt: skip


async def _login_from_params(
    ctx: HttpContext, conversation: Conversation, request: web.Request, params: dict[str, str]
) -> list[bytes]:
    out: list[bytes] = []
    conversation.send = lambda message: out.extend(codec.pieces(message))
    if "sessionid" in params:
        return _revalidate(ctx, params["sessionid"])
    user = params.get("username") or params.get("authdata" if "nonce" not in params else "")
    password = params.get("password")
    if user is None or password is None:
        basic = _basic_credentials(request)
        if basic is not None:
            user, password = basic
    attrs = {"killOld": "1"} if params.get("killold", "").lower() in YES else {}
    if "nonce" in params:
        await _finish_cram_md5(ctx, conversation, params["nonce"], params.get("authdata", ""),
                               attrs)  # fmt: skip
    elif user and password is not None:
        element = xml.element("login", {"authData": user, "password": password, **attrs})
        await login_ops.login(conversation, codec.Request("login", None, element))
    else:
        raise BridgeError(ErrorKind.BAD_REQUEST, "userName and password are required")
    _bind(ctx, conversation)
    return out


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        auth = BasicAuth.decode(header, encoding="utf-8")
    except ValueError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "malformed Basic credentials") from exc
    return auth.login, auth.password


def _revalidate(ctx: HttpContext, url_id: str) -> list[bytes]:
    binding = ctx.state.get(url_id)
    if binding is None:
        raise BridgeError(ErrorKind.AUTH_FAILED, "unknown or expired session")
    binding.touch()
    session = binding.session
    element = codec.data("session", None, {"urlID": session.url_id, "userName": session.account,
                                           "realName": session.real_name})  # fmt: skip
    return [codec.encode(element)]


async def _finish_cram_md5(
    ctx: HttpContext, conversation: Conversation, nonce: str, auth_data: str, attrs: dict[str, str]
) -> None:
    pending = ctx.state.nonces.pop(nonce, None)
    if pending is None:
        raise BridgeError(ErrorKind.AUTH_FAILED, "unknown or expired nonce")
    request = codec.Request("login", None, xml.element("login", attrs))
    relayed = PendingSasl(pending.exchange, pending.domain, "CRAM-MD5")
    await login_ops.finish_relayed(conversation, request, relayed, _cram_response(auth_data))


def _cram_response(auth_data: str) -> bytes:
    """authData is "user digest", as it is or base64-encoded as on the TCP binding."""
    try:
        decoded = base64.b64decode(auth_data, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if b" " in decoded:
        return decoded
    return auth_data.encode("utf-8")


def _bind(ctx: HttpContext, conversation: Conversation) -> None:
    if conversation.session is None:
        raise BridgeError(ErrorKind.INTERNAL)
    if not conversation.login_noted:
        conversation.note_login()
    ctx.state.add(HttpBinding(conversation, ctx.services.settings.http.max_pending_messages))


def _elements(messages: list[codec.Message]) -> list[etree._Element]:
    return [message for message in messages if isinstance(message, etree._Element)]


async def _xml_requests(ctx: HttpContext, conversation: Conversation, body: bytes) -> web.Response:
    """Pre-login XML requests; a login among them starts an HTTP session."""
    batch = parse_batch(body, ctx.services.settings.limits.max_xml_depth)
    out: list[codec.Message] = []
    conversation.send = out.append
    for request in batch.requests:
        await conversation.handle(request)
        last = _elements(out[-1:])
        if request.name == "listFeatures" and last and last[0].tag == "response":
            await _add_nonce(ctx, conversation, request, out)
    if batch.error is not None:
        conversation.reject(None, batch.error)
    if conversation.session is not None:
        _bind(ctx, conversation)
    else:
        await conversation.close()
    return xml_response([piece for message in out for piece in codec.pieces(message)])


async def _add_nonce(
    ctx: HttpContext, conversation: Conversation, request: codec.Request,
    out: list[codec.Message],
) -> None:  # fmt: skip
    """Over HTTP, listFeatures also carries a CRAM-MD5 challenge: the IMAP server's own, kept
    open until the login with `nonce` + `authData` answers it."""
    features = next(
        (m for m in _elements(out) if m.tag == "features" and m.get("id") == request.id), None
    )
    if features is None:
        return
    domain = ctx.services.domain(conversation.domain)
    if "CRAM-MD5" not in domain.mail.sasl_mechanisms:
        return
    try:
        exchange = await domain.mail.begin_sasl("CRAM-MD5")
        challenge = (await exchange.challenge()).decode("ascii")
    except (BridgeError, UnicodeDecodeError):
        log.warning("no CRAM-MD5 nonce for listFeatures: the mail server did not give one")
        return
    await ctx.state.add_nonce(challenge, exchange, domain.name)
    xml.sub(features, "nonce", text=challenge)
