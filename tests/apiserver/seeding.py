"""What a test does to the cluster without a request: add namespaces and workloads, read the
stored objects, change or delete them as another actor would. None of it is a request: not
recorded, not faulted, not slowed, not forbidden."""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from tests.apiserver import objects, registry
from tests.apiserver.errors import ApiError
from tests.apiserver.kinds import deployments, statefulsets
from tests.apiserver.kinds.base import Kind
from tests.apiserver.kinds.namespaces import NAMESPACES
from tests.apiserver.patches import merge_patch
from tests.apiserver.storage import Store
from tests.apiserver.wire import JSON

__all__ = ["Seeding"]


class Seeding:
    """Seeding and inspection methods of :class:`~tests.apiserver.server.ApiServer` (a mixin)."""

    controller: bool
    store: Store
    _lock: threading.RLock

    @property
    def resource_version(self) -> int:
        """The last resourceVersion handed out."""
        with self._lock:
            return self.store.resource_version

    def add_namespace(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> JSON:
        """Add a namespace with these labels and annotations (it always has the label
        ``kubernetes.io/metadata.name``); return a copy of it. If it exists, add the labels
        and annotations to it (a real update: a new resourceVersion if anything changed)."""
        kind = self._kind(NAMESPACES.plural)
        with self._lock:
            current = self.store.find(NAMESPACES.plural, None, name)
            if current is None:
                meta = {"name": name, "labels": dict(labels or {})}
                meta["annotations"] = dict(annotations or {})
                created = objects.create(
                    self.store, kind, None, {"metadata": meta}, dry_run=False, controller=False
                )
                return copy.deepcopy(created)
            if not labels and not annotations:
                return copy.deepcopy(current)
            meta = {"labels": dict(labels or {}), "annotations": dict(annotations or {})}
            patch = {"metadata": meta}
            new = merge_patch(copy.deepcopy(current), patch)
            updated = objects.update(
                self.store, kind, None, name, new, current, dry_run=False, controller=False
            )
            return copy.deepcopy(updated)

    def add_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        *,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        image: str = "nginx:1.27",
        owner: tuple[str, str] | None = None,
        owner_references: Sequence[Mapping[str, Any]] | None = None,
    ) -> JSON:
        """Add a Deployment (and its namespace if missing); return a copy of it.

        ``owner=(kind, name)`` names an object of a served kind in the same namespace (or
        cluster-scoped) that controls it: stored as ``metadata.ownerReferences`` with its
        ``apiVersion``, ``kind``, ``name``, ``uid``, ``controller: true`` and
        ``blockOwnerDeletion: true``. ``owner_references`` are stored as given (after it),
        for owners of any kind (a custom resource's operator...)."""
        spec = deployments.seed_spec(name, replicas, image)
        refs = self._owner_references(namespace, owner, owner_references)
        return self._add_workload("deployments", namespace, name, spec, annotations, labels, refs)

    def add_statefulset(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        *,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        image: str = "postgres:16",
        owner: tuple[str, str] | None = None,
        owner_references: Sequence[Mapping[str, Any]] | None = None,
    ) -> JSON:
        """Add a StatefulSet (and its namespace if missing); return a copy of it. ``owner``
        and ``owner_references`` as in :meth:`add_deployment`."""
        spec = statefulsets.seed_spec(name, replicas, image)
        refs = self._owner_references(namespace, owner, owner_references)
        return self._add_workload("statefulsets", namespace, name, spec, annotations, labels, refs)

    def _owner_references(
        self,
        namespace: str,
        owner: tuple[str, str] | None,
        given: Sequence[Mapping[str, Any]] | None,
    ) -> list[JSON]:
        refs = [copy.deepcopy(dict(ref)) for ref in given or ()]
        if owner is None:
            return refs
        kind_name, name = owner
        kind = registry.named(kind_name)
        if kind is None:
            raise ValueError(f"unknown owner kind {kind_name!r}: use owner_references")
        ns = namespace if kind.resource.namespaced else None
        with self._lock:
            found = self.store.find(kind.resource.plural, ns, name)
            if found is None:
                raise ValueError(f"owner {kind.resource.singular} {name!r} does not exist")
            return [objects.owner_reference(found), *refs]

    def _add_workload(
        self,
        plural: str,
        namespace: str,
        name: str,
        spec: JSON,
        annotations: Mapping[str, str] | None,
        labels: Mapping[str, str] | None,
        owner_references: list[JSON],
    ) -> JSON:
        if spec["replicas"] < 0:
            raise ValueError("replicas must be >= 0")
        kind = self._kind(plural)
        rt = kind.resource
        with self._lock:
            if self.store.find(rt.plural, namespace, name) is not None:
                raise ValueError(f"{rt.singular} {namespace}/{name} exists")
            meta: JSON = {
                "name": name,
                "labels": {"app": name, **(labels or {})},
                "annotations": dict(annotations or {}),
                "ownerReferences": owner_references,
            }
            try:
                obj = objects.new_object(kind, namespace, {"metadata": meta, "spec": spec})
            except ApiError as err:
                raise ValueError(err.message) from None
            self.add_namespace(namespace)
            kind.reconcile(obj)  # seeded settled: the controller has caught up
            obj["metadata"]["resourceVersion"] = self.store.next_rv()
            self.store.put(rt, namespace, obj)
            return copy.deepcopy(obj)

    def workload(self, namespace: str, kind: str, name: str) -> JSON:
        """A deep copy of a stored Deployment/StatefulSet (``kind``: "deployment",
        "statefulset", or their plurals/short names). KeyError when it does not exist."""
        rt = registry.workload_kind(kind).resource
        with self._lock:
            return copy.deepcopy(self._stored(rt.plural, namespace, name))

    def workloads(self, namespace: str) -> list[JSON]:
        """Deep copies of the namespace's Deployments then StatefulSets, each sorted by name."""
        with self._lock:
            return [
                copy.deepcopy(obj)
                for plural in ("deployments", "statefulsets")
                for obj in self.store.items(self._kind(plural).resource, namespace)
            ]

    def get_object(self, resource: str, namespace: str, name: str) -> JSON | None:
        """A deep copy of any stored object by plural (``leases``, ``namespaces``...)."""
        with self._lock:
            obj = self.store.find(resource, namespace, name)
            return copy.deepcopy(obj) if obj is not None else None

    def edit_workload(
        self,
        namespace: str,
        kind: str,
        name: str,
        *,
        replicas: int | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> JSON:
        """Change a workload as another actor would (bumps resourceVersion/generation like a
        real update): set ``replicas``; merge ``annotations`` (None value = delete)."""
        found = registry.workload_kind(kind)
        with self._lock:
            current = self._stored(found.resource.plural, namespace, name)
            patch: JSON = {}
            if replicas is not None:
                patch["spec"] = {"replicas": replicas}
            if annotations is not None:
                patch["metadata"] = {"annotations": dict(annotations)}
            new = merge_patch(copy.deepcopy(current), patch)
            updated = objects.update(
                self.store,
                found,
                namespace,
                name,
                new,
                current,
                dry_run=False,
                controller=self.controller,
            )
            return copy.deepcopy(updated)

    def delete_workload(self, namespace: str, kind: str, name: str) -> None:
        rt = registry.workload_kind(kind).resource
        with self._lock:
            self.store.remove(rt, namespace, name)

    def _stored(self, plural: str, namespace: str, name: str) -> JSON:
        obj = self.store.find(plural, namespace, name)
        if obj is None:
            raise KeyError(name)
        return obj

    @staticmethod
    def _kind(plural: str) -> Kind:
        kind = registry.named(plural)
        assert kind is not None, plural
        return kind
