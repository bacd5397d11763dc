"""Requests to a stored kind's collection or object: list, get, create, update, patch, delete.

A list (namespaced, or across all namespaces at ``/apis/apps/v1/deployments``) is filtered by
``labelSelector`` and ``fieldSelector`` (selectors.py), in etcd's key order (storage.py), and
paginated with ``limit``/``continue``; its items have no ``kind``/``apiVersion``, as a real
server sends them. ``Accept: ...;as=Table`` gets a Table (tables.py). ``dryRun=All`` is
validated and answered, nothing stored. A PUT to a missing object of a kind that allows it
(``Kind.create_on_update``: Leases) creates it: 201 Created. What is answered is the stored
object as the kind's API version serves it (``Kind.present``: an Event written as ``v1`` is
read as ``events.k8s.io/v1``); a patch applies to that. A kind that refuses strategic merge
patches (custom resources) answers one 415, as the real server does.
"""

from __future__ import annotations

import copy

from tests.apiserver import objects
from tests.apiserver.errors import ApiError, method_not_allowed
from tests.apiserver.kinds.base import Kind
from tests.apiserver.patches import apply_patch
from tests.apiserver.request import Request, json_body
from tests.apiserver.selectors import field_matcher, label_matcher
from tests.apiserver.storage import Store, page
from tests.apiserver.tables import table
from tests.apiserver.wire import JSON, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, Reply, reply

# the patch types the real server accepts for custom resources (CBOR apply is alpha in 1.36)
_CUSTOM_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, "application/apply-patch+yaml")

__all__ = ["list_objects", "serve"]


def serve(store: Store, req: Request, kind: Kind, *, controller: bool) -> Reply:
    """Serve ``req`` to a stored kind (the store is locked)."""
    verb, ns, name = req.verb, req.namespace, req.name
    wants_table = "as=Table" in req.headers.get("Accept", "")
    if verb == "list":
        listed = list_objects(store, req, kind)
        return reply(
            200, table(kind, listed["items"], listed["metadata"]) if wants_table else listed
        )
    if verb == "create":
        created = objects.create(
            store, kind, ns, json_body(req), dry_run=req.dry_run, controller=controller
        )
        return reply(201, kind.present(created))
    assert name is not None
    if verb == "get":
        obj = store.get(kind.resource, ns, name)
        meta = {"resourceVersion": str(store.resource_version)}
        return reply(200, table(kind, [obj], meta) if wants_table else kind.present(obj))
    if verb == "delete":
        options = json_body(req) if req.body else None
        return reply(200, objects.delete(store, kind, ns, name, options, dry_run=req.dry_run))
    if (
        verb == "update"
        and kind.create_on_update
        and store.find(kind.resource.plural, ns, name) is None
    ):
        created = objects.create_on_update(
            store,
            kind,
            ns,
            name,
            json_body(req),
            may_create=req.may_create,
            dry_run=req.dry_run,
            controller=controller,
        )
        return reply(201, kind.present(created))
    current = store.get(kind.resource, ns, name)
    if verb == "update":
        body = json_body(req)
    elif verb == "patch":
        content_type = req.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == STRATEGIC_PATCH and not kind.strategic_merge:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(_CUSTOM_PATCH_TYPES)}",
            )
        body = apply_patch(req, copy.deepcopy(kind.present(current)))
    else:
        raise method_not_allowed()
    updated = objects.update(
        store, kind, ns, name, body, current, dry_run=req.dry_run, controller=controller
    )
    return reply(200, kind.present(updated))


def list_objects(store: Store, req: Request, kind: Kind) -> JSON:
    """The ``<Kind>List`` answered to a list request."""
    rt = kind.resource
    items = store.items(rt, req.namespace)
    if "labelSelector" in req.query:
        match_labels = label_matcher(req.query["labelSelector"])
        items = [o for o in items if match_labels(o["metadata"].get("labels") or {})]
    if "fieldSelector" in req.query:
        match_fields = field_matcher(req.query["fieldSelector"], kind)
        items = [o for o in items if match_fields(o)]
    meta, items = page(items, req.query, store.resource_version)
    return {
        "kind": f"{rt.kind}List",
        "apiVersion": rt.api_version,
        "metadata": meta,
        "items": [
            {k: v for k, v in kind.present(o).items() if k not in ("kind", "apiVersion")}
            for o in items
        ],
    }
