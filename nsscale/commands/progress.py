"""How a --wait shows itself: on a terminal, a live table of each namespace's ready workloads
and the time gone; elsewhere (a log, CI), a plain line on stderr every 10 s."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from nsscale.commands.tables import Grid
from nsscale.engine.waiting import Progress

PLAIN_EVERY_S = 10.0


class WaitDisplay:
    def __init__(
        self,
        console: Console,
        every_s: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.every_s = every_s
        self.clock = clock
        self._live: Live | None = None
        self._said_at: float | None = None

    def __enter__(self) -> WaitDisplay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()

    def update(self, progress: Progress) -> None:
        if self.console.is_terminal:
            if self._live is None:  # from the first poll on: the run's own lines come before
                self._live = Live(console=self.console, auto_refresh=False, transient=False)
                self._live.start()
            self._live.update(self._table(progress), refresh=True)
            return
        now = self.clock()
        done = progress.ready == progress.total
        if self._said_at is None or now - self._said_at >= self.every_s or done:
            self._said_at = now
            self.console.print(Text(_line(progress)))

    @staticmethod
    def _table(progress: Progress) -> Grid:
        table = Grid(f"waiting: {_times(progress)}", ("namespace", "ready"), cut=("namespace",))
        for namespace, (ready, total) in progress.counts.items():
            table.add_row(namespace, Text(f"{ready}/{total}", "green" if ready == total else ""))
        return table


def _line(progress: Progress) -> str:
    return f"waiting: {progress.ready}/{progress.total} workloads ready, {_times(progress)}"


def _times(progress: Progress) -> str:
    return f"{progress.elapsed_s:.0f}s of {progress.timeout_s:.0f}s"
