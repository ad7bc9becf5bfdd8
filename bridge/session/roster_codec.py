"""The roster's checked inputs and its stored form: contact addresses, names and groups within
their limits, and the JSON document kept in the user's IMAP METADATA.

Decoding checks every item and leaves out the ones that do not hold up, so a damaged value
costs those items, not the roster; a document that is not one at all is refused, never taken
for an empty roster (which the next change would store over it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from bridge.errors import BridgeError, ErrorKind
from bridge.session.roster import MAX_ITEMS, Details, Item, Roster, Sub

MAX_NAME_CHARS = 255
MAX_GROUPS = 32  # groups one contact is in
MAX_GROUP_CHARS = 255
MAX_ADDRESS_CHARS = 254  # RFC 5321's longest forward path, less the brackets
MAX_ROSTER_BYTES = 64 * 1024  # the stored JSON document
FORMAT_VERSION = 1

_NOT_IN_ADDRESS = re.compile(r"[\s<>()\[\]\\,;:\"/]")


def peer_address(text: str) -> str:
    """A contact's E-mail address (local@domain), lower-cased; BAD_REQUEST for anything else.
    Colons are refused with the rest: a SIP URI is not a roster peer, and state keys use them."""
    address = text.strip().lower()
    local, _, domain = address.partition("@")
    if (
        not local
        or not domain
        or "@" in domain
        or len(address) > MAX_ADDRESS_CHARS
        or _NOT_IN_ADDRESS.search(address)
        or not address.isprintable()
        or not all(domain.split("."))
    ):
        raise BridgeError(ErrorKind.BAD_REQUEST, "peer must be an E-mail address")
    return address


def check_details(name: str | None, groups: Iterable[str] | None) -> Details:
    """rosterSet's name and groups within the limits; BAD_REQUEST or LIMIT otherwise."""
    if name is not None:
        name = " ".join(name.split())
        if len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise BridgeError(ErrorKind.BAD_REQUEST, "invalid contact name")
    checked: tuple[str, ...] | None = None
    if groups is not None:
        seen: list[str] = []
        for given in groups:
            group = " ".join(given.split())
            if not group or len(group) > MAX_GROUP_CHARS or not group.isprintable():
                raise BridgeError(ErrorKind.BAD_REQUEST, "invalid group name")
            if group not in seen:
                seen.append(group)
        if len(seen) > MAX_GROUPS:
            raise BridgeError(ErrorKind.LIMIT, "too many groups")
        checked = tuple(seen)
    return Details(name, checked)


# -- storage ------------------------------------------------------------------------------------


def encode(roster: Roster) -> str:
    """The stored form; LIMIT when it would pass MAX_ROSTER_BYTES."""
    items = []
    for item in sorted(roster.items.values(), key=lambda i: i.peer):
        entry: dict[str, object] = {"peer": item.peer, "sub": item.sub.value}
        if item.name:
            entry["name"] = item.name
        if item.groups:
            entry["groups"] = list(item.groups)
        if item.approved:
            entry["approved"] = True
        if not item.listed:
            entry["listed"] = False
        items.append(entry)
    text = json.dumps(
        {"v": FORMAT_VERSION, "items": items}, ensure_ascii=False, separators=(",", ":")
    )
    if len(text.encode("utf-8")) > MAX_ROSTER_BYTES:
        raise BridgeError(ErrorKind.LIMIT, "the roster is too large")
    return text


def _item(entry: object) -> Item | None:
    if not isinstance(entry, dict):
        return None
    try:
        peer = peer_address(str(entry["peer"]))
        sub = Sub(entry.get("sub", "none"))
        name, groups = entry.get("name"), entry.get("groups", [])
        if not (name is None or isinstance(name, str)) or not isinstance(groups, list):
            return None
        if not all(isinstance(g, str) for g in groups):
            return None
        details = check_details(name, groups)
        approved, listed = entry.get("approved", False), entry.get("listed", True)
        if not (isinstance(approved, bool) and isinstance(listed, bool)):
            return None
    except (KeyError, ValueError, BridgeError):
        return None
    return Item(peer, sub, details.name or None, details.groups or (), approved, listed)


def decode(text: str) -> tuple[Roster, int]:
    """The stored roster and how many items were left out as damaged. An unreadable document
    raises INTERNAL, so that it is never overwritten by an empty roster."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise BridgeError(ErrorKind.INTERNAL, "the stored roster is unreadable") from exc
    entries = document.get("items") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise BridgeError(ErrorKind.INTERNAL, "the stored roster is unreadable")
    items: dict[str, Item] = {}
    for entry in entries[:MAX_ITEMS]:
        item = _item(entry)
        if item is not None:
            items[item.peer] = item
    return Roster(items), len(entries) - len(items)
