"""The Transaction: apply a plan's changes step by step, undo the done steps when one fails.

A Step is one kubectl write covering a batch of changes (see writer.py); its undo is the batch of
inverse writes, in reverse order. Steps run in waves of up to `parallel` at once. When anything
fails (a refused write, a kubectl timeout, output we cannot read, an unexpected exception, Ctrl-C
or SIGTERM), no new wave starts, the steps in flight finish, and the changes made are undone in
reverse order: the last wave first, each of its steps reversed (a wave's steps ran side by side,
so their undos do too). Undo tries every change even after one fails, and never hides the error
that started it. Each undo is guarded like a write: a workload somebody changed since is reported,
never clobbered.

A run over several namespaces is one Transaction whose steps may span them. Each namespace is
its own unit by default: a failure stops that namespace's remaining changes and undoes its done
ones, and the others go on. `isolated=False` (--all-or-nothing) makes the whole run one unit. A
signal stops and undoes every namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import TypeVar

from nsscale.engine.interrupts import Interrupts, signal_name
from nsscale.engine.plan import Change, Plan, Skip
from nsscale.engine.writer import Failure, Move, MoveResult, Writer
from nsscale.errors import ErrorKind, NsscaleError
from nsscale.kube.objects import Workload, WorkloadKey

log = logging.getLogger("nsscale")

MIN_BATCH, MAX_BATCH = 25, 250


def auto_batch_size(changes: int, parallel: int) -> int:
    """Spread the changes over the parallel workers; few small calls cost more than they save."""
    return max(MIN_BATCH, min(MAX_BATCH, -(-changes // max(parallel, 1))))


@dataclass(frozen=True)
class Step:
    """One kubectl write over a batch of changes."""

    index: int
    wave: int
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Scaled:
    change: Change
    workload: Workload  # as the cluster holds it after the change
    step: Step


@dataclass(frozen=True)
class Failed:
    change: Change
    failure: Failure
    step: Step


@dataclass(frozen=True)
class Restored:
    change: Change
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class Passed:
    """A change found made by someone else when it was to be written: not this run's."""

    change: Change
    workload: Workload  # as the cluster holds it
    reason: str


@dataclass
class Outcome:
    scaled: list[Scaled] = field(default_factory=list)
    passed: list[Passed] = field(default_factory=list)  # skipped when written: not this run's
    failed: list[Failed] = field(default_factory=list)
    # A step that died mid-write (output we cannot read even on a re-read, an exception): it may
    # or may not have landed, so it is reported as failed and undone (the undo is guarded by
    # state: a no-op where the write never landed).
    uncertain: list[Failed] = field(default_factory=list)
    rollback: list[Restored] | None = None  # None: no rollback ran
    errors: list[str] = field(default_factory=list)
    interrupted: str | None = None  # "SIGINT", "SIGTERM" or "SIGHUP"
    # Namespaces where some write's outcome was read off the namespace, not off kubectl.
    judged_in: set[str] = field(default_factory=set)
    # The namespaces as read once more at the end (those in `read_back`), when anything failed
    # or was judged: the report says what this shows (None: not read, or the read failed).
    final: Mapping[WorkloadKey, Workload] | None = None
    read_back: set[str] = field(default_factory=set)
    rolled_back: set[str] = field(default_factory=set)  # namespaces whose undo ran
    # The namespaces an entry of `errors` concerns, by its index (absent: all of them).
    error_scope: dict[int, frozenset[str]] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not (self.failed or self.uncertain or self.errors or self.interrupted)

    @property
    def judged(self) -> bool:
        return bool(self.judged_in)

    def add_error(self, message: str, namespaces: Iterable[str] | None = None) -> None:
        """An error of the run; of some namespaces only, when given."""
        if namespaces is not None:
            self.error_scope[len(self.errors)] = frozenset(namespaces)
        self.errors.append(message)

    def failed_in(self, namespaces: Iterable[str]) -> set[str]:
        """Those of `namespaces` that failed: a change failed or uncertain there, or an error
        of theirs (an error of the whole run, such as a signal, fails every one)."""
        namespaces = set(namespaces)
        if self.interrupted or len(self.error_scope) < len(self.errors):
            return namespaces
        scoped = set().union(*self.error_scope.values())
        return namespaces & (scoped | {f.change.namespace for f in self.failed_all})

    def changes(self) -> list[Change]:
        """Every change the run made, tried, or may have made."""
        return [s.change for s in self.scaled] + [f.change for f in self.failed_all]

    @property
    def failed_all(self) -> list[Failed]:
        """Every change that failed or may have: the report's `failed_resources`."""
        return self.failed + self.uncertain

    def of(self, namespace: str) -> Outcome:
        """The part of the outcome that concerns one namespace."""

        def mine(change: Change) -> bool:
            return change.namespace == namespace

        final = None
        if self.final is not None and namespace in self.read_back:
            owned = {c.workload.key for c in self.changes() if mine(c)}
            final = {k: w for k, w in self.final.items() if k[0] == namespace or k in owned}
        rollback = None
        if self.rollback is not None and namespace in self.rolled_back:
            rollback = [r for r in self.rollback if mine(r.change)]
        errors = [
            error
            for i, error in enumerate(self.errors)
            if namespace in self.error_scope.get(i, frozenset({namespace}))
        ]
        return Outcome(
            scaled=[s for s in self.scaled if mine(s.change)],
            passed=[p for p in self.passed if mine(p.change)],
            failed=[f for f in self.failed if mine(f.change)],
            uncertain=[f for f in self.uncertain if mine(f.change)],
            rollback=rollback,
            errors=errors,
            interrupted=self.interrupted,
            judged_in=self.judged_in & {namespace},
            final=final,
            read_back=self.read_back & {namespace},
            rolled_back=self.rolled_back & {namespace},
        )


@dataclass
class Transaction:
    writer: Writer
    rollback: bool = True
    batch_size: int | None = None  # None: auto_batch_size
    parallel: int = 1  # steps in flight at once
    interrupts: Interrupts = field(default_factory=Interrupts)
    isolated: bool = True  # a failure undoes its own namespace only (else: every namespace)
    # Namespaces that stand or fall together even when isolated: one change covers them all
    # (a GitOps owner suspended for each).
    bonds: Sequence[frozenset[str]] = ()

    def run(self, changes: Sequence[Change]) -> Outcome:
        with self.interrupts:
            return self._run(changes)

    def _run(self, changes: Sequence[Change]) -> Outcome:
        outcome = Outcome()
        size = self.batch_size or auto_batch_size(len(changes), self.parallel)
        batches = list(_chunks(changes, size))
        width = max(self.parallel, 1)
        steps = [Step(i, i // width, tuple(batch)) for i, batch in enumerate(batches)]
        # Steps run in worker threads; a Ctrl-C reaches only the main thread, where it is noted
        # (see Interrupts): no new wave starts, and the steps in flight (each kubectl in its own
        # session) finish and are known.
        namespaces = list(dict.fromkeys(c.namespace for c in changes))
        with ThreadPoolExecutor(width, thread_name_prefix="nsscale-step") as pool:
            for wave in _chunks(steps, width):
                self._notice_stop(outcome)
                if self.interrupts.stop_reason:
                    break
                if self.rollback and not outcome.success:
                    if not self.isolated:
                        break
                    # the namespaces that failed make no more changes; the others go on
                    stopped = self._failed(outcome, namespaces)
                    wave = [s for step in wave if (s := _without(step, stopped)).changes]
                self._run_wave(pool, wave, outcome)
            with self.interrupts.refusing("the run is finishing"):
                self._notice_stop(outcome)  # one that came during the last wave
                failed = self._failed(outcome, namespaces, explain=True)
                if self.rollback and failed:
                    self._undo(pool, outcome, failed)
                if failed or outcome.judged_in:
                    looked = failed | outcome.judged_in
                    self._verify(outcome, [ns for ns in namespaces if ns in looked], changes)
        return outcome

    def _failed(
        self, outcome: Outcome, namespaces: Sequence[str], *, explain: bool = False
    ) -> set[str]:
        """The namespaces that failed, with those that stand or fall with them (every one
        under --all-or-nothing); `explain`: tell each of the latter why it is undone."""
        failed = outcome.failed_in(namespaces)
        units = [frozenset(namespaces)] if not self.isolated else self.bonds
        for unit in units:
            culprits, others = failed & unit, unit - failed
            if not (culprits and others):
                continue
            if explain:
                names = ", ".join(sorted(culprits))
                why = (
                    f"undone with the whole run (--all-or-nothing): {names} failed"
                    if not self.isolated
                    else f"undone with {names}, which failed: one GitOps owner is suspended "
                    "for both (--suspend-gitops)"
                )
                outcome.add_error(why, sorted(others))
            failed |= others
        return failed

    def _named(self, workload: Workload) -> str:
        """How the log names a workload: `kind/name`, as the seed's lines do, and
        `namespace/kind/name` when the run spans namespaces."""
        several = len(self.writer.namespaces) > 1 and not workload.kind.gitops
        return f"{workload.namespace}/{workload.ref}" if several else workload.ref

    def _notice_stop(self, outcome: Outcome) -> None:
        reason = self.interrupts.stop_reason
        if reason and reason not in outcome.errors:
            outcome.interrupted = self.interrupts.received
            outcome.add_error(reason)  # every namespace stops

    def _run_wave(self, pool: ThreadPoolExecutor, wave: Sequence[Step], outcome: Outcome) -> None:
        futures = {pool.submit(self.writer.write, _moves(step)): step for step in wave}
        for future in as_completed(futures):
            self._collect(future, futures[future], outcome)

    def _collect(self, future: Future[list[MoveResult]], step: Step, outcome: Outcome) -> None:
        try:
            results = future.result()
        except KeyboardInterrupt as exc:  # raised inside the step itself
            outcome.interrupted = signal_name(exc)
            self._abort(step, outcome, f"interrupted by {outcome.interrupted}")
        except NsscaleError as err:
            self._abort(step, outcome, str(err))
        except Exception as exc:  # any failure at all must still roll back
            log.debug("unexpected error", exc_info=exc)
            self._abort(step, outcome, f"unexpected error: {exc!r}")
        else:
            for change, result in zip(step.changes, results, strict=True):
                if result.judged:
                    outcome.judged_in.add(change.namespace)
                if result.skipped is not None:
                    assert result.workload is not None
                    log.info("Skipped %s: %s", self._named(change.workload), result.skipped)
                    outcome.passed.append(Passed(change, result.workload, result.skipped))
                elif result.failure is None:
                    assert result.workload is not None
                    outcome.scaled.append(Scaled(change, result.workload, step))
                else:
                    log.error(
                        "Failed to scale %s: %s",
                        self._named(change.workload),
                        result.failure.message,
                    )
                    outcome.failed.append(Failed(change, result.failure, step))

    def _abort(self, step: Step, outcome: Outcome, message: str) -> None:
        log.error("%s", message)
        outcome.add_error(message, {c.namespace for c in step.changes})
        unknown = Failure(f"state unknown: {message}", ErrorKind.OTHER)
        outcome.uncertain.extend(Failed(change, unknown, step) for change in step.changes)

    def _undo(self, pool: ThreadPoolExecutor, outcome: Outcome, namespaces: set[str]) -> None:
        """Undo the done (and maybe done) changes of the namespaces, last wave first."""
        steps: dict[int, Step] = {}
        done: dict[int, list[tuple[Change, Workload]]] = {}
        for change, workload, step in [(s.change, s.workload, s.step) for s in outcome.scaled] + [
            (f.change, f.change.workload, f.step) for f in outcome.uncertain
        ]:
            if change.namespace in namespaces:
                steps[step.index] = step
                done.setdefault(step.index, []).append((change, workload))
        if not done:
            return
        log.warning(
            "Failure detected, initiating rollback of %d successfully scaled resources",
            sum(len(entries) for entries in done.values()),
        )
        for namespace in sorted({c.namespace for e in done.values() for c, _ in e}):
            count = sum(c.namespace == namespace for e in done.values() for c, _ in e)
            log.info("Starting rollback of %d resources in namespace %s", count, namespace)
            outcome.rolled_back.add(namespace)
        restored: list[Restored] = []
        with self.interrupts.refusing("a rollback is finishing"):
            for wave in sorted({step.wave for step in steps.values()}, reverse=True):
                # the wave's steps side by side, each undoing its changes in reverse order
                batches = [
                    _reversed_as_written(steps[i], done[i])
                    for i in sorted(done, reverse=True)
                    if steps[i].wave == wave
                ]
                for batch in batches:
                    for change, workload in batch:
                        log.info(
                            "Rolling back %s to %d replicas",
                            self._named(workload),
                            change.from_replicas,
                        )
                results = pool.map(self._try_undo, batches)
                for batch, failures in zip(batches, results, strict=True):
                    for (change, workload), failure in zip(batch, failures, strict=True):
                        if failure is None:
                            log.info("Successfully rolled back %s", self._named(workload))
                        else:
                            log.error(
                                "Failed to rollback %s: %s", self._named(workload), failure.message
                            )
                        restored.append(Restored(change, failure))
            log.info("Rollback completed: %d operations performed", len(restored))
            outcome.rollback = restored

    def _verify(
        self, outcome: Outcome, namespaces: Sequence[str], changes: Sequence[Change]
    ) -> None:
        """Read the namespaces once more after a failure there, or after any outcome there was
        judged, so that the report says what the cluster shows: an undo reported done must show
        the original state, and one reported failed that landed after all is done. The objects
        their changes moved elsewhere (GitOps owners) are read with them."""
        apart = [c.workload.namespace for c in changes if c.namespace in namespaces]
        try:
            final = {w.key: w for w in self.writer.read(list(dict.fromkeys([*namespaces, *apart])))}
        except NsscaleError as err:
            log.error("could not verify the outcome: %s", err)
            if outcome.rollback is not None:
                failure = Failure(f"rollback not verified: {err}", ErrorKind.OTHER)
                outcome.rollback = [
                    Restored(r.change, failure) if r.ok else r for r in outcome.rollback
                ]
            return
        outcome.final = final
        outcome.read_back = set(namespaces)
        if outcome.rollback is None:
            return
        checked = []
        for r in outcome.rollback:
            now = final.get(r.change.workload.key)
            held = now is not None and now.state == r.change.before
            if r.ok and not held:
                seen = "gone" if now is None else f"replicas now {now.replicas}"
                log.error("Rollback of %s did not hold: %s", self._named(r.change.workload), seen)
                r = Restored(r.change, Failure(f"verify after rollback: {seen}", ErrorKind.OTHER))
            elif not r.ok and held:
                log.warning("Rollback of %s landed after all", self._named(r.change.workload))
                r = Restored(r.change)
            checked.append(r)
        outcome.rollback = checked

    def _try_undo(self, batch: Sequence[tuple[Change, Workload]]) -> list[Failure | None]:
        """Every undo is attempted: a batch that raises fails its own moves, not the rest."""
        moves = [Move(workload, change.after, change.before) for change, workload in batch]
        try:
            return [r.failure for r in self.writer.write(moves)]
        except Exception as exc:  # includes NsscaleError; the rollback must go on
            kind = getattr(exc, "kind", ErrorKind.OTHER)
            return [Failure(str(exc) or repr(exc), kind) for _ in moves]


def as_found(plan: Plan, outcome: Outcome) -> Plan:
    """The plan as it turned out: a change someone else made before this run's write is a
    skip (with why), never this run's change."""
    if not outcome.passed:
        return plan
    passed = {p.change.workload.key for p in outcome.passed}
    return replace(
        plan,
        changes=tuple(c for c in plan.changes if c.workload.key not in passed),
        skips=(*plan.skips, *(Skip(p.workload, p.reason) for p in outcome.passed)),
    )


def _reversed_as_written(
    step: Step, entries: list[tuple[Change, Workload]]
) -> list[tuple[Change, Workload]]:
    order = {c.workload.key: i for i, c in enumerate(step.changes)}
    return sorted(entries, key=lambda e: order[e[0].workload.key], reverse=True)


def _without(step: Step, namespaces: set[str]) -> Step:
    """The step without the changes of the namespaces."""
    if not namespaces:
        return step
    kept = tuple(c for c in step.changes if c.namespace not in namespaces)
    return replace(step, changes=kept)


def _moves(step: Step) -> list[Move]:
    return [Move(c.workload, c.before, c.after) for c in step.changes]


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), max(size, 1)):
        yield items[start : start + size]
