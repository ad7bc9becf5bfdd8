"""Decoding one MIME part for download, incrementally: base64 and quoted-printable bodies arrive
in slices, and each slice is decoded as far as it can be without the next one."""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import quopri

_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
# Types a browser would render (and run) from our origin are downloaded as bytes instead.
ACTIVE_TYPES = frozenset(
    {
        "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
        "application/javascript", "text/javascript",
    }
)  # fmt: skip


def part_type(mime_header: bytes) -> tuple[str, str | None]:
    """(Content-Type to send, transfer encoding to undo) from a part's MIME header."""
    headers = _PARSER.parsebytes(mime_header)
    content_type = headers.get_content_type()
    charset = headers.get_content_charset()
    encoding = (headers.get("Content-Transfer-Encoding") or "").strip().lower() or None
    if content_type in ACTIVE_TYPES:
        content_type = "application/octet-stream"
    elif charset and content_type.startswith("text/") and charset.isascii():
        content_type = f"{content_type}; charset={charset}"
    return content_type, encoding if encoding in ("base64", "quoted-printable") else None


class Decoder:
    def __init__(self, encoding: str | None) -> None:
        self._encoding = encoding
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        if self._encoding is None:
            return data
        data = self._pending + data
        if self._encoding == "base64":
            compact = b"".join(data.split())
            usable = len(compact) - len(compact) % 4
            self._pending = compact[usable:]
            return _b64(compact[:usable])
        # quoted-printable: decode whole lines only (a soft break may straddle slices).
        cut = data.rfind(b"\n") + 1
        self._pending = data[cut:]
        return quopri.decodestring(data[:cut])

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        if not rest or self._encoding is None:
            return rest
        if self._encoding == "base64":
            return _b64(rest + b"=" * (-len(rest) % 4))
        return quopri.decodestring(rest)


def _b64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data)
    except binascii.Error:
        return b""
