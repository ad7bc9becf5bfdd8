"""Mailbox access rights: XIMSS (CommuniGate) letters <-> IMAP ACL (RFC 4314) letters, and ACL
element names ("patterns") <-> IMAP identifiers. Pure: no I/O.

The table (XIMSS letter, meaning, IMAP letters):

| XIMSS | right                                    | IMAP (RFC 4314)   |
| ----- | ---------------------------------------- | ----------------- |
| l     | lookup: the mailbox is listed            | l                 |
| r     | read: open (select) the mailbox          | r                 |
| s     | keep the seen flag                       | s                 |
| w     | write the other flags                    | w                 |
| d     | delete messages: mark deleted, expunge   | t and e           |
| i     | insert (append, copy into)               | i                 |
| p     | post (submit to the mailbox address)     | p                 |
| c     | create sub-mailboxes                     | k                 |
| x     | delete (or rename) the mailbox itself    | x                 |
| a     | administer: read and change the ACL      | a                 |

- `d` is granted only when both `t` and `e` are; setting `d` sets both, removing it removes both.
  A server that shows a lone `t` or `e` (set by another client) shows no `d` here.
- Reading, the RFC 4314 section 2.1.1 legacy letters are understood: `c` as `k`, `d` as `t` and
  `e` (Dovecot lists them beside the new letters: "lrwstipekxacd"). Other letters the server
  lists that XIMSS has no letter for are left out of what clients see.
- Writing, a letter outside the table is refused with BAD_REQUEST ("unknown access right 'q'"),
  never silently dropped, and the whole request changes nothing.
- Letters are shown in one canonical order, `lrswdipcxa`: first the rights over existing messages
  (look up, read, seen, flags, delete), then adding messages (insert, post), then the mailbox
  hierarchy (create, delete mailbox), then administration. The spec's ACL example decides that
  `d` comes before `i` (its listing shows "lrdi" after "lr" plus "di").

Update modes (aclElem `mode`): `add` -> SETACL id +letters, `sub` -> SETACL id -letters, `clear`
-> DELETEACL id, anything else or absent -> SETACL id letters (replace; replacing with no letters
is DELETEACL, as an element without rights grants nothing).

Patterns: an account name without a domain means the logged-in user's domain (IMAP identifiers on
Dovecot are full account names, `user2@example.test`), and names in that domain are shown short
again. `anyone`, `authenticated` and `owner` pass through, as do `$group` names. A `-` prefix names
negative rights (RFC 4314 section 2: rights taken away from that identifier); a `+` prefix means
positive and is dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from bridge.errors import BridgeError, ErrorKind

# XIMSS letter -> the IMAP letters that express it. Its key order is the canonical order.
XIMSS_TO_IMAP: dict[str, str] = {
    "l": "l",
    "r": "r",
    "s": "s",
    "w": "w",
    "d": "te",
    "i": "i",
    "p": "p",
    "c": "k",
    "x": "x",
    "a": "a",
}
CANONICAL_ORDER = "".join(XIMSS_TO_IMAP)
# RFC 4314 section 2.1 order, used for what we send.
IMAP_ORDER = "lrswipkxtea"
# RFC 4314 section 2.1.1 legacy letters a server may still list, and what they stand for.
IMAP_LEGACY: dict[str, str] = {"c": "k", "d": "te"}

NEGATIVE = "-"
POSITIVE = "+"
# Identifiers that are not account names: never given a domain.
SPECIAL_IDENTIFIERS = frozenset({"anyone", "authenticated", "owner"})
GROUP_MARK = "$"
MAX_PATTERN_LENGTH = 256


class AclMode(enum.Enum):
    REPLACE = "replace"
    ADD = "add"
    SUB = "sub"
    CLEAR = "clear"

    @classmethod
    def parse(cls, value: str | None) -> AclMode:
        """The spec: add, sub, clear; any other value or none replaces."""
        for mode in (cls.ADD, cls.SUB, cls.CLEAR):
            if value == mode.value:
                return mode
        return cls.REPLACE


@dataclass(frozen=True, slots=True)
class ImapAclEdit:
    """One IMAP change: DELETEACL when `delete`, else SETACL with `rights` (maybe +/- prefixed)."""

    delete: bool
    rights: str = ""


def parse_rights(letters: str) -> frozenset[str]:
    """XIMSS letters from a client -> a set; BAD_REQUEST names the first unknown letter."""
    rights: set[str] = set()
    for letter in letters.strip():
        if letter not in XIMSS_TO_IMAP:
            raise BridgeError(ErrorKind.BAD_REQUEST, f"unknown access right {letter!r}")
        rights.add(letter)
    return frozenset(rights)


def format_rights(rights: Iterable[str]) -> str:
    """A set of XIMSS letters in canonical order."""
    present = set(rights)
    return "".join(letter for letter in CANONICAL_ORDER if letter in present)


def to_imap(rights: Iterable[str]) -> str:
    """XIMSS letters -> IMAP letters, in RFC 4314 order."""
    imap = {ch for letter in rights for ch in XIMSS_TO_IMAP[letter]}
    return "".join(letter for letter in IMAP_ORDER if letter in imap)


def from_imap(letters: str) -> frozenset[str]:
    """IMAP letters (as MYRIGHTS or GETACL list them) -> the XIMSS letters they grant in full."""
    imap: set[str] = set()
    for letter in letters:
        imap.update(IMAP_LEGACY.get(letter, letter))
    return frozenset(ximss for ximss, needed in XIMSS_TO_IMAP.items() if set(needed) <= imap)


def imap_edit(mode: AclMode, rights: frozenset[str]) -> ImapAclEdit | None:
    """What to send for one aclElem; None when there is nothing to change."""
    if mode is AclMode.CLEAR:
        return ImapAclEdit(delete=True)
    if not rights:
        return ImapAclEdit(delete=True) if mode is AclMode.REPLACE else None
    prefix = {AclMode.ADD: "+", AclMode.SUB: "-"}.get(mode, "")
    return ImapAclEdit(delete=False, rights=prefix + to_imap(rights))


def apply_edit(current: frozenset[str], mode: AclMode, rights: frozenset[str]) -> frozenset[str]:
    """The XIMSS rights an element has after an update (what the server should then list)."""
    if mode is AclMode.ADD:
        return current | rights
    if mode is AclMode.SUB:
        return current - rights
    if mode is AclMode.CLEAR:
        return frozenset()
    return rights


def _domain_of(account: str) -> str:
    return account.rpartition("@")[2]


def to_identifier(pattern: str, account: str) -> str:
    """A client's aclElem pattern -> the IMAP identifier, for the user `account` (name@domain)."""
    text = pattern.strip()
    negative = text.startswith(NEGATIVE)
    if text[:1] in (NEGATIVE, POSITIVE):
        text = text[1:]
    if not text or len(text) > MAX_PATTERN_LENGTH or any(ord(ch) <= 0x20 for ch in text):
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid ACL pattern")
    if text.lower() in SPECIAL_IDENTIFIERS:
        text = text.lower()
    elif not text.startswith(GROUP_MARK) and "@" not in text:
        domain = _domain_of(account)
        if domain:
            text = f"{text}@{domain}"
    return (NEGATIVE if negative else "") + text


def from_identifier(identifier: str, account: str) -> str:
    """An IMAP identifier -> the pattern shown to the client: short names in the user's domain."""
    negative = identifier.startswith(NEGATIVE)
    text = identifier[1:] if negative else identifier
    name, at, domain = text.rpartition("@")
    if at and name and domain.lower() == _domain_of(account).lower():
        text = name
    return (NEGATIVE if negative else "") + text
