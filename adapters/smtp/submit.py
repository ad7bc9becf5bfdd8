"""Submitting a composed message to the domain's SMTP submission server.

One connection per message, AUTH as the user (the password the session logged in with),
STARTTLS when the server offers it and the settings allow. Recipients are offered one by one and
DATA is sent only when every one was accepted: a refusal of some recipients is answered as an
error naming them and nothing is sent, so a message is never half sent nor reported sent when
it was not. With `dsn`, NOTIFY=SUCCESS,FAILURE asks for delivery reports (RFC 3461) when the
server offers DSN.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiosmtplib

from bridge.config import SmtpSettings
from bridge.errors import BridgeError, ErrorKind

log = logging.getLogger("adapters.smtp")


class SmtpSubmitter:
    def __init__(self, settings: SmtpSettings, username: str, password: str) -> None:
        self._settings = settings
        self._username = username
        self._password = password

    def set_password(self, password: str) -> None:
        """Authenticate with this password from the next message on (after passwordModify)."""
        self._password = password

    async def submit(
        self, sender: str, recipients: Sequence[str], message: bytes, *, dsn: bool = False
    ) -> None:
        if not recipients:
            raise BridgeError(ErrorKind.BAD_REQUEST, "no recipients")
        s = self._settings
        smtp = aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout,
                               start_tls=None if s.starttls else False)  # fmt: skip
        try:
            await smtp.connect()
            if smtp.last_ehlo_response is None:  # extensions are known only after EHLO
                await smtp.ehlo()
            if smtp.supports_extension("auth"):
                await smtp.login(self._username, self._password)
            await self._transaction(smtp, sender, recipients, message, dsn)
        except aiosmtplib.SMTPAuthenticationError as exc:
            log.warning("SMTP AUTH refused for %s: %s", self._username, exc.code)
            raise BridgeError(
                ErrorKind.BACKEND_REFUSED, "the mail server refused the login"
            ) from exc
        except aiosmtplib.SMTPTimeoutError as exc:
            raise BridgeError(ErrorKind.TIMEOUT) from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            raise BridgeError(ErrorKind.BACKEND_UNAVAILABLE, "mail server unavailable") from exc
        except aiosmtplib.SMTPResponseException as exc:
            text = f"the mail server refused the message: {exc.code} {exc.message}"
            raise BridgeError(ErrorKind.BACKEND_REFUSED, text) from exc
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except aiosmtplib.SMTPException:
                    smtp.close()

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, sender: str, recipients: Sequence[str], message: bytes,
        dsn: bool,
    ) -> None:  # fmt: skip
        mail_options: list[str] = []
        if any(byte > 0x7F for byte in message) and smtp.supports_extension("8bitmime"):
            mail_options.append("BODY=8BITMIME")
        if not all(address.isascii() for address in (sender, *recipients)):
            if not smtp.supports_extension("smtputf8"):
                raise BridgeError(ErrorKind.NOT_SUPPORTED,
                                  "the mail server does not take non-ASCII addresses")  # fmt: skip
            mail_options.append("SMTPUTF8")
        rcpt_options = ["NOTIFY=SUCCESS,FAILURE"] if dsn and smtp.supports_extension("dsn") else []
        await smtp.mail(sender, options=mail_options)
        refused: list[str] = []
        for recipient in recipients:
            try:
                await smtp.rcpt(recipient, options=rcpt_options)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused.append(f"{recipient} ({exc.code} {exc.message})")
        if refused:
            await smtp.rset()
            raise BridgeError(ErrorKind.BACKEND_REFUSED, "recipient refused: " + "; ".join(refused))
        await smtp.data(message)
