"""Reading what nsscale prints off a terminal: `kubectl get`'s plain columns."""

from __future__ import annotations

import re


def plain_rows(text: str) -> list[list[str]]:
    """The body rows of every table in `text`, as lists of cells. A table's header is a line in
    capitals; each of its column names starts a column; its rows are the lines under it whose
    every column starts after a blank (a summary line is not one of them)."""
    rows: list[list[str]] = []
    starts: list[int] = []
    for line in text.splitlines():
        if line == line.upper() and any(c.isalpha() for c in line):
            starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", line)]
        elif starts and line and all(line[s - 1 : s] in (" ", "") for s in starts[1:]):
            ends = [*starts[1:], None]
            rows.append([line[a:b].strip() for a, b in zip(starts, ends, strict=True)])
        else:
            starts = []
    return rows
