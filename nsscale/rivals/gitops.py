"""GitOps owners: the Argo CD Application or Flux Kustomization/HelmRelease that applied a
workload, and will put back the replica count from Git after nsscale changed it.

Found from the workload alone: Argo CD's tracking annotation (`argocd.argoproj.io/tracking-id`,
the Application's name before the first `:`), Flux's labels (`kustomize.toolkit.fluxcd.io/name`
and `/namespace`, or `helm.toolkit.fluxcd.io/name` and `/namespace`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from nsscale.workload import Workload

log = logging.getLogger("nsscale")

ARGOCD_TRACKING = "argocd.argoproj.io/tracking-id"
_FLUX = (
    ("Kustomization", "kustomize.toolkit.fluxcd.io"),
    ("HelmRelease", "helm.toolkit.fluxcd.io"),
)


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
            return f"flux suspend {command} {self.name} -n {self.namespace}"
        return f"turn off the automated sync of Application {self.name}"


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


def warn_of_gitops(workloads: Iterable[Workload]) -> None:
    """One warning per owner of the workloads about to change: it will undo the change."""
    owned: dict[GitOpsOwner, list[Workload]] = {}
    for workload in workloads:
        if (owner := gitops_owner(workload)) is not None:
            owned.setdefault(owner, []).append(workload)
    for owner, managed in owned.items():
        names = ", ".join(w.ref for w in managed)
        log.warning(
            "%s manages %s and will put back the count from Git: suspend it first (%s)",
            owner.describe(),
            names,
            owner.how_to_suspend(),
        )
