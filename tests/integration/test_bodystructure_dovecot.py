"""BODYSTRUCTURE from the real Dovecot, read by parse_bodystructure, checked against the bytes.

Awkward messages are APPENDed; for every leaf of the parsed tree, `fetch_section(uid,
section)` must give exactly the body Python's email parser finds at that place (numbered here
independently, by RFC 3501 section 6.4.5), `section.MIME` its header, and the structure's
size and line count must describe those bytes. Where Dovecot and Python's parser disagree on
broken MIME, the test pins what Dovecot does.
"""

from __future__ import annotations

import base64
import email
import email.message
import email.parser
import email.policy
import quopri
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from adapters.imap.bodystructure import parse_bodystructure
from adapters.imap.client import ImapClient
from adapters.imap.mailbox import ImapOpenMailbox
from adapters.imap.wire import Literal, Raw
from adapters.protocols import MimePart
from tests.conftest import devstack


def _mail(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


NESTED = _mail("""\
From: a@example.test
Subject: nested
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

plain body
--inner
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>html =C3=A9</p>
--inner--
--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename=fwd.eml

From: b@example.test
Subject: forwarded
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="enc"

--enc
Content-Type: text/plain

enclosed text
--enc
Content-Type: application/pdf; name="a.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--enc
Content-Type: message/rfc822

From: d@example.test
Subject: twice enclosed

deep
--enc--
--outer
Content-Type: message/rfc822

From: c@example.test
Subject: single

single enclosed
--outer
Content-Type: application/octet-stream
Content-Disposition: attachment;
 filename*0*=utf-8''%E2%82%AC%20long%20;
 filename*1*=name%C3%A9;
 filename*2=".pdf"
Content-Language: en, de
Content-Location: http://x.test/a
Content-ID: <id1@x>
Content-Description: =?utf-8?q?caf=C3=A9?=
Content-Transfer-Encoding: base64

AAEC
--outer
Content-Type: image/png; name="=?UTF-8?B?w6lsw6k=?= =?UTF-8?B?LnBuZw==?="
Content-Disposition: inline; filename*=iso-8859-1'fr'%E9t%E9.png
Content-Transfer-Encoding: base64

iVBORw0K
--outer
Content-Type: Text/PLAIN; CharSet="X-Unknown-CS"; Name*=x-unknown'en'%E9t%E9
Content-Transfer-Encoding: 8BIT
Content-Disposition: ATTACHMENT; FileName="up.txt"

line one
line two
--outer--
epilogue
""")

EIGHT_BIT = (
    _mail("""\
From: José <j@example.test>
Subject: café
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

café
--b
Content-Type: application/pdf; name="résumé.pdf"
Content-Disposition: attachment; filename="résumé.pdf"

xx
--b
""")
    + b'Content-Type: application/pdf; name="r\xe9sum\xe9-latin1.pdf"\r\n\r\nyy\r\n--b--\r\n'
)

MESSAGES: dict[str, bytes] = {
    "nested": NESTED,
    "eight_bit": EIGHT_BIT,
    "single": _mail("""\
From: a@example.test
Subject: one part
Content-Type: text/plain; charset=x-unknown-cs

hello
world
"""),
    "no_mime": _mail("From: a@example.test\nSubject: no MIME\n\nhello\n"),
    "rfc822_only": _mail("""\
From: a@example.test
Content-Type: message/rfc822

From: b@example.test
Content-Type: multipart/mixed; boundary=q

--q

one
--q

two
--q--
"""),
    "rfc822_single": _mail("""\
From: a@example.test
Content-Type: message/rfc822

From: b@example.test

body
"""),
    "unterminated": _mail("""\
From: a@example.test
Content-Type: multipart/mixed; boundary=x

--x
Content-Type: text/plain

hi
--x
Content-Type: text/html

<b>cut""").removesuffix(b"\r\n"),
    "continuation_gap": _mail("""\
From: a@example.test
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/x-gap; name*0*=utf-8''%E2%82%AC; name*2="gap"

x
--b--
"""),
    "no_boundary": _mail("""\
From: a@example.test
Content-Type: multipart/mixed

--x
Content-Type: text/plain

hi
--x--
"""),
    "wrong_boundary": _mail("""\
From: a@example.test
Content-Type: multipart/mixed; boundary=zzz

--x
Content-Type: text/plain

hi
--x--
"""),
    "no_parts": _mail("""\
From: a@example.test
Content-Type: multipart/mixed; boundary=b

no parts here
"""),
    "global": _mail("""\
From: a@example.test
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: message/global

From: b@example.test

body
--b--
"""),
}

# Where Dovecot and Python's email parser read the MIME alike: checked part by part.
AGREED = ["nested", "eight_bit", "single", "no_mime", "rfc822_only", "rfc822_single",
          "unterminated", "continuation_gap"]  # fmt: skip
BROKEN_MULTIPART = ["no_boundary", "wrong_boundary", "no_parts"]

# The numbering, spelled out: (section, type) in tree order. A message's top-level multipart
# has the message's section ("" or its message/rfc822 part's), a single-part body section.1.
SHAPES: dict[str, list[tuple[str, str]]] = {
    "nested": [
        ("", "multipart/mixed"),
        ("1", "multipart/alternative"),
        ("1.1", "text/plain"),
        ("1.2", "text/html"),
        ("2", "message/rfc822"),
        ("2", "multipart/mixed"),
        ("2.1", "text/plain"),
        ("2.2", "application/pdf"),
        ("2.3", "message/rfc822"),
        ("2.3.1", "text/plain"),
        ("3", "message/rfc822"),
        ("3.1", "text/plain"),
        ("4", "application/octet-stream"),
        ("5", "image/png"),
        ("6", "text/plain"),
    ],
    "single": [("1", "text/plain")],
    "no_mime": [("1", "text/plain")],
    "rfc822_only": [
        ("1", "message/rfc822"),
        ("1", "multipart/mixed"),
        ("1.1", "text/plain"),
        ("1.2", "text/plain"),
    ],
    "rfc822_single": [("1", "message/rfc822"), ("1.1", "text/plain")],
    "global": [("", "multipart/mixed"), ("1", "message/global")],
}


@dataclass
class Mailbox:
    client: ImapClient
    box: ImapOpenMailbox
    uids: dict[str, int]
    structures: dict[str, MimePart]


@pytest.fixture(scope="module")
async def mailbox(stack: devstack.DevStack) -> AsyncIterator[Mailbox]:
    account = stack.new_account("bodystructure")
    client = await ImapClient.connect("127.0.0.1", stack.ports.imap)
    try:
        await client.login(account.address, account.password)
        uids: dict[str, int] = {}
        for name, message in MESSAGES.items():
            result = await client.execute("APPEND", "INBOX", Literal(message))
            code = result.tagged.code
            assert code is not None and code.name == "APPENDUID"
            uids[name] = int(str(code.args[1]))
        box = await ImapOpenMailbox.open("INBOX", "INBOX", client, False, lambda n: n, None)
        structures = {name: await _bodystructure(client, uid) for name, uid in uids.items()}
        yield Mailbox(client, box, uids, structures)
    finally:
        await client.close()


async def _bodystructure(client: ImapClient, uid: int) -> MimePart:
    result = await client.execute("UID FETCH", Raw(str(uid)), Raw("(UID BODYSTRUCTURE)"),
                                  wants=("FETCH",))  # fmt: skip
    for item in result.of("FETCH"):
        pairs = item.values[0] if item.values else None
        assert isinstance(pairs, list)
        for key, value in zip(pairs[::2], pairs[1::2], strict=True):
            if str(key).upper() == "BODYSTRUCTURE":
                return parse_bodystructure(value)
    raise AssertionError(f"no BODYSTRUCTURE for UID {uid}")


async def _fetch(mailbox: Mailbox, name: str, section: str) -> bytes:
    # One at a time: the client hands every FETCH response to the oldest FETCH in flight, so
    # pipelined fetch_section calls on one connection lose their answers.
    data = await mailbox.box.fetch_section(mailbox.uids[name], section)
    assert data is not None, (name, section)
    return data


def walk(part: MimePart) -> Iterator[MimePart]:
    yield part
    for child in part.children:
        yield from walk(child)


def by_section(tree: MimePart) -> dict[str, MimePart]:
    """Parts by section; where a message/rfc822 part and its enclosed multipart share one,
    the message/rfc822 part."""
    parts: dict[str, MimePart] = {}
    for part in walk(tree):
        parts.setdefault(part.section, part)
    return parts


# -- Python's reading of the same bytes, numbered by RFC 3501 section 6.4.5 ------------------


def _join(section: str, number: int) -> str:
    return f"{section}.{number}" if section else str(number)


def python_leaves(
    message: email.message.Message, section: str
) -> Iterator[tuple[str, email.message.Message]]:
    """(section, part) of every leaf of the message at `section`."""
    if message.get_content_maintype() == "multipart" and message.is_multipart():
        for number, part in enumerate(message.get_payload(), 1):
            yield from _python_part(part, _join(section, number))
    else:
        yield from _python_part(message, _join(section, 1))


def _python_part(
    part: email.message.Message, section: str
) -> Iterator[tuple[str, email.message.Message]]:
    if part.get_content_type() == "message/rfc822":
        enclosed = part.get_payload(0)
        assert isinstance(enclosed, email.message.Message)
        yield from python_leaves(enclosed, section)
    elif part.get_content_maintype() == "multipart" and part.is_multipart():
        for number, sub in enumerate(part.get_payload(), 1):
            yield from _python_part(sub, _join(section, number))
    else:
        yield section, part


def _headers(data: bytes) -> list[tuple[str, str]]:
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    return parser.parsebytes(data).items()


def _transfer_decoded(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(data)
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHAPES))
async def test_sections_are_numbered_as_rfc3501_says(mailbox: Mailbox, name: str) -> None:
    tree = mailbox.structures[name]
    assert [(p.section, f"{p.type}/{p.subtype}") for p in walk(tree)] == SHAPES[name]


@pytest.mark.parametrize("name", AGREED)
async def test_every_leaf_fetches_its_body_and_header(mailbox: Mailbox, name: str) -> None:
    tree = mailbox.structures[name]
    python = email.message_from_bytes(MESSAGES[name], policy=email.policy.compat32)
    expected = dict(python_leaves(python, ""))
    leaves = {p.section: p for p in walk(tree) if not p.children}
    assert sorted(leaves) == sorted(expected)
    for section, leaf in leaves.items():
        body = await _fetch(mailbox, name, section)
        header = await _fetch(mailbox, name, f"{section}.MIME")
        part = expected[section]
        assert leaf.size == len(body), section
        assert _transfer_decoded(body, leaf.encoding) == part.get_payload(decode=True), section
        assert _headers(header) == part.items(), section
        assert leaf.type == part.get_content_maintype(), section
        assert leaf.subtype == part.get_content_subtype(), section
        if leaf.type == "text":
            # Dovecot counts line feeds: a last line before a boundary has none.
            assert leaf.lines == body.count(b"\n"), section


@pytest.mark.parametrize("name", AGREED)
async def test_messages_and_multiparts_fetch_what_their_section_names(
    mailbox: Mailbox, name: str
) -> None:
    tree = mailbox.structures[name]
    if tree.section == "":
        assert await _fetch(mailbox, name, "") == MESSAGES[name]
    for part in walk(tree):
        if part.type == "message" and part.children:
            whole = await _fetch(mailbox, name, part.section)
            header = await _fetch(mailbox, name, f"{part.section}.HEADER")
            text = await _fetch(mailbox, name, f"{part.section}.TEXT")
            assert part.size == len(whole) == len(header) + len(text)
            assert whole == header + text
            (child,) = part.children
            if child.type == "multipart":  # the enclosed message's top level: same section
                assert child.section == part.section
            else:
                assert child.section == f"{part.section}.1"
                assert await _fetch(mailbox, name, child.section) == text
        elif part.type == "multipart" and part.section and part.params.get("boundary"):
            body = await _fetch(mailbox, name, part.section)
            boundary = part.params["boundary"].encode()
            assert body.startswith(b"--" + boundary) or b"\r\n--" + boundary in body


async def test_parameters_are_decoded(mailbox: Mailbox) -> None:
    parts = by_section(mailbox.structures["nested"])
    attachment = parts["4"]
    assert attachment.disposition == "attachment"
    # Dovecot joins the RFC 2231 continuations into one filename*; the plain ".pdf" too.
    assert attachment.disposition_params == {"filename": "€ long nameé.pdf"}
    assert attachment.description == "café"
    assert attachment.content_id == "<id1@x>"
    assert attachment.language == ("en", "de")
    assert attachment.location == "http://x.test/a"
    assert attachment.encoding == "base64"
    image = parts["5"]
    assert image.params == {"name": "élé.png"}  # two RFC 2047 words, one split name
    assert (image.disposition, image.disposition_params) == ("inline", {"filename": "été.png"})
    shouted = parts["6"]
    assert (shouted.type, shouted.subtype, shouted.encoding) == ("text", "plain", "8bit")
    # An unknown charset: the bytes are not UTF-8, so Latin-1.
    assert shouted.params == {"charset": "X-Unknown-CS", "name": "été"}
    assert (shouted.disposition, shouted.disposition_params) == (
        "attachment",
        {"filename": "up.txt"},
    )
    assert parts["2"].disposition_params == {"filename": "fwd.eml"}
    assert parts["2.2"].params == {"name": "a.pdf"}
    assert parts[""].params == {"boundary": "outer"}
    assert parts["1"].params == {"boundary": "inner"}


async def test_eight_bit_headers_arrive_as_literals_and_decode(mailbox: Mailbox) -> None:
    parts = by_section(mailbox.structures["eight_bit"])
    assert parts["2"].params == {"name": "résumé.pdf"}
    assert parts["2"].disposition_params == {"filename": "résumé.pdf"}
    assert parts["3"].params == {"name": "résumé-latin1.pdf"}
    assert parts["1"].encoding == "8bit"


async def test_continuation_with_a_gap_is_joined_from_the_segments_dovecot_passes_on(
    mailbox: Mailbox,
) -> None:
    (part,) = mailbox.structures["continuation_gap"].children
    assert part.params == {"name": "€gap"}


@pytest.mark.parametrize("name", BROKEN_MULTIPART)
async def test_multipart_without_parts_gets_one_empty_text_part(
    mailbox: Mailbox, name: str
) -> None:
    """Dovecot's reading of a multipart without a boundary, with a boundary its body never
    uses, or without any part: one invented, empty text/plain part; the text is in TEXT."""
    tree = mailbox.structures[name]
    assert (tree.section, tree.type, tree.subtype) == ("", "multipart", "mixed")
    (child,) = tree.children
    assert (child.section, child.type, child.subtype, child.size) == ("1", "text", "plain", 0)
    assert await _fetch(mailbox, name, "1") == b""
    body = MESSAGES[name].split(b"\r\n\r\n", 1)[1]
    assert await _fetch(mailbox, name, "TEXT") == body


async def test_message_global_is_a_leaf_in_dovecot(mailbox: Mailbox) -> None:
    (part,) = mailbox.structures["global"].children
    assert (part.type, part.subtype, part.children, part.lines) == ("message", "global", (), None)
    body = await _fetch(mailbox, "global", "1")
    assert body == b"From: b@example.test\r\n\r\nbody"
    assert part.size == len(body)


async def test_single_part_message_header_is_its_part_header(mailbox: Mailbox) -> None:
    (leaf,) = walk(mailbox.structures["single"])
    assert leaf.params == {"charset": "x-unknown-cs"}
    assert (leaf.size, leaf.lines) == (14, 2)
    header = await _fetch(mailbox, "single", "1.MIME")
    assert header == MESSAGES["single"].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
