"""Composing and sending: messageAppend, messageSubmit, messageRedirect, messageForward,
messageConfirm, contactAppend.

Messages are composed from the `<EMail>` XML by `bridge.mime.compose`; uploads and `copyMIME`
parts are fetched first (IMAP is async, composing is not). Appends go to IMAP (APPENDUID gives
`messageAdded`), submissions to the domain's SMTP server with the user's own credentials: all
recipients or none, so a message is never reported sent when it was not, and the Sent copy is
stored only after the server took the message.
"""

from __future__ import annotations

import datetime as dt
import email.header
import email.policy
import email.utils
import logging
import secrets
import socket
from collections.abc import Callable, Sequence
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import TYPE_CHECKING

from lxml import etree

from adapters.protocols import Located, MailSubmitter
from bridge.errors import BridgeError, ErrorKind
from bridge.mime import compose as composer
from bridge.session.folders import Folder
from bridge.views import flags as flag_names
from bridge.ximss import codec, fields
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.folder import folder_of
from bridge.ximss.ops.service import TIME_FORMAT, user_zoneinfo

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

DELETED = "\\Deleted"
MDN_SENT = "$MDNSent"
SEEN = "\\Seen"
# The class a mailbox created by contactAppend gets (CommuniGate's name for contact folders).
CONTACT_CLASS = "IPF.Contact"
HOSTNAME = socket.getfqdn() or "localhost"

log = logging.getLogger("bridge.ximss")


# --------------------------------------------------------------------------- helpers


def _email_of(request: Request) -> etree._Element:
    found = [child for child in request.element if child.tag == "EMail"]
    if len(found) != 1:
        raise BridgeError(ErrorKind.BAD_REQUEST, "exactly one EMail element is required")
    if (found[0].get("sign") or "").lower() == "yes" or (found[0].get("encrypt") or "") == "yes":
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "S/MIME is not supported")
    return found[0]


def _flags(request: Request, default: Sequence[str] = ()) -> list[str]:
    text = request.get("flags")
    if not text:
        return list(default)
    add, remove = flag_names.parse_mark(text)
    if remove:
        raise BridgeError(ErrorKind.BAD_REQUEST, "a new message cannot have flags cleared")
    return add


def _internal_date(request: Request) -> dt.datetime | None:
    text = request.get("internalDate")
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise BridgeError(ErrorKind.BAD_REQUEST, "internalDate is not YYYYMMDDTHHMMSS") from exc


Resolver = Callable[[etree._Element], composer.Attachment]


async def resolve_attachments(conv: Conversation, email_: etree._Element) -> Resolver:
    """Fetch every upload and copied part the EMail names; compose then looks them up."""
    session = conv.require_session()
    found: dict[tuple[str, ...], composer.Attachment] = {}
    for element in email_.iter("MIME", "copyMIME"):
        key = _key(element)
        if element.tag == "MIME" and element.get("fileName"):
            raise BridgeError(ErrorKind.NOT_SUPPORTED, "file storage is not available")
        if element.tag == "MIME" and element.get("uploadID") is not None:
            upload = session.uploads.get(element.get("uploadID") or "")
            if upload is None:
                raise BridgeError(ErrorKind.NOT_FOUND, "unknown uploadID")
            found[key] = composer.Attachment(
                data=upload.path.read_bytes(), content_type=upload.content_type,
                filename=upload.file_name, entity=False,
            )  # fmt: skip
        elif element.tag == "copyMIME":
            found[key] = await _copied(conv, element)

    def resolve(element: etree._Element) -> composer.Attachment:
        attachment = found.get(_key(element))
        if attachment is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, "unresolved attachment")
        return attachment

    return resolve


def _key(element: etree._Element) -> tuple[str, ...]:
    """What names an attachment (lxml makes new proxies for the same element: no id())."""
    names = ("uploadID", "folder", "UID", "partID")
    return (str(element.tag), *(element.get(name) or "" for name in names))


async def _copied(conv: Conversation, element: etree._Element) -> composer.Attachment:
    name = element.get("folder")
    if not name:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "copyMIME takes an open folder")
    folder = conv.require_session().folders.get(name)
    if folder is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "unknown folder")
    uid = uid_of(element.get("UID"))
    part = element.get("partID") or ""
    if part:
        header = await folder.mailbox.fetch_section(uid, f"{part}.MIME")
        body = await folder.mailbox.fetch_section(uid, part)
        if header is None or body is None:
            raise BridgeError(ErrorKind.NOT_FOUND, "no such message part")
        return composer.Attachment(data=header + body, content_type=None, filename=None,
                                   entity=True)  # fmt: skip
    whole = await folder.mailbox.fetch_section(uid, "")
    if whole is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "no such message")
    return composer.Attachment(data=whole, content_type=None, filename=None, entity=True)


def uid_of(text: str | None) -> int:
    if not text or not text.isdigit():
        raise BridgeError(ErrorKind.BAD_REQUEST, "UID is required")
    return int(text)


async def _compose(conv: Conversation, email_: etree._Element, *, skip_bcc: bool) -> bytes:
    limits = conv.services.settings.limits
    return composer.compose(
        email_, resolve=await resolve_attachments(conv, email_), hostname=HOSTNAME,
        now=dt.datetime.now(dt.UTC), skip_bcc=skip_bcc, max_bytes=limits.max_message_bytes,
        user_zone=user_zoneinfo(conv),
    )  # fmt: skip


async def _append(
    conv: Conversation,
    target: str,
    message: bytes,
    flags: Sequence[str],
    internal: dt.datetime | None,
    mailbox_class: str | None,
) -> Located | None:
    """APPEND, creating the mailbox first when it is missing and a class was given."""
    store = conv.require_session().mail
    try:
        return await store.append(target, message, flags, internal)
    except BridgeError as exc:
        if exc.kind is not ErrorKind.NOT_FOUND or mailbox_class is None:
            raise
    await store.create_mailbox(target, mailbox_class or None)
    return await store.append(target, message, flags, internal)


def _destination(conv: Conversation, request: Request) -> tuple[str, Folder | None]:
    if request.get("folder") is not None:
        folder = folder_of(conv, request)
        return folder.mailbox.name, folder
    target = request.get("targetMailbox")
    if not target:
        raise BridgeError(ErrorKind.BAD_REQUEST, "folder or targetMailbox is required")
    return target, None


async def _store_and_report(
    conv: Conversation, request: Request, message: bytes, flags: Sequence[str],
    mailbox_class: str | None,
) -> None:  # fmt: skip
    """messageAppend/contactAppend after composing: append, replacesUID, report="uid"."""
    target, folder = _destination(conv, request)
    placed = await _append(conv, target, message, flags, _internal_date(request), mailbox_class)
    replaced = request.get("replacesUID")
    if replaced is not None and folder is not None:
        old = uid_of(replaced)
        await folder.mailbox.mark([old], [DELETED], [])
        await folder.mailbox.expunge([old])
    if (request.get("report") or "").lower() == "uid" and folder is not None and placed is not None:
        conv.send(
            codec.data("messageAdded", request.id, {"folder": folder.name, "UID": placed.uid})
        )


def _submitter(conv: Conversation) -> MailSubmitter:
    submitter = conv.require_session().submitter
    if submitter is None:
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "sending mail is not available for this login")
    return submitter


def _addresses(elements: Sequence[etree._Element]) -> list[str]:
    found = []
    for element in elements:
        address = (element.text or "").strip()
        if not address or "@" not in address or any(c in address for c in "<>\r\n,;"):
            raise BridgeError(ErrorKind.BAD_REQUEST, f"invalid address: {address[:80]!r}")
        found.append(address)
    return found


# --------------------------------------------------------------------------- operations


async def message_append(conv: Conversation, request: Request) -> Outcome:
    message = await _compose(conv, _email_of(request), skip_bcc=False)
    await _store_and_report(conv, request, message, _flags(request),
                            request.get("mailboxClass"))  # fmt: skip
    return Outcome.DONE


async def message_submit(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    submitter = _submitter(conv)
    email_ = _email_of(request)
    envelope = [child for child in request.element if child.tag == "Envelope-To"]
    recipients = _addresses(envelope) if envelope else composer.envelope_recipients(email_)
    if not recipients:
        raise BridgeError(ErrorKind.BAD_REQUEST, "no recipients")
    # Everything checked before sending: nothing may fail after the server took the message.
    flags, internal = _flags(request), _internal_date(request)
    message = await _compose(conv, email_, skip_bcc=True)
    dsn = (request.get("useDSN") or "").lower() == "yes"
    # The envelope sender is the account: delivery reports come back to its INBOX.
    await submitter.submit(session.account, recipients, message, dsn=dsn)
    target = request.get("targetMailbox")
    if target:
        # The message is gone already: a missing Sent mailbox is created rather than the copy
        # lost, and a copy the mail server refuses even so (down, over quota) is told as an
        # alert, never as a failed submission a client would send again.
        try:
            await _append(conv, target, message, flags, internal, request.get("mailboxClass") or "")
        except BridgeError as exc:
            log.warning("%s: sent, but the copy in %s was not stored: %s",
                        session.account, target, exc)  # fmt: skip
            conv.alert(f"Your message was sent, but its copy could not be stored in {target}.")
    return Outcome.DONE


async def _stored(conv: Conversation, request: Request) -> tuple[Folder, int, bytes]:
    folder = folder_of(conv, request)
    uid = uid_of(request.get("UID"))
    whole = await folder.mailbox.fetch_section(uid, "")
    if whole is None:
        raise BridgeError(ErrorKind.NOT_FOUND, "no such message")
    return folder, uid, whole


def _to_elements(request: Request) -> list[str]:
    recipients = _addresses([child for child in request.element if child.tag == "To"])
    if not recipients:
        raise BridgeError(ErrorKind.BAD_REQUEST, "at least one To element is required")
    return recipients


def _sender(conv: Conversation) -> str:
    session = conv.require_session()
    return email.utils.formataddr((session.real_name or "", session.account))


async def message_redirect(conv: Conversation, request: Request) -> Outcome:
    """The stored message as it is, with Resent-* fields on top (RFC 5322 section 3.6.6)."""
    session = conv.require_session()
    submitter = _submitter(conv)
    recipients = _to_elements(request)
    _, _, original = await _stored(conv, request)
    resent = (
        f"Resent-From: {_sender(conv)}\r\n"
        f"Resent-Date: {email.utils.format_datetime(dt.datetime.now(dt.UTC))}\r\n"
        f"Resent-Message-ID: <ximss-{secrets.token_hex(8)}@{HOSTNAME}>\r\n"
        f"Resent-To: {', '.join(recipients)}\r\n"
    ).encode()
    await submitter.submit(session.account, recipients, resent + original)
    return Outcome.DONE


async def message_forward(conv: Conversation, request: Request) -> Outcome:
    """A new message from the user with the stored one attached as message/rfc822."""
    session = conv.require_session()
    submitter = _submitter(conv)
    recipients = _to_elements(request)
    _, _, original = await _stored(conv, request)
    parsed = email.message_from_bytes(original, policy=email.policy.compat32)
    outer = MIMEMultipart("mixed")
    outer["From"] = _sender(conv)
    outer["To"] = ", ".join(recipients)
    outer["Subject"] = str(
        email.header.Header(f"Fwd: {fields.decode_header(str(parsed.get('Subject', '')))}", "utf-8")
    )
    outer["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    outer["Message-ID"] = f"<ximss-{secrets.token_hex(8)}@{HOSTNAME}>"
    outer.attach(MIMEText("Forwarded message attached.\n", "plain", "utf-8"))
    outer.attach(MIMEMessage(parsed))
    await submitter.submit(session.account, recipients, outer.as_bytes())
    return Outcome.DONE


async def message_confirm(conv: Conversation, request: Request) -> Outcome:
    """An MDN (RFC 8098) to the address the message asks confirmations at; $MDNSent is set
    so none is sent twice. Nothing is sent for a message that asks for none or has one."""
    session = conv.require_session()
    submitter = _submitter(conv)
    folder, uid, original = await _stored(conv, request)
    manual = (request.get("type") or "manual").lower() != "auto"
    flags = await folder.mailbox.summaries([uid], [])
    if uid not in flags:
        raise BridgeError(ErrorKind.NOT_FOUND, "no such message")
    if any(flag.lower() == MDN_SENT.lower() for flag in flags[uid].flags):
        return Outcome.DONE
    parsed = email.message_from_bytes(original, policy=email.policy.compat32)
    asked = parsed.get("Disposition-Notification-To")
    addresses = [a for _, a in email.utils.getaddresses([str(asked)]) if a] if asked else []
    if not addresses:
        return Outcome.DONE
    mode = (
        "manual-action/MDN-sent-manually" if manual else "automatic-action/MDN-sent-automatically"
    )
    report = MIMEMultipart("report", report_type="disposition-notification")
    report["From"] = _sender(conv)
    report["To"] = ", ".join(addresses)
    subject = fields.decode_header(str(parsed.get("Subject", "")))
    report["Subject"] = str(email.header.Header(f"Read: {subject}", "utf-8"))
    report["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    report["Message-ID"] = f"<ximss-{secrets.token_hex(8)}@{HOSTNAME}>"
    report.attach(MIMEText(f"The message sent to {session.account} was displayed.\n", "plain",
                           "utf-8"))  # fmt: skip
    lines = [f"Reporting-UA: {HOSTNAME}; ximss-bridge",
              f"Final-Recipient: rfc822;{session.account}"]  # fmt: skip
    if parsed.get("Message-ID"):
        lines.append(f"Original-Message-ID: {parsed.get('Message-ID')}")
    lines.append(f"Disposition: {mode}; displayed")
    notification = MIMEBase("message", "disposition-notification")
    notification.set_payload("\r\n".join(lines) + "\r\n")
    report.attach(notification)
    # RFC 8098 section 2.1: an MDN goes out with an empty envelope sender.
    await submitter.submit("", addresses, report.as_bytes())
    await folder.mailbox.mark([uid], [MDN_SENT], [])
    return Outcome.DONE


async def contact_append(conv: Conversation, request: Request) -> Outcome:
    """One vCard stored as a contact item: a text/directory message, UID and FN added when
    missing, Seen unless other flags are given; a missing mailbox is created (class
    IPF.Contact)."""
    from bridge.mime import vcard

    cards = [child for child in request.element if child.tag == "vCard"]
    if len(cards) != 1:
        raise BridgeError(ErrorKind.BAD_REQUEST, "exactly one vCard element is required")
    text = vcard.xml_to_vcard(cards[0])
    name = next((line[3:] for line in text.splitlines() if line.upper().startswith("FN:")), "")
    item = MIMEText(text, "directory", "utf-8")
    item.set_param("profile", "vCard")
    item["From"] = _sender(conv)
    item["Subject"] = str(email.header.Header(name or "Contact", "utf-8"))
    item["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    item["Message-ID"] = f"<ximss-{secrets.token_hex(8)}@{HOSTNAME}>"
    message = item.as_bytes(policy=email.policy.SMTP)
    limit = conv.services.settings.limits.max_message_bytes
    if len(message) > limit:
        raise BridgeError(ErrorKind.LIMIT, "message too large")
    await _store_and_report(conv, request, message, _flags(request, [SEEN]), CONTACT_CLASS)
    return Outcome.DONE


async def smime_unsupported(conv: Conversation, request: Request) -> Outcome:
    raise BridgeError(ErrorKind.NOT_SUPPORTED, "S/MIME is not supported")
