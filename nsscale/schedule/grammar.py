"""Schedule text to a Schedule: the grammar of `--uptime`, `--downtime` and the Namespace
annotations `nsscale/uptime` and `nsscale/downtime` (README, "Schedules"); kube-downscaler's time
specs read as it writes them.

    SPEC    always | never | PART, PART, ...
    PART    WINDOW | PERIOD
    WINDOW  DAYS TIMES [TZ]
    DAYS    DAY | DAY-DAY            a range may wrap: Fri-Mon is Fri, Sat, Sun, Mon; a range whose
                                     ends are the same day is that day (Sun-Sun is Sunday)
    DAY     Mon Tue Wed Thu Fri Sat Sun
    TIMES   HH:MM-HH:MM              start included, end excluded; an end not after the start
                                     crosses midnight: Fri 22:00-06:00 ends Saturday 06:00, and
                                     Mon 08:00-08:00 is the 24 hours from Monday 08:00
    HH:MM   00:00 to 24:00           24:00 only as an end: the end of the day
    TZ      an IANA name             default: parse_schedule's default_tz
    PERIOD  START-END                RFC 3339 times with offsets, start included, end excluded:
                                     2026-12-24T00:00:00+01:00-2027-01-02T00:00:00+01:00

Lenient where nothing can be misread: `always`, `never`, days and time zones in any case
(`mon-FRI`, `europe/madrid`), a one-digit hour (`8:00`), any whitespace between the parts of a
window and around commas and dashes (`Mon - Fri 08:00 - 18:00`). Strict where a guess could be
wrong: full day names, `24:00` as a start, UTC offsets as zones, a period without offsets.
`Schedule.describe()` gives the normalised text.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from nsscale.defaults import DEFAULT_TIMEZONE
from nsscale.schedule.windows import ALWAYS, DAY_MINUTES, NEVER, WEEKDAYS, Period, Schedule, Window

_KEYWORDS = {"always": ALWAYS, "never": NEVER}
_DAY_NUMBERS = {name.lower(): number for number, name in enumerate(WEEKDAYS)}
_DASH = re.compile(r"\s*-\s*")
_TIME = re.compile(r"(?P<hours>\d{1,2}):(?P<minutes>\d{2})")
_INSTANT = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})"
_PERIOD = re.compile(rf"(?P<start>{_INSTANT})\s*-\s*(?P<end>{_INSTANT})", re.IGNORECASE)
_PERIOD_FORM = (
    "a period is START-END, RFC 3339 times with offsets, "
    "e.g. 2026-12-24T00:00:00+01:00-2027-01-02T00:00:00+01:00"
)
_WINDOW_FORM = "a window is DAYS HH:MM-HH:MM [TZ], e.g. Mon-Fri 08:00-18:00 Europe/Madrid"


class ScheduleError(ValueError):
    """A schedule that does not parse. The message is one line naming the part at fault and what
    would be right; `part` is that window (or the whole text), `problem` the message without it."""

    def __init__(self, problem: str, part: str | None = None) -> None:
        super().__init__(problem if part is None else f'in "{part}": {problem}')
        self.problem = problem
        self.part = part


def parse_schedule(text: str, default_tz: str = DEFAULT_TIMEZONE) -> Schedule:
    """The schedule `text` describes; a window without its own zone is in `default_tz` (checked
    even when no window needs it). ScheduleError naming the offending part otherwise."""
    default = time_zone(default_tz)
    spec = text.strip()
    if not spec:
        raise ScheduleError(f"empty schedule: write always, never, or windows ({_WINDOW_FORM})")
    if spec.lower() in _KEYWORDS:
        return _KEYWORDS[spec.lower()]
    parts = [part.strip() for part in spec.split(",")]
    for index, part in enumerate(parts):
        if not part:
            raise ScheduleError(_stray_comma(index, len(parts)), spec)
    return Schedule(tuple(_window(part, default) for part in parts))


def _window(part: str, default: ZoneInfo) -> Window | Period:
    if re.match(r"\d{4}-", part):
        return _period(part)
    words = _DASH.sub("-", part).split()
    days, rest = words[0], words[1:]
    if days.lower() in _KEYWORDS:
        raise ScheduleError(f"{days.lower()} stands alone, without windows", part)
    first_day, last_day = _days(days, part)
    if not rest:
        several = "several days are a range or a window each"
        raise ScheduleError(f"no times: {_WINDOW_FORM}; {several}", part)
    start, end = _times(rest[0], part)
    zone = default
    if len(rest) > 1:
        found = _zone(rest[1])
        if found is None:
            raise ScheduleError(_unknown_zone(rest[1]), part)
        zone = found
    if len(rest) > 2:
        raise ScheduleError(f"unexpected {rest[2]} after the time zone: {_WINDOW_FORM}", part)
    return Window(first_day, last_day, start, end, zone)


def _period(part: str) -> Period:
    """An absolute range: kube-downscaler's holidays and release nights."""
    match = _PERIOD.fullmatch(part)
    if match is None:
        raise ScheduleError(f"not a period: {_PERIOD_FORM}", part)
    try:
        start, end = (datetime.fromisoformat(match[end].upper()) for end in ("start", "end"))
    except ValueError as err:  # a day or an hour that does not exist: 2026-02-30
        raise ScheduleError(f"not a time: {err}", part) from err
    if end <= start:
        raise ScheduleError("the period ends before it starts", part)
    return Period(start, end)


def _days(word: str, part: str) -> tuple[int, int]:
    if any(char.isdigit() for char in word):
        raise ScheduleError(f"{word} is not a day: {_WINDOW_FORM}", part)
    names = word.split("-")
    if len(names) > 2 or not all(names):
        raise ScheduleError(f"{word} is not a day or a range of days (Mon, or Mon-Fri)", part)
    numbers = [_day(name, part) for name in names]
    return numbers[0], numbers[-1]


def _day(name: str, part: str) -> int:
    number = _DAY_NUMBERS.get(name.lower())
    if number is None:
        raise ScheduleError(f"unknown day {name}: days are {', '.join(WEEKDAYS)}", part)
    return number


def _times(word: str, part: str) -> tuple[int, int]:
    ends = word.split("-")
    if len(ends) != 2 or not all(ends):
        raise ScheduleError(f"{word} is not a time range (HH:MM-HH:MM, e.g. 08:00-18:00)", part)
    start, end = (_minute(end, part) for end in ends)
    if start == DAY_MINUTES:
        raise ScheduleError("24:00 ends a day and cannot start a window: start at 00:00", part)
    return start, end


def _minute(word: str, part: str) -> int:
    match = _TIME.fullmatch(word)
    if match:
        hours, minutes = int(match["hours"]), int(match["minutes"])
        if minutes < 60 and (hours < 24 or (hours == 24 and minutes == 0)):
            return hours * 60 + minutes
    raise ScheduleError(f"{word} is not a time (HH:MM, 00:00 to 24:00)", part)


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, in any case (`utc` is `UTC`); ScheduleError if there is none,
    for a caller that checks a zone before any schedule needs it (`--timezone`)."""
    zone = _zone(name)
    if zone is None:
        raise ScheduleError(_unknown_zone(name))
    return zone


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, as `America`
        pass
    key = _zone_keys().get(name.lower())  # only on a miss: listing the zones takes ~15 ms
    return None if key is None else ZoneInfo(key)


@functools.cache
def _zone_keys() -> dict[str, str]:
    return {key.lower(): key for key in available_timezones()}


def _unknown_zone(name: str) -> str:
    shown = name or '""'
    return f"unknown time zone {shown}: use an IANA name such as Europe/Madrid or UTC"


def _stray_comma(index: int, count: int) -> str:
    if index == 0:
        return "stray comma at the start"
    if index == count - 1:
        return "stray comma at the end"
    return "two commas with no window between them"
