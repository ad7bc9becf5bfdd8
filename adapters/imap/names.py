"""Modified UTF-7 for IMAP mailbox names (RFC 3501 section 5.1.3).

Why: XIMSS clients speak UTF-8 while IMAP4rev1 servers, Dovecot included unless UTF8=ACCEPT
is enabled, name mailboxes in this 7-bit form, so every name crosses this module at the
adapter boundary. Decoding is strict (canonical form only) because the bridge must send a
name back exactly as the server listed it: a name that does not decode canonically would
not survive ``encode_mutf7(decode_mutf7(name))``, so the caller gets a ValueError and can
keep the raw name instead.
"""

import base64
import binascii
import re

_DIRECT = re.compile(r"[\x20-\x7e]+")
_NOT_DIRECT = re.compile(r"[^\x20-\x7e]+")
_SHIFTED = re.compile(r"&([^-]*)-")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+,]+")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).rstrip(b"=").replace(b"/", b",").decode("ascii")


def _shift(match: re.Match[str]) -> str:
    return "&" + _b64(match.group().encode("utf-16-be")) + "-"


def encode_mutf7(name: str) -> str:
    """``"Entwürfe"`` -> ``"Entw&APw-rfe"``; ``"&"`` -> ``"&-"``.

    Raises ValueError (UnicodeEncodeError) for lone surrogates, which no name can hold.
    """
    return _NOT_DIRECT.sub(_shift, name.replace("&", "&-"))


def _unshift(encoded: str) -> str:
    if not encoded:
        return "&"
    if not _BASE64_CHARS.fullmatch(encoded):
        raise ValueError(f"invalid modified base64 {encoded!r}")
    try:
        raw = base64.b64decode(encoded.replace(",", "/") + "=" * (-len(encoded) % 4))
    except binascii.Error as exc:
        raise ValueError(f"invalid modified base64 {encoded!r}") from exc
    # Re-encoding catches stray padding bits and odd lengths: only one spelling is valid.
    if len(raw) % 2 or _b64(raw) != encoded:
        raise ValueError(f"non-canonical modified base64 {encoded!r}")
    text = raw.decode("utf-16-be")  # UnicodeDecodeError (a ValueError) on lone surrogates
    if _DIRECT.search(text):
        raise ValueError("printable ASCII must not be base64-encoded")
    return text


def decode_mutf7(name: str) -> str:
    """``"Entw&APw-rfe"`` -> ``"Entwürfe"``; raises ValueError on malformed input."""
    if name and not _DIRECT.fullmatch(name):
        raise ValueError("mailbox name holds characters outside printable ASCII")
    out: list[str] = []
    pos = 0
    shifted_until = -1  # end of the last non-empty base64 run
    for match in _SHIFTED.finditer(name):
        if match.group(1) and match.start() == shifted_until:
            raise ValueError("adjacent base64 runs must be one run")
        out.append(_direct(name[pos : match.start()]))
        out.append(_unshift(match.group(1)))
        pos = match.end()
        if match.group(1):
            shifted_until = pos
    out.append(_direct(name[pos:]))
    return "".join(out)


def _direct(text: str) -> str:
    if "&" in text:
        raise ValueError("'&' without a closing '-'")
    return text
