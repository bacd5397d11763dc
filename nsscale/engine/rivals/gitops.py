"""GitOps owners: the Argo CD Application or Flux Kustomization/HelmRelease that applied a
workload, and will put back the replica count from Git after nsscale changed it.

Found from the workload alone: Argo CD's tracking annotation (`argocd.argoproj.io/tracking-id`,
the Application's name before the first `:`), Flux's labels (`kustomize.toolkit.fluxcd.io/name`
and `/namespace`, or `helm.toolkit.fluxcd.io/name` and `/namespace`).

`--suspend-gitops` suspends each owner of a workload a run changes, in the same transaction and
before the workloads (see workload.py for what is written). One owner may apply several
namespaces: it is suspended for each (`nsscale/suspended-for`), and `up` resumes it only once
none of them is left: until then `up` just takes its namespace off the list. The owner's write
is one change, however many namespaces of the run it covers: those namespaces stand or fall
together (`bonds`), so that an undo never resumes an owner for a namespace still down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from nsscale.engine.plan import Change, Operation, Plan, Skip
from nsscale.errors import KubectlFailure, OwnersUnreadable
from nsscale.kube.cluster import KubectlCluster
from nsscale.kube.objects import GITOPS_KINDS, Kind, State, Workload, WorkloadKey

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")

ARGOCD_TRACKING = "argocd.argoproj.io/tracking-id"
_FLUX = (
    ("Kustomization", "kustomize.toolkit.fluxcd.io"),
    ("HelmRelease", "helm.toolkit.fluxcd.io"),
)
_KINDS = {
    "Application": Kind.APPLICATION,
    "Kustomization": Kind.KUSTOMIZATION,
    "HelmRelease": Kind.HELMRELEASE,
}
NOT_INSTALLED = "the server doesn't have a resource type"


@dataclass(frozen=True)
class GitOpsOwner:
    tool: str  # "Argo CD" or "Flux"
    kind: str  # Application, Kustomization or HelmRelease
    name: str
    namespace: str = ""  # Flux: from its label; Argo CD: where Applications live (unknown here)

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.tool} {self.kind} {where}{self.name}"

    def how_to_suspend(self) -> str:
        if self.tool == "Flux":
            command = "kustomization" if self.kind == "Kustomization" else "helmrelease"
            return f"flux suspend {command} {self.name} -n {self.namespace}, or --suspend-gitops"
        return f"turn off the automated sync of Application {self.name}, or --suspend-gitops"

    def key(self, argocd_namespace: str) -> WorkloadKey:
        """The owner object's key: an Application lives in Argo CD's namespace."""
        return (self.namespace or argocd_namespace, _KINDS[self.kind], self.name)


def gitops_owner(workload: Workload) -> GitOpsOwner | None:
    tracking = workload.annotations.get(ARGOCD_TRACKING)
    if tracking:
        return GitOpsOwner("Argo CD", "Application", tracking.split(":", 1)[0])
    for kind, group in _FLUX:
        name = workload.labels.get(f"{group}/name")
        namespace = workload.labels.get(f"{group}/namespace")
        if name and namespace:
            return GitOpsOwner("Flux", kind, name, namespace)
    return None


def owned(workloads: Iterable[Workload]) -> dict[GitOpsOwner, list[Workload]]:
    """The workloads of each GitOps owner among them."""
    found: dict[GitOpsOwner, list[Workload]] = {}
    for workload in workloads:
        if (owner := gitops_owner(workload)) is not None:
            found.setdefault(owner, []).append(workload)
    return found


def warn_of_gitops(workloads: Iterable[Workload]) -> None:
    """One warning per owner of the workloads about to change: it will undo the change."""
    for owner, managed in owned(workloads).items():
        names = ", ".join(w.ref for w in managed)
        log.warning(
            "%s manages %s and will put back the count from Git: suspend it first (%s)",
            owner.describe(),
            names,
            owner.how_to_suspend(),
        )


def owner_keys(refs: Iterable[str]) -> list[WorkloadKey]:
    """The GitOps owners among a snapshot's refs (`kind/namespace/name`), as keys."""
    keys = []
    for ref in refs:
        kind, _, rest = ref.partition("/")
        namespace, _, name = rest.partition("/")
        if kind in {k.value for k in GITOPS_KINDS} and name:
            keys.append((namespace, Kind(kind), name))
    return keys


def read_owners(
    kubectl: Kubectl, keys: Iterable[WorkloadKey], *, required: bool
) -> dict[WorkloadKey, Workload]:
    """The owner objects, by key: one read per kind, in the namespaces they live in. An owner
    that is gone, or a kind that is not installed, is a warning. Not allowed to read them: with
    `required` (--suspend-gitops) OwnersUnreadable, else (up resuming) said at info level (who
    may not read them did not suspend them either)."""
    wanted: dict[Kind, set[WorkloadKey]] = {}
    for key in keys:
        wanted.setdefault(key[1], set()).add(key)
    cluster = KubectlCluster(kubectl)
    found: dict[WorkloadKey, Workload] = {}
    for kind, of_kind in wanted.items():
        namespaces = sorted({ns for ns, _, _ in of_kind})
        try:
            objects = cluster.list_workloads(namespaces, kinds=[kind])
        except KubectlFailure as err:
            stderr = err.stderr  # "" for an output kubectl printed but nsscale cannot read
            what = f"{kind.resource} in {', '.join(namespaces)}"
            if NOT_INSTALLED in stderr:
                log.warning("%s is not installed: cannot suspend or resume %s", kind.resource, what)
                continue
            if required:
                raise OwnersUnreadable(
                    f"could not read the GitOps owners to suspend ({what}): {err}; nothing changed",
                    "allow reading them, or drop --suspend-gitops",
                ) from err
            log.info("could not read %s, so none is resumed: %s", what, err)
            continue
        for obj in objects:
            if obj.key in of_kind:
                found[obj.key] = obj
        for key in sorted(of_kind - found.keys()):
            log.warning("GitOps owner %s %s/%s not found: left alone", key[1].value, key[0], key[2])
    return found


def with_owners(
    plans: Mapping[str, Plan],
    owners: Mapping[WorkloadKey, Workload],
    argocd_namespace: str,
) -> tuple[dict[str, Plan], list[frozenset[str]]]:
    """The plans with the suspension (down, scale: before any workload) or the resume (up: after
    every workload) of each GitOps owner of their workloads, and the groups of namespaces that
    one owner's change covers (they stand or fall together)."""
    plans = dict(plans)
    bonds: list[frozenset[str]] = []
    operation = next(iter(plans.values())).operation if plans else Operation.DOWN
    for key, owner in owners.items():
        covered = [ns for ns, plan in plans.items() if _covers(plan, key, argocd_namespace)]
        if not covered:
            continue
        if operation is Operation.UP:
            where, change, skip = covered[-1], *_resume(owner, covered)
        else:
            where, change, skip = covered[0], *_suspend(owner, covered)
        plan = plans[where]
        if change is not None:
            scoped = replace(change, scope=where)
            first = operation is not Operation.UP
            changes = (scoped, *plan.changes) if first else (*plan.changes, scoped)
            plans[where] = replace(plan, changes=changes)
            if len(covered) > 1:
                bonds.append(frozenset(covered))
        if skip is not None:
            plans[where] = replace(plans[where], skips=(*plans[where].skips, skip))
    return plans, bonds


def _covers(plan: Plan, key: WorkloadKey, argocd_namespace: str) -> bool:
    """Whether the owner applies a workload the plan changes (down, scale), or one of the
    namespace (up: the owner was suspended for the namespace, not for a workload)."""
    if plan.operation is Operation.UP:
        workloads = [c.workload for c in plan.changes] + [s.workload for s in plan.skips]
    else:
        workloads = [c.workload for c in plan.changes if c.workload.kind.scales]
    return any(
        (owner := gitops_owner(w)) is not None and owner.key(argocd_namespace) == key
        for w in workloads
    )


def _suspend(owner: Workload, covered: Sequence[str]) -> tuple[Change | None, Skip | None]:
    held = _holders(owner)
    if owner.replicas == 0 and owner.state.holders is None:
        if owner.kind is Kind.APPLICATION:
            return None, Skip(owner, "no automated sync: nothing to suspend")
        return None, Skip(owner, "already suspended, not by nsscale: left alone")
    if owner.replicas == 0 and set(covered) <= held:
        return None, Skip(owner, f"already suspended for {', '.join(sorted(held))}")
    original = owner.state.original if owner.replicas == 0 else _what_is_there(owner)
    holders = ",".join(sorted(held | set(covered)))
    return Change(owner, State(0, original, holders=holders)), None


def _resume(owner: Workload, covered: Sequence[str]) -> tuple[Change | None, Skip | None]:
    held = _holders(owner)
    if owner.state.holders is None or not held & set(covered):
        return None, None  # not suspended by nsscale for these namespaces
    left = held - set(covered)
    if left:
        still = ",".join(sorted(left))
        change = Change(owner, State(0, owner.state.original, holders=still))
        log.info("%s stays suspended: %s still down", owner.ref, ", ".join(sorted(left)))
        return change, None
    return Change(owner, State(1)), None


def _holders(owner: Workload) -> set[str]:
    return {ns for ns in (owner.state.holders or "").split(",") if ns}


def _what_is_there(owner: Workload) -> str:
    """What a suspension replaces, as recorded: Argo CD's automated sync as JSON; Flux's
    `spec.suspend` as `true`, `false` or `none` (absent)."""
    spec = owner.manifest.get("spec") or {}
    if owner.kind is Kind.APPLICATION:
        automated = (spec.get("syncPolicy") or {}).get("automated")
        return json.dumps(automated, separators=(",", ":"), sort_keys=True)
    suspend = spec.get("suspend")
    return "none" if suspend is None else json.dumps(bool(suspend))
