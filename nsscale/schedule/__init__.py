"""Schedules for `nsscale reconcile`: when a namespace should be up (or down), as weekly windows
of local wall-clock time. Pure: text in (`parse_schedule`), a yes or no for an instant out
(`Schedule.contains`); the grammar is in `grammar.py`, the evaluation in `windows.py`."""

from nsscale.schedule.grammar import ScheduleError, parse_schedule, time_zone
from nsscale.schedule.windows import ALWAYS, NEVER, Period, Schedule, Window

__all__ = [
    "ALWAYS",
    "NEVER",
    "Period",
    "Schedule",
    "ScheduleError",
    "Window",
    "parse_schedule",
    "time_zone",
]
