"""Pure calendar core: iCalendar items, time zones and occurrences, with no I/O."""
