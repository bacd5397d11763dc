"""The fleet as the web page shows it: `GET /api/namespaces` (every namespace the caller may
see, its state, schedule, decision, next change, week strip, hold and last run) and
`GET /api/namespaces/<ns>/history` (its recorded runs).

One read for the whole fleet, however many namespaces: the Namespaces and each kind of workload
side by side, the lists passed through as the server sends them (`get --raw`, as reconcile's
decision reads): never a kubectl per namespace. Then, per namespace, the decision reconcile
would make now (schedule/decide.py, with the server's Policy) and the schedule's next change and
week (schedule/view.py), all pure.

Which namespaces: never the cluster's own (SYSTEM); of the others, those the caller may see
(Authority.visible: a token's globs, or RBAC's `list namespaces`, else `get` of each). A
protected namespace (`nsscale/protected: "true"`) is shown, `protected: true`, with action
`skipped`: nsscale never scales it, and the page offers no button for it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from nsscale.defaults import DEFAULT_RETRIES
from nsscale.engine.plan import Selection
from nsscale.engine.reads import MOVED_KINDS
from nsscale.engine.status import namespace_state
from nsscale.errors import AuditError, NsscaleError
from nsscale.kube.cluster import (
    ClusterIdentity,
    KubectlCluster,
    cluster_id,
    read_workloads,
    scale_resource_kinds,
    side_by_side,
)
from nsscale.kube.kinds import Kind
from nsscale.kube.objects import LAST_RUN, SYSTEM, Namespace, Workload
from nsscale.kube.retry import RetryPolicy
from nsscale.kube.review import cluster_name
from nsscale.schedule.decide import (
    Action,
    Decision,
    Policy,
    pause_until,
    ruling_schedule,
)
from nsscale.schedule.grammar import time_zone
from nsscale.schedule.rules import Rules
from nsscale.schedule.view import next_change, week
from nsscale.schedule.windows import Schedule, Window
from nsscale.serve.answers import Answer, NotFound, ServerFailed, rfc3339
from nsscale.serve.auth import Caller
from nsscale.serve.options import LoopOptions
from nsscale.serve.redact import redacted
from nsscale.serve.service import Service, status_reads

log = logging.getLogger("nsscale")

HISTORY_LIMIT = 50  # runs in a namespace's history answer
# An optional kind (Argo Rollouts) found not installed is not read again for this long: a read
# of it is a kubectl process, and most clusters have none.
ABSENT_FOR_S = 60.0
# Of an audit record, what names the server rather than the run: its host, its OS account and
# its own Kubernetes identity (a served run's caller is `caller`), and the sink's keys.
SERVER_KEYS = ("pk", "sk", "host", "user", "kubectl_user", "kubectl_groups")


@dataclass(frozen=True)
class FleetRead:
    namespaces: Mapping[str, Namespace]
    workloads: Mapping[str, Sequence[Workload]]


class Fleet:
    """The fleet endpoints of one server (its Service: kubectl, authority, audit, policy),
    deciding as its reconcile loop would (`loop`: its rules and selection, when it has one)."""

    def __init__(self, service: Service, loop: LoopOptions | None = None) -> None:
        self.service = service
        self.rules = loop.rules if loop is not None else Rules()
        self.selection = loop.run.selection if loop is not None else Selection()
        self._kinds: tuple[Kind, ...] | None = None  # read once: the CRDs of --scale-resource
        self._absent: dict[Kind, float] = {}  # optional kinds not installed, until when
        self._cluster: str | None = None  # the audit's name of the cluster
        self._lock = threading.Lock()

    def namespaces(self, caller: Caller, at: datetime | None = None) -> Answer:
        """200 with every namespace the caller may see, as it is at `at` (now)."""
        at = at or datetime.now(UTC)
        [reading] = side_by_side(lambda _: self._read(), [None])
        # meanwhile, whether the caller may see every namespace (--kubernetes-auth: a review,
        # then kept): asked side by side with the read, not after it
        self.service.authority.visible(caller, ())
        found = reading.result()
        names = sorted(name for name in found.namespaces if name not in SYSTEM)
        shown = self.service.authority.visible(caller, names)
        policy, selection = self.service.policy, replace(self.selection, at=at)
        entries = [
            namespace_entry(
                found.namespaces[name],
                found.workloads.get(name, ()),
                policy,
                at,
                self.rules,
                selection,
            )
            for name in shown
        ]
        body = {"success": True, "at": rfc3339(at), "namespaces": entries}
        return Answer(200, redacted(body))

    def history(self, caller: Caller, namespace: str) -> Answer:
        """200 with the namespace's runs, newest first (at most HISTORY_LIMIT), from the audit
        the server reads (DynamoDB when it has a table, else its file) and its Namespace's
        last-run annotation; the same rights as its status."""
        service = self.service
        service.check(caller, namespace)
        service.authority.authorize(caller, status_reads(namespace))
        failed = f"Failed to read the history of namespace {namespace}"
        try:
            found = KubectlCluster(service.kubectl).namespaces([namespace])
        except NsscaleError as err:
            log.error("%s: %s", failed, err)
            raise ServerFailed(failed, error=["its Namespace could not be read"]) from None
        if namespace not in found:
            raise NotFound(f'namespace "{namespace}" not found')
        last = last_run(found[namespace])
        sink = service.auditor.main
        note = None
        try:
            runs = sink.history(self.cluster(), namespace, None, HISTORY_LIMIT)
        except AuditError as err:
            log.error("%s: %s", failed, err)
            runs, note = [], "the audit could not be read now: only the last run is shown"
        shown = [_run(r) for r in runs]
        if last is not None and all(r.get("run_id") != last.get("run_id") for r in shown):
            # made elsewhere (another replica, the CronJob) or before the audit's memory
            shown = sorted([last | {"from": LAST_RUN}, *shown], key=_when, reverse=True)
            note = note or f"the last run is from the Namespace's {LAST_RUN}, not this audit"
        body = {
            "success": True,
            "namespace": namespace,
            "source": "file" if len(service.auditor.sinks) == 1 else "dynamodb",
            "note": note,
            "runs": shown[:HISTORY_LIMIT],
        }
        return Answer(200, redacted(body))

    def cluster(self) -> ClusterIdentity:
        """The cluster as the audit names it: its name, and its id (each read once): the
        history of this cluster's namespace, not another's of the same name."""
        if self._cluster is None:
            self._cluster = cluster_name(self.service.kubectl)
        return ClusterIdentity(self._cluster, cluster_id(self.service.kubectl))

    def _read(self) -> FleetRead:
        """Every Namespace and every workload, side by side; 500 when they cannot be read."""
        kubectl = self.service.kubectl
        retry = RetryPolicy(DEFAULT_RETRIES)
        cluster = KubectlCluster(kubectl, raw_reads=True)
        failed = "Failed to read the namespaces"
        try:
            kinds = self._workload_kinds()
            [namespaces] = side_by_side(
                lambda _: retry.call(cluster.every_namespace, "reading the namespaces"),
                [None],
            )
            workloads = read_workloads(cluster, None, retry, None, kinds)
            found = namespaces.result()
            self._note_absent(cluster.absent)
        except NsscaleError as err:
            log.error("%s: %s", failed, err)
            raise ServerFailed(failed, error=["the namespaces could not be read"]) from None
        by_namespace: dict[str, list[Workload]] = {}
        for w in workloads:
            by_namespace.setdefault(w.namespace, []).append(w)
        return FleetRead(found, by_namespace)

    def _workload_kinds(self) -> tuple[Kind, ...]:
        """The kinds a fleet read reads: those moved, less the optional ones not installed a
        moment ago."""
        with self._lock:
            if self._kinds is None:
                scale = self.service.scale_resources
                custom = scale_resource_kinds(self.service.kubectl, scale) if scale else ()
                self._kinds = tuple(dict.fromkeys((*MOVED_KINDS, *custom)))
            now = time.monotonic()
            return tuple(k for k in self._kinds if self._absent.get(k, 0.0) <= now)

    def _note_absent(self, kinds: set[Kind]) -> None:
        with self._lock:
            until = time.monotonic() + ABSENT_FOR_S
            self._absent.update(dict.fromkeys(kinds, until))


def namespace_entry(
    namespace: Namespace,
    workloads: Sequence[Workload],
    policy: Policy,
    at: datetime,
    rules: Rules | None = None,
    selection: Selection | None = None,
) -> dict[str, Any]:
    """One namespace of GET /api/namespaces (docs/contract.md): what reconcile would decide
    with `policy`, `rules` and `selection` (a loop's, else the defaults)."""
    scaling = [w for w in workloads if w.kind.scales]
    found = ruling_schedule(namespace, policy, loud=False)
    schedule, source, is_uptime = (None, None, True) if isinstance(found, Decision) else found
    selection = selection or Selection(at=at)
    decision = _decision(namespace, workloads, policy, at, rules or Rules(), selection)
    zone = _zone(schedule, policy)
    paused = pause_until(namespace, loud=False)
    changes = next_change(schedule, at) if schedule is not None else None
    return {
        "namespace": namespace.name,
        "state": namespace_state(workloads),
        "workloads": {"up": sum(1 for w in scaling if w.replicas > 0), "total": len(scaling)},
        "schedule": schedule.describe() if schedule is not None else decision.schedule,
        "schedule_kind": None if schedule is None else ("uptime" if is_uptime else "downtime"),
        "schedule_source": source or decision.source,
        "timezone": zone.key if schedule is not None else None,
        "desired": _desired(schedule, is_uptime, at),
        "action": decision.action.value,
        "reason": decision.reason,
        "next_change": rfc3339(changes.astimezone(zone)) if changes is not None else None,
        "pause_until": rfc3339(paused) if paused is not None and at < paused else None,
        "protected": namespace.protection is not None,
        "week": week(schedule, at, zone, is_uptime).to_dict() if schedule is not None else None,
        "last_run": last_run(namespace),
    }


def _decision(
    namespace: Namespace,
    workloads: Sequence[Workload],
    policy: Policy,
    at: datetime,
    rules: Rules,
    selection: Selection,
) -> Decision:
    """What reconcile would do now; a protected namespace is skipped, as reconcile skips it."""
    name = namespace.name
    if (why := namespace.protection) is not None:
        return Decision(name, Action.SKIPPED, f"protected ({why}): nsscale never scales it")
    decision, _ = rules.decide(namespace, workloads, policy, at, selection, loud=False)
    return decision


def _desired(schedule: Schedule | None, is_uptime: bool, at: datetime) -> str | None:
    """What the schedule wants now (a hold or an exclusion aside)."""
    if schedule is None:
        return None
    return "up" if schedule.contains(at) == is_uptime else "down"


def _zone(schedule: Schedule | None, policy: Policy) -> ZoneInfo:
    """The zone a schedule is shown in: its first window's, else the policy's."""
    for part in schedule.windows if schedule is not None else ():
        if isinstance(part, Window):
            return part.zone
    return time_zone(policy.timezone)


def last_run(namespace: Namespace) -> dict[str, Any] | None:
    """The Namespace's nsscale/last-run, parsed; None when absent or not a JSON object."""
    text = namespace.annotations.get(LAST_RUN)
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        log.debug("namespace %s: %s is not a JSON object: not shown", namespace.name, LAST_RUN)
        return None
    return found


def _run(record: Mapping[str, Any]) -> dict[str, Any]:
    """A run of the audit as the history answer shows it: `by` who asked, nothing of the
    server that ran it."""
    by = record.get("caller") or record.get("kubectl_user") or record.get("user") or None
    return {k: v for k, v in record.items() if k not in SERVER_KEYS} | {"by": by}


def _when(run: Mapping[str, Any]) -> str:
    """A run's time, as text that sorts in time order (the audit's `time`, the annotation's
    `at`)."""
    moment = run.get("time") or run.get("at") or ""
    try:
        return rfc3339(datetime.fromisoformat(str(moment)).astimezone(UTC))
    except ValueError:
        return ""
