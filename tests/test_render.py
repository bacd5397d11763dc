"""The Grid: tables drawn as Rich draws them, in one pass."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.text import Text

from nsscale.render import Grid

MESSAGE = (
    'Error from server (Conflict): Operation cannot be fulfilled on statefulsets.apps "db": '
    "the object has been modified; please apply your changes to the latest version"
)


def draw(grid: Grid, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None)
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


def test_a_narrow_console_folds_the_last_column_and_keeps_every_word() -> None:
    lines = draw(sample(), 80)
    assert max(len(line) for line in lines) <= 80
    db = [line for line in lines if "│" in line][1:-2]  # the db row, on several lines
    assert db[0].split("│")[2].strip() == "db"
    assert all(line.split("│")[2].strip() == "" for line in db[1:])
    assert " ".join(line.split("│")[5].strip() for line in db) == MESSAGE


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
    assert "\x1b[32mscaled\x1b[0m" in console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[1;31mLEFT CHANGED\x1b[0m" in console.file.getvalue()  # type: ignore[attr-defined]


def test_a_cell_on_several_lines_is_as_wide_as_its_longest_line() -> None:
    grid = Grid("t", ("kind", "detail"))
    grid.add_row("deployment", "first line\nsecond")
    lines = draw(grid, 80)
    assert lines[2] == "┃ kind       ┃ detail     ┃"
    assert lines[4:6] == ["│ deployment │ first line │", "│            │ second     │"]


def test_a_long_name_and_message_fold_within_the_console_and_lose_nothing() -> None:
    name = "payments-api-worker-canary-eu-west-1"
    grid = Grid("t", ("kind", "name", "replicas", "status", "detail"))
    grid.add_row("deployment", name, "2 → 0", Text("LEFT CHANGED", "bold red"), MESSAGE)
    lines = draw(grid, 80)
    assert max(len(line) for line in lines) == 80
    rows = [line.split("│") for line in lines[4:-1]]
    assert "".join(r[2].strip() for r in rows) == name
    assert " ".join(r[5].strip() for r in rows if r[5].strip()) == MESSAGE
    assert rows[0][4].strip() == "LEFT CHANGED"  # a short cell keeps its width
