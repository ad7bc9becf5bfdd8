"""Presence: signalBind presence="yes" and presenceSet, over the session's SIP user agent.

With presence="yes" the binding PUBLISHes the user's presence ("online" until presenceSet says
otherwise) and SUBSCRIBEs (event presence) to every contact the roster lets the user watch (to,
both); each NOTIFY becomes a <presence peer=...> message (shapes and word mapping:
bridge/ximss/pidf.py), but only while the roster still allows it. The SIP presence server
accepts every watcher, so this gate is the authorization: a contact who revokes is dropped from
the watch at once (nothing of theirs gets through after the roster push that says so, and an
unavailable presence tells the client to forget what it showed), then unsubscribed.

The watch follows every roster change (the roster hub calls `update`), tries a failed or ended
subscription again after RESUBSCRIBE_SECONDS while the contact is still watched, and is closed
first when the binding ends (signalUnbind, end of session): unsubscribe, unpublish.

    C: <presenceSet id="A2"><presence>away</presence><status>Back at two</status></presenceSet>
    S: <presence peer="bob@example.com"><show>away</show><presence>away</presence>
         <status>Back at two</status></presence>

presenceSet needs signalBind (the PUBLISH goes through the session's user agent), with or
without presence="yes"; without it the answer is 501 "signalBind first".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.protocols import Notification, RequestResult, SignalingSubscription
from bridge.errors import BridgeError, ErrorKind
from bridge.session.roster import Roster
from bridge.session.signaling import SignalBinding
from bridge.transport.tasks import TaskSet
from bridge.ximss import pidf
from bridge.ximss.ops import roster_hub
from bridge.ximss.ops.base import Outcome
from bridge.ximss.ops.signaling import binding

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation

log = logging.getLogger("bridge.presence")

RESUBSCRIBE_SECONDS = 60.0
SUBSCRIBE_EXPIRES = 600
ONLINE = pidf.XimssPresence("online")
OFFLINE = pidf.Presence(pidf.Basic.CLOSED)


@dataclass(eq=False)
class _Watched:
    """One contact's subscription, from the SUBSCRIBE until it is dropped or ends."""

    peer: str
    subscription: SignalingSubscription | None = None
    ended: bool = False


class PresenceWatch:
    def __init__(
        self, conv: Conversation, bound: SignalBinding, listener: roster_hub.Listener
    ) -> None:
        self.conv = conv
        self.bound = bound
        self.listener = listener
        self.wanted: set[str] = set()  # contacts the roster lets us watch
        self.watched: dict[str, _Watched] = {}
        self.tasks = TaskSet("presence")
        self.closed = False

    def update(self, roster: Roster) -> None:
        if self.closed:
            return
        wanted = roster.watching()
        for peer in sorted(self.wanted - wanted):
            self._drop(peer)
            self.conv.unsolicited(pidf.presence_message(peer, OFFLINE))
        self.wanted = wanted
        for peer in sorted(wanted):
            if peer not in self.watched:
                self._watch(peer)

    def _watch(self, peer: str) -> None:
        watched = self.watched[peer] = _Watched(peer)
        self.tasks.spawn(self._subscribe(watched), "subscribe")

    def _drop(self, peer: str) -> None:
        watched = self.watched.pop(peer, None)
        if watched is not None:
            watched.ended = True
            if watched.subscription is not None:
                self.tasks.spawn(_unsubscribe(watched.subscription), "unsubscribe")

    def _target(self, peer: str) -> str:
        connector = self.conv.services.domain(peer.rpartition("@")[2]).signaling
        return connector.address(peer) if connector is not None else f"sip:{peer}"

    async def _subscribe(self, watched: _Watched) -> None:
        try:
            subscription = await self.bound.agent.subscribe(
                self._target(watched.peer), self._on_notify(watched), expires=SUBSCRIBE_EXPIRES
            )
        except BridgeError as exc:
            log.info("presence of %s not subscribed (%s), trying later", watched.peer, exc)
            self._ended(watched)
            return
        watched.subscription = subscription
        if watched.ended or self.closed:
            await _unsubscribe(subscription)

    def _ended(self, watched: _Watched) -> None:
        watched.ended = True
        if self.watched.get(watched.peer) is watched:
            del self.watched[watched.peer]
            if not self.closed:
                self.tasks.spawn(self._again(watched.peer), "resubscribe")

    async def _again(self, peer: str) -> None:
        await asyncio.sleep(RESUBSCRIBE_SECONDS)
        if not self.closed and peer in self.wanted and peer not in self.watched:
            self._watch(peer)

    def _on_notify(self, watched: _Watched) -> Callable[[Notification], None]:
        def notified(note: Notification) -> None:
            if self.closed or watched.ended or self.watched.get(watched.peer) is not watched:
                return  # no longer allowed, or a subscription we are dropping
            if note.state == "terminated":
                self._ended(watched)
                return
            if note.state != "active":
                return
            try:
                body = note.body.strip().encode("utf-8")
                # No body: the contact has published nothing (not online anywhere).
                presence = pidf.parse_pidf(body) if body else OFFLINE
            except BridgeError as exc:
                log.info("presence of %s unreadable: %s", watched.peer, exc)
                return
            self.conv.unsolicited(pidf.presence_message(watched.peer, presence))

        return notified

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.listener.watch is self:
            self.listener.watch = None
        await self.tasks.cancel_all()
        subscriptions = [w.subscription for w in self.watched.values() if w.subscription]
        self.watched.clear()
        for subscription in subscriptions:
            await _unsubscribe(subscription)
        try:
            await self.bound.agent.unpublish()
        except BridgeError as exc:
            log.debug("unpublish failed: %s", exc)


async def _unsubscribe(subscription: SignalingSubscription) -> None:
    try:
        await subscription.unsubscribe()
    except BridgeError as exc:
        log.debug("unsubscribe failed: %s", exc)


async def _publish(bound: SignalBinding, presence: pidf.XimssPresence) -> RequestResult:
    body = pidf.publish_body(bound.address, presence).decode("utf-8")
    return await bound.agent.publish(body, content_type=pidf.CONTENT_TYPE)


async def start(conv: Conversation, bound: SignalBinding) -> None:
    """signalBind presence="yes": publish "online", watch the roster's contacts."""
    rhub = roster_hub.hub(conv.services)
    listener = rhub.listen(conv)
    watch = PresenceWatch(conv, bound, listener)
    bound.presence = listener.watch = watch
    try:
        result = await _publish(bound, ONLINE)
        if not result.ok:
            log.warning(
                "session=%s presence not published: %s", listener.session.url_id[:6], result
            )
    except BridgeError as exc:
        log.warning("session=%s presence not published: %s", listener.session.url_id[:6], exc)
    watch.update(await roster_hub.refresh(rhub, listener))


async def presence_set(conv: Conversation, request: Request) -> Outcome:
    bound = binding(conv)
    result = await _publish(bound, pidf.parse_presence_set(request.element))
    if not result.ok:
        raise BridgeError(ErrorKind.BACKEND_REFUSED, "the presence server refused the state")
    return Outcome.DONE
