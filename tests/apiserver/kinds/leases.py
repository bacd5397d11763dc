"""Leases (``coordination.k8s.io/v1``): the spec is stored as written; no status."""

from __future__ import annotations

from tests.apiserver.kinds.base import RW, Column, Kind, ResourceType

__all__ = ["LEASES", "Leases"]

LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, RW)


class Leases(Kind):
    resource = LEASES
    columns = (Column("Holder", lambda obj: obj.get("spec", {}).get("holderIdentity", "")),)
