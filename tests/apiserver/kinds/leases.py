"""Leases (``coordination.k8s.io/v1``): the spec is stored as written; no status.

As the real lease strategy: a PUT to a Lease that does not exist creates it (201 Created;
AllowCreateOnUpdate -- the body's resourceVersion is not checked then, a ``uid`` in it is a
precondition that fails, and the caller must also be allowed to ``create`` leases), and a PUT
to an existing Lease must carry its ``metadata.resourceVersion`` (AllowUnconditionalUpdate is
false: without one, 422 ``leases.coordination.k8s.io "x" is invalid: metadata.resourceVersion:
Invalid value: 0: must be specified for an update``).
"""

from __future__ import annotations

from tests.apiserver.kinds.base import RW, Column, Kind, ResourceType

__all__ = ["LEASES", "Leases"]

LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, RW)


class Leases(Kind):
    resource = LEASES
    columns = (Column("Holder", lambda obj: obj.get("spec", {}).get("holderIdentity", "")),)
    create_on_update = True
    unconditional_update = False
