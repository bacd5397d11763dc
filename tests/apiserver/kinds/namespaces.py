"""Namespaces: cluster-scoped; get, list, create, update, patch (delete is refused: 405).

The spec (``finalizers: [kubernetes]``) and status (``phase: Active``) are the server's; every
namespace carries the label ``kubernetes.io/metadata.name: <name>``, as on a real cluster.
"""

from __future__ import annotations

import copy

from tests.apiserver.kinds.base import Column, Kind, ResourceType
from tests.apiserver.wire import JSON

__all__ = ["NAMESPACES", "Namespaces"]

NAMESPACES = ResourceType(
    "",
    "v1",
    "namespaces",
    "namespace",
    "Namespace",
    False,
    ("create", "delete", "get", "list", "patch", "update", "watch"),
    ("ns",),
)
NAME_LABEL = "kubernetes.io/metadata.name"


class Namespaces(Kind):
    resource = NAMESPACES
    refused = frozenset({"delete"})
    columns = (Column("Status", lambda obj: obj.get("status", {}).get("phase", "")),)
    selectable_fields = ("metadata.name", "status.phase")

    def unsupported_field(self, label: str) -> str:
        return f"field label not supported: {label}"

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        obj["spec"] = copy.deepcopy(current["spec"]) if current else {"finalizers": ["kubernetes"]}
        obj["status"] = copy.deepcopy(current["status"]) if current else {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})[NAME_LABEL] = obj["metadata"]["name"]
