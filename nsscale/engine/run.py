"""One run of an operation: choose the namespaces, plan, pre-flight, mark them, transact, unmark.

The flow of every `down`, `up`, `scale` and `recover`, free of any rendering: the CLI calls it
and renders (and audits) the RunResult it returns.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from nsscale.engine.auditing import Audit
from nsscale.engine.events import record_events
from nsscale.engine.interrupts import Interrupts, signal_name
from nsscale.engine.lastrun import write_last_run
from nsscale.engine.lock import Mark, RunLock, merged, snapshot_of
from nsscale.engine.options import RunOptions
from nsscale.engine.plan import (
    Entry,
    Operation,
    Plan,
    Snapshot,
    make_plan,
    plan_recovery,
    unmatched_excludes,
)
from nsscale.engine.reads import Lookahead, write_question
from nsscale.engine.result import RunResult, failed_before_start
from nsscale.engine.rivals.gitops import owned, owner_keys, read_owners, warn_of_gitops, with_owners
from nsscale.engine.rivals.hpa import autoscaled, warn_of_autoscalers, with_autoscalers
from nsscale.engine.rivals.keda import with_scaledobjects
from nsscale.engine.waiting import Progress, wait_ready
from nsscale.engine.writer import Writer
from nsscale.errors import (
    ErrorKind,
    LockForbidden,
    LockHeld,
    NsscaleError,
    PreflightFailed,
    UsageError,
)
from nsscale.kube.cluster import KubectlCluster, annotate_namespaces, read_workloads
from nsscale.kube.objects import PAUSE_UNTIL, WORKLOAD_KINDS, Kind, State, Workload
from nsscale.kube.retry import RetryPolicy
from nsscale.kube.review import Review, os_user
from nsscale.transaction import Transaction, as_found

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")


@dataclass(frozen=True)
class Executed:
    """What a command did: a result per namespace, and, when the run changed nothing because
    it was refused or interrupted before its first change, why (for the caller to say)."""

    results: list[RunResult]
    refusal: NsscaleError | None = None
    interrupted: str | None = None  # the signal that came before the first change


def execute(
    kubectl: Kubectl,
    operation: Operation,
    options: RunOptions,
    ahead: Lookahead,
    auditor: Audit,
    interrupts: Interrupts,
    *,
    on_wait: Callable[[Progress], None] = lambda progress: None,
    check_excludes: bool = True,
) -> Executed:
    """A whole run of `down`, `up`, `scale` or `recover`, as every interface runs it (the
    command line, the Python API), from the reads `ahead` started (`Lookahead.for_run`): the
    run, --wait, the audit record. Raises UsageError for bad input found before anything was
    attempted (not a run to record); any other refusal, and a signal before the first change,
    is a run that changed nothing, and is recorded."""
    started_at, dry_run = auditor.now(), options.dry_run or options.server_dry_run
    named = ahead.named

    def refused(message: str, interrupted: str | None = None) -> list[RunResult]:
        names: Sequence[str] = named
        with suppress(NsscaleError):
            names = ahead.namespaces()
        return [
            failed_before_start(ns, operation, message, dry_run, options.run_id, interrupted)
            for ns in names
        ]

    def start(namespaces: Sequence[str]) -> None:
        review, cluster = ahead.review(), ahead.cluster()
        auditor.started(options.run_id, operation, namespaces, review, cluster, started_at)

    executed: Executed
    try:
        executed = Executed(run_operation(kubectl, operation, options, ahead, interrupts, start))
    except UsageError:
        raise
    except NsscaleError as err:  # refused before any change: still a run, recorded
        interrupts.changes_ahead()
        executed = Executed(refused(str(err)), refusal=err)
    except KeyboardInterrupt as exc:
        ahead.cancel()  # nothing changed: nothing to wait for
        interrupts.changes_ahead()
        name = signal_name(exc)
        executed = Executed(refused(f"interrupted by {name}", name), interrupted=name)
    results = executed.results
    if check_excludes and executed.refusal is None and executed.interrupted is None:
        plans = [r.plan for r in results]
        seen = [c.workload for p in plans for c in p.changes] + [
            s.workload for p in plans for s in p.skips
        ]
        for warning in unmatched_excludes(options.selection, seen):
            log.warning("%s", warning)
    if options.wait:
        results = wait_for(kubectl, results, options, interrupts, on_wait)
    if options.events and not dry_run:
        record_events(kubectl, results)
    if options.hold_s is not None and not dry_run:
        hold(kubectl, [r.namespace for r in results if r.success], options.hold_s)
    # The run is over: a signal now must not cut its record short.
    with interrupts.refusing("the result is being reported"):
        if not dry_run:
            results = auditor.record(results, ahead.review(), ahead.cluster(), started_at)
            write_last_run(kubectl, results, auditor.by(ahead.review()))
    return replace(executed, results=results)


def run_operation(
    kubectl: Kubectl,
    operation: Operation,
    options: RunOptions,
    ahead: Lookahead,
    interrupts: Interrupts,
    start: Callable[[Sequence[str]], None] = lambda namespaces: None,
) -> list[RunResult]:
    """One run over the namespaces `ahead` chose, from the reads it started (their workloads,
    the caller's review): a result per namespace, in that order. `interrupts` is the command's
    guard: raising until the run may change something. `start` is told the namespaces it will
    write just before its first write (the audit's start record; it may refuse the run).

    Each namespace is its own transaction with its own mark: one that cannot start (not
    allowed, held by another run) fails alone, and a failure in one undoes only its own
    changes. With one namespace, or `all_or_nothing`, a refusal stops the whole run before any
    change (it is raised) and a failure anywhere undoes every change."""
    retry = RetryPolicy(options.retries)
    cluster = KubectlCluster(kubectl, server_dry_run=options.server_dry_run)
    workloads = ahead.workloads()
    lock = RunLock(kubectl, retry)
    plans: dict[str, Plan] = {}
    marked: list[str] = []
    scaledobjects = ahead.scaledobjects()
    autoscalers = ahead.autoscalers() if options.autoscalers else {}
    for namespace, found in workloads.items():
        if operation is Operation.RECOVER:
            everything = [*found, *scaledobjects[namespace], *autoscaled(autoscalers, namespace)]
            plan, mark = _recovery_plan(kubectl, lock, namespace, everything, options)
        else:
            plan = make_plan(
                namespace,
                operation,
                found,
                replicas=options.replicas,
                force=options.force,
                selection=options.selection,
                respect=options.respect.get(namespace),
            )
            plan = with_scaledobjects(plan, scaledobjects[namespace], options.selection)
            plan = with_autoscalers(plan, autoscalers)
            mark = bool(plan.changes)
        plans[namespace] = plan
        marked += [namespace] if mark else []
    plans, bonds = _with_gitops(kubectl, operation, plans, options)
    marked += [ns for ns, plan in plans.items() if plan.changes and ns not in marked]
    for namespace, plan in plans.items():
        where = f"{namespace}/" if len(plans) > 1 else ""
        for skip in plan.skips:
            if skip.warn:
                log.warning("%s%s: %s", where, skip.workload.ref, skip.reason)
    changing = [c.workload for plan in plans.values() for c in plan.changes]
    if operation in (Operation.DOWN, Operation.SCALE) and not options.suspend_gitops:
        warn_of_gitops(changing)
    if operation is Operation.SCALE and options.replicas:
        warn_of_autoscalers(changing, ahead.autoscalers(), options.replicas)
    if options.authorize is not None:
        options.authorize(plans)
    one_unit = options.all_or_nothing or len(plans) == 1
    refused: dict[str, NsscaleError] = {}
    if not options.dry_run and any(plan.changes for plan in plans.values()):
        review = ahead.review()
        for namespace, plan in plans.items():
            try:
                # a GitOps owner lives elsewhere, and its write is guarded all the same
                kinds = {c.workload.kind for c in plan.changes if not c.workload.kind.gitops}
                preflight(review, namespace, kinds)
            except PreflightFailed as err:
                refused[namespace] = err
        _refuse(refused, one_unit)
        ahead.audit_ready()
    if not (options.dry_run or options.server_dry_run):  # nothing to mark: still not another's
        idle = [ns for ns in plans if ns not in marked and ns not in refused]
        held_elsewhere = lock.live_elsewhere(idle) if idle else {}
        _refuse(held_elsewhere, one_unit)
        refused |= held_elsewhere
    writing = [ns for ns in plans if ns not in refused and plans[ns].changes]
    if writing and not (options.dry_run or options.server_dry_run):
        start(writing)
    # From the marks on, a Ctrl-C, SIGTERM or SIGHUP is noted, never raised mid-call: it stops
    # the transaction before its next step (none done yet: nothing to undo) and the run still
    # rolls back, reports and clears its marks.
    interrupts.changes_ahead()
    if marked and not (options.dry_run or options.server_dry_run):
        held_elsewhere = _mark(lock, {ns: plans[ns] for ns in marked if ns not in refused}, options)
        if held_elsewhere and one_unit:
            _release_quietly(lock)
        _refuse(held_elsewhere, one_unit)
        refused |= held_elsewhere
    refused |= _refused_with(refused, bonds)
    active = tuple(ns for ns in plans if ns not in refused)
    writer = Writer(
        cluster,
        active,
        dry_run=options.dry_run,
        server_dry_run=options.server_dry_run,
        retry=retry,
        settle_s=kubectl.config.timeout_s,
        kinds=_kinds_moved(plans.values()),
    )
    transaction = Transaction(
        writer,
        options.rollback and not options.server_dry_run,  # a dry run has nothing to undo
        options.batch_size,
        options.parallel,
        interrupts=interrupts,
        isolated=not options.all_or_nothing,
        bonds=bonds,
    )
    dry_run = options.dry_run or options.server_dry_run
    with lock.kept(on_lost=interrupts.halt) if lock.held else nullcontext():
        outcome = transaction.run([c for ns in active for c in plans[ns].changes])
        with interrupts.refusing("the run is finishing"):
            results = [
                RunResult(
                    as_found(plans[ns], outcome.of(ns)),
                    outcome.of(ns),
                    dry_run=dry_run,
                    rollback_enabled=options.rollback,
                    duration_s=time.monotonic() - ahead.started,
                    run_id=options.run_id,
                )
                if ns not in refused
                else failed_before_start(ns, operation, str(refused[ns]), dry_run, options.run_id)
                for ns in plans
            ]
            if lock.held:  # what a run leaves changed may be an HPA's floor too
                every = {ns: [*ws, *autoscaled(autoscalers, ns)] for ns, ws in workloads.items()}
                results = _unmark(lock, every, results)
    return results


def wait_for(
    kubectl: Kubectl,
    results: list[RunResult],
    options: RunOptions,
    interrupts: Interrupts,
    on_poll: Callable[[Progress], None],
) -> list[RunResult]:
    """--wait: after the run, until every workload it changed is ready at its target, or
    --wait-timeout has passed (those not ready are listed, exit 4), or a signal stops the
    wait (its exit code). Nothing is undone either way: the change was made."""
    wanted = [
        (s.workload, s.change.to_replicas)
        for r in results
        if r.success and not r.dry_run
        for s in r.outcome.scaled
        if s.workload.kind.scales  # a CronJob has no pods to wait for
    ]
    if not wanted:
        return results
    log.info(
        "waiting up to %gs for %d workload(s) to be ready", options.wait_timeout_s, len(wanted)
    )
    cluster, retry = KubectlCluster(kubectl), RetryPolicy(options.retries)
    kinds = tuple(dict.fromkeys(w.kind for w, _ in wanted))
    waited = wait_ready(
        lambda namespaces: read_workloads(cluster, namespaces, retry, kinds=kinds),
        wanted,
        options.wait_timeout_s,
        on_poll,
        lambda: interrupts.stop_reason,
    )
    stopped = interrupts.received if waited.stopped else None
    waited_in = {w.namespace for w, _ in wanted}
    return [
        replace(
            r,
            not_ready=tuple(n for n in waited.not_ready if n.workload.namespace == r.namespace),
            wait_stopped=stopped if r.namespace in waited_in else None,
        )
        for r in results
    ]


def hold(kubectl: Kubectl, namespaces: Sequence[str], seconds: float) -> None:
    """`--hold`: annotate the namespaces `nsscale/pause-until` (now + seconds), so that
    `reconcile` leaves them as this run left them until then; one kubectl call. Its failure is
    a warning: the run itself is done."""
    if not namespaces:
        return
    until = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        annotate_namespaces(kubectl, namespaces, PAUSE_UNTIL, until)
    except NsscaleError as err:
        log.warning("could not hold %s until %s: %s", ", ".join(namespaces), until, err)
        return
    log.info("reconcile leaves %s alone until %s", ", ".join(namespaces), until)


def _kinds_moved(plans: Iterable[Plan]) -> tuple[Kind, ...]:
    """The kinds a run's writes are judged and verified by reading: the workloads', and
    CronJobs', KEDA's ScaledObjects' or GitOps owners' when it moves some (the others may not
    be readable, or even installed)."""
    moved = {c.workload.kind for plan in plans for c in plan.changes}
    return (*WORKLOAD_KINDS, *(k for k in Kind if k in moved and k not in WORKLOAD_KINDS))


def _with_gitops(
    kubectl: Kubectl, operation: Operation, plans: dict[str, Plan], options: RunOptions
) -> tuple[dict[str, Plan], list[frozenset[str]]]:
    """`--suspend-gitops` (down, scale): the plans with each GitOps owner of the workloads they
    change suspended first; `up`: with each owner nsscale suspended for their namespaces resumed
    last (or kept suspended for the others). The owners are read only when a workload names
    one. Also the groups of namespaces one owner's change covers."""
    resuming = operation is Operation.UP
    if not (resuming or (options.suspend_gitops and operation is not Operation.RECOVER)):
        return plans, []
    workloads = [
        w
        for plan in plans.values()
        for w in [c.workload for c in plan.changes]
        + ([s.workload for s in plan.skips] if resuming else [])
    ]
    owners = owned(workloads)
    if not owners:
        return plans, []
    keys = [owner.key(options.argocd_namespace) for owner in owners]
    found = read_owners(kubectl, keys, required=not resuming)
    return with_owners(plans, found, options.argocd_namespace)


def _refused_with(
    refused: Mapping[str, NsscaleError], bonds: Sequence[frozenset[str]]
) -> dict[str, NsscaleError]:
    """The namespaces that cannot start because a namespace they stand or fall with cannot:
    one GitOps owner's suspension covers them all, and is written with the first of them."""
    more: dict[str, NsscaleError] = {}
    for bond in bonds:
        culprits = sorted(bond & refused.keys())
        for namespace in sorted(bond - refused.keys()) if culprits else ():
            more[namespace] = NsscaleError(
                f"not started: {', '.join(culprits)} could not start, and one GitOps owner is "
                "suspended for both (--suspend-gitops); nothing changed"
            )
            log.error("%s: %s", namespace, more[namespace])
    return more


def _refuse(refused: Mapping[str, NsscaleError], one_unit: bool) -> None:
    """Namespaces that cannot start: the whole run stops when it is one unit (nothing has
    changed); else each fails alone, said here."""
    if not refused:
        return
    if one_unit:
        raise next(iter(refused.values()))
    for namespace, err in refused.items():
        log.error("%s: %s%s", namespace, err, f" ({err.hint})" if err.hint else "")


def _release_quietly(lock: RunLock) -> None:
    with _warned("could not clear the in-cluster mark"):
        for namespace, err in lock.release(list(lock.held)).items():
            log.warning("could not delete the in-cluster mark on %s: %s", namespace, err)


def preflight(review: Review, namespace: str, kinds: set[Kind]) -> None:
    """Every kind the plan writes must be allowed by the review, before any change."""
    needed = {kind.resource: write_question(kind, namespace) for kind in sorted(kinds)}
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
    kubectl: Kubectl,
    lock: RunLock,
    namespace: str,
    workloads: list[Workload],
    options: RunOptions,
) -> tuple[Plan, bool]:
    """The plan that undoes the marked run, and whether there is a mark to take over."""
    mark = lock.read([namespace])[namespace]
    if mark is None:
        log.warning("no interrupted run is marked on %s: nothing to recover", namespace)
        return Plan(namespace, Operation.RECOVER, (), ()), False
    if not mark.stale(datetime.now(UTC)) and not options.force:
        raise LockHeld(
            f"a live nsscale run is working on {namespace}: {mark.describe()}",
            "wait for it to finish, or use --force if you know it is gone",
        )
    log.warning("recovering from an interrupted run: %s", mark.describe())
    owners = read_owners(kubectl, owner_keys(mark.snapshot), required=True)  # GitOps's, elsewhere
    return plan_recovery(namespace, mark.snapshot, [*workloads, *owners.values()]), True


def _mark(lock: RunLock, plans: Mapping[str, Plan], options: RunOptions) -> dict[str, NsscaleError]:
    """Mark the namespaces as being changed, in the cluster; the namespaces refused, with why.
    A namespace whose mark the caller may not write goes on without it (unless
    --require-lock)."""
    if not plans:
        return {}
    now = datetime.now(UTC)
    holder = options.holder or f"{os_user()}@{socket.gethostname()} pid {os.getpid()}"
    marks = {
        ns: Mark(
            holder=holder,
            run_id=options.run_id,
            operation=plan.operation.value,
            acquired=now,
            renewed=now,
            duration_s=options.lease_s,
            snapshot=snapshot_of(plan.changes),
        )
        for ns, plan in plans.items()
    }
    recovering = any(plan.operation is Operation.RECOVER for plan in plans.values())
    refused = lock.acquire(marks, force=options.force, recovering=recovering)
    for namespace, err in list(refused.items()):
        if isinstance(err, LockForbidden) and not options.require_lock:
            log.warning("%s; going on without it (--require-lock refuses instead)", err.message)
            del refused[namespace]
    return refused


def _unmark(
    lock: RunLock, workloads: Mapping[str, list[Workload]], results: list[RunResult]
) -> list[RunResult]:
    """Clear each namespace's mark when nothing is left changed there; else retire it, holding
    what is left, so that the next run is told and `nsscale recover` can undo it. The workloads
    an earlier run (whose mark this one took over) left changed, and still are, join the
    result."""
    done: list[RunResult] = []
    left: dict[str, tuple[Snapshot, str]] = {}
    for result in results:
        if result.namespace not in lock.held:
            done.append(result)
            continue
        result, snapshot = _what_is_left(lock, workloads[result.namespace], result)
        done.append(result)
        if snapshot:
            left[result.namespace] = (snapshot, f"exit {result.exit_code}")
            log.warning(
                "%s is left partly changed: its mark stays for `nsscale recover`",
                result.namespace,
            )
    clear = [r.namespace for r in done if r.namespace in lock.held and r.namespace not in left]
    with _warned("could not clear the in-cluster mark"):
        for namespace, err in lock.release(clear).items():
            log.warning("could not delete the in-cluster mark (%s); retiring it instead", err)
            left[namespace] = ({}, f"exit {_by_namespace(done)[namespace].exit_code}")
    with _warned("could not clear the in-cluster mark"):
        if left:
            lock.retire(left)
    return done


def _by_namespace(results: list[RunResult]) -> dict[str, RunResult]:
    return {r.namespace: r for r in results}


def _what_is_left(
    lock: RunLock, workloads: list[Workload], result: RunResult
) -> tuple[RunResult, Snapshot]:
    """The result with what an earlier run left changed and still is, and the snapshot of
    everything left changed in the namespace (this run's and the earlier one's)."""
    taken_over = lock.taken_over.get(result.namespace)
    earlier = taken_over.snapshot if taken_over else {}
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
    took_over = taken_over.run_id if taken_over else ""
    inherited_now = tuple((by_ref[ref], now[ref].replicas) for ref in inherited)
    result = replace(result, inherited=inherited_now, took_over=took_over)
    snapshot = merged(earlier, snapshot_of(result.plan.changes))
    return result, {ref: snapshot[ref] for ref in own_left | set(inherited)}


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
