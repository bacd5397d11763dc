"""Durations on the command line, in kubectl's forms: a number and a unit (`90d`, `12h`, `30m`,
`90s`, `1.5h`), or a bare number, which is seconds (`30`, as kubectl's --request-timeout)."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(?P<count>\d+(?:\.\d+)?|\.\d+)(?P<unit>[a-z]?)")
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
    """`text` as a timedelta, when its unit is one of `units` (letters of d, h, m, s), or, when
    `units` has s, a bare number of seconds; ValueError naming `what` it is not, with
    `examples`, for anything else."""
    match = _DURATION.fullmatch(text.strip())
    unit = (match["unit"] or ("s" if "s" in units else "")) if match else ""
    if not match or not unit or unit not in units:
        listed = f"{', '.join(units[:-1])} or {units[-1]}" if len(units) > 1 else units
        bare = ", or a bare number of seconds" if "s" in units else ""
        raise ValueError(f"{text!r} is not {what}: use a number and {listed} ({examples}){bare}")
    try:
        return timedelta(**{_UNITS[unit]: float(match["count"])})
    except OverflowError:
        raise ValueError(f"{text!r} is {too_long}") from None
