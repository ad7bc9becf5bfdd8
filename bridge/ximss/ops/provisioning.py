"""Provisioning operations: signup and recoverPassword (before login), passwordModify (session).

Each domain's `Provisioner` does the work; a domain without one answers "not supported", as
does signup where the domain does not allow it. signup and recoverPassword answer no sooner
than `provisioning.delay` seconds after the request arrived, whatever the outcome (the spec's
delay), so their timing tells nothing about which accounts exist.

recoverPassword mails the password itself, as the spec says, which only a store keeping clear
passwords can do (the dev stack's {PLAIN} passwd-files): the mail goes through the domain's
`provisioning.recovery_smtp_port` on its smtp.host without AUTH (the dev stack's port-25 style
Postfix, which takes mail for local recipients only). Without that port, recovery is refused as
"not available". Production backends should mail a reset link instead of a password.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, localtime, make_msgid
from typing import TYPE_CHECKING

from adapters.protocols import CredentialHolder, PasswordRecovery, Provisioner
from adapters.smtp.submit import SmtpSubmitter
from bridge.config import SmtpSettings
from bridge.errors import BridgeError, ErrorKind
from bridge.services import DomainServices
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.login import split_account

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.provisioning")

NOT_AVAILABLE = "password recovery is not available for this account"


def _provisioner(domain: DomainServices) -> Provisioner:
    if domain.provisioner is None:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "account provisioning is not supported here")
    return domain.provisioner


def signup_allowed(domain: DomainServices) -> bool:
    """Whether listFeatures shows <signup/> and signup may create accounts."""
    return domain.provisioner is not None and domain.settings.provisioning.signup


def _account(conv: Conversation, request: Request) -> tuple[DomainServices, str]:
    """The target domain's backend and `name@domain` from userName (a bare name belongs to the
    target domain, `domain` retargets the connection as in every login-section operation)."""
    wanted = request.get("domain")
    if wanted:
        conv.domain = conv.services.domain(wanted).name
    target = conv.services.domain(conv.domain)
    user = (request.get("userName") or "").strip()
    if not user:
        raise BridgeError(ErrorKind.BAD_REQUEST, "userName is required")
    name, user_domain = split_account(user, target.name)
    backend = conv.services.domain(user_domain)
    return backend, f"{name}@{backend.name}"


async def _delayed(
    conv: Conversation, request: Request, work: Callable[[DomainServices, str], Awaitable[None]]
) -> None:
    """Run `work` for the named account, answering no sooner than the domain's delay whether
    it succeeds or not (the spec's delay: it slows guessing and hides which accounts exist)."""
    started = time.monotonic()
    delay = conv.services.domain(conv.domain).settings.provisioning.delay
    try:
        backend, account = _account(conv, request)
        delay = backend.settings.provisioning.delay
        await work(backend, account)
    finally:
        await asyncio.sleep(max(0.0, started + delay - time.monotonic()))


async def signup(conv: Conversation, request: Request) -> Outcome:
    async def create(backend: DomainServices, account: str) -> None:
        if not signup_allowed(backend):
            raise BridgeError(ErrorKind.NOT_SUPPORTED, "signup is not offered for this domain")
        password = request.get("password")
        if password is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, "password is required")
        await _provisioner(backend).signup(
            account, password, request.get("realName"), request.get("recoverPassword")
        )
        log.info("signup created %s", account)

    await _delayed(conv, request, create)
    return Outcome.DONE


async def recover_password(conv: Conversation, request: Request) -> Outcome:
    async def mail(backend: DomainServices, account: str) -> None:
        provisioner = _provisioner(backend)
        port = backend.settings.provisioning.recovery_smtp_port
        smtp = backend.settings.smtp
        if not port or not smtp.host:
            raise BridgeError(ErrorKind.NOT_SUPPORTED, "password recovery is not available")
        recovery = await provisioner.recover_password(account)
        if recovery is None:
            # One answer for unknown accounts and accounts without an address.
            raise BridgeError(ErrorKind.NOT_FOUND, NOT_AVAILABLE)
        relay = SmtpSettings(host=smtp.host, port=port, starttls=False, timeout=smtp.timeout)
        # No AUTH on that port: the submitter authenticates only where the server offers it.
        sender = SmtpSubmitter(relay, "", "")
        message = _recovery_message(backend.name, account, recovery)
        try:
            # Null envelope sender: an automatic message, nothing may bounce back to it.
            await sender.submit("", [recovery.address], message)
        except BridgeError as exc:
            # The server's refusal names the recovery address: not for whoever asked.
            log.warning("password recovery mail for %s not sent (%s)", account, exc.kind.value)
            raise BridgeError(
                ErrorKind.BACKEND_REFUSED, "the recovery mail could not be sent"
            ) from exc
        log.info("password recovery mailed for %s", account)

    await _delayed(conv, request, mail)
    return Outcome.DONE


def _recovery_message(domain: str, account: str, recovery: PasswordRecovery) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"postmaster@{domain}"
    message["To"] = recovery.address
    message["Subject"] = f"Password of {account}"
    message["Date"] = format_datetime(localtime())
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"Someone asked for the password of {account} to be sent to this address.\n\n"
        f"Password: {recovery.password}\n"
    )
    return message.as_bytes()


async def password_modify(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    backend = conv.services.domain(session.domain)
    provisioner = _provisioner(backend)
    old = request.get("oldPassword")
    if old is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "oldPassword is required")
    new = request.get("newPassword")
    await provisioner.change_password(session.account, old, new, request.get("recoveryEMail"))
    if new is not None:
        # What logs in again later must use the new password: the SMTP submitters (one login per
        # message) and the mail stores that reconnect by themselves, of this session and of the
        # account's other sessions. An operator's session for the account has no submitter, and
        # its store logs in with the operator's password (CredentialHolder: it ignores this).
        for other in conv.services.sessions.all():
            if other is session or other.account == session.account:
                holders = (other.submitter, other.mail, other.calendars.login, other.credentials)
                for holder in holders:
                    if isinstance(holder, CredentialHolder):
                        holder.set_password(new)
    log.info("password changed for %s", session.account)
    return Outcome.DONE
