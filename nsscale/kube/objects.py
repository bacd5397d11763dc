"""The objects nsscale scales, as read from the cluster, and the slice of them it changes.

Deployments and StatefulSets are moved by their replica count. A CronJob (`down
--suspend-cronjobs`, and `up` after it) is moved the same way, as a workload of at most one
replica: 1 while it runs on its schedule, 0 while suspended (`spec.suspend: true`); its count
before nsscale suspended it is recorded as `nsscale/original-suspend` (`false` or `true`).
A KEDA ScaledObject whose target a run scales to 0 is moved alike: 1 while KEDA scales its
target, 0 while paused at 0 (`autoscaling.keda.sh/paused-replicas: "0"`); what the annotation
was before is recorded in `nsscale/original-paused-replicas` (`none` when it was absent).
A GitOps owner (`--suspend-gitops`: a Flux Kustomization or HelmRelease, an Argo CD Application)
is 1 while it syncs and 0 while suspended (Flux: `spec.suspend: true`; Argo CD: no
`spec.syncPolicy.automated`); what was there is recorded in `nsscale/original-suspend` (Flux:
`true`, `false` or `none`) or `nsscale/original-automated` (Argo CD, as JSON), and the namespaces
it is suspended for in `nsscale/suspended-for` (the State's `holders`).
A HorizontalPodAutoscaler whose target a scheduled down lowers below its floor is moved by that
floor, `spec.minReplicas`; the floor before nsscale's is recorded in
`nsscale/original-min-replicas` (its `maxReplicas` is never written).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Re-exported: the kinds are where their objects' users have always found them.
from nsscale.kube.kinds import GITOPS_KINDS as GITOPS_KINDS
from nsscale.kube.kinds import WORKLOAD_KINDS as WORKLOAD_KINDS
from nsscale.kube.kinds import Kind as Kind

ORIGINAL = "nsscale/original-replicas"  # the count before nsscale first moved the workload
SCALED_TO = "nsscale/scaled-replicas"  # the count nsscale left it at, to spot later changes
EXCLUDE = "nsscale/exclude"  # "true": nsscale leaves the workload alone
ORIGINAL_SUSPEND = "nsscale/original-suspend"  # a CronJob's spec.suspend before nsscale's
PAUSED = "autoscaling.keda.sh/paused-replicas"  # KEDA leaves the target at this count
ORIGINAL_PAUSED = "nsscale/original-paused-replicas"  # PAUSED before nsscale's, or "none"
ORIGINAL_MIN_REPLICAS = "nsscale/original-min-replicas"  # an HPA's minReplicas before nsscale's
ORIGINAL_AUTOMATED = "nsscale/original-automated"  # an Application's automated sync, as JSON
PAUSE_UNTIL = "nsscale/pause-until"  # on a Namespace: leave it alone until then (RFC 3339)
EXCLUDE_UNTIL = "nsscale/exclude-until"  # on a workload or Namespace: left alone until then
GRACE_PERIOD = "nsscale/grace-period"  # on a Namespace: how long a new workload is left alone
DOWNTIME_REPLICAS = "nsscale/downtime-replicas"  # on a workload or Namespace: the count asleep
LAST_RUN = "nsscale/last-run"  # on a Namespace: the last run that changed it, as JSON
# kube-downscaler's annotation for each of nsscale's, read where nsscale's is absent (migration)
KUBE_DOWNSCALER = {
    "nsscale/uptime": "downscaler/uptime",
    "nsscale/downtime": "downscaler/downtime",
    EXCLUDE: "downscaler/exclude",
    EXCLUDE_UNTIL: "downscaler/exclude-until",
    DOWNTIME_REPLICAS: "downscaler/downtime-replicas",
}
SUSPENDED_FOR = "nsscale/suspended-for"  # the namespaces a GitOps owner is suspended for


WorkloadKey = tuple[str, Kind, str]  # (namespace, kind, name): unique across namespaces


@dataclass(frozen=True)
class State:
    """The fields nsscale reads and writes: a write moves a workload from one State to another."""

    replicas: int
    original: str | None = None
    scaled_to: str | None = None
    holders: str | None = None  # a GitOps owner's: the namespaces it is suspended for


@dataclass(frozen=True)
class Workload:
    kind: Kind
    name: str
    replicas: int
    ready: int
    resource_version: str
    annotations: Mapping[str, str]
    manifest: Mapping[str, Any] = field(repr=False, compare=False)
    owner: tuple[str, str] | None = None  # (kind, name) of its controller, if it has one
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    target: tuple[Kind, str] | None = None  # a ScaledObject's, an HPA's: the workload it scales

    @property
    def key(self) -> WorkloadKey:
        return (self.namespace, self.kind, self.name)

    @property
    def ref(self) -> str:
        """`kind/name`; a GitOps owner, which lives apart, `kind/namespace/name`."""
        if self.kind.gitops:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def state(self) -> State:
        if self.kind is Kind.CRONJOB:
            original = _SUSPENDED_COUNT.get(
                self.annotations.get(ORIGINAL_SUSPEND, ""), self.annotations.get(ORIGINAL_SUSPEND)
            )
            return State(self.replicas, original, self.annotations.get(SCALED_TO))
        if self.kind is Kind.SCALEDOBJECT:
            return State(self.replicas, self.annotations.get(ORIGINAL_PAUSED))
        if self.kind is Kind.HPA:
            return State(self.replicas, self.annotations.get(ORIGINAL_MIN_REPLICAS))
        if self.kind.gitops:
            recorded = ORIGINAL_AUTOMATED if self.kind is Kind.APPLICATION else ORIGINAL_SUSPEND
            return State(
                self.replicas,
                self.annotations.get(recorded),
                holders=self.annotations.get(SUSPENDED_FOR),
            )
        return State(self.replicas, self.annotations.get(ORIGINAL), self.annotations.get(SCALED_TO))

    @classmethod
    def from_manifest(cls, obj: Mapping[str, Any], namespace: str = "") -> Workload:
        """Read one object of `kubectl get -o json` (in `namespace` unless it names its own);
        ValueError if it is not a workload we know."""
        try:
            kind = Kind.from_api(obj["kind"])
            meta = obj["metadata"]
            spec = obj.get("spec") or {}
            annotations = meta.get("annotations") or {}
            target = None
            if kind is Kind.CRONJOB:  # 1 while it runs, 0 while suspended (the default: runs)
                spec_replicas = 0 if spec.get("suspend") is True else 1
            elif kind is Kind.SCALEDOBJECT:  # 1 while KEDA scales its target, 0 paused at 0
                spec_replicas = 0 if annotations.get(PAUSED) == "0" else 1
                ref = spec["scaleTargetRef"]
                target = (Kind.from_api(str(ref.get("kind") or "Deployment")), str(ref["name"]))
            elif kind is Kind.HPA:  # its floor, minReplicas (the API's default is 1)
                spec_replicas = _at(obj, kind.info.floor or (), 1)
                ref = spec["scaleTargetRef"]
                target = _target(str(ref["kind"]), str(ref["name"]))
            elif kind is Kind.APPLICATION:  # 1 while it syncs by itself, 0 without automated sync
                spec_replicas = 0 if (spec.get("syncPolicy") or {}).get("automated") is None else 1
            elif kind.gitops:  # Flux: 1 while it reconciles, 0 suspended
                spec_replicas = 0 if spec.get("suspend") is True else 1
            else:  # the count at the kind's replica path; the API's default is 1
                spec_replicas = _at(obj, kind.info.replicas or (), 1)
            status = obj.get("status") or {}
            workload = cls(
                kind=kind,
                name=str(meta["name"]),
                replicas=_count(spec_replicas),
                ready=_count(_at(status, kind.info.ready_count.split("."), 0)),
                resource_version=str(meta["resourceVersion"]),
                annotations={str(k): str(v) for k, v in annotations.items()},
                manifest=obj,
                owner=_controller(meta.get("ownerReferences") or []),
                namespace=str(meta.get("namespace") or namespace),
                labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
                target=target,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an object nsscale moves ({exc!r})") from exc
        return workload

    def render(self, state: State) -> dict[str, Any]:
        """This object as it should be written to reach `state`, with our resourceVersion."""
        # Copies of the three mappings written to; the rest (the pod template...) is shared with
        # the manifest read, never changed: a deep copy cost more than the rest of a write's
        # preparation.
        obj = {k: v for k, v in self.manifest.items() if k != "status"}
        meta = obj["metadata"] = dict(obj["metadata"])
        obj["spec"] = dict(obj.get("spec") or {})
        meta["resourceVersion"] = self.resource_version
        if self.namespace:  # a batch is written without -n: each object names its namespace
            meta["namespace"] = self.namespace
        annotations = dict(meta.get("annotations") or {})
        original_key, original = ORIGINAL, state.original
        if self.kind is Kind.CRONJOB:
            original_key = ORIGINAL_SUSPEND
            original = _SUSPEND_OF.get(original, original) if original is not None else None
        elif self.kind is Kind.SCALEDOBJECT:
            original_key = ORIGINAL_PAUSED
            _pause(annotations, state, self.annotations.get(ORIGINAL_PAUSED))
        elif self.kind is Kind.HPA:
            original_key = ORIGINAL_MIN_REPLICAS
        elif self.kind.gitops:
            original_key = ORIGINAL_AUTOMATED if self.kind is Kind.APPLICATION else ORIGINAL_SUSPEND
            _suspend_owner(self.kind, obj["spec"], state, self.state.original)
            annotations.pop(SUSPENDED_FOR, None)
            if state.holders is not None:
                annotations[SUSPENDED_FOR] = state.holders
        for key, value in ((original_key, original), (SCALED_TO, state.scaled_to)):
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        if self.kind is Kind.CRONJOB:
            obj["spec"]["suspend"] = state.replicas == 0
        elif self.kind.counted:
            _put(obj, self.kind.info.replicas or self.kind.info.floor or (), state.replicas)
        return obj


_SUSPENDED_COUNT = {"false": "1", "true": "0"}  # nsscale/original-suspend as a count
_SUSPEND_OF = {count: suspend for suspend, count in _SUSPENDED_COUNT.items()}


def _pause(annotations: dict[str, str], state: State, recorded: str | None) -> None:
    """A ScaledObject's pause: "0" to pause; to resume, what was there before nsscale's
    (`recorded`: none, or a count somebody else paused it at)."""
    if state.replicas == 0:
        annotations[PAUSED] = "0"
    elif recorded is not None:
        if recorded == "none":
            annotations.pop(PAUSED, None)
        else:
            annotations[PAUSED] = recorded


def _suspend_owner(kind: Kind, spec: dict[str, Any], state: State, recorded: str | None) -> None:
    """A GitOps owner's suspension: to suspend, Flux's `suspend: true` or Argo CD's automated
    sync removed; to resume, what was there before nsscale's (`recorded`)."""
    if kind is Kind.APPLICATION:
        policy = spec["syncPolicy"] = dict(spec.get("syncPolicy") or {})
        if state.replicas == 0:
            policy.pop("automated", None)
        elif recorded is not None:
            policy["automated"] = json.loads(recorded)
        return
    if state.replicas == 0:
        spec["suspend"] = True
    elif recorded == "none":
        spec.pop("suspend", None)
    elif recorded is not None:
        spec["suspend"] = recorded == "true"


def _at(obj: Mapping[str, Any], path: Sequence[str], default: object) -> Any:
    """The value at `path` in `obj`, or `default` when it is absent (a spec, too)."""
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def _put(obj: dict[str, Any], path: Sequence[str], value: object) -> None:
    """`value` at `path` in `obj`: the mappings on the way are copied, the manifest read is
    shared."""
    *parents, last = path
    node = obj
    for key in parents:
        copied = node[key] = dict(node.get(key) or {})
        node = copied
    node[last] = value


def _target(kind: str, name: str) -> tuple[Kind, str] | None:
    """What an HPA scales, when it is a kind nsscale moves (else nothing of nsscale's)."""
    try:
        return Kind.from_api(kind), name
    except ValueError:
        return None


def _controller(references: list[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The owner that controls the object (at most one has `controller: true`)."""
    for ref in references:
        if ref.get("controller") is True:
            return (str(ref["kind"]), str(ref["name"]))
    return None


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"replica count {value!r}")
    return value


def annotation(annotations: Mapping[str, str], key: str) -> tuple[str, str] | None:
    """(the key found, its value): nsscale's `key`, else kube-downscaler's counterpart."""
    for found in (key, KUBE_DOWNSCALER.get(key)):
        if found is not None and found in annotations:
            return found, annotations[found]
    return None


def parse_count(text: str | None) -> int | None:
    """A recorded count as an int; None when absent or not a decimal count."""
    if text is None or not text.isdecimal():
        return None
    return int(text)


PROTECTED = "nsscale/protected"  # "true" on a Namespace: nsscale never acts on it
SYSTEM = ("kube-system", "kube-public", "kube-node-lease")  # the cluster's own namespaces


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    uid: str = ""  # for an Event about it

    @property
    def protection(self) -> str | None:
        """Why nsscale must never act on it, or None."""
        if self.name in SYSTEM:
            return "one of the cluster's own namespaces"
        if self.annotations.get(PROTECTED, "").lower() == "true":
            return f'annotated {PROTECTED}: "true"'
        return None

    @classmethod
    def from_manifest(cls, obj: Mapping[str, Any]) -> Namespace:
        try:
            meta = obj["metadata"]
            return cls(
                name=str(meta["name"]),
                labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
                annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
                uid=str(meta.get("uid", "")),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a Namespace ({exc!r})") from exc
