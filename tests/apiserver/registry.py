"""The served kinds, in the order discovery lists them. A new kind is a module under
tests/apiserver/kinds/ (see kinds/base.py) and one line in ``KINDS``.

The API groups and versions served are those of the kinds and of their subresources
(``autoscaling/v1``, for the Scale of Deployments and StatefulSets), in that order.
"""

from __future__ import annotations

from tests.apiserver.kinds.base import Kind, Review
from tests.apiserver.kinds.deployments import Deployments
from tests.apiserver.kinds.leases import Leases
from tests.apiserver.kinds.namespaces import Namespaces
from tests.apiserver.kinds.reviews import SelfSubjectAccessReviews, SelfSubjectReviews
from tests.apiserver.kinds.statefulsets import StatefulSets

__all__ = ["GROUPS", "KINDS", "STORED", "find", "named", "workload_kind"]

KINDS: tuple[Kind, ...] = (
    Namespaces(),
    Deployments(),
    StatefulSets(),
    Leases(),
    SelfSubjectReviews(),
    SelfSubjectAccessReviews(),
)

# the kinds whose objects are stored (not the reviews)
STORED: tuple[Kind, ...] = tuple(k for k in KINDS if not isinstance(k, Review))


def _groups() -> dict[str, dict[str, tuple[Kind, ...]]]:
    groups: dict[str, dict[str, list[Kind]]] = {}
    for kind in KINDS:
        rt = kind.resource
        groups.setdefault(rt.group, {}).setdefault(rt.version, []).append(kind)
        for sub in rt.subresources:
            groups.setdefault(sub.group, {}).setdefault(sub.version, [])
    return {g: {v: tuple(ks) for v, ks in vs.items()} for g, vs in groups.items()}


# group -> version -> kinds, in the order discovery lists them
GROUPS = _groups()
_BY_PATH = {(k.resource.group, k.resource.version, k.resource.plural): k for k in KINDS}


def find(group: str, version: str, plural: str) -> Kind | None:
    """The kind served at ``/apis/<group>/<version>/<plural>`` (group "" for ``/api/v1``)."""
    return _BY_PATH.get((group, version, plural))


def named(alias: str) -> Kind | None:
    """The stored kind ``alias`` names: its plural, singular, Kind or a short name, any case
    (``deploy``, ``StatefulSet``, ``ns``...)."""
    for kind in STORED:
        rt = kind.resource
        if alias.lower() in (n.lower() for n in (rt.plural, rt.singular, rt.kind, *rt.short_names)):
            return kind
    return None


def workload_kind(alias: str) -> Kind:
    """The kind with a ``scale`` subresource that ``alias`` names (see :func:`named`);
    ValueError if none."""
    kind = named(alias)
    if kind is None or "scale" not in kind.handlers:
        raise ValueError(f"unknown workload kind {alias!r}")
    return kind
