"""Roster and presence end to end: XIMSS sessions through the bridge's TCP listener, rosters in
Dovecot's METADATA, the subscription handshake through the state store, presence through the
dev stack's Kamailio (which accepts every watcher: the bridge's roster is the gate)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from lxml import etree

from bridge import xml
from bridge.client import XimssClient
from tests.conftest import devstack
from tests.e2e.folderkit import call
from tests.e2e.test_signaling import expect, sdp

QUIET = 2.0  # how long "nothing more arrives" is watched for


@pytest.fixture
async def clients() -> AsyncIterator[list[XimssClient]]:
    """Clients a test opens, closed whatever happens."""
    opened: list[XimssClient] = []
    yield opened
    for client in opened:
        await client.close()


async def login(port: int, account: devstack.Account, opened: list[XimssClient]) -> XimssClient:
    client = await XimssClient.connect("127.0.0.1", port)
    opened.append(client)
    await client.login(account.address, account.password)
    return client


async def roster(client: XimssClient) -> tuple[dict[str, etree._Element], list[str]]:
    """rosterList: the items by peer, and the peers whose request waits."""
    reply = await call(client, "rosterList", {})
    items = {item.get("peer", ""): item for item in reply.of("rosterItem")}
    requests = [p.get("peer", "") for p in reply.of("presence") if p.get("type") == "subscribe"]
    return items, requests


async def roster_set(client: XimssClient, peer: str, subscription: str | None = None,
                     *groups: str, **attrs: str) -> None:  # fmt: skip
    children = [xml.element("group", text=group) for group in groups]
    wanted = {"peer": peer, **attrs} | ({"subscription": subscription} if subscription else {})
    await call(client, "rosterSet", wanted, *children)


async def presence_set(client: XimssClient, word: str, status: str | None = None) -> None:
    request = xml.element("presenceSet", {"id": client.next_id()})
    xml.sub(request, "presence", text=word)
    if status is not None:
        xml.sub(request, "status", text=status)
    reply = await client.send(request)
    assert reply.ok, xml.serialize(reply.response)


async def bind(client: XimssClient, port: int) -> None:
    await call(client, "signalBind", {"presence": "yes"}, sdp(port))


async def quiet(client: XimssClient, seconds: float = QUIET) -> list[etree._Element]:
    """Every unsolicited message until none has come for `seconds`."""
    got = []
    while True:
        try:
            got.append(await client.unsolicited(seconds))
        except TimeoutError:
            return got


def presence_of(peer: str, word: str | None = None) -> Callable[[etree._Element], bool]:
    def match(message: etree._Element) -> bool:
        return message.get("peer") == peer and (
            word is None or message.findtext("presence") == word
        )

    return match


async def test_subscription_handshake_then_presence_until_revoked(
    bridge_port: int, stack: devstack.DevStack, clients: list[XimssClient]
) -> None:
    one, two = stack.new_account("rosa"), stack.new_account("rosb")
    a = await login(bridge_port, one, clients)
    b = await login(bridge_port, two, clients)
    assert await roster(b) == ({}, [])  # b's client lists its roster at start, as clients do

    # user1 asks to watch user2: its item waits with ask="subscribe" (pushed to its session).
    await roster_set(a, two.address, "subscribe", "Friends", name="Two")
    mine = await expect(a, "rosterItem")
    assert (mine.get("peer"), mine.get("subscription"), mine.get("ask")) == (
        two.address, "none", "subscribe",
    )  # fmt: skip
    # user2 is asked (XMPP style), and sees the request in its roster list too.
    asked = await expect(b, "presence", lambda m: m.get("type") == "subscribe")
    assert asked.get("peer") == one.address
    assert await roster(b) == ({}, [one.address])

    # user2 agrees: user1's item becomes "to", pushed to user1's session.
    await roster_set(b, one.address, "subscribed")
    granted = await expect(a, "rosterItem", lambda m: m.get("subscription") == "to")
    assert granted.get("ask") is None and granted.get("name") == "Two"
    assert [g.text for g in granted.iter("group")] == ["Friends"]
    items, requests = await roster(b)
    assert items[one.address].get("subscription") == "from" and requests == []

    # Both bound with presence: user1 watches user2 through Kamailio.
    await bind(a, 4100)
    await bind(b, 4102)
    await expect(a, "presence", presence_of(two.address, "online"))
    await presence_set(b, "away", "Back at two")
    shown = await expect(a, "presence", presence_of(two.address, "away"))
    assert shown.findtext("show") == "away" and shown.findtext("status") == "Back at two"
    assert shown.get("type") is None

    # user2 revokes: user1's item becomes "none" and user2's presence stops reaching user1.
    await roster_set(b, one.address, "unsubscribed")
    await expect(a, "rosterItem", lambda m: m.get("subscription") == "none")
    settled = await quiet(a, 0.5)
    assert [m.get("type") for m in settled if m.tag == "presence"][-1:] == ["unavailable"]
    await presence_set(b, "busy", "On a call")
    await presence_set(b, "online")
    leaked = [m for m in await quiet(a) if m.tag == "presence" and m.get("peer") == two.address]
    assert leaked == []
    items, _ = await roster(a)
    assert items[two.address].get("subscription") == "none"
    await call(a, "signalUnbind", {})
    await call(b, "signalUnbind", {})


async def test_a_grant_while_bound_starts_presence_at_once(
    bridge_port: int, stack: devstack.DevStack, clients: list[XimssClient]
) -> None:
    one, two = stack.new_account("rosp"), stack.new_account("rosq")
    a = await login(bridge_port, one, clients)
    b = await login(bridge_port, two, clients)
    await bind(a, 4200)
    await bind(b, 4202)  # interested through the binding alone
    await presence_set(b, "on-the-phone")
    await roster_set(a, two.address, "subscribe")
    await expect(b, "presence", lambda m: m.get("type") == "subscribe")
    # Before the grant nothing of user2's presence reaches user1.
    assert [m for m in await quiet(a, 1.0) if m.tag == "presence" and m.findtext("presence")] == []
    await roster_set(b, one.address, "subscribed")
    shown = await expect(a, "presence", presence_of(two.address, "on-the-phone"))
    assert shown.findtext("show") == "dnd"
    # Removing the contact drops the item and the presence with it.
    await roster_set(a, two.address, "remove")
    await expect(a, "rosterItem", lambda m: m.get("subscription") == "remove")
    await expect(b, "rosterItem", lambda m: m.get("subscription") == "none")
    await quiet(a, 0.5)
    await presence_set(b, "away")
    assert [m for m in await quiet(a) if m.tag == "presence" and m.get("peer") == two.address] == []


async def test_requests_and_answers_wait_for_users_who_are_offline(
    bridge_port: int, stack: devstack.DevStack, clients: list[XimssClient]
) -> None:
    one, two = stack.new_account("roso"), stack.new_account("rosf")
    a = await login(bridge_port, one, clients)
    await roster_set(a, two.address, "subscribe")
    await a.close()  # both are offline now: the request waits in the state store
    b = await login(bridge_port, two, clients)
    assert await roster(b) == ({}, [one.address])
    await roster_set(b, one.address, "subscribed", name="One")
    await b.close()
    a = await login(bridge_port, one, clients)
    items, _ = await roster(a)
    assert items[two.address].get("subscription") == "to" and items[two.address].get("ask") is None
    b = await login(bridge_port, two, clients)
    items, requests = await roster(b)
    assert items[one.address].get("subscription") == "from" and requests == []
    assert items[one.address].get("name") == "One"


async def test_pre_approval_grants_a_later_request_by_itself(
    bridge_port: int, stack: devstack.DevStack, clients: list[XimssClient]
) -> None:
    one, two = stack.new_account("rospa"), stack.new_account("rospb")
    b = await login(bridge_port, two, clients)
    await roster_set(b, one.address, "subscribed")
    items, _ = await roster(b)
    assert items[one.address].get("approved") == "true"
    a = await login(bridge_port, one, clients)
    await roster_set(a, two.address, "subscribe")
    # user2's session grants it without asking user2's client.
    await expect(a, "rosterItem", lambda m: m.get("subscription") == "to")
    granted = await expect(b, "rosterItem", lambda m: m.get("subscription") == "from")
    assert granted.get("approved") is None
    assert not [m for m in await quiet(b, 0.5) if m.get("type") == "subscribe"]


async def test_roster_is_kept_pushed_to_other_sessions_and_checked(
    bridge_port: int, stack: devstack.DevStack, clients: list[XimssClient]
) -> None:
    me = stack.new_account("rosk")
    first = await login(bridge_port, me, clients)
    await roster_set(first, "carol@example.test", None, "Work", "Choir", name="Carol")
    await first.close()
    # A new session reads it back from the mail server.
    second = await login(bridge_port, me, clients)
    third = await login(bridge_port, me, clients)
    items, _ = await roster(second)
    carol = items["carol@example.test"]
    assert carol.get("name") == "Carol" and carol.get("subscription") == "none"
    assert [g.text for g in carol.iter("group")] == ["Work", "Choir"]
    # Changes reach the account's other interested sessions (XMPP roster pushes).
    await roster(third)
    await roster_set(second, "Carol@Example.test", None, "Work", name="Carol C")
    pushed = await expect(third, "rosterItem")
    assert pushed.get("name") == "Carol C" and [g.text for g in pushed.iter("group")] == ["Work"]
    await roster_set(second, "carol@example.test", "remove")
    assert (await expect(third, "rosterItem")).get("subscription") == "remove"
    assert await roster(third) == ({}, [])

    async def refused(tag: str, attrs: dict[str, str], *children: etree._Element) -> str:
        element = xml.element(tag, {"id": second.next_id(), **attrs})
        for child in children:
            element.append(child)
        reply = await second.send(element)
        assert not reply.ok
        return f"{reply.error_num} {reply.response.get('errorText')}"

    assert (await refused("rosterSet", {"peer": "x@example.test", "subscription": "both"})
            ).startswith("501")  # fmt: skip
    assert (await refused("rosterSet", {"subscription": "subscribe"})).startswith("501")
    assert (await refused("rosterSet", {"peer": "not-an-address"})).startswith("501")
    assert (await refused("rosterSet", {"peer": me.address})).startswith("501")
    assert (await refused("rosterSet", {"peer": "x@example.test", "subscription": "remove"})
            ).startswith("512")  # fmt: skip
    assert (await refused("rosterSet", {"peer": "bob@elsewhere.invalid",
                                        "subscription": "subscribe"})).startswith("502")  # fmt: skip
    word = xml.element("presence", text="away")
    assert await refused("presenceSet", {}, word) == "501 signalBind first"
    await bind(second, 4300)
    assert (await refused("presenceSet", {}, xml.element("presence", text="dancing"))
            ).startswith("501")  # fmt: skip
