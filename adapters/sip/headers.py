"""SIP header fields as an immutable, ordered list, with the lexical helpers every header needs.

Names are kept in one canonical spelling (compact forms expanded, known names in RFC case), so
lookups and comparisons never depend on how a peer spelled them. List-valued headers (Via,
Contact, Route...) may arrive as several lines or as one comma-separated line; `values()` gives
the elements either way, splitting only at commas outside quotes and angle brackets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class SipParseError(ValueError):
    """The only error the sans-IO codec raises for bad input."""


# RFC 3261 section 7.3.3 and the IANA registry: one-letter forms.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN = (
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "In-Reply-To",
    "Max-Forwards", "Min-Expires", "MIME-Version", "Organization", "Path", "Priority",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "Reason", "Record-Route",
    "Refer-To", "Referred-By", "Replaces", "Reply-To", "Require", "Retry-After", "Route",
    "Server", "Service-Route", "SIP-ETag", "SIP-If-Match", "Subject", "Subscription-State",
    "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning",
    "WWW-Authenticate", "Session-Expires", "Min-SE", "RSeq", "RAck", "Refer-Sub",
    "Target-Dialog", "Accept-Contact", "Reject-Contact", "Request-Disposition", "Identity",
)  # fmt: skip
_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN}

# Headers whose value is a comma-separated list (RFC 3261 section 7.3.1); the others (Date,
# WWW-Authenticate...) contain commas that do not separate elements.
LIST_HEADERS: frozenset[str] = frozenset(
    {
        "Accept", "Accept-Encoding", "Accept-Language", "Allow", "Allow-Events", "Contact",
        "Content-Encoding", "Path", "Proxy-Require", "Record-Route", "Require", "Route",
        "Service-Route", "Supported", "Unsupported", "Via",
    }
)  # fmt: skip

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


def canonical_name(name: str) -> str:
    lowered = name.strip().lower()
    if len(lowered) == 1 and lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    return _CANONICAL.get(lowered, name.strip())


def is_token(text: str) -> bool:
    return bool(text) and all(char in TOKEN_CHARS for char in text)


def split_top_level(text: str, separator: str) -> list[str]:
    """Split at `separator` outside quoted strings and <...>; elements are stripped."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    angle = 0
    for char in text:
        if quoted:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            continue
        if char == '"':
            quoted = True
        elif char == "<":
            angle += 1
        elif char == ">" and angle:
            angle -= 1
        elif char == separator and not angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if quoted:
        raise SipParseError("unterminated quoted string")
    parts.append("".join(current).strip())
    return parts


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        out: list[str] = []
        chars = iter(text[1:-1])
        for char in chars:
            out.append(next(chars, "") if char == "\\" else char)
        return "".join(out)
    return text


@dataclass(frozen=True, slots=True)
class Params:
    """`;name=value;flag` parameters, in order; names compare case-insensitively. Values are kept
    as sent (a quoted value keeps its quotes) so a header re-serializes byte for byte."""

    items: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Params:
        """Parse the text after the first `;` (a leading `;` is allowed)."""
        text = text.strip()
        if text.startswith(";"):
            text = text[1:]
        if not text:
            return cls()
        items: list[tuple[str, str | None]] = []
        for part in split_top_level(text, ";"):
            name, eq, value = part.partition("=")
            name = name.strip()
            if not is_token(name):
                raise SipParseError("bad parameter name")
            items.append((name, value.strip() if eq else None))
        return cls(tuple(items))

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.items:
            if key.lower() == lowered:
                return value if value is not None else ""
        return default

    def has(self, name: str) -> bool:
        lowered = name.lower()
        return any(key.lower() == lowered for key, _ in self.items)

    def with_(self, name: str, value: str | None) -> Params:
        """This set with `name` replaced (or appended) by `value` (None: a flag)."""
        lowered = name.lower()
        kept = tuple(item for item in self.items if item[0].lower() != lowered)
        return Params((*kept, (name, value)))

    def without(self, name: str) -> Params:
        lowered = name.lower()
        return Params(tuple(item for item in self.items if item[0].lower() != lowered))

    def __str__(self) -> str:
        return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.items)


@dataclass(frozen=True, slots=True)
class Headers:
    """Header fields in wire order as (canonical name, value) pairs."""

    fields: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls(tuple((canonical_name(name), value) for name, value in pairs))

    def get(self, name: str) -> str | None:
        """The first line's value (a list header's first line may hold several elements)."""
        wanted = canonical_name(name).lower()
        for key, value in self.fields:
            if key.lower() == wanted:
                return value
        return None

    def lines(self, name: str) -> list[str]:
        wanted = canonical_name(name).lower()
        return [value for key, value in self.fields if key.lower() == wanted]

    def values(self, name: str) -> list[str]:
        """Every element: list headers split at top-level commas, others one per line."""
        canonical = canonical_name(name)
        lines = self.lines(canonical)
        if canonical not in LIST_HEADERS:
            return lines
        return [item for line in lines for item in split_top_level(line, ",") if item]

    def first(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def add(self, name: str, value: str) -> Headers:
        return Headers((*self.fields, (canonical_name(name), value)))

    def prepend(self, name: str, value: str) -> Headers:
        return Headers(((canonical_name(name), value), *self.fields))

    def without(self, *names: str) -> Headers:
        dropped = {canonical_name(name).lower() for name in names}
        return Headers(tuple(item for item in self.fields if item[0].lower() not in dropped))

    def with_(self, name: str, value: str) -> Headers:
        """Replace every line of `name` by one, where the first stood (else at the end)."""
        canonical = canonical_name(name)
        lowered = canonical.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for key, old in self.fields:
            if key.lower() != lowered:
                out.append((key, old))
            elif not placed:
                out.append((canonical, value))
                placed = True
        if not placed:
            out.append((canonical, value))
        return Headers(tuple(out))

    def replace_values(self, name: str, values: Iterable[str]) -> Headers:
        """Drop every line of `name` and put one line per value where the first stood."""
        canonical = canonical_name(name)
        lowered = canonical.lower()
        new = [(canonical, value) for value in values]
        out: list[tuple[str, str]] = []
        for key, old in self.fields:
            if key.lower() == lowered:
                out.extend(new)
                new = []
            else:
                out.append((key, old))
        out.extend(new)
        return Headers(tuple(out))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)


NO_PARAMS = Params()
NO_HEADERS = Headers()
