"""Guarded batch writes: move many workloads in one kubectl call, never over another's change.

Each Move says what the workload must look like before (`expect`) and after (`want`). A batch is
written with `kubectl replace`, every object carrying the resourceVersion we read. When the call
fails or prints what we cannot read, the namespace is read again and each workload is judged by
its state, not by kubectl's prose: already at `want` (done), still at `expect` with a newer
resourceVersion (bumped by someone else's unrelated write, such as a controller's status update:
retried), still at `expect` with the same resourceVersion (the write was refused: failed),
anything else (changed by someone: conflict). A workload someone else brought to the count
wanted meanwhile is no write of this run: skipped, `already at target` (its state differs from
the one this run would write, or this run's write of it was refused).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from nsscale.errors import (
    ErrorKind,
    KubectlError,
    KubectlFailure,
    KubectlOutputError,
    classify,
    error_lines,
)
from nsscale.kube.cluster import Cluster, printed_workloads
from nsscale.kube.objects import WORKLOAD_KINDS, Kind, State, Workload
from nsscale.kube.retry import RetryPolicy

log = logging.getLogger("nsscale")

DEFAULT_ATTEMPTS = 3
ALREADY_AT_TARGET = "already at target"


@dataclass(frozen=True)
class Move:
    base: Workload  # the object as last read; its resourceVersion is the precondition
    expect: State
    want: State

    @property
    def ref(self) -> str:
        return self.base.ref


@dataclass(frozen=True)
class Failure:
    message: str
    kind: ErrorKind


@dataclass(frozen=True)
class MoveResult:
    move: Move
    workload: Workload | None = None  # as the cluster holds it after a done move
    failure: Failure | None = None
    judged: bool = False  # decided by reading the namespace after the call failed
    # Not written by this run: someone else brought it where it was to go (why, when so).
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass
class Writer:
    cluster: Cluster
    namespaces: tuple[str, ...]  # those the moves may be in: one batch may span them all
    kinds: Sequence[Kind] = WORKLOAD_KINDS  # those the moves may be of
    attempts: int = DEFAULT_ATTEMPTS  # writes of one object that conflicts with bumps
    dry_run: bool = False  # client-side: predict, call nothing
    server_dry_run: bool = False  # the cluster's writes change nothing: trust what kubectl says
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # for transient failures
    # When a call ends without the server's answer to each of its writes (kubectl killed, a
    # connection dropped or timed out, output we cannot read), a write may still be on its way
    # to storage. The server gives each request its own deadline (the --request-timeout kubectl
    # sent): the namespace is read only once that has passed, so that no write can land after it
    # was judged not done.
    settle_s: float = 0.0

    def read(self, namespaces: Sequence[str] | None = None) -> list[Workload]:
        """The workloads of the namespaces (by default all the writer's) now, retrying
        transient failures."""
        scope = list(namespaces or self.namespaces)
        return self.retry.call(
            lambda: self.cluster.list_workloads(scope, kinds=self.kinds), "reading the namespace"
        )

    def write(self, moves: Sequence[Move]) -> list[MoveResult]:
        """Results in the order of `moves`. Raises only when the truth cannot be learnt."""
        if self.dry_run:
            return [MoveResult(m, m.base) for m in moves]
        results: dict[int, MoveResult] = {}
        pending = dict(enumerate(moves))
        conflicts = transients = 0
        while pending:
            try:
                written = self.cluster.replace([m.base.render(m.want) for m in pending.values()])
            except KubectlFailure as err:
                if self.server_dry_run and isinstance(
                    err, KubectlError
                ):  # nothing landed: what kubectl printed was accepted
                    self._judge_dry(pending, err, results)
                    break
                log.debug("batch of %d failed (%s); reading the namespace", len(pending), err)
                if outcome_unknown(err) and self.settle_s > 0:
                    log.info(
                        "the server's answer to some writes is unknown (%s): waiting %gs for "
                        "its own deadline on them before reading the namespace",
                        err,
                        self.settle_s,
                    )
                    self.retry.sleep(self.settle_s)
                transient = _kind(err).transient and transients < self.retry.retries
                rebased, resent = self._judge(
                    pending, err, results, conflicts < self.attempts - 1, transient
                )
                conflicts += bool(rebased)
                if resent:
                    transients += 1
                    self.retry.wait(transients, f"{len(resent)} write(s)", err)
                pending = rebased | resent
            else:
                by_key = {w.key: w for w in written}
                for i, m in pending.items():
                    results[i] = MoveResult(m, by_key.get(m.base.key, m.base))
                pending = {}
        return [results[i] for i in range(len(moves))]

    @staticmethod
    def _judge_dry(
        pending: dict[int, Move], err: KubectlError, results: dict[int, MoveResult]
    ) -> None:
        accepted = {w.key: w for w in printed_workloads(err.stdout)}
        for i, m in pending.items():
            if m.base.key in accepted:
                results[i] = MoveResult(m, accepted[m.base.key])
            else:
                results[i] = _failed(m, _message_for(m.base, err), err.kind)

    def _judge(
        self,
        pending: dict[int, Move],
        err: KubectlFailure,
        results: dict[int, MoveResult],
        may_rebase: bool,
        may_resend: bool,
    ) -> tuple[dict[int, Move], dict[int, Move]]:
        """Sort the moves of a failed call by what the namespace shows. Returns the moves to
        retry on a newer resourceVersion (rebased) and those to send again as they were."""
        current = {w.key: w for w in self.read(_namespaces(pending.values()))}
        # kubectl's line about a failed object names it, not its namespace or kind: a name
        # written twice in the call (two namespaces) cannot tell whose write was refused
        names = Counter(m.base.name for m in pending.values())
        rebased: dict[int, Move] = {}
        resent: dict[int, Move] = {}
        for i, m in pending.items():
            now = current.get(m.base.key)
            if now is None:
                results[i] = _failed(m, "no longer exists", ErrorKind.NOT_FOUND)
            elif now.state == m.want and not (names[m.base.name] == 1 and _refused(m, err)):
                results[i] = MoveResult(m, now, judged=True)
            elif now.replicas == m.want.replicas != m.expect.replicas or now.state == m.want:
                log.info("%s was brought to %d by someone else meanwhile", m.ref, now.replicas)
                results[i] = MoveResult(m, now, judged=True, skipped=ALREADY_AT_TARGET)
            elif now.state != m.expect:
                results[i] = _failed(
                    m,
                    f"changed by someone else meanwhile (replicas now {now.replicas}); left as is",
                    ErrorKind.CONFLICT,
                )
            elif now.resource_version == m.base.resource_version:
                if may_resend:  # refused for a passing reason: send it again
                    resent[i] = m
                else:
                    results[i] = _failed(m, _message_for(m.base, err), _kind(err))
            elif not may_rebase:
                message = "kept being modified meanwhile; gave up"
                results[i] = _failed(m, message, ErrorKind.CONFLICT)
            else:
                log.info("%s was modified meanwhile but still holds; retrying", m.ref)
                rebased[i] = replace(m, base=now)
        return rebased, resent


def _namespaces(moves: Iterable[Move]) -> list[str]:
    return list(dict.fromkeys(m.base.namespace for m in moves))


def _failed(move: Move, message: str, kind: ErrorKind) -> MoveResult:
    return MoveResult(move, failure=Failure(message, kind), judged=True)


def outcome_unknown(err: KubectlFailure) -> bool:
    """Whether some write of the failed call may still land: kubectl was killed, printed what
    we cannot read, or failed without the server's answer for an object (a timeout, a dropped
    connection: the server may still be working on the write)."""
    if isinstance(err, KubectlOutputError) or err.killed:
        return True
    lines = error_lines(err.stderr)
    return not lines or not all(classify(line).answered for line in lines)


def _refused(move: Move, err: KubectlFailure) -> bool:
    """The server answered this move's write with a refusal: it never landed (so a workload
    found as the move wanted was put there by someone else)."""
    if not isinstance(err, KubectlError) or err.killed:
        return False
    quoted = f'"{move.base.name}"'
    lines = [line for line in error_lines(err.stderr) if quoted in line]
    return bool(lines) and all(classify(line).answered for line in lines)


def _kind(err: KubectlFailure) -> ErrorKind:
    return err.kind if isinstance(err, KubectlError) else ErrorKind.OTHER


def _message_for(workload: Workload, err: KubectlFailure) -> str:
    """kubectl's line about this object when it printed one, else its last line."""
    quoted = f'"{workload.name}"'
    stderr = err.stderr if isinstance(err, KubectlError) else ""
    for line in stderr.splitlines():
        if quoted in line:
            return line.strip()
    return err.message
