"""HTTP Digest for SIP (RFC 2617, RFC 7616, RFC 8760), sans-IO.

`DigestAuth` keeps, per realm, the last challenge and its nonce count, so later requests carry
credentials pre-emptively (nc incremented, fresh cnonce) until the server answers stale=true or
issues a new nonce. A challenge that comes back for a nonce we already answered without stale
means the password is wrong: `respond` returns None and the caller reports AUTH_FAILED.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.sip.headers import SipParseError, is_token, quote, split_top_level, unquote

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
    "SHA-512-256": lambda data: hashlib.new("sha512_256", data).hexdigest(),
}
# Which header carries the answer to which challenge (RFC 3261 section 22.2 and 22.3).
ANSWER_HEADER: dict[str, str] = {
    "WWW-Authenticate": "Authorization",
    "Proxy-Authenticate": "Proxy-Authorization",
}
CHALLENGE_STATUS: dict[int, str] = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}
CNONCE_BYTES = 8


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    header: str = "WWW-Authenticate"

    @classmethod
    def parse(cls, text: str, header: str = "WWW-Authenticate") -> Challenge:
        scheme, _, rest = text.strip().partition(" ")
        params: dict[str, str] = {}
        for part in split_top_level(rest, ","):
            if not part:
                continue
            name, eq, value = part.partition("=")
            name = name.strip().lower()
            if not eq or not is_token(name):
                raise SipParseError("bad auth parameter")
            params[name] = unquote(value)
        if "realm" not in params or "nonce" not in params:
            raise SipParseError("challenge without realm or nonce")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            scheme=scheme,
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=params.get("algorithm", "MD5").upper(),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
            header=header,
        )

    @property
    def supported(self) -> bool:
        base = self.algorithm.removesuffix("-SESS")
        return self.scheme.lower() == "digest" and base in _HASHES


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def digest_response(
    challenge: Challenge,
    credentials: Credentials,
    method: str,
    uri: str,
    *,
    nc: int,
    cnonce: str,
    body: bytes = b"",
) -> str:
    """The Authorization (or Proxy-Authorization) header value for one request."""
    base = challenge.algorithm.removesuffix("-SESS")
    digest = _HASHES[base]
    qop = _pick_qop(challenge.qop)
    ha1 = digest(f"{credentials.username}:{challenge.realm}:{credentials.password}".encode())
    if challenge.algorithm.endswith("-SESS"):
        ha1 = digest(f"{ha1}:{challenge.nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + digest(body)
    ha2 = digest(a2.encode())
    nc_text = f"{nc:08x}"
    if qop:
        answer = digest(f"{ha1}:{challenge.nonce}:{nc_text}:{cnonce}:{qop}:{ha2}".encode())
    else:
        answer = digest(f"{ha1}:{challenge.nonce}:{ha2}".encode())
    parts = [
        f"username={quote(credentials.username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(answer)}",
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote(cnonce)}"]
    return "Digest " + ", ".join(parts)


def _pick_qop(offered: tuple[str, ...]) -> str | None:
    if not offered:
        return None
    if "auth" in offered:
        return "auth"
    return "auth-int" if "auth-int" in offered else None


@dataclass(slots=True)
class _RealmState:
    challenge: Challenge
    nc: int = 0
    answered: bool = False  # a request carried credentials for this nonce


class DigestAuth:
    """The credentials and nonce state of one user agent, for every realm it meets."""

    def __init__(self, credentials: Credentials, cnonce: Callable[[], str] | None = None) -> None:
        self._credentials = credentials
        self._cnonce = cnonce or (lambda: secrets.token_hex(CNONCE_BYTES))
        self._realms: dict[tuple[str, str], _RealmState] = {}

    def accept(self, challenges: list[Challenge]) -> bool:
        """Take the challenges of a 401/407; False when none can be answered or a known nonce
        was refused without stale=true (the credentials are wrong)."""
        usable = [
            c for c in challenges if c.supported and (not c.qop or _pick_qop(c.qop) is not None)
        ]
        if not usable:
            return False
        progress = False
        for challenge in usable:
            key = (challenge.header, challenge.realm)
            old = self._realms.get(key)
            if (
                old is not None
                and old.answered
                and old.challenge.nonce == challenge.nonce
                and not challenge.stale
            ):
                continue
            self._realms[key] = _RealmState(challenge)
            progress = True
        return progress

    def forget(self) -> None:
        """Drop every nonce (after a server restart, nonces of the old process are void)."""
        self._realms.clear()

    def headers_for(self, method: str, uri: str, body: bytes = b"") -> list[tuple[str, str]]:
        """Credential headers for a request, from every known challenge (nc incremented)."""
        out: list[tuple[str, str]] = []
        for (header, _realm), state in self._realms.items():
            state.nc += 1
            state.answered = True
            value = digest_response(
                state.challenge, self._credentials, method, uri,
                nc=state.nc, cnonce=self._cnonce(), body=body,
            )  # fmt: skip
            out.append((ANSWER_HEADER[header], value))
        return out


def challenges_of(status: int, headers_lines: list[str]) -> list[Challenge]:
    """Parse the challenge lines of a 401 or 407 (malformed ones are skipped)."""
    header = CHALLENGE_STATUS.get(status)
    if header is None:
        return []
    out: list[Challenge] = []
    for line in headers_lines:
        try:
            out.append(Challenge.parse(line, header))
        except SipParseError:
            continue
    return out
