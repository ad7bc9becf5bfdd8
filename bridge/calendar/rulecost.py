"""Upper bounds on what expanding a recurrence rule costs, computed before expanding it.

recurring_ical_events (through dateutil) materialises every instance a query span holds, and
reaches the span by generating, one at a time and into a cache, every instance from DTSTART
on. A rule such as FREQ=SECONDLY, or FREQ=MINUTELY that began a year ago, would cost minutes
and gigabytes before we could stop it. So we bound the cost first, from the rule's text alone:
how many instances can start between two instants.

The bound looks at the rule at two scales. A span of time touches a number of the rule's
periods (FREQ times INTERVAL) and a number of local days; each period holds at most so many
instances (what the rule parts finer than FREQ expand to), and each day at most so many (what
the time-of-day parts allow). The smaller product wins, so a filtered rule such as
FREQ=MINUTELY;BYHOUR=9 counts as 60 a day, not 1,440. Periods and days are taken at their
shortest (a 23-hour day, a 28-day month), which can only make more of them fit. These are
upper bounds, never counts: filters we do not model (BYSETPOS, BYMONTH on a sub-daily rule,
EXDATE) only make the real number smaller. The one place a bound can fall short is a
spring-forward gap, where dateutil's wall-clock instances can land on one instant; a few
instances either way do not matter to a budget.

``query_stop`` then picks how far into the window one resource may be expanded so that its
whole cost stays within the caller's two budgets.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Sequence
from typing import Any

_HOUR = 3600.0
_DAY = 24 * _HOUR
_SHORTEST_DAY = 23 * _HOUR  # a local day that springs forward

# The shortest length of one period of each frequency, allowing a day lost to DST.
_FREQ_SECONDS = {
    "SECONDLY": 1.0,
    "MINUTELY": 60.0,
    "HOURLY": _HOUR,
    "DAILY": _SHORTEST_DAY,
    "WEEKLY": 7 * _DAY - _HOUR,
    "MONTHLY": 28 * _DAY - _HOUR,
    "YEARLY": 365 * _DAY - _HOUR,
}
_SUB_DAILY = ("SECONDLY", "MINUTELY", "HOURLY")

# Time-of-day rule parts: (part, values in its parent unit, seconds in one unit).
_TIME_PARTS = (("BYHOUR", 24, _HOUR), ("BYMINUTE", 60, 60.0), ("BYSECOND", 60, 1.0))

# Rule parts that can put an instance on any day of a MONTHLY or YEARLY period.
_DAY_PARTS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    """At most ``per_unit`` instances start in any stretch of ``seconds`` (one period or day)."""

    seconds: float
    per_unit: int

    def bound(self, span: float) -> int:
        # A closed span of this length touches at most this many units, however aligned.
        return (math.ceil(span / self.seconds) + 1) * self.per_unit


@dataclasses.dataclass(frozen=True, slots=True)
class RuleCost:
    """An upper bound on the instances one RRULE can produce between two instants."""

    dtstart: datetime.datetime  # aware
    scales: tuple[Scale, ...]
    count: int | None  # COUNT, if the rule has one
    until: datetime.datetime | None  # UNTIL as an aware instant, if the rule has one
    lookback: float  # seconds an instance lasts: one that starts this early still overlaps

    def instances(self, start: datetime.datetime, stop: datetime.datetime) -> int:
        """At most how many instances start in [start, stop]."""
        start = max(start, self.dtstart)
        if self.until is not None:
            stop = min(stop, self.until)
        if stop < start:
            return 0
        span = (stop - start).total_seconds()
        found = min(scale.bound(span) for scale in self.scales)
        return found if self.count is None else min(found, self.count)


def rule_cost(
    rule: Any,
    dtstart: datetime.datetime,
    duration: datetime.timedelta,
) -> RuleCost:
    """The cost bound of one parsed RRULE (an icalendar vRecur) starting at ``dtstart``.

    Raises ValueError for a rule without a known FREQ.
    """
    freq = str(_first(rule, "FREQ", "")).upper()
    if freq not in _FREQ_SECONDS:
        raise ValueError(f"unknown FREQ {freq!r}")
    interval = max(1, int(_first(rule, "INTERVAL", 1)))
    per_day, finer = _per_day(rule, freq, interval)
    per_period = finer if freq in _SUB_DAILY else _days_per_period(rule, freq) * per_day
    count_value = _first(rule, "COUNT", None)
    return RuleCost(
        dtstart=dtstart,
        scales=(
            Scale(_FREQ_SECONDS[freq] * interval, per_period),
            Scale(_SHORTEST_DAY, per_day),
        ),
        count=None if count_value is None else max(0, int(count_value)),
        until=_as_instant(_first(rule, "UNTIL", None), dtstart.tzinfo),
        lookback=max(0.0, duration.total_seconds()),
    )


def query_stop(
    costs: Sequence[RuleCost],
    window_start: datetime.datetime,
    window_end: datetime.datetime,
    *,
    max_expansion: int,
    max_occurrences: int,
) -> datetime.datetime:
    """The latest stop in [window_start, window_end] whose expansion stays within budget.

    ``max_expansion`` bounds the instances generated from each DTSTART up to the stop (the
    work); ``max_occurrences`` bounds the instances that start or still last between
    window_start and the stop (the memory). Returns ``window_end`` when the whole window fits,
    and ``window_start`` when not even an empty span does.
    """

    def fits(stop: datetime.datetime) -> bool:
        work = sum(cost.instances(cost.dtstart, stop) for cost in costs)
        held = sum(
            cost.instances(window_start - datetime.timedelta(seconds=cost.lookback), stop)
            for cost in costs
        )
        return work <= max_expansion and held <= max_occurrences

    if fits(window_end):
        return window_end
    if not fits(window_start):
        return window_start
    # Both counts grow with the stop, so a binary search over whole seconds finds the edge.
    low, high = 0, math.ceil((window_end - window_start).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        if fits(window_start + datetime.timedelta(seconds=middle)):
            low = middle
        else:
            high = middle
    return window_start + datetime.timedelta(seconds=low)


def _first(rule: Any, part: str, default: Any) -> Any:
    values = rule.get(part)
    return values[0] if values else default


def _size(rule: Any, part: str) -> int:
    return len(set(map(str, rule.get(part) or ())))


def _per_day(rule: Any, freq: str, interval: int) -> tuple[int, int]:
    """At most how many instances one local day holds, and the expansion finer than FREQ."""
    unit = _FREQ_SECONDS[freq] if freq in _SUB_DAILY else _DAY
    slots = 1
    finer = 1
    for part, full, part_unit in _TIME_PARTS:
        # Without the part, one at or above the frequency's unit ranges freely; a finer one
        # keeps DTSTART's value.
        size = _size(rule, part) or (full if part_unit >= unit else 1)
        slots *= size
        if part_unit < unit:
            finer *= size
    if freq in _SUB_DAILY:
        # Nor can a day hold more than its periods, each expanded by the finer parts.
        slots = min(slots, math.ceil(_DAY / (unit * interval)) * finer)
    return slots, finer


def _days_per_period(rule: Any, freq: str) -> int:
    """At most how many days one period of a DAILY or coarser rule selects."""
    if freq == "DAILY":
        return 1
    if freq == "WEEKLY":
        return min(7, _size(rule, "BYDAY") or 1)
    if any(rule.get(part) for part in _DAY_PARTS):
        # Coarse on purpose: the day scale caps these at one day's worth per day anyway.
        return 31 if freq == "MONTHLY" else 366
    # Only DTSTART's day, in each selected month of a YEARLY rule.
    return max(1, _size(rule, "BYMONTH")) if freq == "YEARLY" else 1


def _as_instant(value: Any, zone: datetime.tzinfo | None) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    if isinstance(value, datetime.date):
        # A date UNTIL includes its whole day.
        return datetime.datetime.combine(value, datetime.time.max, tzinfo=zone)
    return None
