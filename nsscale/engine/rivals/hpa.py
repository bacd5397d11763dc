"""HorizontalPodAutoscalers: an HPA sets its target's replica count between its min and max, so
a count nsscale sets above 0 lasts only until the HPA's next sync. (At 0 an HPA stops acting
on its target, and resumes when the target is scaled up.)

A scheduled down to N > 0 (downtime replicas) that lowers a workload below its HPA's
`minReplicas` lowers that floor to N in the same transaction, before the workload goes down
(the floor before nsscale's kept in `nsscale/original-min-replicas` on the HPA, written in the
same PUT); `up` puts it back after the workload is up, rollback and `recover` as any change.
`maxReplicas` is never written. At N = 0 the HPA is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from nsscale.engine.plan import Change, Operation, Plan, Skip
from nsscale.errors import ErrorKind, KubectlFailure
from nsscale.kube.cluster import list_objects
from nsscale.kube.objects import ORIGINAL_MIN_REPLICAS, State, Workload, WorkloadKey, parse_count

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")

RESOURCE = "horizontalpodautoscalers.autoscaling"


@dataclass(frozen=True)
class Autoscaler:
    hpa: Workload  # as read: its count is its minReplicas (Kind.HPA)

    @property
    def name(self) -> str:
        return self.hpa.name

    @property
    def min_replicas(self) -> int:
        return self.hpa.replicas

    @property
    def max_replicas(self) -> int:
        return int((self.hpa.manifest.get("spec") or {}).get("maxReplicas", self.min_replicas))

    def describe(self) -> str:
        return f"HPA {self.name} ({self.min_replicas}-{self.max_replicas})"


def read_autoscalers(
    kubectl: Kubectl, namespaces: Sequence[str] | None, *, putting_back: bool = False
) -> dict[WorkloadKey, Autoscaler]:
    """The HPA targeting each workload of the namespaces (None: of every namespace), in one
    kubectl call. One that cannot be read is a warning and no HPA: no floor of it is moved.
    `putting_back` (up, recover): not allowed to read them is said at info level (who may not
    read them lowered none either)."""
    try:
        items, one = list_objects(kubectl, RESOURCE, namespaces)
    except KubectlFailure as err:
        quiet = putting_back and err.kind is ErrorKind.FORBIDDEN
        level = logging.INFO if quiet else logging.WARNING
        log.log(level, "could not read the HorizontalPodAutoscalers (%s): %s", err.kind, err)
        return {}
    found: dict[WorkloadKey, Autoscaler] = {}
    for item in items:
        try:
            hpa = Workload.from_manifest(item, one)
        except ValueError as exc:
            log.debug("an HPA nsscale cannot read: %r", exc)
            continue
        if hpa.target is not None and (namespaces is None or hpa.namespace in namespaces):
            found[(hpa.namespace, *hpa.target)] = Autoscaler(hpa)
    return found


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


def with_autoscalers(plan: Plan, autoscalers: Mapping[WorkloadKey, Autoscaler]) -> Plan:
    """The plan with its HPAs' floors: a down that lowers a workload to N > 0 under its HPA's
    minReplicas lowers that to N first; `up` puts back, after the workloads, each floor nsscale
    lowered whose workload the up chose (restored or not)."""
    if plan.operation is Operation.DOWN:
        lowered: list[Change] = []
        for change in plan.changes:
            target = change.to_replicas
            found = autoscalers.get(change.workload.key)
            if not (change.workload.kind.scales and target and found):
                continue  # at 0 the HPA does not act on its workload
            hpa = found.hpa
            if hpa.replicas > target:
                # The first recorded floor is kept: a second down must not record N.
                recorded = hpa.state.original or str(hpa.replicas)
                lowered.append(Change(hpa, State(target, recorded)))
        return replace(plan, changes=(*lowered, *plan.changes))
    if plan.operation is Operation.UP:
        chosen = {c.workload.key for c in plan.changes} | {s.workload.key for s in plan.skips}
        restores: list[Change] = []
        skips: list[Skip] = []
        for key, found in autoscalers.items():
            hpa = found.hpa
            if key not in chosen or hpa.state.original is None:
                continue
            floor = parse_count(hpa.state.original)
            if floor is None or floor < 1:
                why = (
                    f"recorded minReplicas {hpa.state.original!r} is not a count of 1 or more: "
                    f"fix or remove the annotation {ORIGINAL_MIN_REPLICAS}"
                )
                skips.append(Skip(hpa, why, warn=True))
            else:  # back to its floor, the record removed
                if floor > found.max_replicas:  # the API refuses a floor above the ceiling
                    log.warning(
                        "%s: its recorded minReplicas %d is above its maxReplicas %d now "
                        "(changed since): put back to %d",
                        found.describe(),
                        floor,
                        found.max_replicas,
                        found.max_replicas,
                    )
                    floor = found.max_replicas
                restores.append(Change(hpa, State(floor)))
        return replace(plan, changes=(*plan.changes, *restores), skips=(*plan.skips, *skips))
    return plan


def autoscaled(autoscalers: Mapping[WorkloadKey, Autoscaler], namespace: str) -> list[Workload]:
    """The HPAs of a namespace, as objects a run may move (`recover` undoes what is recorded)."""
    return [a.hpa for a in autoscalers.values() if a.hpa.namespace == namespace]
