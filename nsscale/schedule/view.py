"""A schedule as a person reads it: when it next changes, and its current week as a strip of
wall-clock slots (the web page's week strip, `GET /api/namespaces`). Pure.

Both come from the schedule's stretches of time: each occurrence of each window (as
`Window.occurrence` makes it, the daylight-saving rules of windows.py included) and each period,
merged where they touch or overlap. Between two edges of that union `Schedule.contains` cannot
change, so the next change is the first edge after the instant, and a slot is up when its
start lies in a stretch.

The strip is by wall clock: 7 local days (Monday to Sunday of the week holding the instant) of
`24 * 60 / SLOT_MINUTES` slots each, whatever the day's length: on a 23-hour day (the spring
change) the slots of the missing hour are read as windows.py reads a time that does not exist
(as far after the gap as it was into it), on a 25-hour day the repeated hour is shown once (its
first time). A slot shows the state at its start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from nsscale.schedule.windows import (
    DAY_MINUTES,
    Period,
    Schedule,
    Window,
    wall_clock_instant,
)

SLOT_MINUTES = 30
HORIZON = timedelta(days=8)  # how far next_change looks: a weekly schedule changes within a week
# Occurrences that can hold an instant of a span start up to three days before its UTC date
# (see windows.py's _NEARBY_DAYS) and end up to two days after.
_BEFORE, _AFTER = timedelta(days=3), timedelta(days=2)

Stretch = tuple[datetime, datetime]  # [start, end) in UTC


def stretches(schedule: Schedule, start: datetime, end: datetime) -> list[Stretch]:
    """The schedule's time from `start` to `end` (aware instants) as sorted, disjoint [start,
    end) stretches in UTC, merged where they touch; they may reach past either bound."""
    low, high = start.astimezone(UTC), end.astimezone(UTC)
    if schedule.always:
        return [(low, high)]
    found = sorted(s for part in schedule.windows for s in _pieces(part, low, high) if s[0] < s[1])
    merged: list[Stretch] = []
    for first, last in found:
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return [s for s in merged if s[1] > low and s[0] < high]


def _pieces(part: Window | Period, low: datetime, high: datetime) -> Iterator[Stretch]:
    if isinstance(part, Period):
        yield part.start.astimezone(UTC), part.end.astimezone(UTC)
        return
    days = part.days
    day, last = (low - _BEFORE).date(), (high + _AFTER).date()
    while day <= last:
        if day.weekday() in days:
            with suppress(OverflowError):  # before year 1 or after 9999: none
                yield part.occurrence(day)
        day += timedelta(days=1)


def next_change(schedule: Schedule, at: datetime, horizon: timedelta = HORIZON) -> datetime | None:
    """The first instant after `at` at which `schedule.contains` differs from what it is at
    `at` (a window's end is excluded: the change is at it), if within `horizon`; else None
    (`always`, `never`, or nothing ahead that soon)."""
    end = at + horizon
    for first, last in stretches(schedule, at, end):
        if first <= at:  # inside: it changes where this stretch ends
            return last if last < end else None  # reaching the horizon: no change seen
        return first
    return None


@dataclass(frozen=True)
class Week:
    """The week strip of a schedule, in `zone`: `up[d][s]` for local day d (0 Monday) and slot
    s; `now` the day and wall-clock minute of the instant it was made for."""

    zone: str
    days: tuple[date, ...]
    up: tuple[str, ...]  # per day, a "1" for each slot wanted up, else "0"
    now_day: int
    now_minute: int
    slot_minutes: int = SLOT_MINUTES

    def to_dict(self) -> dict[str, object]:
        return {
            "zone": self.zone,
            "days": [d.isoformat() for d in self.days],
            "slot_minutes": self.slot_minutes,
            "up": list(self.up),
            "now": {"day": self.now_day, "minute": self.now_minute},
        }


def week(schedule: Schedule, at: datetime, zone: ZoneInfo, inside_is_up: bool = True) -> Week:
    """The strip of the week (Monday to Sunday in `zone`) that holds `at`. `inside_is_up`: an
    uptime's slots inside it are up; a downtime's (False) are down."""
    local = at.astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    up = _strip(schedule, monday, zone, inside_is_up)
    days = tuple(monday + timedelta(days=n) for n in range(7))
    return Week(zone.key, days, up, local.weekday(), local.hour * 60 + local.minute)


@lru_cache(maxsize=256)  # a fleet shares few schedules, and a week's strip changes weekly
def _strip(schedule: Schedule, monday: date, zone: ZoneInfo, inside_is_up: bool) -> tuple[str, ...]:
    slots = [
        [wall_clock_instant(monday + timedelta(days=d), m, zone) for m in _slot_starts()]
        for d in range(7)
    ]
    found = stretches(schedule, slots[0][0], slots[-1][-1] + timedelta(minutes=SLOT_MINUTES))
    marks = ("1", "0") if inside_is_up else ("0", "1")
    return tuple("".join(marks[0] if _inside(t, found) else marks[1] for t in day) for day in slots)


def _slot_starts() -> range:
    return range(0, DAY_MINUTES, SLOT_MINUTES)


def _inside(instant: datetime, found: list[Stretch]) -> bool:
    return any(first <= instant < last for first, last in found)
