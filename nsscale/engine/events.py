"""`--events`: a Kubernetes Event on each workload a run changed, so that `kubectl describe
deployment web` tells the next person what happened and by which run.

Reasons: `ScaledDown` (to 0), `ScaledUp` (any other count), `RolledBack` (an undo); reporting
component `nsscale`; `involvedObject` carries the workload's uid (describe lists only those).
Every Event of a run is created in one kubectl call, whatever the namespaces; its failure is a
warning (the run is done, and is audited all the same).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nsscale.engine.result import RunResult
from nsscale.errors import NsscaleError
from nsscale.kube.cluster import create_objects
from nsscale.kube.objects import Namespace, Workload

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")

COMPONENT = "nsscale"


def record_events(kubectl: Kubectl, results: Sequence[RunResult]) -> None:
    events = [event for result in results for event in _events(result)]
    if not events:
        return
    try:
        create_objects(kubectl, events)
    except NsscaleError as err:
        log.warning("could not record the Events of the run: %s", err)


def _events(result: RunResult) -> list[dict[str, Any]]:
    if result.dry_run:
        return []
    o, run = result.outcome, f"nsscale run {result.run_id}"
    undone = {r.change.workload.key for r in o.rollback or [] if r.ok}
    events = [
        _event(
            s.workload,
            "ScaledDown" if s.change.to_replicas == 0 else "ScaledUp",
            f"{run}: {result.operation} set {s.change.from_replicas} → {s.change.to_replicas}",
        )
        for s in o.scaled
        if s.workload.kind.scales
    ]
    events += [
        _event(
            r.change.workload,
            "RolledBack",
            f"{run}: rolled back to {r.change.from_replicas} after a failure",
            warning=True,
        )
        for r in o.rollback or []
        if r.change.workload.key in undone and r.change.workload.kind.scales
    ]
    return events


def record_namespace_warnings(
    kubectl: Kubectl, warnings: Sequence[tuple[Namespace, str, str]]
) -> None:
    """A `Warning` Event on each Namespace, as (it, reason, message): what reconcile could not
    read in its annotations (`InvalidSchedule`), for `kubectl get events -n NAMESPACE`."""
    events = [
        _object_event(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "name": ns.name,
                "namespace": ns.name,
                "uid": ns.uid,
            },
            ns.name,
            reason,
            message,
            warning=True,
        )
        for ns, reason, message in warnings
    ]
    if not events:
        return
    try:
        create_objects(kubectl, events)
    except NsscaleError as err:
        log.warning("could not record the Events of the namespaces: %s", err)


def _event(workload: Workload, reason: str, message: str, warning: bool = False) -> dict[str, Any]:
    meta = workload.manifest.get("metadata") or {}
    involved = {
        "apiVersion": str(workload.manifest.get("apiVersion", "apps/v1")),
        "kind": str(workload.manifest.get("kind", "")),
        "name": workload.name,
        "namespace": workload.namespace,
        "uid": str(meta.get("uid", "")),
    }
    return _object_event(involved, workload.namespace, reason, message, warning)


def _object_event(
    involved: dict[str, str], namespace: str, reason: str, message: str, warning: bool
) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{involved['name']}.", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT, "host": socket.gethostname()},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
