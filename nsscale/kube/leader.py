"""The leader Lease of `nsscale serve --reconcile-every`: one coordination.k8s.io/v1 Lease named
LEADER_LEASE in the server's own namespace, held by the one replica that reconciles
(serve/leadership.py says when a replica takes, renews and gives it up).

Not the run marks of leases.py (a Lease named `nsscale` in each namespace a run changes): another
name, another namespace, another meaning. This module knows kubectl's words: read it, create it
(AlreadyExists when another replica created it first), replace it with its resourceVersion (a
Conflict when another replica wrote it since: of two replicas, only one can win a round).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nsscale.errors import ErrorKind, KubectlError, KubectlFailure
from nsscale.kubectl import Kubectl

LEADER_LEASE = "nsscale-scheduler"
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"  # a Lease's MicroTime


@dataclass(frozen=True)
class LeaderRecord:
    """What the Lease says: who holds it ("" once released), for how long after its last
    renewal, and the resourceVersion a write must name."""

    holder: str
    duration_s: int
    acquired: datetime | None = None
    renewed: datetime | None = None
    transitions: int = 0
    resource_version: str = ""

    def to_lease(self, namespace: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": LEADER_LEASE, "namespace": namespace}
        if self.resource_version:
            metadata["resourceVersion"] = self.resource_version
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_s,
            "leaseTransitions": self.transitions,
        }
        if self.acquired is not None:
            spec["acquireTime"] = self.acquired.strftime(_MICRO)
        if self.renewed is not None:
            spec["renewTime"] = self.renewed.strftime(_MICRO)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    @classmethod
    def from_lease(cls, obj: Mapping[str, Any]) -> LeaderRecord:
        spec = obj.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration_s=int(spec.get("leaseDurationSeconds") or 0),
            acquired=_time(spec.get("acquireTime")),
            renewed=_time(spec.get("renewTime")),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str((obj.get("metadata") or {}).get("resourceVersion", "")),
        )


def read_leader(kubectl: Kubectl, namespace: str) -> LeaderRecord | None:
    """The Lease as it is; None when there is none yet."""
    try:
        found = kubectl.json(["get", "lease", LEADER_LEASE, "-n", namespace])
    except KubectlError as err:
        if err.kind is ErrorKind.NOT_FOUND:
            return None
        raise
    return LeaderRecord.from_lease(found)


def write_leader(kubectl: Kubectl, namespace: str, record: LeaderRecord) -> LeaderRecord:
    """Create the Lease (`record` without a resourceVersion) or replace it (with one): the
    record as written. KubectlError of kind CONFLICT when another replica got there first."""
    verb = "replace" if record.resource_version else "create"
    written = kubectl.json([verb, "-f", "-"], json.dumps(record.to_lease(namespace)))
    return LeaderRecord.from_lease(written)


def now() -> datetime:
    return datetime.now(UTC)


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def server_namespace(kubectl: Kubectl, environ: Mapping[str, str]) -> str:
    """Where the server keeps its Lease: $POD_NAMESPACE (the downward API), else the namespace
    of the kubeconfig's context (a pod's own, in a pod), else `default`."""
    if namespace := environ.get("POD_NAMESPACE", "").strip():
        return namespace
    try:
        config = kubectl.json(["config", "view", "--minify"])
    except KubectlFailure:  # no context at all: the first read will say so
        return "default"
    contexts = config.get("contexts") or [{}]
    return str((contexts[0].get("context") or {}).get("namespace") or "default")
