"""HorizontalPodAutoscalers: an HPA sets its target's replica count between its min and max, so
a count nsscale sets above 0 lasts only until the HPA's next sync. (At 0 an HPA stops acting
on its target, and resumes when the target is scaled up.)"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nsscale.engine.plan import Change
from nsscale.errors import KubectlFailure
from nsscale.kube.cluster import list_objects
from nsscale.kube.objects import Kind, Workload, WorkloadKey

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")

RESOURCE = "horizontalpodautoscalers.autoscaling"


@dataclass(frozen=True)
class Autoscaler:
    name: str
    min_replicas: int
    max_replicas: int

    def describe(self) -> str:
        return f"HPA {self.name} ({self.min_replicas}-{self.max_replicas})"


def read_autoscalers(
    kubectl: Kubectl, namespaces: Sequence[str] | None
) -> dict[WorkloadKey, Autoscaler]:
    """The HPA targeting each workload of the namespaces (None: of every namespace), in one
    kubectl call. One that cannot be read is a warning and no HPA: it only informs."""
    try:
        items, one = list_objects(kubectl, RESOURCE, namespaces)
    except KubectlFailure as err:
        log.warning("could not read the HorizontalPodAutoscalers (%s): %s", err.kind, err)
        return {}
    found: dict[WorkloadKey, Autoscaler] = {}
    for item in items:
        try:
            key, autoscaler = _read(item, one)
        except (KeyError, TypeError, ValueError) as exc:
            log.debug("an HPA nsscale cannot read: %r", exc)
            continue
        if namespaces is None or key[0] in namespaces:
            found[key] = autoscaler
    return found


def _read(item: Mapping[str, Any], namespace: str) -> tuple[WorkloadKey, Autoscaler]:
    meta, spec = item["metadata"], item["spec"]
    target = spec["scaleTargetRef"]
    kind = Kind.from_api(str(target["kind"]))
    key = (str(meta.get("namespace") or namespace), kind, str(target["name"]))
    return key, Autoscaler(
        str(meta["name"]), int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
    )


def warn_of_autoscalers(
    workloads: Iterable[Workload], autoscalers: Mapping[WorkloadKey, Autoscaler], replicas: int
) -> None:
    """`scale --replicas N` (N > 0): the HPA of a workload will set its own count."""
    for workload in workloads:
        if (hpa := autoscalers.get(workload.key)) is not None:
            log.warning(
                "%s: %s will override --replicas %d with a count of its own",
                workload.ref,
                hpa.describe(),
                replicas,
            )


def warn_of_floors(
    changes: Iterable[Change], autoscalers: Mapping[WorkloadKey, Autoscaler]
) -> None:
    """A scheduled down to N > 0 (downtime replicas): an HPA whose minReplicas is above N raises
    the workload back at its next sync. nsscale does not move an HPA's minReplicas yet: said."""
    for change in changes:
        hpa = autoscalers.get(change.workload.key)
        if hpa is not None and change.to_replicas and hpa.min_replicas > change.to_replicas:
            log.warning(
                "%s: %s will raise it back above the downtime replicas %d (its minReplicas"
                " is not lowered by nsscale)",
                change.workload.ref,
                hpa.describe(),
                change.to_replicas,
            )
