"""What Deployments and StatefulSets share: ``spec.replicas`` (default 1, an int32, never
negative), a status only the controller writes (kept through every client write),
``metadata.generation``, the ``scale`` subresource, and the READY, CONTAINERS and IMAGES
columns."""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

from tests.apiserver.errors import FieldError, bad_request, invalid
from tests.apiserver.kinds import scale
from tests.apiserver.kinds.base import Column, Kind
from tests.apiserver.wire import JSON

__all__ = ["CONTAINERS", "IMAGES", "READY", "Workload", "pod_template"]


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
