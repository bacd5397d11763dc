"""ReplicaSets (``apps/v1``): served so that ``kubectl describe deployment`` finds the
Deployment's ReplicaSets (it lists them by the Deployment's selector; with none it prints
``NewReplicaSet: <none>``). The deployment controller does not make them here: a test adds
one with ``kubectl create`` if it needs it. Status as the replicaset controller writes it:
``replicas`` always (not omitempty), the other counts only above 0."""

from __future__ import annotations

from tests.apiserver.kinds import scale
from tests.apiserver.kinds.base import RW, SETTLED, Column, Pace, ResourceType, Subresource
from tests.apiserver.kinds.workloads import CONTAINERS, IMAGES, Workload, ready_count
from tests.apiserver.selectors import format_selector
from tests.apiserver.wire import JSON

__all__ = ["REPLICASETS", "ReplicaSets"]

REPLICASETS = ResourceType(
    "apps",
    "v1",
    "replicasets",
    "replicaset",
    "ReplicaSet",
    True,
    RW,
    ("rs",),
    ("all",),
    (scale.SCALE, Subresource("status", "apps", "v1", "ReplicaSet", ("get", "patch", "update"))),
)


class ReplicaSets(Workload):
    resource = REPLICASETS
    columns = (
        Column("Desired", lambda obj: obj.get("spec", {}).get("replicas", 1), "integer"),
        Column("Current", lambda obj: obj.get("status", {}).get("replicas", 0), "integer"),
        Column("Ready", lambda obj: obj.get("status", {}).get("readyReplicas", 0), "integer"),
        CONTAINERS,
        IMAGES,
        Column(
            "Selector", lambda obj: format_selector(obj.get("spec", {}).get("selector")), priority=1
        ),
    )

    def reconcile(self, obj: JSON, pace: Pace = SETTLED) -> None:
        if not pace.observed:
            obj.setdefault("status", {})
            return
        replicas = int(obj["spec"].get("replicas", 1))
        ready = ready_count(replicas, pace)
        status: JSON = {"replicas": replicas}
        if replicas > 0:
            status["fullyLabeledReplicas"] = replicas
        if ready > 0:
            status.update(readyReplicas=ready, availableReplicas=ready)
        status["observedGeneration"] = int(obj["metadata"].get("generation", 1))
        obj["status"] = status
