"""The Lease calls of the in-cluster mark (engine/lock.py says what a mark means): read,
create or replace several in one call, delete one with its resourceVersion as precondition,
or several. Each object is the Lease as the API holds it; this module knows kubectl's words."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nsscale.errors import KubectlError
from nsscale.kubectl import Kubectl, parse_documents

LEASE = "nsscale"

Lease = Mapping[str, Any]


def read_leases(kubectl: Kubectl, namespaces: Sequence[str]) -> tuple[list[Lease], tuple[str, ...]]:
    """The Leases named LEASE in the namespaces, in one call (NotFound, a KubectlError, when the
    only namespace has none), and the argv that read them (to name it when one is unreadable)."""
    if len(namespaces) == 1:
        args = ["get", "lease", LEASE, "-n", namespaces[0]]
    else:
        args = ["get", "leases", "-A", "--field-selector", f"metadata.name={LEASE}"]
    document = kubectl.json(args)
    items = document.get("items") if document.get("kind") == "List" else [document]
    return list(items or []), tuple(kubectl.argv(args))


def write_leases(
    kubectl: Kubectl, verb: str, leases: Sequence[Lease]
) -> tuple[list[Lease], KubectlError | None, tuple[str, ...]]:
    """`kubectl create` or `replace` of the Leases in one call: the Leases as written (those
    kubectl printed, on failure too), the failure if any object failed, and the argv."""
    document = {"apiVersion": "v1", "kind": "List", "items": list(leases)}
    args = [verb, "-f", "-"]
    err = None
    try:
        printed = kubectl.json_documents(args, json.dumps(document), requests=len(leases))
    except KubectlError as exc:
        err = exc
        try:
            printed = parse_documents(exc.stdout)
        except ValueError:
            printed = []
    written = [
        obj
        for doc in printed
        for obj in (doc.get("items", []) if doc.get("kind") == "List" else [doc])
    ]
    return written, err, tuple(kubectl.argv(args))


def delete_lease(kubectl: Kubectl, namespace: str, resource_version: str) -> None:
    """Delete the namespace's Lease, only if it is still at `resource_version` (if given):
    `kubectl delete NAME` has no precondition; `--raw` sends DeleteOptions."""
    url = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE}"
    options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
    if resource_version:
        options["preconditions"] = {"resourceVersion": resource_version}
    kubectl.run(["delete", "--raw", url, "-f", "-"], json.dumps(options))


def delete_leases(kubectl: Kubectl, leases: Sequence[Lease]) -> None:
    """Delete the Leases in one call (without precondition; those gone already are fine)."""
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(leases)})
    kubectl.run(
        ["delete", "-f", "-", "--ignore-not-found", "--wait=false"],
        document,
        requests=len(leases),
    )
