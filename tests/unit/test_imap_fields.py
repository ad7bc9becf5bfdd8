"""The fast summary readers agree with the stdlib parsers they stand in for."""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy

from hypothesis import given
from hypothesis import strategies as st

from adapters.imap.fields import header_values, internal_date

PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
FIELDS = ["Date", "From", "To", "Subject", "X-Priority"]


def stdlib(raw: bytes, fields: list[str]) -> dict[str, str]:
    wanted = {f.lower(): f for f in fields}
    found: dict[str, str] = {}
    for header, value in PARSER.parsebytes(raw).items():
        original = wanted.get(header.lower())
        if original is not None and original not in found:
            found[original] = " ".join(str(value).split())
    return found


NAMES = st.sampled_from(["Date", "from", "TO", "Subject", "X-Other", "subject", "Bad Name", ""])
VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
LINES = st.one_of(
    st.builds(lambda n, v: f"{n}:{v}", NAMES, VALUES),
    st.builds(lambda v: f" {v}", VALUES),
    st.builds(lambda v: f"\t{v}", VALUES),
    VALUES,
)


@given(st.lists(LINES, max_size=8), st.booleans())
def test_ascii_header_blocks_read_as_the_stdlib_reads_them(lines: list[str], ended: bool) -> None:
    raw = "".join(line + "\r\n" for line in lines) + ("\r\n" if ended else "")
    assert header_values(raw.encode(), FIELDS) == stdlib(raw.encode(), FIELDS)


def test_folded_repeated_and_non_ascii_fields() -> None:
    raw = (
        b"Subject: a long\r\n  folded\tsubject\r\nSubject: second\r\n"
        b"From: =?utf-8?q?J=C3=B6rg?= <j@x.test>\r\nTo: caf\xc3\xa9 <c@x.test>\r\n\r\n"
    )
    assert header_values(raw, FIELDS) == stdlib(raw, FIELDS)
    assert header_values(raw, FIELDS)["Subject"] == "a long folded subject"


DATES = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-7)),
                               dt.timezone(dt.timedelta(hours=5, minutes=30))]),
).map(lambda d: d.replace(microsecond=0))  # fmt: skip


@given(DATES, st.booleans())
def test_internal_dates_as_strptime_reads_them(moment: dt.datetime, padded: bool) -> None:
    text = moment.strftime("%d-%b-%Y %H:%M:%S %z")
    if padded and text.startswith("0"):
        text = " " + text[1:]  # RFC 3501 date-day-fixed
    assert internal_date(text) == dt.datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")
    assert internal_date(text) == moment


def test_unreadable_internal_dates_give_none() -> None:
    assert internal_date("yesterday") is None
    assert internal_date("17-Jul-1996 02:44:25 0700") is None
    assert internal_date("31-Feb-1996 02:44:25 +0000") is None
