"""The roster state machine (RFC 6121's tables), the exchange between two users, the stored form,
the XIMSS shapes, and the presence gate.

The central property: two users who act in any order and then read what waits for them agree,
whatever happened: one is "to" exactly when the other is "from", and one's request waits
("ask") exactly when the other sees it waiting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from functools import reduce
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from adapters.protocols import Notification, RequestResult
from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.session.roster import (
    ANSWER,
    ASK,
    INBOUND,
    MAX_REQUESTS,
    OUTBOUND,
    REQUESTED,
    SHOWN,
    WATCHED,
    WATCHING,
    Action,
    Details,
    Item,
    Roster,
    Stanza,
    Step,
    Sub,
    inbound,
    outbound,
    queue,
)
from bridge.session.roster_codec import (
    MAX_ROSTER_BYTES,
    check_details,
    decode,
    encode,
    peer_address,
)
from bridge.session.roster_exchange import MAX_SENDERS, Exchange, mail_key, senders_key
from bridge.state.memory import MemoryStore
from bridge.ximss.ops.presence import PresenceWatch
from bridge.ximss.roster_xml import notice, parse_roster_set, removed_item, roster_item

A, B = "alice@example.test", "bob@example.test"
T = TypeVar("T")


DictStore = MemoryStore


def sub_of(roster: Roster, peer: str) -> Sub:
    item = roster.get(peer)
    return item.sub if item is not None else Sub.NONE


# -- the tables ---------------------------------------------------------------------------------


def test_the_tables_mirror_each_other() -> None:
    # What the user's "unsubscribe" does to its side is what the contact's "unsubscribed" does.
    assert OUTBOUND[Stanza.UNSUBSCRIBE] == INBOUND[Stanza.UNSUBSCRIBED]
    assert OUTBOUND[Stanza.UNSUBSCRIBED] == INBOUND[Stanza.UNSUBSCRIBE]


@pytest.mark.parametrize("table", [*OUTBOUND.values(), *INBOUND.values()])
def test_no_transition_breaks_the_state_invariants(table: dict[Sub, Sub]) -> None:
    for after in table.values():
        _, asking = SHOWN[after]
        assert not (asking and after in WATCHING)  # no request waits for what we have
        assert not (after in REQUESTED and after in WATCHED)


def test_rfc_6121_walkthrough() -> None:
    """Section 3's example: request, approval, both ways, then cancellation."""
    alice, bob = Roster(), Roster()
    step = outbound(alice, B, Action.SUBSCRIBE, Details("Bob", ("Friends",)))
    alice = step.roster
    assert step.sends == (Stanza.SUBSCRIBE,)
    assert step.push == Item(B, Sub.NONE_OUT, "Bob", ("Friends",))
    step = inbound(bob, A, Stanza.SUBSCRIBE)
    bob = step.roster
    assert step.notice is Stanza.SUBSCRIBE and step.push is None  # a request, not a contact
    assert bob.requests() == [A] and bob.listed() == []
    step = outbound(bob, A, Action.SUBSCRIBED)
    bob = step.roster
    assert step.sends == (Stanza.SUBSCRIBED,) and step.push == Item(A, Sub.FROM)
    step = inbound(alice, B, Stanza.SUBSCRIBED)
    alice = step.roster
    assert sub_of(alice, B) is Sub.TO and step.notice is Stanza.SUBSCRIBED
    # Bob asks back; Alice's side answers at once because... it does not: she is asked.
    bob = outbound(bob, A, Action.SUBSCRIBE).roster
    alice = inbound(alice, B, Stanza.SUBSCRIBE).roster
    assert sub_of(alice, B) is Sub.TO_IN
    step = outbound(alice, B, Action.SUBSCRIBED)
    alice = step.roster
    bob = inbound(bob, A, Stanza.SUBSCRIBED).roster
    assert (sub_of(alice, B), sub_of(bob, A)) == (Sub.BOTH, Sub.BOTH)
    # Alice revokes Bob's right: she keeps "to", he keeps "from".
    step = outbound(alice, B, Action.UNSUBSCRIBED)
    assert step.sends == (Stanza.UNSUBSCRIBED,) and sub_of(step.roster, B) is Sub.TO
    bob = inbound(bob, A, Stanza.UNSUBSCRIBED).roster
    assert sub_of(bob, A) is Sub.FROM


def test_a_request_to_someone_who_already_agreed_is_answered_again() -> None:
    bob = Roster({A: Item(A, Sub.FROM)})
    step = inbound(bob, A, Stanza.SUBSCRIBE)
    assert step.sends == (Stanza.SUBSCRIBED,) and step.roster == bob and step.notice is None


def test_pre_approval_grants_the_request_when_it_comes() -> None:
    step = outbound(Roster(), A, Action.SUBSCRIBED)
    assert step.push == Item(A, approved=True) and step.sends == ()  # the contact is not told
    step = inbound(step.roster, A, Stanza.SUBSCRIBE)
    assert step.sends == (Stanza.SUBSCRIBED,) and step.notice is None
    assert step.push == Item(A, Sub.FROM)
    cancelled = outbound(Roster({A: Item(A, approved=True)}), A, Action.UNSUBSCRIBED)
    assert cancelled.sends == () and cancelled.roster.get(A) == Item(A)


def test_an_answer_to_no_request_changes_nothing() -> None:
    for roster in (Roster(), Roster({B: Item(B)}), Roster({B: Item(B, Sub.TO)})):
        for stanza in (Stanza.SUBSCRIBED, Stanza.UNSUBSCRIBE):
            assert inbound(roster, B, stanza) == Step(roster)


def test_refusing_a_request_leaves_nothing_and_remove_cancels_both_ways() -> None:
    asked = inbound(Roster(), A, Stanza.SUBSCRIBE).roster
    step = outbound(asked, A, Action.UNSUBSCRIBED)
    assert step.roster == Roster() and step.sends == (Stanza.UNSUBSCRIBED,) and not step.removed
    both = Roster({A: Item(A, Sub.BOTH, "Al")})
    step = outbound(both, A, Action.REMOVE)
    assert step.sends == (Stanza.UNSUBSCRIBE, Stanza.UNSUBSCRIBED)
    assert step.removed and step.roster == Roster()
    with pytest.raises(BridgeError) as caught:
        outbound(Roster(), A, Action.REMOVE)
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_withdrawn_request_is_noticed_and_forgotten() -> None:
    asked = inbound(Roster(), A, Stanza.SUBSCRIBE).roster
    step = inbound(asked, A, Stanza.UNSUBSCRIBE)
    assert step.roster == Roster() and step.notice is Stanza.UNSUBSCRIBE and not step.removed


def test_strangers_requests_are_bounded() -> None:
    roster = Roster()
    for n in range(MAX_REQUESTS + 5):
        roster = inbound(roster, f"s{n}@example.test", Stanza.SUBSCRIBE).roster
    assert len(roster.requests()) == MAX_REQUESTS


def test_update_replaces_details_and_actions_keep_them() -> None:
    roster = outbound(Roster(), B, Action.UPDATE, Details("Bob", ("A", "B"))).roster
    kept = outbound(roster, B, Action.SUBSCRIBE).roster.get(B)
    assert kept == Item(B, Sub.NONE_OUT, "Bob", ("A", "B"))
    cleared = outbound(roster, B, Action.UPDATE, Details("", ())).roster.get(B)
    assert cleared == Item(B)


# -- the coalesced queue ------------------------------------------------------------------------


def fold(state: Sub, stanzas: list[Stanza]) -> Sub:
    return reduce(lambda s, stanza: INBOUND[stanza].get(s, s), stanzas, state)


@given(
    st.sampled_from(list(Sub)),
    st.sampled_from([ASK, ANSWER]).flatmap(lambda ch: st.lists(st.sampled_from(ch), max_size=12)),
)
def test_a_coalesced_channel_ends_where_every_stanza_would(
    state: Sub, stanzas: list[Stanza]
) -> None:
    coalesced = reduce(queue, enumerate(stanzas), ())
    assert len(coalesced) <= 2
    assert fold(state, [s for _, s in coalesced]) is fold(state, stanzas)
    assert [n for n, _ in coalesced] == sorted(n for n, _ in coalesced)


# -- two users and the exchange -----------------------------------------------------------------


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never has to wait (an in-memory store, uncontended locks) without
    an event loop: hypothesis runs thousands of steps, and asyncio.run costs a loop each."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the coroutine waited")


class World:
    """Two users and the real exchange over an in-memory store, driven the way the roster hub
    drives them (refresh and change), with the contact free to act in between."""

    def __init__(self) -> None:
        self.store = DictStore()
        self.exchange = Exchange(self.store)
        self.rosters = {A: Roster(), B: Roster()}

    @staticmethod
    def other(me: str) -> str:
        return B if me == A else A

    def _apply(
        self, me: str, roster: Roster, applied: dict[str, set[int]], replies: list[Stanza]
    ) -> Roster:
        for letter in drive(self.exchange.letters(me, [self.other(me)])):
            done = applied.setdefault(letter.sender, set())
            for seq, stanza in letter.entries:
                if seq not in done:
                    step = inbound(roster, letter.sender, stanza)
                    roster = step.roster
                    replies.extend(step.sends)
                    done.add(seq)
        return roster

    def _finish(self, me: str, applied: dict[str, set[int]], replies: list[Stanza]) -> None:
        for sender, seqs in applied.items():
            drive(self.exchange.settle(me, sender, seqs))
        for stanza in replies:
            drive(self.exchange.post(me, self.other(me), stanza))
        replies.clear()

    def read(self, me: str, crossing: Action | None = None) -> None:
        applied: dict[str, set[int]] = {}
        replies: list[Stanza] = []
        roster = self._apply(me, self.rosters[me], applied, replies)
        if crossing is not None:
            self.act(self.other(me), crossing)  # the contact acts while this one applies
        self.rosters[me] = roster
        self._finish(me, applied, replies)

    def act(self, me: str, action: Action) -> None:
        applied: dict[str, set[int]] = {}
        replies: list[Stanza] = []
        roster = self._apply(me, self.rosters[me], applied, replies)
        self._finish(me, {}, replies)  # the answers first, in order
        step = outbound(roster, self.other(me), action)
        for stanza in step.sends:
            drive(self.exchange.post(me, self.other(me), stanza))
        self.rosters[me] = step.roster
        self._finish(me, applied, [])


class TwoUsers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()

    @rule(me=st.sampled_from([A, B]), action=st.sampled_from(list(Action)))
    def act(self, me: str, action: Action) -> None:
        try:
            self.world.act(me, action)
        except BridgeError as exc:
            assert exc.kind is ErrorKind.NOT_FOUND and action is Action.REMOVE

    @rule(me=st.sampled_from([A, B]), crossing=st.none() | st.sampled_from(list(Action)))
    def read(self, me: str, crossing: Action | None) -> None:
        try:
            self.world.read(me, crossing)
        except BridgeError as exc:
            assert exc.kind is ErrorKind.NOT_FOUND and crossing is Action.REMOVE

    @rule()
    def both_read_everything(self) -> None:
        for _ in range(4):
            self.world.read(A)
            self.world.read(B)
        for me in (A, B):
            mine = sub_of(self.world.rosters[me], World.other(me))
            theirs = sub_of(self.world.rosters[World.other(me)], me)
            assert (mine in WATCHING) == (theirs in WATCHED), (mine, theirs)
            assert SHOWN[mine][1] == (theirs in REQUESTED), (mine, theirs)

    @invariant()
    def items_are_well_formed(self) -> None:
        for roster in self.world.rosters.values():
            for item in roster.items.values():
                assert item.listed or item.sub in REQUESTED
                assert not item.approved or item.sub in (Sub.NONE, Sub.NONE_OUT, Sub.TO)


TwoUsers.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
test_two_users_always_agree = TwoUsers.TestCase


async def test_a_stanza_posted_while_others_are_applied_stays() -> None:
    store = DictStore()
    exchange = Exchange(store)
    await exchange.post(A, B, Stanza.SUBSCRIBE)
    (letter,) = await exchange.letters(B)
    await exchange.post(A, B, Stanza.UNSUBSCRIBE)  # arrives between reading and settling
    await exchange.settle(B, A, {seq for seq, _ in letter.entries})
    (again,) = await exchange.letters(B)
    assert again.entries == ((2, Stanza.UNSUBSCRIBE),)
    await exchange.settle(B, A, {2})
    assert store.data == {senders_key(B): b"[]"}


async def test_partly_applied_letters_keep_the_rest_and_damaged_letters_go() -> None:
    store = DictStore()
    exchange = Exchange(store)
    await exchange.post(A, B, Stanza.SUBSCRIBE)
    await exchange.post(A, B, Stanza.SUBSCRIBED)
    (letter,) = await exchange.letters(B)
    assert letter.entries == ((1, Stanza.SUBSCRIBE), (2, Stanza.SUBSCRIBED))
    await exchange.settle(B, A, {1})
    (kept,) = await exchange.letters(B)
    assert kept.entries == ((2, Stanza.SUBSCRIBED),)
    store.data[mail_key(B, "eve@example.test")] = b"{not json"
    (damaged,) = [x for x in await exchange.letters(B, ["eve@example.test"]) if x.sender != A]
    assert damaged.entries == ()
    await exchange.settle(B, "eve@example.test", set())
    assert mail_key(B, "eve@example.test") not in store.data


async def test_too_many_senders_are_refused() -> None:
    exchange = Exchange(DictStore())
    for n in range(MAX_SENDERS):
        await exchange.post(f"s{n}@example.test", B, Stanza.SUBSCRIBE)
    with pytest.raises(BridgeError) as caught:
        await exchange.post(A, B, Stanza.SUBSCRIBE)
    assert caught.value.kind is ErrorKind.LIMIT
    await exchange.post("s0@example.test", B, Stanza.UNSUBSCRIBE)  # a known sender still can


async def test_state_store_failures_are_translated() -> None:
    class Broken(DictStore):
        async def get(self, key: str) -> bytes | None:
            raise OSError("disk")

    with pytest.raises(BridgeError) as caught:
        await Exchange(Broken()).post(A, B, Stanza.SUBSCRIBE)
    assert caught.value.kind is ErrorKind.BACKEND_UNAVAILABLE
    assert isinstance(caught.value.__cause__, OSError)


# -- stored form --------------------------------------------------------------------------------

NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("C", "Z")), min_size=1,
                max_size=12)  # fmt: skip
ITEMS = st.builds(
    Item,
    peer=st.from_regex(r"[a-z0-9._-]{1,10}@[a-z]{1,8}\.test", fullmatch=True),
    sub=st.sampled_from(list(Sub)),
    name=st.none() | NAMES,
    groups=st.lists(NAMES, max_size=3, unique=True).map(tuple),
    approved=st.booleans(),
    listed=st.booleans(),
)


@given(st.lists(ITEMS, max_size=20))
def test_the_stored_form_round_trips(items: list[Item]) -> None:
    roster = Roster({item.peer: item for item in items})
    assert decode(encode(roster)) == (roster, 0)


def test_damaged_items_are_left_out_and_an_unreadable_roster_refused() -> None:
    text = json.dumps({"v": 1, "items": [
        {"peer": A, "sub": "to"}, {"peer": "not an address", "sub": "to"},
        {"peer": B, "sub": "sideways"}, {"peer": B, "groups": "x"}, 7,
    ]})  # fmt: skip
    assert decode(text) == (Roster({A: Item(A, Sub.TO)}), 4)
    for bad in ("{", "[]", '{"items": 3}'):
        with pytest.raises(BridgeError) as caught:
            decode(bad)
        assert caught.value.kind is ErrorKind.INTERNAL


def test_a_roster_past_the_size_limit_is_refused() -> None:
    long = "x" * 250
    items = {f"p{n}@example.test": Item(f"p{n}@example.test", name=long) for n in range(300)}
    with pytest.raises(BridgeError) as caught:
        encode(Roster(items))
    assert caught.value.kind is ErrorKind.LIMIT
    assert MAX_ROSTER_BYTES < 300 * 250


@pytest.mark.parametrize(
    "text", ["", "bob", "@x.test", "bob@", "a@b@c", "sip:bob@x.test", "bob @x.test", "b<o>b@x",
             "bob@x..test", "bob@x.test\u0000", "x" * 250 + "@x.test"],
)  # fmt: skip
def test_peers_must_be_addresses(text: str) -> None:
    with pytest.raises(BridgeError):
        peer_address(text)


def test_peers_are_lower_cased_and_details_checked() -> None:
    assert peer_address(" Bob@Example.TEST ") == "bob@example.test"
    assert check_details("  Bob   B ", ["W", "W", " X "]) == Details("Bob B", ("W", "X"))
    with pytest.raises(BridgeError):
        check_details(None, [""])
    with pytest.raises(BridgeError) as caught:
        check_details(None, [f"g{n}" for n in range(40)])
    assert caught.value.kind is ErrorKind.LIMIT


# -- XIMSS shapes -------------------------------------------------------------------------------


def test_roster_set_is_read_with_xmpp_semantics() -> None:
    element = xml.parse(
        b'<rosterSet id="1" peer="Bob@Example.test" name="Bob" subscription="subscribe">'
        b"<group>Friends</group><group>Work</group></rosterSet>"
    )
    wanted = parse_roster_set(element)
    assert (wanted.peer, wanted.action) == (B, Action.SUBSCRIBE)
    assert wanted.details == Details("Bob", ("Friends", "Work"))
    plain = parse_roster_set(xml.parse(b'<rosterSet id="2" peer="bob@example.test"/>'))
    assert plain.action is Action.UPDATE and plain.details == Details("", ())
    answer = parse_roster_set(xml.parse(b'<rosterSet peer="a@x.test" subscription="subscribed"/>'))
    assert answer.details == Details(None, None)
    for bad in (b'<rosterSet peer="a@x.test" subscription="both"/>', b"<rosterSet/>",
                b'<rosterSet peer="nobody"/>'):  # fmt: skip
        with pytest.raises(BridgeError) as caught:
            parse_roster_set(xml.parse(bad))
        assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_roster_messages() -> None:
    item = Item(B, Sub.NONE_OUT, "Bob", ("Friends",))
    assert xml.serialize(roster_item(item, "7")) == (
        b'<rosterItem id="7" peer="bob@example.test" name="Bob" subscription="none" '
        b'ask="subscribe"><group>Friends</group></rosterItem>'
    )
    assert xml.serialize(roster_item(Item(B, Sub.TO_IN, approved=False))) == (
        b'<rosterItem peer="bob@example.test" subscription="to"/>'
    )
    assert xml.serialize(removed_item(B)) == (
        b'<rosterItem peer="bob@example.test" subscription="remove"/>'
    )
    assert xml.serialize(notice(A, Stanza.SUBSCRIBE)) == (
        b'<presence peer="alice@example.test" type="subscribe"/>'
    )


# -- the presence gate --------------------------------------------------------------------------

PIDF = (
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{peer}">'
    '<tuple id="t"><status><basic>open</basic></status><note>{note}</note></tuple></presence>'
)


class FakeSubscription:
    def __init__(self, agent: FakeAgent, target: str, on_notify: Callable[[Notification], None]):
        self.agent, self.target, self.on_notify = agent, target, on_notify

    def notify(self, note: str) -> None:
        peer = self.target.removeprefix("sip:")
        self.on_notify(
            Notification("presence", "active", "application/pidf+xml",
                         PIDF.format(peer=peer, note=note))
        )  # fmt: skip

    async def unsubscribe(self) -> None:
        self.agent.unsubscribed.append(self.target)
        self.on_notify(Notification("presence", "terminated", None, "", "timeout"))


class FakeAgent:
    def __init__(self) -> None:
        self.subscriptions: list[FakeSubscription] = []
        self.unsubscribed: list[str] = []
        self.unpublished = False

    async def subscribe(self, target: str, on_notify: Any, **_: Any) -> FakeSubscription:
        subscription = FakeSubscription(self, target, on_notify)
        self.subscriptions.append(subscription)
        subscription.notify("hello")  # a NOTIFY may come before the 200
        return subscription

    async def publish(self, body: str, **_: Any) -> RequestResult:
        return RequestResult(200, "OK")

    async def unpublish(self, event: str = "presence") -> None:
        self.unpublished = True


async def test_presence_reaches_the_client_only_while_the_roster_allows_it() -> None:
    sent: list[Any] = []
    domain = SimpleNamespace(signaling=None)
    conv = SimpleNamespace(unsolicited=sent.append,
                           services=SimpleNamespace(domain=lambda _: domain))  # fmt: skip
    agent = FakeAgent()
    listener = SimpleNamespace(watch=None)
    watch = PresenceWatch(conv, SimpleNamespace(agent=agent), listener)  # type: ignore[arg-type]
    listener.watch = watch
    watch.update(Roster({B: Item(B, Sub.TO), A: Item(A, Sub.FROM)}))
    await asyncio.sleep(0.01)
    (subscription,) = agent.subscriptions  # only the contact we may watch
    assert subscription.target == f"sip:{B}"
    subscription.notify("lunch")
    shown = [xml.serialize(m) for m in sent]
    assert len(shown) == 2 and b"<status>lunch</status>" in shown[1]
    sent.clear()
    watch.update(Roster({B: Item(B, Sub.NONE)}))  # revoked
    subscription.notify("still here")  # already on its way: dropped
    assert [m.get("type") for m in sent] == ["unavailable"]
    await asyncio.sleep(0.01)
    assert agent.unsubscribed == [f"sip:{B}"]
    assert len(sent) == 1
    await watch.close()
    assert agent.unpublished and listener.watch is None
