"""What Deployments, StatefulSets and ReplicaSets share: ``spec.replicas`` (default 1, an
int32, never negative), a status only the controller writes (kept through every client write),
``metadata.generation``, the ``scale`` subresource, and the READY, CONTAINERS and IMAGES
columns; how many pods are ready as the controller's :class:`~tests.apiserver.kinds.base.Pace`
allows; conditions that keep their timestamps while they hold."""

from __future__ import annotations

import copy
import json
from types import MappingProxyType
from typing import Any

from tests.apiserver.errors import FieldError, bad_request, invalid
from tests.apiserver.kinds import scale
from tests.apiserver.kinds.base import Column, Kind, Pace
from tests.apiserver.wire import JSON, now

__all__ = [
    "CONTAINERS",
    "IMAGES",
    "READY",
    "Workload",
    "condition",
    "pod_template",
    "ready_count",
    "template_hash",
]


def _containers(obj: JSON) -> list[Any]:
    containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return list(containers)


READY = Column(
    "Ready",
    lambda obj: (
        f"{obj.get('status', {}).get('readyReplicas', 0)}/{obj.get('spec', {}).get('replicas', 1)}"
    ),
)
CONTAINERS = Column(
    "Containers", lambda obj: ",".join(str(c.get("name", "")) for c in _containers(obj)), priority=1
)
IMAGES = Column(
    "Images", lambda obj: ",".join(str(c.get("image", "")) for c in _containers(obj)), priority=1
)


class Workload(Kind):
    generation = True
    controlled = True
    handlers = MappingProxyType({"scale": scale.serve})

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        rt = self.resource
        spec = self.spec(body)
        replicas = spec.setdefault("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"json: cannot unmarshal {type(replicas).__name__} into Go struct field "
                f"{rt.kind}Spec.spec.replicas of type int32"
            )
        if replicas < 0:
            why = "must be greater than or equal to 0"
            name = obj["metadata"]["name"]
            raise invalid(rt.kind, rt.group, name, [FieldError("spec.replicas", replicas, why)])
        obj["spec"] = spec
        obj["status"] = copy.deepcopy(current["status"]) if current else {}


def pod_template(name: str, image: str) -> JSON:
    """The pod template of a seeded workload, defaulted as the real server defaults it."""
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": name,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        },
    }


def ready_count(replicas: int, pace: Pace) -> int:
    """How many of ``replicas`` pods are ready, as far as the controller has got."""
    return replicas if pace.ready is None else max(0, min(pace.ready, replicas))


def condition(previous: JSON, kind: str, status: str, reason: str, message: str) -> JSON:
    """A status condition as the controllers write it: ``lastTransitionTime`` kept while its
    status holds, ``lastUpdateTime`` while its reason and message do too (from ``previous``,
    the status before)."""
    stamp = now()
    transition = update = stamp
    for old in previous.get("conditions") or ():
        if isinstance(old, dict) and old.get("type") == kind and old.get("status") == status:
            transition = old.get("lastTransitionTime", stamp)
            if (old.get("reason"), old.get("message")) == (reason, message):
                update = old.get("lastUpdateTime", stamp)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": update,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand.SafeEncodeString


def template_hash(template: object) -> str:
    """A ``pod-template-hash`` shaped like the controller's (an FNV-32a of the template,
    safe-encoded): the suffix of the ReplicaSet a Deployment's pods belong to."""
    digest = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True).encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(digest))
