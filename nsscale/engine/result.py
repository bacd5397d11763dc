"""The result of a run: one dataclass, rendered as a table for people and as JSON for machines.

Totals and the exit code are computed from it, never stored twice. The JSON keeps every key of the
seed's result dictionary (docs/contract.md; the contract tests) and adds a few.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from nsscale.engine.plan import Change, Operation, Plan
from nsscale.engine.waiting import NotReady
from nsscale.errors import ExitCode
from nsscale.kube.objects import Workload
from nsscale.transaction import Failed, Outcome, Restored, Scaled

SIGNAL_EXIT = {
    "SIGINT": ExitCode.INTERRUPTED,
    "SIGTERM": ExitCode.TERMINATED,
    "SIGHUP": ExitCode.HUNG_UP,
}


def new_run_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class RunResult:
    plan: Plan
    outcome: Outcome
    dry_run: bool = False
    rollback_enabled: bool = True
    duration_s: float = 0.0
    run_id: str = field(default_factory=new_run_id)
    audit_errors: tuple[str, ...] = ()  # audit writes that failed: warnings, not failures
    audit_missing: bool = False  # --audit-required and the required record was not written
    # Workloads an earlier run (whose mark this one took over) left changed and that are still
    # so after this run, with the count they are at.
    inherited: tuple[tuple[Workload, int], ...] = ()
    took_over: str = ""  # the run id of that earlier run: the audit shows it closed by this one
    # --wait: the changed workloads not ready at their target in time (the change stays), and
    # the signal that cut the wait short, if one did.
    not_ready: tuple[NotReady, ...] = ()
    wait_stopped: str | None = None

    @property
    def namespace(self) -> str:
        return self.plan.namespace

    @property
    def operation(self) -> Operation:
        return self.plan.operation

    @property
    def success(self) -> bool:
        return self.outcome.success

    @property
    def left_changed(self) -> list[tuple[Workload, int]]:
        """Workloads left changed by a failed run (this one, or an earlier one it took over),
        with the count they are at: read off the namespace as verified at the end when it was,
        else from what kubectl reported (a change not known to be undone counts as left)."""
        o = self.outcome
        if self.dry_run:
            return []
        if o.success:
            return list(self.inherited)
        if o.final is not None:
            final = {key: w.state for key, w in o.final.items()}
            # A write that was done (or may have been) is left when the workload is not back
            # as it was; a refused one only if it landed after all.
            written = [s.change for s in o.scaled] + [f.change for f in o.uncertain]
            left = [
                (c.workload, o.final[c.workload.key].replicas)
                for c in written
                if final.get(c.workload.key, c.before) != c.before
            ] + [
                (f.change.workload, f.change.to_replicas)
                for f in o.failed
                if final.get(f.change.workload.key) == f.change.after
            ]
        elif o.rollback is None:
            left = [(s.change.workload, s.change.to_replicas) for s in o.scaled]
            left += [(f.change.workload, f.change.to_replicas) for f in o.uncertain]
        else:
            left = [(r.change.workload, r.change.to_replicas) for r in o.rollback if not r.ok]
        return left + list(self.inherited)

    @property
    def exit_code(self) -> int:
        o = self.outcome
        if self.left_changed:  # a person must look
            return ExitCode.PARTIAL
        if o.success:
            if self.audit_missing:
                return ExitCode.FAILED
            if self.wait_stopped is not None:
                return SIGNAL_EXIT[self.wait_stopped]
            return ExitCode.NOT_READY if self.not_ready else ExitCode.SUCCESS
        if o.interrupted:
            return SIGNAL_EXIT[o.interrupted]
        return ExitCode.FAILED

    # The model's parts, read by the audit, serve and the tables; JSON is made from them once,
    # at the edge (`to_dict`, and the `*_json` entries the audit and serve share with it).

    @property
    def scaled(self) -> list[Scaled]:
        """The workloads scaled (CronJobs and the other switched kinds are `suspended`)."""
        return [s for s in self.outcome.scaled if s.change.workload.kind.scales]

    @property
    def suspended(self) -> list[Scaled]:
        """The CronJobs, ScaledObjects and GitOps owners suspended or resumed, and the HPAs
        whose minReplicas was lowered or put back."""
        return [s for s in self.outcome.scaled if not s.change.workload.kind.scales]

    @property
    def failed(self) -> list[Failed]:
        return self.outcome.failed_all

    @property
    def rollback(self) -> list[Restored]:
        return self.outcome.rollback or []

    @property
    def rollback_performed(self) -> bool:
        return self.outcome.rollback is not None

    @property
    def rollback_success_count(self) -> int:
        return sum(r.ok for r in self.rollback)

    @property
    def rollback_failed_count(self) -> int:
        return sum(not r.ok for r in self.rollback)

    @property
    def errors(self) -> list[str]:
        o = self.outcome
        return [f"{f.change.workload.ref}: {f.failure.message}" for f in o.failed] + o.errors

    @property
    def interrupted(self) -> str | None:
        """The signal that stopped the run, or its --wait."""
        return self.outcome.interrupted or self.wait_stopped

    def scaled_json(self) -> list[dict[str, Any]]:
        status = "dry_run" if self.dry_run else "success"
        return [
            {
                "type": s.change.workload.kind.value,
                "name": s.change.workload.name,
                "from_replicas": s.change.from_replicas,
                "to_replicas": s.change.to_replicas,
                "status": status,
            }
            for s in self.scaled
        ]

    def suspended_json(self) -> list[dict[str, Any]]:
        status = "dry_run" if self.dry_run else "success"
        return [
            {
                "type": s.change.workload.kind.value,
                "namespace": s.change.workload.namespace,
                "name": s.change.workload.name,
                "change": _change(s.change),
                "status": status,
                **_holders(s.change),
                **_floor(s.change),
            }
            for s in self.suspended
        ]

    def failed_json(self) -> list[dict[str, Any]]:
        return [
            {
                "type": f.change.workload.kind.value,
                "name": f.change.workload.name,
                "status": "failed",
                "error": f.failure.message,
                "error_kind": f.failure.kind.value,
                "from_replicas": _count(f.change.workload, f.change.from_replicas),
                "to_replicas": _count(f.change.workload, f.change.to_replicas),
            }
            for f in self.failed
        ]

    def rollback_json(self) -> list[dict[str, Any]]:
        return [
            {
                "type": r.change.workload.kind.value,
                "name": r.change.workload.name,
                "restored_replicas": _count(r.change.workload, r.change.from_replicas),
                "status": "success" if r.ok else "failed",
                **({"error": r.failure.message} if r.failure else {}),
            }
            for r in self.rollback
        ]

    def skipped_json(self) -> list[dict[str, Any]]:
        return [
            {
                "type": s.workload.kind.value,
                "name": s.workload.name,
                "replicas": s.workload.replicas,
                "reason": s.reason,
            }
            for s in self.plan.skips
        ]

    def to_dict(self) -> dict[str, Any]:
        """The run's JSON document (`-o json`, the Python call, serve's `result`)."""
        return {
            "success": self.success,
            "scaled_resources": self.scaled_json(),
            "suspended_resources": self.suspended_json(),
            "failed_resources": self.failed_json(),
            "total_scaled": len(self.scaled),
            "total_failed": len(self.failed),
            "rollback_performed": self.rollback_performed,
            "rollback_results": self.rollback_json(),
            "rollback_success_count": self.rollback_success_count,
            "rollback_failed_count": self.rollback_failed_count,
            "errors": self.errors,
            "namespace": self.namespace,
            "operation": self.operation.value,
            "dry_run": self.dry_run,
            "skipped_resources": self.skipped_json(),
            "left_changed": [
                {"type": w.kind.value, "name": w.name, "replicas": replicas}
                for w, replicas in self.left_changed
            ],
            "not_ready": [
                {
                    "type": n.workload.kind.value,
                    "name": n.workload.name,
                    "namespace": n.workload.namespace,
                    "ready": n.ready,
                    "wanted": n.wanted,
                }
                for n in self.not_ready
            ],
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            "run_id": self.run_id,
            "duration_s": round(self.duration_s, 3),
            "audit_errors": list(self.audit_errors),
        }


def _count(workload: Workload, replicas: int) -> int | None:
    """A replica count in the report (an HPA's: its minReplicas): none for a CronJob (suspended
    or not)."""
    return replicas if workload.kind.counted else None


# The worst first: what a person must look at, a signal, a failure, then success.
_SEVERITY = (ExitCode.PARTIAL, *SIGNAL_EXIT.values(), ExitCode.FAILED)


@dataclass(frozen=True)
class MultiResult:
    """The results of one run over several namespaces, one per namespace, in order."""

    results: tuple[RunResult, ...]
    operation: Operation
    run_id: str
    dry_run: bool = False

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    @property
    def exit_code(self) -> int:
        """The worst of the namespaces': 3 (left changed), then a signal's, then 1, then 0."""
        codes = {r.exit_code for r in self.results}
        return next((int(code) for code in _SEVERITY if code in codes), max(codes, default=0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "exit_code": self.exit_code,
            "run_id": self.run_id,
            "operation": self.operation.value,
            "dry_run": self.dry_run,
            "namespaces": [r.to_dict() for r in self.results],
        }


def failed_before_start(
    namespace: str,
    operation: Operation,
    message: str,
    dry_run: bool = False,
    run_id: str | None = None,
    interrupted: str | None = None,
) -> RunResult:
    """The result of a run that changed nothing because it could not start, or was
    interrupted (by the signal `interrupted`) before its first change."""
    plan = Plan(namespace, operation, (), ())
    outcome = Outcome(errors=[message], interrupted=interrupted)
    return RunResult(plan, outcome, dry_run=dry_run, run_id=run_id or new_run_id())


def _change(change: Change) -> str:
    if change.workload.kind.info.floor is not None:  # an HPA's minReplicas
        return "lower" if change.to_replicas < change.from_replicas else "restore"
    return "suspend" if change.to_replicas == 0 else "resume"


def _floor(change: Change) -> dict[str, int]:
    """An HPA's: its minReplicas before and after (its maxReplicas is never changed)."""
    if change.workload.kind.info.floor is None:
        return {}
    return {"from_min_replicas": change.from_replicas, "to_min_replicas": change.to_replicas}


def _holders(change: Change) -> dict[str, list[str]]:
    """A GitOps owner's: the namespaces it is left suspended for (none once resumed)."""
    if not change.workload.kind.gitops:
        return {}
    return {"suspended_for": [ns for ns in (change.after.holders or "").split(",") if ns]}
