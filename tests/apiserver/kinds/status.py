"""The ``status`` subresource of the kinds whose status a client may write (custom resources,
CronJobs, HorizontalPodAutoscalers): GET answers the object; PUT and PATCH change only its
``status`` -- the spec, labels and annotations written are ignored, ``metadata.generation`` is
not bumped -- and a ``resourceVersion`` in the body is a precondition (409 when stale)."""

from __future__ import annotations

import copy

from tests.apiserver.errors import bad_request, method_not_allowed
from tests.apiserver.kinds.base import Kind, ResourceType
from tests.apiserver.objects import check_name, check_resource_version
from tests.apiserver.patches import apply_patch
from tests.apiserver.request import Request, json_body
from tests.apiserver.storage import Store
from tests.apiserver.wire import JSON, Reply, reply

__all__ = ["serve", "written"]


def written(req: Request, rt: ResourceType, shown: JSON, current: JSON) -> JSON:
    """The body a PUT or PATCH of a subresource (``shown`` as GET answers it) writes, checked:
    a JSON object naming the object, its ``resourceVersion`` (if any) the current one."""
    assert req.name is not None
    if req.method == "PUT":
        body = json_body(req)
    elif req.method == "PATCH":
        body = apply_patch(req, copy.deepcopy(shown))
    else:
        raise method_not_allowed()
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    check_name(body.get("metadata") or {}, req.name)
    check_resource_version(rt, req.name, body.get("metadata") or {}, current)
    return body


def serve(store: Store, req: Request, kind: Kind, *, controller: bool) -> Reply:
    """GET, PUT or PATCH ``.../<object>/status``."""
    rt = kind.resource
    assert req.name is not None
    current = store.get(rt, req.namespace, req.name)
    shown = kind.present(current)
    if req.method == "GET":
        return reply(200, shown)
    body = written(req, rt, shown, current)
    new: JSON = copy.deepcopy(current)
    status = body.get("status")
    if status is None:
        new.pop("status", None)
    else:
        new["status"] = copy.deepcopy(status)
    if new == current or req.dry_run:
        return reply(200, kind.present(new))
    new["metadata"]["resourceVersion"] = store.next_rv()
    store.put(rt, req.namespace, new)
    return reply(200, kind.present(new))
