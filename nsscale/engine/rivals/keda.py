"""KEDA: a ScaledObject scales its target between its own bounds, and scales a workload nsscale
brought to 0 back up. In the same transaction as the workload, nsscale pauses it at 0
(`autoscaling.keda.sh/paused-replicas: "0"`, what was there kept in
`nsscale/original-paused-replicas`), before the workload goes down; `up` resumes it after the
workload is back, putting back exactly what was there.

ScaledObjects are read in a call of their own: without KEDA installed the type does not exist,
and that costs that one read and nothing else (no error); not allowed to read them is a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from nsscale.engine.plan import Change, Operation, Plan, Selection, Skip
from nsscale.errors import KubectlError, KubectlOutputError
from nsscale.kube.cluster import list_objects
from nsscale.kube.objects import PAUSED, Kind, State, Workload

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")

NOT_INSTALLED = "the server doesn't have a resource type"


def read_scaledobjects(kubectl: Kubectl, namespaces: Sequence[str] | None) -> list[Workload]:
    """The ScaledObjects of the namespaces (None: of every namespace), in one kubectl call;
    none when KEDA is not installed or they may not be read (a warning then)."""
    try:
        items, one = list_objects(kubectl, Kind.SCALEDOBJECT.listed, namespaces)
    except KubectlError as err:
        if NOT_INSTALLED in err.stderr:
            log.debug("KEDA is not installed: no ScaledObject to pause")
            return []
        log.warning(
            "could not read KEDA's ScaledObjects (%s), so none is paused: %s", err.kind, err
        )
        return []
    except KubectlOutputError as err:
        log.warning("could not read KEDA's ScaledObjects, so none is paused: %s", err)
        return []
    found = []
    for item in items:
        try:
            found.append(Workload.from_manifest(item, one))
        except ValueError as exc:
            log.warning("a ScaledObject nsscale cannot read, left alone: %s", exc)
    return [w for w in found if namespaces is None or w.namespace in namespaces]


def with_scaledobjects(
    plan: Plan, scaledobjects: Sequence[Workload], selection: Selection | None = None
) -> Plan:
    """The plan with its ScaledObjects' pauses (before the workloads go down) or resumes (after
    they are back up); one the selection excludes (`--exclude so/NAME`) is left alone."""
    if selection is not None:
        excluded = [skip for so in scaledobjects if (skip := selection.excluded(so)) is not None]
        plan = replace(plan, skips=(*plan.skips, *excluded))
        scaledobjects = [so for so in scaledobjects if selection.excluded(so) is None]
    if plan.operation is Operation.DOWN:
        down = {c.workload.key[1:] for c in plan.changes if c.to_replicas == 0}
        pauses: list[Change] = []
        skips: list[Skip] = []
        for so in scaledobjects:
            if so.target is None or so.target not in down:
                continue
            if so.replicas == 0:
                skips.append(Skip(so, "already paused at 0"))
            else:
                recorded = so.annotations.get(PAUSED, "none")
                pauses.append(Change(so, State(0, recorded)))
        return replace(plan, changes=(*pauses, *plan.changes), skips=(*plan.skips, *skips))
    if plan.operation is Operation.UP:
        chosen = {c.workload.key[1:] for c in plan.changes} | {
            s.workload.key[1:] for s in plan.skips
        }
        resumes = [
            Change(so, State(1))
            for so in scaledobjects
            if so.state.original is not None and so.target in chosen
        ]
        return replace(plan, changes=(*plan.changes, *resumes))
    return plan
