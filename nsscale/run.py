"""One run of an operation: discover, plan, pre-flight, mark the namespace, transact, unmark.

The flow of every `down`, `up`, `scale` and `recover`, free of any rendering: the CLI calls it
and renders (and audits) the RunResult it returns.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import UTC, datetime

from nsscale.caller import Review, os_user
from nsscale.cluster import KubectlCluster
from nsscale.errors import ErrorKind, NsscaleError
from nsscale.kubectl import Kubectl
from nsscale.lock import DEFAULT_LEASE_S, LockForbidden, LockHeld, Mark, RunLock, snapshot_of
from nsscale.lookahead import Lookahead, resource_of, write_question
from nsscale.options import RunOptions
from nsscale.plan import Operation, Plan, make_plan, plan_recovery
from nsscale.result import RunResult
from nsscale.retry import RetryPolicy
from nsscale.transaction import Interrupts, Transaction
from nsscale.workload import Kind, Workload
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
) -> RunResult:
    """One run, from the reads `ahead` started (the namespace's workloads, the caller's review)."""
    retry = RetryPolicy(options.retries)
    cluster = KubectlCluster(kubectl, server_dry_run=options.server_dry_run)
    workloads = ahead.workloads()
    lock: RunLock | None = None
    if operation is Operation.RECOVER:
        # The interrupted run's mark stays until the recovery is complete: recover again after
        # an interrupted recovery finds the same snapshot.
        plan, lock = _recovery_plan(kubectl, namespace, workloads, options)
    else:
        plan = make_plan(
            namespace, operation, workloads, replicas=options.replicas, force=options.force
        )
    writes = bool(plan.changes) and not options.dry_run
    if writes:
        preflight(ahead.review(), namespace, {c.workload.kind for c in plan.changes})
    # From the mark on, a Ctrl-C or SIGTERM is noted, never raised mid-call: it stops the
    # transaction before its next step (none done yet: nothing to undo) and the run still
    # rolls back, reports and clears its mark.
    with Interrupts() as interrupts:
        if writes and not options.server_dry_run and operation is not Operation.RECOVER:
            lock = _mark(kubectl, plan, options)
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
            heartbeat=lock.renew if lock else None,
            interrupts=interrupts,
        )
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
            if lock is not None and not result.dry_run:
                _unmark(lock, result)
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
    kubectl: Kubectl, namespace: str, workloads: list[Workload], options: RunOptions
) -> tuple[Plan, RunLock | None]:
    lock = RunLock(kubectl, namespace)
    mark = lock.read()
    if mark is None:
        log.warning("no interrupted run is marked on %s: nothing to recover", namespace)
        return Plan(namespace, Operation.RECOVER, (), ()), None
    if not mark.stale(datetime.now(UTC)) and not options.force:
        raise LockHeld(
            f"a live nsscale run is working on {namespace}: {mark.describe()}",
            "wait for it to finish, or use --force if you know it is gone",
        )
    log.warning("recovering from an interrupted run: %s", mark.describe())
    lock.held = mark
    return plan_recovery(namespace, mark.snapshot, workloads), lock


def _mark(kubectl: Kubectl, plan: Plan, options: RunOptions) -> RunLock | None:
    """Mark the namespace as being changed, in the cluster; None when not allowed to."""
    lock = RunLock(kubectl, plan.namespace)
    now = datetime.now(UTC)
    mark = Mark(
        holder=f"{os_user()}@{socket.gethostname()} pid {os.getpid()}",
        run_id=options.run_id,
        operation=plan.operation.value,
        acquired=now,
        renewed=now,
        duration_s=DEFAULT_LEASE_S,
        snapshot=snapshot_of(plan.changes),
    )
    try:
        lock.acquire(mark, force=options.force)
    except LockForbidden as err:
        if options.require_lock:
            raise
        log.warning("%s; going on without it (--require-lock refuses instead)", err.message)
        return None
    return lock


def _unmark(lock: RunLock, result: RunResult) -> None:
    """Clear the mark, unless the namespace is left partly changed: then the next run is told,
    and `nsscale recover` can undo what is left from the snapshot."""
    if result.left_changed or (result.operation is Operation.RECOVER and not result.success):
        log.warning("the namespace is left partly changed: its mark stays for `nsscale recover`")
        try:
            lock.retire()  # this run is over: the next one is told to recover, not to wait
        except NsscaleError as err:
            kind = getattr(err, "kind", ErrorKind.OTHER)
            log.warning("could not mark the run as over in its mark (%s): %s", kind, err)
        return
    try:
        lock.release()
    except NsscaleError as err:
        kind = getattr(err, "kind", ErrorKind.OTHER)
        log.warning("could not clear the in-cluster mark (%s): %s", kind, err)
