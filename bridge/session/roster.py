"""A user's roster and the presence subscription state machine of XMPP (RFC 6121), with no I/O.

XIMSS says its roster model "resembles that of the XMPP protocol", so the states and their
transitions are RFC 6121's, written out as its Appendix A tables: nine states per contact (to,
from, both or none, with our request waiting "out" and theirs waiting "in"), changed by the four
subscription stanzas, either sent by the user (OUTBOUND, from rosterSet) or received from the
contact (INBOUND, through bridge/session/roster_exchange.py). Each step says what the contact is
sent and what the client is shown (a roster push, a <presence type=...> notice).

A request from someone who is not in the roster is kept as an item the client does not list
(`listed=False`; RFC 6121 tracks a waiting request as the server's state, not as a roster
item) until it is answered: granting it makes a listed item, refusing it leaves nothing.
Pre-approval (RFC 6121 3.4) is the item's `approved` flag: the contact is not told, and their
request is granted when the user's side applies it.

Addresses, names and the stored form are checked in bridge/session/roster_codec.py.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bridge.errors import BridgeError, ErrorKind

MAX_ITEMS = 500  # contacts and waiting requests together
MAX_REQUESTS = 100  # waiting requests from people not in the roster; more are dropped


class Sub(enum.Enum):
    """RFC 6121 Appendix A's states: "out" is our request waiting, "in" is theirs."""

    NONE = "none"
    NONE_OUT = "none+out"
    NONE_IN = "none+in"
    NONE_OUT_IN = "none+out+in"
    TO = "to"
    TO_IN = "to+in"
    FROM = "from"
    FROM_OUT = "from+out"
    BOTH = "both"


class Stanza(enum.Enum):
    SUBSCRIBE = "subscribe"  # may I watch you
    UNSUBSCRIBE = "unsubscribe"  # I stop watching you
    SUBSCRIBED = "subscribed"  # you may watch me
    UNSUBSCRIBED = "unsubscribed"  # you may not (any more) watch me


# What the client sees: XIMSS rosterItem's `subscription`, and `ask="subscribe"` while ours waits.
SHOWN: dict[Sub, tuple[str, bool]] = {
    Sub.NONE: ("none", False),
    Sub.NONE_OUT: ("none", True),
    Sub.NONE_IN: ("none", False),
    Sub.NONE_OUT_IN: ("none", True),
    Sub.TO: ("to", False),
    Sub.TO_IN: ("to", False),
    Sub.FROM: ("from", False),
    Sub.FROM_OUT: ("from", True),
    Sub.BOTH: ("both", False),
}
WATCHING = frozenset({Sub.TO, Sub.TO_IN, Sub.BOTH})  # the user may see the contact's presence
WATCHED = frozenset({Sub.FROM, Sub.FROM_OUT, Sub.BOTH})  # the contact may see the user's
REQUESTED = frozenset({Sub.NONE_IN, Sub.NONE_OUT_IN, Sub.TO_IN})  # their request waits

# RFC 6121 A.2: the user's own stanzas. A state a table leaves out does not change.
OUTBOUND: dict[Stanza, dict[Sub, Sub]] = {
    Stanza.SUBSCRIBE: {
        Sub.NONE: Sub.NONE_OUT,
        Sub.NONE_IN: Sub.NONE_OUT_IN,
        Sub.FROM: Sub.FROM_OUT,
    },
    Stanza.UNSUBSCRIBE: {
        Sub.NONE_OUT: Sub.NONE,
        Sub.NONE_OUT_IN: Sub.NONE_IN,
        Sub.TO: Sub.NONE,
        Sub.TO_IN: Sub.NONE_IN,
        Sub.FROM_OUT: Sub.FROM,
        Sub.BOTH: Sub.FROM,
    },
    Stanza.SUBSCRIBED: {
        Sub.NONE_IN: Sub.FROM,
        Sub.NONE_OUT_IN: Sub.FROM_OUT,
        Sub.TO_IN: Sub.BOTH,
    },
    Stanza.UNSUBSCRIBED: {
        Sub.NONE_IN: Sub.NONE,
        Sub.NONE_OUT_IN: Sub.NONE_OUT,
        Sub.TO_IN: Sub.TO,
        Sub.FROM: Sub.NONE,
        Sub.FROM_OUT: Sub.NONE_OUT,
        Sub.BOTH: Sub.TO,
    },
}
# RFC 6121 A.3: the contact's stanzas as the user's side applies them.
INBOUND: dict[Stanza, dict[Sub, Sub]] = {
    Stanza.SUBSCRIBE: {
        Sub.NONE: Sub.NONE_IN,
        Sub.NONE_OUT: Sub.NONE_OUT_IN,
        Sub.TO: Sub.TO_IN,
    },
    Stanza.UNSUBSCRIBE: {
        Sub.NONE_IN: Sub.NONE,
        Sub.NONE_OUT_IN: Sub.NONE_OUT,
        Sub.TO_IN: Sub.TO,
        Sub.FROM: Sub.NONE,
        Sub.FROM_OUT: Sub.NONE_OUT,
        Sub.BOTH: Sub.TO,
    },
    Stanza.SUBSCRIBED: {
        Sub.NONE_OUT: Sub.TO,
        Sub.NONE_OUT_IN: Sub.TO_IN,
        Sub.FROM_OUT: Sub.BOTH,
    },
    Stanza.UNSUBSCRIBED: {
        Sub.NONE_OUT: Sub.NONE,
        Sub.NONE_OUT_IN: Sub.NONE_IN,
        Sub.TO: Sub.NONE,
        Sub.TO_IN: Sub.NONE_IN,
        Sub.FROM_OUT: Sub.FROM,
        Sub.BOTH: Sub.FROM,
    },
}


class Action(enum.Enum):
    """rosterSet's `subscription` attribute; UPDATE when it is absent (name and groups only)."""

    UPDATE = "update"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Item:
    peer: str
    sub: Sub = Sub.NONE
    name: str | None = None
    groups: tuple[str, ...] = ()
    approved: bool = False  # pre-approved: their request will be granted at once
    listed: bool = True  # False: only their request, not (yet) a contact the user keeps


@dataclass(frozen=True, slots=True)
class Roster:
    items: Mapping[str, Item] = field(default_factory=dict)

    def get(self, peer: str) -> Item | None:
        return self.items.get(peer)

    def listed(self) -> list[Item]:
        return sorted((i for i in self.items.values() if i.listed), key=lambda i: i.peer)

    def requests(self) -> list[str]:
        """Peers whose request to watch the user waits for an answer."""
        return sorted(i.peer for i in self.items.values() if i.sub in REQUESTED)

    def watching(self) -> set[str]:
        return {i.peer for i in self.items.values() if i.sub in WATCHING}

    def with_item(self, peer: str, item: Item | None) -> Roster:
        items = dict(self.items)
        if item is None:
            items.pop(peer, None)
        else:
            items[peer] = item
        return Roster(items)


@dataclass(frozen=True, slots=True)
class Step:
    """One stanza or action applied: the new roster and what follows from it."""

    roster: Roster
    sends: tuple[Stanza, ...] = ()  # to the contact, in this order
    # The item as the client now sees it (a roster push); `removed` when it left the list.
    push: Item | None = None
    removed: bool = False
    notice: Stanza | None = None  # a received stanza the client is told about


@dataclass(frozen=True, slots=True)
class Details:
    """rosterSet's name and group children; None leaves what the item has."""

    name: str | None = None
    groups: tuple[str, ...] | None = None


def _step(
    roster: Roster,
    peer: str,
    old: Item | None,
    new: Item | None,
    sends: tuple[Stanza, ...] = (),
    notice: Stanza | None = None,
) -> Step:
    """The roster with `new` in place of `old`, and the push the client gets if its view moved."""
    if new is not None and not new.listed and new.sub is Sub.NONE and not new.approved:
        new = None  # an answered or withdrawn request leaves nothing behind
    shown_old = old if old is not None and old.listed else None
    shown_new = new if new is not None and new.listed else None
    return Step(
        roster.with_item(peer, new),
        sends,
        push=shown_new if shown_new != shown_old else None,
        removed=shown_old is not None and shown_new is None,
        notice=notice,
    )


def _details(item: Item, details: Details) -> Item:
    name = item.name if details.name is None else (details.name or None)
    groups = item.groups if details.groups is None else details.groups
    return replace(item, name=name, groups=groups, listed=True)


def outbound(roster: Roster, peer: str, action: Action, details: Details = Details()) -> Step:
    """The user's rosterSet. LIMIT when the roster is full; NOT_FOUND to remove an unknown peer."""
    old = roster.get(peer)
    item = old or Item(peer, listed=False)
    if action is Action.REMOVE:
        if old is None:
            raise BridgeError(ErrorKind.NOT_FOUND, "the contact is not in the roster")
        # RFC 6121 2.5.2: removing cancels both directions (and any pre-approval).
        cancel = item.sub in OUTBOUND[Stanza.UNSUBSCRIBE]
        refuse = item.sub in OUTBOUND[Stanza.UNSUBSCRIBED]
        sends = (Stanza.UNSUBSCRIBE,) * cancel + (Stanza.UNSUBSCRIBED,) * refuse
        return _step(roster, peer, old, None, sends)
    if action is Action.UPDATE:
        step = _step(roster, peer, old, _details(item, details))
    else:
        stanza = Stanza(action.value)
        after = OUTBOUND[stanza].get(item.sub, item.sub)
        new = replace(item, sub=after)
        sends = (stanza,) if after is not item.sub else ()
        if stanza is Stanza.SUBSCRIBE:
            # Sent even when nothing changes: a lost request is asked again, and a contact who
            # already agreed answers "subscribed" again.
            sends = (stanza,)
        elif stanza is Stanza.SUBSCRIBED and after in WATCHED:
            new = replace(new, approved=False)
        elif stanza is Stanza.SUBSCRIBED:
            new = replace(new, approved=True)  # no request waits: a pre-approval, not sent
        elif stanza is Stanza.UNSUBSCRIBED:
            new = replace(new, approved=False)
        # Asking or granting puts the contact on the list with the name and groups given;
        # refusing someone who is not on it keeps them off.
        if stanza in (Stanza.SUBSCRIBE, Stanza.SUBSCRIBED) or item.listed:
            new = _details(new, details)
        step = _step(roster, peer, old, new, sends)
    if old is None and peer in step.roster.items and len(roster.items) >= MAX_ITEMS:
        raise BridgeError(ErrorKind.LIMIT, "the roster is full")
    return step


def inbound(roster: Roster, peer: str, stanza: Stanza) -> Step:
    """A stanza from the contact, as RFC 6121 3.1.3-3.3.3 have the user's server apply it."""
    old = roster.get(peer)
    item = old or Item(peer, listed=False)
    if stanza is Stanza.SUBSCRIBE:
        if item.sub in WATCHED:
            # Already allowed (the contact lost track): answer again, nothing changes.
            return Step(roster, sends=(Stanza.SUBSCRIBED,))
        after = INBOUND[stanza].get(item.sub, item.sub)
        if item.approved:
            after = OUTBOUND[Stanza.SUBSCRIBED].get(after, after)
            new = replace(item, sub=after, approved=False, listed=True)
            return _step(roster, peer, old, new, sends=(Stanza.SUBSCRIBED,))
        if after is item.sub:
            return Step(roster)  # asked again: the waiting request stands
        if old is None and (
            len(roster.items) >= MAX_ITEMS
            or sum(not i.listed for i in roster.items.values()) >= MAX_REQUESTS
        ):
            return Step(roster)  # too many strangers asking: dropped
        return _step(roster, peer, old, replace(item, sub=after), notice=stanza)
    after = INBOUND[stanza].get(item.sub, item.sub)
    if old is None or after is item.sub:
        # Nothing to change (RFC 6121 A.3): an answer to no request of ours, or what we
        # already know.
        return Step(roster)
    return _step(roster, peer, old, replace(item, sub=after), notice=stanza)


# -- what waits in the exchange ---------------------------------------------------------------

# The two independent channels from one contact: their wish to watch the user (touches the
# user's from/in) and their answers about the user watching them (touches to/out).
ASK = (Stanza.SUBSCRIBE, Stanza.UNSUBSCRIBE)
ANSWER = (Stanza.SUBSCRIBED, Stanza.UNSUBSCRIBED)


Entry = tuple[int, Stanza]  # a stanza waiting in the exchange, with its sequence number


def queue(waiting: tuple[Entry, ...], entry: Entry) -> tuple[Entry, ...]:
    """Add a stanza to those of its channel not yet applied, keeping at most two: applied in
    order from any state, [.., un-x] ends as [un-x] alone does, and x after x changes nothing;
    only [un-x, x] needs both (x alone would keep what un-x takes away)."""
    stanza = entry[1]
    positive, negative = ASK if stanza in ASK else ANSWER
    if stanza is negative:
        return (entry,)
    if waiting and waiting[-1][1] is positive:
        return waiting
    return (*waiting[-1:], entry)
