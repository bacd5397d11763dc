"""`nsscale status` as a document: what the command line's `-o json`, the Python call and
`nsscale serve` answer for a namespace's workloads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nsscale.engine.rivals.gitops import GitOpsOwner, gitops_owner
from nsscale.engine.rivals.hpa import Autoscaler
from nsscale.kube.objects import ORIGINAL, SCALED_TO, Workload, WorkloadKey, parse_count


def status_document(
    namespace: str,
    workloads: Sequence[Workload],
    autoscalers: Mapping[WorkloadKey, Autoscaler] | None = None,
) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "workloads": [
            {
                "type": w.kind.value,
                "name": w.name,
                "replicas": w.replicas,
                "ready_replicas": w.ready,
                # counts, as `replicas` is: null when none is recorded or it is no count
                "original_replicas": parse_count(w.annotations.get(ORIGINAL)),
                "scaled_replicas": parse_count(w.annotations.get(SCALED_TO)),
                "hpa": _hpa_document((autoscalers or {}).get(w.key)),
                "gitops_owner": _owner_document(gitops_owner(w)),
            }
            for w in workloads
        ],
    }


def namespace_state(workloads: Iterable[Workload]) -> str:
    """`awake` (every workload that scales is up), `asleep` (none is), `partly`, or `empty` (none
    to scale). A workload is up when its spec.replicas > 0, whatever its pods."""
    counts = [w.replicas for w in workloads if w.kind.scales]
    up = sum(1 for replicas in counts if replicas > 0)
    if not counts:
        return "empty"
    if up == len(counts):
        return "awake"
    return "asleep" if up == 0 else "partly"


def _hpa_document(hpa: Autoscaler | None) -> dict[str, Any] | None:
    if hpa is None:
        return None
    return {"name": hpa.name, "min": hpa.min_replicas, "max": hpa.max_replicas}


def _owner_document(owner: GitOpsOwner | None) -> dict[str, str] | None:
    if owner is None:
        return None
    return {
        "tool": owner.tool,
        "kind": owner.kind,
        "name": owner.name,
        "namespace": owner.namespace,
    }
