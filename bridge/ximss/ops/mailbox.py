"""Mailbox management: mailboxList, mailboxCreate/Rename/Remove, mailboxSubList/SubUpdate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.protocols import MailboxInfo
from bridge.errors import BridgeError, ErrorKind
from bridge.session.handles import record_rename
from bridge.ximss import codec
from bridge.ximss.ops.base import Outcome

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

ALL = "*"
MAX_NAME_LENGTH = 1024


def _name(request: Request, attr: str = "mailbox") -> str:
    name = request.require(attr)
    if not name or len(name) > MAX_NAME_LENGTH or any(ord(ch) < 0x20 for ch in name):
        raise BridgeError(ErrorKind.BAD_REQUEST, f"invalid {attr}")
    return name


def _class_matches(info: MailboxInfo, wanted: str | None) -> bool:
    """An empty mailboxClass filter means mail-class mailboxes, which carry no class."""
    if wanted is None:
        return True
    if wanted == "":
        return not info.mailbox_class
    return info.mailbox_class == wanted


def mailbox_attributes(info: MailboxInfo) -> dict[str, str | int | None]:
    return {
        "mailbox": info.name,
        "UIDVALIDITY": info.uidvalidity,
        "MESSAGES": info.messages,
        "UIDNEXT": info.uidnext,
        "UNSEEN": info.unseen,
        "INTERNALSIZE": info.size,
        "CLASS": info.mailbox_class or None,
        "pureFolder": None if info.selectable else "YES",
    }


async def mailbox_list(conv: Conversation, request: Request) -> Outcome:
    store = conv.require_session().mail
    pattern = request.get("filter") or ALL
    wanted_class = request.get("mailboxClass")
    for info in await store.list_mailboxes(pattern, with_status=True, with_class=True):
        if _class_matches(info, wanted_class):
            conv.send(codec.data("mailbox", request.id, mailbox_attributes(info)))
    return Outcome.DONE


async def mailbox_create(conv: Conversation, request: Request) -> Outcome:
    store = conv.require_session().mail
    await store.create_mailbox(_name(request), request.get("mailboxClass") or None)
    return Outcome.DONE


async def mailbox_rename(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    old, new = _name(request), _name(request, "newName")
    await session.mail.rename_mailbox(old, new, children=request.flag("children"))
    # XMAP handles of the renamed mailboxes' messages follow them (DESIGN.md section 6).
    handles = conv.services.xmap_handles.for_account(session.account)
    handles.folders_changed()
    if await handles.in_use():
        await record_rename(session.mail, handles, old, new)
    return Outcome.DONE


async def mailbox_remove(conv: Conversation, request: Request) -> Outcome:
    session = conv.require_session()
    await session.mail.delete_mailbox(_name(request), children=request.flag("children"))
    conv.services.xmap_handles.for_account(session.account).folders_changed()
    return Outcome.DONE


async def mailbox_sub_list(conv: Conversation, request: Request) -> Outcome:
    store = conv.require_session().mail
    for name in await store.list_subscriptions(request.get("filter") or ALL):
        conv.send(codec.data("mailboxSubscription", request.id, {"mailbox": name}))
    return Outcome.DONE


async def mailbox_sub_update(conv: Conversation, request: Request) -> Outcome:
    """Body: mailboxSubscription elements with `mailbox` and `mode` ("add" adds, else removes).
    The same attributes on the request itself are accepted as a one-element body."""
    store = conv.require_session().mail
    changes: list[tuple[str, bool]] = []
    items = [item for item in request.element if item.tag == "mailboxSubscription"]
    if request.get("mailbox") is not None:
        changes.append((_name(request), request.get("mode") == "add"))
    for item in items:
        name = item.get("mailbox")
        if not name or len(name) > MAX_NAME_LENGTH:
            raise BridgeError(ErrorKind.BAD_REQUEST, "mailboxSubscription needs a mailbox")
        changes.append((name, item.get("mode") == "add"))
    if not changes:
        raise BridgeError(ErrorKind.BAD_REQUEST, "no mailboxSubscription elements")
    for name, subscribe in changes:
        await store.set_subscribed(name, subscribe)
    return Outcome.DONE
