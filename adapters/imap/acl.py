"""IMAP ACL (RFC 4314): MYRIGHTS, GETACL, SETACL, DELETEACL on server mailbox names.

Rights travel as RFC 4314 letters, exactly as the server gives or takes them; translating them to
XIMSS letters is `bridge.views.rights`'s job.
"""

from __future__ import annotations

import asyncio

from adapters.imap.client import ImapClient
from adapters.imap.wire import Untagged, Value
from adapters.protocols import AclEntry
from bridge.errors import BridgeError, ErrorKind


def _text(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _require_acl(client: ImapClient) -> None:
    if not client.has("ACL"):
        raise BridgeError(ErrorKind.NOT_SUPPORTED, "the mail server has no access control lists")


def _for_mailbox(items: list[Untagged], server: str) -> list[Untagged]:
    """Responses about this mailbox; the server may echo the name in another case (INBOX)."""
    usable = [item for item in items if item.values]
    exact = [item for item in usable if _text(item.values[0]) == server]
    if exact:
        return exact
    return [item for item in usable if _text(item.values[0]).lower() == server.lower()]


async def _listed(client: ImapClient, server: str) -> bool:
    result = await client.execute("LIST", "", server, wants=("LIST",))
    return any(
        isinstance(item.values[0], list)
        and "\\NONEXISTENT" not in {str(flag).upper() for flag in item.values[0]}
        for item in result.of("LIST")
        if item.values
    )


async def my_rights(client: ImapClient, server: str) -> str:
    """MYRIGHTS letters. NOT_FOUND for a missing mailbox, PERMISSION, NOT_SUPPORTED."""
    _require_acl(client)
    # Dovecot answers MYRIGHTS for a missing mailbox of one's own with full rights: a mailbox one
    # may look up (l) but that LIST does not show does not exist. Both commands go out at once.
    result, listed = await asyncio.gather(
        client.execute("MYRIGHTS", server, wants=("MYRIGHTS",)), _listed(client, server)
    )
    found = _for_mailbox(result.of("MYRIGHTS"), server)
    letters = _text(found[0].values[1]) if found and len(found[0].values) >= 2 else ""
    if "l" in letters and not listed:
        raise BridgeError(ErrorKind.NOT_FOUND)
    return letters


async def get_acl(client: ImapClient, server: str) -> list[AclEntry]:
    """GETACL, in the server's order. PERMISSION without the a right, NOT_FOUND."""
    _require_acl(client)
    result = await client.execute("GETACL", server, wants=("ACL",))
    entries: list[AclEntry] = []
    for item in _for_mailbox(result.of("ACL"), server):
        pairs = item.values[1:]
        for identifier, rights in zip(pairs[::2], pairs[1::2], strict=False):
            entries.append(AclEntry(_text(identifier), _text(rights)))
    return entries


async def set_acl(client: ImapClient, server: str, identifier: str, rights: str) -> None:
    """SETACL; `rights` may start with + (add) or - (remove). BAD_REQUEST for letters or an
    identifier the server refuses, PERMISSION, NOT_FOUND."""
    _require_acl(client)
    await client.execute("SETACL", server, identifier, rights)


async def delete_acl(client: ImapClient, server: str, identifier: str) -> None:
    """DELETEACL; removing an identifier that has no entry succeeds (Dovecot says OK)."""
    _require_acl(client)
    await client.execute("DELETEACL", server, identifier)
