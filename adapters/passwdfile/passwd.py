"""Dovecot passwd-file lines and the account names and values that may go into them (pure).

One line per file, as deploy/devstack.py writes it: `user:password:uid:gid:gecos:home:shell:extra`
with the full address as `user`, `{PLAIN}secret` as password and the real name in `gecos`; empty
uid, gid and home come from the userdb's default_fields. ':' and line breaks cannot be escaped in
this format, so values holding them are refused rather than mangled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from bridge.errors import BridgeError, ErrorKind

# Local parts only: no '/', no leading dot (no "..", no hidden or temporary files), no '@'.
LOCAL_PART = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,63}")
MAX_PASSWORD = 256
MAX_REAL_NAME = 256
MAX_ADDRESS = 254
PLAIN = "{PLAIN}"
_FORBIDDEN = frozenset(":\r\n\0")
_FIELDS = 8  # the last one holds all extra fields


@dataclass(frozen=True, slots=True)
class PasswdEntry:
    user: str
    password: str  # as stored, scheme prefix included
    gecos: str = ""
    # uid, gid (fields 2-3), home, shell (5-6) and the extra fields, kept as they were.
    rest: tuple[str, ...] = ("", "", "", "", "")

    @property
    def plain_password(self) -> str | None:
        """The clear-text password when stored as {PLAIN} (or with no scheme: the passdb's
        scheme=PLAIN default); None for hashes."""
        if self.password.upper().startswith(PLAIN):
            return self.password[len(PLAIN) :]
        if self.password.startswith("{"):
            return None
        return self.password

    def with_password(self, password: str) -> PasswdEntry:
        return replace(self, password=PLAIN + password)


def local_part(account: str, domain: str) -> str:
    """The validated local part of `account` (`name@domain` or a bare name)."""
    name, at, account_domain = account.strip().lower().rpartition("@")
    if not at:
        name, account_domain = account_domain, domain.lower()
    if account_domain != domain.lower():
        raise BridgeError(ErrorKind.BAD_REQUEST, "the account is not in this domain")
    if not LOCAL_PART.fullmatch(name) or name.endswith(".") or ".." in name:
        raise BridgeError(
            ErrorKind.BAD_REQUEST,
            "account names are 1-64 of a-z 0-9 . _ - (no leading, trailing or double dot)",
        )
    return name


def check_password(password: str) -> str:
    if not password or len(password) > MAX_PASSWORD or _FORBIDDEN & set(password):
        raise BridgeError(
            ErrorKind.BAD_REQUEST, f"passwords are 1-{MAX_PASSWORD} characters without ':'"
        )
    return password


def check_real_name(real_name: str) -> str:
    if len(real_name) > MAX_REAL_NAME or _FORBIDDEN & set(real_name):
        raise BridgeError(ErrorKind.BAD_REQUEST, "the real name may not hold ':' or line breaks")
    return real_name.strip()


def check_recovery(address: str) -> str:
    """A plausible mail address (ASCII, one '@', no spaces); "" stays "" (no address)."""
    address = address.strip()
    if not address:
        return ""
    local, at, domain = address.rpartition("@")
    printable = all(33 <= ord(c) < 127 for c in address)
    if not at or not local or "." not in domain or len(address) > MAX_ADDRESS or not printable:
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid recovery e-mail address")
    if any(c in address for c in ':<>,;"\\'):
        raise BridgeError(ErrorKind.BAD_REQUEST, "invalid recovery e-mail address")
    return address


def format_entry(entry: PasswdEntry) -> str:
    fields = (entry.user, entry.password, *entry.rest[:2], entry.gecos, *entry.rest[2:])
    return ":".join(fields) + "\n"


def parse_entry(text: str) -> PasswdEntry:
    """The first non-comment line of a passwd-file."""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(":", _FIELDS - 1)
        fields += [""] * (_FIELDS - len(fields))
        user, password, uid, gid, gecos, home, shell, *extra = fields
        return PasswdEntry(user, password, gecos, (uid, gid, home, shell, *extra))
    raise ValueError("no entry in the passwd-file")


def new_entry(address: str, password: str, real_name: str) -> PasswdEntry:
    return PasswdEntry(address, PLAIN + password, real_name, ("", "", "", "", ""))
