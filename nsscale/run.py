"""One run of an operation: discover, plan, pre-flight, mark the namespace, transact, unmark.

The flow of every `down`, `up`, `scale` and `recover`, free of any rendering: the CLI calls it
and renders (and audits) the RunResult it returns.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime

from nsscale.caller import Review, os_user
from nsscale.cluster import KubectlCluster
from nsscale.errors import ErrorKind, NsscaleError
from nsscale.interrupts import Interrupts
from nsscale.kubectl import Kubectl
from nsscale.lock import LockForbidden, LockHeld, Mark, RunLock, merged, snapshot_of
from nsscale.lookahead import Lookahead, resource_of, write_question
from nsscale.options import RunOptions
from nsscale.plan import Entry, Operation, Plan, make_plan, plan_recovery
from nsscale.result import RunResult
from nsscale.retry import RetryPolicy
from nsscale.transaction import Transaction
from nsscale.workload import Kind, State, Workload
from nsscale.writer import Writer

log = logging.getLogger("nsscale")


class PreflightFailed(NsscaleError):
    """The caller may not make a write the plan needs: nothing was changed."""


def run_operation(
    kubectl: Kubectl,
    namespace: str,
    operation: Operation,
    options: RunOptions,
    ahead: Lookahead,
    interrupts: Interrupts,
) -> RunResult:
    """One run, from the reads `ahead` started (the namespace's workloads, the caller's review).
    `interrupts` is the command's guard: raising until the run may change something."""
    retry = RetryPolicy(options.retries)
    cluster = KubectlCluster(kubectl, server_dry_run=options.server_dry_run)
    workloads = ahead.workloads()
    lock = RunLock(kubectl, namespace, retry)
    if operation is Operation.RECOVER:
        plan, marked = _recovery_plan(lock, namespace, workloads, options)
    else:
        plan = make_plan(
            namespace,
            operation,
            workloads,
            replicas=options.replicas,
            force=options.force,
            selection=options.selection,
        )
        marked = bool(plan.changes)
    for skip in plan.skips:
        if skip.warn:
            log.warning("%s: %s", skip.workload.ref, skip.reason)
    writes = bool(plan.changes) and not options.dry_run
    if writes:
        preflight(ahead.review(), namespace, {c.workload.kind for c in plan.changes})
        ahead.audit_ready()
    # From the mark on, a Ctrl-C, SIGTERM or SIGHUP is noted, never raised mid-call: it stops
    # the transaction before its next step (none done yet: nothing to undo) and the run still
    # rolls back, reports and clears its mark.
    interrupts.changes_ahead()
    held = None
    if marked and not (options.dry_run or options.server_dry_run):
        held = _mark(lock, plan, options)
    writer = Writer(
        cluster,
        namespace,
        dry_run=options.dry_run,
        server_dry_run=options.server_dry_run,
        retry=retry,
        settle_s=kubectl.config.timeout_s,
    )
    transaction = Transaction(
        writer,
        namespace,
        options.rollback and not options.server_dry_run,  # a dry run has nothing to undo
        options.batch_size,
        options.parallel,
        interrupts=interrupts,
    )
    with held.kept(on_lost=interrupts.halt) if held else nullcontext():
        outcome = transaction.run(plan.changes)
        with interrupts.refusing("the run is finishing"):
            result = RunResult(
                plan,
                outcome,
                dry_run=options.dry_run or options.server_dry_run,
                rollback_enabled=options.rollback,
                duration_s=time.monotonic() - ahead.started,
                run_id=options.run_id,
            )
            if held is not None:
                result = _unmark(held, workloads, result)
    return result


def preflight(review: Review, namespace: str, kinds: set[Kind]) -> None:
    """Every kind the plan writes must be allowed by the review, before any change."""
    needed = {resource_of(kind): write_question(kind) for kind in sorted(kinds)}
    unanswered = [r for r, q in needed.items() if q not in review.allowed]
    if unanswered:
        # The question itself failed: the writes are guarded anyway, so go on.
        log.warning(
            "could not check the permission to update %s: %s",
            ", ".join(unanswered),
            review.problem,
        )
    denied = [r for r, q in needed.items() if review.allowed.get(q) is False]
    if denied:
        raise PreflightFailed(
            f"not allowed to update {', '.join(denied)} in namespace {namespace}: nothing changed",
            "ask for the 'update' verb on them (kubectl auth can-i update deployments.apps "
            f"-n {namespace}), or use a context that has it",
        )


def _recovery_plan(
    lock: RunLock, namespace: str, workloads: list[Workload], options: RunOptions
) -> tuple[Plan, bool]:
    """The plan that undoes the marked run, and whether there is a mark to take over."""
    mark = lock.read()
    if mark is None:
        log.warning("no interrupted run is marked on %s: nothing to recover", namespace)
        return Plan(namespace, Operation.RECOVER, (), ()), False
    if not mark.stale(datetime.now(UTC)) and not options.force:
        raise LockHeld(
            f"a live nsscale run is working on {namespace}: {mark.describe()}",
            "wait for it to finish, or use --force if you know it is gone",
        )
    log.warning("recovering from an interrupted run: %s", mark.describe())
    return plan_recovery(namespace, mark.snapshot, workloads), True


def _mark(lock: RunLock, plan: Plan, options: RunOptions) -> RunLock | None:
    """Mark the namespace as being changed, in the cluster; None when not allowed to."""
    now = datetime.now(UTC)
    mark = Mark(
        holder=f"{os_user()}@{socket.gethostname()} pid {os.getpid()}",
        run_id=options.run_id,
        operation=plan.operation.value,
        acquired=now,
        renewed=now,
        duration_s=options.lease_s,
        snapshot=snapshot_of(plan.changes),
    )
    try:
        lock.acquire(mark, force=options.force, recovering=plan.operation is Operation.RECOVER)
    except LockForbidden as err:
        if options.require_lock:
            raise
        log.warning("%s; going on without it (--require-lock refuses instead)", err.message)
        return None
    return lock


def _unmark(lock: RunLock, workloads: list[Workload], result: RunResult) -> RunResult:
    """Clear the mark when nothing is left changed; else retire it, holding what is left, so
    that the next run is told and `nsscale recover` can undo it. The workloads an earlier run
    (whose mark this one took over) left changed, and still are, join the result."""
    earlier = lock.taken_over.snapshot if lock.taken_over else {}
    own_left = {w.ref for w, _ in result.left_changed}
    # After a success every workload this run planned for is as the user asked now: the
    # earlier run's change on it is superseded. After a failure only this run's changes left.
    planned = [c.workload for c in result.plan.changes] + [s.workload for s in result.plan.skips]
    standing = {w.ref for w in planned} if result.success else own_left
    now = _states_now(workloads, result)
    inherited = sorted(
        ref
        for ref, entry in earlier.items()
        if ref not in standing and (state := now.get(ref)) is not None and _left(entry, state)
    )
    by_ref = {w.ref: w for w in workloads}
    result = replace(result, inherited=tuple((by_ref[ref], now[ref].replicas) for ref in inherited))
    snapshot = merged(earlier, snapshot_of(result.plan.changes))
    left = {ref: snapshot[ref] for ref in own_left | set(inherited)}
    with _warned("could not clear the in-cluster mark"):
        if not left:
            try:
                lock.release()
                return result
            except NsscaleError as err:
                log.warning("could not delete the in-cluster mark (%s); retiring it instead", err)
        else:
            log.warning(
                "the namespace is left partly changed: its mark stays for `nsscale recover`"
            )
        lock.retire(left, f"exit {result.exit_code}")
    return result


def _left(entry: Entry, state: State) -> bool:
    return state != entry.before and state in entry.after


def _states_now(workloads: list[Workload], result: RunResult) -> dict[str, State]:
    """Each workload's state after the run: as verified at the end when it was, else as read
    at the start with this run's changes that stand."""
    final = result.outcome.final
    if final is not None:
        return {w.ref: w.state for w in final.values()}
    now = {w.ref: w.state for w in workloads}
    own_left = {w.ref for w, _ in result.left_changed}
    now.update(
        (c.workload.ref, c.after)
        for c in result.plan.changes
        if result.success or c.workload.ref in own_left
    )
    return now


@contextmanager
def _warned(what: str) -> Iterator[None]:
    """A failure here is a warning: the run is over, and its report must still be made."""
    try:
        yield
    except NsscaleError as err:
        kind = getattr(err, "kind", ErrorKind.OTHER)
        log.warning("%s (%s): %s", what, kind, err)
