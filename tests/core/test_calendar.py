"""``on_calendar``: systemd's calendar syntax and five-field cron, against a brute-force search."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.core.calendar import CalendarError, parse_calendar

SUNDAY = dt.datetime(2026, 12, 6, 4, 40, 12)  # a Sunday


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("daily", SUNDAY, dt.datetime(2026, 12, 7, 0, 0)),
        ("hourly", SUNDAY, dt.datetime(2026, 12, 6, 5, 0)),
        ("minutely", SUNDAY, dt.datetime(2026, 12, 6, 4, 41)),
        ("weekly", SUNDAY, dt.datetime(2026, 12, 7, 0, 0)),
        ("monthly", SUNDAY, dt.datetime(2027, 1, 1, 0, 0)),
        ("quarterly", SUNDAY, dt.datetime(2027, 1, 1, 0, 0)),
        ("yearly", SUNDAY, dt.datetime(2027, 1, 1, 0, 0)),
        ("*:0/15", SUNDAY, dt.datetime(2026, 12, 6, 4, 45)),
        ("*-*-* 04:40:12", SUNDAY, dt.datetime(2026, 12, 7, 4, 40, 12)),  # strictly after
        ("Mon..Fri 09:00", SUNDAY, dt.datetime(2026, 12, 7, 9, 0)),
        ("Sat,Sun 20:00", SUNDAY, dt.datetime(2026, 12, 6, 20, 0)),
        ("Sunday 03:00", SUNDAY, dt.datetime(2026, 12, 13, 3, 0)),
        ("*-02-29 12:00", SUNDAY, dt.datetime(2028, 2, 29, 12, 0)),
        ("2027-06-01..03 08:30:05", SUNDAY, dt.datetime(2027, 6, 1, 8, 30, 5)),
        ("*-*-1/10 00:00", SUNDAY, dt.datetime(2026, 12, 11, 0, 0)),
        ("12:00 UTC", SUNDAY, dt.datetime(2026, 12, 6, 12, 0)),
        ("0 3 * * *", SUNDAY, dt.datetime(2026, 12, 7, 3, 0)),
        ("*/5 * * * *", SUNDAY, dt.datetime(2026, 12, 6, 4, 45)),
        ("30 2 * * 1-5", SUNDAY, dt.datetime(2026, 12, 7, 2, 30)),
        ("0 12 * * 7", SUNDAY, dt.datetime(2026, 12, 6, 12, 0)),  # cron's 7 is Sunday too
        ("0 0 1 * mon", SUNDAY, dt.datetime(2026, 12, 7, 0, 0)),  # day OR weekday, as cron
        ("0 0 * jan,jul *", SUNDAY, dt.datetime(2027, 1, 1, 0, 0)),
    ],
)
def test_the_next_firing(text: str, after: dt.datetime, expected: dt.datetime) -> None:
    assert parse_calendar(text).next_after(after) == expected


def test_a_date_that_never_comes_gives_none() -> None:
    assert parse_calendar("*-02-30").next_after(SUNDAY) is None
    assert parse_calendar("2027-02-29").next_after(SUNDAY) is None


def test_utc_is_remembered_for_the_caller() -> None:
    assert parse_calendar("daily UTC").utc and not parse_calendar("daily").utc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("*:61", "minute: 61 is not from 0 to 59"),
        ("25:00", "hour: 25 is not from 0 to 23"),
        ("Funday 10:00", "weekday: 'Funday'"),
        ("*-13-01", "month: 13 is not from 1 to 12"),
        ("*-*-* 10:00 extra", "expected [WEEKDAYS] [DATE] [TIME]"),
        ("*:0/0", "not a step"),
        ("10..5:00", "goes backwards"),
        ("61 * * * *", "cron minute: 61"),
        ("* * * * funday", "cron day of week"),
        ("banana", "weekday: 'banana'"),
        ("10 20:00", "neither a date"),
    ],
)
def test_a_bad_calendar_says_which_part(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_calendar(text)


# -- against brute force ---------------------------------------------------------------------

_CRON_FIELD = st.one_of(
    st.just("*"),
    st.integers(0, 59).map(str),
    st.tuples(st.integers(0, 20), st.integers(20, 59)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(1, 30).map(lambda n: f"*/{n}"),
    st.lists(st.integers(0, 59), min_size=1, max_size=3).map(lambda xs: ",".join(map(str, xs))),
)


def _bounded(field: str, high: int) -> str:
    """Keep a random field's numbers inside the field's range."""
    return ",".join(
        part if part.startswith("*") else "-".join(str(min(int(x), high)) for x in part.split("-"))
        for part in field.split(",")
    )


def _brute(text: str, after: dt.datetime, limit_days: int) -> dt.datetime | None:
    """Minute by minute, the first matching one: cron semantics written out plainly."""
    minute, hour, day, month, weekday = text.split()

    def hits(field: str, value: int, high: int, low: int = 0) -> bool:
        for part in field.split(","):
            base, _, step = part.partition("/")
            if base == "*":
                lo, hi = low, high
            elif "-" in base:
                lo, hi = map(int, base.split("-"))
            else:
                lo = hi = int(base)
                if step:
                    hi = high
            if lo <= value <= hi and (value - lo) % int(step or 1) == 0:
                return True
        return False

    moment = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    for _ in range(limit_days * 24 * 60):
        cron_weekday = (moment.weekday() + 1) % 7
        day_hit = hits(day, moment.day, 31, low=1)
        weekday_hit = hits(weekday, cron_weekday, 6)
        either = day != "*" and weekday != "*"
        days_ok = (day_hit or weekday_hit) if either else (day_hit and weekday_hit)
        if (hits(minute, moment.minute, 59) and hits(hour, moment.hour, 23)
                and hits(month, moment.month, 12, low=1) and days_ok):  # fmt: skip
            return moment
        moment += dt.timedelta(minutes=1)
    return None


@settings(max_examples=150, deadline=None)
@given(
    minute=_CRON_FIELD,
    hour=_CRON_FIELD.map(lambda f: _bounded(f, 23)),
    weekday=st.sampled_from(["*", "1-5", "0", "6", "2,4"]),
    day=st.sampled_from(["*", "1", "15", "1-7", "*/10"]),
    offset=st.integers(0, 60 * 24 * 40),
)
def test_cron_agrees_with_a_minute_by_minute_search(
    minute: str, hour: str, weekday: str, day: str, offset: int
) -> None:
    text = f"{minute} {hour} {day} * {weekday}"
    after = dt.datetime(2026, 1, 1) + dt.timedelta(minutes=offset, seconds=17)
    expected = _brute(text, after, limit_days=40)
    got = parse_calendar(text).next_after(after)
    if expected is not None:
        assert got == expected, text
    else:
        assert got is None or got > after + dt.timedelta(days=40), text
