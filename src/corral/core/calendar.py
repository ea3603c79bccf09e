"""``on_calendar``: when a timer fires, in systemd's calendar syntax or as a five-field cron line.

Pure: :func:`parse_calendar` turns the text into a :class:`Calendar` (or raises
:class:`CalendarError` saying what is wrong and where), and ``Calendar.next_after(moment)`` gives
the first matching moment strictly after a given one. Moments are naive ``datetime`` values in
the wall-clock time the caller chose (local time, or UTC for a spec that ends in ``UTC``); the
daemon reads the clock, this never does.

systemd (systemd.time(7)): ``[WEEKDAYS] [YEAR-MONTH-DAY] [HOUR:MINUTE[:SECOND]] [UTC]``, each
field ``*``, a value, a list (``,``), a range (``..``) or a repetition (``start/step``,
``start..end/step``); weekdays as names (``Mon..Fri``, ``Sat,Sun``); a missing date means every
day, a missing time midnight, missing seconds ``:00``; and the shorthands ``minutely``,
``hourly``, ``daily``, ``weekly``, ``monthly``, ``quarterly``, ``semiannually``, ``yearly``.
Cron: ``MINUTE HOUR DAY MONTH WEEKDAY`` with ``*``, lists, ranges (``-``), steps (``/``) and
names; as cron does, when both DAY and WEEKDAY are restricted a day matching either fires.
"""

from __future__ import annotations

import datetime as _dt
import re

from msgspec import Struct

_DAY = _dt.timedelta(days=1)
#: How far ahead to look for a match before saying there is none (``2/30`` never comes).
HORIZON_DAYS = 366 * 8

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

SHORTHANDS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "midnight": "*-*-* 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
}


class CalendarError(ValueError):
    """A calendar that does not parse; the message says which part and why."""


class Calendar(Struct, frozen=True):
    """The allowed values of each field (None: any), and whether it is in UTC."""

    text: str
    years: frozenset[int] | None
    months: frozenset[int]
    days: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday
    hours: frozenset[int]
    minutes: frozenset[int]
    seconds: frozenset[int]
    utc: bool = False
    either_day: bool = False  # cron: a restricted day or a restricted weekday fires

    def next_after(self, moment: _dt.datetime) -> _dt.datetime | None:
        """The first matching moment strictly after ``moment`` (whole seconds); None if none
        comes within HORIZON_DAYS."""
        start = moment.replace(microsecond=0) + _dt.timedelta(seconds=1)
        day = start.date()
        for _ in range(HORIZON_DAYS):
            if self._day_matches(day):
                earliest = start.time() if day == start.date() else _dt.time(0, 0, 0)
                found = self._first_time(earliest)
                if found is not None:
                    return _dt.datetime.combine(day, found)
            day += _DAY
        return None

    def _day_matches(self, day: _dt.date) -> bool:
        if self.years is not None and day.year not in self.years:
            return False
        if day.month not in self.months:
            return False
        if self.either_day:
            return day.day in self.days or day.weekday() in self.weekdays
        return day.day in self.days and day.weekday() in self.weekdays

    def _first_time(self, earliest: _dt.time) -> _dt.time | None:
        for hour in sorted(h for h in self.hours if h >= earliest.hour):
            for minute in sorted(self.minutes):
                if hour == earliest.hour and minute < earliest.minute:
                    continue
                for second in sorted(self.seconds):
                    moment = _dt.time(hour, minute, second)
                    if moment >= earliest:
                        return moment
        return None


def parse_calendar(text: str) -> Calendar:
    """A systemd calendar expression or a five-field cron line."""
    stripped = " ".join(text.split())
    if not stripped:
        raise CalendarError("an empty calendar")
    words = stripped.split(" ")
    if len(words) == 5 and not any(":" in w or ".." in w for w in words):
        return _cron(stripped, words)
    return _systemd(stripped)


# -- the fields ------------------------------------------------------------------------------


def _field(
    text: str, low: int, high: int, what: str, names: tuple[str, ...] = (), sep: str = ".."
) -> frozenset[int]:
    """``*``, ``N``, ``A..B`` (cron: ``A-B``), ``X/STEP`` and comma lists of them."""
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CalendarError(f"{what}: an empty item in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CalendarError(f"{what}: {step_text!r} is not a step (a number above 0)")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif sep in base:
            a, _, b = base.partition(sep)
            first, last = _value(a, low, high, what, names), _value(b, low, high, what, names)
            if last < first:
                raise CalendarError(f"{what}: the range {base!r} goes backwards")
        else:
            first = _value(base, low, high, what, names)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(text: str, low: int, high: int, what: str, names: tuple[str, ...]) -> int:
    """A number, or a name (its three letters, or a weekday's full name)."""
    lowered = text.lower()
    short = lowered[:3]
    if short in names and lowered in (short, _FULL.get(short)):
        return names.index(short) + low
    if not text.isdigit():
        raise CalendarError(f"{what}: {text!r} is not a number from {low} to {high}")
    number = int(text)
    if not low <= number <= high:
        raise CalendarError(f"{what}: {number} is not from {low} to {high}")
    return number


_FULL = {
    "mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday",
    "sat": "saturday", "sun": "sunday",
}  # fmt: skip


# -- systemd ---------------------------------------------------------------------------------

_DATE = re.compile(r"^(?:(?P<year>[^-]+)-)?(?P<month>[^-]+)-(?P<day>[^-]+)$")


def _systemd(text: str) -> Calendar:
    words = text.split(" ")
    utc = words[-1].upper() == "UTC"
    if utc:
        words = words[:-1]
    expanded = " ".join(words)
    expanded = SHORTHANDS.get(expanded.lower(), expanded)
    words = expanded.split(" ")
    weekdays = frozenset(range(7))
    if words and words[0][:1].isalpha():
        weekdays = _field(words[0], 0, 6, "weekday", WEEKDAYS)
        words = words[1:]
    if len(words) > 2:
        raise CalendarError(f"expected [WEEKDAYS] [DATE] [TIME], got {expanded!r}")
    date, time = "*-*-*", "00:00:00"
    for word in words:
        if ":" in word:
            time = word
        elif "-" in word:
            date = word
        else:
            raise CalendarError(f"{word!r} is neither a date (Y-M-D) nor a time (H:M[:S])")
    match = _DATE.match(date)
    if match is None:
        raise CalendarError(f"the date {date!r} is not YEAR-MONTH-DAY or MONTH-DAY")
    year = match["year"] or "*"
    years = None if year == "*" else _field(year, 1970, 2199, "year")
    months = _field(match["month"], 1, 12, "month")
    days = _field(match["day"], 1, 31, "day")
    parts = time.split(":")
    if len(parts) == 2:
        parts.append("00")
    if len(parts) != 3:
        raise CalendarError(f"the time {time!r} is not HOUR:MINUTE[:SECOND]")
    hours = _field(parts[0], 0, 23, "hour")
    minutes = _field(parts[1], 0, 59, "minute")
    seconds = _field(parts[2], 0, 59, "second")
    return Calendar(text, years, months, days, weekdays, hours, minutes, seconds, utc)


# -- cron ------------------------------------------------------------------------------------


def _cron(text: str, words: list[str]) -> Calendar:
    minute, hour, day, month, weekday = words
    minutes = _field(minute, 0, 59, "cron minute", sep="-")
    hours = _field(hour, 0, 23, "cron hour", sep="-")
    days = _field(day, 1, 31, "cron day of month", sep="-")
    months = _field(month, 1, 12, "cron month", MONTHS, sep="-")
    cron_weekdays = _field(weekday, 0, 7, "cron day of week", ("sun", *WEEKDAYS[:6]), sep="-")
    weekdays = frozenset((w - 1) % 7 for w in cron_weekdays)  # cron's 0 and 7 are Sunday
    either = day != "*" and weekday != "*"
    return Calendar(
        text, None, months, days, weekdays, hours, minutes, frozenset({0}),
        either_day=either,
    )  # fmt: skip
