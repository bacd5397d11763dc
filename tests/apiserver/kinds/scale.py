"""The ``scale`` subresource of Deployments and StatefulSets: an ``autoscaling/v1`` Scale
(get, update, patch). ``spec.replicas`` is absent at 0 (omitempty); ``status.selector`` is the
workload's ``matchLabels``. A write changes only the workload's ``spec.replicas``, through the
workload's own update rules (generation, status, the controller); a ``resourceVersion`` in the
Scale is a precondition. A webhook sees the Scale, not the workload: no labels, no
annotations."""

from __future__ import annotations

import copy

from tests.apiserver.errors import FieldError, bad_request, invalid
from tests.apiserver.kinds.base import Kind, Subresource
from tests.apiserver.kinds.status import written
from tests.apiserver.objects import update
from tests.apiserver.request import Request
from tests.apiserver.selectors import format_selector
from tests.apiserver.storage import Store
from tests.apiserver.wire import JSON, Reply, reply

__all__ = ["SCALE", "scale_of", "serve"]

SCALE = Subresource("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update"))


def scale_of(obj: JSON) -> JSON:
    """The Scale of a workload."""
    meta = obj["metadata"]
    spec: JSON = {}
    replicas = int(obj["spec"].get("replicas", 1))
    if replicas:
        spec["replicas"] = replicas
    status: JSON = {"replicas": int(obj.get("status", {}).get("replicas", 0))}
    selector = format_selector(obj["spec"].get("selector"))
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        },
        "spec": spec,
        "status": status,
    }


def serve(store: Store, req: Request, kind: Kind, *, controller: bool) -> Reply:
    """GET, PUT or PATCH ``.../<workload>/scale``."""
    rt = kind.resource
    assert req.name is not None
    current = store.get(rt, req.namespace, req.name)
    scale = scale_of(current)
    if req.method == "GET":
        return reply(200, scale)
    body = written(req, rt, scale, current)
    replicas = (body.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise bad_request(
            'Scale in version "v1" cannot be handled as a Scale: json: '
            "cannot unmarshal into Go struct field ScaleSpec.spec.replicas "
            "of type int32"
        )
    if replicas < 0:
        why = "must be greater than or equal to 0"
        raise invalid(
            "Scale", "autoscaling", req.name, [FieldError("spec.replicas", replicas, why)]
        )
    new = copy.deepcopy(current)
    new["spec"]["replicas"] = replicas
    new["metadata"]["resourceVersion"] = ""
    updated = update(
        store,
        kind,
        req.namespace,
        req.name,
        new,
        current,
        dry_run=req.dry_run,
        controller=controller,
    )
    return reply(200, scale_of(updated))
