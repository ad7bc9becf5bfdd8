"""Account-wide IMAP data: server annotations (RFC 5464 METADATA on the empty mailbox name) and
the storage quota (RFC 9208 / 2087 GETQUOTAROOT).

The bridge keeps each user's preferences as private server annotations under its own vendor
path, so they live with the mail on the user's server (and follow the user to another bridge
replica) and other clients' annotations are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from adapters.imap.client import ImapClient
from adapters.imap.wire import Arg, Value
from adapters.protocols import StorageQuota
from bridge.errors import BridgeError, ErrorKind

# RFC 5464 3.2: "/private/vendor/vendor.<name>/..." is the place for a vendor's own entries.
PREFS_ENTRY = "/private/vendor/vendor.ximss-bridge/prefs/"
SERVER = ""  # the empty mailbox name addresses server annotations
KIB = 1024  # RFC 9208 5.1: STORAGE is counted in units of 1024 octets


def _text(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _require(client: ImapClient, capability: str) -> None:
    if not client.has(capability):
        raise BridgeError(ErrorKind.NOT_SUPPORTED, f"the mail server has no {capability}")


async def get_prefs(client: ImapClient, names: Iterable[str]) -> dict[str, str]:
    """Stored preference values by name; names with no stored value are left out."""
    _require(client, "METADATA")
    entries: list[Arg] = [PREFS_ENTRY + name for name in names]
    if not entries:
        return {}
    result = await client.execute("GETMETADATA", SERVER, entries, wants=("METADATA",))
    found: dict[str, str] = {}
    for item in result.of("METADATA"):
        if len(item.values) < 2 or _text(item.values[0]) != SERVER:
            continue
        pairs = item.values[1]
        if not isinstance(pairs, list):
            continue
        for key, value in zip(pairs[::2], pairs[1::2], strict=False):
            entry = _text(key)
            # Entry names are case-insensitive (RFC 5464 3.2); ours are sent as given.
            if entry.lower().startswith(PREFS_ENTRY) and value is not None:
                found[entry[len(PREFS_ENTRY) :]] = _text(value)
    return found


async def set_prefs(client: ImapClient, values: Mapping[str, str | None]) -> None:
    """Store all values in one SETMETADATA (all or nothing, RFC 5464 4.3); None removes one."""
    _require(client, "METADATA")
    pairs: list[Arg] = []
    for name, value in values.items():
        pairs += [PREFS_ENTRY + name, value.encode("utf-8") if value is not None else None]
    if pairs:
        await client.execute("SETMETADATA", SERVER, pairs)


async def quota(client: ImapClient) -> StorageQuota | None:
    """STORAGE usage and limit of INBOX's quota root, in bytes; None when there is none."""
    if not client.has("QUOTA"):
        return None
    result = await client.execute("GETQUOTAROOT", "INBOX", wants=("QUOTAROOT", "QUOTA"))
    for item in result.of("QUOTA"):
        if len(item.values) < 2 or not isinstance(item.values[1], list):
            continue
        resources = item.values[1]
        for i in range(0, len(resources) - 2, 3):
            if _text(resources[i]).upper() != "STORAGE":
                continue
            try:
                used, limit = int(_text(resources[i + 1])), int(_text(resources[i + 2]))
            except ValueError:
                continue
            return StorageQuota(used=used * KIB, limit=limit * KIB)
    return None
