"""Durations on the command line: a whole number and a unit (`90d`, `12h`, `30m`, `90s`)."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(?P<count>\d+)(?P<unit>[a-z])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def format_duration(duration: timedelta) -> str:
    """`duration` as parse_duration reads it, in its largest whole unit (`5m`, `90s`)."""
    seconds = int(duration.total_seconds())
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def parse_duration(
    text: str, units: str, what: str, examples: str, too_long: str = "too long"
) -> timedelta:
    """`text` as a timedelta, when its unit is one of `units` (letters of d, h, m, s);
    ValueError naming `what` it is not, with `examples`, for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if not match or match["unit"] not in units:
        listed = f"{', '.join(units[:-1])} or {units[-1]}" if len(units) > 1 else units
        raise ValueError(f"{text!r} is not {what}: use a number and {listed} ({examples})")
    try:
        return timedelta(**{_UNITS[match["unit"]]: int(match["count"])})
    except OverflowError:
        raise ValueError(f"{text!r} is {too_long}") from None
