"""Deployments (``apps/v1``). Status as the deployment controller writes it: at 0 replicas no
``replicas``/``updatedReplicas``/``readyReplicas``/``availableReplicas`` keys (they are
omitempty), and the Available and Progressing conditions. The controller's
``deployment.kubernetes.io/revision`` annotation is not added."""

from __future__ import annotations

from tests.apiserver.kinds import scale
from tests.apiserver.kinds.base import RW, Column, ResourceType, Subresource
from tests.apiserver.kinds.workloads import CONTAINERS, IMAGES, READY, Workload, pod_template
from tests.apiserver.selectors import format_selector
from tests.apiserver.wire import JSON

__all__ = ["DEPLOYMENTS", "Deployments", "seed_spec"]

DEPLOYMENTS = ResourceType(
    "apps",
    "v1",
    "deployments",
    "deployment",
    "Deployment",
    True,
    RW,
    ("deploy",),
    ("all",),
    (scale.SCALE, Subresource("status", "apps", "v1", "Deployment", ("get", "patch", "update"))),
)


class Deployments(Workload):
    resource = DEPLOYMENTS
    columns = (
        READY,
        Column(
            "Up-to-date", lambda obj: obj.get("status", {}).get("updatedReplicas", 0), "integer"
        ),
        Column(
            "Available", lambda obj: obj.get("status", {}).get("availableReplicas", 0), "integer"
        ),
        CONTAINERS,
        IMAGES,
        Column(
            "Selector", lambda obj: format_selector(obj.get("spec", {}).get("selector")), priority=1
        ),
    )

    def reconcile(self, obj: JSON) -> None:
        replicas = int(obj["spec"].get("replicas", 1))
        since = obj["metadata"]["creationTimestamp"]
        status: JSON = {"observedGeneration": int(obj["metadata"].get("generation", 1))}
        if replicas > 0:
            status.update(
                replicas=replicas,
                updatedReplicas=replicas,
                readyReplicas=replicas,
                availableReplicas=replicas,
            )
        status["conditions"] = [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": since,
                "lastTransitionTime": since,
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": since,
                "lastTransitionTime": since,
                "reason": "NewReplicaSetAvailable",
                "message": "ReplicaSet has successfully progressed.",
            },
        ]
        obj["status"] = status


def seed_spec(name: str, replicas: int, image: str) -> JSON:
    """The spec of a Deployment added by ``ApiServer.add_deployment``, defaulted."""
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": pod_template(name, image),
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
        },
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
