"""The IMAP response vocabulary: the values and responses the parser produces and the client
routes. Kept apart from the parser so each stays small; `wire.py` re-exports both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


class Atom(str):
    """An IMAP atom, number or flag as text: ``Atom("FLAGS")``, ``Atom(r"\\Seen")``, ``Atom("12")``.

    Kept distinct from ``bytes`` (quoted strings and literals) because meaning can hang on
    the wire form: the atom ``NIL`` parses to None while the string ``"NIL"`` is ``b"NIL"``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


NIL = None

# A parsed IMAP value: atom, string (quoted or literal, as raw bytes), NIL, or parenthesised list.
Value: TypeAlias = Atom | bytes | list["Value"] | None


class ProtocolError(Exception):
    """The server sent data that cannot be framed or exceeds a limit; ``reason`` is short."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """A bracketed response code such as ``[UIDNEXT 5]``.

    Codes listed in ``STRUCTURED_CODES`` have their arguments parsed as values; any other
    code keeps its argument text raw as a single ``Atom`` (or ``[]`` when it has none),
    because its grammar is unknown (``[REFERRAL imap://...]``, ``[BADURL ...]``).
    """

    name: str
    args: list[Value]


@dataclass(frozen=True, slots=True)
class Tagged:
    """Completion of a command: ``A1 OK [READ-WRITE] done``."""

    tag: str
    status: str
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Untagged:
    """Any ``*`` response.

    Status responses (OK, NO, BAD, BYE, PREAUTH) fill ``code`` and ``text`` and leave
    ``values`` empty. Data responses leave ``code`` None and ``text`` empty and put everything
    after the kind in ``values``: ``* 12 FETCH (UID 40)`` gives ``number=12``, ``kind="FETCH"``,
    ``values=[[Atom("UID"), Atom("40")]]``. Mailbox names and other astrings arrive as
    ``bytes`` when the server quoted them and as ``Atom`` when it did not (``* LIST () "/"
    INBOX``); consumers must accept both. FETCH section items such as
    ``BODY[HEADER.FIELDS (DATE)]<0>`` are one ``Atom`` followed by their value.
    """

    kind: str
    number: int | None
    code: ResponseCode | None
    text: str
    values: list[Value]


@dataclass(frozen=True, slots=True)
class Continuation:
    """``+ text``: go ahead with a literal, or an AUTHENTICATE challenge (base64 text)."""

    text: str


Response: TypeAlias = Tagged | Untagged | Continuation
