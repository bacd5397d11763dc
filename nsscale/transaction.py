"""The Transaction: apply a plan's changes step by step, undo the done steps when one fails.

A Step is one kubectl write covering a batch of changes (see writer.py); its undo is the batch of
inverse writes. When anything fails (a refused write, a kubectl timeout, output we cannot read, an
unexpected exception, Ctrl-C or SIGTERM), no new step starts and the changes already made are
undone in reverse order. Undo tries every change even after one fails, and never hides the error
that started it. Each undo is guarded like a write: a workload somebody changed since is reported,
never clobbered.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TypeVar

from nsscale.errors import ErrorKind, NsscaleError
from nsscale.plan import Change
from nsscale.workload import Workload
from nsscale.writer import Failure, Move, MoveResult, Writer

log = logging.getLogger("nsscale")

DEFAULT_BATCH_SIZE = 100


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: stop, roll back, report."""


@dataclass(frozen=True)
class Step:
    """One kubectl write over a batch of changes, and what became of each."""

    changes: tuple[Change, ...]
    results: tuple[MoveResult, ...] = ()

    def moves(self) -> list[Move]:
        return [Move(c.workload, c.before, c.after) for c in self.changes]


@dataclass(frozen=True)
class Scaled:
    change: Change
    workload: Workload  # as the cluster holds it after the change


@dataclass(frozen=True)
class Failed:
    change: Change
    failure: Failure


@dataclass(frozen=True)
class Restored:
    change: Change
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass
class Outcome:
    scaled: list[Scaled] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    # A step that died mid-write (timeout, Ctrl-C, unreadable output): it may or may not have
    # landed, so it is both reported as failed and undone (undo is guarded: a no-op if it didn't).
    uncertain: list[Failed] = field(default_factory=list)
    rollback: list[Restored] | None = None  # None: no rollback ran
    errors: list[str] = field(default_factory=list)
    interrupted: str | None = None  # "SIGINT" or "SIGTERM"

    @property
    def success(self) -> bool:
        return not (self.failed or self.uncertain or self.errors or self.interrupted)


@dataclass
class Transaction:
    writer: Writer
    namespace: str
    rollback: bool = True
    batch_size: int = DEFAULT_BATCH_SIZE

    def run(self, changes: Sequence[Change]) -> Outcome:
        outcome = Outcome()
        step = Step(())
        try:
            for batch in _chunks(changes, self.batch_size):
                if outcome.failed and self.rollback:
                    break
                step = Step(tuple(batch))
                step = Step(step.changes, tuple(self.writer.write(step.moves())))
                self._record(step, outcome)
                step = Step(())
        except KeyboardInterrupt as exc:
            outcome.interrupted = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            self._abort(step, outcome, f"interrupted by {outcome.interrupted}")
        except NsscaleError as err:
            self._abort(step, outcome, str(err))
        except Exception as exc:  # any failure at all must still roll back
            log.debug("unexpected error", exc_info=True)
            self._abort(step, outcome, f"unexpected error: {exc!r}")
        if self.rollback and not outcome.success and (outcome.scaled or outcome.uncertain):
            self._undo(outcome)
        return outcome

    def _record(self, step: Step, outcome: Outcome) -> None:
        for change, result in zip(step.changes, step.results, strict=True):
            if result.failure is None:
                assert result.workload is not None
                outcome.scaled.append(Scaled(change, result.workload))
            else:
                log.error("Failed to scale %s: %s", change.workload.ref, result.failure.message)
                outcome.failed.append(Failed(change, result.failure))

    def _abort(self, step: Step, outcome: Outcome, message: str) -> None:
        log.error("%s", message)
        outcome.errors.append(message)
        unknown = Failure(f"state unknown: {message}", ErrorKind.OTHER)
        outcome.uncertain.extend(Failed(change, unknown) for change in step.changes)

    def _undo(self, outcome: Outcome) -> None:
        # Reverse order of doing: the uncertain step came last, so it is undone first.
        done = [(f.change, f.change.workload) for f in reversed(outcome.uncertain)]
        done += [(s.change, s.workload) for s in reversed(outcome.scaled)]
        log.warning(
            "Failure detected, initiating rollback of %d successfully scaled resources", len(done)
        )
        log.info("Starting rollback of %d resources in namespace %s", len(done), self.namespace)
        restored: list[Restored] = []
        with _signals_deferred():
            for batch in _chunks(done, self.batch_size):
                moves = []
                for change, workload in batch:
                    log.info("Rolling back %s to %d replicas", workload.ref, change.from_replicas)
                    moves.append(Move(workload, change.after, change.before))
                for (change, workload), failure in zip(batch, self._try_write(moves), strict=True):
                    if failure is None:
                        log.info("Successfully rolled back %s", workload.ref)
                    else:
                        log.error("Failed to rollback %s: %s", workload.ref, failure.message)
                    restored.append(Restored(change, failure))
        log.info("Rollback completed: %d operations performed", len(restored))
        outcome.rollback = restored

    def _try_write(self, moves: list[Move]) -> list[Failure | None]:
        """Every undo is attempted: a batch that raises fails its own moves, not the rest."""
        try:
            return [r.failure for r in self.writer.write(moves)]
        except Exception as exc:  # includes NsscaleError; the rollback must go on
            kind = getattr(exc, "kind", ErrorKind.OTHER)
            return [Failure(str(exc) or repr(exc), kind) for _ in moves]


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), max(size, 1)):
        yield items[start : start + size]


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """While a rollback runs, Ctrl-C and SIGTERM are refused with a word instead of obeyed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def refuse(signum: int, frame: FrameType | None) -> None:
        log.warning(
            "%s received: a rollback is finishing and cannot be interrupted safely; "
            "a forced kill (SIGKILL) would leave the namespace partly changed",
            signal.Signals(signum).name,
        )

    previous = {s: signal.signal(s, refuse) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
