"""The kinds nsscale moves, one entry each in KINDS: where the API serves it, where its replica
count is, when it is ready, what kubectl and RBAC call it, and how a person reads its change.
A new kind is a member of `Kind` and its entry; the reads, the writes, the wait, the rights
asked for and the tables read the entry (nsscale/kube/objects.py, engine/, commands/tables.py).

A kind with a replica path is moved by that count of pods. One without is a switch nsscale turns
off and on, as the count 0 or 1 (a CronJob suspended, a KEDA ScaledObject paused, a GitOps owner
suspended): how each reads and writes its switch is its own code, in objects.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    DEPLOYMENT = "deployment"
    STATEFULSET = "statefulset"
    CRONJOB = "cronjob"
    SCALEDOBJECT = "scaledobject"
    KUSTOMIZATION = "kustomization"
    HELMRELEASE = "helmrelease"
    APPLICATION = "application"

    @classmethod
    def from_api(cls, api_kind: str) -> Kind:
        return cls(api_kind.lower())

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
    def gitops(self) -> bool:
        """A GitOps owner: it lives apart from the namespaces it applies."""
        return self.info.gitops


@dataclass(frozen=True)
class KindInfo:
    name: str  # the API's `kind`, and what the tables call it
    api_version: str  # the group/version nsscale reads and writes it in
    plural: str  # its resource name
    short_names: tuple[str, ...]  # kubectl's
    # where its replica count is (the API's default is 1); None: a switch (off 0, on 1)
    replicas: tuple[str, ...] | None = None
    # the status counts that must all equal the replicas (`kubectl rollout status`'s rule), once
    # status.observedGeneration has caught up with metadata.generation
    ready: tuple[str, ...] = ()
    custom: bool = False  # a custom resource: `kubectl get` names it with its group
    excludable: bool = False  # read with the namespace's workloads: `--exclude KIND/NAME` names it
    gitops: bool = False  # a GitOps owner, in its own namespace (--suspend-gitops)
    switch: tuple[str, str] = ("", "")  # a switch: what off and on read as in a table
    switched: tuple[str, str] = ("", "")  # and what turning it off and on reads as


_SPEC_REPLICAS = ("spec", "replicas")
_SUSPENDED = ("suspended", "resumed")

KINDS = {
    Kind.DEPLOYMENT: KindInfo(
        "Deployment",
        "apps/v1",
        "deployments",
        ("deploy",),
        replicas=_SPEC_REPLICAS,
        ready=("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"),
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
}

WORKLOAD_KINDS = tuple(k for k in Kind if k.scales)  # moved by a count of pods
EXCLUDABLE_KINDS = tuple(k for k in Kind if k.info.excludable)
GITOPS_KINDS = tuple(k for k in Kind if k.gitops)
