"""Waiting until it is so: after the writes, poll until every changed workload is ready at its
target, as `kubectl rollout status` judges it, or the time is up (nothing is undone then).

A workload is ready when its controller has seen its latest spec (`status.observedGeneration`
at least `metadata.generation`) and the status counts of its kind's rule (kube/kinds.py) all
equal its replicas: for a Deployment `replicas`, `updatedReplicas`, `readyReplicas` and
`availableReplicas`; for a StatefulSet `replicas` and `readyReplicas`; for an Argo Rollout as for
a Deployment; for a custom resource of `--scale-resource` its CRD's `statusReplicasPath` (its
status need not report observedGeneration). An absent field counts 0.
One read per poll covers every namespace waited on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nsscale.errors import NsscaleError
from nsscale.kube.objects import Workload, WorkloadKey

log = logging.getLogger("nsscale")

POLL_S = 2.0


def is_ready(workload: Workload) -> bool:
    """At its target, as its controller reports."""
    status = workload.manifest.get("status") or {}
    info = workload.kind.info  # the kind's rule (kube/kinds.py)
    generation = int(workload.manifest.get("metadata", {}).get("generation") or 0)
    if info.observed and _generation(status.get("observedGeneration")) < generation:
        return False
    return all(_count(status, field) == workload.replicas for field in info.ready)


def _generation(observed: object) -> int:
    """status.observedGeneration: a number (an Argo Rollout's is a decimal string)."""
    if isinstance(observed, int):
        return observed
    return int(observed) if isinstance(observed, str) and observed.isdecimal() else 0


def _count(status: Mapping[str, Any], field: str) -> int:
    """The status count at a dotted path (absent: 0)."""
    node: Any = status
    for key in field.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, int) and not isinstance(node, bool) else 0


@dataclass(frozen=True)
class NotReady:
    workload: Workload  # as last read
    wanted: int

    @property
    def ready(self) -> int:
        return self.workload.ready


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    timeout_s: float
    counts: Mapping[str, tuple[int, int]]  # namespace -> (ready, waited on)

    @property
    def ready(self) -> int:
        return sum(ready for ready, _ in self.counts.values())

    @property
    def total(self) -> int:
        return sum(total for _, total in self.counts.values())


@dataclass(frozen=True)
class Waited:
    not_ready: tuple[NotReady, ...]
    stopped: str | None = None  # the signal's reason, when one cut the wait short


def wait_ready(
    read: Callable[[Sequence[str]], list[Workload]],
    wanted: Sequence[tuple[Workload, int]],
    timeout_s: float,
    on_poll: Callable[[Progress], None],
    stop_reason: Callable[[], str | None],
    *,
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited:
    """Poll `read` until every workload of `wanted` (as written, with its target count) is
    ready at its target, `timeout_s` has passed, or `stop_reason` says a signal came."""
    targets = {w.key: target for w, target in wanted}
    last = {w.key: w for w, _ in wanted}  # as written, until read
    namespaces = list(dict.fromkeys(w.namespace for w, _ in wanted))
    started = clock()
    while True:
        try:
            last.update((w.key, w) for w in read(namespaces) if w.key in targets)
        except NsscaleError as err:  # one failed poll is not the end of the wait
            log.warning("could not read the workloads while waiting: %s", err)
        pending = tuple(
            NotReady(last[key], target)
            for key, target in targets.items()
            if not _at(last[key], target)
        )
        elapsed = clock() - started
        on_poll(Progress(elapsed, timeout_s, _counts(targets, last)))
        if not pending:
            return Waited(())
        if elapsed >= timeout_s:
            return Waited(pending)
        deadline = min(started + timeout_s, clock() + poll_s)
        while clock() < deadline:
            if (reason := stop_reason()) is not None:
                return Waited(pending, stopped=reason)
            sleep(min(0.1, max(deadline - clock(), 0)))


def _at(workload: Workload, target: int) -> bool:
    return workload.replicas == target and is_ready(workload)


def _counts(
    targets: Mapping[WorkloadKey, int], last: Mapping[WorkloadKey, Workload]
) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for key, target in targets.items():
        ready, total = counts.get(key[0], (0, 0))
        counts[key[0]] = (ready + _at(last[key], target), total + 1)
    return counts
