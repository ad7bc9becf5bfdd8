"""The XIMSS shapes of the roster: rosterSet in, rosterItem and subscription notices out.

    C: <rosterSet id="A1" peer="bob@example.com" name="Bob" subscription="subscribe">
         <group>Friends</group></rosterSet>
    S: <rosterItem peer="bob@example.com" name="Bob" subscription="none" ask="subscribe">
         <group>Friends</group></rosterItem>
    S: <presence peer="carol@example.com" type="subscribe"/>
    S: <rosterItem peer="dave@example.com" subscription="remove"/>

XIMSS 5.1 names rosterItem, rosterSet's `peer` and its `subscription` values, then stops. The
rest is XMPP's roster item (RFC 6121 2.1.2, which XIMSS says it resembles): `name`,
`subscription` none/to/from/both, `ask="subscribe"` while the user's request waits,
`approved="true"` for a pre-approval, one `group` child per group, and a roster push with
`subscription="remove"` for a removed item. Subscription stanzas from contacts are XMPP's too,
as the <presence> message XIMSS already uses for presence: `type` subscribe, unsubscribe,
subscribed or unsubscribed. rosterSet accepts XMPP's fourth stanza, `unsubscribe` (stop
watching the contact but keep it), besides the four the spec lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.session.roster import SHOWN, Action, Details, Item, Stanza
from bridge.session.roster_codec import check_details, peer_address
from bridge.ximss import codec

ACTIONS: dict[str | None, Action] = {
    None: Action.UPDATE,
    "subscribe": Action.SUBSCRIBE,
    "unsubscribe": Action.UNSUBSCRIBE,
    "subscribed": Action.SUBSCRIBED,
    "unsubscribed": Action.UNSUBSCRIBED,
    "remove": Action.REMOVE,
}


@dataclass(frozen=True, slots=True)
class RosterSet:
    peer: str
    action: Action
    details: Details


def parse_roster_set(element: etree._Element) -> RosterSet:
    """BAD_REQUEST for a missing or malformed peer, an unknown subscription value, bad names."""
    peer = element.get("peer")
    if peer is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "peer attribute is missing")
    value = element.get("subscription")
    action = ACTIONS.get(value.strip().lower() if value is not None else None)
    if action is None:
        raise BridgeError(ErrorKind.BAD_REQUEST, "unknown subscription value")
    groups = [child.text or "" for child in element if child.tag == "group"]
    name = element.get("name")
    if action is Action.UPDATE:
        # A plain update is XMPP's roster set: the item as given replaces the stored one.
        details = check_details(name or "", groups)
    else:
        details = check_details(name, groups or None)
    return RosterSet(peer_address(peer), action, details)


def roster_item(item: Item, request_id: str | None = None) -> etree._Element:
    subscription, asking = SHOWN[item.sub]
    message = codec.data(
        "rosterItem",
        request_id,
        {
            "peer": item.peer,
            "name": item.name,
            "subscription": subscription,
            "ask": "subscribe" if asking else None,
            "approved": "true" if item.approved else None,
        },
    )
    for group in item.groups:
        xml.sub(message, "group", text=group)
    return message


def removed_item(peer: str) -> etree._Element:
    return codec.data("rosterItem", None, {"peer": peer, "subscription": "remove"})


def notice(peer: str, stanza: Stanza, request_id: str | None = None) -> etree._Element:
    """A contact's subscription stanza, as XMPP delivers it: <presence peer type=...>."""
    return codec.data("presence", request_id, {"peer": peer, "type": stanza.value})
