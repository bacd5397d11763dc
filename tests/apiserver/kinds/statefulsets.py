"""StatefulSets (``apps/v1``). Status as the statefulset controller writes it once it has seen
the spec: ``replicas`` (the pods created: with the default OrderedReady policy one more than
are ready, until all are) and ``availableReplicas`` always (not omitempty), the
ready/current/updated counts only above 0, and a current/update revision named after the
set."""

from __future__ import annotations

import uuid

from tests.apiserver.kinds import scale
from tests.apiserver.kinds.base import RW, SETTLED, Pace, ResourceType, Subresource
from tests.apiserver.kinds.workloads import (
    CONTAINERS,
    IMAGES,
    READY,
    Workload,
    pod_template,
    ready_count,
)
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

    def reconcile(self, obj: JSON, pace: Pace = SETTLED) -> None:
        if not pace.observed:
            obj.setdefault("status", {})
            return
        spec = obj["spec"]
        name = obj["metadata"]["name"]
        replicas = int(spec.get("replicas", 1))
        ready = ready_count(replicas, pace)
        # OrderedReady creates the next pod once the ones before it are ready
        parallel = spec.get("podManagementPolicy") == "Parallel"
        created = replicas if parallel else min(replicas, ready + 1)
        revision = f"{name}-{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:10]}"
        status: JSON = {
            "observedGeneration": int(obj["metadata"].get("generation", 1)),
            "replicas": created,
        }
        if ready > 0:
            status["readyReplicas"] = ready
        if created > 0:
            status.update(currentReplicas=created, updatedReplicas=created)
        status.update(
            currentRevision=revision,
            updateRevision=revision,
            collisionCount=0,
            availableReplicas=ready,
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
