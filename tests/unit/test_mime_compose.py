"""Composing messages from XIMSS `<EMail>` XML: the spec's Message Operations examples, parsed back
with Python's `email` package and compared structurally (header values, types and parameters,
part tree, decoded bodies), then the rules the module docstring states, then properties."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from collections.abc import Callable
from email.message import EmailMessage, MIMEPart

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.mime import compose as mc

NOW = dt.datetime(2006, 6, 21, 21, 51, 24, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
HOST = "this.server.dom"
DEAR = "Dear Susan,\n\nI will come to your place tomorrow, thank you for the invitation!\nMary.\n"
DEAR_XML = DEAR.replace("\n", "&#x0A;")
GIF = b"GIF89a\n\x0c\x00" + bytes(range(256)) * 3
PDF = b"%PDF-1.2 \r%\xe2\xe3\xcf\xd3\r\n 8 0 obj\r<<\r/Length 9 0 R\r/Filter /FlateDecode\r>>" * 20
NO_UPLOADS: dict[str, mc.Attachment] = {}


def resolver(table: dict[str, mc.Attachment]) -> Callable[[etree._Element], mc.Attachment]:
    """Uploads by uploadID; copyMIME by "UID/partID" (partID "" for the whole message)."""

    def resolve(elem: etree._Element) -> mc.Attachment:
        if elem.tag == "copyMIME":
            key = f"{elem.get('UID')}/{elem.get('partID') or ''}"
        else:
            key = elem.get("uploadID") or ""
        if key not in table:
            raise BridgeError(ErrorKind.NOT_FOUND, "unknown uploadID")
        return table[key]

    return resolve


def compose(
    document: str,
    table: dict[str, mc.Attachment] = NO_UPLOADS,
    max_bytes: int = 10_000_000,
    *,
    message_id: str | None = None,
    boundary_seed: str | None = None,
    skip_bcc: bool = False,
) -> bytes:
    return mc.compose(
        xml.parse(document.encode()), resolve=resolver(table), hostname=HOST, now=NOW,
        max_bytes=max_bytes, message_id=message_id, boundary_seed=boundary_seed,
        skip_bcc=skip_bcc,
    )  # fmt: skip


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(part: MIMEPart) -> str:
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def field_names(raw: bytes) -> list[str]:
    return [line.split(b":", 1)[0].decode() for line in header_block(raw).split(b"\r\n")
            if line[:1] not in (b" ", b"\t")]  # fmt: skip


def bad(kind: ErrorKind, call: Callable[[], object]) -> BridgeError:
    with pytest.raises(BridgeError) as caught:
        call()
    assert caught.value.kind is kind
    return caught.value


def email_xml(body: str, header: str = "") -> str:
    return f"<EMail>{header}{body}</EMail>"


# --------------------------------------------------------------------------- the spec's examples

SIMPLE = f"""<EMail>
      <From realName="Sender Name">fromName@domain</From><Subject>I'll be there!</Subject>
      <To realName="Recipient Name">toName@domain</To><X-Mailer>SuperClient v7.77</X-Mailer>
      <MIME type="text" subtype="plain">{DEAR_XML}</MIME>
    </EMail>"""


def test_simple_text_append() -> None:
    raw = compose(SIMPLE)
    message = parse(raw)
    assert field_names(raw) == ["From", "Subject", "To", "X-Mailer", "Date", "Message-ID",
                                "MIME-Version", "Content-Type"]  # fmt: skip
    assert b'\r\nFrom: "Sender Name" <fromName@domain>\r\n' in b"\r\n" + raw
    assert b'\r\nTo: "Recipient Name" <toName@domain>\r\n' in raw
    assert b'\r\nContent-Type: text/plain; charset="utf-8"\r\n' in raw
    assert message["From"].addresses[0].display_name == "Sender Name"
    assert message["From"].addresses[0].addr_spec == "fromName@domain"
    assert message["Subject"] == "I'll be there!"
    assert message["X-Mailer"] == "SuperClient v7.77"
    assert message["Date"] == "Wed, 21 Jun 2006 21:51:24 -0800"  # the spec's own value
    assert re.fullmatch(r"<ximss-[0-9a-f]+@this\.server\.dom>", message["Message-ID"])
    assert message.get_content_type() == "text/plain"
    assert message.get_param("charset") == "utf-8"
    assert "Content-Transfer-Encoding" not in message  # ASCII: 7bit, as the spec shows
    assert raw.split(b"\r\n\r\n", 1)[1] == DEAR.replace("\n", "\r\n").encode()
    assert text_of(message) == DEAR
    assert not message.defects


MULTIPART = f"""<EMail>
      <From realName="Sender Name">fromName@domain</From><Subject>Text with attachments</Subject>
      <To realName="Recipient Name">toName@domain</To><X-Mailer>SuperClient v7.77</X-Mailer>
      <MIME type="multipart" subtype="mixed">
        <MIME type="multipart" subtype="alternative">
          <MIME type="text" subtype="plain">{DEAR_XML}</MIME>
          <MIME type="text" subtype="html">&lt;html&gt;&lt;body&gt;&lt;i&gt;Dear Susan,&lt;/i&gt;&lt;p&gt;I will come to your place tomorrow, thank you for the invitation!&lt;p&gt;&lt;i&gt;Mary.&lt;/i&gt;</MIME>
        </MIME>
        <MIME uploadID="att01" />
        <MIME uploadID="att02" type="application" subtype="pdf" />
      </MIME>
    </EMail>"""
UPLOADS = {
    "att01": mc.Attachment(GIF, "image/gif", "test.gif"),
    "att02": mc.Attachment(PDF, "application/octet-stream", "sample.pdf"),
}


def test_multipart_with_two_uploads() -> None:
    raw = compose(MULTIPART, UPLOADS)
    message = parse(raw)
    assert message["Subject"] == "Text with attachments"
    assert message.get_content_type() == "multipart/mixed"
    alternative, gif, pdf = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html = alternative.iter_parts()
    assert (plain.get_content_type(), plain.get_param("charset")) == ("text/plain", "utf-8")
    assert text_of(plain) == DEAR
    assert html.get_content_type() == "text/html"
    assert text_of(html) == ("<html><body><i>Dear Susan,</i><p>I will come to your place "
                             "tomorrow, thank you for the invitation!<p><i>Mary.</i>")  # fmt: skip
    # Type from the upload's Content-Type; name and attachment filename from its file name.
    assert gif.get_content_type() == "image/gif"
    assert gif.get_param("name") == "test.gif"
    assert gif.get_content_disposition() == "attachment"
    assert gif.get_filename() == "test.gif"
    assert gif["Content-Transfer-Encoding"] == "base64"
    assert gif.get_content() == GIF
    # Explicit type and subtype win over the upload's.
    assert pdf.get_content_type() == "application/pdf"
    assert (pdf.get_param("name"), pdf.get_filename()) == ("sample.pdf", "sample.pdf")
    assert pdf.get_content() == PDF
    outer, inner = message.get_boundary(), alternative.get_boundary()
    assert outer and inner and outer != inner
    assert f'boundary="{outer}"'.encode() in raw  # quoted, as the spec shows
    assert not message.defects and all(not part.defects for part in message.walk())


def test_copy_mime_parts_are_embedded_as_is() -> None:
    photo = (b'Content-Type: image/jpeg; name="reef.jpg"\r\nContent-Transfer-Encoding: base64\r\n'
             b'Content-Disposition: attachment; filename="reef.jpg"\r\n\r\n/9j/4AAQSkZJRgABAQ==\r\n')  # fmt: skip
    note = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nDepth 30m.\r\n"
    document = """<EMail>
      <From realName="Sender Name">fromName@domain</From>
      <Subject>Vacation Pictures</Subject>
      <MIME type="multipart" subtype="mixed">
        <MIME type="text" subtype="plain">The first part of the underwater shots.</MIME>
        <copyMIME folder="INBOX" UID="156" partID="3"/>
        <copyMIME folder="INBOX" UID="156" partID="4"/>
      </MIME>
    </EMail>"""
    table = {"156/3": mc.Attachment(photo, entity=True), "156/4": mc.Attachment(note, entity=True)}
    raw = compose(document, table)
    assert photo in raw and note in raw
    text, jpeg, copied_note = parse(raw).iter_parts()
    assert text_of(text) == "The first part of the underwater shots."
    assert jpeg.get_content_type() == "image/jpeg"
    assert jpeg.get_filename() == "reef.jpg"
    assert jpeg.get_content() == b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01"
    assert text_of(copied_note) == "Depth 30m.\n"


def test_file_storage_is_not_available() -> None:
    document = """<EMail><From realName="Sender Name">fromName@domain</From>
      <Subject>Vacation Pictures</Subject>
      <MIME type="multipart" subtype="mixed">
        <MIME type="text" subtype="plain">Atatched please find the images I have stored as files.</MIME>
        <MIME type="image" subtype="jpeg" fileName="private/MyFile.jpg" disposition-filename="photo.jpg" />
      </MIME></EMail>"""
    error = bad(ErrorKind.NOT_SUPPORTED, lambda: compose(document))
    assert error.detail == "file storage is not available"


def test_disposition_none_writes_no_disposition_and_no_name() -> None:
    raw = compose(email_xml('<MIME uploadID="att01" disposition="none"/>'), UPLOADS)
    message = parse(raw)
    assert message.get_content_type() == "image/gif"
    assert "Content-Disposition" not in message
    assert message.get_param("name") is None
    assert message.get_content() == GIF


def test_flowed_text_matches_the_spec_byte_for_byte() -> None:
    document = """<EMail>
      <Subject>Test text</Subject>
      <MIME type="text" subtype="plain" format="flowed">This is a very long long long long long long long long long long superlong long long long long long long line, followed with a shorter line:
This is a shorter line.</MIME>
    </EMail>"""
    raw = compose(document)
    message = parse(raw)
    assert message.get_content_type() == "text/plain"
    assert message.get_param("format") == "flowed"
    assert message.get_param("charset") == "utf-8"
    assert raw.split(b"\r\n\r\n", 1)[1] == (
        b"This is a very long long long long long long long long long long superlong \r\n"
        b"long long long long long long line, followed with a shorter line:\r\n"
        b"This is a shorter line."
    )


@pytest.mark.parametrize("attribute", ["sign", "encrypt"])
def test_smime_is_not_supported(attribute: str) -> None:
    document = SIMPLE.replace("<EMail>", f'<EMail {attribute}="yes">', 1)
    error = bad(ErrorKind.NOT_SUPPORTED, lambda: compose(document))
    assert error.detail == "S/MIME is not supported"
    assert compose(SIMPLE.replace("<EMail>", f'<EMail {attribute}="no">', 1))


SUBMIT_BCC = f"""<EMail>
      <From realName="Sender Name">fromName@domain</From>
      <Subject>I'll be there!</Subject>
      <To realName="Recipient Name">toName@domain</To>
      <X-Mailer>SuperClient v7.77</X-Mailer>
      <Bcc>bccName@domain</Bcc>
      <MIME type="text" subtype="plain">{DEAR_XML}</MIME>
    </EMail>"""


def test_submit_skips_bcc_in_the_text_but_sends_to_it() -> None:
    raw = compose(SUBMIT_BCC, skip_bcc=True)
    assert b"bccName" not in raw
    assert "Bcc" not in parse(raw)
    assert mc.envelope_recipients(xml.parse(SUBMIT_BCC.encode())) == [
        "toName@domain", "bccName@domain"
    ]  # fmt: skip
    assert mc.sender_address(xml.parse(SUBMIT_BCC.encode())) == "fromName@domain"
    # An append (a Sent or Drafts copy) keeps Bcc.
    assert parse(compose(SUBMIT_BCC))["Bcc"] == "bccName@domain"


def test_submit_with_cc_recipients() -> None:
    document = SUBMIT_BCC.replace("<Bcc>bccName@domain</Bcc>", "<Cc>ccName@domain</Cc>")
    assert mc.envelope_recipients(xml.parse(document.encode())) == [
        "toName@domain", "ccName@domain"
    ]  # fmt: skip
    assert parse(compose(document, skip_bcc=True))["Cc"] == "ccName@domain"


FORWARDED = (b'From: "Barbara Smith" <barbara@domain>\r\nSubject: Sorry, I cannot make it :-(\r\n'
             b'To: "Sender Name" <fromName@domain>\r\nX-Mailer: OtherClient v8.88\r\n'
             b"Date: Wed, 21 Jun 2006 21:51:24 -0800\r\nMessage-ID: <zzzzzzzzz@other.server.dom>\r\n"
             b'Content-Type: text/plain; charset="utf-8"\r\n\r\n'
             b"Mary,\r\n\r\nSorry, but I will be out of town tomorrow...\r\n\r\nBarbara.\r\n")  # fmt: skip


def test_forward_copies_the_whole_message_as_message_rfc822() -> None:
    # The spec's example leaves the multipart MIME element unclosed; closed here.
    document = """<EMail>
      <From realName="Sender Name">fromName@domain</From>
      <Subject>Fwd: Sorry, I cannot make it :-(</Subject>
      <To realName="Recipient Name">a1@domain</To>
      <X-Mailer>SuperClient v7.77</X-Mailer>
      <MIME type="multipart" subtype="mixed">
        <MIME type="text" subtype="plain">Dear Susan,&#x0A;&#x0A;Attached please find the message I received this morning...&#x0A;Mary.&#x0A;</MIME>
        <copyMIME folder="INBOX" UID="156" />
      </MIME>
    </EMail>"""
    raw = compose(document, {"156/": mc.Attachment(FORWARDED, entity=True)}, skip_bcc=True)
    message = parse(raw)
    assert message["Subject"] == "Fwd: Sorry, I cannot make it :-("
    text, forwarded = message.iter_parts()
    assert text_of(text).startswith("Dear Susan,\n\nAttached please find")
    assert forwarded.get_content_type() == "message/rfc822"
    assert "Content-Disposition" not in forwarded  # as the spec shows
    inner = forwarded.get_content()
    assert isinstance(inner, EmailMessage)
    assert inner["Subject"] == "Sorry, I cannot make it :-("
    assert inner["Message-ID"] == "<zzzzzzzzz@other.server.dom>"
    assert text_of(inner) == "Mary,\n\nSorry, but I will be out of town tomorrow...\n\nBarbara.\n"
    assert mc.envelope_recipients(xml.parse(document.encode())) == ["a1@domain"]


def test_redirect_style_several_to_elements_make_one_field() -> None:
    document = email_xml("", '<To realName="Recipient Name">a1@domain</To>'
                             '<To realName="Recipient-2">a2@domain</To><Subject>x</Subject>')  # fmt: skip
    raw = compose(document)
    assert field_names(raw).count("To") == 1
    assert b'To: "Recipient Name" <a1@domain>, "Recipient-2" <a2@domain>\r\n' in raw
    pairs = [(a.display_name, a.addr_spec) for a in parse(raw)["To"].addresses]
    assert pairs == [("Recipient Name", "a1@domain"), ("Recipient-2", "a2@domain")]
    assert field_names(raw) == ["To", "Subject", "Date", "Message-ID"]  # no body, no MIME


# --------------------------------------------------------------------------- header rules


def test_non_ascii_names_and_subject_become_encoded_words() -> None:
    name, subject = "Ёлкин Пётр «Ёж»", "Привет, мир — " * 12
    document = email_xml(
        "<MIME>x</MIME>",
        f'<From realName="{name}">p@example.test</From><Subject>{subject}</Subject>',
    )
    raw = compose(document)
    assert raw.isascii()
    assert b"=?utf-8?b?" in header_block(raw)
    assert all(len(line) <= 78 for line in header_block(raw).split(b"\r\n"))
    message = parse(raw)
    assert message["From"].addresses[0].display_name == name
    assert message["From"].addresses[0].addr_spec == "p@example.test"
    assert message["Subject"] == subject.strip()


def test_quotes_and_backslashes_in_names_are_escaped() -> None:
    raw = compose(email_xml("", '<From realName="A &quot;B&quot; \\ C">a@b.c</From>'))
    assert b'From: "A \\"B\\" \\\\ C" <a@b.c>' in raw
    assert parse(raw)["From"].addresses[0].display_name == 'A "B" \\ C'


def test_address_text_forms() -> None:
    document = email_xml("", '<To>Ann Example &lt;ann@example.test&gt;</To><Cc>&lt;b@c.d&gt;</Cc>'
                             "<Bcc>undisclosed-recipients:;</Bcc><Reply-To>bob</Reply-To>"
                             '<Return-Path realName="x">bounce@example.test</Return-Path>')  # fmt: skip
    raw = compose(document)
    assert b'To: "Ann Example" <ann@example.test>\r\n' in raw
    assert b"Cc: b@c.d\r\n" in raw
    assert b"Bcc: undisclosed-recipients:;\r\n" in raw
    assert b"Reply-To: bob\r\n" in raw  # a draft may hold a half-typed address
    assert b"Return-Path: <bounce@example.test>\r\n" in raw
    elem = xml.parse(document.encode())
    bad(ErrorKind.BAD_REQUEST, lambda: mc.envelope_recipients(
        xml.parse(email_xml("", "<To>bob</To>").encode())))  # fmt: skip
    assert mc.envelope_recipients(elem) == ["ann@example.test", "b@c.d"]


@pytest.mark.parametrize(
    "address", ["a b@c", "a@b@c", "a,b@c", "<a@b", "a@b>, evil@x", '"a@b" <c@d>, e@f', "a@"]
)
def test_invalid_addresses_are_refused(address: str) -> None:
    document = email_xml("", "<To></To>")
    elem = xml.parse(document.encode())
    elem[0].text = address
    error = bad(ErrorKind.BAD_REQUEST, lambda: mc.compose(
        elem, resolve=resolver({}), hostname=HOST, now=NOW, max_bytes=1000))  # fmt: skip
    assert error.detail == "invalid address in To"


def test_envelope_recipients_are_unique_and_skip_empty_elements() -> None:
    document = email_xml("", "<To>A@x.y</To><Cc>a@x.y</Cc><Cc/><Bcc>b@x.y</Bcc><From>f@x.y</From>")
    assert mc.envelope_recipients(xml.parse(document.encode())) == ["A@x.y", "b@x.y"]
    raw = compose(document)
    assert field_names(raw).count("Cc") == 1


def test_sender_address_prefers_sender() -> None:
    document = email_xml("", "<From>a@x.y</From><From>b@x.y</From><Sender>s@x.y</Sender>")
    assert mc.sender_address(xml.parse(document.encode())) == "s@x.y"
    assert mc.sender_address(xml.parse(email_xml("", "<From>a@x.y</From>").encode())) == "a@x.y"
    assert mc.sender_address(xml.parse(b"<EMail><Subject>x</Subject></EMail>")) is None


def test_a_newline_in_a_subject_never_starts_a_field() -> None:
    raw = compose(email_xml("", "<Subject>Hi&#x0D;&#x0A;Bcc: evil@example.test\n\nthere</Subject>"))
    assert field_names(raw) == ["Subject", "Date", "Message-ID"]
    assert parse(raw)["Subject"] == "Hi Bcc: evil@example.test there"


def test_a_newline_in_a_real_name_never_starts_a_field() -> None:
    raw = compose(email_xml("", '<To realName="A&#x0A;Bcc: e@x">a@b.c</To>'))
    assert field_names(raw) == ["To", "Date", "Message-ID"]


def test_long_ascii_subject_folds_and_unfolds_to_itself() -> None:
    subject = " ".join(f"word{i}" for i in range(60))
    raw = compose(email_xml("", f"<Subject>{subject}</Subject>"))
    lines = header_block(raw).split(b"\r\n")
    assert all(len(line) <= 78 for line in lines)
    assert parse(raw)["Subject"] == subject
    assert b"=?" not in raw


def test_a_word_too_long_to_fold_is_encoded() -> None:
    subject = "x" * 2000
    raw = compose(email_xml("", f"<Subject>{subject}</Subject>"))
    assert all(len(line) <= 78 for line in header_block(raw).split(b"\r\n"))
    assert parse(raw)["Subject"] == subject


def test_text_that_looks_encoded_stays_literal() -> None:
    subject = "=?utf-8?b?SGk=?= literally"
    assert parse(compose(email_xml("", f"<Subject>{subject}</Subject>")))["Subject"] == subject


@pytest.mark.parametrize(
    "header",
    ["<Тема>x</Тема>", "<Subject>a</Subject><Subject>b</Subject>", "<Subject>a<b/></Subject>",
     "<Date>yesterday</Date>", "<Date>20061399T000000</Date>", "<Message-ID>no id</Message-ID>",
     "<Message-ID>&lt;a@b</Message-ID>", "<References>&lt;ä@b&gt;</References>",
     "<X-Tab>a&#x01;b</X-Tab>", "<email>x</email>"],
)  # fmt: skip
def test_bad_header_elements_are_refused(header: str) -> None:
    bad(ErrorKind.BAD_REQUEST, lambda: compose(email_xml("", header)))


def test_dates_in_ximss_and_rfc_5322_form() -> None:
    ximss = parse(
        compose(email_xml("", '<Date localTime="20240102T110405">20240102T100405</Date>'))
    )
    assert ximss["Date"] == "Tue, 02 Jan 2024 10:04:05 +0000"
    assert ximss["Date"].datetime == dt.datetime(2024, 1, 2, 10, 4, 5, tzinfo=dt.UTC)
    rfc = parse(compose(email_xml("", "<Date>Wed, 21 Jun 2006 21:51:24 -0800</Date>")))
    assert rfc["Date"] == "Wed, 21 Jun 2006 21:51:24 -0800"
    assert field_names(compose(email_xml("", "<Date>20240102T100405Z</Date>"))).count("Date") == 1


def test_message_id_given_or_generated() -> None:
    given_id = parse(compose(email_xml("", "<Message-ID>abc@example.test</Message-ID>")))
    assert given_id["Message-ID"] == "<abc@example.test>"
    fixed = parse(compose(email_xml("", ""), message_id="<fixed@h>"))
    assert fixed["Message-ID"] == "<fixed@h>"
    one, two = parse(compose(SIMPLE)), parse(compose(SIMPLE))
    assert one["Message-ID"] != two["Message-ID"]


def test_mime_fields_in_the_header_are_made_not_copied() -> None:
    document = email_xml('<MIME type="text" subtype="html">&lt;p&gt;hi</MIME>',
                         "<MIME-Version>2.0</MIME-Version><Content-Type>image/gif</Content-Type>")  # fmt: skip
    raw = compose(document)
    assert field_names(raw) == ["Date", "Message-ID", "MIME-Version", "Content-Type"]
    assert parse(raw).get_content_type() == "text/html"


def test_bad_hostname_or_seed_is_a_configuration_error() -> None:
    elem = xml.parse(SIMPLE.encode())
    with pytest.raises(ValueError, match="hostname"):
        mc.compose(elem, resolve=resolver({}), hostname="a b", now=NOW, max_bytes=10**6)
    with pytest.raises(ValueError, match="message_id"):
        mc.compose(elem, resolve=resolver({}), hostname=HOST, now=NOW, max_bytes=10**6,
                   message_id="no id")  # fmt: skip
    with pytest.raises(ValueError, match="seed"):
        mc.compose(elem, resolve=resolver({}), hostname=HOST, now=NOW, max_bytes=10**6,
                   boundary_seed="a-b")  # fmt: skip


# --------------------------------------------------------------------------- body rules


def test_non_ascii_text_is_8bit_and_line_ends_are_crlf() -> None:
    raw = compose(email_xml("<MIME>Grüße\naus Köln\r\nund\rBonn</MIME>"))
    message = parse(raw)
    assert message["Content-Transfer-Encoding"] == "8bit"
    assert message.get_param("charset") == "utf-8"
    assert raw.split(b"\r\n\r\n", 1)[1] == "Grüße\r\naus Köln\r\nund\r\nBonn".encode()
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")


def test_a_line_over_998_octets_is_quoted_printable() -> None:
    text = "é" * 600 + "\n" + "short\n"
    raw = compose(email_xml(f"<MIME>{text}</MIME>"))
    message = parse(raw)
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert all(len(line) <= 76 for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    assert text_of(message) == text


def test_charset_attribute_of_text_is_presentation() -> None:
    raw = compose(email_xml('<MIME type="text" subtype="plain" charset="iso-8859-1">café</MIME>'))
    assert parse(raw).get_param("charset") == "utf-8"
    assert "café".encode() in raw


def test_flowed_stuffing_and_signature() -> None:
    text = " indented\n>not a quote\nFrom here\ntrailing   \n-- \nsig"
    raw = compose(email_xml(f'<MIME type="text" subtype="plain" format="flowed">{text}</MIME>'))
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert body == b"  indented\r\n >not a quote\r\n From here\r\ntrailing\r\n-- \r\nsig"


FLOW_TEXT = st.text(alphabet=st.sampled_from("ab >-F\nrom"), max_size=300)


def unflow(text: str) -> str:
    """RFC 3676 decoding, DelSp=no, quote depth ignored (compose stuffs ">")."""
    out, pending = [], ""
    for raw_line in text.split("\n"):
        line = raw_line[1:] if raw_line.startswith(" ") else raw_line
        if line.endswith(" ") and line != "-- ":
            pending += line
        else:
            out.append(pending + line)
            pending = ""
    return "\n".join(out + ([pending] if pending else []))


@given(FLOW_TEXT, st.integers(min_value=10, max_value=80))
def test_flow_round_trips_and_keeps_lines_short(text: str, width: int) -> None:
    flowed = mc.flow(text, width)
    expected = "\n".join(line if line == "-- " else line.rstrip(" ") for line in text.split("\n"))
    assert unflow(flowed) == expected
    for line in flowed.split("\n"):
        assert not line.startswith((">", "From "))  # such lines are stuffed
        # Beyond the width only by a stuffing space and the soft break's blanks, or for a word
        # that cannot be broken.
        if len(line.rstrip(" ")) > width + 1:
            assert " " not in line.strip(" ")


def test_upload_defaults_and_names() -> None:
    table = {
        "u1": mc.Attachment(b"\x00\x01", None, "C:\\fakepath\\data.bin"),
        "u2": mc.Attachment(b"a,b\n", "text/csv; charset=windows-1251", "t.csv"),
        "u3": mc.Attachment(b"x", "not a type\r\nBcc: evil", None),
        "u4": mc.Attachment(b"<svg/>", "image/svg+xml", "logo.svg"),
    }
    body = ('<MIME type="multipart" subtype="related"><MIME uploadID="u1"/><MIME uploadID="u2"/>'
            '<MIME uploadID="u3"/><MIME uploadID="u4" disposition="inline" Content-ID="logo@x"'
            ' Content-Description="Лого"/></MIME>')  # fmt: skip
    raw = compose(email_xml(body), table)
    related = parse(raw)
    assert related.get_content_type() == "multipart/related"
    binary, csv, unknown, svg = related.iter_parts()
    assert (binary.get_content_type(), binary.get_filename()) == (
        "application/octet-stream", "data.bin"
    )  # fmt: skip
    assert binary.get_content() == b"\x00\x01"
    assert (csv.get_content_type(), csv.get_param("charset")) == ("text/csv", "windows-1251")
    assert csv["Content-Transfer-Encoding"] == "base64"
    assert unknown.get_content_type() == "application/octet-stream"
    assert unknown.get_content_disposition() == "attachment" and unknown.get_filename() is None
    assert b"evil" not in raw
    assert svg.get_content_disposition() == "inline"
    assert svg["Content-ID"] == "<logo@x>"
    assert svg["Content-Description"] == "Лого"


def test_non_ascii_and_long_filenames_use_rfc_2231() -> None:
    short, long = "отчёт.pdf", "Квартальный отчёт отдела продаж за третий квартал 2024.pdf"
    table = {"a": mc.Attachment(b"1", "application/pdf", short),
             "b": mc.Attachment(b"2", "application/pdf", long)}  # fmt: skip
    document = email_xml('<MIME><MIME uploadID="a"/><MIME uploadID="b"/></MIME>')
    raw = compose(document, table)
    assert raw.isascii()
    assert b"filename*=utf-8''%D0%BE%D1%82" in raw
    assert b"filename*0*=utf-8''" in raw and b"filename*1*=" in raw
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    first, second = parse(raw).iter_parts()
    assert (first.get_filename(), first.get_param("name")) == (short, short)
    assert (second.get_filename(), second.get_param("name")) == (long, long)


def test_disposition_filename_attribute_wins_and_makes_text_an_attachment() -> None:
    table = {"a": mc.Attachment(b"1", "image/jpeg", "IMG_0001.JPG")}
    document = email_xml('<MIME><MIME uploadID="a" disposition-filename="photo.jpg"/>'
                         '<MIME type="text" disposition-filename="notes.txt">n</MIME></MIME>')  # fmt: skip
    photo, notes = parse(compose(document, table)).iter_parts()
    assert (photo.get_filename(), photo.get_param("name")) == ("photo.jpg", "photo.jpg")
    assert notes.get_content_disposition() == "attachment" and notes.get_filename() == "notes.txt"
    assert text_of(notes) == "n"


def test_vcards_in_a_mime_element_become_vcard_text() -> None:
    # The spec's Contacts section: a text/directory MIME element holding vCard elements.
    card = ("<vCard><NAME>Bjorn Jensen</NAME><N><FAMILY>Jensen</FAMILY><GIVEN>bjorn</GIVEN></N>"
            "<EMAIL><INTERNET /><USERID>bjorn@domain.dom</USERID></EMAIL><UID>u-1</UID></vCard>")  # fmt: skip
    for body in (f'<MIME type="text" subtype="directory">{card} {card}</MIME>',
                 f"<MIME>{card}{card}</MIME>"):  # fmt: skip
        message = parse(compose(email_xml(body)))
        assert message.get_content_type() == "text/directory"
        text = text_of(message)
        assert text.count("BEGIN:VCARD") == 2 and text.count("END:VCARD") == 2
        assert "bjorn@domain.dom" in text and "UID:u-1" in text


def test_copied_entity_without_a_header_end_is_all_body() -> None:
    raw = compose(email_xml('<copyMIME UID="1" partID="2"/>'),
                  {"1/2": mc.Attachment(b"Bcc: not a field", entity=True)})  # fmt: skip
    assert raw.endswith(b"MIME-Version: 1.0\r\n\r\nBcc: not a field")
    assert "Bcc" not in parse(raw)


def test_boundary_never_occurs_in_the_content() -> None:
    trap = b"Content-Type: text/plain\r\n\r\n--_===ximss-s-1===_\r\n--_===ximss-s-2===_--\r\n"
    document = email_xml(
        '<MIME><copyMIME UID="1" partID="1"/><MIME>--_===ximss-s-3===_</MIME></MIME>'
    )
    raw = compose(document, {"1/1": mc.Attachment(trap, entity=True)}, boundary_seed="s")
    message = parse(raw)
    assert message.get_boundary() == "_===ximss-s-4===_"
    copied, text = message.iter_parts()
    assert text_of(copied) == "--_===ximss-s-1===_\n--_===ximss-s-2===_--\n"
    assert text_of(text) == "--_===ximss-s-3===_"


def test_same_inputs_same_bytes() -> None:
    def fixed() -> bytes:
        return compose(MULTIPART, UPLOADS, message_id="<m@h>", boundary_seed="abc")

    assert fixed() == fixed()
    assert compose(MULTIPART, UPLOADS) != compose(MULTIPART, UPLOADS)


def test_copied_part_as_the_whole_body() -> None:
    entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
    raw = compose(email_xml('<copyMIME UID="1" partID="2"/>', "<Subject>s</Subject>"),
                  {"1/2": mc.Attachment(entity, entity=True)})  # fmt: skip
    message = parse(raw)
    assert message["Subject"] == "s" and message["MIME-Version"] == "1.0"
    assert text_of(message) == "body\n"


def test_eight_bit_forwarded_message_is_labelled() -> None:
    inner = "Subject: ü\r\n\r\nü\r\n".encode()
    raw = compose(
        email_xml('<MIME><copyMIME UID="1"/></MIME>'), {"1/": mc.Attachment(inner, entity=True)}
    )
    (forwarded,) = parse(raw).iter_parts()
    assert forwarded["Content-Transfer-Encoding"] == "8bit"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ('<MIME type="multipart" subtype="mixed"/>', ErrorKind.BAD_REQUEST),
        ('<MIME type="multipart">text<MIME>x</MIME></MIME>', ErrorKind.BAD_REQUEST),
        ("<MIME><Foo/></MIME>", ErrorKind.BAD_REQUEST),
        ('<MIME type="text"><MIME>x</MIME></MIME>', ErrorKind.BAD_REQUEST),
        ('<MIME type="text" subtype="calendar"><iCalendar><vCalendar><vevent>'
         "<dtstart>soon</dtstart></vevent></vCalendar></iCalendar></MIME>", ErrorKind.BAD_REQUEST),
        ("<MIME><iCalendar><vCalendar/></iCalendar>text</MIME>", ErrorKind.BAD_REQUEST),
        ('<MIME type="multipart"><vCard><FN>x</FN></vCard></MIME>', ErrorKind.BAD_REQUEST),
        ("<MIME><vCard>x</vCard>text</MIME>", ErrorKind.BAD_REQUEST),
        ("<MIME>a</MIME><MIME>b</MIME>", ErrorKind.BAD_REQUEST),
        ('<MIME type="image" subtype="png" partID="3" size="5000"/>', ErrorKind.BAD_REQUEST),
        ('<MIME type="text" subtype="plain" truncated="yes">Hel</MIME>', ErrorKind.BAD_REQUEST),
        ('<MIME type="image"/>', ErrorKind.BAD_REQUEST),
        ('<MIME subtype="plain">x</MIME>', ErrorKind.BAD_REQUEST),
        ('<MIME type="te xt" subtype="plain">x</MIME>', ErrorKind.BAD_REQUEST),
        ('<MIME type="text" disposition="a b">x</MIME>', ErrorKind.BAD_REQUEST),
        ('<MIME uploadID="att01">text</MIME>', ErrorKind.BAD_REQUEST),
        ('<MIME uploadID="nope"/>', ErrorKind.NOT_FOUND),  # the resolver's own error
        ('<MIME type="message" subtype="rfc822"><EMail/><EMail/></MIME>', ErrorKind.BAD_REQUEST),
        ('<MIME type="message" subtype="rfc822">' + "x" * 1000 + "</MIME>",
         ErrorKind.BAD_REQUEST),
        ('<MIME type="text" Content-ID="&lt;a b&gt;">x</MIME>', ErrorKind.BAD_REQUEST),
        ("<MIME>" * 40 + "x" + "</MIME>" * 40, ErrorKind.BAD_REQUEST),
    ],
)  # fmt: skip
def test_bad_bodies_are_refused(body: str, kind: ErrorKind) -> None:
    bad(kind, lambda: compose(email_xml(body), UPLOADS))


def test_root_must_be_email() -> None:
    bad(ErrorKind.BAD_REQUEST, lambda: compose("<Message><Subject>x</Subject></Message>"))
    bad(ErrorKind.BAD_REQUEST, lambda: compose("<EMail>stray<Subject>x</Subject></EMail>"))


def test_size_limit() -> None:
    raw = compose(MULTIPART, UPLOADS)
    assert compose(MULTIPART, UPLOADS, max_bytes=len(raw) + 10)
    error = bad(ErrorKind.LIMIT, lambda: compose(MULTIPART, UPLOADS, max_bytes=len(raw) - 10))
    assert error.detail == "message too large"
    # A huge upload is refused before it is encoded.
    huge = {"att01": mc.Attachment(b"\x00" * 3_000_000, "application/octet-stream", "z")}
    bad(ErrorKind.LIMIT, lambda: compose(email_xml('<MIME uploadID="att01"/>'), huge,
                                         max_bytes=1_000_000))  # fmt: skip


# --------------------------------------------------------------------------- folderRead's shape

PRESENTED = """<EMail>
  <From realName="Ann Example">ann@example.test</From>
  <To>bob@example.test</To><To realName="Ćiril">c@example.test</To>
  <Date localTime="20240102T110405">20240102T100405</Date>
  <Subject>Grüße</Subject>
  <Message-ID>&lt;orig@example.test&gt;</Message-ID>
  <Received>from a by b; Tue, 2 Jan 2024 10:04:05 +0000</Received>
  <MIME type="multipart" subtype="mixed" partID="" >
    <MIME type="multipart" subtype="alternative" partID="1">
      <MIME type="text" subtype="plain" partID="1.1" size="120" charset="iso-8859-1" format="flowed">Hallo Bob,
ein sehr langer Absatz, der beim Senden wieder umbrochen werden muss, weil er deutlich über sechsundsiebzig Zeichen lang ist.</MIME>
      <MIME type="text" subtype="html" partID="1.2" size="300" charset="utf-8">&lt;p&gt;Hallo&lt;/p&gt;</MIME>
    </MIME>
    <MIME type="message" subtype="rfc822" partID="2" size="900">
      <EMail><From>x@example.test</From><Subject>inner</Subject><Bcc>hidden@example.test</Bcc>
        <MIME type="text" subtype="plain" partID="2.1" size="5">inner</MIME></EMail>
    </MIME>
    <MIME type="message" subtype="delivery-status" partID="3" size="40">Reporting-MTA: dns; a.b</MIME>
  </MIME>
</EMail>"""


def test_what_folder_read_presents_composes_back() -> None:
    raw = compose(PRESENTED, skip_bcc=True)
    message = parse(raw)
    assert message["Date"].datetime == dt.datetime(2024, 1, 2, 10, 4, 5, tzinfo=dt.UTC)
    assert message["Message-ID"] == "<orig@example.test>"
    assert message["Subject"] == "Grüße"
    assert [a.display_name for a in message["To"].addresses] == ["", "Ćiril"]
    assert field_names(raw).count("Date") == 1 and field_names(raw).count("Message-ID") == 1
    alternative, enclosed, report = message.iter_parts()
    plain, html = alternative.iter_parts()
    assert plain.get_param("format") == "flowed" and plain.get_param("charset") == "utf-8"
    assert unflow(text_of(plain)) == (
        "Hallo Bob,\nein sehr langer Absatz, der beim Senden wieder umbrochen werden muss, weil "
        "er deutlich über sechsundsiebzig Zeichen lang ist."
    )
    assert text_of(html) == "<p>Hallo</p>"
    inner = enclosed.get_content()
    assert isinstance(inner, EmailMessage)
    assert inner["Subject"] == "inner" and inner["Bcc"] == "hidden@example.test"
    assert "Date" not in inner and "Message-ID" not in inner  # nothing generated inside
    assert text_of(inner) == "inner"
    assert report.get_content_type() == "message/delivery-status"
    assert b"Reporting-MTA: dns; a.b" in raw


# --------------------------------------------------------------------------- properties

_XML_CHAR = st.one_of(  # what XML 1.0 can carry, drawn without filtering
    st.sampled_from("\t\n\r"),
    st.characters(min_codepoint=0x20, max_codepoint=0xD7FF),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFD),
)
TEXT = st.text(_XML_CHAR, max_size=30)
HEADER_TAGS = ["To", "From", "Cc", "Bcc", "Subject", "Date", "Message-ID", "X-Mailer", "Sender",
               "Content-Type", "References", "a.b", "Return-Path", "Resent-Date", "Ω", "vCard"]  # fmt: skip
ADDRESS_TAGS = {"to", "from", "cc", "bcc", "sender", "return-path"}
BODY_TAGS = ["MIME"] * 6 + ["copyMIME", "EMail", "vCard", "Subject"]
ATTRIBUTES = ["type", "subtype", "format", "uploadID", "disposition", "disposition-filename",
              "fileName", "partID", "charset", "Content-ID", "Content-Description", "truncated",
              "size"]  # fmt: skip
TYPES = st.sampled_from([("text", "plain"), ("text", "html"), ("multipart", "mixed"),
                         ("message", "rfc822"), ("image", "png"), ("text", None), (None, "x")])  # fmt: skip
VALUE_WORDS = ["flowed", "none", "inline", "attachment", "yes", "no", "a@b", "<a@b>", "", "u1"]
VALUES = st.one_of(st.sampled_from([*VALUE_WORDS, "Юникод", "3", "a b"]), TEXT)
ADDRESSES = st.one_of(st.sampled_from(["a@b", "Ann <a@b.c>", "<x@y>", "g:;", "bob", "é@x"]), TEXT)
CONTENT = st.one_of(st.none(), TEXT, st.sampled_from(["x\n" * 3, "é" * 700, "From me\n>q \n"]))


@st.composite
def headers(draw: st.DrawFn) -> etree._Element:
    tag = draw(st.sampled_from(HEADER_TAGS))
    elem = etree.Element(tag)
    fitting = {"Date": "20240102T100405", "Resent-Date": "Tue, 2 Jan 2024 10:04:05 +0100",
               "Message-ID": "<i@d>", "References": "<i@d> <j@d>"}  # fmt: skip
    if draw(st.integers(0, 3)):  # mostly what the field takes
        valid = st.sampled_from(["a@b", "Ann <a@b.c>", "<x@y>", "g:;", "bob"])
        elem.text = fitting.get(tag) or draw(valid if tag.lower() in ADDRESS_TAGS else TEXT)
    else:
        elem.text = draw(st.one_of(ADDRESSES, TEXT))
    if draw(st.booleans()):
        elem.set("realName", draw(TEXT))
    return elem


@st.composite
def bodies(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    elem = etree.Element(draw(st.sampled_from(BODY_TAGS)))
    main, sub = draw(TYPES)
    if main is not None and draw(st.integers(0, 4)):
        elem.set("type", main)
    if sub is not None and draw(st.integers(0, 4)):
        elem.set("subtype", sub)
    for name in draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=2, unique=True)):
        elem.set(name, draw(VALUES))
    if depth < 3 and (main in ("multipart", "message") or draw(st.integers(0, 9)) == 0):
        for child in draw(st.lists(st.one_of(bodies(depth + 1), headers()), max_size=3)):
            elem.append(child)
    else:
        elem.text = draw(CONTENT)
    return elem


ATTACHMENTS = st.builds(
    mc.Attachment,
    st.binary(max_size=200),
    st.one_of(
        st.none(), st.sampled_from(["text/plain", "image/png; x=1", "bad", 'a/b;charset="q"'])
    ),
    st.one_of(st.none(), TEXT),
    st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(headers(), max_size=5), st.lists(bodies(), max_size=2),
       st.sampled_from(["EMail", "EMail", "EMail", "MIME"]), ATTACHMENTS, st.booleans(),
       st.integers(min_value=0, max_value=6000))  # fmt: skip
def test_random_trees_raise_only_bridge_errors(
    fields: list[etree._Element],
    body: list[etree._Element],
    root_tag: str,
    attachment: mc.Attachment,
    skip_bcc: bool,
    max_bytes: int,
) -> None:
    root = etree.Element(root_tag)
    for child in fields + body:
        root.append(child)
    try:
        raw = mc.compose(root, resolve=lambda _: attachment, hostname=HOST, now=NOW,
                         max_bytes=max_bytes, skip_bcc=skip_bcc)  # fmt: skip
    except BridgeError as exc:
        event(exc.kind.value)
        return
    event("composed")
    assert len(raw) <= max_bytes
    header = header_block(raw)
    if attachment.entity and b"\r\nMIME-Version: 1.0\r\n" in header:  # a copied entity's own
        header = header.split(b"\r\nMIME-Version: 1.0\r\n")[0]  # header follows ours
    for line in header.split(b"\r\n"):
        assert re.match(rb"[!-9;-~]+:|[ \t]", line), line  # a field or a continuation
        assert len(line) <= 998
    if not attachment.entity:  # copied entities are embedded as they came
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    if skip_bcc:
        assert not re.search(rb"(?im)^bcc:", header)
    parse(raw)  # the email package reads it


def test_an_icalendar_element_becomes_a_text_calendar_part_with_its_method() -> None:
    invitation = (
        '<MIME><iCalendar xmlns="urn:ietf:params:xml:ns:xcal"><vCalendar method="REQUEST">'
        "<vevent><uid>42@x</uid><summary>Lunch, then talk</summary>"
        '<dtstart tzid="NorthAmerica/Pacific">20261201T120000</dtstart>'
        "<organizer>mailto:a@example.test</organizer><attendee>mailto:b@example.test</attendee>"
        "</vevent></vCalendar></iCalendar></MIME>"
    )
    message = parse(compose(email_xml(invitation, "<Subject>Lunch</Subject>")))
    assert message.get_content_type() == "text/calendar"
    assert message.get_param("method") == "REQUEST"
    text = text_of(message)
    assert "METHOD:REQUEST" in text and "SUMMARY:Lunch\\, then talk" in text
    assert "DTSTART;TZID=America/Los_Angeles:20261201T120000" in text
    assert "BEGIN:VTIMEZONE" in text
