"""vCard text <-> the XIMSS <vCard> XML presentation (content lines: contentline.py).

The shape is the one the spec's contactAppend example shows, CommuniGate's reading of the vCard-XML
draft that XEP-0054 ("vcard-temp") also descends from:

    <vCard>
      <NAME>Bjorn Jensen</NAME>
      <N><FAMILY>Jensen</FAMILY><GIVEN>bjorn</GIVEN><MIDDLE>A</MIDDLE>...</N>
      <EMAIL><INTERNET/><USERID>bjorn@domain.dom</USERID></EMAIL>
      <TEL><WORK/><VOICE/><MSG/><NUMBER>+1 313 747-4454</NUMBER></TEL>
      <KEY><x509/><BINVAL>dGhpcyBjb3VsZCBiZSAK...</BINVAL></KEY>
    </vCard>

The example's scheme, applied to every property alike:
- one element per property, in text order, named by the property in upper case; a group prefix
  (Apple's `item1.EMAIL`) becomes the attribute group="item1". BEGIN, END and VERSION are not
  shown; a card of another version than 2.1 or 3.0 carries it as version="4.0" on <vCard>.
- each TYPE value becomes an empty child element ahead of the value: well-known values (HOME,
  WORK, PREF, INTERNET...) in upper case, others as written (x509). A value that is no XML name
  goes into a TYPE attribute instead. vCard 2.1's bare parameters (TEL;WORK;VOICE) are TYPE values.
- every other parameter becomes an attribute named by the parameter in upper case, its values
  joined by commas, RFC 6868 ^-escapes decoded (<TEL PREF="1">, <ADR LABEL="...">).
- ENCODING=b (2.1: BASE64) makes the value a <BINVAL> child, whitespace removed; written back as
  ENCODING=b. QUOTED-PRINTABLE and CHARSET (2.1) are decoded into the text and not shown.
- the value, by the table _SHAPES (children named as vcard-temp names them):
      N    FAMILY GIVEN MIDDLE PREFIX SUFFIX   ADR  POBOX EXTADD STREET LOCALITY REGION PCODE CTRY
      ORG  ORGNAME ORGUNIT...                  GEO  LAT LON (a 4.0 geo: URI stays plain text)
      EMAIL USERID   TEL NUMBER   PHOTO LOGO SOUND EXTVAL   KEY CRED
      CATEGORIES KEYWORD...   LABEL LINE... (one per line of the label)
  every other property: the element's own text. Empty components are left out.
- escapes: text properties (FN, NOTE, ORG...) are unescaped and written back escaped; URI-like
  ones (URL, TEL, EMAIL, BDAY...) only lose needless backslashes (Apple's `http\\://`); properties
  the table does not know (X-ABLabel, X-ANDROID-CUSTOM...) keep their escapes and separators as
  written, only `\\n` becomes a line break, so values with a structure of their own survive.

Known losses, all cosmetic: a literal (escaped) comma inside N or NICKNAME becomes a separator;
CLASS and AGENT stay text (vcard-temp nests them as elements); property or parameter names XML
cannot carry (starting with a digit) and characters XML cannot carry are dropped.

xml_to_vcard writes vCard 3.0 (unless <vCard version="..."> says otherwise): the presentation is
3.0's own (NAME and ENCODING=b, which 4.0 removed, appear in the spec's example), and 3.0 is what
the address books the bridge serves read and write; 4.0 parameters pass through untouched.
"""

from __future__ import annotations

import codecs
import enum
import quopri
import re
import uuid
from dataclasses import dataclass

from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.mime.contentline import (
    XML_NAME,
    ContentLine,
    escape_value,
    fold_line,
    param_value,
    parse_content_lines,
    split_value,
    unescape_raw,
    unescape_text,
    unescape_uri,
)
from bridge.mime.decode import xml_safe

# --- The presentation table --------------------------------------------------------------------


class _Kind(enum.Enum):
    TEXT = "text"  # unescaped; written back with \\ \n \, \; escapes
    URI = "uri"  # needless \, \; \: dropped; written back as is
    RAW = "raw"  # escapes kept, only \n decoded; written back as is


@dataclass(frozen=True, slots=True)
class _Shape:
    kind: _Kind = _Kind.RAW
    value: str | None = None  # one child holding the value (EMAIL: USERID)
    parts: tuple[str, ...] = ()  # one child per ;-separated component
    more: str | None = None  # children for the components past `parts` (ORG: ORGUNIT)
    items: str | None = None  # one child per ,-separated item (CATEGORIES: KEYWORD)
    lines: str | None = None  # one child per line of the text (LABEL: LINE)
    commas: bool = False  # commas separate list values: left bare when written back
    uri_alt: bool = False  # a value that is a URI is shown as plain text (GEO in 4.0)

    def children(self) -> frozenset[str]:
        names = (self.value, self.more, self.items, self.lines, *self.parts)
        return frozenset(name for name in names if name)


_TEXT = _Shape(_Kind.TEXT)
_URI = _Shape(_Kind.URI)
_RAW = _Shape()
_SHAPES: dict[str, _Shape] = {
    "N": _Shape(_Kind.TEXT, parts=("FAMILY", "GIVEN", "MIDDLE", "PREFIX", "SUFFIX"), commas=True),
    "ADR": _Shape(
        _Kind.TEXT, parts=("POBOX", "EXTADD", "STREET", "LOCALITY", "REGION", "PCODE", "CTRY")
    ),
    "ORG": _Shape(_Kind.TEXT, parts=("ORGNAME",), more="ORGUNIT"),
    "GEO": _Shape(_Kind.TEXT, parts=("LAT", "LON"), uri_alt=True),
    "CATEGORIES": _Shape(_Kind.TEXT, items="KEYWORD"),
    "LABEL": _Shape(_Kind.TEXT, lines="LINE"),
    "NICKNAME": _Shape(_Kind.TEXT, commas=True),
    "EMAIL": _Shape(_Kind.URI, value="USERID"),
    "TEL": _Shape(_Kind.URI, value="NUMBER"),
    "PHOTO": _Shape(_Kind.URI, value="EXTVAL"),
    "LOGO": _Shape(_Kind.URI, value="EXTVAL"),
    "SOUND": _Shape(_Kind.URI, value="EXTVAL"),
    "KEY": _Shape(value="CRED"),
    **dict.fromkeys(
        ("FN", "NAME", "NOTE", "TITLE", "ROLE", "MAILER", "PRODID", "SORT-STRING", "UID", "CLASS"),
        _TEXT,
    ),
    **dict.fromkeys(
        ("URL", "SOURCE", "IMPP", "FBURL", "CALURI", "CALADRURI", "MEMBER", "RELATED"),
        _URI,
    ),
    **dict.fromkeys(("BDAY", "ANNIVERSARY", "REV", "TZ"), _URI),
}
_UNESCAPE = {_Kind.TEXT: unescape_text, _Kind.URI: unescape_uri, _Kind.RAW: unescape_raw}
# TYPE values of RFC 2426 and RFC 6350, shown in upper case whatever case the text used.
_KNOWN_TYPES = frozenset(
    {
        *("HOME", "WORK", "PREF", "VOICE", "FAX", "MSG", "CELL", "PAGER", "BBS", "MODEM", "CAR"),
        *("ISDN", "VIDEO", "PCS", "TEXT", "TEXTPHONE", "DOM", "INTL", "POSTAL", "PARCEL"),
        *("INTERNET", "X400"),
    }
)
_ENCODINGS_21 = frozenset({"7BIT", "8BIT", "QUOTED-PRINTABLE", "BASE64", "B"})
_VALUES_21 = frozenset({"INLINE", "URL", "CONTENT-ID", "CID"})
_TYPE_ELEMENT = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*\Z")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_WHITESPACE = re.compile(r"\s+")
_INDENTATION = re.compile(r"\A[ \t]*\n\s*|\s*\n[ \t]*\Z")
_STRUCTURE = frozenset({"BEGIN", "END", "VERSION"})

# --- vCard text -> XML -------------------------------------------------------------------------


def vcard_to_xml(text: str) -> etree._Element | None:
    """The first vCard of `text` as a <vCard> element; None when the text holds no vCard."""
    # Characters XML cannot carry go first: dropped later, they could split an escape pair.
    lines = parse_content_lines(xml_safe(text))
    if not any(line.name == "BEGIN" and line.value.strip().upper() == "VCARD" for line in lines):
        return None
    card = xml.element("vCard")
    version, depth = "", 0
    for line in lines:  # the rest of the same iterator: this card's lines
        if line.name == "BEGIN":  # a 2.1 AGENT's nested card: skipped with its lines
            depth += 1
        elif line.name == "END":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and line.name == "VERSION":
            version = line.value.strip()
        elif depth == 0 and XML_NAME.match(line.name):
            card.append(_property_element(line))
    if re.fullmatch(r"\d\.\d", version) and version not in ("2.1", "3.0"):
        card.set("version", version)
    return card


def _property_element(line: ContentLine) -> etree._Element:
    shape = _SHAPES.get(line.name, _RAW)
    attrs = {"group": line.group} if line.group else {}
    types: list[str] = []
    encoding = charset = ""
    for name, values in line.params:
        if name == "" and values[0].upper() in _ENCODINGS_21:
            encoding = values[0].upper()
        elif name == "" and values[0].upper() in _VALUES_21:
            attrs["VALUE"] = values[0]
        elif name in ("", "TYPE"):
            types.extend(piece for value in values for piece in value.split(",") if piece)
        elif name == "ENCODING":
            encoding = values[0].upper()
        elif name == "CHARSET":
            charset = values[0]
        elif XML_NAME.match(name):
            joined = xml_safe(",".join(values))
            attrs[name] = f"{attrs[name]},{joined}" if name in attrs else joined
    elem = xml.element(line.name, attrs)
    odd_types: list[str] = []
    for value in dict.fromkeys(t.upper() if t.upper() in _KNOWN_TYPES else t for t in types):
        if _TYPE_ELEMENT.match(value):
            xml.sub(elem, value)
        elif xml_safe(value):
            odd_types.append(xml_safe(value))
    if odd_types:
        elem.set("TYPE", ",".join(odd_types))
    value = line.value
    if encoding == "QUOTED-PRINTABLE":
        value = xml_safe(_decode_qp(value, charset).replace("\r\n", "\n"))
    if encoding in ("B", "BASE64"):
        _sub_text(elem, "BINVAL", _WHITESPACE.sub("", value))
    else:
        _fill(elem, shape, value)
    return elem


def _decode_qp(value: str, charset: str) -> str:
    data = quopri.decodestring(value.encode("utf-8"))
    try:
        return data.decode(codecs.lookup(charset or "utf-8").name)
    except (LookupError, UnicodeDecodeError):
        # Outlook and old phones leave the charset out or name one Python lacks: their bytes
        # are UTF-8 or Windows-1252 in practice.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")


def _fill(elem: etree._Element, shape: _Shape, value: str) -> None:
    if shape.parts and not (shape.uri_alt and _URI_SCHEME.match(value)):
        components = [unescape_text(piece) for piece in split_value(value, ";")]
        named = len(shape.parts)
        if shape.more is None and len(components) > named:  # a surplus stays in the last part
            components[named - 1 :] = [";".join(components[named - 1 :])]
        for tag, component in zip(shape.parts, components, strict=False):
            _sub_text(elem, tag, component, skip_empty=True)
        extra = components[named:]
        while extra and not extra[-1]:
            extra.pop()
        for component in extra:
            _sub_text(elem, shape.more or "", component)
    elif shape.parts:
        _set_value(elem, unescape_raw(value))
    elif shape.items:
        for item in split_value(value, ","):
            _sub_text(elem, shape.items, unescape_text(item), skip_empty=True)
    elif shape.lines:
        for text_line in unescape_text(value).split("\n"):
            _sub_text(elem, shape.lines, text_line)
    elif shape.value:
        _sub_text(elem, shape.value, _UNESCAPE[shape.kind](value))
    else:
        _set_value(elem, _UNESCAPE[shape.kind](value))


def _set_value(elem: etree._Element, text: str) -> None:
    """The element's own value goes after its TYPE children, as the values in the spec do."""
    text = xml_safe(text.replace("\r\n", "\n"))
    if text and len(elem):
        elem[-1].tail = text
    elif text:
        elem.text = text


def _sub_text(parent: etree._Element, tag: str, text: str, skip_empty: bool = False) -> None:
    text = xml_safe(text)
    if text or not skip_empty:
        _set_value(xml.sub(parent, tag), text)


# --- XML -> vCard text -------------------------------------------------------------------------


def xml_to_vcard(element: etree._Element) -> str:
    """vCard 3.0 text (CRLF lines folded at 75 octets) for a <vCard> element, with the UID and FN
    contactAppend promises added when missing; BridgeError(BAD_REQUEST) when it is unusable."""
    if not isinstance(element.tag, str) or etree.QName(element).localname != "vCard":
        raise BridgeError(ErrorKind.BAD_REQUEST, "a vCard element is expected")
    version = element.get("version", "3.0")
    if not re.fullmatch(r"\d\.\d", version):
        raise BridgeError(ErrorKind.BAD_REQUEST, "unknown vCard version")
    lines = ["BEGIN:VCARD", f"VERSION:{version}"]
    names: set[str] = set()
    for child in element:
        if isinstance(child.tag, str):
            name = etree.QName(child).localname.upper()
            if name not in _STRUCTURE:
                names.add(name)
                lines.append(_property_line(child, name))
    if "FN" not in names:
        lines.append("FN:" + _escape(_formatted_name(element), _Kind.TEXT))
    if "UID" not in names:
        lines.append(f"UID:{uuid.uuid4()}")
    lines.append("END:VCARD")
    return "".join(fold_line(line) + "\r\n" for line in lines)


def _property_line(elem: etree._Element, name: str) -> str:
    if not XML_NAME.match(name):
        raise BridgeError(ErrorKind.BAD_REQUEST, "bad vCard property name")
    shape = _SHAPES.get(name, _RAW)
    group = ""
    params: list[tuple[str, str]] = []
    types: list[str] = []
    for key, attr_value in elem.attrib.items():
        qname = etree.QName(key)
        if qname.namespace:  # xml:lang and the like describe the XML, not the card
            continue
        if qname.localname == "group":
            group = str(attr_value)
            if not re.fullmatch(r"[A-Za-z0-9-]+", group):
                raise BridgeError(ErrorKind.BAD_REQUEST, "bad vCard property group")
        elif qname.localname.upper() == "TYPE":
            types.extend(piece for piece in str(attr_value).split(",") if piece)
        elif XML_NAME.match(qname.localname):
            params.append((qname.localname.upper(), str(attr_value)))
        else:
            raise BridgeError(ErrorKind.BAD_REQUEST, "bad vCard parameter name")
    values: dict[str, list[str]] = {}
    binval: str | None = None
    value_names = shape.children()
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        tag = etree.QName(child).localname
        content = _all_text(child)
        if tag == "BINVAL":
            binval = content
        elif tag in value_names:
            values.setdefault(tag, []).append(content)
        elif tag == "TYPE":  # vcard-temp writes <TYPE>image/jpeg</TYPE>
            types.append(content.strip())
        elif len(child) == 0 and not content.strip():
            types.append(tag)
        else:
            raise BridgeError(ErrorKind.BAD_REQUEST, "unexpected element in a vCard property")
    if binval is not None:  # whatever it holds, without whitespace it stays one value
        value = _WHITESPACE.sub("", binval)
        params.append(("ENCODING", "b"))
    else:
        value = _value_text(shape, values, _direct_text(elem))
    head = f"{group}.{name}" if group else name
    if types:
        head += ";TYPE=" + ",".join(param_value(t) for t in dict.fromkeys(types) if t)
    head += "".join(f";{key}={param_value(text)}" for key, text in params)
    return f"{head}:{value}"


def _all_text(elem: etree._Element) -> str:
    return "".join(str(piece) for piece in elem.itertext())


def _direct_text(elem: etree._Element) -> str:
    if len(elem) == 0:
        return elem.text or ""
    # Text around TYPE children: whitespace with a line break in it at either end is a pretty
    # printer's indentation, no part of the value.
    text = (elem.text or "") + "".join(child.tail or "" for child in elem)
    return _INDENTATION.sub("", text)


def _value_text(shape: _Shape, values: dict[str, list[str]], direct: str) -> str:
    def first(tag: str) -> str:
        return values.get(tag, [""])[0]

    text_kind = _Kind.TEXT
    if shape.parts and values:
        components = [first(tag) for tag in shape.parts] + values.get(shape.more or "", [])
        text = ";".join(_escape(part, text_kind, shape.commas) for part in components)
        # An escaped colon keeps a LAT such as "x:1" from being read back as a URI.
        return text.replace(":", "\\:") if shape.uri_alt else text
    if shape.parts and shape.uri_alt:
        return _escape(direct, _Kind.RAW)
    if shape.parts:
        components = [direct] + [""] * (len(shape.parts) - 1)
        return ";".join(_escape(part, text_kind, shape.commas) for part in components)
    if shape.items and values:
        return ",".join(_escape(item, text_kind) for item in values[shape.items])
    if shape.items:
        return _escape(direct, text_kind, commas=True)
    if shape.lines:
        return _escape("\n".join(values.get(shape.lines, [direct])), text_kind)
    if shape.value and values:
        return _escape(first(shape.value), shape.kind, shape.commas)
    return _escape(direct, shape.kind, shape.commas)


def _escape(value: str, kind: _Kind, commas: bool = False) -> str:
    return escape_value(value, kind is _Kind.TEXT, commas)


def _formatted_name(card: etree._Element) -> str:
    """FN from N (prefix given middle family suffix), else the first e-mail, else the org."""

    def child_text(prop: etree._Element, tag: str) -> str:
        found = [c for c in prop if isinstance(c.tag, str) and etree.QName(c).localname == tag]
        return _all_text(found[0]).strip() if found else ""

    props = [c for c in card if isinstance(c.tag, str)]
    for name, tags in (
        ("N", ("PREFIX", "GIVEN", "MIDDLE", "FAMILY", "SUFFIX")),
        ("EMAIL", ("USERID",)),
        ("ORG", ("ORGNAME",)),
    ):
        for prop in props:
            if etree.QName(prop).localname.upper() == name:
                text = " ".join(filter(None, (child_text(prop, tag) for tag in tags)))
                if text or _direct_text(prop):
                    return text or _direct_text(prop)
    return ""
