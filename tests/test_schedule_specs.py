"""kube-downscaler's time specs, read as it writes them: a day range whose ends are the same day
is that day (`Sun-Sun`), and absolute periods (start included, end excluded) mixed with weekly
windows in one comma list.

The table transcribes kube-downscaler's own time-spec tests (hjacobs/kube-downscaler,
tests/test_time.py) as the oracle; two of its cases evaluate at `datetime.now()` and one,
`Mon-Mon 00:00-00:00 CET`, differs by design (nsscale reads an end equal to the start as the 24
hours from it, README "Schedules"): those are left out."""

from __future__ import annotations

from datetime import datetime

import pytest

from nsscale.engine.plan import until_instant
from nsscale.schedule import Period, ScheduleError, parse_schedule

_SUNDAY = "2017-11-26T15:33:00Z"  # a Sunday
_AUCKLAND = "2018-11-04T20:30:00Z"  # Monday 5 November, 09:30 in Auckland

KUBE_DOWNSCALER = [
    (_SUNDAY, "Sat-Sun 15:30-16:00 UTC", True),
    (_SUNDAY, "Sat-Sun 15:34-16:00 UTC", False),
    (_SUNDAY, "Mon-Fri 08:00-18:00 UTC", False),
    (_SUNDAY, "Mon-Fri 08:00-18:00 UTC, Sun-Sun 15:30-16:00 UTC", True),
    (_SUNDAY, "2017-11-26T14:04:48+00:00-2017-11-26T16:04:48+00:00", True),
    (_SUNDAY, "2017-11-26T14:04:48+00:00-2017-11-26T15:04:48+00:00", False),
    (_AUCKLAND, "Mon-Fri 09:00-10:00 Pacific/Auckland", True),
    (_AUCKLAND, "Sat-Sun 09:00-10:00 Pacific/Auckland", False),
    (_AUCKLAND, "2017-01-01T00:01:02+00:00-2018-12-31T23:59:00+00:00", True),
    (
        _AUCKLAND,
        "2017-01-01T00:01:02+00:00-2017-01-02T19:00:50+00:00, "
        "2018-11-01T00:00:00+00:00-2018-12-31T23:59:00+00:00",
        True,
    ),
    (_AUCKLAND, "2019-01-01T00:01:02+00:00-2019-12-31T23:59:00+00:00", False),
    (_AUCKLAND, "2018-11-04T16:00:00-04:00-2018-11-04T16:40:00-04:00", True),
    (_AUCKLAND, "2018-11-04T20:00:00-04:00-2018-11-04T20:40:00-04:00", False),
]

_HOLIDAYS = "2026-12-24T00:00:00+01:00-2027-01-02T00:00:00+01:00"

NSSCALE = [
    # Sun-Sun is Sunday alone, not the week (2026-11-29 is a Sunday)
    ("2026-11-29T12:00:00Z", "Sun-Sun 00:00-24:00 UTC", True),
    ("2026-11-30T12:00:00Z", "Sun-Sun 00:00-24:00 UTC", False),
    ("2026-11-28T12:00:00Z", "Sun-Sun 00:00-24:00 UTC", False),
    # a period: its start instant in, its end instant out, whatever offset the instant has
    ("2026-12-23T22:59:59Z", _HOLIDAYS, False),
    ("2026-12-23T23:00:00Z", _HOLIDAYS, True),
    ("2027-01-01T23:59:59.999999+01:00", _HOLIDAYS, True),
    ("2027-01-01T22:59:59Z", _HOLIDAYS, True),
    ("2027-01-02T00:00:00+01:00", _HOLIDAYS, False),
    ("2027-01-01T23:00:00Z", _HOLIDAYS, False),
    ("2027-01-01T18:00:00-05:00", _HOLIDAYS, False),  # the end instant, seen from New York
    # a period mixed with weekly windows: holidays in a downtime (2026-12-28 is a Monday)
    ("2026-12-28T10:00:00Z", f"Sat-Sun 00:00-24:00 UTC, {_HOLIDAYS}", True),
    ("2026-12-05T10:00:00Z", f"Sat-Sun 00:00-24:00 UTC, {_HOLIDAYS}", True),
    ("2026-12-07T10:00:00Z", f"Sat-Sun 00:00-24:00 UTC, {_HOLIDAYS}", False),
    # lenient: Z, lowercase, spaces around the dash
    ("2026-12-24T12:00:00Z", "2026-12-24t00:00:00z - 2026-12-25T00:00:00Z", True),
    # a period across the spring change in Madrid (02:00 CET becomes 03:00 CEST on 29 March)
    ("2026-03-29T00:59:59Z", "2026-03-29T01:30:00+01:00-2026-03-29T03:30:00+02:00", True),
    ("2026-03-29T01:29:59Z", "2026-03-29T01:30:00+01:00-2026-03-29T03:30:00+02:00", True),
    ("2026-03-29T01:30:00Z", "2026-03-29T01:30:00+01:00-2026-03-29T03:30:00+02:00", False),
    # Sun-Sun on the autumn change in Madrid (25 October 2026 lasts 25 hours)
    ("2026-10-24T22:00:00Z", "Sun-Sun 00:00-24:00 Europe/Madrid", True),  # 00:00 CEST
    ("2026-10-25T22:59:59Z", "Sun-Sun 00:00-24:00 Europe/Madrid", True),  # 23:59:59 CET
    ("2026-10-25T23:00:00Z", "Sun-Sun 00:00-24:00 Europe/Madrid", False),
    ("2026-10-24T21:59:59Z", "Sun-Sun 00:00-24:00 Europe/Madrid", False),
]


@pytest.mark.parametrize(("at", "spec", "inside"), KUBE_DOWNSCALER + NSSCALE)
def test_spec_holds_at(at: str, spec: str, inside: bool) -> None:
    assert parse_schedule(spec).contains(datetime.fromisoformat(at)) is inside


def test_a_period_describes_itself_and_parses_back() -> None:
    schedule = parse_schedule(f"Sun-Sun 15:30-16:00 UTC, {_HOLIDAYS}")
    assert schedule.describe() == f"Sun 15:30-16:00 UTC, {_HOLIDAYS}"
    assert parse_schedule(schedule.describe()) == schedule
    assert schedule.windows[1] == Period(
        datetime.fromisoformat("2026-12-24T00:00:00+01:00"),
        datetime.fromisoformat("2027-01-02T00:00:00+01:00"),
    )


_FORM = (
    "a period is START-END, RFC 3339 times with offsets, "
    "e.g. 2026-12-24T00:00:00+01:00-2027-01-02T00:00:00+01:00"
)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "2026-12-24T00:00:00-2027-01-02T00:00:00",
            f'in "2026-12-24T00:00:00-2027-01-02T00:00:00": not a period: {_FORM}',
        ),
        ("2026-12-24", f'in "2026-12-24": not a period: {_FORM}'),
        (
            "2027-01-02T00:00:00Z-2026-12-24T00:00:00Z",
            'in "2027-01-02T00:00:00Z-2026-12-24T00:00:00Z": the period ends before it starts',
        ),
        (
            "2026-02-30T00:00:00Z-2026-03-01T00:00:00Z",
            'in "2026-02-30T00:00:00Z-2026-03-01T00:00:00Z": not a time: '
            "day is out of range for month",
        ),
    ],
)
def test_a_bad_period_names_itself(spec: str, message: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule(spec)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("value", "until"),
    [
        ("2027-01-07", "2027-01-07T00:00:00+00:00"),  # a day: its start in UTC
        (" 2027-01-07T09:30:00+01:00 ", "2027-01-07T09:30:00+01:00"),
        ("2027-01-07T08:30:00Z", "2027-01-07T08:30:00+00:00"),
        ("2027-01-07T09:30:00", None),  # no offset: which 09:30?
        ("tomorrow", None),
        ("2027-02-30", None),
        ("", None),
    ],
)
def test_exclude_until_reads_a_time_or_a_day(value: str, until: str | None) -> None:
    found = until_instant(value)
    assert (found.isoformat() if found else None) == until
