"""Schedules: the grammar, its errors, and whether an instant is inside, daylight-saving days
included (Europe/Madrid changes at 01:00 UTC on the last Sundays of March and October 2026;
America/New_York at 02:00 local on 8 March and 1 November 2026)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsscale.schedule import ALWAYS, NEVER, ScheduleError, Window, parse_schedule, time_zone

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_TWO = "Mon-Fri 09:00-17:00 Europe/Madrid, Mon-Fri 09:00-17:00 America/New_York"
_AUCKLAND = "Sat 10:00-12:00 UTC, Mon 00:00-02:00 Pacific/Auckland"

# (spec, instant in RFC 3339, inside?). 2026-11-27 is a Friday, 2026-11-30 a Monday.
CASES = [
    # a plain window in UTC: start minute in, end minute out, local days only
    ("Mon-Fri 08:00-18:00", "2026-11-30T07:59:59Z", False),
    ("Mon-Fri 08:00-18:00", "2026-11-30T08:00:00Z", True),
    ("Mon-Fri 08:00-18:00", "2026-11-30T17:59:59Z", True),
    ("Mon-Fri 08:00-18:00", "2026-11-30T18:00:00Z", False),
    ("Mon-Fri 08:00-18:00", "2026-11-28T10:00:00Z", False),
    ("mon-FRI 8:00-18:00", "2026-11-27T12:00:00Z", True),
    ("Mon-Fri 08:00-18:00", "2026-11-30T09:00:00+01:00", True),  # 08:00 UTC
    # crossing midnight: belongs to the day it starts
    ("Fri 22:00-06:00", "2026-11-27T21:59:00Z", False),
    ("Fri 22:00-06:00", "2026-11-27T22:00:00Z", True),
    ("Fri 22:00-06:00", "2026-11-28T00:00:00Z", True),
    ("Fri 22:00-06:00", "2026-11-28T05:59:59Z", True),
    ("Fri 22:00-06:00", "2026-11-28T06:00:00Z", False),
    ("Fri 22:00-06:00", "2026-11-28T23:00:00Z", False),  # Saturday night is not Friday's
    ("Fri 22:00-06:00", "2026-11-27T05:00:00Z", False),  # Friday morning is Thursday's night
    ("Mon 22:00-00:00", "2026-11-30T23:59:59Z", True),
    ("Mon 22:00-00:00", "2026-12-01T00:00:00Z", False),
    # end equal to start: the 24 hours from the start
    ("Mon 08:00-08:00", "2026-11-30T07:59:59Z", False),
    ("Mon 08:00-08:00", "2026-11-30T08:00:00Z", True),
    ("Mon 08:00-08:00", "2026-12-01T07:59:59Z", True),
    ("Mon 08:00-08:00", "2026-12-01T08:00:00Z", False),
    ("Mon 00:00-00:00", "2026-11-30T23:59:59Z", True),
    ("Mon 00:00-00:00", "2026-12-01T00:00:00Z", False),
    # 24:00: the end of the day
    ("Mon 00:00-24:00", "2026-11-29T23:59:59Z", False),
    ("Mon 00:00-24:00", "2026-11-30T00:00:00Z", True),
    ("Mon 00:00-24:00", "2026-11-30T23:59:59.999999Z", True),
    ("Mon 00:00-24:00", "2026-12-01T00:00:00Z", False),
    ("Fri 18:00-24:00", "2026-11-27T23:59:00Z", True),
    ("Fri 18:00-24:00", "2026-11-28T00:00:00Z", False),
    # the week wraps
    ("Fri-Mon 09:00-17:00", "2026-11-26T10:00:00Z", False),  # Thursday
    ("Fri-Mon 09:00-17:00", "2026-11-27T10:00:00Z", True),
    ("Fri-Mon 09:00-17:00", "2026-11-28T10:00:00Z", True),
    ("Fri-Mon 09:00-17:00", "2026-11-29T10:00:00Z", True),
    ("Fri-Mon 09:00-17:00", "2026-11-30T10:00:00Z", True),
    ("Fri-Mon 09:00-17:00", "2026-12-01T10:00:00Z", False),  # Tuesday
    ("Sun 22:00-02:00", "2026-11-29T01:00:00Z", False),  # Saturday's night
    ("Sun 22:00-02:00", "2026-11-29T22:00:00Z", True),
    ("Sun 22:00-02:00", "2026-11-30T01:59:59Z", True),  # Monday, still Sunday's window
    ("Sun 22:00-02:00", "2026-11-30T02:00:00Z", False),
    ("Sun 22:00-02:00", "2026-11-30T22:30:00Z", False),
    ("Sat-Sun 22:00-02:00", "2026-11-30T01:00:00Z", True),
    # always, never
    ("always", "2026-11-30T12:00:00Z", True),
    ("ALWAYS", "1999-01-01T00:00:00-12:00", True),
    ("never", "2026-11-30T12:00:00Z", False),
    # several windows, each in its own zone, with its own local days
    ("Mon 00:00-01:00 Asia/Tokyo", "2026-11-29T15:30:00Z", True),  # Sunday in UTC
    ("Mon 00:00-01:00 Asia/Tokyo", "2026-11-30T00:30:00Z", False),
    (_TWO, "2026-11-30T07:59:00Z", False),
    (_TWO, "2026-11-30T08:00:00Z", True),  # Madrid opens
    (_TWO, "2026-11-30T16:30:00Z", True),  # Madrid closed, New York open
    (_TWO, "2026-11-30T21:59:00Z", True),
    (_TWO, "2026-11-30T22:00:00Z", False),  # New York closes
    (_TWO, "2026-11-28T12:00:00Z", False),
    (_AUCKLAND, "2026-11-29T11:30:00Z", True),
    (_AUCKLAND, "2026-11-28T11:30:00Z", True),
    (_AUCKLAND, "2026-11-29T13:30:00Z", False),
    # Madrid, spring forward (Sunday 29 March 2026, 02:00 CET is 03:00 CEST): a 23-hour Sunday
    ("Sun 00:00-24:00 Europe/Madrid", "2026-03-28T23:59:59+01:00", False),
    ("Sun 00:00-24:00 Europe/Madrid", "2026-03-29T00:00:00+01:00", True),
    ("Sun 00:00-24:00 Europe/Madrid", "2026-03-29T23:59:59+02:00", True),
    ("Sun 00:00-24:00 Europe/Madrid", "2026-03-30T00:00:00+02:00", False),
    ("Sun 01:00-04:00 Europe/Madrid", "2026-03-29T00:59:59+01:00", False),
    ("Sun 01:00-04:00 Europe/Madrid", "2026-03-29T01:59:59+01:00", True),  # just before
    ("Sun 01:00-04:00 Europe/Madrid", "2026-03-29T03:00:00+02:00", True),  # just after
    ("Sun 01:00-04:00 Europe/Madrid", "2026-03-29T04:00:00+02:00", False),
    ("Sat 20:00-08:00 Europe/Madrid", "2026-03-28T20:00:00+01:00", True),
    ("Sat 20:00-08:00 Europe/Madrid", "2026-03-29T07:59:00+02:00", True),
    ("Sat 20:00-08:00 Europe/Madrid", "2026-03-29T08:00:00+02:00", False),
    ("Mon-Fri 09:00-17:00 Europe/Madrid", "2026-03-27T08:00:00Z", True),  # 09:00 CET
    ("Mon-Fri 09:00-17:00 Europe/Madrid", "2026-03-30T07:00:00Z", True),  # 09:00 CEST
    ("Mon-Fri 09:00-17:00 Europe/Madrid", "2026-03-30T15:30:00Z", False),  # 17:30 CEST
    # ... a time in the gap is read with the offset before it (fold=0): 02:30 is 03:30 CEST
    ("Sun 02:30-05:00 Europe/Madrid", "2026-03-29T01:59:59+01:00", False),
    ("Sun 02:30-05:00 Europe/Madrid", "2026-03-29T03:29:59+02:00", False),
    ("Sun 02:30-05:00 Europe/Madrid", "2026-03-29T03:30:00+02:00", True),
    ("Sun 02:30-05:00 Europe/Madrid", "2026-04-05T02:30:00+02:00", True),  # a week later
    ("Sun 00:00-02:30 Europe/Madrid", "2026-03-29T03:29:59+02:00", True),
    ("Sun 00:00-02:30 Europe/Madrid", "2026-03-29T03:30:00+02:00", False),
    ("Sun 02:30-03:15 Europe/Madrid", "2026-03-29T03:20:00+02:00", False),  # none that day
    # Madrid, fall back (Sunday 25 October 2026, 03:00 CEST is 02:00 CET): a 25-hour Sunday
    ("Sun 00:00-24:00 Europe/Madrid", "2026-10-24T23:59:59+02:00", False),
    ("Sun 00:00-24:00 Europe/Madrid", "2026-10-25T00:00:00+02:00", True),
    ("Sun 00:00-24:00 Europe/Madrid", "2026-10-25T23:59:59+01:00", True),
    ("Sun 00:00-24:00 Europe/Madrid", "2026-10-26T00:00:00+01:00", False),
    ("Sun 01:00-04:00 Europe/Madrid", "2026-10-25T00:59:59+02:00", False),
    ("Sun 01:00-04:00 Europe/Madrid", "2026-10-25T02:59:59+02:00", True),  # just before
    ("Sun 01:00-04:00 Europe/Madrid", "2026-10-25T02:00:00+01:00", True),  # just after
    ("Sun 01:00-04:00 Europe/Madrid", "2026-10-25T03:59:59+01:00", True),
    ("Sun 01:00-04:00 Europe/Madrid", "2026-10-25T04:00:00+01:00", False),
    # ... a time in the repeated hour is its first occurrence (fold=0): no window reopens
    ("Sun 02:30-05:00 Europe/Madrid", "2026-10-25T02:29:59+02:00", False),
    ("Sun 02:30-05:00 Europe/Madrid", "2026-10-25T02:30:00+02:00", True),
    ("Sun 02:30-05:00 Europe/Madrid", "2026-10-25T02:15:00+01:00", True),
    ("Sun 02:30-05:00 Europe/Madrid", "2026-10-25T05:00:00+01:00", False),
    ("Sun 00:00-02:30 Europe/Madrid", "2026-10-25T02:29:59+02:00", True),
    ("Sun 00:00-02:30 Europe/Madrid", "2026-10-25T02:30:00+02:00", False),
    ("Sun 00:00-02:30 Europe/Madrid", "2026-10-25T02:15:00+01:00", False),
    # New York, spring forward (Sunday 8 March 2026, 02:00 EST is 03:00 EDT)
    ("Sat 22:00-06:00 America/New_York", "2026-03-07T21:59:59-05:00", False),
    ("Sat 22:00-06:00 America/New_York", "2026-03-08T01:59:59-05:00", True),  # just before
    ("Sat 22:00-06:00 America/New_York", "2026-03-08T03:00:00-04:00", True),  # just after
    ("Sat 22:00-06:00 America/New_York", "2026-03-08T05:59:59-04:00", True),
    ("Sat 22:00-06:00 America/New_York", "2026-03-08T06:00:00-04:00", False),
    ("Mon-Fri 09:00-17:00 America/New_York", "2026-03-06T14:00:00Z", True),  # 09:00 EST
    ("Mon-Fri 09:00-17:00 America/New_York", "2026-03-09T12:59:59Z", False),  # 08:59 EDT
    ("Mon-Fri 09:00-17:00 America/New_York", "2026-03-09T13:00:00Z", True),  # 09:00 EDT
    ("Sun 02:30-04:00 America/New_York", "2026-03-08T03:29:59-04:00", False),
    ("Sun 02:30-04:00 America/New_York", "2026-03-08T03:30:00-04:00", True),
    # New York, fall back (Sunday 1 November 2026, 02:00 EDT is 01:00 EST)
    ("Sat 22:00-06:00 America/New_York", "2026-11-01T01:59:59-04:00", True),  # just before
    ("Sat 22:00-06:00 America/New_York", "2026-11-01T01:00:00-05:00", True),  # just after
    ("Sat 22:00-06:00 America/New_York", "2026-11-01T05:59:59-05:00", True),
    ("Sat 22:00-06:00 America/New_York", "2026-11-01T06:00:00-05:00", False),
    ("Sun 00:00-01:30 America/New_York", "2026-11-01T01:29:59-04:00", True),
    ("Sun 00:00-01:30 America/New_York", "2026-11-01T01:30:00-04:00", False),
    ("Sun 00:00-01:30 America/New_York", "2026-11-01T01:10:00-05:00", False),
    ("Sun 01:30-03:00 America/New_York", "2026-11-01T01:29:59-04:00", False),
    ("Sun 01:30-03:00 America/New_York", "2026-11-01T01:30:00-04:00", True),
    ("Sun 01:30-03:00 America/New_York", "2026-11-01T01:00:00-05:00", True),
    ("Mon-Fri 09:00-17:00 America/New_York", "2026-10-30T13:00:00Z", True),  # 09:00 EDT
    ("Mon-Fri 09:00-17:00 America/New_York", "2026-11-02T13:59:59Z", False),  # 08:59 EST
    ("Mon-Fri 09:00-17:00 America/New_York", "2026-11-02T14:00:00Z", True),  # 09:00 EST
]


@pytest.mark.parametrize(("spec", "instant", "expected"), CASES)
def test_contains(spec: str, instant: str, expected: bool) -> None:
    assert parse_schedule(spec).contains(datetime.fromisoformat(instant)) is expected


def test_an_instant_in_the_repeated_hour_is_told_apart_by_its_fold() -> None:
    window = parse_schedule("Sun 00:00-02:30 Europe/Madrid")
    first = datetime(2026, 10, 25, 2, 15, tzinfo=ZoneInfo("Europe/Madrid"))  # 02:15 CEST
    assert window.contains(first)
    assert not window.contains(first.replace(fold=1))  # 02:15 CET, an hour later


def test_windows_without_a_zone_are_in_the_default_one() -> None:
    schedule = parse_schedule("Mon 09:00-10:00, Mon 09:00-10:00 UTC", default_tz="Asia/Tokyo")
    assert schedule.describe() == "Mon 09:00-10:00 Asia/Tokyo, Mon 09:00-10:00 UTC"
    assert schedule.contains(datetime(2026, 11, 30, 0, 30, tzinfo=UTC))  # 09:30 in Tokyo
    assert schedule.contains(datetime(2026, 11, 30, 9, 30, tzinfo=UTC))
    assert not schedule.contains(datetime(2026, 11, 30, 5, 0, tzinfo=UTC))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_schedule("always").contains(datetime(2026, 11, 30, 12, 0))
    with pytest.raises(ValueError, match="time zone"):
        parse_schedule("Mon 08:00-09:00").windows[0].contains(datetime(2026, 11, 30, 8, 0))


def test_instants_at_the_ends_of_time_get_an_answer() -> None:
    schedule = parse_schedule("Mon-Sun 00:00-00:00 Pacific/Kiritimati, Sun 22:00-02:00 Etc/GMT+12")
    for instant in (datetime.min, datetime.max):  # occurrences past year 1 or 9999 are skipped
        assert isinstance(schedule.contains(instant.replace(tzinfo=UTC)), bool)


@pytest.mark.parametrize(
    ("spec", "described"),
    [
        (
            "  mon - FRI 8:00 - 18:00 ,sat 10:00-12:00 europe/madrid ",
            "Mon-Fri 08:00-18:00 UTC, Sat 10:00-12:00 Europe/Madrid",
        ),
        ("Fri-Mon\t22:00-06:00\nutc", "Fri-Mon 22:00-06:00 UTC"),
        ("Sun 22:00-24:00 America/New_York", "Sun 22:00-24:00 America/New_York"),
        ("Always", "always"),
        (" never ", "never"),
    ],
)
def test_describe_gives_the_normalised_text(spec: str, described: str) -> None:
    schedule = parse_schedule(spec)
    assert schedule.describe() == described
    assert str(schedule) == described
    assert parse_schedule(described) == schedule


def test_always_and_never_are_the_constants() -> None:
    assert parse_schedule("always") is ALWAYS
    assert parse_schedule("never") is NEVER
    assert NEVER.windows == ()


def test_parsed_windows_carry_their_parts() -> None:
    (window,) = parse_schedule("Fri-Mon 22:00-06:00 Europe/Madrid").windows
    assert window == Window(4, 0, 22 * 60, 6 * 60, ZoneInfo("Europe/Madrid"))
    assert window.days == (4, 5, 6, 0)
    assert window.crosses_midnight


def test_time_zones_are_found_in_any_case() -> None:
    assert time_zone("utc").key == "UTC"
    assert time_zone("america/new_york").key == "America/New_York"
    with pytest.raises(ScheduleError, match="unknown time zone Mars/Olympus"):
        time_zone("Mars/Olympus")


_FORM = "a window is DAYS HH:MM-HH:MM [TZ], e.g. Mon-Fri 08:00-18:00 Europe/Madrid"
_ZONE = "use an IANA name such as Europe/Madrid or UTC"
_DAYS = "days are Mon, Tue, Wed, Thu, Fri, Sat, Sun"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", f"empty schedule: write always, never, or windows ({_FORM})"),
        ("  ", f"empty schedule: write always, never, or windows ({_FORM})"),
        (
            "Mon-Fri 25:00-20:00",
            'in "Mon-Fri 25:00-20:00": 25:00 is not a time (HH:MM, 00:00 to 24:00)',
        ),
        ("Mon 08:60-09:00", 'in "Mon 08:60-09:00": 08:60 is not a time (HH:MM, 00:00 to 24:00)'),
        ("Mon 08:00-24:01", 'in "Mon 08:00-24:01": 24:01 is not a time (HH:MM, 00:00 to 24:00)'),
        ("Mon 8-18", 'in "Mon 8-18": 8 is not a time (HH:MM, 00:00 to 24:00)'),
        (
            "Mon 24:00-06:00",
            'in "Mon 24:00-06:00": 24:00 ends a day and cannot start a window: start at 00:00',
        ),
        ("Mon 08:00", 'in "Mon 08:00": 08:00 is not a time range (HH:MM-HH:MM, e.g. 08:00-18:00)'),
        (
            "Mon 08:00-",
            'in "Mon 08:00-": 08:00- is not a time range (HH:MM-HH:MM, e.g. 08:00-18:00)',
        ),
        ("Mon", f'in "Mon": no times: {_FORM}; several days are a range or a window each'),
        (
            "Mon,Wed 08:00-10:00",
            f'in "Mon": no times: {_FORM}; several days are a range or a window each',
        ),
        (
            "Monday 08:00-10:00",
            f'in "Monday 08:00-10:00": unknown day Monday: {_DAYS}',
        ),
        (
            "Mon-Fry 08:00-10:00",
            f'in "Mon-Fry 08:00-10:00": unknown day Fry: {_DAYS}',
        ),
        (
            "Mon-Wed-Fri 08:00-10:00",
            'in "Mon-Wed-Fri 08:00-10:00": '
            "Mon-Wed-Fri is not a day or a range of days (Mon, or Mon-Fri)",
        ),
        ("08:00-18:00 Mon-Fri", f'in "08:00-18:00 Mon-Fri": 08:00-18:00 is not a day: {_FORM}'),
        (
            "Mon 08:00-10:00 Mars/Olympus",
            f'in "Mon 08:00-10:00 Mars/Olympus": unknown time zone Mars/Olympus: {_ZONE}',
        ),
        (
            "Mon 08:00-10:00 +01:00",
            f'in "Mon 08:00-10:00 +01:00": unknown time zone +01:00: {_ZONE}',
        ),
        (
            "Mon 08:00-10:00 America",
            f'in "Mon 08:00-10:00 America": unknown time zone America: {_ZONE}',
        ),
        (
            "Mon 08:00-10:00 UTC daily",
            f'in "Mon 08:00-10:00 UTC daily": unexpected daily after the time zone: {_FORM}',
        ),
        ("Mon 08:00-10:00,", 'in "Mon 08:00-10:00,": stray comma at the end'),
        (", Mon 08:00-10:00", 'in ", Mon 08:00-10:00": stray comma at the start'),
        (
            "Mon 08:00-10:00, ,Tue 08:00-10:00",
            'in "Mon 08:00-10:00, ,Tue 08:00-10:00": two commas with no window between them',
        ),
        ("always, Mon 08:00-10:00", 'in "always": always stands alone, without windows'),
        ("Mon 08:00-10:00, Never", 'in "Never": never stands alone, without windows'),
        (
            "Sun 22:00-02:00 UTC, Mon 25:00-26:00",
            'in "Mon 25:00-26:00": 25:00 is not a time (HH:MM, 00:00 to 24:00)',
        ),
    ],
)
def test_errors_name_the_offending_part(spec: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(spec)
    assert str(caught.value) == message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_a_bad_default_zone_is_an_error_even_when_unused() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("always", default_tz="Mars/Olympus")
    assert str(caught.value) == f"unknown time zone Mars/Olympus: {_ZONE}"
    assert caught.value.part is None


def test_the_error_carries_the_part_and_the_problem() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("Mon-Fri 08:00-18:00, Sat 10:00-25:00 UTC")
    assert caught.value.part == "Sat 10:00-25:00 UTC"
    assert caught.value.problem == "25:00 is not a time (HH:MM, 00:00 to 24:00)"


# Zones without a change of offset at midnight (where wall-clock days are not contiguous), with
# the days of their changes, so that the property lands on them often.
_ZONES = ["UTC", "Europe/Madrid", "America/New_York", "Australia/Lord_Howe"]
_CHANGE_DAYS = [
    date(2026, 3, 8),
    date(2026, 3, 29),
    date(2026, 4, 5),
    date(2026, 10, 4),
    date(2026, 10, 25),
    date(2026, 11, 1),
]


@st.composite
def _instants_and_windows(draw: st.DrawFn) -> tuple[datetime, str, int, int, int]:
    zone_name = draw(st.sampled_from(_ZONES))
    zone = ZoneInfo(zone_name)
    day = draw(st.sampled_from(_CHANGE_DAYS) | st.dates(date(2020, 1, 1), date(2030, 12, 31)))
    base = datetime.combine(day - timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    instant = base + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    instant -= timedelta(seconds=draw(st.sampled_from([0, 0, 1])))  # on a minute, or just before
    local_weekday = instant.astimezone(zone).weekday()
    weekday = (local_weekday - draw(st.sampled_from([0, 1, 2]))) % 7  # the window's day or near it
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(0, start))
    return instant, zone_name, weekday, start, end


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@settings(max_examples=300, deadline=None)
@given(_instants_and_windows())
def test_a_window_crossing_midnight_is_its_two_halves(
    case: tuple[datetime, str, int, int, int],
) -> None:
    instant, zone, weekday, start, end = case
    day, next_day = WEEKDAYS[weekday], WEEKDAYS[(weekday + 1) % 7]
    crossing = parse_schedule(f"{day} {_clock(start)}-{_clock(end)} {zone}")
    halves = f"{day} {_clock(start)}-24:00 {zone}"
    if end > 0:  # `D+1 00:00-00:00` would be a whole day, not an empty half
        halves += f", {next_day} 00:00-{_clock(end)} {zone}"
    assert crossing.contains(instant) == parse_schedule(halves).contains(instant)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 6),
    st.integers(0, 6),
    st.integers(0, 24 * 60 - 1),
    st.integers(1, 24 * 60),
    st.sampled_from(_ZONES),
)
def test_describe_reads_back_as_the_same_schedule(
    first: int, last: int, start: int, end: int, zone: str
) -> None:
    days = WEEKDAYS[first] if first == last else f"{WEEKDAYS[first]}-{WEEKDAYS[last]}"
    schedule = parse_schedule(f"{days} {_clock(start)}-{_clock(end)} {zone}")
    assert parse_schedule(schedule.describe()) == schedule
