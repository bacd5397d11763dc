"""The kinds nsscale moves, one entry each in KINDS: where the API serves it, where its replica
count is, when it is ready, what kubectl and RBAC call it, and how a person reads its change.
A new kind is a constant of `Kind` and its entry (a custom resource named by
`--scale-resource`: an entry built at run time from its CustomResourceDefinition, `register`);
the reads, the writes, the wait, the rights asked for and the tables read the entry
(nsscale/kube/objects.py, engine/, commands/tables.py).

A kind with a replica path is moved by that count of pods. One without is a switch nsscale turns
off and on, as the count 0 or 1 (a CronJob suspended, a KEDA ScaledObject paused, a GitOps owner
suspended): how each reads and writes its switch is its own code, in objects.py. A kind with a
floor (an HPA's minReplicas) is moved by that count, which is not one of pods.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nsscale.errors import NoScaleResource


class _Registry(type):
    """Iterating `Kind` gives every kind known, the built-in ones first."""

    def __iter__(cls) -> Iterator[Kind]:
        return iter(list(KINDS))


class Kind(str, metaclass=_Registry):
    """A kind nsscale moves: its name (the API's kind, lowercased), one instance per name,
    compared by identity like an enum member. The built-in kinds are the class's constants; a
    custom resource named by `--scale-resource` becomes one at run time (`register`)."""

    DEPLOYMENT: ClassVar[Kind]
    STATEFULSET: ClassVar[Kind]
    CRONJOB: ClassVar[Kind]
    SCALEDOBJECT: ClassVar[Kind]
    KUSTOMIZATION: ClassVar[Kind]
    HELMRELEASE: ClassVar[Kind]
    APPLICATION: ClassVar[Kind]
    ROLLOUT: ClassVar[Kind]
    HPA: ClassVar[Kind]

    def __new__(cls, value: str) -> Kind:
        try:
            return _NAMED[value]
        except KeyError:
            raise ValueError(f"{value!r} is not a kind nsscale moves") from None

    def __reduce__(self) -> tuple[type[Kind], tuple[str]]:
        return (Kind, (str(self),))

    def __repr__(self) -> str:
        return f"Kind({str(self)!r})"

    @classmethod
    def from_api(cls, api_kind: str) -> Kind:
        return cls(api_kind.lower())

    @property
    def value(self) -> str:
        """Its name, as the JSON's `type` says it."""
        return str.__str__(self)

    @property
    def info(self) -> KindInfo:
        return KINDS[self]

    @property
    def plural(self) -> str:
        return self.info.plural

    @property
    def resource(self) -> str:
        """The plural and group RBAC names it by."""
        return f"{self.plural}.{self.api_version.rpartition('/')[0]}"

    @property
    def api_version(self) -> str:
        """The group/version nsscale reads and writes it in."""
        return self.info.api_version

    @property
    def listed(self) -> str:
        """How `kubectl get` names it (a custom resource with its group, never ambiguous)."""
        return self.resource if self.info.custom else self.plural

    @property
    def scales(self) -> bool:
        """Moved by a replica count of pods (not a CronJob's or a ScaledObject's on/off)."""
        return self.info.replicas is not None

    @property
    def counted(self) -> bool:
        """Its state is a count a person reads as a number: of pods, or a floor on them."""
        return self.scales or self.info.floor is not None

    @property
    def gitops(self) -> bool:
        """A GitOps owner: it lives apart from the namespaces it applies."""
        return self.info.gitops


_NAMED: dict[str, Kind] = {}  # every Kind, by name: one instance each
_REGISTERING = threading.Lock()


def _named(value: str) -> Kind:
    kind = _NAMED[value] = str.__new__(Kind, value)
    return kind


@dataclass(frozen=True)
class KindInfo:
    name: str  # the API's `kind`, and what the tables call it
    api_version: str  # the group/version nsscale reads and writes it in
    plural: str  # its resource name
    short_names: tuple[str, ...]  # kubectl's
    # where its replica count is (the API's default is 1); None: a switch (off 0, on 1)
    replicas: tuple[str, ...] | None = None
    # the status counts (dotted paths under `status`) that must all equal the replicas
    # (`kubectl rollout status`'s rule), once status.observedGeneration has caught up with
    # metadata.generation (if `observed`: a custom resource's status need not report it)
    ready: tuple[str, ...] = ()
    ready_count: str = "readyReplicas"  # the status count a table shows as ready
    observed: bool = True
    # its CRD may be absent: read in a call of its own, nothing said when it is not installed,
    # a warning when it may not be read
    optional: bool = False
    custom: bool = False  # a custom resource: `kubectl get` names it with its group
    excludable: bool = False  # read with the namespace's workloads: `--exclude KIND/NAME` names it
    gitops: bool = False  # a GitOps owner, in its own namespace (--suspend-gitops)
    switch: tuple[str, str] = ("", "")  # a switch: what off and on read as in a table
    switched: tuple[str, str] = ("", "")  # and what turning it off and on reads as
    # a floor on another object's count (an HPA's spec.minReplicas): where it is; moved as a
    # count, never a count of pods (switched: what lowering and putting it back read as)
    floor: tuple[str, ...] | None = None


Kind.DEPLOYMENT = _named("deployment")
Kind.STATEFULSET = _named("statefulset")
Kind.CRONJOB = _named("cronjob")
Kind.SCALEDOBJECT = _named("scaledobject")
Kind.KUSTOMIZATION = _named("kustomization")
Kind.HELMRELEASE = _named("helmrelease")
Kind.APPLICATION = _named("application")
Kind.ROLLOUT = _named("rollout")
Kind.HPA = _named("horizontalpodautoscaler")

_SPEC_REPLICAS = ("spec", "replicas")
_POD_COUNTS = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
_SUSPENDED = ("suspended", "resumed")

KINDS = {
    Kind.DEPLOYMENT: KindInfo(
        "Deployment",
        "apps/v1",
        "deployments",
        ("deploy",),
        replicas=_SPEC_REPLICAS,
        ready=_POD_COUNTS,
        excludable=True,
    ),
    Kind.STATEFULSET: KindInfo(
        "StatefulSet",
        "apps/v1",
        "statefulsets",
        ("sts",),
        replicas=_SPEC_REPLICAS,
        ready=("replicas", "readyReplicas"),
        excludable=True,
    ),
    Kind.CRONJOB: KindInfo(
        "CronJob",
        "batch/v1",
        "cronjobs",
        ("cj",),
        excludable=True,
        switch=("suspended", "running"),
        switched=_SUSPENDED,
    ),
    Kind.SCALEDOBJECT: KindInfo(
        "ScaledObject",
        "keda.sh/v1alpha1",
        "scaledobjects",
        ("so",),
        custom=True,
        switch=("paused", "active"),
        switched=("paused", "resumed"),
    ),
    Kind.KUSTOMIZATION: KindInfo(
        "Kustomization",
        "kustomize.toolkit.fluxcd.io/v1",
        "kustomizations",
        ("ks",),
        custom=True,
        gitops=True,
        switch=("suspended", "syncing"),
        switched=_SUSPENDED,
    ),
    Kind.HELMRELEASE: KindInfo(
        "HelmRelease",
        "helm.toolkit.fluxcd.io/v2",
        "helmreleases",
        ("hr",),
        custom=True,
        gitops=True,
        switch=("suspended", "syncing"),
        switched=_SUSPENDED,
    ),
    Kind.APPLICATION: KindInfo(
        "Application",
        "argoproj.io/v1alpha1",
        "applications",
        ("app",),
        custom=True,
        gitops=True,
        switch=("suspended", "syncing"),
        switched=_SUSPENDED,
    ),
    Kind.ROLLOUT: KindInfo(
        "Rollout",
        "argoproj.io/v1alpha1",
        "rollouts",
        ("ro", "rollouts"),
        replicas=_SPEC_REPLICAS,
        ready=_POD_COUNTS,
        custom=True,
        excludable=True,
        optional=True,
    ),
    Kind.HPA: KindInfo(
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "horizontalpodautoscalers",
        ("hpa",),
        ready_count="currentReplicas",
        switched=("lowered", "restored"),
        floor=("spec", "minReplicas"),
    ),
}

# moved by a count of pods, always served (read in one call)
WORKLOAD_KINDS = tuple(k for k in Kind if k.scales and not k.info.optional)
# moved by a count of pods when their CRD is installed (each read in a call of its own)
OPTIONAL_WORKLOAD_KINDS = tuple(k for k in Kind if k.scales and k.info.optional)
EXCLUDABLE_KINDS = tuple(k for k in Kind if k.info.excludable)
GITOPS_KINDS = tuple(k for k in Kind if k.gitops)


def register(crd: Mapping[str, Any]) -> Kind:
    """The kind of a CustomResourceDefinition (as `kubectl get crd NAME -o json` prints it)
    that declares a scale subresource: an entry of KINDS from now on, its replica count at
    the definition's `specReplicasPath`, ready when its `statusReplicasPath` says so. The same
    definition registered again is the same kind. NoScaleResource (exit 2) if it declares none,
    cannot be read, or its kind's name is another's."""
    resource = str((crd.get("metadata") or {}).get("name", "?"))
    try:
        spec = crd["spec"]
        names = spec["names"]
        served = [v for v in spec["versions"] if v.get("served", True)]
        version = next((v for v in served if v.get("storage")), served[0])
        scale = (version.get("subresources") or {}).get("scale")
        if scale is None:
            raise NoScaleResource(resource, "its CustomResourceDefinition has no scale subresource")
        status_path = _path(scale.get("statusReplicasPath") or ".status.replicas")
        info = KindInfo(
            str(names["kind"]),
            f"{spec['group']}/{version['name']}",
            str(names["plural"]),
            tuple(str(n) for n in names.get("shortNames") or ()),
            replicas=_path(str(scale["specReplicasPath"])),
            ready=(".".join(status_path[1:]),) if status_path[:1] == ("status",) else (),
            ready_count=".".join(status_path[1:]),
            observed=False,
            custom=True,
            excludable=True,
            optional=True,
        )
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        why = f"not a CustomResourceDefinition nsscale can read ({exc})"
        raise NoScaleResource(resource, why) from exc
    with _REGISTERING:
        name = info.name.lower()
        known = _NAMED.get(name)
        if known is not None:
            if KINDS[known].api_version.rpartition("/")[0] != spec["group"]:
                why = f"its kind {info.name} is one nsscale moves already, in another group"
                raise NoScaleResource(resource, why)
            if known in _BUILT_IN:
                return known
        kind = known or _named(name)
        KINDS[kind] = info
        return kind


def _path(json_path: str) -> tuple[str, ...]:
    """`.spec.replicas` as ("spec", "replicas") (a CRD's paths are plain dotted paths)."""
    parts = tuple(json_path.removeprefix(".").split("."))
    if not all(parts):
        raise ValueError(f"replica path {json_path!r}")
    return parts


_BUILT_IN = frozenset(KINDS)
