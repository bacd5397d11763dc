"""nsscale from Python, as the seed calls it (docs/design.md): `scale_namespace_resources`.

It runs the engine the command line runs (the same reads, plan, mark, transaction, rollback and
audit record), returns the command line's one-namespace JSON document as a dict, and raises only
ValueError, for bad arguments. It installs no signal handler and configures no logging (the
`nsscale` logger is the caller's to route), so it is safe to call from any thread of a service:
two calls on one namespace at once are kept apart by the in-cluster mark, one runs and the other
returns a failure naming the run that holds the namespace.

`run_namespace` and `namespace_status` are the same two paths for a caller that has its own
kubectl and audit (`nsscale serve`): the run's whole outcome (why it was refused, too), and the
document `nsscale status NAMESPACE -o json` prints.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

from nsscale.audit.auditor import Auditor
from nsscale.defaults import DEFAULT_TIMEOUT_S, TABLE_ENV
from nsscale.engine.interrupts import Interrupts
from nsscale.engine.options import AuditOptions, RunOptions
from nsscale.engine.plan import Operation, Plan, check_namespace
from nsscale.engine.reads import Lookahead
from nsscale.engine.result import new_run_id
from nsscale.engine.run import Executed, execute
from nsscale.errors import UsageError
from nsscale.kubectl import Kubectl, KubectlConfig

MAX_REPLICAS = 2**31 - 1  # the API's int32


def scale_namespace_resources(
    namespace: str,
    target_replicas: int | None,
    enable_rollback: bool = True,
    *,
    dry_run: bool = False,
    context: str | None = None,
    kubeconfig: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Scale every Deployment and StatefulSet of `namespace`: `target_replicas` 0 scales them
    down (recording each original count), None brings them back up to those counts, N sets them
    all to N. With `enable_rollback` (the default) a failure undoes the changes already made.

    Returns the result document `nsscale down|up|scale NAMESPACE -o json` prints: the original
    design's keys (`success`, `scaled_resources`, `failed_resources`, `total_scaled`,
    `total_failed`, `rollback_performed`, `rollback_results`, `rollback_success_count`,
    `rollback_failed_count`, `errors`) and the rest (`exit_code`, `left_changed`, `run_id`...).
    A failed run is a document with `success` false, never an exception. ValueError for bad
    arguments: an invalid or missing namespace, a count that is not a whole number from 0 to
    2**31-1, a timeout that is not a positive number of seconds, a kubeconfig that is not a file,
    no kubectl. The run is audited as the command line's are ($NSSCALE_AUDIT_TABLE names the
    DynamoDB table); kubectl is $NSSCALE_KUBECTL, else the one on PATH."""
    _check_arguments(namespace, target_replicas, timeout)
    auditor = Auditor(AuditOptions(table=os.environ.get(TABLE_ENV) or None))
    try:
        kubectl = Kubectl(KubectlConfig.resolve(None, context, kubeconfig, float(timeout)))
        executed = run_namespace(
            kubectl,
            namespace,
            operation_of(target_replicas),
            auditor,
            replicas=target_replicas,
            rollback=enable_rollback,
            dry_run=dry_run,
        )
    except UsageError as err:
        raise ValueError(f"{err.message}{f' ({err.hint})' if err.hint else ''}") from err
    return executed.results[0].to_dict()


def operation_of(target_replicas: int | None) -> Operation:
    """The seed's `target_replicas`: None is up, 0 is down, N is scale."""
    if target_replicas is None:
        return Operation.UP
    return Operation.DOWN if target_replicas == 0 else Operation.SCALE


def run_namespace(
    kubectl: Kubectl,
    namespace: str,
    operation: Operation,
    auditor: Auditor,
    *,
    replicas: int | None = None,
    rollback: bool = True,
    dry_run: bool = False,
    run_id: str | None = None,
    authorize: Callable[[Mapping[str, Plan]], None] | None = None,
    holder: str = "",
    scale_resources: tuple[str, ...] = (),
    hold_s: float | None = None,
) -> Executed:
    """One run of `operation` on one namespace, with the engine the command line runs, for a
    caller that keeps its own process: no signal handler is installed (a signal never reaches
    the run, which finishes and rolls back as usual) and no logging is set up. Its one result
    and, when it changed nothing because it was refused, why (`Executed.refusal`: LockHeld
    when another run holds the namespace). `authorize` and `holder`: as in RunOptions.
    UsageError for bad input found before anything was attempted (no such namespace, a
    protected one, no kubectl): not a run, not recorded. `hold_s`: as `up --hold`."""
    options = RunOptions(
        dry_run=dry_run,
        rollback=rollback,
        replicas=replicas if operation is Operation.SCALE else None,
        run_id=run_id or new_run_id(),
        authorize=authorize,
        holder=holder,
        scale_resources=scale_resources,
        hold_s=hold_s,
    ).for_operation(operation)
    ahead = Lookahead.for_run(kubectl, [namespace], None, options, auditor)
    with Interrupts(handlers=False) as interrupts:
        return execute(kubectl, operation, options, ahead, auditor, interrupts)


def namespace_status(
    kubectl: Kubectl, namespace: str, scale_resources: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The document `nsscale status NAMESPACE -o json` prints, read as that command reads it
    (the Namespace, its workloads and the HPAs targeting them, side by side). UsageError for
    a namespace that does not exist or is protected; KubectlError when a read fails."""
    from nsscale.engine.status import status_document

    ahead = Lookahead.for_status(kubectl, [namespace], scale_resources=scale_resources)
    workloads, autoscalers = ahead.workloads(), ahead.autoscalers()
    return status_document(namespace, workloads[namespace], autoscalers)


def _check_arguments(namespace: object, target_replicas: object, timeout: object) -> None:
    if not isinstance(namespace, str):
        raise ValueError(f"namespace must be a string, not {type(namespace).__name__}")
    try:
        check_namespace(namespace)
    except UsageError as err:
        raise ValueError(err.message) from err
    if target_replicas is not None and (
        isinstance(target_replicas, bool)
        or not isinstance(target_replicas, int)
        or not 0 <= target_replicas <= MAX_REPLICAS
    ):
        raise ValueError(
            f"target_replicas must be None (up), 0 (down) or a count up to {MAX_REPLICAS}, "
            f"not {target_replicas!r}"
        )
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
