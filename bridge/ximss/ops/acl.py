"""Mailbox access rights: mailboxRightsGet, mailboxACLList, mailboxACLUpdate.

The store speaks RFC 4314 letters and full identifiers; `bridge.views.rights` turns them into
XIMSS letters and patterns (short names in the user's own domain) and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.views import rights as table
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.mailbox import _name

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

# More elements than any real ACL has; bounds the IMAP commands one request can cause.
MAX_ACL_ELEMENTS = 100


@dataclass(frozen=True, slots=True)
class _Change:
    identifier: str
    edit: table.ImapAclEdit


async def mailbox_rights_get(conv: Conversation, request: Request) -> Outcome:
    store = conv.require_session().mail
    name = _name(request)
    letters = await store.rights(name)
    shown = table.format_rights(table.from_imap(letters))
    conv.send(codec.data("mailboxRights", request.id, {"mailbox": name}, shown))
    return Outcome.DONE


async def mailbox_acl_list(conv: Conversation, request: Request) -> Outcome:
    store = conv.require_session().mail
    name = _name(request)
    entries = await store.acl(name)
    message = codec.data("mailboxACL", request.id, {"mailbox": name})
    for entry in entries:
        pattern = table.from_identifier(entry.identifier, store.account)
        shown = table.format_rights(table.from_imap(entry.rights))
        xml.sub(message, "aclElem", {"pattern": pattern}, shown)
    conv.send(message)
    return Outcome.DONE


async def mailbox_acl_update(conv: Conversation, request: Request) -> Outcome:
    """Every element is checked before the first change, so a bad letter changes nothing."""
    store = conv.require_session().mail
    name = _name(request)
    items = [item for item in request.element if item.tag == "aclElem"]
    if not items:
        raise BridgeError(ErrorKind.BAD_REQUEST, "no aclElem elements")
    if len(items) > MAX_ACL_ELEMENTS:
        raise BridgeError(ErrorKind.LIMIT, "too many aclElem elements")
    changes: list[_Change] = []
    for item in items:
        pattern = item.get("pattern")
        if pattern is None:
            raise BridgeError(ErrorKind.BAD_REQUEST, "aclElem needs a pattern")
        identifier = table.to_identifier(pattern, store.account)
        mode = table.AclMode.parse(item.get("mode"))
        letters = table.parse_rights(item.text or "")
        edit = table.imap_edit(mode, letters)
        if edit is not None:
            changes.append(_Change(identifier, edit))
    for change in changes:
        if change.edit.delete:
            await store.delete_acl(name, change.identifier)
        else:
            await store.set_acl(name, change.identifier, change.edit.rights)
    return Outcome.DONE
