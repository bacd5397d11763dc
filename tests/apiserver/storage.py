"""Where objects live, and the resourceVersions they are stamped with.

One global counter hands out resourceVersions, as etcd's revision does: every stored write
consumes one (a delete too); a dry run or a no-op update consumes none. Objects are kept by
plural, namespace ("" for cluster-scoped kinds) and name, and listed in etcd's order: by their
key ``<namespace>/<name>``, byte by byte -- so namespace ``a-b`` comes before ``a`` ('-' sorts
before '/'), as on a real server.

``Store.lock`` guards both; a request's read-modify-write holds it throughout.

The store also knows what is served: its :class:`~tests.apiserver.registry.Registry` (a
CustomResourceDefinition, once stored, adds its kind there), and how far the simulated
controllers have got with each object (``pace``, set by the server: readiness.py). Kinds that
share one storage (Events, served as ``v1`` and ``events.k8s.io/v1``) share one plural.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.apiserver.errors import ApiError, not_found
from tests.apiserver.kinds.base import SETTLED, Kind, Pace, ResourceType
from tests.apiserver.wire import JSON

if TYPE_CHECKING:
    from tests.apiserver.registry import Registry

__all__ = ["Store", "page"]


class Store:
    """Every stored object and the resourceVersion counter."""

    def __init__(self, registry: Registry, lock: threading.RLock) -> None:
        self.lock = lock
        self.registry = registry
        self._rv = 0
        # plural -> namespace ("" for cluster-scoped) -> name -> object
        self._objects: dict[str, dict[str, dict[str, JSON]]] = {}
        for kind in registry.stored:
            self.add_type(kind.resource)
        # how far the controllers have got with an object's spec (set by the server)
        self.pace: Callable[[Kind, JSON], Pace] = lambda kind, obj: SETTLED
        # told of every object stored (the server's readiness timers)
        self.on_put: Callable[[ResourceType, JSON], None] = lambda rt, obj: None

    def add_type(self, rt: ResourceType) -> None:
        """Store objects of ``rt`` (kept if some are stored already: a shared storage)."""
        self._objects.setdefault(rt.plural, {})

    def reconcile(self, kind: Kind, obj: JSON) -> None:
        """Let ``kind``'s controller write ``obj``'s status, as far as it has got."""
        kind.reconcile(obj, self.pace(kind, obj))

    def next_rv(self) -> str:
        """Consume and return the next resourceVersion."""
        self._rv += 1
        return str(self._rv)

    @property
    def resource_version(self) -> int:
        """The last resourceVersion handed out."""
        return self._rv

    def bucket(self, rt: ResourceType, namespace: str | None) -> dict[str, JSON]:
        """The objects of one kind in one namespace, by name (the stored dict itself)."""
        return self._objects[rt.plural].setdefault(namespace or "", {})

    def find(self, plural: str, namespace: str | None, name: str) -> JSON | None:
        """The stored object itself, or None. KeyError for a plural that is not stored."""
        return self._objects[plural].get(namespace or "", {}).get(name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> JSON:
        """The stored object itself; NotFound if there is none."""
        obj = self.find(rt.plural, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        return obj

    def put(self, rt: ResourceType, namespace: str | None, obj: JSON) -> None:
        self.bucket(rt, namespace)[obj["metadata"]["name"]] = obj
        self.on_put(rt, obj)

    def remove(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        """Delete a stored object (KeyError if there is none); consumes a resourceVersion."""
        del self._objects[rt.plural].get(namespace or "", {})[name]
        self.next_rv()

    def items(self, rt: ResourceType, namespace: str | None) -> list[JSON]:
        """The stored objects of one namespace (None: of all), in etcd's key order (code
        point order is UTF-8 byte order)."""
        store = self._objects[rt.plural]
        buckets = store.items() if namespace is None else [(namespace, store.get(namespace, {}))]
        keyed = {
            f"{ns}/{name}" if ns else name: o for ns, objs in buckets for name, o in objs.items()
        }
        return [keyed[key] for key in sorted(keyed)]


def page(
    items: list[JSON], query: dict[str, str], resource_version: int
) -> tuple[JSON, list[JSON]]:
    """The list metadata and the items of one page (``limit``, ``continue``), as the real
    server paginates: ``continue`` and ``remainingItemCount`` while items remain."""
    meta: JSON = {"resourceVersion": str(resource_version)}
    start = 0
    if query.get("continue"):
        try:
            start = int(json.loads(base64.urlsafe_b64decode(query["continue"]))["i"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "BadRequest", "continue key is not valid") from None
    limit = int(query.get("limit") or 0)
    end = start + limit if limit > 0 else len(items)
    if end < len(items):
        meta["continue"] = base64.urlsafe_b64encode(json.dumps({"i": end}).encode()).decode()
        meta["remainingItemCount"] = len(items) - end
    return meta, items[start:end]
