"""What the user asked of a run, from the command line (light to import: the CLI builds it
before the rest of nsscale is loaded)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from nsscale.defaults import (
    DEFAULT_ARGOCD_NAMESPACE,
    DEFAULT_LEASE_S,
    DEFAULT_PARALLEL,
    DEFAULT_RETRIES,
    DEFAULT_WAIT_TIMEOUT,
)
from nsscale.engine.plan import Operation, Plan, Selection
from nsscale.engine.respect import Respect


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False  # client side: no mutating call at all
    server_dry_run: bool = False  # every write sent with --dry-run=server
    rollback: bool = True
    batch_size: int | None = None
    parallel: int = DEFAULT_PARALLEL
    retries: int = DEFAULT_RETRIES
    force: bool = False  # up: restore changed workloads; all: take over a stale mark
    require_lock: bool = False
    replicas: int | None = None
    run_id: str = ""
    lease_s: int = DEFAULT_LEASE_S  # the in-cluster mark's duration; renewed every third of it
    selection: Selection = field(default_factory=Selection)  # which workloads take part
    all_or_nothing: bool = False  # several namespaces: a failure in one undoes them all
    cronjobs: bool = False  # CronJobs take part: suspended by down, resumed by up
    suspend_cronjobs: bool = False  # asked for (down): CronJobs that cannot be read fail the run
    keda: bool = False  # ScaledObjects of the workloads taken to 0 are paused (resumed by up)
    # HPAs take part: a floor above a scheduled down's N lowered to N (put back by up, recover)
    autoscalers: bool = False
    suspend_gitops: bool = False  # down, scale: suspend the GitOps owners of what changes
    argocd_namespace: str = DEFAULT_ARGOCD_NAMESPACE  # where Argo CD's Applications live
    events: bool = False  # a Kubernetes Event on each workload changed
    hold_s: float | None = None  # after success: reconcile leaves the namespaces alone this long
    scale_resources: tuple[str, ...] = ()  # custom resources (RESOURCE.GROUP) moved too
    wait: bool = False  # after the writes, until every changed workload is ready
    wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT.total_seconds()
    # Called with every namespace's plan after the reads and before the first write (a dry run
    # too); raising stops the run with nothing changed (`nsscale serve`: the caller's rights).
    authorize: Callable[[Mapping[str, Plan]], None] | None = field(default=None, compare=False)
    # reconcile's down: each namespace's rules (grace period, hand changes, downtime replicas)
    respect: Mapping[str, Respect] = field(default_factory=dict, compare=False)
    holder: str = ""  # who the in-cluster mark names; "" = user@host pid N

    def for_operation(self, operation: Operation) -> RunOptions:
        """These options with the kinds that take part in `operation` beside the workloads (the
        one rule of the command line, the Python call and reconcile): CronJobs in up and
        recover, which put back what was suspended, and in down when asked to suspend them;
        KEDA's ScaledObjects in every operation but scale; HPAs in up and recover, and in a down
        with reconcile's rules (downtime replicas)."""
        resuming = operation in (Operation.UP, Operation.RECOVER)
        return replace(
            self,
            cronjobs=resuming or self.suspend_cronjobs,
            keda=operation is not Operation.SCALE,
            autoscalers=resuming or (operation is Operation.DOWN and bool(self.respect)),
        )


@dataclass(frozen=True)
class AuditOptions:
    """Where a run is recorded: the local file (default: under $XDG_STATE_HOME), DynamoDB when
    a table is named; `required`: a run whose record cannot be written fails."""

    table: str | None = None
    file: Path | None = None
    required: bool = False
