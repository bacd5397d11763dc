"""The objects nsscale scales, as read from the cluster, and the slice of them it changes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ORIGINAL = "nsscale/original-replicas"  # the count before nsscale first moved the workload
SCALED_TO = "nsscale/scaled-replicas"  # the count nsscale left it at, to spot later changes
EXCLUDE = "nsscale/exclude"  # "true": nsscale leaves the workload alone


class Kind(enum.StrEnum):
    DEPLOYMENT = "deployment"
    STATEFULSET = "statefulset"

    @classmethod
    def from_api(cls, api_kind: str) -> Kind:
        return cls(api_kind.lower())


WorkloadKey = tuple[str, Kind, str]  # (namespace, kind, name): unique across namespaces


@dataclass(frozen=True)
class State:
    """The fields nsscale reads and writes: a write moves a workload from one State to another."""

    replicas: int
    original: str | None = None
    scaled_to: str | None = None


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

    @property
    def key(self) -> WorkloadKey:
        return (self.namespace, self.kind, self.name)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def state(self) -> State:
        return State(self.replicas, self.annotations.get(ORIGINAL), self.annotations.get(SCALED_TO))

    @classmethod
    def from_manifest(cls, obj: Mapping[str, Any], namespace: str = "") -> Workload:
        """Read one object of `kubectl get -o json` (in `namespace` unless it names its own);
        ValueError if it is not a workload we know."""
        try:
            kind = Kind.from_api(obj["kind"])
            meta = obj["metadata"]
            spec_replicas = obj.get("spec", {}).get("replicas", 1)  # the API's default is 1
            status = obj.get("status") or {}
            annotations = meta.get("annotations") or {}
            workload = cls(
                kind=kind,
                name=str(meta["name"]),
                replicas=_count(spec_replicas),
                ready=_count(status.get("readyReplicas", 0)),
                resource_version=str(meta["resourceVersion"]),
                annotations={str(k): str(v) for k, v in annotations.items()},
                manifest=obj,
                owner=_controller(meta.get("ownerReferences") or []),
                namespace=str(meta.get("namespace") or namespace),
                labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a Deployment or StatefulSet ({exc!r})") from exc
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
        for key, value in ((ORIGINAL, state.original), (SCALED_TO, state.scaled_to)):
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        obj["spec"]["replicas"] = state.replicas
        return obj


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


def parse_count(text: str | None) -> int | None:
    """A recorded count as an int; None when absent or not a decimal count."""
    if text is None or not text.isdecimal():
        return None
    return int(text)
