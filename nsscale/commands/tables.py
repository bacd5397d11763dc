"""Rendering: results as Rich tables for people, as one JSON document for machines."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rich import box
from rich.box import Box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from nsscale.engine.plan import NO_ORIGINAL, Change, Operation
from nsscale.engine.result import MultiResult, RunResult
from nsscale.engine.rivals.gitops import gitops_owner
from nsscale.engine.rivals.hpa import Autoscaler
from nsscale.errors import ExitCode
from nsscale.kube.objects import ORIGINAL, SCALED_TO, Kind, Workload, WorkloadKey
from nsscale.schedule.reconcile import Reconciled
from nsscale.transaction import Scaled

ARROW = "→"
_PLAIN = Style.null()


class Grid:
    """A table, drawn for where it goes. Not on a terminal (a pipe, a file, a CI log): plain
    aligned columns as `kubectl get` prints them, headers in capitals, one line per row, never
    wrapped. On a terminal: in a box, in one pass, exactly as Rich's Table would draw it; when
    the box is wider than the terminal, cells are cut with "…" (the columns named in `cut`
    first, in that order: by default the last, the detail), so that a row stays one line and no
    word is ever broken in two.

    Rich's Table lays every cell out through its general renderer, about 0.6 ms a row: 0.3 s
    to show a run over 500 workloads. Cells here are plain text with one style each, measured
    and drawn directly (about 0.05 ms a row).
    """

    def __init__(
        self,
        title: str,
        columns: Sequence[str],
        table_box: Box = box.HEAVY_HEAD,
        cut: Sequence[str] = (),
    ):
        self.title = title
        self.columns = [Text(c, "table.header") for c in columns]
        self.box = table_box
        self.cut = [columns.index(c) for c in cut or columns[-1:]]
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: str | Text) -> None:
        """Plain strings stay plain (kubectl's messages may hold [brackets])."""
        self.rows.append([c if isinstance(c, Text) else Text(c) for c in cells])

    def rich_table(self) -> Table:
        """The same table as Rich's Table draws it: what the Grid draws on a terminal that is
        wide enough, character for character and style for style (tests/test_render.py)."""
        table = Table(
            title=Text(self.title, "table.title"),
            title_justify="default",
            box=self.box,
            header_style="table.header",
        )
        for header in self.columns:
            table.add_column(header, overflow="fold")
        for row in self.rows:
            table.add_row(*row)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not options.is_terminal:
            yield from self._plain()
            return
        widths = [
            max(_width(cell) for cell in column)
            for column in zip(self.columns, *self.rows, strict=True)
        ]
        edges = 3 * len(widths) + 1  # "│ " before each cell, " " after, "│"
        if sum(widths) + edges > options.max_width:
            widths = self._fitted(widths, options.max_width - edges)
        table_width = sum(widths) + edges
        frame = self.box.substitute(options)
        padded = [w + 2 for w in widths]
        title = Text(self.title, "table.title", justify="default")
        yield from console.render(title, options.update(width=table_width, height=None))
        yield Segment(frame.get_top(padded) + "\n")
        head = (frame.head_left, frame.head_vertical, frame.head_right)
        header_style = console.get_style("table.header")
        yield from _row(console, _cut(self.columns, widths), widths, head, header_style)
        yield Segment(frame.get_row(padded, "head") + "\n")
        body = (frame.mid_left, frame.mid_vertical, frame.mid_right)
        for row in self.rows:
            yield from _row(console, _cut(row, widths), widths, body)
        yield Segment(frame.get_bottom(padded) + "\n")

    def _fitted(self, widths: Sequence[int], room: int) -> list[int]:
        """Column widths that sum to at most `room` cells: the columns to cut first, each down
        to its header's width, in turn; then the widest column one cell at a time (never below
        one cell)."""
        fitted = list(widths)
        excess = sum(fitted) - room
        for column in self.cut:
            floor = min(fitted[column], self.columns[column].cell_len)
            cut = min(excess, fitted[column] - floor)
            fitted[column] -= cut
            excess -= cut
        while excess > 0:
            widest = max(range(len(fitted)), key=fitted.__getitem__)
            if fitted[widest] <= 1:
                break  # a console narrower than one cell a column: as narrow as it gets
            fitted[widest] -= 1
            excess -= 1
        return fitted

    def _plain(self) -> RenderResult:
        """`kubectl get`'s columns (its tabwriter: each column but the last as wide as its
        widest cell plus 3, at least 6); a cell's own line breaks become blanks."""
        header = [c.plain.upper() for c in self.columns]
        rows = [header, *([_one_line(cell) for cell in row] for row in self.rows)]
        widths = [max(6, max(len(c) for c in column) + 3) for column in zip(*rows, strict=True)]
        yield Segment(self.title + "\n")
        for row in rows:
            cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
            yield Segment(("".join(cells) + row[-1]).rstrip() + "\n")


def _one_line(cell: Text) -> str:
    return " ".join(line.strip() for line in cell.plain.splitlines() if line.strip())


def _cut(cells: Sequence[Text], widths: Sequence[int]) -> list[list[Text]]:
    """Each cell as its lines (kubectl's own line breaks kept), each line cut with "…" to its
    column's width."""
    cut: list[list[Text]] = []
    for cell, width in zip(cells, widths, strict=True):
        lines = list(cell.split()) if "\n" in cell.plain else [cell]
        if any(line.cell_len > width for line in lines):
            lines = [line.copy() for line in lines]
            for line in lines:
                line.truncate(width, overflow="ellipsis")
        cut.append(lines)
    return cut


def _row(
    console: Console,
    lines: Sequence[Sequence[Text]],
    widths: Sequence[int],
    edges: tuple[str, str, str],
    style: Style = _PLAIN,
) -> RenderResult:
    """One row, on as many lines as its cell of most lines holds; segment for segment as
    Rich's Table draws it (`style` on the padding too, a cell's style on its own padding)."""
    left, between, right = edges
    pad = Segment(" ", style)
    for i in range(max(len(cell) for cell in lines)):
        yield Segment(left)
        for column, (cell, width) in enumerate(zip(lines, widths, strict=True)):
            if column:
                yield Segment(between)
            line = cell[i] if i < len(cell) else Text()
            yield pad
            yield Segment(
                line.plain + " " * (width - line.cell_len), style + console.get_style(line.style)
            )
            yield pad
        yield Segment(right + "\n")


def _width(cell: Text) -> int:
    """The cells of its longest line."""
    if "\n" not in cell.plain:
        return cell.cell_len
    return max(cell_len(line) for line in cell.plain.split("\n"))


def render_report(report: RunResult | MultiResult) -> Iterator[RenderableType]:
    """What a run shows a person: its table (and its rollback's) and its summary line, for
    each namespace; for several, then one row per namespace and the run's line."""
    results = report.results if isinstance(report, MultiResult) else (report,)
    for result in results:
        yield from result_parts(result)
    if isinstance(report, MultiResult):
        yield namespaces_table(report)
        yield multi_summary(report)


def result_parts(result: RunResult) -> Iterator[RenderableType]:
    """One namespace's run: its table, its rollback's, what is not ready, its line. A
    namespace already up, or refused before any change (one of several), has no table: its
    line says it all."""
    run = run_table(result)
    if not _already_up(result) and (bool(run.rows) or result.success):
        yield run
    if (table := rollback_table(result)) is not None:
        yield table
    if (table := not_ready_table(result)) is not None:
        yield table
    yield summary(result)


def decisions_table(done: Reconciled) -> Grid:
    """What reconcile decided for each namespace, and why."""
    title = f"nsscale reconcile at {done.at.isoformat(timespec='minutes')}"
    table = Grid(title, ("namespace", "wants", "action", "reason"), cut=("reason", "namespace"))
    for d in done.decisions:
        style = {"down": "yellow", "up": "green", "paused": "cyan", "error": "red"}.get(
            d.action.value, "dim"
        )
        table.add_row(d.namespace, d.desired or "-", Text(d.action.value, style), d.reason)
    return table


def namespaces_table(report: MultiResult) -> Grid:
    columns = ("namespace", "outcome", "scaled", "failed", "skipped", "rolled back", "exit")
    title = f"nsscale {report.operation}: {_namespaces(len(report.results))}"
    table = Grid(title, columns, cut=("namespace",))
    for r in report.results:
        o = r.outcome
        table.add_row(
            r.namespace,
            _outcome(r),
            str(sum(s.change.workload.kind.scales for s in o.scaled)),
            str(len(o.failed_all)),
            str(len(r.plan.skips)),
            str(sum(x.ok for x in o.rollback or [])),
            str(r.exit_code),
        )
    return table


def _namespaces(count: int) -> str:
    return f"{count} namespace{'' if count == 1 else 's'}"


def _outcome(result: RunResult) -> Text:
    if result.left_changed:
        return Text("PARTLY CHANGED", "bold red")
    if result.success:
        if result.dry_run:
            return Text("dry run", "cyan")
        return Text("not ready", "yellow") if result.not_ready else Text("done", "green")
    if result.outcome.rollback is not None:
        return Text("rolled back", "yellow")
    return Text("failed", "yellow")


def multi_summary(report: MultiResult) -> Text:
    results = report.results
    if not results:
        return Text("No namespace to act on: nothing changed.", "yellow")
    left = [r.namespace for r in results if r.left_changed]
    failed = [r.namespace for r in results if not r.success and not r.left_changed]
    late = [r.namespace for r in results if r.success and r.not_ready]
    done = len(results) - len(left) - len(failed) - len(late)
    text = f"{_namespaces(len(results))}: {done} {'dry run' if report.dry_run else 'done'}"
    if late:
        text += f", {len(late)} not ready in time ({', '.join(late)})"
    if failed:
        text += f", {len(failed)} failed and left as they were ({', '.join(failed)})"
    if left:
        return Text(
            f"{text}, {len(left)} PARTLY CHANGED ({', '.join(left)}): a person must look.",
            "bold red",
        )
    return Text(text + ".", "yellow" if failed or late else "green")


def run_table(result: RunResult) -> Grid:
    o = result.outcome
    restored = {r.change.workload.key: r for r in o.rollback or []}
    columns = ("kind", "name", "replicas", "status", "detail")
    table = Grid(f"nsscale {result.operation} {result.namespace}", columns, cut=("detail", "name"))
    for s in o.scaled:
        w, change = s.change.workload, s.change
        restoring = result.operation is Operation.UP
        done = ("restored" if restoring else "scaled") if w.kind.scales else _switch(change)
        status, style = (f"would be {done}", "cyan") if result.dry_run else (done, "green")
        if result.dry_run and w.kind.scales:
            status = "would restore" if restoring else "would scale"
        detail = f"for {change.after.holders}" if change.after.holders else ""
        if (r := restored.get(w.key)) is not None:
            status, style = ("rolled back", "yellow") if r.ok else ("LEFT CHANGED", "bold red")
            detail = "" if r.ok else r.failure.message if r.failure else ""
        table.add_row(
            w.kind,
            _name(w),
            _move(change.from_replicas, change.to_replicas, w.kind),
            Text(status, style),
            detail,
        )
    for f in o.failed_all:
        w, change = f.change.workload, f.change
        table.add_row(
            w.kind,
            _name(w),
            _move(change.from_replicas, change.to_replicas, w.kind),
            Text("failed", "red"),
            f.failure.message,
        )
    for skip in result.plan.skips:
        w = skip.workload
        table.add_row(
            w.kind, _name(w), _count(w.replicas, w.kind), Text("skipped", "dim"), skip.reason
        )
    return table


def rollback_table(result: RunResult) -> Grid | None:
    if result.outcome.rollback is None:
        return None
    columns = ("kind", "name", "restored to", "status", "detail")
    table = Grid("rollback", columns, cut=("detail", "name"))
    for r in result.outcome.rollback:
        w = r.change.workload
        status = Text("restored", "green") if r.ok else Text("FAILED", "bold red")
        detail = r.failure.message if r.failure else ""
        table.add_row(w.kind, _name(w), _count(r.change.from_replicas, w.kind), status, detail)
    return table


def not_ready_table(result: RunResult) -> Grid | None:
    if not result.not_ready:
        return None
    table = Grid("not ready", ("kind", "name", "ready", "wanted"), cut=("name",))
    for n in result.not_ready:
        table.add_row(n.workload.kind, n.workload.name, str(n.ready), str(n.wanted))
    return table


def summary(result: RunResult) -> Text:
    o = result.outcome
    ns = result.namespace
    skipped = f", {len(result.plan.skips)} skipped" if result.plan.skips else ""
    if _already_up(result):
        return Text(f"{ns}: already up: nothing recorded to restore.", "green")
    if result.dry_run and o.success:
        return Text(f"Dry run: {len(o.scaled)} would be scaled{skipped} in {ns}; nothing changed.")
    if o.success:
        if not o.scaled and result.operation is Operation.UP:
            return _nothing_restored(ns, len(result.plan.skips))
        if not o.scaled:
            return Text(f"Nothing to do in {ns}{skipped}.", "green")
        verb = "restored" if result.operation == "up" else "scaled"
        moved = sum(s.change.workload.kind.scales for s in o.scaled)
        done = f"{ns}: {moved} {verb}{_switched(o.scaled)}{skipped}"
        if result.wait_stopped:
            waiting = f"{len(result.not_ready)} not ready yet" if result.not_ready else "all ready"
            return Text(f"{done}; the wait was stopped by {result.wait_stopped} ({waiting}).")
        if result.not_ready:
            return Text(
                f"{done}; {len(result.not_ready)} not ready within --wait-timeout (the change "
                "stays).",
                "yellow",
            )
        return Text(f"{done}.", "green")
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
    why = f": {o.errors[0]}" if o.errors and not run_table(result).rows else ""
    return Text(f"{ns}: failed; nothing was changed{why}.", "yellow")


def _already_up(result: RunResult) -> bool:
    """`up` that found nothing nsscale scaled: every workload skipped for want of an original
    (none restored, none failed)."""
    o, skips = result.outcome, result.plan.skips
    return (
        result.operation is Operation.UP
        and o.success
        and not o.scaled
        and bool(skips)
        and all(skip.reason == NO_ORIGINAL for skip in skips)
    )


def _switched(scaled: Sequence[Scaled]) -> str:
    """ ", 2 CronJobs suspended, 1 ScaledObject paused": what a run switched besides scaling."""
    counts: dict[tuple[Kind, str], int] = {}
    for s in scaled:
        kind = s.change.workload.kind
        if not kind.scales:
            key = (kind, _switch(s.change))
            counts[key] = counts.get(key, 0) + 1
    return "".join(
        f", {n} {kind.info.name}{'s' if n > 1 else ''} {done}" for (kind, done), n in counts.items()
    )


def _switch(change: Change) -> str:
    """What a change did to what is not scaled: "suspended", "resumed", "paused"; a GitOps
    owner that stays suspended for other namespaces, "kept suspended"."""
    if change.from_replicas == change.to_replicas == 0:
        return "kept suspended"
    if change.workload.kind.counted:  # an HPA's minReplicas: lowered, or put back
        return change.workload.kind.info.switched[change.to_replicas >= change.from_replicas]
    return change.workload.kind.info.switched[change.to_replicas]


def _name(workload: Workload) -> str:
    """A GitOps owner lives apart from the namespace of the table: with its own."""
    return f"{workload.namespace}/{workload.name}" if workload.kind.gitops else workload.name


def _nothing_restored(namespace: str, skipped: int) -> Text:
    """`up` restored nothing: not a green success, the user expected workloads back."""
    if not skipped:
        return Text(
            f"Nothing restored in {namespace}: it has no Deployments or StatefulSets.", "yellow"
        )
    workloads = "workload" if skipped == 1 else "workloads"
    return Text(
        f"Nothing restored in {namespace}: {skipped} {workloads} skipped (see the reasons above).",
        "yellow",
    )


def status_table(
    namespace: str,
    workloads: Sequence[Workload],
    autoscalers: Mapping[WorkloadKey, Autoscaler] | None = None,
) -> Grid:
    """A row per workload; the "managed by" column only when something manages one (its HPA,
    its GitOps owner)."""
    managers = [_managers(w, autoscalers or {}) for w in workloads]
    managed = any(managers)
    columns: tuple[str, ...] = ("kind", "name", "replicas", "ready", "original", "set by nsscale")
    columns += ("managed by",) if managed else ()
    cut = ("managed by", "name") if managed else ("name",)
    table = Grid(f"nsscale status {namespace}", columns, cut=cut)
    for w, manager in zip(workloads, managers, strict=True):
        cells = [
            w.kind,
            w.name,
            str(w.replicas),
            str(w.ready),
            w.annotations.get(ORIGINAL, "-"),
            w.annotations.get(SCALED_TO, "-"),
        ]
        table.add_row(*cells, *([manager or "-"] if managed else []))
    return table


def _managers(workload: Workload, autoscalers: Mapping[WorkloadKey, Autoscaler]) -> str:
    hpa, owner = autoscalers.get(workload.key), gitops_owner(workload)
    return ", ".join(m.describe() for m in (hpa, owner) if m is not None)


def history_table(title: str, events: Sequence[Mapping[str, Any]]) -> Grid:
    """Recorded runs, newest first; `--output json` has every field, the run id among them."""
    columns = ("time (UTC)", "op", "outcome", "scaled", "failed", "skipped", "by")
    table = Grid(title, columns, box.SIMPLE_HEAD)
    for e in events:
        when = str(e.get("time", "")).replace("T", " ")[:19]
        by = f"{e.get('kubectl_user') or e.get('user')}@{e.get('host')}"
        if e.get("caller"):  # a request to `nsscale serve`: who asked, through which server
            by = f"{e['caller']} via {by}"
        counts = (str(e.get(k, "")) for k in ("total_scaled", "total_failed", "total_skipped"))
        table.add_row(when, str(e.get("operation", "")), str(e.get("outcome", "")), *counts, by)
    return table


def _move(before: int, after: int, kind: Kind = Kind.DEPLOYMENT) -> str:
    return f"{_count(before, kind)} {ARROW} {_count(after, kind)}"


def _count(replicas: int, kind: Kind) -> str:
    return str(replicas) if kind.counted else kind.info.switch[replicas]
