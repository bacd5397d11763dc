"""schedule/view.py: a schedule's next change and its week strip, by wall clock in its zone
(daylight-saving days included), checked against `Schedule.contains` itself."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsscale.schedule import parse_schedule
from nsscale.schedule.view import HORIZON, SLOT_MINUTES, next_change, stretches, week

MADRID = ZoneInfo("Europe/Madrid")
SLOTS = 24 * 60 // SLOT_MINUTES


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def slot(clock: str) -> int:
    hours, minutes = clock.split(":")
    return (int(hours) * 60 + int(minutes)) // SLOT_MINUTES


# ------------------------------------------------------------------------------ week strip


def test_a_window_crossing_midnight_shades_late_monday_and_early_tuesday() -> None:
    schedule = parse_schedule("Mon-Fri 22:00-06:00", "Europe/Madrid")
    strip = week(schedule, at("2026-12-09T12:00:00+01:00"), MADRID)  # a Wednesday

    assert strip.days == tuple(date(2026, 12, 7) + timedelta(days=n) for n in range(7))
    monday, tuesday, saturday, sunday = strip.up[0], strip.up[1], strip.up[5], strip.up[6]
    assert monday == "0" * slot("22:00") + "1" * 4
    assert tuesday == "1" * slot("06:00") + "0" * (slot("22:00") - slot("06:00")) + "1" * 4
    assert saturday == "1" * slot("06:00") + "0" * (SLOTS - slot("06:00"))  # Friday's night
    assert sunday == "0" * SLOTS
    assert (strip.now_day, strip.now_minute) == (2, 12 * 60)


def test_a_downtime_strip_marks_the_slots_up_outside_it() -> None:
    schedule = parse_schedule("Sat-Sun 00:00-24:00", "UTC")
    strip = week(schedule, at("2026-12-07T00:00:00Z"), ZoneInfo("UTC"), inside_is_up=False)
    assert strip.up == ("1" * SLOTS,) * 5 + ("0" * SLOTS,) * 2


def test_the_strip_is_in_the_zone_it_is_shown_in() -> None:
    schedule = parse_schedule("Mon 08:00-09:00 UTC", "UTC")
    strip = week(schedule, at("2026-12-07T10:00:00Z"), MADRID)
    assert strip.up[0] == "0" * slot("09:00") + "11" + "0" * (SLOTS - slot("10:00"))
    assert (strip.zone, strip.now_minute) == ("Europe/Madrid", 11 * 60)  # 10:00 UTC is 11:00


@pytest.mark.parametrize(
    ("sunday", "hours"),
    [("2026-03-29", 23), ("2026-10-25", 25)],  # Madrid's last Sundays of March and October
)
def test_a_daylight_saving_day_is_still_48_slots_by_wall_clock(sunday: str, hours: int) -> None:
    day = date.fromisoformat(sunday)
    length = datetime.combine(day + timedelta(days=1), datetime.min.time(), MADRID).astimezone(
        UTC
    ) - datetime.combine(day, datetime.min.time(), MADRID).astimezone(UTC)
    assert length == timedelta(hours=hours)
    schedule = parse_schedule("Sun 01:00-04:00", "Europe/Madrid")

    strip = week(schedule, at(f"{sunday}T12:00:00+00:00"), MADRID)

    assert [len(d) for d in strip.up] == [SLOTS] * 7
    assert strip.days[6] == day
    # 02:00 and 02:30 do not exist in spring (they are read as 03:00 and 03:30, still in the
    # window); in autumn 02:00-03:00 comes twice, shown once
    assert strip.up[6] == "0" * slot("01:00") + "1" * 6 + "0" * (SLOTS - slot("04:00"))


def test_an_absolute_range_shades_only_its_own_days() -> None:
    holidays = parse_schedule(
        "2026-12-24T00:00:00+01:00-2026-12-26T12:00:00+01:00", "Europe/Madrid"
    )
    strip = week(holidays, at("2026-12-22T09:00:00+01:00"), MADRID)
    assert strip.up[:3] == ("0" * SLOTS,) * 3
    assert strip.up[3:5] == ("1" * SLOTS,) * 2  # Thursday 24th, Friday 25th
    assert strip.up[5] == "1" * slot("12:00") + "0" * (SLOTS - slot("12:00"))
    assert strip.up[6] == "0" * SLOTS


def test_always_and_never() -> None:
    now = at("2026-12-09T12:00:00Z")
    assert week(parse_schedule("always", "UTC"), now, MADRID).up == ("1" * SLOTS,) * 7
    assert week(parse_schedule("never", "UTC"), now, MADRID).up == ("0" * SLOTS,) * 7
    assert next_change(parse_schedule("always", "UTC"), now) is None
    assert next_change(parse_schedule("never", "UTC"), now) is None


def test_the_strip_as_json() -> None:
    strip = week(parse_schedule("never", "UTC"), at("2026-12-09T12:00:00Z"), MADRID)
    assert strip.to_dict() == {
        "zone": "Europe/Madrid",
        "days": [f"2026-12-{d:02d}" for d in range(7, 14)],
        "slot_minutes": 30,
        "up": ["0" * 48] * 7,
        "now": {"day": 2, "minute": 13 * 60},
    }


# ------------------------------------------------------------------------------ next change


@pytest.mark.parametrize(
    ("spec", "instant", "expected"),
    [
        # at a window's start: inside, the change is at its end (the end excluded)
        ("Mon-Fri 08:00-18:00", "2026-12-07T08:00:00+01:00", "2026-12-07T18:00:00+01:00"),
        # at its end: outside, the next start
        ("Mon-Fri 08:00-18:00", "2026-12-07T18:00:00+01:00", "2026-12-08T08:00:00+01:00"),
        ("Mon-Fri 08:00-18:00", "2026-12-07T17:59:59+01:00", "2026-12-07T18:00:00+01:00"),
        # a Friday evening: the next start is Monday's
        ("Mon-Fri 08:00-18:00", "2026-12-11T19:00:00+01:00", "2026-12-14T08:00:00+01:00"),
        # crossing midnight: Monday 23:00 is inside until Tuesday 06:00
        ("Mon-Fri 22:00-06:00", "2026-12-07T23:00:00+01:00", "2026-12-08T06:00:00+01:00"),
        # Tuesday 01:30 (00:30 UTC, a day after the start in UTC too) is in Monday's night
        ("Mon-Fri 22:00-06:00", "2026-12-08T01:30:00+01:00", "2026-12-08T06:00:00+01:00"),
        # two windows that touch are one stretch: no change where they meet
        (
            "Mon 08:00-12:00, Mon 12:00-18:00",
            "2026-12-07T09:00:00+01:00",
            "2026-12-07T18:00:00+01:00",
        ),
        # across the spring change: the Monday after is in summer time
        ("Mon 08:00-09:00", "2026-03-28T12:00:00+01:00", "2026-03-30T08:00:00+02:00"),
        # an absolute range: its end
        (
            "2026-12-24T00:00:00+01:00-2027-01-02T00:00:00+01:00",
            "2026-12-31T12:00:00+01:00",
            "2027-01-02T00:00:00+01:00",
        ),
    ],
)
def test_next_change(spec: str, instant: str, expected: str) -> None:
    assert next_change(parse_schedule(spec, "Europe/Madrid"), at(instant)) == at(expected)


def test_no_change_within_eight_days_is_none() -> None:
    holidays = parse_schedule(
        "2026-12-24T00:00:00+01:00-2027-01-10T00:00:00+01:00", "Europe/Madrid"
    )
    assert next_change(holidays, at("2026-12-25T00:00:00+01:00")) is None
    assert next_change(holidays, at("2026-12-01T00:00:00+01:00")) is None  # 23 days ahead
    assert next_change(holidays, at("2026-12-20T00:00:00+01:00")) == at("2026-12-24T00:00:00+01:00")


# ------------------------------------------------------------------------------ property

_SPECS = [
    "Mon-Fri 08:00-18:00",
    "Mon-Fri 22:00-06:00",
    "Sun 01:00-04:00",
    "Sun 02:30-03:15",  # swallowed by the spring gap
    "Sat-Sun 00:00-24:00",
    "Sun-Sun 02:00-02:30, Wed 12:00-12:01",
    "Mon 08:00-12:00, Mon 11:00-13:00 America/New_York",
    "Tue-Mon 23:30-00:30 Australia/Lord_Howe",  # a half-hour change of offset
    "2026-03-29T00:00:00+01:00-2026-03-29T03:30:00+02:00, Fri 18:00-20:00",
]
_CHANGE_DAYS = [date(2026, 3, 29), date(2026, 10, 25), date(2026, 4, 5), date(2026, 10, 4)]


@st.composite
def _instants(draw: st.DrawFn) -> datetime:
    day = draw(st.sampled_from(_CHANGE_DAYS) | st.dates(date(2024, 1, 1), date(2030, 12, 31)))
    base = datetime.combine(day, datetime.min.time(), UTC) - timedelta(days=1)
    instant = base + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    return instant - timedelta(seconds=draw(st.sampled_from([0, 0, 1, 30])))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_SPECS), _instants(), st.lists(st.floats(0, 1), min_size=8, max_size=8))
def test_the_state_holds_until_next_change_and_flips_there(
    spec: str, instant: datetime, samples: list[float]
) -> None:
    schedule = parse_schedule(spec, "Europe/Madrid")
    now = schedule.contains(instant)
    found = stretches(schedule, instant, instant + HORIZON)
    assert any(first <= instant < last for first, last in found) == now, (spec, instant)
    change = next_change(schedule, instant)
    until = change if change is not None else instant + HORIZON
    assert until > instant
    checked = [instant, until - timedelta(seconds=1)]
    checked += [instant + (until - instant) * f for f in samples]
    for moment in checked:
        if moment < until:
            assert schedule.contains(moment) == now, (spec, instant, moment, change)
    if change is not None:
        assert schedule.contains(change) != now, (spec, instant, change)
        assert change - instant <= HORIZON


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(_SPECS), _instants())
def test_every_slot_of_the_strip_is_what_contains_says_at_its_start(
    spec: str, instant: datetime
) -> None:
    schedule = parse_schedule(spec, "Europe/Madrid")
    strip = week(schedule, instant, MADRID)
    for d, day in enumerate(strip.days):
        for s, mark in enumerate(strip.up[d]):
            minute = s * SLOT_MINUTES
            local = datetime.combine(day, datetime.min.time(), MADRID) + timedelta(minutes=minute)
            # a wall-clock time, read as windows.py reads one (fold=0)
            start = local.replace(tzinfo=MADRID).astimezone(UTC)
            assert mark == ("1" if schedule.contains(start) else "0"), (spec, day, minute)


def test_stretches_are_disjoint_and_sorted() -> None:
    schedule = parse_schedule("Mon 08:00-12:00, Mon 11:00-13:00, Mon 13:00-14:00", "UTC")
    found = stretches(schedule, at("2026-12-07T00:00:00Z"), at("2026-12-08T00:00:00Z"))
    assert found == [(at("2026-12-07T08:00:00Z"), at("2026-12-07T14:00:00Z"))]
