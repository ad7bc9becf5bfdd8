"""Client-facing mailbox names <-> the IMAP server's names.

Clients see UTF-8 names with `/` between levels and `~account@domain/box` for other users'
mailboxes. The server has a personal namespace (usually no prefix), a hierarchy separator, an
"other users" namespace (`shared/` on our Dovecot), and modified UTF-7 on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.imap.names import decode_mutf7, encode_mutf7
from adapters.imap.wire import Value
from bridge.errors import BridgeError, ErrorKind

CLIENT_SEPARATOR = "/"
OTHER_USER_MARK = "~"


@dataclass(frozen=True, slots=True)
class Namespaces:
    personal_prefix: str = ""
    separator: str = "/"
    # Prefix of the other-users namespace without the user part, e.g. "shared/"; None if absent.
    other_prefix: str | None = None
    other_separator: str = "/"

    @classmethod
    def from_response(cls, values: Sequence[Value]) -> Namespaces:
        """From the NAMESPACE response: (personal) (other users) (shared), each NIL or a list."""

        def first(entry: Value) -> tuple[str, str] | None:
            if not isinstance(entry, list) or not entry or not isinstance(entry[0], list):
                return None
            prefix, sep = entry[0][0], entry[0][1]
            return _text(prefix), _text(sep) if sep is not None else "/"

        personal = first(values[0]) if len(values) > 0 else None
        other = first(values[1]) if len(values) > 1 else None
        return cls(
            personal_prefix=decode_mutf7(personal[0]) if personal else "",
            separator=personal[1] if personal else "/",
            other_prefix=decode_mutf7(other[0]) if other else None,
            other_separator=other[1] if other else "/",
        )

    def to_server(self, name: str, *, own_account: str = "") -> str:
        """A client name (or IMAP-syntax pattern) -> the server's modified UTF-7 name."""
        if name.startswith(OTHER_USER_MARK):
            account, _, rest = name[1:].partition(CLIENT_SEPARATOR)
            if own_account and account.lower() == own_account.lower():
                return self.to_server(rest or "INBOX")
            if self.other_prefix is None:
                raise BridgeError(ErrorKind.NOT_FOUND, "other users' mailboxes are not shared here")
            server = self.other_prefix + account
            if rest:
                server += self.other_separator + self._join(rest, self.other_separator)
            return encode_mutf7(server)
        if name.upper() == "INBOX" or name.upper().startswith("INBOX" + CLIENT_SEPARATOR):
            return encode_mutf7(self._join(name, self.separator))
        return encode_mutf7(self.personal_prefix + self._join(name, self.separator))

    def to_client(self, server_name: str) -> str | None:
        """The server's name -> client form; None for namespace roots clients should not see."""
        name = decode_mutf7(server_name)
        if self.other_prefix is not None and name.startswith(self.other_prefix):
            rest = name[len(self.other_prefix) :]
            if not rest:
                return None
            return OTHER_USER_MARK + rest.replace(self.other_separator, CLIENT_SEPARATOR)
        if self.other_prefix is not None and name == self.other_prefix.rstrip(self.other_separator):
            return None
        if self.personal_prefix and name.startswith(self.personal_prefix):
            name = name[len(self.personal_prefix) :]
        if not name:
            return None
        return name.replace(self.separator, CLIENT_SEPARATOR)

    @staticmethod
    def _join(name: str, separator: str) -> str:
        if separator == CLIENT_SEPARATOR:
            return name
        if separator in name:
            raise BridgeError(ErrorKind.BAD_REQUEST, f"mailbox names may not contain {separator!r}")
        return name.replace(CLIENT_SEPARATOR, separator)


def _text(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
