"""The cluster as nsscale sees it: read namespaces and their workloads, write a batch of them.

One call covers any number of namespaces: a read of several namespaces is one `get -A` (kept to
the namespaces asked for), and a batch written may hold workloads of many namespaces, each
object carrying its own.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from nsscale.errors import (
    ErrorKind,
    KubectlError,
    KubectlOutputError,
    NoScaleResource,
    UsageError,
)
from nsscale.kube.kinds import register
from nsscale.kube.objects import WORKLOAD_KINDS, Kind, Namespace, Workload
from nsscale.kube.retry import RetryPolicy
from nsscale.kubectl import Kubectl, parse_documents

log = logging.getLogger("nsscale")

RAW_PAGE = 500  # objects per page of a raw list (kubectl get's --chunk-size)
NOT_INSTALLED = "the server doesn't have a resource type"  # kubectl, of a type not served


class Cluster(Protocol):
    def list_workloads(
        self,
        namespaces: Sequence[str] | None,
        selector: str | None = None,
        kinds: Sequence[Kind] = WORKLOAD_KINDS,
    ) -> list[Workload]:
        """The workloads of these kinds in the namespaces (None: in every namespace), only those
        matching the label selector if given, namespace by namespace in the order given."""
        ...

    def replace(self, objects: Sequence[Mapping[str, Any]]) -> list[Workload]:
        """PUT every object (each carries its namespace and resourceVersion); KubectlError if
        any failed."""
        ...


@dataclass
class KubectlCluster:
    kubectl: Kubectl
    server_dry_run: bool = False
    # Read each kind with `get --raw`, side by side: kubectl passes the server's JSON through
    # instead of decoding it and printing it again, which costs it about three times as much
    # (README, Performance). A process per kind: for reads where time counts more than
    # processes (reconcile's decision, every few minutes).
    raw_reads: bool = False
    # the optional kinds (Argo Rollouts, custom resources) found not installed by its reads
    absent: set[Kind] = field(default_factory=set)

    def list_workloads(
        self,
        namespaces: Sequence[str] | None,
        selector: str | None = None,
        kinds: Sequence[Kind] = WORKLOAD_KINDS,
    ) -> list[Workload]:
        one = namespaces is not None and len(namespaces) == 1
        only = namespaces[0] if namespaces is not None and one else None  # else: -A, kept
        try:
            workloads = self._read(only, selector, kinds)
        except KubectlError as err:
            if one or namespaces is None or err.kind is not ErrorKind.FORBIDDEN:
                raise
            # Allowed in each namespace, not across all (RoleBindings, no ClusterRole): one
            # read per namespace, side by side.
            log.info("cannot list workloads across namespaces (%s): one read per namespace", err)
            found = each_namespace(
                lambda ns: self.list_workloads([ns], selector, kinds), namespaces
            )
            return [w for ns in namespaces for w in found[ns]]
        return _kept(workloads, namespaces, one)

    def _read(
        self, namespace: str | None, selector: str | None, kinds: Sequence[Kind]
    ) -> list[Workload]:
        """The kinds always served in one read; each kind whose CRD may be absent (an Argo
        Rollout, a custom resource) in a read of its own, side by side with it."""
        read = self._list_raw if self.raw_reads else self._list_decoded
        served = [k for k in kinds if not k.info.optional]
        optional = [k for k in kinds if k.info.optional]
        if not optional:
            return read(namespace, selector, served)

        def read_optional(kind: Kind) -> list[Workload]:
            try:
                return read(namespace, selector, [kind])
            except KubectlError as err:
                if NOT_INSTALLED in err.stderr or err.kind is ErrorKind.NOT_FOUND:
                    log.debug("%s are not installed: none to move", kind.resource)
                    self.absent.add(kind)
                    return []
                if err.kind is not ErrorKind.FORBIDDEN:
                    raise
                log.warning("could not read the %ss, so none is moved: %s", kind.info.name, err)
                return []

        others = side_by_side(read_optional, optional)
        found = read(namespace, selector, served) if served else []
        return found + [w for f in others for w in f.result()]

    def _list_decoded(
        self, namespace: str | None, selector: str | None, kinds: Sequence[Kind]
    ) -> list[Workload]:
        """One call for every kind (of one namespace, else of all): kubectl groups them by
        kind, each sorted by name. It sends one LIST per kind, one after the other: --timeout
        bounds each."""
        scope = ["-n", namespace] if namespace else ["-A"]
        listed = ",".join(kind.listed for kind in kinds)
        args = ["get", listed, *scope, *(["-l", selector] if selector else [])]
        document = self.kubectl.json(args, requests=len(kinds))
        return _workloads(self.kubectl.argv(args), document, namespace or "")

    def _list_raw(
        self, namespace: str | None, selector: str | None, kinds: Sequence[Kind]
    ) -> list[Workload]:
        """Every kind's list, one `get --raw` each, side by side, page after page; kubectl's
        order: by kind, then by namespace and name."""

        def read(kind: Kind) -> list[Workload]:
            where = f"namespaces/{namespace}/" if namespace else ""
            group = "api" if "/" not in kind.api_version else "apis"
            path = f"/{group}/{kind.api_version}/{where}{kind.plural}"
            found: list[Workload] = []
            for argv, items in self._raw_pages(path, selector):
                found += _workloads(argv, {"kind": "List", "items": items})
            return sorted(found, key=lambda w: (w.namespace, w.name))

        with ThreadPoolExecutor(len(kinds), thread_name_prefix="nsscale-read") as pool:
            return [w for listed in pool.map(read, kinds) for w in listed]

    def _raw_pages(self, path: str, selector: str | None) -> Iterator[tuple[list[str], list[Any]]]:
        """A list's items read with `get --raw`, page after page: (the argv, the page's items),
        each item given the list's kind and version (a list's items name neither)."""
        # pages of 500, as `kubectl get` asks: a server answers a large list in pieces
        query = {"limit": str(RAW_PAGE), **({"labelSelector": selector} if selector else {})}
        while True:
            url = f"{path}?{urlencode(query)}"
            document = self.kubectl.get_raw(url)
            argv = self.kubectl.argv(["get", "--raw", url])
            items = document.get("items")
            if not isinstance(items, list):
                raise KubectlOutputError(argv, "no list of items", json.dumps(document)[:200])
            list_kind = str(document.get("kind", "")).removesuffix("List")
            for item in items:
                item.setdefault("kind", list_kind)
                item.setdefault("apiVersion", document.get("apiVersion"))
            yield argv, items
            more = (document.get("metadata") or {}).get("continue")
            if not more:
                return
            query["continue"] = more

    def namespaces(
        self, names: Sequence[str] = (), selector: str | None = None
    ) -> dict[str, Namespace]:
        """The Namespaces by name: the one named (none if it does not exist), else every one
        (those matching `selector`, if given)."""
        if len(names) == 1 and selector is None:
            # `get deployments -n MISSING` exits 0 with an empty list; only this call tells.
            try:
                document = self.kubectl.json(["get", "namespace", names[0]])
            except KubectlError as err:
                if err.kind is ErrorKind.NOT_FOUND:
                    return {}
                raise
        else:
            document = self.kubectl.json(
                ["get", "namespaces", *(["-l", selector] if selector else [])]
            )
        items = document.get("items") if document.get("kind") == "List" else [document]
        try:
            found = [Namespace.from_manifest(item) for item in items or []]
        except ValueError as exc:
            argv = self.kubectl.argv(["get", "namespaces"])
            raise KubectlOutputError(argv, str(exc), json.dumps(document)[:200]) from exc
        return {ns.name: ns for ns in found}

    def every_namespace(self) -> dict[str, Namespace]:
        """Every Namespace by name, passed through as the server sends it (`get --raw`: no
        discovery, no decoding and printing again): the fleet view's read, beside the
        workloads'."""
        found: dict[str, Namespace] = {}
        for argv, items in self._raw_pages("/api/v1/namespaces", None):
            try:
                found.update((ns.name, ns) for ns in map(Namespace.from_manifest, items))
            except ValueError as exc:
                raise KubectlOutputError(argv, str(exc), json.dumps(items)[:200]) from exc
        return found

    def replace(self, objects: Sequence[Mapping[str, Any]]) -> list[Workload]:
        # `replace -f -` is one PUT per object, not throttled by kubectl (see the README's design
        # notes), and each PUT carries the resourceVersion we read: a precondition per object.
        # No -n: each object names its own namespace, so one call writes to many.
        args = ["replace", "-f", "-"]
        if self.server_dry_run:
            args.append("--dry-run=server")
        document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        # One PUT per object, one after another: --timeout bounds each, not the whole batch.
        printed = self.kubectl.json_documents(args, json.dumps(document), requests=len(objects))
        # One document per object written (a List if a future kubectl groups them).
        return [w for doc in printed for w in _workloads(self.kubectl.argv(args), doc)]


def _kept(workloads: list[Workload], namespaces: Sequence[str] | None, one: bool) -> list[Workload]:
    """The workloads of the namespaces, namespace by namespace in their order (stable:
    kubectl's order within each)."""
    if namespaces is None or one:
        return workloads
    order = {ns: i for i, ns in enumerate(namespaces)}
    kept = [w for w in workloads if w.namespace in order]
    return sorted(kept, key=lambda w: order[w.namespace])


_SCALE_RESOURCES: dict[str, Kind] = {}  # RESOURCE.GROUP -> its kind, read once per process


def scale_resource_kinds(kubectl: Kubectl, names: Sequence[str]) -> tuple[Kind, ...]:
    """The kinds of the custom resources named (`--scale-resource RESOURCE.GROUP`), each built
    from its CustomResourceDefinition (one read each, side by side, the first time it is
    named); NoScaleResource (exit 2) naming one not installed or declaring no scale
    subresource."""

    def kind_of(name: str) -> Kind:
        if name in _SCALE_RESOURCES:
            return _SCALE_RESOURCES[name]
        try:
            crd = kubectl.json(["get", "customresourcedefinitions", name])
        except KubectlError as err:
            if err.kind is ErrorKind.NOT_FOUND:
                raise NoScaleResource(name, "no CustomResourceDefinition has that name") from err
            raise
        kind = _SCALE_RESOURCES[name] = register(crd)
        return kind

    return tuple(f.result() for f in side_by_side(kind_of, list(dict.fromkeys(names))))


T = TypeVar("T")
A = TypeVar("A")


def side_by_side(call: Callable[[A], T], args: Sequence[A]) -> list[Future[T]]:
    """`call` of each argument, each started at once in a daemon thread of its own: a run
    stopped by a signal exits without waiting for them, as it would for a pool's threads."""
    futures: list[Future[T]] = []
    for arg in args:
        future: Future[T] = Future()

        def work(arg: A = arg, future: Future[T] = future) -> None:
            try:
                future.set_result(call(arg))
            except BaseException as exc:  # handed to whoever asks for the result
                future.set_exception(exc)

        threading.Thread(target=work, name="nsscale-read", daemon=True).start()
        futures.append(future)
    return futures


def each_namespace(read: Callable[[str], T], namespaces: Sequence[str]) -> dict[str, T]:
    """`read` of each namespace, side by side (the way round a read across all namespaces that
    RBAC refuses)."""
    with ThreadPoolExecutor(min(8, len(namespaces)), thread_name_prefix="nsscale-read") as pool:
        return dict(zip(namespaces, pool.map(read, namespaces), strict=True))


def read_workloads(
    cluster: Cluster,
    namespaces: Sequence[str] | None,
    retry: RetryPolicy,
    selector: str | None = None,
    kinds: Sequence[Kind] = WORKLOAD_KINDS,
) -> list[Workload]:
    """The namespaces' workloads (None: every namespace's), those matching `selector`, retrying
    transient failures; UsageError when the server cannot read the selector."""
    with selector_checked("--selector", selector):
        return retry.call(
            lambda: cluster.list_workloads(namespaces, selector, kinds), "reading the namespace"
        )


def read_namespaces(
    cluster: KubectlCluster, named: Sequence[str], selector: str | None, retry: RetryPolicy
) -> dict[str, Namespace]:
    """The Namespaces: those named, or every one (matching `selector`). A caller who may not
    read Namespaces (RBAC often grants only a namespace's own objects) can still act on the
    ones named: they are taken as found, and only their names are checked for protection."""
    try:
        with selector_checked("--namespace-selector", selector):
            return retry.call(lambda: cluster.namespaces(named, selector), "reading the namespaces")
    except KubectlError as err:
        if err.kind is not ErrorKind.FORBIDDEN or selector is not None:
            raise
        log.info("cannot read the Namespaces (%s): taking the ones named as found", err)
        return {name: Namespace(name) for name in named}


@contextmanager
def selector_checked(option: str, selector: str | None) -> Iterator[None]:
    """A selector the server cannot read is bad input."""
    try:
        yield
    except KubectlError as err:
        if selector and err.kind is ErrorKind.INVALID:
            raise UsageError(
                f"invalid {option} {selector!r}: {err.message}",
                "use kubectl's label selector syntax: app=web,tier!=db,env in (dev,qa)",
            ) from err
        raise


def printed_workloads(text: str) -> list[Workload]:
    """The workloads kubectl printed (best effort: nothing if the text cannot be read)."""
    try:
        documents = parse_documents(text)
        return [w for doc in documents for w in _workloads((), doc)]
    except (ValueError, KubectlOutputError):
        return []


def _workloads(
    argv: Sequence[str], document: Mapping[str, Any], namespace: str = ""
) -> list[Workload]:
    items = document.get("items") if document.get("kind") == "List" else [document]
    if not isinstance(items, list):
        raise KubectlOutputError(argv, "no list of items", json.dumps(document)[:200])
    try:
        return [Workload.from_manifest(item, namespace) for item in items]
    except ValueError as exc:
        raise KubectlOutputError(argv, str(exc), json.dumps(document)[:200]) from exc


def scope_of(namespaces: Sequence[str] | None) -> tuple[list[str], str]:
    """kubectl's scope of a read of the namespaces (None: every one): `-n NS` for one, else
    `-A` (kept to those asked for by the caller); and that one namespace ("" for -A), which a
    one-namespace listing leaves out of its objects' metadata."""
    if namespaces is not None and len(namespaces) == 1:
        return ["-n", namespaces[0]], namespaces[0]
    return ["-A"], ""


def list_objects(
    kubectl: Kubectl, resource: str, namespaces: Sequence[str] | None
) -> tuple[list[dict[str, Any]], str]:
    """The objects of `resource` (a plural, group-qualified if need be) in the namespaces (None:
    every one), in one call; and the namespace of a one-namespace read (see scope_of)."""
    scope, one = scope_of(namespaces)
    document = kubectl.json(["get", resource, *scope])
    return list(document.get("items") or []), one


def create_objects(kubectl: Kubectl, objects: Sequence[Mapping[str, Any]]) -> None:
    """Create the objects in one call (each names its own namespace), unvalidated by kubectl
    (the server validates them all the same)."""
    document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl.run(
        ["create", "-f", "-", "--validate=false", "-o", "name"],
        json.dumps(document),
        requests=len(objects),
    )


def annotate_namespaces(kubectl: Kubectl, namespaces: Sequence[str], key: str, value: str) -> None:
    """Set the annotation on the Namespaces, in one call (a GET and a PATCH each). They are
    named in a List on stdin: kubectl throttles the GETs of objects named in argv (5 a second:
    50 Namespaces took 18 s), not those of objects read from a file (0.1 s)."""
    named = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces
    ]
    document = {"apiVersion": "v1", "kind": "List", "items": named}
    args = ["annotate", "-f", "-", f"{key}={value}", "--overwrite"]
    kubectl.run(args, json.dumps(document), requests=2 * len(namespaces))


CLUSTER_ID_NAMESPACE = "kube-system"  # every cluster has it; its uid is the cluster's id


@dataclass(frozen=True)
class ClusterIdentity:
    """Which cluster, as the audit records it: the name people know it by (the context, or
    $EKS_CLUSTER_NAME), and its id, the uid of its kube-system Namespace, which tells apart two
    clusters of one name (None: it could not be read)."""

    name: str
    id: str | None = None


def read_cluster_id(kubectl: Kubectl) -> str:
    """The uid of the kube-system Namespace, in one request passed through as the server sent
    it; NsscaleError (a KubectlFailure) when it cannot be read."""
    path = f"/api/v1/namespaces/{CLUSTER_ID_NAMESPACE}"
    document = kubectl.get_raw(path)
    uid = (document.get("metadata") or {}).get("uid") if isinstance(document, dict) else None
    if not isinstance(uid, str) or not uid:
        argv = kubectl.argv(["get", "--raw", path])
        raise KubectlOutputError(argv, "no metadata.uid", json.dumps(document)[:200])
    return uid


_cluster_ids: dict[tuple[str | None, str | None], str | None] = {}
_cluster_ids_lock = threading.Lock()


def cluster_id(kubectl: Kubectl) -> str | None:
    """The cluster's id (read_cluster_id), read once per process and kubeconfig context: a
    server runs many runs on one cluster. None when it cannot be read, and a debug line says
    why; a refusal or an absent kube-system is remembered, a failure to reach the server is
    not (the next run asks again)."""
    config = kubectl.config
    key = (config.kubeconfig or os.environ.get("KUBECONFIG"), config.context)
    with _cluster_ids_lock:
        if key in _cluster_ids:
            return _cluster_ids[key]
    try:
        found: str | None = read_cluster_id(kubectl)
    except Exception as exc:  # best effort, as the cluster's name: it only labels the record
        log.debug("the cluster's id is unknown: cannot read the Namespace kube-system: %s", exc)
        if not (isinstance(exc, KubectlError) and exc.kind in _FOR_GOOD):
            return None
        found = None
    with _cluster_ids_lock:
        _cluster_ids[key] = found
    return found


_FOR_GOOD = (ErrorKind.FORBIDDEN, ErrorKind.NOT_FOUND)  # the answer will not change soon
