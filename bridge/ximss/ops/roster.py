"""Roster section: rosterList and rosterSet (presenceSet and presence delivery: presence.py).

XIMSS 5.1 says its roster "resembles that of the XMPP protocol" and stops inside rosterSet; the
rest is completed from XMPP (RFC 6121). The shapes are in bridge/ximss/roster_xml.py.

    C: <rosterList id="A1"/>
    S: <rosterItem id="A1" peer="bob@example.com" name="Bob" subscription="to"><group>Work</group>
       </rosterItem>
    S: <presence id="A1" peer="carol@example.com" type="subscribe"/>   (a request waiting)
    S: <response id="A1"/>

Where things live. A user's roster is one JSON value in their own IMAP METADATA (the private
preference "Roster", see adapters/imap/account.py), so it survives sessions and restarts and
follows the user to any replica. Its states and transitions are XMPP's, as tables
(bridge/session/roster.py): to, from, both or none, with "ask" while the user's request waits.

The handshake. The SIP presence server accepts every watcher, so authorization is the bridge's:
a session shows a contact's presence only while its roster says "to" or "both". A user's roster
can only be written by that user's sessions, so what one user sends another (the four XMPP
subscription stanzas: subscribe, subscribed, unsubscribe, unsubscribed) waits in the shared state
store (bridge/session/roster_exchange.py: `ximss:roster:mail:<to>:<from>` and the list
`ximss:roster:senders:<to>`) until a session of the recipient applies it: at once when the
recipient has an interested session in this process, otherwise when one of theirs next lists or
changes the roster or binds with presence, on any replica, after any time offline. Applying a
stanza may answer it (a contact who already agreed answers "subscribed" again; a pre-approved
request is granted) and that answer travels the same way back.

    user1: rosterSet peer=user2 subscription=subscribe   user1's item: none, ask=subscribe
    user2: sees <presence peer=user1 type=subscribe/> (pushed, and in rosterList)
    user2: rosterSet peer=user1 subscription=subscribed  user2's item: from
    user1: item pushed as subscription=to; while bound, user2's presence is subscribed to at once
    user2: rosterSet peer=user1 subscription=unsubscribed
    user1: item pushed as none, <presence type=unsubscribed/>; user2's presence stops at once

Who is told. XIMSS's signalBind presence="yes" starts roster and presence notifications; as in
XMPP, a session that lists or changes the roster is also "interested". Interested sessions get
each change as a rosterItem without id (XMPP's roster push, `subscription="remove"` for a removed
item) and contacts' stanzas as <presence peer=... type=.../>. Sessions on other replicas learn of
changes when they next touch the roster (the state store has no notifications).

Not handled: subscriptions with users of other servers. Only users of this bridge's domains take
part; rosterSet subscribe or subscribed for anyone else is answered 502, and such contacts can be
kept (name, groups) but never reach "to". Whether the peer's account exists is not checked: a
request to nobody waits unanswered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.session.roster import Stanza
from bridge.ximss.ops import roster_hub
from bridge.ximss.ops.base import Outcome
from bridge.ximss.roster_xml import notice, parse_roster_set, roster_item

if TYPE_CHECKING:
    from bridge.ximss.codec import Request
    from bridge.ximss.conversation import Conversation


async def roster_list(conv: Conversation, request: Request) -> Outcome:
    rhub = roster_hub.hub(conv.services)
    roster = await roster_hub.refresh(rhub, rhub.listen(conv), quiet=True)
    for item in roster.listed():
        conv.send(roster_item(item, request.id))
    for peer in roster.requests():
        conv.send(notice(peer, Stanza.SUBSCRIBE, request.id))
    return Outcome.DONE


async def roster_set(conv: Conversation, request: Request) -> Outcome:
    wanted = parse_roster_set(request.element)
    rhub = roster_hub.hub(conv.services)
    await roster_hub.change(rhub, rhub.listen(conv), wanted.peer, wanted.action, wanted.details)
    return Outcome.DONE
