"""The roster at run time: loading and storing it, applying what contacts sent, and telling the
account's interested sessions. The design is told in bridge/ximss/ops/roster.py.

Every read-modify-write of an account's roster holds that account's lock (in this process), and
no code holds two accounts' locks at once: stanzas for a contact are left in the exchange and the
contact's own sessions apply them in a task of their own (`RosterHub.poke`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from adapters.protocols import AccountData
from bridge.errors import BridgeError, ErrorKind
from bridge.session.roster import (
    Action,
    Details,
    Item,
    Roster,
    Stanza,
    Step,
    Sub,
    inbound,
    outbound,
)
from bridge.session.roster_codec import decode, encode
from bridge.session.roster_exchange import Exchange
from bridge.transport.tasks import TaskSet
from bridge.ximss.roster_xml import notice, removed_item, roster_item

if TYPE_CHECKING:
    from bridge.services import Services
    from bridge.session.session import Session
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.roster")

# The preference (private IMAP METADATA, see adapters/imap/account.py) that holds the roster.
ROSTER_PREF = "Roster"
LOCKS = 64  # per-account locks, shared by hash: bounded, nothing to clean up
PRUNE_EVERY = 256  # listen() calls between sweeps for ended sessions of every account


class Watch(Protocol):
    """A session's presence delivery (bridge/ximss/ops/presence.py), told of roster changes."""

    def update(self, roster: Roster) -> None: ...


@dataclass(eq=False)
class Listener:
    """A session interested in roster pushes: it listed or changed the roster, or bound with
    presence="yes" (XMPP's "interested resource")."""

    conv: Conversation
    session: Session
    account: str  # the session's account as roster peers name it (lower case)
    swept: bool = False  # has read the mail of everyone in its roster once (see the exchange)
    watch: Watch | None = None

    @property
    def live(self) -> bool:
        return not self.session.closed and self.conv.session is self.session


@dataclass
class Changes:
    """What applying steps left to do once the roster is stored."""

    pushes: dict[str, Item | None] = field(default_factory=dict)  # None: removed
    notices: list[tuple[str, Stanza]] = field(default_factory=list)
    replies: list[tuple[str, Stanza]] = field(default_factory=list)  # not yet left
    poke: set[str] = field(default_factory=set)  # contacts something was left for

    def record(self, peer: str, step: Step, *, replies: bool = True) -> None:
        if step.push is not None:
            self.pushes[peer] = step.push
        elif step.removed:
            self.pushes[peer] = None
        if step.notice is not None:
            self.notices.append((peer, step.notice))
        if replies:
            self.replies += [(peer, stanza) for stanza in step.sends]


class RosterHub:
    """The in-process side of the roster: interested sessions and per-account locks."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.exchange = Exchange(services.state)
        self._listeners: dict[str, dict[str, Listener]] = {}
        self._locks = [asyncio.Lock() for _ in range(LOCKS)]
        self._tasks = TaskSet("roster")
        self._queued: set[str] = set()
        self._listens = 0

    def listen(self, conv: Conversation) -> Listener:
        session = conv.require_session()
        self._listens += 1
        if self._listens % PRUNE_EVERY == 0:
            for account in list(self._listeners):
                self.listeners(account)  # forgets the ended sessions of quiet accounts too
        account = session.account.lower()
        listeners = self._listeners.setdefault(account, {})
        found = listeners.get(session.url_id)
        if found is None or not found.live:
            found = listeners[session.url_id] = Listener(conv, session, account)
        return found

    def listeners(self, account: str) -> list[Listener]:
        """The account's live interested sessions (ended ones are forgotten here)."""
        listeners = self._listeners.get(account, {})
        for url_id in [u for u, listener in listeners.items() if not listener.live]:
            del listeners[url_id]
        if not listeners:
            self._listeners.pop(account, None)
        return list(listeners.values())

    @asynccontextmanager
    async def locked(self, account: str) -> AsyncIterator[None]:
        async with self._locks[zlib.crc32(account.encode()) % LOCKS]:
            yield

    def is_local(self, address: str) -> bool:
        """A user of one of this bridge's domains (only they take part in subscriptions)."""
        try:
            self.services.domain(address.rpartition("@")[2])
        except BridgeError:
            return False
        return True

    def poke(self, account: str) -> None:
        """Stanzas wait for the account: its sessions here apply them now (the others when
        they next touch the roster)."""
        if account in self._queued or not self.listeners(account):
            return
        self._queued.add(account)
        self._tasks.spawn(self._catch_up(account), "catch-up")

    async def _catch_up(self, account: str) -> None:
        self._queued.discard(account)
        listeners = self.listeners(account)
        if not listeners:
            return
        try:
            await refresh(self, listeners[0])
        except BridgeError as exc:
            log.warning("session=%s roster update failed: %s", listeners[0].session.url_id[:6], exc)


_HUBS: weakref.WeakKeyDictionary[Services, RosterHub] = weakref.WeakKeyDictionary()


def hub(services: Services) -> RosterHub:
    """The hub of this bridge (one per Services, made on first use)."""
    found = _HUBS.get(services)
    if found is None:
        found = _HUBS[services] = RosterHub(services)
    return found


# -- storage --------------------------------------------------------------------------------------


def _account_data(session: Session) -> AccountData:
    if not isinstance(session.mail, AccountData):
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "the mail server cannot store a roster")
    return session.mail


async def load(session: Session) -> Roster:
    stored = await _account_data(session).get_prefs([ROSTER_PREF])
    text = next((v for k, v in stored.items() if k.lower() == ROSTER_PREF.lower()), None)
    if text is None:
        return Roster()
    roster, damaged = decode(text)
    if damaged:
        log.warning("session=%s %d damaged roster items left out", session.url_id[:6], damaged)
    return roster


async def save(session: Session, roster: Roster) -> None:
    value = encode(roster) if roster.items else None
    await _account_data(session).set_prefs({ROSTER_PREF: value})


# -- applying -------------------------------------------------------------------------------------


async def _read_mail(
    rhub: RosterHub,
    listener: Listener,
    roster: Roster,
    changes: Changes,
    applied: dict[str, set[int]],
) -> Roster:
    """Apply the stanzas contacts left, but those already `applied` (which this adds to)."""
    me = listener.account
    also = [] if listener.swept else [i.peer for i in roster.items.values() if i.sub != Sub.NONE]
    for letter in await rhub.exchange.letters(me, also):
        done = applied.setdefault(letter.sender, set())
        for seq, stanza in letter.entries:
            if seq in done:
                continue
            step = inbound(roster, letter.sender, stanza)
            roster = step.roster
            changes.record(letter.sender, step)
            done.add(seq)
    listener.swept = True
    return roster


async def _answer(rhub: RosterHub, me: str, changes: Changes) -> None:
    """Leave the answers applying produced, in order (a contact who has meanwhile changed
    their mind gets an answer to no request of theirs, which changes nothing there)."""
    replies, changes.replies = changes.replies, []
    for peer, stanza in replies:
        changes.poke.add(peer)
        if rhub.is_local(peer):
            try:
                await rhub.exchange.post(me, peer, stanza)
            except BridgeError as exc:
                log.warning("roster: a %s for %s was not left: %s", stanza.value, peer, exc)


async def _finish(rhub: RosterHub, me: str, applied: dict[str, set[int]], changes: Changes) -> None:
    """Once the roster is stored: remove the applied stanzas, leave the answers."""
    for sender, seqs in applied.items():
        await rhub.exchange.settle(me, sender, seqs)
    await _answer(rhub, me, changes)


def _deliver(
    rhub: RosterHub, account: str, roster: Roster, changes: Changes, quiet: Listener | None
) -> None:
    # XMPP's order: the roster push, the contact's stanza, then (from the watch) an unavailable
    # presence for a contact no longer watched. No await in between: no NOTIFY can slip in.
    for listener in rhub.listeners(account):
        if listener is not quiet:  # when quiet, it gets the whole roster in its own response
            for peer, item in changes.pushes.items():
                listener.conv.unsolicited(roster_item(item) if item else removed_item(peer))
            for peer, stanza in changes.notices:
                listener.conv.unsolicited(notice(peer, stanza))
        if listener.watch is not None:
            listener.watch.update(roster)
    for peer in sorted(changes.poke):
        rhub.poke(peer)


async def refresh(rhub: RosterHub, listener: Listener, *, quiet: bool = False) -> Roster:
    """The account's roster with every waiting stanza applied and stored; the account's
    interested sessions (but this one, when `quiet`) are told what changed."""
    session, me = listener.session, listener.account
    changes, applied = Changes(), dict[str, set[int]]()
    async with rhub.locked(me):
        roster = await load(session)
        updated = await _read_mail(rhub, listener, roster, changes, applied)
        if updated != roster:
            await save(session, updated)
        await _finish(rhub, me, applied, changes)
    _deliver(rhub, me, updated, changes, listener if quiet else None)
    return updated


async def change(
    rhub: RosterHub, listener: Listener, peer: str, action: Action, details: Details
) -> Roster:
    """rosterSet. What waits is applied (and answered) first: an action on an older state would
    cross what the contact sent since (refusing a request they have just made again, say) and
    the two sides would disagree. The action's stanzas are left before the roster is stored,
    so a failure to leave them changes nothing."""
    session, me = listener.session, listener.account
    if peer == me:
        raise BridgeError(ErrorKind.BAD_REQUEST, "the roster is for other people")
    local = rhub.is_local(peer)
    if not local and action in (Action.SUBSCRIBE, Action.SUBSCRIBED):
        raise BridgeError(
            ErrorKind.NOT_SUPPORTED, "subscriptions with users of other servers are not supported"
        )
    changes, applied = Changes(), dict[str, set[int]]()
    async with rhub.locked(me):
        stored = await load(session)
        roster = await _read_mail(rhub, listener, stored, changes, applied)
        await _answer(rhub, me, changes)
        step = outbound(roster, peer, action, details)
        changes.record(peer, step, replies=False)
        if local:
            for stanza in step.sends:
                await rhub.exchange.post(me, peer, stanza)
                changes.poke.add(peer)
        if step.roster != stored:
            await save(session, step.roster)
        await _finish(rhub, me, applied, changes)
    _deliver(rhub, me, step.roster, changes, None)
    return step.roster
