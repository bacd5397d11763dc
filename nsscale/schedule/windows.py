"""What a schedule is and when it holds: weekly windows of wall-clock time, each in its own zone.

A window occurs on each of its local days, from its start on that day to its end on that day (on
the next one when it crosses midnight; `24:00` is the next day's `00:00`). Each of those two
wall-clock times becomes an instant the way zoneinfo reads a datetime with `fold=0`, so a
daylight-saving change needs nothing, and a time the clock shows never or twice that day is:

- **in the spring gap** (02:30 in Madrid on the last Sunday of March): read with the offset before
  the change, so it falls as far after the gap as it was into it (03:30 CEST). A window starting
  in the gap starts that much later that day, and one that would end less than the gap's length
  after its start (`Sun 02:30-03:15`) does not occur that day;
- **in the autumn's repeated hour** (02:30 in Madrid on the last Sunday of October): its first
  occurrence (02:30 CEST). A window never reopens when the hour repeats: `Sun 00:00-02:30` ends at
  the first 02:30, `Sun 02:30-05:00` runs from the first 02:30 to 05:00 CET.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # date.weekday()'s order
DAY_MINUTES = 24 * 60

# The local days whose occurrence may hold an instant, around its UTC date: offsets of -12 h to
# +14 h and a window ending the day after it starts give two days before to one day after, and
# one more each side covers a change of offset that moves a wall-clock time across midnight.
_NEARBY_DAYS = tuple(timedelta(days=shift) for shift in (-3, -2, -1, 0, 1, 2))


@dataclass(frozen=True)
class Window:
    """Local days `first_day` to `last_day` (0 is Monday; the range wraps past Sunday), from
    `start` to `end`, in minutes after local midnight (`start` 0 to 1439, included; `end` 0 to
    1440, excluded; an `end` not after `start` crosses midnight), in `zone`."""

    first_day: int
    last_day: int
    start: int
    end: int
    zone: ZoneInfo

    @property
    def days(self) -> tuple[int, ...]:
        """The weekdays the window starts on, from `first_day`."""
        count = (self.last_day - self.first_day) % 7 + 1
        return tuple((self.first_day + offset) % 7 for offset in range(count))

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def contains(self, at: datetime) -> bool:
        """Whether the aware instant `at` falls inside one of the window's occurrences."""
        instant = _aware(at).astimezone(UTC)
        days = self.days
        for shift in _NEARBY_DAYS:
            try:
                day = instant.date() + shift
                if day.weekday() not in days:
                    continue
                start, end = self.occurrence(day)
            except OverflowError:  # an occurrence before year 1 or after 9999: none
                continue
            if start <= instant < end:
                return True
        return False

    def occurrence(self, day: date) -> tuple[datetime, datetime]:
        """The UTC instants the window starts and ends when it starts on the local `day` (a
        weekday of `days`): empty (start >= end) when the spring gap swallows it that day;
        OverflowError past year 9999."""
        end_day = day + timedelta(days=1) if self.crosses_midnight else day
        start = wall_clock_instant(day, self.start, self.zone)
        return start, wall_clock_instant(end_day, self.end, self.zone)

    def describe(self) -> str:
        """`Mon-Fri 08:00-18:00 Europe/Madrid`: the window as the grammar reads it."""
        days = WEEKDAYS[self.first_day]
        if self.last_day != self.first_day:
            days += f"-{WEEKDAYS[self.last_day]}"
        return f"{days} {_clock(self.start)}-{_clock(self.end)} {self.zone.key}"


@dataclass(frozen=True)
class Period:
    """One absolute stretch of time, as kube-downscaler writes it (a holiday, a release night):
    from `start` (included) to `end` (excluded), both aware instants."""

    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        return self.start <= _aware(at) < self.end

    def describe(self) -> str:
        """`2026-12-24T00:00:00+01:00-2027-01-02T00:00:00+01:00`, as written."""
        return f"{self.start.isoformat()}-{self.end.isoformat()}"


@dataclass(frozen=True)
class Schedule:
    """`always`, `never` (no windows), or the union of its windows and periods."""

    windows: tuple[Window | Period, ...] = ()
    always: bool = False

    def __post_init__(self) -> None:
        if self.always and self.windows:
            raise ValueError("a schedule that is always on has no windows")

    def contains(self, at: datetime) -> bool:
        """Whether the aware instant `at` falls inside the schedule; ValueError if it is naive."""
        instant = _aware(at).astimezone(UTC)
        return self.always or any(window.contains(instant) for window in self.windows)

    def describe(self) -> str:
        """The normalised text: `always`, `never`, or the windows, each with its zone, joined by
        `, `; parsing it gives the same schedule."""
        if self.always:
            return "always"
        if not self.windows:
            return "never"
        return ", ".join(window.describe() for window in self.windows)

    def __str__(self) -> str:
        return self.describe()


ALWAYS = Schedule(always=True)
NEVER = Schedule()


def _aware(at: datetime) -> datetime:
    if at.utcoffset() is None:
        raise ValueError(f"a schedule is evaluated at an instant with a time zone, got naive {at}")
    return at


def wall_clock_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """Wall-clock `minute` of the local `day` in `zone`, as a UTC instant (fold=0: see above)."""
    if minute == DAY_MINUTES:
        day, minute = day + timedelta(days=1), 0
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
