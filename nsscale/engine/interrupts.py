"""Signals during a command: Ctrl-C, SIGTERM (CI cancelling a job, systemd stopping cron) and
SIGHUP (a dropped SSH session) all stop a run the same way, and never cut it short.

Light to import: the command line installs it before the rest of nsscale is loaded.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

log = logging.getLogger("nsscale")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: stop, roll back, report."""


class HungUp(KeyboardInterrupt):
    """SIGHUP (a dropped SSH session), handled like SIGTERM."""


_RAISED = {"SIGINT": KeyboardInterrupt, "SIGTERM": Terminated, "SIGHUP": HungUp}
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def signal_name(exc: KeyboardInterrupt) -> str:
    """The signal a KeyboardInterrupt stands for."""
    return next(n for n, cls in reversed(_RAISED.items()) if isinstance(exc, cls))


class Interrupts:
    """Ctrl-C, SIGTERM and SIGHUP during a command: raised before it may change anything,
    noted (never raised) once it may.

    Python runs a signal handler in the main thread between any two bytecodes, so a handler that
    raises (KeyboardInterrupt) can cut a run anywhere: between two steps, before or during the
    rollback and its verification, while the in-cluster mark is written or cleared; then nothing
    is undone, the report is lost and the mark stays. So one Interrupts guards a command from its
    start to its report: `raising` while nothing can have changed (a signal then ends the command
    at once), noting from just before the first change on (`changes_ahead`: the first signal is
    only noted in `received`; the transaction starts no new step and rolls back). A signal
    while something must finish (`refusing`), or after the first, is refused with a word.
    `halt` stops the run the same way for a reason that is not a signal (its in-cluster mark
    was taken over).
    Re-entrant; outside the main thread (where no signal is ever delivered) it installs nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, *, raising: bool = False, handlers: bool = True) -> None:
        self.received: str | None = None  # "SIGINT", "SIGTERM" or "SIGHUP"
        self.halted: str | None = None  # why the run must stop, when not a signal
        self.raising = raising
        self.handlers = handlers  # False: never touch the process's signal handlers (a library)
        self._busy: str | None = None
        self._depth = 0
        self._previous: dict[signal.Signals, _Handler] = {}

    def __enter__(self) -> Interrupts:
        main = threading.current_thread() is threading.main_thread()
        if self._depth == 0 and self.handlers and main:
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        self._depth += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            for sig, handler in self._previous.items():
                if handler is not None:
                    signal.signal(sig, handler)
            self._previous = {}

    def changes_ahead(self) -> None:
        """From here on the command may change the namespace: signals are noted, not raised,
        to the end of the command (its report must not be cut short either)."""
        self.raising = False

    @contextmanager
    def refusing(self, what: str) -> Iterator[None]:
        """While `what` runs, a signal is refused instead of noted. Read `received` inside:
        a signal that came before is seen there, one that comes after is refused."""
        previous, self._busy = self._busy, what
        try:
            yield
        finally:
            self._busy = previous

    def halt(self, reason: str) -> None:
        """Stop the run as a failure (from any thread): no new step, roll back."""
        if self.halted is None:
            log.error("%s: stopping the run", reason)
            self.halted = reason

    @property
    def stop_reason(self) -> str | None:
        if self.received:
            return f"interrupted by {self.received}"
        return self.halted

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.raising and self.received is None:
            self.received = name
            raise _RAISED.get(name, KeyboardInterrupt)()
        if self.received is None and self._busy is None:
            self.received = name
            log.error("interrupted by %s: finishing the steps in flight", name)
            return
        log.warning(
            "%s received: %s and cannot be interrupted safely; "
            "a forced kill (SIGKILL) would leave the namespace partly changed",
            name,
            self._busy or "the steps in flight are finishing",
        )
