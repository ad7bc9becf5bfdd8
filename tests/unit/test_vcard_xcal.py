"""vCard text <-> XIMSS <vCard> XML, and iCalendar text -> XIMSS XML iCalendar."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.mime.vcard import vcard_to_xml, xml_to_vcard
from bridge.mime.xcal import MAX_COMPONENT_DEPTH, XCAL_NS, ical_to_xcal

# The spec's contactAppend example, indentation and all.
SPEC_CONTACT = b"""<vCard>
      <NAME>Bjorn Jensen</NAME>
      <N><FAMILY>Jensen</FAMILY><GIVEN>bjorn</GIVEN>
        <MIDDLE>A</MIDDLE><PREFIX>Mr.</PREFIX><SUFFIX>II</SUFFIX></N>
      <EMAIL><INTERNET /><USERID>bjorn@domain.dom</USERID></EMAIL>
      <TEL><WORK /><VOICE /><MSG /><NUMBER>+1 313 747-4454</NUMBER></TEL>
      <KEY><x509 /><BINVAL>dGhpcyBjb3VsZCBiZSAKbXkgY2VydGlmaWNhdGUK</BINVAL></KEY>
    </vCard>"""

PHOTO_B64 = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0a"
    "HBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIy"
)

APPLE = (
    "BEGIN:VCARD\r\n"
    "VERSION:3.0\r\n"
    "PRODID:-//Apple Inc.//iPhone OS 17.2//EN\r\n"
    "N:Appleseed;Johnny;;;\r\n"
    "FN:Johnny Appleseed\r\n"
    "ORG:Apple Inc.;\r\n"
    "TITLE:Engineer\\, Core OS\r\n"
    "item1.EMAIL;type=INTERNET;type=pref:johnny@example.com\r\n"
    "item1.X-ABLabel:_$!<Other>!$_\r\n"
    "EMAIL;type=INTERNET;type=HOME:j@home.example\r\n"
    "TEL;type=CELL;type=VOICE;type=pref:+1 (555) 123-4567\r\n"
    "item2.ADR;type=HOME;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;United Stat\r\n"
    " es\r\n"
    "item2.X-ABADR:us\r\n"
    "item3.URL;type=pref:http\\://www.example.com/~johnny\r\n"
    "item3.X-ABLabel:_$!<HomePage>!$_\r\n"
    "BDAY;value=date:1980-01-01\r\n"
    "NOTE:Line one\\nLine two\\, with a comma\\; and a semicolon\r\n"
    "X-SOCIALPROFILE;type=twitter;x-user=johnny:https://twitter.com/johnny\r\n"
    "X-ANDROID-CUSTOM:vnd.android.cursor.item/nickname;Jo\\,hnny;1;;;;;;;;;;;;;\r\n"
    "PHOTO;ENCODING=b;TYPE=JPEG:" + PHOTO_B64[:48] + "\r\n"
    " " + PHOTO_B64[48:120] + "\r\n"
    " " + PHOTO_B64[120:] + "\r\n"
    "END:VCARD\r\n"
)

GOOGLE = (
    "BEGIN:VCARD\r\n"
    "VERSION:3.0\r\n"
    "FN:Jane Doe\r\n"
    "N:Doe;Jane;;;\r\n"
    "NICKNAME:Janie,JD\r\n"
    "EMAIL;TYPE=INTERNET;TYPE=HOME:jane@example.com\r\n"
    "EMAIL;TYPE=INTERNET;TYPE=WORK:jane.doe@corp.example\r\n"
    "TEL;TYPE=CELL:+1 555-000-1111\r\n"
    "ADR;TYPE=WORK:;;1600 Amphitheatre Pkwy;Mountain View;CA;94043;US\r\n"
    "ORG:Example Corp;Research;Group 7\r\n"
    "item1.URL:https\\://blog.example.org/jane\r\n"
    "item1.X-ABLabel:Blog\r\n"
    "CATEGORIES:myContacts,Friends\r\n"
    "END:VCARD\r\n"
)

# Outlook 2.1: bare TYPE values, quoted-printable in Windows-1252 with soft line breaks, a base64
# photo on lines of its own ending in a blank line.
OUTLOOK = (
    "BEGIN:VCARD\r\n"
    "VERSION:2.1\r\n"
    "N;LANGUAGE=de;CHARSET=Windows-1252:M\u00fcller;J\u00fcrgen\r\n"
    "FN;CHARSET=Windows-1252:J\u00fcrgen M\u00fcller\r\n"
    "ORG:Contoso Ltd.;Sales\r\n"
    "TEL;WORK;VOICE:+49 30 1234567\r\n"
    "TEL;CELL;VOICE:+49 170 1234567\r\n"
    "ADR;WORK;PREF;ENCODING=QUOTED-PRINTABLE;CHARSET=Windows-1252:;;Hauptstra=DFe 1;Berlin;;10115;De=\r\n"
    "utschland\r\n"
    "LABEL;WORK;PREF;ENCODING=QUOTED-PRINTABLE:Hauptstra=C3=9Fe 1=0D=0A=\r\n"
    "10115 Berlin\r\n"
    "EMAIL;PREF;INTERNET:juergen@contoso.example\r\n"
    "NOTE;ENCODING=QUOTED-PRINTABLE:First line=0D=0ASecond line with =3D sign\r\n"
    "PHOTO;TYPE=JPEG;ENCODING=BASE64:\r\n"
    " " + PHOTO_B64[:76] + "\r\n"
    " " + PHOTO_B64[76:] + "\r\n"
    "\r\n"
    "X-MS-OL-DEFAULT-POSTAL-ADDRESS:2\r\n"
    "REV:20240101T120000Z\r\n"
    "END:VCARD\r\n"
)

VCARD4 = (
    "BEGIN:VCARD\r\n"
    "VERSION:4.0\r\n"
    "KIND:individual\r\n"
    "FN:Ren\u00e9 van Harten\r\n"
    'N;SORT-AS="Harten,Rene":van Harten;Ren\u00e9;J.,K.;Dr.;\r\n'
    "GENDER:M;he/him\r\n"
    'TEL;VALUE=uri;TYPE="voice,home";PREF=1:tel:+1-555-555-5555;ext=5555\r\n'
    'ADR;TYPE=work;LABEL="Mail Drop: TNE QB^n123 Main Street":;;123 Main Street;Any Town;CA;91921;U.S.A.\r\n'
    "GEO:geo:37.386013,-122.082932\r\n"
    "PHOTO:data:image/png;base64,iVBORw0KGgo=\r\n"
    "END:VCARD\r\n"
)

ICAL = (
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//Example Corp.//CalDAV Client//EN\r\n"
    "METHOD:REQUEST\r\n"
    "BEGIN:VTIMEZONE\r\n"
    "TZID:Europe/Berlin\r\n"
    "BEGIN:DAYLIGHT\r\n"
    "TZOFFSETFROM:+0100\r\n"
    "TZOFFSETTO:+0200\r\n"
    "TZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
    "END:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\n"
    "TZOFFSETFROM:+0200\r\n"
    "TZOFFSETTO:+0100\r\n"
    "TZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
    "END:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:20240115T090000-42@example.com\r\n"
    "DTSTAMP:20240110T120000Z\r\n"
    "DTSTART;TZID=Europe/Berlin:20240115T090000\r\n"
    "DTEND;TZID=Europe/Berlin:20240115T093000\r\n"
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20240331T225959Z\r\n"
    "EXDATE;TZID=Europe/Berlin:20240122T090000,20240124T090000\r\n"
    "SUMMARY:Stand-up\\, daily\r\n"
    "DESCRIPTION:Line one\\nLine two\\; with a semicolon and a line long enough to be\r\n"
    "  folded\r\n"
    'ORGANIZER;CN="Boss, Big":mailto:boss@example.com\r\n'
    "ATTENDEE;CN=Small Boy;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=REQ-PARTICIPANT:mai\r\n"
    " lto:boy@example.com\r\n"
    "X-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n"
    "BEGIN:VALARM\r\n"
    "ACTION:DISPLAY\r\n"
    "DESCRIPTION:Reminder\r\n"
    "TRIGGER;RELATED=START:-PT15M\r\n"
    "END:VALARM\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


Canon = tuple[str, dict[str, str], str | None, str | None, list["Canon"]]


def attrs(elem: etree._Element) -> dict[str, str]:
    return {str(key): str(value) for key, value in elem.attrib.items()}


def canon(elem: etree._Element) -> Canon:
    """Structure for comparison: tag, attributes, text; pretty-printing whitespace ignored."""
    text = (elem.text or "").strip() or None
    tails = "".join((child.tail or "").strip() for child in elem) or None
    return (etree.QName(elem).localname, attrs(elem), text, tails, [canon(c) for c in elem])


def unfold(text: str) -> list[str]:
    return re.sub(r"\r\n[ \t]", "", text).split("\r\n")[:-1]


def props(card: etree._Element) -> dict[str, list[etree._Element]]:
    found: dict[str, list[etree._Element]] = {}
    for child in card:
        found.setdefault(str(child.tag), []).append(child)
    return found


def shown(text: str) -> etree._Element:
    card = vcard_to_xml(text)
    assert card is not None
    return card


def round_trip(card: etree._Element) -> tuple[str, etree._Element]:
    text = xml_to_vcard(card)
    return text, shown(text)


def assert_same_plus_fn_uid(before: etree._Element, after: etree._Element) -> None:
    """`after` is `before` with the FN and UID xml_to_vcard adds when they are missing."""
    expected = canon(before)[4]
    assert canon(after)[:4] == canon(before)[:4]
    assert canon(after)[4][: len(expected)] == expected
    added = [item[0] for item in canon(after)[4][len(expected) :]]
    assert added == [name for name in ("FN", "UID") if before.find(name) is None]


# --- the spec's example ---------------------------------------------------------------------


def test_spec_contact_becomes_vcard_30_with_uid_and_fn() -> None:
    text = xml_to_vcard(xml.parse(SPEC_CONTACT))
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = unfold(text)
    uid = [line for line in lines if line.startswith("UID:")]
    assert len(uid) == 1 and uuid.UUID(uid[0][4:]).version == 4
    assert [line for line in lines if not line.startswith("UID:")] == [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "NAME:Bjorn Jensen",
        "N:Jensen;bjorn;A;Mr.;II",
        "EMAIL;TYPE=INTERNET:bjorn@domain.dom",
        "TEL;TYPE=WORK,VOICE,MSG:+1 313 747-4454",
        "KEY;TYPE=x509;ENCODING=b:dGhpcyBjb3VsZCBiZSAKbXkgY2VydGlmaWNhdGUK",
        "FN:Mr. bjorn A Jensen II",
        "END:VCARD",
    ]


def test_spec_contact_round_trips_to_the_same_xml_plus_fn_and_uid() -> None:
    original = xml.parse(SPEC_CONTACT)
    text, back = round_trip(original)
    added = canon(back)[4][len(original) :]
    assert canon(back)[4][: len(original)] == canon(original)[4]
    uid = re.search(r"^UID:(.*)$", text, re.MULTILINE)
    assert uid is not None
    assert added == [
        ("FN", {}, "Mr. bjorn A Jensen II", None, []),
        ("UID", {}, uid.group(1).strip(), None, []),
    ]
    # and once more: the card is now stable, nothing is added twice
    assert canon(round_trip(back)[1]) == canon(back)


def test_fn_and_uid_are_kept_when_present_and_fn_falls_back_to_email() -> None:
    card = xml.parse(b"<vCard><UID>abc</UID><FN>Given Name</FN></vCard>")
    lines = unfold(xml_to_vcard(card))
    assert lines == ["BEGIN:VCARD", "VERSION:3.0", "UID:abc", "FN:Given Name", "END:VCARD"]
    card = xml.parse(b"<vCard><EMAIL><USERID>a@b.example</USERID></EMAIL></vCard>")
    assert "FN:a@b.example" in unfold(xml_to_vcard(card))
    card = xml.parse(b"<vCard><ORG><ORGNAME>Acme, Inc.</ORGNAME></ORG></vCard>")
    assert "FN:Acme\\, Inc." in unfold(xml_to_vcard(card))


# --- real-world cards ------------------------------------------------------------------------


def test_apple_export() -> None:
    card = shown(APPLE)
    found = props(card)
    assert xml.serialize(found["EMAIL"][0]) == (
        b'<EMAIL group="item1"><INTERNET/><PREF/><USERID>johnny@example.com</USERID></EMAIL>'
    )
    assert [e.get("group") for e in found["X-ABLABEL"]] == ["item1", "item3"]
    assert found["X-ABLABEL"][0].text == "_$!<Other>!$_"
    assert xml.serialize(found["TEL"][0]) == (
        b"<TEL><CELL/><VOICE/><PREF/><NUMBER>+1 (555) 123-4567</NUMBER></TEL>"
    )
    assert xml.serialize(found["ADR"][0]) == (
        b'<ADR group="item2"><HOME/><PREF/><STREET>1 Infinite Loop</STREET>'
        b"<LOCALITY>Cupertino</LOCALITY><REGION>CA</REGION><PCODE>95014</PCODE>"
        b"<CTRY>United States</CTRY></ADR>"
    )
    assert xml.serialize(found["URL"][0]) == (
        b'<URL group="item3"><PREF/>http://www.example.com/~johnny</URL>'
    )
    assert xml.serialize(found["ORG"][0]) == b"<ORG><ORGNAME>Apple Inc.</ORGNAME></ORG>"
    assert found["TITLE"][0].text == "Engineer, Core OS"
    assert found["NOTE"][0].text == "Line one\nLine two, with a comma; and a semicolon"
    assert attrs(found["BDAY"][0]) == {"VALUE": "date"}
    assert attrs(found["X-SOCIALPROFILE"][0]) == {"X-USER": "johnny"}
    assert [c.tag for c in found["X-SOCIALPROFILE"][0]] == ["twitter"]
    # an unknown property keeps its own structure and escapes
    assert found["X-ANDROID-CUSTOM"][0].text == (
        "vnd.android.cursor.item/nickname;Jo\\,hnny;1;;;;;;;;;;;;;"
    )
    assert xml.serialize(found["PHOTO"][0]) == (
        f"<PHOTO><JPEG/><BINVAL>{PHOTO_B64}</BINVAL></PHOTO>".encode()
    )
    text, back = round_trip(card)
    assert_same_plus_fn_uid(card, back)
    lines = unfold(text)
    assert "item2.ADR;TYPE=HOME,PREF:;;1 Infinite Loop;Cupertino;CA;95014;United States" in lines
    assert "X-ANDROID-CUSTOM:vnd.android.cursor.item/nickname;Jo\\,hnny;1;;;;;;;;;;;;;" in lines
    assert "NOTE:Line one\\nLine two\\, with a comma\\; and a semicolon" in lines
    assert f"PHOTO;TYPE=JPEG;ENCODING=b:{PHOTO_B64}" in lines
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))


def test_every_property_and_parameter_survives_a_round_trip() -> None:
    """Compared on the text, line by line, with an independent reading of the lines."""

    def reading(text: str) -> list[tuple[str, str, frozenset[str], dict[str, str]]]:
        out = []
        for line in unfold(text):
            head = re.match(r'((?:[^:"]|"[^"]*")*):', line)
            assert head is not None
            name, *params = re.findall(r'(?:[^;"]|"[^"]*")+', head.group(1))
            group, _, name = name.rpartition(".")
            if name.upper() in ("BEGIN", "END", "VERSION", "UID"):
                continue
            types: set[str] = set()
            others: dict[str, str] = {}
            for param in params:
                key, _, value = param.partition("=")
                if key.upper() == "TYPE":
                    types.update(v.upper() for v in value.strip('"').split(","))
                elif key.upper() != "ENCODING":
                    others[key.upper()] = value.strip('"')
            out.append((group, name.upper(), frozenset(types), others))
        return out

    for text in (APPLE, GOOGLE):
        assert reading(xml_to_vcard(shown(text))) == reading(text)


def test_google_export() -> None:
    card = shown(GOOGLE)
    found = props(card)
    assert found["NICKNAME"][0].text == "Janie,JD"
    assert [k.text for k in found["CATEGORIES"][0]] == ["myContacts", "Friends"]
    assert [(c.tag, c.text) for c in found["ORG"][0]] == [
        ("ORGNAME", "Example Corp"),
        ("ORGUNIT", "Research"),
        ("ORGUNIT", "Group 7"),
    ]
    assert found["URL"][0].text == "https://blog.example.org/jane"
    text, back = round_trip(card)
    assert_same_plus_fn_uid(card, back)
    lines = unfold(text)
    assert "NICKNAME:Janie,JD" in lines and "CATEGORIES:myContacts,Friends" in lines
    assert "ORG:Example Corp;Research;Group 7" in lines
    assert "item1.URL:https://blog.example.org/jane" in lines


def test_outlook_21_export() -> None:
    card = shown(OUTLOOK)
    found = props(card)
    assert [(c.tag, c.text) for c in found["N"][0]] == [
        ("FAMILY", "Müller"),
        ("GIVEN", "Jürgen"),
    ]
    assert attrs(found["N"][0]) == {"LANGUAGE": "de"}  # CHARSET is spent on decoding
    assert [[c.tag for c in tel] for tel in found["TEL"]] == [
        ["WORK", "VOICE", "NUMBER"],
        ["CELL", "VOICE", "NUMBER"],
    ]
    adr = found["ADR"][0]
    assert [c.tag for c in adr][:2] == ["WORK", "PREF"] and not adr.attrib
    assert adr.find("STREET") is not None and adr.findtext("STREET") == "Hauptstraße 1"
    assert adr.findtext("CTRY") == "Deutschland"  # joined across the soft line break
    assert [line.text for line in found["LABEL"][0].iter("LINE")] == [
        "Hauptstraße 1",
        "10115 Berlin",
    ]
    assert found["NOTE"][0].text == "First line\nSecond line with = sign"
    assert [c.tag for c in found["EMAIL"][0]] == ["PREF", "INTERNET", "USERID"]
    assert found["PHOTO"][0].findtext("BINVAL") == PHOTO_B64
    assert found["X-MS-OL-DEFAULT-POSTAL-ADDRESS"][0].text == "2"
    text, back = round_trip(card)
    assert_same_plus_fn_uid(card, back)
    lines = unfold(text)
    assert lines[1] == "VERSION:3.0"  # written back as 3.0: nothing 2.1-only is left
    assert "ADR;TYPE=WORK,PREF:;;Hauptstraße 1;Berlin;;10115;Deutschland" in lines
    assert "NOTE:First line\\nSecond line with = sign" in lines


def test_vcard_40_keeps_its_version_and_parameters() -> None:
    card = shown(VCARD4)
    assert card.get("version") == "4.0"
    found = props(card)
    assert attrs(found["N"][0]) == {"SORT-AS": "Harten,Rene"}
    assert found["N"][0].findtext("MIDDLE") == "J.,K."
    assert attrs(found["TEL"][0]) == {"VALUE": "uri", "PREF": "1"}
    assert [c.tag for c in found["TEL"][0]] == ["VOICE", "HOME", "NUMBER"]
    assert found["TEL"][0].findtext("NUMBER") == "tel:+1-555-555-5555;ext=5555"
    assert found["ADR"][0].get("LABEL") == "Mail Drop: TNE QB\n123 Main Street"
    assert found["GEO"][0].text == "geo:37.386013,-122.082932" and len(found["GEO"][0]) == 0
    assert found["GENDER"][0].text == "M;he/him"
    assert found["PHOTO"][0].findtext("EXTVAL") == "data:image/png;base64,iVBORw0KGgo="
    text, back = round_trip(card)
    assert_same_plus_fn_uid(card, back)
    lines = unfold(text)
    assert lines[1] == "VERSION:4.0"
    assert 'N;SORT-AS="Harten,Rene":van Harten;René;J.,K.;Dr.;' in lines
    assert "TEL;TYPE=VOICE,HOME;VALUE=uri;PREF=1:tel:+1-555-555-5555;ext=5555" in lines
    assert (
        'ADR;TYPE=WORK;LABEL="Mail Drop: TNE QB^n123 Main Street":'
        ";;123 Main Street;Any Town;CA;91921;U.S.A." in lines
    )
    assert "GEO:geo:37.386013,-122.082932" in lines


def test_only_the_first_card_and_not_its_agent() -> None:
    text = (
        "junk before\r\nBEGIN:VCARD\r\nVERSION:2.1\r\nFN:First\r\nAGENT:\r\nBEGIN:VCARD\r\n"
        "FN:Agent\r\nEND:VCARD\r\nTEL:1\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:Second\r\nEND:VCARD\r\n"
    )
    card = shown(text)
    assert [(c.tag, c.text) for c in card if c.tag != "TEL"] == [("FN", "First"), ("AGENT", None)]
    assert card.find("TEL") is not None


@pytest.mark.parametrize(
    "text", ["", "hello", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "FN:x\r\nEND:VCARD"]
)
def test_not_a_vcard(text: str) -> None:
    assert vcard_to_xml(text) is None


def test_characters_xml_cannot_carry_are_dropped() -> None:
    card = shown("BEGIN:VCARD\r\nFN;X-A=a\x01b:Jo\x00hn\ufffe\x1b\r\nEND:VCARD\r\n")
    assert xml.serialize(card) == b'<vCard><FN X-A="ab">John</FN></vCard>'


def test_values_cannot_break_out_of_their_line() -> None:
    card = xml.parse(
        b"<vCard><NOTE>a&#13;&#10;END:VCARD&#13;BEGIN:VCARD</NOTE>"
        b'<X-FOO X-P="q&quot;;x&#10;">b&#10;c</X-FOO>'
        b"<PHOTO><BINVAL>AA\nBB&#13;\n CC</BINVAL></PHOTO></vCard>"
    )
    lines = unfold(xml_to_vcard(card))
    assert "NOTE:a\\nEND:VCARD\\nBEGIN:VCARD" in lines
    assert 'X-FOO;X-P="q^\';x^n":b\\nc' in lines
    assert "PHOTO;ENCODING=b:AABBCC" in lines
    assert lines.count("END:VCARD") == 1


def test_long_lines_fold_at_75_octets_between_characters() -> None:
    note = "Grüße aus Köln — 東京からの挨拶 " * 12
    card = xml.parse(f"<vCard><FN>x</FN><NOTE>{note}</NOTE></vCard>".encode())
    text = xml_to_vcard(card)
    physical = text.split("\r\n")
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    assert any(len(line.encode("utf-8")) >= 72 for line in physical)
    assert shown(text).findtext("NOTE") == note


def test_pretty_printed_type_children_do_not_leak_whitespace() -> None:
    card = xml.parse(b"<vCard>\n  <URL>\n    <HOME/>\n    http://a.example/\n  </URL>\n</vCard>")
    assert "URL;TYPE=HOME:http://a.example/" in unfold(xml_to_vcard(card))
    card = xml.parse(b"<vCard><URL>\n  <HOME/>http://a.example/</URL></vCard>")
    assert "URL;TYPE=HOME:http://a.example/" in unfold(xml_to_vcard(card))


def test_vcard_temp_spellings_are_accepted() -> None:
    card = xml.parse(
        b'<vCard xmlns="vcard-temp"><PHOTO><TYPE>image/jpeg</TYPE><BINVAL>AAAA</BINVAL></PHOTO>'
        b"<CATEGORIES><KEYWORD>a,b</KEYWORD><KEYWORD>c</KEYWORD></CATEGORIES><FN>x</FN></vCard>"
    )
    lines = unfold(xml_to_vcard(card))
    assert "PHOTO;TYPE=image/jpeg;ENCODING=b:AAAA" in lines
    assert "CATEGORIES:a\\,b,c" in lines


@pytest.mark.parametrize(
    "document",
    [
        b"<contact><FN>x</FN></contact>",
        b"<vCard><X_Y>x</X_Y></vCard>",
        b'<vCard><EMAIL group="item 1"><USERID>a@b</USERID></EMAIL></vCard>',
        b'<vCard><EMAIL x_y="1"><USERID>a@b</USERID></EMAIL></vCard>',
        b"<vCard><TEL><NUMBER>1</NUMBER><EXT>2</EXT></TEL></vCard>",
        b'<vCard version="four"/>',
    ],
)
def test_unusable_elements_are_bad_requests(document: bytes) -> None:
    with pytest.raises(BridgeError) as caught:
        xml_to_vcard(xml.parse(document))
    assert caught.value.kind is ErrorKind.BAD_REQUEST


# --- iCalendar ------------------------------------------------------------------------------


def test_vevent_with_rrule_valarm_tzid_and_vtimezone() -> None:
    root = ical_to_xcal(ICAL)
    assert root is not None
    assert root.tag == f"{{{XCAL_NS}}}iCalendar" and root.nsmap == {None: XCAL_NS}
    serialized = xml.serialize(root).decode()
    assert serialized.startswith(
        '<iCalendar xmlns="urn:ietf:params:xml:ns:xcal">'
        '<vCalendar version="2.0" prodid="-//Example Corp.//CalDAV Client//EN" method="REQUEST">'
        "<vtimezone><tzid>Europe/Berlin</tzid><daylight><tzoffsetfrom>+0100</tzoffsetfrom>"
    )
    ns = {"c": XCAL_NS}
    (timezone,) = root.findall("c:vCalendar/c:vtimezone", ns)
    assert [etree.QName(c).localname for c in timezone] == ["tzid", "daylight", "standard"]
    assert timezone.findtext("c:standard/c:rrule", namespaces=ns) == (
        "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"
    )
    (event,) = root.findall("c:vCalendar/c:vevent", ns)
    assert [etree.QName(c).localname for c in event] == [
        "uid",
        "dtstamp",
        "dtstart",
        "dtend",
        "rrule",
        "exdate",
        "summary",
        "description",
        "organizer",
        "attendee",
        "x-microsoft-cdo-busystatus",
        "valarm",
    ]
    body = serialized[serialized.index("<vevent>") :]
    assert (
        '<dtstart tzid="Europe/Berlin">20240115T090000</dtstart>'
        '<dtend tzid="Europe/Berlin">20240115T093000</dtend>'
        "<rrule>FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20240331T225959Z</rrule>"
        '<exdate tzid="Europe/Berlin">20240122T090000,20240124T090000</exdate>'
        "<summary>Stand-up, daily</summary>"
        "<description>Line one\nLine two; with a semicolon and a line long enough to be "
        "folded</description>"
        '<organizer CN="Boss, Big">mailto:boss@example.com</organizer>'
        '<attendee CN="Small Boy" PARTSTAT="NEEDS-ACTION" RSVP="TRUE" ROLE="REQ-PARTICIPANT">'
        "mailto:boy@example.com</attendee>"
        "<x-microsoft-cdo-busystatus>BUSY</x-microsoft-cdo-busystatus>"
        "<valarm><action>DISPLAY</action><description>Reminder</description>"
        '<trigger RELATED="START">-PT15M</trigger></valarm></vevent></vCalendar></iCalendar>'
    ) in body


def test_ical_matches_the_spec_example_shape() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nPRODID:CommuniGate Pro 5.1.7\r\nVERSION:2.0\r\n"
        "BEGIN:VEVENT\r\nORGANIZER;CN=Big Boss:MAILTO:boss@company.dom\r\n"
        "DTSTART;TZID=NorthAmerica/Pacific:20060515T100000\r\nSEQUENCE:0\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    root = ical_to_xcal(text)
    assert root is not None
    assert xml.serialize(root) == (
        b'<iCalendar xmlns="urn:ietf:params:xml:ns:xcal">'
        b'<vCalendar method="PUBLISH" prodid="CommuniGate Pro 5.1.7" version="2.0"><vevent>'
        b'<organizer CN="Big Boss">MAILTO:boss@company.dom</organizer>'
        b'<dtstart tzid="NorthAmerica/Pacific">20060515T100000</dtstart>'
        b"<sequence>0</sequence></vevent></vCalendar></iCalendar>"
    )


def test_ical_unbalanced_and_stray_ends() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:a\r\nBEGIN:VALARM\r\nACTION:AUDIO\r\n"
        "END:VEVENT\r\nEND:VTODO\r\nBEGIN:VTODO\r\nSUMMARY:b\r\nEND:VCALENDAR\r\nBEGIN:VEVENT\r\n"
    )
    root = ical_to_xcal(text)
    assert root is not None
    assert xml.serialize(root).replace(f' xmlns="{XCAL_NS}"'.encode(), b"") == (
        b"<iCalendar><vCalendar><vevent><summary>a</summary><valarm><action>AUDIO</action>"
        b"</valarm></vevent><vtodo><summary>b</summary></vtodo></vCalendar></iCalendar>"
    )


def test_ical_too_deep_is_a_value_error() -> None:
    text = "BEGIN:VCALENDAR\r\n" + "BEGIN:X-A\r\n" * MAX_COMPONENT_DEPTH
    with pytest.raises(ValueError, match="nested too deeply"):
        ical_to_xcal(text)


@pytest.mark.parametrize("text", ["", "BEGIN:VCARD\r\nEND:VCARD\r\n", "VERSION:2.0"])
def test_not_icalendar(text: str) -> None:
    assert ical_to_xcal(text) is None


# --- properties -----------------------------------------------------------------------------

_NAMES = st.sampled_from(
    [
        *("FN", "NAME", "NOTE", "TITLE", "N", "ADR", "ORG", "GEO", "EMAIL", "TEL", "URL"),
        *("CATEGORIES", "NICKNAME", "LABEL", "PHOTO", "KEY", "BDAY", "AGENT", "X-ABLABEL"),
        *("X-ANDROID-CUSTOM", "CLASS", "GENDER"),
    ]
) | st.from_regex(r"X-[A-Z][A-Z0-9-]{0,8}", fullmatch=True)
_TYPES = st.lists(
    st.sampled_from(["HOME", "work", "PREF", "x509", "X-Custom", "a b", "Ünï", "_x", "1st"]),
    max_size=3,
)
# Everything a written value may hold: escapes, separators, colons, carets, any Unicode.
_VALUE = st.lists(
    st.characters(codec="utf-8", exclude_characters="\r\n")
    | st.sampled_from(["\\", "\\n", "\\,", "\\;", ",", ";", ":", "^", " "]),
    max_size=30,
).map("".join)
_PARAM_TEXT = st.lists(
    st.characters(codec="utf-8", exclude_characters='\r\n"')
    | st.sampled_from(["^n", "^^", "^'", ",", ";", ":"]),
    max_size=10,
).map("".join)


@st.composite
def _lines(draw: st.DrawFn) -> str:
    name = draw(_NAMES)
    group = draw(st.sampled_from(["", "item1.", "g-2."]))
    params = "".join(f";TYPE={t}" if " " not in t else f';TYPE="{t}"' for t in draw(_TYPES))
    for key in draw(st.lists(st.sampled_from(["X-P", "LANGUAGE", "VALUE", "PREF"]), max_size=2)):
        params += f';{key}="{draw(_PARAM_TEXT)}"'
    line = f"{group}{name}{params}:{draw(_VALUE)}"
    width = draw(st.integers(10, 75))
    return "\r\n ".join(line[i : i + width] for i in range(0, len(line), width))


@given(st.lists(_lines(), max_size=8), st.sampled_from(["2.1", "3.0"]))
def test_shown_cards_are_stable_under_a_round_trip(lines: list[str], version: str) -> None:
    text = "BEGIN:VCARD\r\nVERSION:" + version + "\r\n" + "".join(f"{x}\r\n" for x in lines)
    first = shown(text + "END:VCARD\r\n")
    # Documented: next to TYPE children, whitespace with a line break at either end of a value
    # is taken for indentation.
    assume(not any(len(p) and re.search(r"\A\s*\n|\n\s*\Z", p[-1].tail or "") for p in first))
    assert_same_plus_fn_uid(first, shown(xml_to_vcard(first)))


@given(st.text())
def test_any_text_is_shown_or_refused_quietly(text: str) -> None:
    for candidate in (text, "BEGIN:VCARD\r\n" + text, "BEGIN:VCALENDAR\n" + text):
        card = vcard_to_xml(candidate)
        assert card is None or xml.parse(xml.serialize(card)) is not None
        try:
            calendar = ical_to_xcal(candidate)
        except ValueError:
            continue
        assert calendar is None or xml.parse(xml.serialize(calendar)) is not None


_XML_NAME = st.sampled_from(["FN", "N", "EMAIL", "TEL", "GIVEN", "USERID", "HOME", "BINVAL"]) | (
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,6}", fullmatch=True)
)
_XML_TEXT = st.text(
    st.characters(exclude_categories=["Cs", "Cc"]) | st.sampled_from("\n\t\r"), max_size=12
)


@st.composite
def _elements(draw: st.DrawFn, depth: int = 2) -> etree._Element:
    elem = xml.element(draw(_XML_NAME), text=draw(_XML_TEXT) or None)
    for key in draw(st.lists(_XML_NAME, max_size=2, unique=True)):
        elem.set(key, draw(_XML_TEXT))
    if depth:
        for child in draw(st.lists(_elements(depth - 1), max_size=3)):
            elem.append(child)
    return elem


@given(st.lists(_elements(), max_size=5))
def test_any_vcard_element_gives_a_card_or_a_bad_request(children: list[etree._Element]) -> None:
    card = xml.element("vCard")
    card.extend(children)
    try:
        text = xml_to_vcard(card)
    except BridgeError as error:
        assert error.kind is ErrorKind.BAD_REQUEST
        return
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert unfold(text)[0] == "BEGIN:VCARD" and unfold(text).count("END:VCARD") == 1
    assert shown(text) is not None
