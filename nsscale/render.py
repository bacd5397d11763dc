"""Rendering: results as Rich tables for people, as one JSON document for machines."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.box import Box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.text import Text

from nsscale.errors import ExitCode
from nsscale.result import RunResult
from nsscale.workload import ORIGINAL, SCALED_TO, Workload

ARROW = "→"


class Grid:
    """A table drawn as Rich draws one (title, box, bold header), in one pass over the cells.

    Rich's Table lays every cell out through its general renderer, about 0.6 ms a row: 0.3 s
    to show a run over 500 workloads, more than nsscale's own work on a fast cluster. Cells
    here are plain text with one style each, so a row is measured and drawn directly
    (about 0.05 ms). When the table is wider than the console, the widest columns give way
    first (kubectl's messages, then long names) and their cells fold onto more lines.
    """

    def __init__(self, title: str, columns: Sequence[str], table_box: Box = box.HEAVY_HEAD):
        self.title = title
        self.columns = [Text(c, "table.header") for c in columns]
        self.box = table_box
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: str | Text) -> None:
        """Plain strings stay plain (kubectl's messages may hold [brackets])."""
        self.rows.append([c if isinstance(c, Text) else Text(c) for c in cells])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = [
            max(_width(cell) for cell in column)
            for column in zip(self.columns, *self.rows, strict=True)
        ]
        edges = 3 * len(widths) + 1  # "│ " before each cell, " " after, "│" at the end
        widths = _fit(widths, [c.cell_len for c in self.columns], options.max_width - edges)
        frame = self.box.substitute(options)
        padded = [w + 2 for w in widths]
        yield Text(self.title, "table.title")
        yield Segment(frame.get_top(padded) + "\n")
        head = (frame.head_left, frame.head_vertical, frame.head_right)
        yield from _row(console, self.columns, widths, head)
        yield Segment(frame.get_row(padded, "head") + "\n")
        body = (frame.mid_left, frame.mid_vertical, frame.mid_right)
        for row in self.rows:
            yield from _row(console, row, widths, body)
        yield Segment(frame.get_bottom(padded) + "\n")


def _row(
    console: Console,
    cells: Sequence[Text],
    widths: Sequence[int],
    edges: tuple[str, str, str],
) -> RenderResult:
    """One row, on as many lines as its most folded cell needs."""
    left, between, right = edges
    folded = [_fold(console, cell, width) for cell, width in zip(cells, widths, strict=True)]
    for i in range(max(len(lines) for lines in folded)):
        yield Segment(left)
        for column, (lines, width) in enumerate(zip(folded, widths, strict=True)):
            yield Segment(" " if column == 0 else f" {between} ")
            line = lines[i] if i < len(lines) else Text()
            style = console.get_style(line.style) if line.style else None
            yield Segment(line.plain, style)
            yield Segment(" " * (width - line.cell_len))
        yield Segment(f" {right}\n")


def _fit(widths: Sequence[int], headers: Sequence[int], room: int) -> list[int]:
    """Column widths within `room`: the widest column gives a cell at a time, down to its
    header's width (its cells then fold onto more lines)."""
    fitted = list(widths)
    for _ in range(sum(fitted) - room):
        narrowable = [i for i, h in enumerate(headers) if fitted[i] > max(h, 1)]
        if not narrowable:
            break  # every column at its header's width: the console crops what is left
        fitted[max(narrowable, key=lambda i: (fitted[i], i))] -= 1  # a tie: the later column
    return fitted


def _width(cell: Text) -> int:
    """The cells of its longest line."""
    if "\n" not in cell.plain:
        return cell.cell_len
    return max(cell_len(line) for line in cell.plain.split("\n"))


def _fold(console: Console, cell: Text, width: int) -> list[Text]:
    if cell.cell_len <= width and "\n" not in cell.plain:
        return [cell]
    return [Text(line.plain, cell.style) for line in cell.wrap(console, width, overflow="fold")]


def print_json(console: Console, document: dict[str, Any]) -> None:
    # Plain print: Rich must not wrap or colour a document meant for machines.
    console.file.write(json.dumps(document, indent=2) + "\n")
    console.file.flush()


def run_table(result: RunResult) -> Grid:
    o = result.outcome
    restored = {r.change.workload.key: r for r in o.rollback or []}
    columns = ("kind", "name", "replicas", "status", "detail")
    table = Grid(f"nsscale {result.operation} {result.namespace}", columns)
    for s in o.scaled:
        w, change = s.change.workload, s.change
        status, style = ("would scale", "cyan") if result.dry_run else ("scaled", "green")
        detail = ""
        if (r := restored.get(w.key)) is not None:
            status, style = ("rolled back", "yellow") if r.ok else ("LEFT CHANGED", "bold red")
            detail = "" if r.ok else r.failure.message if r.failure else ""
        table.add_row(
            w.kind,
            w.name,
            _move(change.from_replicas, change.to_replicas),
            Text(status, style),
            detail,
        )
    for f in o.failed + o.uncertain:
        w, change = f.change.workload, f.change
        table.add_row(
            w.kind,
            w.name,
            _move(change.from_replicas, change.to_replicas),
            Text("failed", "red"),
            f.failure.message,
        )
    for skip in result.plan.skips:
        w = skip.workload
        table.add_row(w.kind, w.name, str(w.replicas), Text("skipped", "dim"), skip.reason)
    return table


def rollback_table(result: RunResult) -> Grid | None:
    if result.outcome.rollback is None:
        return None
    table = Grid("rollback", ("kind", "name", "restored to", "status", "detail"))
    for r in result.outcome.rollback:
        w = r.change.workload
        status = Text("restored", "green") if r.ok else Text("FAILED", "bold red")
        detail = r.failure.message if r.failure else ""
        table.add_row(w.kind, w.name, str(r.change.from_replicas), status, detail)
    return table


def summary(result: RunResult) -> Text:
    o = result.outcome
    ns = result.namespace
    skipped = f", {len(result.plan.skips)} skipped" if result.plan.skips else ""
    if result.dry_run and o.success:
        return Text(f"Dry run: {len(o.scaled)} would be scaled{skipped} in {ns}; nothing changed.")
    if o.success:
        if not o.scaled:
            return Text(f"Nothing to do in {ns}{skipped}.", "green")
        verb = "restored" if result.operation == "up" else "scaled"
        return Text(f"{ns}: {len(o.scaled)} {verb}{skipped}.", "green")
    left = result.left_changed
    if left:
        names = ", ".join(f"{w.ref} (at {n})" for w, n in left)
        return Text(
            f"{ns} is PARTLY CHANGED: {len(left)} workload(s) left changed: {names}. "
            "A person must look (their originals are kept in the annotation "
            f"{ORIGINAL}).",
            "bold red",
        )
    if o.rollback is not None:
        return Text(
            f"{ns}: failed; {len(o.rollback)} change(s) rolled back: the namespace is as it was.",
            "yellow",
        )
    if result.exit_code == ExitCode.PARTIAL:
        return Text(f"{ns}: failed; state of some workloads unknown: check them.", "bold red")
    return Text(f"{ns}: failed; nothing was changed.", "yellow")


def status_table(namespace: str, workloads: Sequence[Workload]) -> Grid:
    columns = ("kind", "name", "replicas", "ready", "original", "set by nsscale")
    table = Grid(f"nsscale status {namespace}", columns)
    for w in workloads:
        table.add_row(
            w.kind,
            w.name,
            str(w.replicas),
            str(w.ready),
            w.annotations.get(ORIGINAL, "-"),
            w.annotations.get(SCALED_TO, "-"),
        )
    return table


def status_document(namespace: str, workloads: Sequence[Workload]) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "workloads": [
            {
                "type": w.kind.value,
                "name": w.name,
                "replicas": w.replicas,
                "ready_replicas": w.ready,
                "original_replicas": w.annotations.get(ORIGINAL),
                "scaled_replicas": w.annotations.get(SCALED_TO),
            }
            for w in workloads
        ],
    }


def history_table(title: str, events: Sequence[Mapping[str, Any]]) -> Grid:
    """Recorded runs, newest first; `--output json` has every field, the run id among them."""
    columns = ("time (UTC)", "op", "outcome", "scaled", "failed", "skipped", "by")
    table = Grid(title, columns, box.SIMPLE_HEAD)
    for e in events:
        when = str(e.get("time", "")).replace("T", " ")[:19]
        by = f"{e.get('kubectl_user') or e.get('user')}@{e.get('host')}"
        counts = (str(e.get(k, "")) for k in ("total_scaled", "total_failed", "total_skipped"))
        table.add_row(when, str(e.get("operation", "")), str(e.get("outcome", "")), *counts, by)
    return table


def _move(before: int, after: int) -> str:
    return f"{before} {ARROW} {after}"
