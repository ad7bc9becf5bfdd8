"""Mailbox access rights end to end: the spec's ACL example through the bridge, each step checked
by an independent IMAP client (GETACL), and what the rights then allow the other user."""

from __future__ import annotations

import asyncio
import imaplib
from collections.abc import AsyncIterator

import pytest
from lxml import etree

from bridge import xml
from bridge.client import XimssClient
from tests.conftest import devstack

DOMAIN = "example.test"


def _acl_elem(pattern: str, rights: str, mode: str | None = None) -> etree._Element:
    attrs = {"pattern": pattern}
    if mode is not None:
        attrs["mode"] = mode
    return xml.element("aclElem", attrs, rights)


def _imap_getacl(port: int, account: devstack.Account, mailbox: str) -> dict[str, str]:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        status, data = imap.getacl(mailbox)
        assert status == "OK", data
        raw = data[0]
        assert isinstance(raw, bytes)
        words = raw.decode().split()[1:]  # mailbox name (no spaces here), then pairs
        return dict(zip(words[::2], words[1::2], strict=True))
    finally:
        imap.logout()


def _imap_select(port: int, account: devstack.Account, mailbox: str) -> bool:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(account.address, account.password)
        status, _ = imap.select(mailbox, readonly=True)
        return status == "OK"
    finally:
        imap.logout()


async def getacl(port: int, account: devstack.Account, mailbox: str) -> dict[str, str]:
    return await asyncio.to_thread(_imap_getacl, port, account, mailbox)


async def can_select(port: int, account: devstack.Account, mailbox: str) -> bool:
    return await asyncio.to_thread(_imap_select, port, account, mailbox)


def letters(text: str) -> set[str]:
    return set(text)


@pytest.fixture
async def pair(
    bridge_port: int, stack: devstack.DevStack
) -> AsyncIterator[tuple[XimssClient, devstack.Account, XimssClient, devstack.Account]]:
    owner, other = stack.new_account("acla"), stack.new_account("aclb")
    a = await XimssClient.connect("127.0.0.1", bridge_port)
    b = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await a.login(owner.address, owner.password)
        await b.login(other.address, other.password)
        yield a, owner, b, other
    finally:
        await a.close()
        await b.close()


async def test_spec_acl_example(
    pair: tuple[XimssClient, devstack.Account, XimssClient, devstack.Account],
    stack: devstack.DevStack,
    bridge_port: int,
) -> None:
    a, owner, b, other = pair
    port = stack.ports.imap
    shared = f"~{owner.address}/SharedNotes"
    imap_shared = f"shared/{owner.address}/SharedNotes"
    third = stack.new_account("aclc")

    await a.call("mailboxCreate", {"mailbox": "MyNotes", "mailboxClass": "IPF.StickyNote"})
    await a.call("mailboxRename", {"mailbox": "MyNotes", "newName": "SharedNotes"})
    acl = await getacl(port, owner, "SharedNotes")
    assert set(acl) == {owner.address}

    # Before any grant, B cannot open it.
    assert not await can_select(port, other, imap_shared)

    await a.call(
        "mailboxACLUpdate",
        {"mailbox": "SharedNotes"},
        children=[_acl_elem(third.local, "lr"), _acl_elem(other.local, "lr")],
    )
    acl = await getacl(port, owner, "SharedNotes")
    assert letters(acl[third.address]) == letters("lr")
    assert letters(acl[other.address]) == letters("lr")

    # With l and r, B lists the mailbox, opens it through the bridge and over IMAP.
    listed = await b.call("mailboxList")
    assert shared in {m.get("mailbox") for m in listed.of("mailbox")}
    await b.call("folderOpen", {"folder": "notes", "mailbox": shared})
    await b.call("folderClose", {"folder": "notes"})
    assert await can_select(port, other, imap_shared)
    rights = await b.call("mailboxRightsGet", {"mailbox": shared})
    (given,) = rights.of("mailboxRights")
    assert given.get("mailbox") == shared
    assert given.text == "lr"

    await a.call(
        "mailboxACLUpdate",
        {"mailbox": "SharedNotes"},
        children=[
            _acl_elem(third.local, "di", "add"),
            _acl_elem(other.local, "r", "sub"),
        ],
    )
    acl = await getacl(port, owner, "SharedNotes")
    assert {"l", "r", "i", "t", "e"} <= letters(acl[third.address])
    assert "r" not in acl[other.address] and "l" in acl[other.address]

    listing = await a.call("mailboxACLList", {"mailbox": "SharedNotes"})
    (message,) = listing.of("mailboxACL")
    assert message.get("mailbox") == "SharedNotes"
    elements = {e.get("pattern"): e.text or "" for e in message if e.tag == "aclElem"}
    assert elements[third.local] == "lrdi"
    assert elements[other.local] == "l"
    assert elements[owner.local] == "lrswdipcxa"  # the owner's own entry, as Dovecot lists it

    # Without r, B still lists it but can no longer open it.
    listed = await b.call("mailboxList")
    assert shared in {m.get("mailbox") for m in listed.of("mailbox")}
    refused = await b.request("folderOpen", {"folder": "notes", "mailbox": shared})
    assert not refused.ok
    assert not await can_select(port, other, imap_shared)
    # Dovecot caches a connection's view of the ACL (vfile cache_secs, 30 s by default): a new
    # session sees the change at once; B's existing IMAP connection may still say "lr".
    b2 = await XimssClient.connect("127.0.0.1", bridge_port)
    try:
        await b2.login(other.address, other.password)
        rights = await b2.call("mailboxRightsGet", {"mailbox": shared})
        assert rights.of("mailboxRights")[0].text == "l"
    finally:
        await b2.close()

    # clear removes the element.
    await a.call(
        "mailboxACLUpdate",
        {"mailbox": "SharedNotes"},
        children=[_acl_elem(other.local, "", "clear")],
    )
    assert other.address not in await getacl(port, owner, "SharedNotes")


async def test_negative_rights_and_full_names(
    pair: tuple[XimssClient, devstack.Account, XimssClient, devstack.Account],
    stack: devstack.DevStack,
) -> None:
    a, owner, _, other = pair
    port = stack.ports.imap
    await a.call("mailboxCreate", {"mailbox": "Neg"})
    await a.call(
        "mailboxACLUpdate",
        {"mailbox": "Neg"},
        children=[_acl_elem(f"+{other.address}", "lrw"), _acl_elem(f"-{other.local}", "w")],
    )
    acl = await getacl(port, owner, "Neg")
    assert letters(acl[other.address]) == letters("lrw")
    assert acl[f"-{other.address}"] == "w"
    listing = await a.call("mailboxACLList", {"mailbox": "Neg"})
    elements = {e.get("pattern"): e.text for e in listing.of("mailboxACL")[0]}
    assert elements[other.local] == "lrw"
    assert elements[f"-{other.local}"] == "w"


async def test_errors(
    pair: tuple[XimssClient, devstack.Account, XimssClient, devstack.Account],
    stack: devstack.DevStack,
) -> None:
    a, owner, b, other = pair
    port = stack.ports.imap
    await a.call("mailboxCreate", {"mailbox": "Guarded"})

    # An unknown letter: 501, naming it, and nothing changed (the valid element before it too).
    refused = await a.request(
        "mailboxACLUpdate",
        {"mailbox": "Guarded"},
        children=[_acl_elem(other.local, "lr"), _acl_elem(other.local, "lrq", "add")],
    )
    assert refused.error_num == "501"
    assert "'q'" in (refused.response.get("errorText") or "")
    assert other.address not in await getacl(port, owner, "Guarded")

    # B may look and read but not administer: changing or listing the ACL is refused.
    await a.call(
        "mailboxACLUpdate", {"mailbox": "Guarded"}, children=[_acl_elem(other.local, "lr")]
    )
    guarded = f"~{owner.address}/Guarded"
    refused = await b.request(
        "mailboxACLUpdate", {"mailbox": guarded}, children=[_acl_elem(other.local, "lra")]
    )
    assert refused.error_num == "550"
    refused = await b.request("mailboxACLList", {"mailbox": guarded})
    assert refused.error_num == "550"
    assert letters((await getacl(port, owner, "Guarded"))[other.address]) == letters("lr")

    # Unknown mailboxes.
    for request in ("mailboxRightsGet", "mailboxACLList"):
        missing = await a.request(request, {"mailbox": "NoSuchBox"})
        assert missing.error_num == "512", (request, missing.response.attrib)
    missing = await b.request("mailboxRightsGet", {"mailbox": f"~{owner.address}/NoSuchBox"})
    assert missing.error_num == "512"
    missing = await a.request(
        "mailboxACLUpdate", {"mailbox": "NoSuchBox"}, children=[_acl_elem(other.local, "l")]
    )
    assert missing.error_num == "512"

    # A request without elements or without a pattern.
    assert (await a.request("mailboxACLUpdate", {"mailbox": "Guarded"})).error_num == "501"
    bad = await a.request(
        "mailboxACLUpdate", {"mailbox": "Guarded"}, children=[xml.element("aclElem", {}, "l")]
    )
    assert bad.error_num == "501"


async def test_anyone_and_authenticated(
    pair: tuple[XimssClient, devstack.Account, XimssClient, devstack.Account],
    stack: devstack.DevStack,
) -> None:
    """`anyone` and `authenticated` pass through as IMAP identifiers (the dev stack's Dovecot has
    acl_anyone = allow; Dovecot's default refuses them). Dovecot takes the rights of the most
    specific matching identifier (authenticated before anyone), it does not add them up."""
    a, owner, _, other = pair
    await a.call("mailboxCreate", {"mailbox": "Public"})
    await a.call("mailboxACLUpdate", {"mailbox": "Public"},
                 children=[_acl_elem("anyone", "l"), _acl_elem("authenticated", "lrs")])  # fmt: skip
    acl = await getacl(stack.ports.imap, owner, "Public")
    assert acl["anyone"] == "l" and letters(acl["authenticated"]) == letters("lrs")
    listing = await a.call("mailboxACLList", {"mailbox": "Public"})
    elements = {e.get("pattern"): e.text for e in listing.of("mailboxACL")[0]}
    assert elements["anyone"] == "l" and elements["authenticated"] == "lrs"
    assert await can_select(stack.ports.imap, other, f"shared/{owner.address}/Public")


async def test_a_mailbox_shared_later_lists_in_an_existing_session(
    pair: tuple[XimssClient, devstack.Account, XimssClient, devstack.Account],
) -> None:
    a, owner, b, other = pair

    async def listed(client: XimssClient, pattern: str) -> set[str]:
        reply = await client.call("mailboxList", {"filter": pattern})
        return {m.get("mailbox", "") for m in reply.of("mailbox")}

    shared = f"~{owner.address}/Later"
    # b lists first: Dovecot's connection then knows nobody shares anything with b.
    assert shared not in await listed(b, "*")
    await a.call("mailboxCreate", {"mailbox": "Later"})
    await a.call(
        "mailboxACLUpdate", {"mailbox": "Later"}, children=[_acl_elem(other.address, "lr")]
    )
    assert shared in await listed(b, "*")
    assert shared in await listed(b, "~*")
    # Listing only one's own mailboxes stays on the session's connection and finds no share.
    assert not {name for name in await listed(b, "INBOX*") if name.startswith("~")}
