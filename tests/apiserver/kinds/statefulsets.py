"""StatefulSets (``apps/v1``). Status as the statefulset controller writes it: ``replicas``
and ``availableReplicas`` always (not omitempty), the ready/current/updated counts only above
0, and a current/update revision named after the set."""

from __future__ import annotations

import uuid

from tests.apiserver.kinds import scale
from tests.apiserver.kinds.base import RW, ResourceType, Subresource
from tests.apiserver.kinds.workloads import CONTAINERS, IMAGES, READY, Workload, pod_template
from tests.apiserver.wire import JSON

__all__ = ["STATEFULSETS", "StatefulSets", "seed_spec"]

STATEFULSETS = ResourceType(
    "apps",
    "v1",
    "statefulsets",
    "statefulset",
    "StatefulSet",
    True,
    RW,
    ("sts",),
    ("all",),
    (scale.SCALE, Subresource("status", "apps", "v1", "StatefulSet", ("get", "patch", "update"))),
)


class StatefulSets(Workload):
    resource = STATEFULSETS
    columns = (READY, CONTAINERS, IMAGES)

    def reconcile(self, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        replicas = int(obj["spec"].get("replicas", 1))
        revision = f"{name}-{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:10]}"
        status: JSON = {
            "observedGeneration": int(obj["metadata"].get("generation", 1)),
            "replicas": replicas,
        }
        if replicas > 0:
            status.update(
                readyReplicas=replicas, currentReplicas=replicas, updatedReplicas=replicas
            )
        status.update(
            currentRevision=revision,
            updateRevision=revision,
            collisionCount=0,
            availableReplicas=replicas,
        )
        obj["status"] = status


def seed_spec(name: str, replicas: int, image: str) -> JSON:
    """The spec of a StatefulSet added by ``ApiServer.add_statefulset``, defaulted."""
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": pod_template(name, image),
        "serviceName": name,
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 10,
        "persistentVolumeClaimRetentionPolicy": {
            "whenDeleted": "Retain",
            "whenScaled": "Retain",
        },
    }
