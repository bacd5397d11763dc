"""The cluster as nsscale sees it: read a namespace's workloads, write a batch of them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nsscale.errors import (
    ErrorKind,
    KubectlError,
    KubectlOutputError,
    NamespaceNotFound,
    UsageError,
)
from nsscale.kubectl import Kubectl, parse_documents
from nsscale.retry import RetryPolicy
from nsscale.workload import Workload

KINDS = "deployments,statefulsets"


class Cluster(Protocol):
    def list_workloads(self, namespace: str, selector: str | None = None) -> list[Workload]:
        """The namespace's workloads (only those matching the label selector, if given)."""
        ...

    def namespace_exists(self, namespace: str) -> bool: ...

    def replace(self, namespace: str, objects: Sequence[Mapping[str, Any]]) -> list[Workload]:
        """PUT every object (each carries its resourceVersion); KubectlError if any failed."""
        ...


@dataclass
class KubectlCluster:
    kubectl: Kubectl
    server_dry_run: bool = False

    def list_workloads(self, namespace: str, selector: str | None = None) -> list[Workload]:
        # One call for both kinds: kubectl groups them by kind, each sorted by name. It sends
        # one LIST per kind, one after the other: --timeout bounds each.
        args = ["get", KINDS, "-n", namespace, *(["-l", selector] if selector else [])]
        document = self.kubectl.json(args, requests=len(KINDS.split(",")))
        return _workloads(self.kubectl.argv(args), document)

    def namespace_exists(self, namespace: str) -> bool:
        # `get deployments -n MISSING` exits 0 with an empty list; only this call tells.
        try:
            self.kubectl.run(["get", "namespace", namespace, "-o", "name"])
        except KubectlError as err:
            if err.kind is ErrorKind.NOT_FOUND:
                return False
            raise
        return True

    def replace(self, namespace: str, objects: Sequence[Mapping[str, Any]]) -> list[Workload]:
        # `replace -f -` is one PUT per object, not throttled by kubectl (see the README's design
        # notes), and each PUT carries the resourceVersion we read: a precondition per object.
        args = ["replace", "-n", namespace, "-f", "-"]
        if self.server_dry_run:
            args.append("--dry-run=server")
        document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        # One PUT per object, one after another: --timeout bounds each, not the whole batch.
        printed = self.kubectl.json_documents(args, json.dumps(document), requests=len(objects))
        # One document per object written (a List if a future kubectl groups them).
        return [w for doc in printed for w in _workloads(self.kubectl.argv(args), doc)]


def discover(
    cluster: Cluster, namespace: str, retry: RetryPolicy, selector: str | None = None
) -> list[Workload]:
    """The namespace's workloads (those matching `selector`); NamespaceNotFound when the
    namespace does not exist, UsageError when the server cannot read the selector."""
    try:
        workloads = retry.call(
            lambda: cluster.list_workloads(namespace, selector), "reading the namespace"
        )
    except KubectlError as err:
        if selector and err.kind is ErrorKind.INVALID:
            raise UsageError(
                f"invalid --selector {selector!r}: {err.message}",
                "use kubectl's label selector syntax: app=web,tier!=db,env in (dev,qa)",
            ) from err
        raise
    if not workloads and not cluster.namespace_exists(namespace):
        raise NamespaceNotFound(
            f'namespace "{namespace}" not found',
            "check the name and the context: kubectl get namespaces",
        )
    return workloads


def printed_workloads(text: str) -> list[Workload]:
    """The workloads kubectl printed (best effort: nothing if the text cannot be read)."""
    try:
        documents = parse_documents(text)
        return [w for doc in documents for w in _workloads((), doc)]
    except (ValueError, KubectlOutputError):
        return []


def _workloads(argv: Sequence[str], document: Mapping[str, Any]) -> list[Workload]:
    items = document.get("items") if document.get("kind") == "List" else [document]
    if not isinstance(items, list):
        raise KubectlOutputError(argv, "no list of items", json.dumps(document)[:200])
    try:
        return [Workload.from_manifest(item) for item in items]
    except ValueError as exc:
        raise KubectlOutputError(argv, str(exc), json.dumps(document)[:200]) from exc
