"""XMAP files as IMAP messages (DESIGN.md section 6): the mail server stays the only storage.

A file `Reports/q1.pdf` is a one-part message in the mailbox `Reports`:

    Subject: q1.pdf
    X-XMAP-File: q1.pdf                 (percent-encoded UTF-8: ASCII only, exact to search for)
    X-XMAP-File-Length: 48213
    Content-Type: application/pdf; name="q1.pdf"
    Content-Disposition: attachment; filename="q1.pdf"
    Content-Transfer-Encoding: base64

    <the bytes, base64: IMAP APPEND cannot carry zero bytes without BINARY>

Names: xmap-0.90.txt line 41 says a file's Name "is the full path of the file": the folder's full
path, `/`, the file's own name. NEWFILEUPLOAD (line 126) gives both Name and TargetFolder: Name
is either that full path (inside TargetFolder) or the bare file name. A file name is at most
`MAX_NAME_BYTES` bytes of UTF-8 (so its header line stays within RFC 5322's 998 characters) and
holds no `/`.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
import mimetypes
import secrets
import unicodedata
import urllib.parse
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import format_datetime

from bridge.errors import BridgeError, ErrorKind

# The IMAP keyword every stored file carries. A header alone would not do: anyone can send the
# user a mail with an X-XMAP-File header, and it would pass for (or shadow) the user's own file.
FILE_KEYWORD = "$XMAPFile"
FILE_FLAGS = ("\\Seen", FILE_KEYWORD)
FILE_FIELD = "X-XMAP-File"
LENGTH_FIELD = "X-XMAP-File-Length"
MAX_NAME_BYTES = 255
DEFAULT_TYPE = "application/octet-stream"
_POLICY = email.policy.SMTP.clone(max_line_length=998)
# Control characters, line and paragraph separators and lone surrogates: no header (Subject,
# filename) can carry them, and the email package refuses line breaks outright.
_UNFIT = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _bad(text: str) -> BridgeError:
    return BridgeError(ErrorKind.BAD_REQUEST, text)


def check_name(name: str) -> str:
    if not name or name in (".", ".."):
        raise _bad("a file needs a name")
    if "/" in name:
        raise _bad("a file name holds no '/'")
    if any(unicodedata.category(char) in _UNFIT for char in name):
        raise _bad("a file name holds no control characters or line breaks")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise _bad(f"a file name is at most {MAX_NAME_BYTES} bytes")
    return name


def split_path(path: str) -> tuple[str, str]:
    """`Folder/Sub/name.txt` -> (`Folder/Sub`, `name.txt`)."""
    folder, slash, name = path.rpartition("/")
    if not slash or not folder:
        raise _bad("a file's Name is its full path: folder/name")
    return folder, check_name(name)


def upload_path(name: str, target_folder: str) -> str:
    """NEWFILEUPLOAD's full path from its Name (full path, or a bare name) and TargetFolder."""
    folder = target_folder.rstrip("/")
    if not folder:
        raise _bad("TargetFolder is not a folder")
    prefix = folder + "/"
    if name.startswith(prefix):
        return prefix + check_name(name[len(prefix) :])
    if "/" in name:
        raise _bad("Name is not inside TargetFolder")
    return prefix + check_name(name)


def encode_name(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def name_of(headers: Mapping[str, str]) -> str | None:
    """The file name a stored message carries; None for a message that is not a file."""
    raw = headers.get(FILE_FIELD)
    if raw is None:
        return None
    name = urllib.parse.unquote(raw.strip(), errors="replace")
    return name or None


def length_of(headers: Mapping[str, str], fallback: int) -> int:
    """The byte count compose wrote: plain ASCII digits (int() would also take "-5", "1_000"
    and other scripts' digits), else `fallback`."""
    raw = headers.get(LENGTH_FIELD, "").strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= 19:
        return int(raw)
    return fallback


def content_type(name: str) -> str:
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    # A compressed file's type would describe what is inside: its bytes are the archive.
    return guessed if guessed and not encoding else DEFAULT_TYPE


def compose(name: str, data: bytes, *, owner: str, when: dt.datetime | None = None) -> bytes:
    """The message holding a file (see the module text)."""
    moment = when or dt.datetime.now(dt.UTC)
    message = EmailMessage(policy=_POLICY)
    message["From"] = owner
    message["Date"] = format_datetime(moment)
    message["Subject"] = name
    message["Message-ID"] = f"<xmap-file.{secrets.token_hex(12)}@{owner.rpartition('@')[2]}>"
    message[FILE_FIELD] = encode_name(name)
    message[LENGTH_FIELD] = str(len(data))
    maintype, _, subtype = content_type(name).partition("/")
    message.set_content(
        data, maintype=maintype, subtype=subtype, cte="base64",
        disposition="attachment", filename=name,
    )  # fmt: skip
    return message.as_bytes()


def stored_size(length: int) -> int:
    """A bound on the stored message's size for a file of `length` bytes: base64 in lines of 76
    characters and CRLF, and a header of at most a few kilobytes."""
    encoded = (length + 2) // 3 * 4
    return encoded + (encoded + 75) // 76 * 2 + 8192


def decode_body(body: bytes) -> bytes:
    """The file's bytes from its stored (base64) body."""
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError as exc:
        raise BridgeError(ErrorKind.BACKEND_REFUSED, "the stored file is damaged") from exc
