"""The Grid: tables that fit drawn in one pass exactly as Rich draws them, the others by
Rich's Table; and the closing line of a run."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from rich import box
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from nsscale.commands.output import console
from nsscale.commands.tables import (
    Grid,
    history_table,
    not_ready_table,
    render_report,
    rollback_table,
    run_table,
    status_table,
    summary,
)
from nsscale.engine.plan import Change, Operation, Plan, Skip, make_plan
from nsscale.engine.result import MultiResult, RunResult
from nsscale.engine.waiting import NotReady
from nsscale.engine.writer import Failure
from nsscale.errors import ErrorKind
from nsscale.kube.objects import State, Workload
from nsscale.transaction import Failed, Outcome, Restored, Scaled, Step
from tests.kube import NS, workload

MESSAGE = (
    'Error from server (Conflict): Operation cannot be fulfilled on statefulsets.apps "db": '
    "the object has been modified; please apply your changes to the latest version"
)


def draw(grid: Grid | Table, width: int, color: bool = False) -> list[str]:
    """As a terminal `width` cells wide shows it (without colours unless `color`)."""
    console = Console(
        file=io.StringIO(),
        width=width,
        force_terminal=True,
        color_system="standard" if color else None,
    )
    console.print(grid)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text.splitlines()


def sample() -> Grid:
    grid = Grid("nsscale down shop", ("kind", "name", "replicas", "status", "detail"))
    grid.add_row("deployment", "api", "3 → 0", Text("scaled", "green"), "")
    grid.add_row("statefulset", "db", "2 → 0", Text("LEFT CHANGED", "bold red"), MESSAGE)
    grid.add_row("deployment", "[bold]web", "1 → 0", Text("failed", "red"), "two\nlines")
    return grid


def test_a_wide_console_draws_one_line_per_row_in_a_box() -> None:
    lines = draw(sample(), 250)
    assert lines[0] == "nsscale down shop"
    assert lines[1].startswith("┏━━━━━━━━━━━━━┳")
    assert lines[1].endswith("┓")
    assert lines[2].split("┃")[1:-1] == [
        " kind        ",
        " name      ",
        " replicas ",
        " status       ",
        f" {'detail':{len(MESSAGE)}} ",
    ]
    assert lines[3].startswith("┡")
    assert lines[-1].startswith("└")
    api = [" deployment  ", " api       ", " 3 → 0    ", " scaled       "]
    assert lines[4].split("│")[1:5] == api
    assert lines[5].split("│")[5].strip() == MESSAGE
    # kubectl's text is shown as it is: no markup, and its own line breaks kept
    assert lines[6].split("│")[2] == " [bold]web "
    assert [line.split("│")[5].strip() for line in lines[6:8]] == ["two", "lines"]
    assert len({len(line) for line in lines[1:]}) == 1  # every line as wide as the box


def test_a_narrow_terminal_cuts_the_detail_column_with_an_ellipsis() -> None:
    assert draw(sample(), 80) == [
        "nsscale down shop",
        "┏━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━┓",
        "┃ kind        ┃ name      ┃ replicas ┃ status       ┃ detail                   ┃",
        "┡━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━┩",
        "│ deployment  │ api       │ 3 → 0    │ scaled       │                          │",
        "│ statefulset │ db        │ 2 → 0    │ LEFT CHANGED │ Error from server (Conf… │",
        "│ deployment  │ [bold]web │ 1 → 0    │ failed       │ two                      │",
        "│             │           │          │              │ lines                    │",
        "└─────────────┴───────────┴──────────┴──────────────┴──────────────────────────┘",
    ]


def test_a_simple_box_has_no_side_edges() -> None:
    grid = Grid("history", ("time (UTC)", "op", "by"), box.SIMPLE_HEAD)
    grid.add_row("2026-11-28 07:11:32", "down", "alice@bastion-1")
    lines = draw(grid, 80)
    assert lines[2] == "  time (UTC)            op     by               "
    assert lines[3] == " " + "─" * (len(lines[2]) - 2) + " "
    assert lines[4] == "  2026-11-28 07:11:32   down   alice@bastion-1  "


def test_each_cell_keeps_its_style() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="standard")
    console.print(sample())
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[32mscaled      \x1b[0m" in out  # as Rich's Table: the cell's padding too
    assert "\x1b[1;31mLEFT CHANGED\x1b[0m" in out


def test_a_cell_on_several_lines_is_as_wide_as_its_longest_line() -> None:
    grid = Grid("t", ("kind", "detail"))
    grid.add_row("deployment", "first line\nsecond")
    lines = draw(grid, 80)
    assert lines[2] == "┃ kind       ┃ detail     ┃"
    assert lines[4:6] == ["│ deployment │ first line │", "│            │ second     │"]


def test_a_long_name_is_cut_after_the_message_and_the_status_stays_whole() -> None:
    name = "payments-api-worker-canary-eu-west-1"
    grid = Grid("t", ("kind", "name", "replicas", "status", "detail"), cut=("detail", "name"))
    grid.add_row("deployment", name, "2 → 0", Text("LEFT CHANGED", "bold red"), MESSAGE)
    assert draw(grid, 60)[4] == "│ deployment │ payment… │ 2 → 0    │ LEFT CHANGED │ Error… │"
    assert draw(grid, 80)[4] == (
        "│ deployment │ payments-api-worker-canary-… │ 2 → 0    │ LEFT CHANGED │ Error… │"
    )


# Every table at pinned widths, with names long enough to fold at 40 and 60 columns.

NAMES = (
    "payments-api-worker-canary-eu-west-1",
    "checkout-frontend-blue-green",
    "db",
    "inventory-sync-cronjob-runner",
)
HEAVY_LEFT, HEAVY_RIGHT = "┏┃┡│└", "┓┃┩│┘"


def workloads(replicas: int = 0, original: int | None = 3) -> list[Workload]:
    """NAMES, deployments and statefulsets in turn; by default as `down` left them."""
    scaled_to = None if original is None else 0
    kinds = ("Deployment", "StatefulSet")
    return [
        Workload.from_manifest(workload(name, replicas, 1, kinds[i % 2], original, scaled_to))
        for i, name in enumerate(NAMES)
    ]


def down(*, failed: bool) -> RunResult:
    """`down shop`: the first two scaled, the third failed (then both rolled back), the last
    skipped; without `failed`, all but the last scaled."""
    ws = workloads(3, original=None)
    changes = tuple(Change(w, State(0, "3", "0")) for w in ws[:3])
    plan = Plan(NS, Operation.DOWN, changes, (Skip(workloads()[3], "already at 0"),))
    step = Step(0, 0, changes)
    if not failed:
        return RunResult(plan, Outcome(scaled=[Scaled(c, c.workload, step) for c in changes]))
    outcome = Outcome(
        scaled=[Scaled(c, c.workload, step) for c in changes[:2]],
        failed=[Failed(changes[2], Failure(MESSAGE, ErrorKind.CONFLICT), step)],
        rollback=[Restored(changes[0]), Restored(changes[1], Failure(MESSAGE, ErrorKind.OTHER))],
    )
    return RunResult(plan, outcome)


EVENTS = [
    {
        "time": f"2026-11-28T05:5{i}:00.123Z",
        "operation": op,
        "outcome": "success",
        "total_scaled": 3,
        "total_failed": 0,
        "total_skipped": 1,
        "kubectl_user": "system:serviceaccount:platform-tooling:nsscale-nightly",
        "host": "bastion-eu-west-1.internal.example.com",
    }
    for i, op in enumerate(("up", "down"))
]


def tables() -> dict[str, Grid]:
    rollback = rollback_table(down(failed=True))
    assert rollback is not None
    return {
        "status": status_table(NS, workloads()),
        "run": run_table(down(failed=True)),
        "rollback": rollback,
        "history": history_table(f"nsscale history {NS} (prod-eu)", EVENTS),
    }


def names_shown(lines: list[str]) -> str:
    """The name column (the second) of a boxed table, its body lines read top to bottom."""
    return "".join(line.split("│")[2].strip() for line in lines if line.startswith("│"))


@pytest.mark.parametrize("width", [40, 60, 80, 120])
@pytest.mark.parametrize("name", ["status", "run", "rollback"])
def test_a_boxed_table_fits_the_terminal_whole_one_line_a_row(name: str, width: int) -> None:
    """Whatever the width: both borders, one box, a row on one line, and a name either whole
    or its beginning and "…" (never broken over two lines)."""
    grid = tables()[name]
    lines = draw(grid, width)
    table = lines[1:]  # under the title
    assert all(cell_len(line) <= width for line in lines)
    assert all(line[0] in HEAVY_LEFT and line[-1] in HEAVY_RIGHT for line in table), lines
    assert len({cell_len(line) for line in table}) == 1  # one box, no line cropped
    assert len(table) == len(grid.rows) + 4
    shown = [line.split("│")[2].strip() for line in lines if line.startswith("│")]
    for whole, cut in zip(NAMES, shown, strict=False):
        assert cut == whole or (cut.endswith("…") and whole.startswith(cut[:-1])), lines


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_the_history_table_fits_the_console_whole(width: int) -> None:
    lines = draw(tables()["history"], width)
    rule = next(line for line in lines if "─" in line)
    assert all(cell_len(line) <= width for line in lines)
    # SIMPLE_HEAD has blank side edges: a cropped table would lose the rule's trailing blank
    assert rule.startswith(" ─"), "\n".join(lines)
    assert rule.endswith("─ "), "\n".join(lines)
    assert all(cell_len(line) == cell_len(rule) for line in lines[1:]), "\n".join(lines)


@pytest.mark.parametrize("name", ["status", "run", "rollback", "history", "empty", "sample"])
def test_a_fitting_table_is_drawn_by_the_grid_exactly_as_richs_table_draws_it(name: str) -> None:
    """Same characters, and colours segment for segment: nobody can tell which drew it."""
    grid = (tables() | {"empty": status_table(NS, []), "sample": sample()})[name]
    assert draw(grid, 250) == draw(grid.rich_table(), 250)
    assert draw(grid, 250, color=True) == draw(grid.rich_table(), 250, color=True)


@pytest.mark.parametrize("width", [40, 60, 120])
def test_the_grid_draws_every_table_itself(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """Never Rich's Table (0.6 ms a row), not even on a narrow terminal."""
    monkeypatch.setattr(Grid, "rich_table", None)
    assert draw(status_table(NS, workloads()), width)


# The closing line of a run


def up(*workloads: Workload) -> RunResult:
    """`up shop` over these workloads, planned as nsscale plans it: nothing to restore."""
    plan = make_plan(NS, Operation.UP, workloads)
    assert not plan.changes
    return RunResult(plan, Outcome())


def test_up_on_a_namespace_already_up_says_so() -> None:
    never_scaled = workloads(3, original=None)
    line = summary(up(*never_scaled))
    assert (line.plain, line.style) == ("shop: already up: nothing recorded to restore.", "green")
    dry = replace(up(*never_scaled), dry_run=True)
    assert summary(dry).plain == "shop: already up: nothing recorded to restore."


def test_up_that_restored_nothing_says_why_in_yellow() -> None:
    changed_since = workloads(1)[0]  # nsscale left it at 0, somebody scaled it to 1
    line = summary(up(changed_since, *workloads(3, original=None)))
    assert line.plain == "Nothing restored in shop: 5 workloads skipped (see the reasons above)."
    assert line.style == "yellow"
    line = summary(up(changed_since))
    assert line.plain == "Nothing restored in shop: 1 workload skipped (see the reasons above)."
    assert line.style == "yellow"


def test_up_in_a_namespace_without_workloads_says_so() -> None:
    line = summary(up())
    assert line.plain == "Nothing restored in shop: it has no Deployments or StatefulSets."
    assert line.style == "yellow"


def test_other_operations_keep_their_closing_line() -> None:
    idle = workloads(original=None)[0]
    nothing = RunResult(make_plan(NS, Operation.DOWN, [idle]), Outcome())
    assert (summary(nothing).plain, summary(nothing).style) == (
        "Nothing to do in shop, 1 skipped.",
        "green",
    )
    assert summary(down(failed=False)).plain == "shop: 3 scaled, 1 skipped."
    dry = replace(down(failed=False), dry_run=True)
    assert summary(dry).plain == "Dry run: 3 would be scaled, 1 skipped in shop; nothing changed."


def test_the_history_says_who_asked_the_server_for_a_run() -> None:
    served = {**EVENTS[0], "caller": "token:portal"}
    lines = draw(history_table("history", [served, EVENTS[1]]), 200)
    by = "system:serviceaccount:platform-tooling:nsscale-nightly@bastion-eu-west-1.internal"
    assert any(f"token:portal via {by}" in line for line in lines)
    assert sum("via" in line for line in lines) == 1


# Off a terminal (a pipe, a file, a CI log): kubectl's columns, through the command line's own
# console (nsscale.commands.output.console).


def shown(*renderables: RenderableType, width: int | None = None) -> list[str]:
    """What stdout shows: a terminal `width` cells wide (its styles taken out), or, without a
    width, a pipe in a 40-column environment."""
    file = io.StringIO()
    out = console(stderr=False, file=file, width=width or 40, terminal=width is not None)
    for renderable in renderables:
        out.print(renderable)
    return re.sub(r"\x1b\[[0-9;]*m", "", file.getvalue()).splitlines()


def test_piped_every_table_is_kubectls_columns_a_line_a_row() -> None:
    failed = down(failed=True)
    late = replace(
        down(failed=False), not_ready=(NotReady(workloads(1)[0], 3), NotReady(workloads(0)[2], 2))
    )
    not_ready = not_ready_table(late)
    assert not_ready is not None
    several = MultiResult((failed, late), Operation.DOWN, "run-1", False)
    lines = shown(*render_report(several), not_ready, tables()["status"], tables()["history"])
    by = "system:serviceaccount:platform-tooling:nsscale-nightly@bastion-eu-west-1.internal."
    assert lines == [
        "nsscale down shop",
        "KIND          NAME                                   REPLICAS   STATUS         DETAIL",
        "deployment    payments-api-worker-canary-eu-west-1   3 → 0      rolled back",
        f"statefulset   checkout-frontend-blue-green           3 → 0      LEFT CHANGED   {MESSAGE}",
        f"deployment    db                                     3 → 0      failed         {MESSAGE}",
        "statefulset   inventory-sync-cronjob-runner          0          skipped        "
        "already at 0",
        "rollback",
        "KIND          NAME                                   RESTORED TO   STATUS     DETAIL",
        "deployment    payments-api-worker-canary-eu-west-1   3             restored",
        f"statefulset   checkout-frontend-blue-green           3             FAILED     {MESSAGE}",
        "shop is PARTLY CHANGED: 1 workload(s) left changed: statefulset/checkout-frontend-blue-"
        "green (at 0). A person must look (their originals are kept in the annotation "
        "nsscale/original-replicas).",
        "nsscale down shop",
        "KIND          NAME                                   REPLICAS   STATUS    DETAIL",
        "deployment    payments-api-worker-canary-eu-west-1   3 → 0      scaled",
        "statefulset   checkout-frontend-blue-green           3 → 0      scaled",
        "deployment    db                                     3 → 0      scaled",
        "statefulset   inventory-sync-cronjob-runner          0          skipped   already at 0",
        "not ready",
        "KIND         NAME                                   READY   WANTED",
        "deployment   payments-api-worker-canary-eu-west-1   1       3",
        "deployment   db                                     0       2",
        "shop: 3 scaled, 1 skipped; 2 not ready within --wait-timeout (the change stays).",
        "nsscale down: 2 namespaces",
        "NAMESPACE   OUTCOME          SCALED   FAILED   SKIPPED   ROLLED BACK   EXIT",
        "shop        PARTLY CHANGED   2        1        1         1             3",
        "shop        not ready        3        0        1         0             4",
        "2 namespaces: 0 done, 1 not ready in time (shop), 1 PARTLY CHANGED (shop): a person "
        "must look.",
        "not ready",
        "KIND         NAME                                   READY   WANTED",
        "deployment   payments-api-worker-canary-eu-west-1   1       3",
        "deployment   db                                     0       2",
        "nsscale status shop",
        "KIND          NAME                                   REPLICAS   READY   ORIGINAL   "
        "SET BY NSSCALE",
        "deployment    payments-api-worker-canary-eu-west-1   0          0       3          0",
        "statefulset   checkout-frontend-blue-green           0          0       3          0",
        "deployment    db                                     0          0       3          0",
        "statefulset   inventory-sync-cronjob-runner          0          0       3          0",
        "nsscale history shop (prod-eu)",
        "TIME (UTC)            OP     OUTCOME   SCALED   FAILED   SKIPPED   BY",
        f"2026-11-28 05:50:00   up     success   3        0        1         {by}example.com",
        f"2026-11-28 05:51:00   down   success   3        0        1         {by}example.com",
    ]


def test_piped_a_cell_of_several_lines_is_one_line() -> None:
    assert shown(sample())[-1] == "deployment    [bold]web   1 → 0      failed         two lines"


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_on_a_terminal_the_history_keeps_each_run_on_one_line(width: int) -> None:
    lines = shown(tables()["history"], width=width)
    runs = [line for line in lines if line.startswith("  2")]
    assert len(runs) == 2
    assert all(cell_len(line) <= width for line in lines)
    day = {40: "2…", 60: "2026-…"}.get(width, "2026-11-28")  # cut, never split over two lines
    assert [line.split()[0] for line in runs] == [day, day], lines
