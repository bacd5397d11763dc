"""Which path is what, and who serves it.

:func:`parse_path` reads a request's path: discovery (``/version``, ``/api``, ``/apis``, a
group, a group version), OpenAPI, or a resource of a kind in the registry -- its namespace
(``/namespaces/<ns>/<plural>``, or none: a cluster-scoped kind, or a list across all
namespaces such as ``/apis/apps/v1/deployments``), name and subresource.

:func:`route` serves it, in the real server's order: authentication (401 for a wrong bearer
token), the path (404 unknown, 405 a verb the kind does not serve), RBAC (403; a PUT that would
create its object, ``Kind.create_on_update``, also needs ``create``), then the kind:
a review is answered; a write goes through admission (admission.py); the store is locked for
the read-modify-write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from tests.apiserver import resources
from tests.apiserver.admission import ADMITTED_VERBS
from tests.apiserver.discovery import discovery, openapi
from tests.apiserver.errors import ApiError, method_not_allowed, unknown_path
from tests.apiserver.kinds.base import Identity, Review, SubresourceHandler
from tests.apiserver.rbac import forbidden
from tests.apiserver.registry import Registry
from tests.apiserver.request import Request
from tests.apiserver.storage import Store
from tests.apiserver.wire import Reply, reply

__all__ = ["Cluster", "parse_path", "route"]


class Cluster(Identity, Protocol):
    """What routing needs of the server."""

    token: str
    controller: bool
    admission_latency: float
    store: Store

    @property
    def port(self) -> int: ...


def parse_path(req: Request, registry: Registry) -> None:
    """Set ``req.area`` and, for a resource, its kind (one ``registry`` serves), namespace,
    name and subresource."""
    parts = [p for p in req.path.split("/") if p]
    if not parts:
        return
    if parts[0] == "version" and len(parts) == 1:
        req.area = "discovery"
        return
    if parts[0] == "openapi":
        req.area = "openapi"
        return
    if parts[0] == "api":
        group, rest = "", parts[1:]
        if not rest:
            req.area = "discovery"
            return
    elif parts[0] == "apis":
        if len(parts) <= 2:
            served = len(parts) == 1 or parts[1] in registry.groups
            req.area = "discovery" if served else "unknown"
            return
        group, rest = parts[1], parts[2:]
    else:
        return
    versions = registry.groups.get(group)
    if versions is None or rest[0] not in versions:
        return
    version, rest = rest[0], rest[1:]
    if not rest:
        req.area = "discovery"
        return
    find = registry.find
    kind = find(group, version, rest[2]) if rest[0] == "namespaces" and len(rest) >= 3 else None
    if kind is not None:
        if not kind.resource.namespaced:
            return
        req.namespace, rest = rest[1], rest[2:]
    else:
        kind = find(group, version, rest[0])
        if kind is None:
            return
    req.area, req.kind = "resource", kind
    if len(rest) >= 2:
        req.name = rest[1]
    if len(rest) >= 3:
        req.subresource = rest[2]
    req.extra = len(rest) > 3


def route(cluster: Cluster, req: Request, admit: Callable[[], None] | None = None) -> Reply:
    """Serve ``req``; ``admit`` is the admission wait of a write (None: the request is past
    admission, or the caller does not admit)."""
    auth = req.headers.get("Authorization")
    if auth is not None and auth != f"Bearer {cluster.token}":
        raise ApiError(401, "Unauthorized", "Unauthorized")
    if req.area == "discovery":
        if req.method != "GET":
            raise method_not_allowed()
        return discovery(req, cluster.port, cluster.store.registry)
    if req.area == "openapi":
        return openapi(req)
    kind = req.kind
    if req.area != "resource" or kind is None or req.extra:
        raise unknown_path()
    rt = kind.resource
    serve: SubresourceHandler = resources.serve
    if req.subresource is not None:
        if req.subresource not in kind.handlers:
            raise unknown_path()
        serve = kind.handlers[req.subresource]
    verb = req.verb
    if not kind.serves(verb):
        raise method_not_allowed()
    resource = req.resource or rt.plural
    if not cluster.allowed(verb, resource, req.namespace, req.name):
        raise forbidden(cluster.user, verb, resource, rt, req.namespace, req.name)
    if verb == "update" and kind.create_on_update and req.subresource is None:
        # a PUT that finds no object creates it, if RBAC also allows ``create``
        req.may_create = cluster.allowed("create", resource, req.namespace, req.name)
    if isinstance(kind, Review):
        return reply(201, kind.answer(cluster, req))
    if rt.namespaced and req.namespace is None and verb != "list":
        raise unknown_path()
    if (req.name is None) != (verb in ("list", "create")):
        raise method_not_allowed()  # e.g. POST to a named object, PUT to a collection
    store, controller = cluster.store, cluster.controller
    if admit is not None and verb in ADMITTED_VERBS and cluster.admission_latency > 0:
        # What the real server refuses before it calls the webhooks (NotFound, a stale
        # resourceVersion, Invalid...) is answered at once: try the write as a dry run.
        with store.lock:
            try:
                dry_run = replace(req, query={**req.query, "dryRun": "All"})
                serve(store, dry_run, kind, controller=controller)
            except ApiError as err:
                if err.reason != "AlreadyExists":  # found by storage, after admission
                    raise
        admit()
    # The write is decided here, under the lock, against the object as it is now.
    with store.lock:
        return serve(store, req, kind, controller=controller)
