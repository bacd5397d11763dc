"""Deployments (``apps/v1``). Status as the deployment controller writes it once it has seen
the spec (``observedGeneration``): ``replicas`` and ``updatedReplicas`` (every pod is of the
new ReplicaSet: a scale changes no template), ``readyReplicas`` and ``availableReplicas`` as
far as the pace allows (minReadySeconds 0: a ready pod is available), ``unavailableReplicas``
for the rest; each count absent at 0 (omitempty: at 0 replicas no count at all). Conditions:
Available (True while at most maxUnavailable pods are not, as deploymentutil counts it) and
Progressing (``ReplicaSetUpdated`` while pods are not ready, then ``NewReplicaSetAvailable``).
The controller's ``deployment.kubernetes.io/revision`` annotation and its ReplicaSets are not
made."""

from __future__ import annotations

from tests.apiserver.kinds import scale
from tests.apiserver.kinds.base import RW, SETTLED, Column, Pace, ResourceType, Subresource
from tests.apiserver.kinds.workloads import (
    CONTAINERS,
    IMAGES,
    READY,
    Workload,
    condition,
    pod_template,
    ready_count,
    template_hash,
)
from tests.apiserver.selectors import format_selector
from tests.apiserver.wire import JSON

__all__ = ["DEPLOYMENTS", "Deployments", "max_unavailable", "seed_spec"]

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

    def reconcile(self, obj: JSON, pace: Pace = SETTLED) -> None:
        if not pace.observed:
            obj.setdefault("status", {})
            return
        spec, meta = obj["spec"], obj["metadata"]
        previous = obj.get("status") or {}
        replicas = int(spec.get("replicas", 1))
        ready = ready_count(replicas, pace)
        status: JSON = {"observedGeneration": int(meta.get("generation", 1))}
        if replicas > 0:
            status.update(replicas=replicas, updatedReplicas=replicas)
        if ready > 0:
            status.update(readyReplicas=ready, availableReplicas=ready)
        if replicas > ready:
            status["unavailableReplicas"] = replicas - ready
        available = ready >= replicas - max_unavailable(spec, replicas)
        replica_set = f'ReplicaSet "{meta["name"]}-{template_hash(spec.get("template"))}"'
        status["conditions"] = [
            condition(
                previous,
                "Available",
                "True" if available else "False",
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            condition(
                previous,
                "Progressing",
                "True",
                "NewReplicaSetAvailable" if ready == replicas else "ReplicaSetUpdated",
                f"{replica_set} has successfully progressed."
                if ready == replicas
                else f"{replica_set} is progressing.",
            ),
        ]
        obj["status"] = status


def _scaled(value: object, replicas: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int, or a percentage of ``replicas``."""
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%") or not text[:-1].isdigit():
        return 0
    scaled = int(text[:-1]) * replicas
    return -(-scaled // 100) if round_up else scaled // 100


def max_unavailable(spec: JSON, replicas: int) -> int:
    """deploymentutil.MaxUnavailable: how many pods may be unavailable while the Deployment
    still counts as Available (0 for Recreate or at 0 replicas)."""
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return min(unavailable, replicas)


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
