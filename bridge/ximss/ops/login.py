"""Login section: listFeatures, login (clear text, SASL PLAIN, CRAM-MD5 relayed), auth (signup
and recoverPassword are in `provisioning`)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from adapters.protocols import MailStore, MailSubmitter
from adapters.smtp.submit import SmtpSubmitter
from bridge import metrics, throttle, xml
from bridge.errors import BridgeError, ErrorKind
from bridge.session.calendars import CalendarLogin
from bridge.session.session import Credentials, Session
from bridge.session.uploads import UploadSet
from bridge.ximss import codec
from bridge.ximss.ops import prefs
from bridge.ximss.ops.base import Handler, Outcome, PendingSasl

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

CLEAR_TEXT = ""
# Methods that carry the password itself: require_tls_for_clear_text keeps them off plain text.
CLEAR_TEXT_METHODS = (CLEAR_TEXT, "PLAIN")


def _target_domain(conv: Conversation, request: Request) -> str:
    """A login-section `domain` attribute retargets the connection when the domain is served."""
    wanted = request.get("domain")
    if wanted:
        conv.domain = conv.services.domain(wanted).name
    return conv.services.domain(conv.domain).name


async def list_features(conv: Conversation, request: Request) -> Outcome:
    domain = conv.services.domain(_target_domain(conv, request))
    features = codec.data("features", request.id)
    xml.sub(features, "domain", text=domain.name)
    for mechanism in domain.mail.sasl_mechanisms:
        if mechanism in CLEAR_TEXT_METHODS and not clear_text_allowed(conv):
            continue
        xml.sub(features, "sasl", text=mechanism)
    if conv.starttls_offered and not conv.secure:
        xml.sub(features, "starttls")
    xml.sub(features, "language", text=conv.services.settings.server.language)
    if domain.provisioner is not None and domain.settings.provisioning.signup:
        xml.sub(features, "signup")
    conv.send(features)
    return Outcome.DONE


async def starttls(conv: Conversation, request: Request) -> Outcome:
    """A positive response, after which the transport runs the TLS handshake on the connection.

    The `domain` attribute is accepted and ignored: there is one certificate to offer, and the
    upgrade forgets the target domain anyway (`Conversation.tls_started`).
    """
    if conv.secure:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "the connection is already encrypted")
    if not conv.starttls_offered:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "starttls is not offered on this connection")
    if conv.pending_sasl:
        raise BridgeError(ErrorKind.BAD_REQUEST, "a login is waiting for its auth answer")
    return Outcome.STARTTLS


def clear_text_allowed(conv: Conversation) -> bool:
    """Whether a password may be sent on this conversation: each listener has its own setting
    (the WebSocket binding lives on the HTTP listener)."""
    if conv.secure:
        return True
    settings = conv.services.settings
    if conv.transport == "tcp":
        return not settings.tcp.require_tls_for_clear_text
    return not settings.http.require_tls_for_clear_text


def split_account(user: str, domain: str) -> tuple[str, str]:
    """`name@domain` -> (name, domain); a bare name belongs to the target domain."""
    name, at, user_domain = user.strip().rpartition("@")
    if not at:
        return user.strip().lower(), domain
    return name.lower(), user_domain.lower()


def counted(handler: Handler) -> Handler:
    """Count login failures by kind (successes are counted where the session opens)."""

    async def wrapper(conv: Conversation, request: Request) -> Outcome:
        try:
            return await handler(conv, request)
        except BridgeError as exc:
            metrics.LOGINS.labels(conv.transport, exc.kind.value).inc()
            raise

    return wrapper


@counted
async def login(conv: Conversation, request: Request) -> Outcome:
    domain = _target_domain(conv, request)
    method = (request.get("method") or CLEAR_TEXT).upper()
    if method in CLEAR_TEXT_METHODS and not clear_text_allowed(conv):
        raise BridgeError(ErrorKind.PERMISSION, "clear-text login requires TLS")
    if method == CLEAR_TEXT:
        user = request.get("authData") or request.get("userName") or ""
        password = request.get("password")
        if not user or password is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, "authData and password are required")
        await _password_login(conv, request, user, password, "", domain)
        return Outcome.DONE
    if method == "PLAIN":
        auth_data = request.get("authData")
        if auth_data is None:
            # No initial response: ask for it with an empty challenge, as SASL allows.
            conv.pending_sasl[_id(request)] = _plain_pending(domain)
            conv.send(codec.data("challenge", request.id, {"value": ""}))
            return Outcome.DEFERRED
        await _plain_login(conv, request, _b64decode(auth_data), domain)
        return Outcome.DONE
    backend = conv.services.domain(domain).mail
    if method not in backend.sasl_mechanisms:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, f"SASL method {method} is not supported")
    # The account is known only from the answer: an address that must wait gets no challenge.
    throttle.for_services(conv.services).check(None, _address(conv), conv.transport)
    exchange = await backend.begin_sasl(method)
    try:
        challenge = await exchange.challenge()
    except BaseException:
        await exchange.abort()
        raise
    old = conv.pending_sasl.pop(_id(request), None)
    if old is not None:
        await old.exchange.abort()
    conv.pending_sasl[_id(request)] = PendingSasl(exchange, domain, method)
    conv.send(codec.data("challenge", request.id, {"value": base64.b64encode(challenge).decode()}))
    return Outcome.DEFERRED


@counted
async def auth(conv: Conversation, request: Request) -> Outcome:
    """The client's answer to a challenge; the deferred login's response is sent now."""
    pending = conv.pending_sasl.pop(_id(request), None)
    if pending is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "no login is waiting for this id")
    response = _b64decode(request.get("value") or "")
    if pending.mechanism == "PLAIN":
        await _plain_login(conv, request, response, pending.domain)
        return Outcome.DONE
    await finish_relayed(conv, request, pending, response)
    return Outcome.DONE


async def finish_relayed(
    conv: Conversation, request: Request, pending: PendingSasl, response: bytes
) -> None:
    """Hand the client's answer to the backend's challenge over, and open the session."""
    # CRAM-MD5's response is "<user> <digest>": the user is what the server just verified.
    user = response.decode("utf-8", "replace").rsplit(" ", 1)[0]
    name, user_domain = split_account(user, pending.domain)
    account = f"{name}@{user_domain}"
    try:
        _throttle_check(conv, account)
        store = await pending.exchange.finish(response)
    except BaseException as exc:
        await pending.exchange.abort()
        await _note_failure(conv, exc, user, pending.domain)
        raise
    throttle.for_services(conv.services).succeeded(account)
    await open_session(conv, request, store, user, pending.domain)


def _plain_pending(domain: str) -> PendingSasl:
    return PendingSasl(_NoExchange(), domain, "PLAIN")


class _NoExchange:
    """PLAIN needs no backend exchange until the credentials arrive."""

    async def challenge(self) -> bytes:
        return b""

    async def finish(self, response: bytes) -> MailStore:
        raise BridgeError(ErrorKind.INTERNAL)

    async def abort(self) -> None:
        return None


async def _plain_login(conv: Conversation, request: Request, data: bytes, domain: str) -> None:
    parts = data.split(b"\x00")
    if len(parts) != 3:
        raise BridgeError(ErrorKind.BAD_REQUEST, "malformed PLAIN data")
    try:
        authzid, user, password = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "PLAIN data is not UTF-8") from exc
    await _password_login(conv, request, user, password, authzid, domain)


async def _password_login(
    conv: Conversation, request: Request, user: str, password: str, authzid: str, domain: str
) -> None:
    name, user_domain = split_account(user, domain)
    backend = conv.services.domain(user_domain)
    account = f"{name}@{backend.name}"
    authz = ""
    if authzid and authzid != user:
        authz_name, authz_domain = split_account(authzid, backend.name)
        authz = f"{authz_name}@{authz_domain}"
    try:
        _throttle_check(conv, account)
        store = await backend.mail.login(account, password, authz)
    except BridgeError as exc:
        await _note_failure(conv, exc, account, backend.name)
        raise
    throttle.for_services(conv.services).succeeded(account)
    smtp = backend.settings.smtp
    # Submission authenticates as the user; an operator acting for someone else has no way to.
    submitter = SmtpSubmitter(smtp, account, password) if smtp.host and not authz else None
    await open_session(conv, request, store, authz or account, backend.name, submitter)
    if not authz and conv.session is not None:
        # CalDAV and SIP take the mail credentials; an operator acting for someone has none.
        conv.session.credentials = Credentials(password)
        if backend.calendars is not None:
            conv.session.calendars.login = CalendarLogin(backend.calendars, account, password)


async def open_session(
    conv: Conversation,
    request: Request,
    store: MailStore,
    user: str,
    domain: str,
    submitter: MailSubmitter | None = None,
) -> None:
    """Register the session the backend just authenticated and send the `session` message."""
    name, user_domain = split_account(user, domain)
    backend = conv.services.domain(user_domain)
    account = f"{name}@{backend.name}"
    try:
        await conv.services.sessions.make_room(account, kill_old=request.flag("killOld"))
    except BaseException:
        await store.close()
        raise
    http = conv.services.settings.http
    real_name = backend.settings.real_names.get(name)
    if real_name is None and backend.provisioner is not None:
        real_name = await backend.provisioner.real_name(account)
    session = Session(
        account=account,
        domain=backend.name,
        real_name=real_name,
        mail=store,
        uploads=UploadSet(http.max_upload_bytes, http.max_uploads_total_bytes),
        transport=conv.transport,
        submitter=submitter,
    )
    # Before the session is visible: its first operations already see the preferences.
    await prefs.on_login(conv, session)
    conv.session = session
    conv.services.sessions.add(session)
    metrics.LOGINS.labels(conv.transport, "ok").inc()
    store.on_alert(conv.alert)
    conv.send(
        codec.data(
            "session",
            request.id,
            {"urlID": session.url_id, "userName": session.account, "realName": session.real_name},
        )
    )


def _address(conv: Conversation) -> str:
    # TCP peers are "host:port"; HTTP and WebSocket ones the bare host.
    return throttle.client_address(conv.peer, with_port=conv.transport == "tcp")


def _throttle_check(conv: Conversation, account: str) -> None:
    throttle.for_services(conv.services).check(account, _address(conv), conv.transport)


async def _note_failure(conv: Conversation, exc: BaseException, user: str, domain: str) -> None:
    """A refused password counts for the throttle and becomes the account's LastFailedLogin
    (other failures do neither)."""
    if not isinstance(exc, BridgeError) or exc.kind is not ErrorKind.AUTH_FAILED:
        return
    name, user_domain = split_account(user, domain)
    account = f"{name}@{user_domain}" if user else None
    throttle.for_services(conv.services).failed(account, _address(conv))
    if account is not None and user_domain == domain:
        await prefs.record_failed_login(conv.services.state, account, conv.peer)


def _id(request: Request) -> str:
    assert request.id is not None  # the conversation rejects requests without an id
    return request.id


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid base64 data") from exc
