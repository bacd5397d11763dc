"""What a test does to the cluster without a request: add namespaces, workloads, CronJobs,
HorizontalPodAutoscalers, Events and custom resources, install CustomResourceDefinitions, read
the stored objects, change or delete them as another actor would. None of it is a request: not
recorded, not faulted, not slowed, not forbidden. (How fast the workload controllers bring
workloads to ready is readiness.py's.)"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tests.apiserver import objects
from tests.apiserver.errors import ApiError
from tests.apiserver.kinds import cronjobs, custom, deployments, hpas, statefulsets
from tests.apiserver.kinds.base import Kind
from tests.apiserver.kinds.namespaces import NAMESPACES
from tests.apiserver.patches import merge_patch
from tests.apiserver.storage import Store
from tests.apiserver.wire import JSON, now

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
        kind = self.store.registry.named(kind_name)
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
            self.store.reconcile(kind, obj)  # the controller has caught up, as far as it may
            obj["metadata"]["resourceVersion"] = self.store.next_rv()
            self.store.put(rt, namespace, obj)
            return copy.deepcopy(obj)

    def workload(self, namespace: str, kind: str, name: str) -> JSON:
        """A deep copy of a stored Deployment/StatefulSet (``kind``: "deployment",
        "statefulset", or their plurals/short names). KeyError when it does not exist."""
        rt = self.store.registry.workload_kind(kind).resource
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
        found = self.store.registry.workload_kind(kind)
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
        rt = self.store.registry.workload_kind(kind).resource
        with self._lock:
            self.store.remove(rt, namespace, name)

    # ------------------------------------------------------------------ other kinds

    def add_cronjob(
        self,
        namespace: str,
        name: str,
        schedule: str = "0 * * * *",
        suspend: bool | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        image: str = "busybox:1.36",
        owner_references: Sequence[Mapping[str, Any]] | None = None,
    ) -> JSON:
        """Add a CronJob (``batch/v1``; and its namespace if missing); return a copy of it.
        ``suspend`` None leaves it out of what is written: the server defaults it to false."""
        spec = cronjobs.seed_spec(schedule, suspend, image, name)
        meta = self._meta(name, labels, annotations, owner_references)
        return self._seed(self._kind("cronjobs"), namespace, {"metadata": meta, "spec": spec})

    def add_hpa(
        self,
        namespace: str,
        name: str,
        target_kind: str,
        target_name: str,
        min_replicas: int | None = 1,
        max_replicas: int = 10,
        *,
        target_api_version: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> JSON:
        """Add a HorizontalPodAutoscaler (``autoscaling/v2``) scaling ``target_kind``
        ``target_name`` (a Kind, "Deployment", or any alias of a served kind: "deploy"...);
        return a copy of it. ``min_replicas`` None leaves it out (defaulted to 1). Its status
        is what the HPA controller reports for the target as it is now (none if missing)."""
        found = self.store.registry.named(target_kind)
        kind_name = found.resource.kind if found else target_kind
        api_version = target_api_version or (found.resource.api_version if found else "apps/v1")
        spec: JSON = {
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind_name, "name": target_name},
            "maxReplicas": max_replicas,
        }
        if min_replicas is not None:
            spec["minReplicas"] = min_replicas
        meta = self._meta(name, labels, annotations, None)
        with self._lock:
            target = (
                self.store.find(found.resource.plural, namespace, target_name) if found else None
            )
            low = 1 if min_replicas is None else min_replicas
            status = hpas.seed_status(low, max_replicas, target)
            kind = self._kind("horizontalpodautoscalers")
            return self._seed(kind, namespace, {"metadata": meta, "spec": spec}, status=status)

    def install_crd(
        self,
        group: str,
        version: str,
        kind: str,
        plural: str,
        namespaced: bool = True,
        *,
        singular: str = "",
        short_names: Sequence[str] = (),
        categories: Sequence[str] = (),
        status: bool = True,
    ) -> JSON:
        """Install a CustomResourceDefinition (one version, every field kept, the ``status``
        subresource unless ``status`` is False): from now on its kind is served and listed by
        discovery. Return a copy of the definition (the stored one, if it was installed)."""
        crd = custom.CRD(
            group,
            version,
            kind,
            plural,
            namespaced,
            singular,
            tuple(short_names),
            tuple(categories),
            status,
        )
        return self.install_crds(crd)[0]

    def install_crds(self, *crds: custom.CRD) -> list[JSON]:
        """Install these definitions (``custom.READY_MADE``: KEDA's ScaledObject, Flux's
        Kustomization and HelmRelease, Argo CD's Application; each once)."""
        kind = self._kind("customresourcedefinitions")
        out: list[JSON] = []
        with self._lock:
            for crd in crds:
                stored = self.store.find(kind.resource.plural, None, crd.name)
                if stored is None:
                    if self.store.registry.plural_taken(crd.plural, crd.group):
                        raise ValueError(f"{crd.plural} are stored for another group already")
                    stored = objects.create(
                        self.store, kind, None, crd.manifest(), dry_run=False, controller=False
                    )
                out.append(copy.deepcopy(stored))
        return out

    def add_custom(
        self,
        group_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        spec: Mapping[str, Any] | None = None,
        *,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        status: Mapping[str, Any] | None = None,
        owner_references: Sequence[Mapping[str, Any]] | None = None,
    ) -> JSON:
        """Add a custom resource (``"keda.sh/v1alpha1", "ScaledObject"``...; its definition
        installed first: :meth:`install_crd`) with this spec, kept as given, and ``status`` as
        its controller wrote it; its namespace is added if missing. Return a copy of it."""
        found = self.store.registry.by_kind(group_version, kind)
        if found is None:
            raise ValueError(
                f"no CustomResourceDefinition serves {kind} in {group_version}: install it "
                "first (ApiServer.install_crd, install_crds)"
            )
        body: JSON = {
            "metadata": self._meta(name, labels, annotations, owner_references),
            "spec": copy.deepcopy(dict(spec or {})),
        }
        extra = copy.deepcopy(dict(status)) if status is not None else None
        return self._seed(found, namespace, body, status=extra)

    def add_event(
        self,
        involved: Mapping[str, Any] | tuple[str, str],
        reason: str,
        message: str,
        *,
        namespace: str | None = None,
        type: str = "Normal",
        component: str = "deployment-controller",
        count: int = 1,
        name: str | None = None,
    ) -> JSON:
        """Add an Event (core ``v1``, as a controller's event recorder writes it) about
        ``involved`` -- an object as ``add_*`` or ``get_object`` return it, or ``(kind,
        name)`` of a stored one in ``namespace`` -- whose ``involvedObject`` carries its
        ``uid`` (so ``kubectl describe`` lists it). Return a copy of it."""
        if isinstance(involved, tuple):
            if namespace is None:
                raise ValueError("name the namespace of the involved object")
            alias, obj_name = involved
            found = self.store.registry.named(alias)
            if found is None:
                raise ValueError(f"unknown kind {alias!r}")
            with self._lock:
                obj = self.store.find(found.resource.plural, namespace, obj_name)
                if obj is None:
                    raise ValueError(f"{found.resource.singular} {namespace}/{obj_name} is missing")
                involved = copy.deepcopy(found.present(obj))
        meta = involved["metadata"]
        namespace = namespace or meta.get("namespace") or "default"
        reference = {
            "kind": involved["kind"],
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": involved["apiVersion"],
            "resourceVersion": meta.get("resourceVersion"),
        }
        stamp = now()
        body: JSON = {
            "metadata": {"name": name or f"{meta['name']}.{time.time_ns():x}"},
            "involvedObject": {k: v for k, v in reference.items() if v},
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": count,
            "type": type,
            "reportingComponent": component,
        }
        return self._seed(self._kind("events"), namespace, body)

    def objects(self, resource: str, namespace: str | None = None) -> list[JSON]:
        """Deep copies of the stored objects of any kind (a plural, short name or Kind,
        ``.group``-qualified if need be) in one namespace (None: all), in the server's list
        order, as that kind's version serves them."""
        kind = self._kind(resource)
        with self._lock:
            return [
                copy.deepcopy(kind.present(obj))
                for obj in self.store.items(kind.resource, namespace)
            ]

    def edit_object(
        self, resource: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> JSON:
        """Change any stored object as another actor would (a JSON merge patch: None deletes;
        a real update: resourceVersion, generation, the controller). KeyError if missing."""
        kind = self._kind(resource)
        with self._lock:
            current = self._stored(kind.resource.plural, namespace, name)
            new = merge_patch(copy.deepcopy(kind.present(current)), dict(patch))
            try:
                updated = objects.update(
                    self.store,
                    kind,
                    namespace if kind.resource.namespaced else None,
                    name,
                    new,
                    current,
                    dry_run=False,
                    controller=self.controller,
                )
            except ApiError as err:
                raise ValueError(err.message) from None
            return copy.deepcopy(kind.present(updated))

    def set_status(
        self, resource: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> JSON:
        """Write an object's ``status`` as its controller would (a new resourceVersion; the
        generation unchanged): a custom resource's conditions, an HPA's replicas..."""
        kind = self._kind(resource)
        with self._lock:
            current = self._stored(kind.resource.plural, namespace, name)
            new = copy.deepcopy(current)
            new["status"] = copy.deepcopy(dict(status))
            if new != current:
                new["metadata"]["resourceVersion"] = self.store.next_rv()
                self.store.put(kind.resource, namespace, new)
            return copy.deepcopy(kind.present(new))

    def create_object(self, resource: str, namespace: str | None, body: Mapping[str, Any]) -> JSON:
        """Create any object as another client would (a POST: AlreadyExists, as ValueError,
        when its name is taken); what the server stored."""
        kind = self._kind(resource)
        with self._lock:
            try:
                created = objects.create(
                    self.store,
                    kind,
                    namespace if kind.resource.namespaced else None,
                    copy.deepcopy(dict(body)),
                    dry_run=False,
                    controller=self.controller,
                )
            except ApiError as err:
                raise ValueError(err.message) from None
            return copy.deepcopy(kind.present(created))

    def delete_object(self, resource: str, namespace: str | None, name: str) -> None:
        """Delete any stored object (KeyError if there is none)."""
        kind = self._kind(resource)
        with self._lock:
            self.store.remove(kind.resource, namespace, name)

    @staticmethod
    def _meta(
        name: str,
        labels: Mapping[str, str] | None,
        annotations: Mapping[str, str] | None,
        owner_references: Sequence[Mapping[str, Any]] | None,
    ) -> JSON:
        return {
            "name": name,
            "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
            "ownerReferences": [copy.deepcopy(dict(r)) for r in owner_references or ()],
        }

    def _seed(
        self, kind: Kind, namespace: str | None, body: JSON, *, status: JSON | None = None
    ) -> JSON:
        """Store a new object of ``kind`` from ``body`` as the server would create it
        (validated, defaulted; ValueError when refused) with ``status`` if given; its
        namespace is added if missing. Returns a copy as its version serves it."""
        rt = kind.resource
        ns = namespace if rt.namespaced else None
        name = body["metadata"]["name"]
        with self._lock:
            if self.store.find(rt.plural, ns, name) is not None:
                raise ValueError(f"{rt.singular} {ns or ''}/{name} exists")
            try:
                obj = objects.new_object(kind, ns, body)
            except ApiError as err:
                raise ValueError(err.message) from None
            if ns is not None:
                self.add_namespace(ns)
            self.store.reconcile(kind, obj)
            if status is not None:
                obj["status"] = copy.deepcopy(status)
            obj["metadata"]["resourceVersion"] = self.store.next_rv()
            self.store.put(rt, ns, obj)
            kind.stored(self.store, obj)
            return copy.deepcopy(kind.present(obj))

    def _stored(self, plural: str, namespace: str | None, name: str) -> JSON:
        obj = self.store.find(plural, namespace, name)
        if obj is None:
            raise KeyError(name)
        return obj

    def _kind(self, plural: str) -> Kind:
        kind = self.store.registry.named(plural)
        assert kind is not None, plural
        return kind
