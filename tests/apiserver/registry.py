"""The served kinds, in the order discovery lists them. A new built-in kind is a module under
tests/apiserver/kinds/ (see kinds/base.py) and one line in ``KINDS``.

Every server has its own :class:`Registry`: the built-in kinds, then the custom resources of
the CustomResourceDefinitions installed at runtime (``ApiServer.install_crd``, or a
``kubectl create`` of one), which discovery lists and routing serves from then on.

The API groups and versions served are those of the kinds and of their subresources
(``autoscaling/v1``, for the Scale of Deployments and StatefulSets), groups in that order,
each group's versions by Kubernetes' version priority (``v2`` before ``v1`` before
``v1beta1``...): its first is the preferred version kubectl uses.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from tests.apiserver.kinds.base import Kind, Review
from tests.apiserver.kinds.cronjobs import CronJobs
from tests.apiserver.kinds.custom import CustomResourceDefinitions
from tests.apiserver.kinds.deployments import Deployments
from tests.apiserver.kinds.events import CoreEvents, Events
from tests.apiserver.kinds.hpas import HorizontalPodAutoscalers
from tests.apiserver.kinds.leases import Leases
from tests.apiserver.kinds.namespaces import Namespaces
from tests.apiserver.kinds.replicasets import ReplicaSets
from tests.apiserver.kinds.reviews import (
    SelfSubjectAccessReviews,
    SelfSubjectReviews,
    SubjectAccessReviews,
    TokenReviews,
)
from tests.apiserver.kinds.statefulsets import StatefulSets

__all__ = ["KINDS", "Registry", "version_priority"]

KINDS: tuple[Kind, ...] = (
    Namespaces(),
    CoreEvents(),
    Deployments(),
    StatefulSets(),
    ReplicaSets(),
    HorizontalPodAutoscalers(),
    CronJobs(),
    Leases(),
    Events(),
    CustomResourceDefinitions(),
    SelfSubjectReviews(),
    SelfSubjectAccessReviews(),
    TokenReviews(),
    SubjectAccessReviews(),
)

_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """A sort key putting versions in Kubernetes' order (version.CompareKubeAwareVersionStrings):
    GA before beta before alpha, higher numbers first, other names last, alphabetically."""
    m = _VERSION.fullmatch(version)
    if m is None:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), "")


class Registry:
    """The kinds one server serves: the built-in ones, then the custom resources installed."""

    def __init__(self, kinds: Iterable[Kind] = KINDS) -> None:
        self._lock = threading.Lock()
        self._kinds: tuple[Kind, ...] = tuple(kinds)
        self._index()

    def _index(self) -> None:
        groups: dict[str, dict[str, list[Kind]]] = {}
        for kind in self._kinds:
            rt = kind.resource
            groups.setdefault(rt.group, {}).setdefault(rt.version, []).append(kind)
            for sub in rt.subresources:
                groups.setdefault(sub.group, {}).setdefault(sub.version, [])
        # each swapped in whole, the paths first: a reader that finds a group in ``groups``
        # finds its kinds
        self._by_path = {
            (k.resource.group, k.resource.version, k.resource.plural): k for k in self._kinds
        }
        self.groups: dict[str, dict[str, tuple[Kind, ...]]] = {
            g: {v: tuple(vs[v]) for v in sorted(vs, key=version_priority)}
            for g, vs in groups.items()
        }

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return self._kinds

    @property
    def stored(self) -> tuple[Kind, ...]:
        """The kinds whose objects are stored (not the reviews)."""
        return tuple(k for k in self._kinds if not isinstance(k, Review))

    def add(self, kind: Kind) -> bool:
        """Serve ``kind`` from now on (a custom resource); False if it is served already."""
        rt = kind.resource
        with self._lock:
            if self.find(rt.group, rt.version, rt.plural) is not None:
                return False
            self._kinds = (*self._kinds, kind)
            self._index()
            return True

    def plural_taken(self, plural: str, group: str) -> bool:
        """Whether a kind of another group is stored under ``plural`` (storage is keyed by
        plural: such a custom resource cannot be served)."""
        return any(k.resource.plural == plural and k.resource.group != group for k in self.stored)

    def find(self, group: str, version: str, plural: str) -> Kind | None:
        """The kind served at ``/apis/<group>/<version>/<plural>`` (group "" for ``/api/v1``)."""
        return self._by_path.get((group, version, plural))

    def named(self, alias: str) -> Kind | None:
        """The stored kind ``alias`` names: its plural, singular, Kind or a short name, any
        case (``deploy``, ``StatefulSet``, ``ns``...), optionally ``.<group>``-qualified
        (``scaledobjects.keda.sh``, ``events.events.k8s.io``); an unqualified name prefers the
        built-in kinds and the core group, as kubectl does."""
        lowered = alias.lower()
        for kind in self.stored:
            rt = kind.resource
            names = {n.lower() for n in (rt.plural, rt.singular, rt.kind, *rt.short_names)}
            if lowered in names or any(
                rt.group and lowered == f"{n}.{rt.group}".lower() for n in names
            ):
                return kind
        return None

    def by_kind(self, api_version: str, kind: str) -> Kind | None:
        """The stored kind of objects of this ``apiVersion`` and ``kind``."""
        for found in self.stored:
            rt = found.resource
            if rt.api_version == api_version and rt.kind == kind:
                return found
        return None

    def workload_kind(self, alias: str) -> Kind:
        """The kind with a ``scale`` subresource that ``alias`` names (see :meth:`named`);
        ValueError if none."""
        kind = self.named(alias)
        if kind is None or "scale" not in kind.handlers:
            raise ValueError(f"unknown workload kind {alias!r}")
        return kind
