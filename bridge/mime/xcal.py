"""iCalendar text -> the XIMSS XML iCalendar presentation.

The shape is the spec's calendarPublish example, which is CommuniGate's own, not RFC 6321 xCal:
the namespace is RFC 6321's, but there are no <properties>/<components> wrappers and no typed
value elements.

    <iCalendar xmlns="urn:ietf:params:xml:ns:xcal">
      <vCalendar method="PUBLISH" prodid="CommuniGate Pro 5.1.7" version="2.0">
        <vtimezone><tzid>Europe/Berlin</tzid><standard>...</standard></vtimezone>
        <vevent>
          <organizer CN="Big Boss">MAILTO:boss@company.dom</organizer>
          <rrule>FREQ=WEEKLY;BYDAY=MO,TH</rrule>
          <dtstart tzid="NorthAmerica/Pacific">20060515T100000</dtstart>
          <valarm><action>DISPLAY</action>...</valarm>
        </vevent>
      </vCalendar>
    </iCalendar>

The example's scheme, applied to everything:
- the properties of VCALENDAR itself become attributes of <vCalendar>, named in lower case; their
  parameters are not shown (attributes cannot carry them, and the example has none);
- every component becomes an element named in lower case (vevent, vtodo, vtimezone, standard,
  daylight, valarm, x-...), nested and ordered as in the text;
- every property becomes an element named in lower case; its parameters become attributes named
  as iCalendar writes them, in upper case (CN, PARTSTAT, VALUE), except TZID, which the example
  writes `tzid`; several values of one parameter are joined by commas;
- values of TEXT properties (SUMMARY, DESCRIPTION, LOCATION, X-..., anything VALUE=TEXT) are
  unescaped; values of the other types (dates, RRULE, durations, URIs, numbers...) stay as written.
Only the first VCALENDAR of the text is shown; characters XML cannot carry are dropped.
bridge/calendar/xcal_in.py reads the same shape back into iCalendar (DEFAULT_TYPES is shared).
"""

from __future__ import annotations

from lxml import etree

from bridge import xml
from bridge.mime.contentline import XML_NAME, ContentLine, parse_content_lines, unescape_text
from bridge.mime.decode import xml_safe

XCAL_NS = "urn:ietf:params:xml:ns:xcal"
# VCALENDAR > VTIMEZONE > STANDARD and VCALENDAR > VEVENT > VALARM are the deepest RFC 5545 goes;
# this leaves room for X- components while bounding the tree built from one message part.
MAX_COMPONENT_DEPTH = 8
# The default value types of the properties that are not TEXT (RFC 5545 section 3.8, RFC 7986's
# REFRESH-INTERVAL and SOURCE); xcal_in reads values back by the same table.
DEFAULT_TYPES: dict[str, str] = {
    **dict.fromkeys(("COMPLETED", "CREATED", "DTEND", "DTSTAMP", "DTSTART", "DUE"), "DATE-TIME"),
    **dict.fromkeys(("EXDATE", "LAST-MODIFIED", "RDATE", "RECURRENCE-ID"), "DATE-TIME"),
    **dict.fromkeys(("DURATION", "TRIGGER", "REFRESH-INTERVAL"), "DURATION"),
    **dict.fromkeys(("ATTACH", "TZURL", "URL", "SOURCE"), "URI"),
    **dict.fromkeys(("ATTENDEE", "ORGANIZER"), "CAL-ADDRESS"),
    **dict.fromkeys(("PERCENT-COMPLETE", "PRIORITY", "REPEAT", "SEQUENCE"), "INTEGER"),
    **dict.fromkeys(("RRULE", "EXRULE"), "RECUR"),
    **dict.fromkeys(("TZOFFSETFROM", "TZOFFSETTO"), "UTC-OFFSET"),
    "FREEBUSY": "PERIOD",
    "GEO": "FLOAT",
}
_NOT_TEXT = frozenset(DEFAULT_TYPES)
_ATTRIBUTE_NAMES = {"TZID": "tzid"}  # the spec's example writes this one parameter in lower case


def ical_to_xcal(text: str) -> etree._Element | None:
    """The first VCALENDAR of `text` as an <iCalendar> element; None when there is none.

    Raises ValueError when components nest deeper than MAX_COMPONENT_DEPTH.
    """
    lines = parse_content_lines(xml_safe(text))
    if not any(line.name == "BEGIN" and _component(line) == "VCALENDAR" for line in lines):
        return None
    # lxml-stubs do not know the None key that makes the namespace the default one.
    root = etree.Element(_tag("iCalendar"), nsmap={None: XCAL_NS})  # type: ignore[dict-item]
    calendar = xml.sub(root, _tag("vCalendar"))
    # The open components; None stands for one whose name XML cannot carry, shown with nothing
    # inside it.
    stack: list[etree._Element | None] = [calendar]
    names = ["VCALENDAR"]
    for line in lines:  # the rest of the same iterator: this calendar's lines
        parent = stack[-1]
        if line.name == "BEGIN":
            name = _component(line)
            if len(stack) >= MAX_COMPONENT_DEPTH:
                raise ValueError("iCalendar components nested too deeply")
            shown = parent is not None and XML_NAME.match(name) is not None
            stack.append(
                xml.sub(parent, _tag(name.lower())) if shown and parent is not None else None
            )
            names.append(name)
        elif line.name == "END":
            name = _component(line)
            if name in names:  # an END closes whatever its text left open inside it
                while names:
                    stack.pop()
                    if names.pop() == name:
                        break
                if not names:
                    break
        elif parent is calendar:
            attr = line.name.lower()
            if XML_NAME.match(attr) and attr not in calendar.attrib:
                calendar.set(attr, xml_safe(unescape_text(line.value)))
        elif parent is not None and XML_NAME.match(line.name):
            parent.append(_property(line))
    return root


def _component(line: ContentLine) -> str:
    return line.value.strip().upper()


def _tag(name: str) -> str:
    return f"{{{XCAL_NS}}}{name}"


def _property(line: ContentLine) -> etree._Element:
    attrs: dict[str, str] = {}
    value_type = "TEXT" if line.name not in _NOT_TEXT else ""
    for name, values in line.params:
        if not XML_NAME.match(name):  # also the bare values vCalendar 1.0 allowed
            continue
        joined = xml_safe(",".join(values))
        if name == "VALUE":
            value_type = joined.upper()
        attr = _ATTRIBUTE_NAMES.get(name, name)
        attrs[attr] = f"{attrs[attr]},{joined}" if attr in attrs else joined
    elem = xml.element(_tag(line.name.lower()), attrs)
    value = unescape_text(line.value) if value_type == "TEXT" else line.value
    value = xml_safe(value.replace("\r\n", "\n"))
    if value:
        elem.text = value
    return elem
