"""An in-memory Kubernetes API server that the real ``kubectl`` can talk to.

``ApiServer`` is a threaded HTTP server on 127.0.0.1 (plain http, see Authentication) that speaks
just enough of the Kubernetes REST API for the commands nsscale shells out to. Its answers are
shaped like a real kube-apiserver's, so that kubectl prints its real output and its real error
lines (see /work/shared/KUBECTL-FACTS.md)::

    with ApiServer() as server:
        server.add_deployment("shop", "web", replicas=3)
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        # kubectl --kubeconfig=... get deployments -n shop -o json

What is served
--------------
- Discovery: ``/version``, ``/api``, ``/apis`` (aggregated discovery ``apidiscovery.k8s.io/v2``
  when the Accept header asks for it, as kubectl >= 1.30 does; the legacy ``APIVersions`` /
  ``APIGroupList`` otherwise), ``/api/v1``, ``/apis/<group>`` and ``/apis/<group>/<version>``
  for core/v1, apps/v1, autoscaling/v1, coordination.k8s.io/v1, authentication.k8s.io/v1 and
  authorization.k8s.io/v1.
- OpenAPI, for the default client-side validation of ``kubectl create/replace -f``
  (``--validate=strict``): kubectl asks ``/openapi/v3`` (whether the server supports
  server-side field validation; answered 404 like a server without OpenAPI v3 -- an answer of
  ``{"paths": {}}`` would cost an extra CRD list), then needs ``/openapi/v2`` as protobuf (a
  404 there fails the command: ``error validating data: the server could not find the
  requested resource``). ``/openapi/v2`` is answered with the smallest gnostic protobuf
  document (no definitions: kubectl finds no schema and validates nothing client-side). Both
  are expected answers, not recorded in ``unhandled``. ``fieldValidation=Strict`` itself is
  accepted and ignored (unknown fields are kept, not rejected).
- namespaces (get, list, create), deployments and statefulsets (get, list, create, update,
  patch, delete; ``scale`` subresource get/update/patch), leases (get, list, create, update,
  patch, delete), ``selfsubjectreviews`` (``kubectl auth whoami``) and
  ``selfsubjectaccessreviews`` (``kubectl auth can-i``).
- Patches: ``application/merge-patch+json`` (RFC 7386, ``null`` deletes),
  ``application/strategic-merge-patch+json`` (the merge patch, plus: lists of objects are merged
  by their ``name`` key, ``$patch: replace|delete`` is honoured in maps, other ``$`` directives
  are dropped) and ``application/json-patch+json`` (RFC 6902). A ``metadata.resourceVersion``
  in a patch is a precondition (409 Conflict when it differs). Server-side apply is not served
  (415, recorded in ``unhandled``).
- Query parameters: ``limit``/``continue`` (pagination), ``labelSelector`` (``k=v``, ``k!=v``,
  ``k``, ``!k``), ``fieldSelector`` (``metadata.name=``/``metadata.namespace=``), and
  ``dryRun=All`` (validated and answered, nothing stored, no resourceVersion consumed), and
  ``timeout`` (kubectl's ``--request-timeout``: the request's deadline, see "Slow admission,
  timeouts and late writes"; ``0s`` means none, as in the real server).
  ``fieldManager``, ``fieldValidation``, ``pretty``, ``propagationPolicy`` and
  ``resourceVersion``/``resourceVersionMatch`` are accepted and ignored. ``watch=true`` is not
  served (405, recorded in ``unhandled``).

Objects look like a real cluster's: ``metadata.resourceVersion`` comes from one global
counter; ``generation`` is bumped on spec changes; a no-op update does not consume a
resourceVersion; ``annotations``/``labels`` are absent when empty; workload ``status`` follows
``spec.replicas`` with the keys the real controllers omit at 0 (a Deployment at 0 has no
``status.replicas``; a StatefulSet keeps ``replicas`` and ``availableReplicas``). A PUT without
``metadata.resourceVersion`` is an unconditional update.

``server.controller = True`` simulates the workload controllers: a write that changes a
workload's spec is stored with the old status and answered, and the "controller" then
immediately (synchronously, before the response is sent) writes the new status, consuming a
second resourceVersion -- so a client that reuses the resourceVersion of its own write gets a
409 Conflict. With ``controller = False`` (the default) the status changes in the same write.
Neither mode adds the deployment controller's ``deployment.kubernetes.io/revision``
annotation, so workloads keep no annotations unless a test or a client gives them some.

What kubectl prints (measured with kubectl v1.37.1 against this server)
----------------------------------------------------------------------
``kubectl replace -f - -o json`` with a ``List`` on stdin prints, on stdout, each replaced
object as its own pretty-printed JSON document (4-space indent), one after the other -- NOT a
``List``: 1 object -> one JSON object; several -> several concatenated JSON objects (parse with
``json.JSONDecoder.raw_decode`` in a loop). Objects that failed are simply absent from stdout;
each failure is one stderr line ``Error from server (<Reason>): error when replacing "STDIN":
<message>`` (for example ``Error from server (Conflict): error when replacing "STDIN":
Operation cannot be fulfilled on deployments.apps "a": the object has been modified; please
apply your changes to the latest version and try again``), kubectl goes on with the next
object, and exits 1 if any failed. Exception: when the only object (or the only error) is
Invalid, stderr is ``The Deployment "a" is invalid: spec.replicas: Invalid value: -1: must be
greater than or equal to 0`` without the ``error when replacing`` part.

Authentication: kubectl never sends credentials over plain http (client-go only attaches a
bearer token to TLS connections; kubernetes/kubectl#744), so a request WITHOUT an
``Authorization`` header is served as the configured ``user``; a request with a wrong token
gets 401 (``error: You must be logged in to the server (Unauthorized)``, also reachable with
``fail(status=401)``). The kubeconfig still carries the token, as a real one would.

``kubectl auth can-i`` sends its SelfSubjectAccessReview as protobuf (typed client): the few
fields needed are decoded from the protobuf by hand; every other body must be JSON (else 415,
recorded in ``unhandled``).

Errors are ``Status`` objects with the real reasons and messages (NotFound, Forbidden,
Conflict, AlreadyExists, Invalid, BadRequest, Unauthorized, InternalError, TooManyRequests...).

Fault injection
---------------
``fail``, ``hang``, ``drop``, ``late`` and ``garble`` add a :class:`Fault`:

- ``fail``: answer an error ``Status`` (nothing is done).
- ``hang(seconds=...)``: hold the request, then serve it normally -- the slow write that lands
  and is answered. Cut at its ``?timeout=`` deadline with a 504, never done then. The hold does
  not watch the connection: a held write whose client hung up (kubectl killed) still lands when
  its time is up, like a request past the point where the real server would notice.
- ``drop``: close the connection without answering (kubectl: ``EOF``); nothing is done.
- ``late(seconds=...)``: the connection drops after the request was sent: closed at once
  without an answer (kubectl: ``EOF``, as ``drop``), but the write is done ``seconds`` later
  through the normal route (its ``resourceVersion`` checked then), unless its ``?timeout=``
  deadline comes first. ``Fault.outcomes`` tells how each went.
- ``garble``: answer 200 with a body that is not JSON (nothing is done).

A request matches a fault when each of its set fields matches (``None`` = anything):

- ``method``: the HTTP method (``GET``, ``PUT``, ``PATCH``, ``POST``, ``DELETE``), any case.
- ``resource``: the API plural, with a subresource as ``deployments/scale``; requests that are
  not resource requests are ``discovery`` (``/version``, ``/api...``, ``/apis...`` discovery
  documents) and ``openapi``. ``None`` matches every request, discovery included.
- ``name``: the object's name; list and create requests have no name and only match ``None``.
- ``namespace``: the request's namespace.

Each fault counts the requests it matches; it fires on the ``nth`` match (1-based) and the
following ones, ``times`` times in all (``None`` = forever). Faults are checked in the order
they were added, before authentication and authorization; every matching fault counts the
request, the first one that fires acts. ``Fault.fired`` tells how often it acted.

Slow admission, timeouts and late writes
----------------------------------------
``latency`` (seconds, default 0) is added to every request before the server takes it up, like a
slow network; a request's ``?timeout=`` deadline counts from after it.

``admission_latency`` (seconds, default 0; constructor argument and attribute) is a slow
validating webhook whose rules match every resource and subresource (``*/*``) for CREATE,
UPDATE and DELETE: every write -- POST, PUT, PATCH, DELETE of a resource, ``/scale`` and
server-side dry runs included (webhooks without side effects are called on dry runs) -- waits
that long before it is stored. Reads, discovery, OpenAPI and the review "creates"
(``selfsubjectreviews``, ``selfsubjectaccessreviews``: answered, never stored) are not admitted
and not slowed: a real 1.36 webhook matching ``*`` would see the reviews too, but webhooks that
guard writes exclude them (from 1.37 the server skips them, feature gate
``ExcludeAdmissionWebhookVirtualResources``). As in the real server (KUBECTL-FACTS.md):

- what is refused before the webhooks are called is answered at once: NotFound, a stale
  ``resourceVersion`` (Conflict), Invalid, BadRequest, Forbidden. AlreadyExists is found by
  storage, after the wait.
- the write is decided when the wait is over, against the object as it is then: a
  ``resourceVersion`` that went stale meanwhile is a 409 Conflict and nothing lands.
- a request whose ``?timeout=`` (kubectl's ``--request-timeout``) runs out during the wait is
  answered ``504 Timeout: request did not complete within the allotted timeout`` at that
  deadline, and its write is never done (the webhook call is cancelled). kubectl's own deadline
  falls due at the same time: it prints that error or its own ``context deadline exceeded``.
- a client that hangs up during the wait (kubectl killed) gets no answer and its write is never
  done; the request is recorded with status 0.
- ``kubectl replace -f -`` of a List sends its PUTs one after another: N objects take at least
  N x ``admission_latency``.

``hang`` holds before admission (the two waits share the one deadline); a ``late`` write is past
admission (``seconds`` is when it lands; ``admission_latency`` is not added). The seeding and
editing methods (``add_*``, ``edit_workload``...) are not requests: never slowed.

No write lands after a 504 answer, after ``drop`` or ``garble``, after its client hung up
during admission, or once the server stops. A write lands unanswered only through ``late``;
after its client gave up, only through ``late`` and ``hang``. Not modelled: the real server's
own cap on requests without a shorter ``?timeout=`` (its ``--request-timeout``, 60 s by
default), and webhooks that match some resources only (one matching ``deployments`` does not
see ``deployments/scale``).

RBAC: ``forbid(verb, resource)`` makes matching requests (and ``auth can-i`` questions) answer
403 with the real message, e.g. ``deployments.apps "a" is forbidden: User "tester" cannot patch
resource "deployments/scale" in API group "apps" in the namespace "shop"``. As in RBAC, a rule
for ``deployments`` does not cover ``deployments/scale``; ``"*"`` matches any verb/resource.

Every request is recorded in ``requests`` (:class:`RequestRecord`); requests the server does not
understand (unknown path: 404, unknown method: 405, unsupported media type: 415, unsupported
selector: 400) are also recorded in ``unhandled``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "KUBE_VERSION",
    "ApiError",
    "ApiServer",
    "Fault",
    "ForbidRule",
    "RequestRecord",
    "ResourceType",
]

JSON = dict[str, Any]

KUBE_VERSION = "v1.36.2"
DEFAULT_USER = "tester"
DEFAULT_TOKEN = "nsscale-test-token"

_JSON_CT = "application/json"
_AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_MERGE_PATCH = "application/merge-patch+json"
_STRATEGIC_PATCH = "application/strategic-merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
_PROTOBUF_CT = "application/vnd.kubernetes.protobuf"
_OPENAPI_V2_CT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


# --------------------------------------------------------------------------- resource table


@dataclass(frozen=True)
class ResourceType:
    """One served resource type, as discovery describes it."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # (subresource, group, version, kind, verbs)
    subresources: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``, ``namespaces``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def is_workload(self) -> bool:
        return self.plural in ("deployments", "statefulsets")


_RW = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_SCALE = ("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update"))

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
DEPLOYMENTS = ResourceType(
    "apps",
    "v1",
    "deployments",
    "deployment",
    "Deployment",
    True,
    _RW,
    ("deploy",),
    ("all",),
    (_SCALE, ("status", "apps", "v1", "Deployment", ("get", "patch", "update"))),
)
STATEFULSETS = ResourceType(
    "apps",
    "v1",
    "statefulsets",
    "statefulset",
    "StatefulSet",
    True,
    _RW,
    ("sts",),
    ("all",),
    (_SCALE, ("status", "apps", "v1", "StatefulSet", ("get", "patch", "update"))),
)
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, _RW)
SELF_SUBJECT_REVIEWS = ResourceType(
    "authentication.k8s.io",
    "v1",
    "selfsubjectreviews",
    "selfsubjectreview",
    "SelfSubjectReview",
    False,
    ("create",),
)
SELF_SUBJECT_ACCESS_REVIEWS = ResourceType(
    "authorization.k8s.io",
    "v1",
    "selfsubjectaccessreviews",
    "selfsubjectaccessreview",
    "SelfSubjectAccessReview",
    False,
    ("create",),
)

# group -> version -> resource types, in the order discovery lists them.
_GROUPS: dict[str, dict[str, tuple[ResourceType, ...]]] = {
    "": {"v1": (NAMESPACES,)},
    "apps": {"v1": (DEPLOYMENTS, STATEFULSETS)},
    "autoscaling": {"v1": ()},
    "coordination.k8s.io": {"v1": (LEASES,)},
    "authentication.k8s.io": {"v1": (SELF_SUBJECT_REVIEWS,)},
    "authorization.k8s.io": {"v1": (SELF_SUBJECT_ACCESS_REVIEWS,)},
}
_BY_PLURAL: dict[tuple[str, str, str], ResourceType] = {
    (g, v, rt.plural): rt for g, vs in _GROUPS.items() for v, rts in vs.items() for rt in rts
}
_WORKLOAD_KINDS: dict[str, ResourceType] = {}
for _rt in (DEPLOYMENTS, STATEFULSETS):
    for _alias in (_rt.plural, _rt.singular, _rt.kind, *_rt.short_names):
        _WORKLOAD_KINDS[_alias] = _rt
        _WORKLOAD_KINDS[_alias.lower()] = _rt


# --------------------------------------------------------------------------- records and rules


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it. ``status`` is 0 when it got no answer: its connection
    was dropped (``drop``, ``late``), its client hung up during admission, or the server
    stopped."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    resource: str | None = None  # "deployments/scale", "discovery", "openapi", None if unknown
    namespace: str | None = None
    name: str | None = None
    verb: str | None = None  # the RBAC verb: get, list, create, update, patch, delete...


FaultAction = Literal["fail", "hang", "drop", "late", "garble"]


@dataclass
class Fault:
    """An injected fault; see the module docstring for the matching rules."""

    action: FaultAction
    method: str | None = None
    resource: str | None = None
    name: str | None = None
    namespace: str | None = None
    nth: int = 1
    times: int | None = 1
    status: int = 500
    message: str | None = None
    reason: str | None = None
    retry_after: int | None = None
    seconds: float | None = None
    seen: int = 0
    fired: int = 0
    # late: the status each held-back write got when its time came (0: the server stopped)
    outcomes: list[int] = field(default_factory=list)

    def matches(
        self, method: str, resource: str | None, namespace: str | None, name: str | None
    ) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.resource is None or self.resource == resource)
            and (self.name is None or self.name == name)
            and (self.namespace is None or self.namespace == namespace)
        )


@dataclass(frozen=True)
class ForbidRule:
    """Requests with this verb on this resource are Forbidden (``"*"`` = any)."""

    verb: str = "*"
    resource: str = "*"
    namespace: str | None = None
    name: str | None = None

    def matches(self, verb: str, resource: str, namespace: str | None, name: str | None) -> bool:
        return (
            self.verb in ("*", verb)
            and self.resource in ("*", resource)
            and (self.namespace is None or self.namespace == namespace)
            and (self.name is None or self.name == name)
        )


class ApiError(Exception):
    """An API error answered as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        *,
        unhandled: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.unhandled = unhandled
        self.headers = dict(headers or {})

    def status(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        body["details"] = self.details if self.details is not None else {}
        body["code"] = self.code
        return body


def _details(rt: ResourceType, name: str | None, **extra: Any) -> JSON:
    details: JSON = {}
    if name:
        details["name"] = name
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    details.update(extra)
    return details


def _not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def _conflict(rt: ResourceType, name: str, why: str | None = None) -> ApiError:
    why = why or (
        "the object has been modified; please apply your changes to the latest "
        "version and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
        _details(rt, name),
    )


def _already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name)
    )


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _invalid(kind: str, group: str, name: str, fld: str, value: Any, why: str) -> ApiError:
    qualified = f"{kind}.{group}" if group else kind
    detail = f"Invalid value: {json.dumps(value)}: {why}"
    details: JSON = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": "FieldValueInvalid", "message": detail, "field": fld}]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {fld}: {detail}', details)


def _timeout_error() -> ApiError:
    """The real server's answer when a request's ``?timeout=`` runs out (its write not done)."""
    return ApiError(504, "Timeout", "Timeout: request did not complete within the allotted timeout")


class _NoAnswer(Exception):
    """The client hung up (or the server is stopping) before the answer: send none."""


# Writes go through admission; reads and the review "creates" (selfsubjectreviews,
# selfsubjectaccessreviews: answered, never stored) do not (see the module docstring).
_ADMITTED_VERBS = frozenset({"create", "update", "patch", "delete"})


def _unknown_path() -> ApiError:
    return ApiError(
        404, "NotFound", "the server could not find the requested resource", unhandled=True
    )


def _method_not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        unhandled=True,
    )


_REASONS = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the resource version is too old"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected failure"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, "
        "but may still be processing the request",
    ),
}


# --------------------------------------------------------------------------- helpers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _selector_string(spec: JSON) -> str:
    selector = spec.get("selector")
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    if not isinstance(labels, dict):
        return ""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A strategic merge patch, simplified (see the module docstring)."""
    if isinstance(patch, list):
        if (
            isinstance(target, list)
            and patch
            and all(isinstance(p, dict) and "name" in p for p in patch)
            and all(isinstance(t, dict) for t in target)
        ):
            merged = [copy.deepcopy(t) for t in target]
            index = {t.get("name"): i for i, t in enumerate(merged)}
            for item in patch:
                if item.get("$patch") == "delete":
                    merged = [m for m in merged if m.get("name") != item["name"]]
                    index = {t.get("name"): i for i, t in enumerate(merged)}
                elif item["name"] in index:
                    merged[index[item["name"]]] = _strategic_merge_patch(
                        merged[index[item["name"]]], item
                    )
                else:
                    merged.append(_strategic_merge_patch({}, item))
                    index[item["name"]] = len(merged) - 1
            return merged
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        else:
            result[key] = _strategic_merge_patch(result.get(key), value)
    return result


class _PatchError(Exception):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise _PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)

    def parent(d: Any, parts: list[str]) -> tuple[Any, str]:
        if not parts:
            raise _PatchError("cannot operate on the document root")
        for p in parts[:-1]:
            if isinstance(d, dict) and p in d:
                d = d[p]
            elif isinstance(d, list) and p.isdigit() and int(p) < len(d):
                d = d[int(p)]
            else:
                raise _PatchError(f"doc is missing path: /{'/'.join(parts)}")
        return d, parts[-1]

    def get(d: Any, parts: list[str]) -> Any:
        for p in parts:
            if isinstance(d, dict) and p in d:
                d = d[p]
            elif isinstance(d, list) and p.isdigit() and int(p) < len(d):
                d = d[int(p)]
            else:
                raise _PatchError(f"doc is missing path: /{'/'.join(parts)}")
        return d

    def remove(d: Any, parts: list[str]) -> Any:
        container, key = parent(d, parts)
        if isinstance(container, dict) and key in container:
            return container.pop(key)
        if isinstance(container, list) and key.isdigit() and int(key) < len(container):
            return container.pop(int(key))
        raise _PatchError(
            f"remove operation does not apply: doc is missing path: /{'/'.join(parts)}"
        )

    def add(d: Any, parts: list[str], value: Any) -> None:
        container, key = parent(d, parts)
        if isinstance(container, dict):
            container[key] = value
        elif isinstance(container, list):
            if key == "-":
                container.append(value)
            elif key.isdigit() and int(key) <= len(container):
                container.insert(int(key), value)
            else:
                raise _PatchError(f"add operation does not apply: index out of range: {key}")
        else:
            raise _PatchError(
                f"add operation does not apply: doc is missing path: /{'/'.join(parts)}"
            )

    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _PatchError("invalid json patch operation")
        kind, parts = op["op"], _pointer(str(op["path"]))
        if kind == "add":
            add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            remove(doc, parts)
        elif kind == "replace":
            remove(doc, parts)
            add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "move":
            add(doc, parts, remove(doc, _pointer(str(op.get("from", "")))))
        elif kind == "copy":
            add(doc, parts, copy.deepcopy(get(doc, _pointer(str(op.get("from", ""))))))
        elif kind == "test":
            if get(doc, parts) != op.get("value"):
                raise _PatchError(f"testing value {op['path']} failed: test failed")
        else:
            raise _PatchError(f"Unexpected kind: {kind}")
    return doc


def _label_matcher(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, comma-separated (AND)."""
    terms: list[tuple[str, str, str]] = []  # (op, key, value)
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if " in " in term or " notin " in term or "(" in term:
            raise ApiError(400, "BadRequest", f"unsupported label selector: {term}", unhandled=True)
        if "!=" in term:
            key, value = term.split("!=", 1)
            terms.append(("!=", key.strip(), value.strip()))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            terms.append(("=", key.strip(), value.strip()))
        elif term.startswith("!"):
            terms.append(("!", term[1:].strip(), ""))
        else:
            terms.append(("exists", term, ""))

    def match(labels: Mapping[str, str]) -> bool:
        for op, key, value in terms:
            if op == "=":
                ok = labels.get(key) == value
            elif op == "!=":
                ok = labels.get(key) != value
            elif op == "!":
                ok = key not in labels
            else:
                ok = key in labels
            if not ok:
                return False
        return True

    return match


def _deployment_status(replicas: int, generation: int, since: str) -> JSON:
    status: JSON = {"observedGeneration": generation}
    if replicas > 0:
        status.update(
            replicas=replicas,
            updatedReplicas=replicas,
            readyReplicas=replicas,
            availableReplicas=replicas,
        )
    status["conditions"] = [
        {
            "type": "Available",
            "status": "True",
            "lastUpdateTime": since,
            "lastTransitionTime": since,
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "lastUpdateTime": since,
            "lastTransitionTime": since,
            "reason": "NewReplicaSetAvailable",
            "message": "ReplicaSet has successfully progressed.",
        },
    ]
    return status


def _statefulset_status(name: str, replicas: int, generation: int) -> JSON:
    revision = f"{name}-{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:10]}"
    status: JSON = {"observedGeneration": generation, "replicas": replicas}
    if replicas > 0:
        status.update(readyReplicas=replicas, currentReplicas=replicas, updatedReplicas=replicas)
    status.update(
        currentRevision=revision,
        updateRevision=revision,
        collisionCount=0,
        availableReplicas=replicas,
    )
    return status


def _pod_template(name: str, image: str) -> JSON:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": name,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        },
    }


def _pb_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    out = bytearray([number << 3 | 2])
    n = len(payload)
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + payload


def _pb_fields(data: bytes) -> dict[int, list[bytes | int]]:
    """Decode one protobuf message into {field number: [values]} (no schema needed)."""
    fields: dict[int, list[bytes | int]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            if i >= len(data):
                raise ValueError("truncated protobuf varint")
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        value: bytes | int
        if wire == 0:
            value = varint()
        elif wire == 2:
            length = varint()
            value, i = data[i : i + length], i + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i : i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _pb_message(fields: dict[int, list[bytes | int]], number: int) -> dict[int, list[bytes | int]]:
    values = fields.get(number) or [b""]
    value = values[-1]
    return _pb_fields(value) if isinstance(value, bytes) else {}


def _pb_string(fields: dict[int, list[bytes | int]], number: int) -> str:
    values = fields.get(number) or [b""]
    value = values[-1]
    return value.decode() if isinstance(value, bytes) else str(value)


def _access_review_from_protobuf(data: bytes) -> JSON:
    """A SelfSubjectAccessReview sent as ``application/vnd.kubernetes.protobuf`` (kubectl auth
    can-i uses the typed client, which sends protobuf): the ``k8s\\0`` magic, a
    ``runtime.Unknown`` envelope whose field 2 is the object; spec = 2, resourceAttributes = 1
    (namespace 1, verb 2, group 3, version 4, resource 5, subresource 6, name 7),
    nonResourceAttributes = 2 (path 1, verb 2)."""
    if not data.startswith(b"k8s\x00"):
        raise ValueError("missing the k8s protobuf magic")
    raw = _pb_message(_pb_fields(data[4:]), 2)
    spec = _pb_message(raw, 2)
    out: JSON = {}
    if 1 in spec:
        attrs = _pb_message(spec, 1)
        keys = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
        out["resourceAttributes"] = {
            k: _pb_string(attrs, n) for n, k in enumerate(keys, 1) if _pb_string(attrs, n)
        }
    if 2 in spec:
        attrs = _pb_message(spec, 2)
        out["nonResourceAttributes"] = {"path": _pb_string(attrs, 1), "verb": _pb_string(attrs, 2)}
    return {"spec": out}


def _openapi_v2_document() -> bytes:
    """The smallest OpenAPI v2 document kubectl accepts: ``{"swagger": "2.0", "info": {...},
    "paths": {}, "definitions": {}}`` as gnostic's ``openapi.v2.Document`` protobuf. With no
    definitions, kubectl's client-side validation finds no schema for any kind and skips."""
    info = _pb_field(1, b"Kubernetes") + _pb_field(2, KUBE_VERSION.encode())
    return _pb_field(1, b"2.0") + _pb_field(2, info) + _pb_field(8, b"") + _pb_field(9, b"")


def _age(timestamp: str) -> str:
    """The AGE column, like k8s.io/apimachinery's duration.HumanDuration."""
    try:
        created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    secs = max(0, int((datetime.now(UTC) - created).total_seconds()))
    mins, hours, days = secs // 60, secs // 3600, secs // 86400
    if secs < 120:
        return f"{secs}s"
    if mins < 10:
        return f"{mins}m{secs % 60}s" if secs % 60 else f"{mins}m"
    if hours < 3:
        return f"{mins}m"
    if hours < 8:
        return f"{hours}h{mins % 60}m" if mins % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{days}d"


def _table(rt: ResourceType, objs: list[JSON], list_meta: JSON) -> JSON:
    """A ``meta.k8s.io/v1`` Table, what kubectl's human-readable ``get`` asks for."""

    def column(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> JSON:
        return {
            "name": name,
            "type": kind,
            "format": fmt,
            "description": name,
            "priority": priority,
        }

    columns = [column("Name", fmt="name")]
    if rt.is_workload:
        columns.append(column("Ready"))
        if rt is DEPLOYMENTS:
            columns += [column("Up-to-date", "integer"), column("Available", "integer")]
    elif rt is NAMESPACES:
        columns.append(column("Status"))
    elif rt is LEASES:
        columns.append(column("Holder"))
    columns.append(column("Age"))
    if rt.is_workload:
        columns += [column("Containers", priority=1), column("Images", priority=1)]
        if rt is DEPLOYMENTS:
            columns.append(column("Selector", priority=1))
    rows = []
    for obj in objs:
        meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
        cells: list[Any] = [meta["name"]]
        if rt.is_workload:
            cells.append(f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}")
            if rt is DEPLOYMENTS:
                cells += [status.get("updatedReplicas", 0), status.get("availableReplicas", 0)]
        elif rt is NAMESPACES:
            cells.append(status.get("phase", ""))
        elif rt is LEASES:
            cells.append(spec.get("holderIdentity", ""))
        cells.append(_age(meta.get("creationTimestamp", "")))
        if rt.is_workload:
            containers = spec.get("template", {}).get("spec", {}).get("containers", [])
            cells.append(",".join(str(c.get("name", "")) for c in containers))
            cells.append(",".join(str(c.get("image", "")) for c in containers))
            if rt is DEPLOYMENTS:
                cells.append(_selector_string(spec))
        rows.append(
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    }


def _strip_type(obj: JSON) -> JSON:
    """A list item as the real server sends it: no kind/apiVersion."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


# --------------------------------------------------------------------------- HTTP plumbing


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    area: Literal["discovery", "openapi", "resource", "unknown"] = "unknown"
    rt: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    extra: bool = False  # path has segments past what the server understands
    received: float = 0.0  # time.monotonic() when the server took it up, after ``latency``
    late: Fault | None = None  # a ``late`` fault: do the write after the connection is closed

    @property
    def resource(self) -> str | None:
        if self.area in ("discovery", "openapi"):
            return self.area
        if self.rt is None:
            return None
        return f"{self.rt.plural}/{self.subresource}" if self.subresource else self.rt.plural

    @property
    def verb(self) -> str:
        m = self.method
        if m == "GET":
            if self.name is None:
                return "watch" if self.query.get("watch") in ("true", "1") else "list"
            return "get"
        if m == "DELETE":
            return "delete" if self.name is not None else "deletecollection"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(m, m.lower())

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"

    @property
    def timeout(self) -> float | None:
        """Seconds of the request's own ``?timeout=`` (kubectl's ``--request-timeout``); None
        without one. As in the real server, ``0s`` means none."""
        seconds = _go_duration(self.query.get("timeout"))
        return seconds if seconds is not None and seconds > 0 else None

    @property
    def deadline(self) -> float | None:
        """When the server cuts the request (``time.monotonic()``), None if never."""
        timeout = self.timeout
        return None if timeout is None else self.received + timeout


def _parse_path(req: _Request) -> None:
    parts = [p for p in req.path.split("/") if p]
    if not parts:
        return
    if parts[0] == "version" and len(parts) == 1:
        req.area = "discovery"
        return
    if parts[0] == "openapi":
        req.area = "openapi"
        return
    if parts[0] == "api":
        group, rest = "", parts[1:]
        if not rest:
            req.area = "discovery"
            return
    elif parts[0] == "apis":
        if len(parts) <= 2:
            req.area = "discovery" if len(parts) == 1 or parts[1] in _GROUPS else "unknown"
            return
        group, rest = parts[1], parts[2:]
    else:
        return
    versions = _GROUPS.get(group)
    if versions is None or rest[0] not in versions:
        return
    version, rest = rest[0], rest[1:]
    if not rest:
        req.area = "discovery"
        return
    if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in _BY_PLURAL:
        rt = _BY_PLURAL[(group, version, rest[2])]
        if not rt.namespaced:
            return
        req.namespace, rest = rest[1], rest[2:]
    elif (group, version, rest[0]) in _BY_PLURAL:
        rt = _BY_PLURAL[(group, version, rest[0])]
    else:
        return
    req.area, req.rt = "resource", rt
    if len(rest) >= 2:
        req.name = rest[1]
    if len(rest) >= 3:
        req.subresource = rest[2]
    req.extra = len(rest) > 3


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two writes cost 40 ms (delayed ACK)
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        self.server.api._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def send(
        self,
        code: int,
        body: bytes,
        content_type: str = _JSON_CT,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, api: ApiServer, port: int) -> None:
        self.api = api
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close_all(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------- the server


class ApiServer:
    """An in-memory, threaded Kubernetes API server; see the module docstring."""

    def __init__(
        self,
        port: int = 0,
        *,
        user: str = DEFAULT_USER,
        groups: tuple[str, ...] = ("system:authenticated",),
        token: str = DEFAULT_TOKEN,
        controller: bool = False,
        latency: float = 0.0,
        admission_latency: float = 0.0,
    ) -> None:
        self.user = user
        self.groups = groups
        self.token = token
        self.controller = controller
        # seconds added to every request before the server takes it up (a slow network)
        self.latency = latency
        # seconds every admitted write waits before it is stored (a slow validating webhook)
        self.admission_latency = admission_latency
        self._port = port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._rv = 0
        # plural -> namespace ("" for cluster-scoped) -> name -> object
        self._store: dict[str, dict[str, dict[str, JSON]]] = {
            rt.plural: {} for rt in (NAMESPACES, DEPLOYMENTS, STATEFULSETS, LEASES)
        }
        self._faults: list[Fault] = []
        self._forbid: list[ForbidRule] = []
        self._requests: list[RequestRecord] = []
        self._unhandled: list[RequestRecord] = []
        self.add_namespace("default")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._http is not None:
            return self
        self._stopping.clear()
        self._http = _HTTPServer(self, self._port)
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"apiserver:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        http, thread = self._http, self._thread
        if http is None:
            return
        self._stopping.set()
        http.shutdown()
        http.server_close()
        http.close_all()
        if thread is not None:
            thread.join(timeout=5)
        self._http = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("the server is not started")
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(
        self,
        path: Path,
        context: str = "local",
        *,
        namespace: str | None = None,
        token: str | None = None,
    ) -> Path:
        """Write a kubeconfig (token auth, plain http) whose current context is ``context``."""
        ctx = {"cluster": "nsscale-test", "user": self.user}
        if namespace:
            ctx["namespace"] = namespace
        q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
        lines = [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            f"- name: {q('nsscale-test')}",
            "  cluster:",
            f"    server: {q(self.url)}",
            "users:",
            f"- name: {q(self.user)}",
            "  user:",
            f"    token: {q(token if token is not None else self.token)}",
            "contexts:",
            f"- name: {q(context)}",
            "  context:",
            *(f"    {k}: {q(v)}" for k, v in ctx.items()),
            f"current-context: {q(context)}",
            "preferences: {}",
        ]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    # ------------------------------------------------------------------ seeding and inspection

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    @property
    def resource_version(self) -> int:
        """The last resourceVersion handed out."""
        with self._lock:
            return self._rv

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> JSON:
        with self._lock:
            existing = self._store["namespaces"].get("", {}).get(name)
            if existing is not None:
                return copy.deepcopy(existing)
            meta: JSON = {
                "name": name,
                "uid": str(uuid.uuid4()),
                "resourceVersion": self._next_rv(),
                "creationTimestamp": _now(),
                "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
            }
            obj = {
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": meta,
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            self._store["namespaces"].setdefault("", {})[name] = obj
            return copy.deepcopy(obj)

    def add_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        *,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        image: str = "nginx:1.27",
    ) -> JSON:
        """Add a Deployment (and its namespace if missing); return a copy of it."""
        spec: JSON = {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, image),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        }
        return self._add_workload(DEPLOYMENTS, namespace, name, spec, annotations, labels)

    def add_statefulset(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        *,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        image: str = "postgres:16",
    ) -> JSON:
        """Add a StatefulSet (and its namespace if missing); return a copy of it."""
        spec: JSON = {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, image),
            "serviceName": name,
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
        }
        return self._add_workload(STATEFULSETS, namespace, name, spec, annotations, labels)

    def _add_workload(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        spec: JSON,
        annotations: Mapping[str, str] | None,
        labels: Mapping[str, str] | None,
    ) -> JSON:
        if spec["replicas"] < 0:
            raise ValueError("replicas must be >= 0")
        with self._lock:
            self.add_namespace(namespace)
            if name in self._store[rt.plural].get(namespace, {}):
                raise ValueError(f"{rt.singular} {namespace}/{name} exists")
            body: JSON = {
                "metadata": {
                    "name": name,
                    "labels": {"app": name, **(labels or {})},
                    "annotations": dict(annotations or {}),
                },
                "spec": spec,
            }
            obj = self._new_object(rt, namespace, body)
            self._reconcile(rt, obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._put(rt, namespace, obj)
            return copy.deepcopy(obj)

    def _rt_for_kind(self, kind: str) -> ResourceType:
        try:
            return (
                _WORKLOAD_KINDS[kind] if kind in _WORKLOAD_KINDS else _WORKLOAD_KINDS[kind.lower()]
            )
        except KeyError:
            raise ValueError(f"unknown workload kind {kind!r}") from None

    def workload(self, namespace: str, kind: str, name: str) -> JSON:
        """A deep copy of a stored Deployment/StatefulSet (``kind``: "deployment",
        "statefulset", or their plurals/short names). KeyError when it does not exist."""
        rt = self._rt_for_kind(kind)
        with self._lock:
            return copy.deepcopy(self._store[rt.plural].get(namespace, {})[name])

    def workloads(self, namespace: str) -> list[JSON]:
        """Deep copies of the namespace's Deployments then StatefulSets, each sorted by name."""
        with self._lock:
            return [
                copy.deepcopy(obj)
                for rt in (DEPLOYMENTS, STATEFULSETS)
                for _, obj in sorted(self._store[rt.plural].get(namespace, {}).items())
            ]

    def get_object(self, resource: str, namespace: str, name: str) -> JSON | None:
        """A deep copy of any stored object by plural (``leases``, ``namespaces``...)."""
        with self._lock:
            obj = self._store[resource].get(namespace, {}).get(name)
            return copy.deepcopy(obj) if obj is not None else None

    def edit_workload(
        self,
        namespace: str,
        kind: str,
        name: str,
        *,
        replicas: int | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> JSON:
        """Change a workload as another actor would (bumps resourceVersion/generation like a
        real update): set ``replicas``; merge ``annotations`` (None value = delete)."""
        rt = self._rt_for_kind(kind)
        with self._lock:
            current = self._store[rt.plural].get(namespace, {})[name]
            patch: JSON = {}
            if replicas is not None:
                patch["spec"] = {"replicas": replicas}
            if annotations is not None:
                patch["metadata"] = {"annotations": dict(annotations)}
            new = _merge_patch(copy.deepcopy(current), patch)
            return copy.deepcopy(self._update(rt, namespace, name, new, current, dry_run=False))

    def delete_workload(self, namespace: str, kind: str, name: str) -> None:
        rt = self._rt_for_kind(kind)
        with self._lock:
            del self._store[rt.plural].get(namespace, {})[name]
            self._next_rv()

    # ------------------------------------------------------------------ faults and RBAC

    def _add_fault(self, fault: Fault) -> Fault:
        if fault.nth < 1:
            raise ValueError("nth is 1-based")
        if fault.method is not None:
            fault.method = fault.method.upper()
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        status: int = 500,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
        message: str | None = None,
        reason: str | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        """Answer matching requests with an error ``Status`` of code ``status``.

        The message/reason default to the real ones for that code (a 404/403/409 names the
        object like the real server does). A 429 carries ``Retry-After: 1`` unless
        ``retry_after`` says otherwise (client-go then retries the request itself)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        return self._add_fault(
            Fault(
                "fail",
                method,
                resource,
                name,
                namespace,
                nth,
                times,
                status,
                message,
                reason,
                retry_after,
            )
        )

    def hang(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        seconds: float | None = None,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """Hold matching requests ``seconds`` (None: until the server stops), then serve them
        normally: a write held this way lands ``seconds`` late and is answered (a request
        still held when the server stops gets no answer and does nothing). A request whose
        ``?timeout=`` (kubectl's ``--request-timeout``) runs out first is answered 504 Timeout
        at that deadline, its write not done, ever, as the real apiserver does.

        The hold does not watch the connection: a write whose client hangs up meanwhile
        (kubectl killed) still lands when ``seconds`` are over, like a request already past
        the point where the real server would notice. For a wait the server abandons when
        its client goes away (a webhook call), use ``admission_latency``."""
        return self._add_fault(
            Fault("hang", method, resource, name, namespace, nth, times, seconds=seconds)
        )

    def drop(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """Close the connection of matching requests without answering (nothing is done)."""
        return self._add_fault(Fault("drop", method, resource, name, namespace, nth, times))

    def late(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        seconds: float,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """The connection drops after the request was sent: read matching requests, close
        their connection at once without answering (the client sees EOF, like ``drop``), and
        serve them ``seconds`` later all the same, as a request already on its way to storage
        is -- unless their ``?timeout=`` deadline comes first: then nothing is done.

        The write goes through the normal route when its time comes (authorization,
        validation, and the ``resourceVersion`` precondition against the object as it is
        then: a write whose object changed meanwhile fails with a Conflict and nothing
        lands); ``admission_latency`` is not added, the write is past admission. Nobody hears
        how it went: the request is recorded with status 0, and ``Fault.outcomes`` gets the
        status it got (504 when its deadline came first, 0 when the server stopped)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        return self._add_fault(
            Fault("late", method, resource, name, namespace, nth, times, seconds=seconds)
        )

    def garble(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """Answer matching requests 200 with a body that is not JSON (nothing is done)."""
        return self._add_fault(Fault("garble", method, resource, name, namespace, nth, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def forbid(
        self,
        verb: str = "*",
        resource: str = "*",
        *,
        namespace: str | None = None,
        name: str | None = None,
    ) -> ForbidRule:
        """Deny ``verb`` (get, list, watch, create, update, patch, delete...) on ``resource``
        (a plural, ``deployments/scale`` for a subresource) to the user."""
        rule = ForbidRule(verb, resource, namespace, name)
        with self._lock:
            self._forbid.append(rule)
        return rule

    def allow_all(self) -> None:
        """Drop every ``forbid`` rule."""
        with self._lock:
            self._forbid.clear()

    def _forbidden(self, verb: str, resource: str, namespace: str | None, name: str | None) -> bool:
        return any(r.matches(verb, resource, namespace, name) for r in self._forbid)

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def unhandled(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._unhandled)

    def reset_counters(self) -> None:
        """Forget the recorded ``requests`` (``unhandled`` is kept)."""
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ serving

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        req = _Request(handler.command, split.path, query, dict(handler.headers.items()), b"")
        answer = self._answer(handler, req)
        # Record before answering: a client that has its answer finds the request recorded.
        record = RequestRecord(
            req.method,
            req.path,
            query,
            answer[0] if answer else 0,
            req.resource,
            req.namespace,
            req.name,
            req.verb if req.area == "resource" else None,
        )
        with self._lock:
            self._requests.append(record)
            if answer is not None and answer[4]:
                self._unhandled.append(record)
        if answer is None:
            handler.drop()
            if req.late is not None:
                threading.Thread(
                    target=self._land_late,
                    args=(req, req.late),
                    name="apiserver:late",
                    daemon=True,
                ).start()
            return
        code, body, content_type, headers, _ = answer
        try:
            handler.send(code, body, content_type, headers)
        except OSError:  # the client went away
            handler.close_connection = True

    def _answer(
        self, handler: _Handler, req: _Request
    ) -> tuple[int, bytes, str, dict[str, str], bool] | None:
        """(status, body, content type, headers, unhandled), or None to drop the connection."""
        try:
            req.body = handler._read_body()
            _parse_path(req)
            if self.latency > 0:
                time.sleep(self.latency)
            req.received = time.monotonic()
            fault = self._match_fault(req)
            if fault is not None and fault.action == "hang":
                # As the real apiserver, a request carrying ?timeout= (kubectl's
                # --request-timeout) is cut at that deadline with a 504, its write not done.
                timeout = req.timeout
                if timeout is not None and (fault.seconds is None or timeout < fault.seconds):
                    if self._stopping.wait(timeout):
                        return None
                    raise _timeout_error()
                if self._stopping.wait(fault.seconds):
                    return None
                fault = None
            if fault is not None and fault.action == "drop":
                return None
            if fault is not None and fault.action == "late":
                req.late = fault  # _serve closes the connection, then lands it
                return None
            if fault is not None and fault.action == "garble":
                return (
                    200,
                    b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
                    _JSON_CT,
                    {},
                    False,
                )
            if fault is not None:
                raise self._fault_error(fault, req)
            code, body, content_type = self._route(req, lambda: self._admit(handler, req))
            return code, body, content_type, {}, False
        except _NoAnswer:
            return None
        except ApiError as err:
            return (
                err.code,
                json.dumps(err.status()).encode(),
                _JSON_CT,
                err.headers,
                err.unhandled,
            )
        except Exception as err:  # a bug in the server: answer 500, keep serving
            message = f"Internal error occurred: {type(err).__name__}: {err}"
            error = ApiError(500, "InternalError", message, {"causes": [{"message": message}]})
            return 500, json.dumps(error.status()).encode(), _JSON_CT, {}, True

    def _admit(self, handler: _Handler, req: _Request) -> None:
        """Wait ``admission_latency`` as a validating webhook would, before the write is
        stored. The real server abandons the webhook call when the request's deadline comes
        (answered 504, nothing stored) or its client hangs up (nothing answered or stored)."""
        end = time.monotonic() + self.admission_latency
        deadline = req.deadline
        until = end if deadline is None else min(end, deadline)
        if not self._connected_until(handler, until):
            raise _NoAnswer
        if until < end:
            raise _timeout_error()

    def _connected_until(self, handler: _Handler, until: float) -> bool:
        """Wait until ``until`` (``time.monotonic()``); False as soon as the client hangs up
        or the server stops."""
        sock = handler.connection
        while (left := until - time.monotonic()) > 0:
            if self._stopping.is_set():
                return False
            try:
                readable, _, _ = select.select([sock], [], [], min(left, 0.1))
                if readable and not sock.recv(1, socket.MSG_PEEK):
                    return False  # EOF: the client closed its end
            except (OSError, ValueError):  # reset, or closed by stop()
                return False
            if readable:  # bytes from the client (it pipelines): wait it out
                return not self._stopping.wait(max(0.0, until - time.monotonic()))
        return not self._stopping.is_set()

    def _land_late(self, req: _Request, fault: Fault) -> None:
        """Serve a ``late`` request, whose connection is closed, when its time comes."""
        seconds, timeout = fault.seconds or 0.0, req.timeout
        cut = timeout is not None and timeout < seconds
        due = req.received + (timeout if timeout is not None and cut else seconds)
        if self._stopping.wait(max(0.0, due - time.monotonic())):
            outcome = 0
        elif cut:
            outcome = 504  # cut at its deadline, like the real server: never done
        else:
            try:
                outcome = self._route(req)[0]
            except ApiError as err:
                outcome = err.code
            except Exception:  # a bug in the server, as _answer's 500
                outcome = 500
        with self._lock:
            fault.outcomes.append(outcome)

    def _match_fault(self, req: _Request) -> Fault | None:
        with self._lock:
            chosen = None
            for fault in self._faults:
                if not fault.matches(req.method, req.resource, req.namespace, req.name):
                    continue
                fault.seen += 1
                if (
                    chosen is None
                    and fault.seen >= fault.nth
                    and (fault.times is None or fault.fired < fault.times)
                ):
                    fault.fired += 1
                    chosen = fault
            return chosen

    def _fault_error(self, fault: Fault, req: _Request) -> ApiError:
        reason, message = _REASONS.get(fault.status, ("", "injected failure"))
        details: JSON = {}
        rt = req.rt
        if rt is not None:
            details = _details(rt, req.name)
            if fault.status == 404 and req.name:
                message = f'{rt.qualified} "{req.name}" not found'
            elif fault.status == 403:
                message = self._forbidden_message(
                    req.verb, req.resource or "", rt, req.namespace, req.name
                )
            elif fault.status == 409 and req.name:
                message = _conflict(rt, req.name).message
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            details["retryAfterSeconds"] = fault.retry_after
            headers["Retry-After"] = str(fault.retry_after)
        if fault.status == 500:
            details.setdefault("causes", [{"message": "injected failure"}])
        return ApiError(
            fault.status,
            fault.reason if fault.reason is not None else reason,
            fault.message if fault.message is not None else message,
            details,
            headers=headers,
        )

    def _forbidden_message(
        self, verb: str, resource: str, rt: ResourceType, namespace: str | None, name: str | None
    ) -> str:
        why = f'User "{self.user}" cannot {verb} resource "{resource}" in API group "{rt.group}"'
        why += f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        if name:
            return f'{rt.qualified} "{name}" is forbidden: {why}'
        return f"{rt.qualified} is forbidden: {why}"

    def _route(
        self, req: _Request, admit: Callable[[], None] | None = None
    ) -> tuple[int, bytes, str]:
        """Serve ``req``; ``admit`` is the admission wait of a write (None: the request is
        past admission, or the caller does not admit)."""
        auth = req.headers.get("Authorization")
        if auth is not None and auth != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if req.area == "discovery":
            if req.method != "GET":
                raise _method_not_allowed()
            return self._discovery(req)
        if req.area == "openapi":
            if req.method == "GET" and req.path.rstrip("/") == "/openapi/v2":
                return 200, _openapi_v2_document(), _OPENAPI_V2_CT
            if req.method == "GET" and req.path.rstrip("/") == "/openapi/v3":
                # Like a server without OpenAPI v3: kubectl then checks /openapi/v2 (answering
                # {"paths": {}} here costs an extra CRD list). Expected, so not "unhandled".
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            raise _unknown_path()
        if req.area != "resource" or req.rt is None or req.extra:
            raise _unknown_path()
        rt = req.rt
        if (req.subresource is not None and req.subresource != "scale") or (
            req.subresource == "scale" and not rt.is_workload
        ):
            raise _unknown_path()
        verb = req.verb
        if (
            verb not in rt.verbs
            or verb in ("watch", "deletecollection")
            or (rt is NAMESPACES and verb == "delete")
        ):
            raise _method_not_allowed()
        resource = req.resource or rt.plural
        if self._forbidden(verb, resource, req.namespace, req.name):
            raise ApiError(
                403,
                "Forbidden",
                self._forbidden_message(verb, resource, rt, req.namespace, req.name),
                _details(rt, req.name),
            )
        if rt is SELF_SUBJECT_REVIEWS:
            return self._reply(201, self._whoami())
        if rt is SELF_SUBJECT_ACCESS_REVIEWS:
            if req.headers.get("Content-Type", "").startswith(_PROTOBUF_CT):
                try:
                    review = _access_review_from_protobuf(req.body)
                except ValueError as err:
                    raise _bad_request(f"unable to decode the protobuf body: {err}") from None
            else:
                review = self._json_body(req)
            return self._reply(201, self._access_review(review))
        if rt.namespaced and req.namespace is None and verb != "list":
            raise _unknown_path()
        if (req.name is None) != (verb in ("list", "create")):
            raise _method_not_allowed()  # e.g. POST to a named object, PUT to a collection
        serve = self._serve_scale if req.subresource == "scale" else self._serve_resource
        if admit is not None and verb in _ADMITTED_VERBS and self.admission_latency > 0:
            # What the real server refuses before it calls the webhooks (NotFound, a stale
            # resourceVersion, Invalid...) is answered at once: try the write as a dry run.
            with self._lock:
                try:
                    serve(replace(req, query={**req.query, "dryRun": "All"}), rt)
                except ApiError as err:
                    if err.reason != "AlreadyExists":  # found by storage, after admission
                        raise
            admit()
        # The write is decided here, under the lock, against the object as it is now.
        with self._lock:
            return serve(req, rt)

    @staticmethod
    def _reply(code: int, body: Any, content_type: str = _JSON_CT) -> tuple[int, bytes, str]:
        return code, json.dumps(body, separators=(",", ":")).encode(), content_type

    @staticmethod
    def _json_body(req: _Request) -> Any:
        content_type = req.headers.get("Content-Type", "")
        if content_type and "json" not in content_type:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media "
                f'types include: application/json, not "{content_type}"',
                unhandled=True,
            )
        try:
            return json.loads(req.body or b"null")
        except ValueError as err:
            raise _bad_request(f"the request body is not JSON: {err}") from None

    # ------------------------------------------------------------------ discovery

    def _discovery(self, req: _Request) -> tuple[int, bytes, str]:
        path = req.path.rstrip("/")
        accept = req.headers.get("Accept", "")
        aggregated = "as=APIGroupDiscoveryList" in accept and "v=v2;" in accept + ";"
        if path == "/version":
            major, minor = KUBE_VERSION[1:].split(".")[:2]
            return self._reply(
                200,
                {
                    "major": major,
                    "minor": minor,
                    "emulationMajor": major,
                    "emulationMinor": minor,
                    "minCompatibilityMajor": major,
                    "minCompatibilityMinor": str(int(minor) - 1),
                    "gitVersion": KUBE_VERSION,
                    "gitCommit": "0" * 40,
                    "gitTreeState": "clean",
                    "buildDate": "2025-11-01T00:00:00Z",
                    "goVersion": "go1.25.3",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                },
            )
        if path in ("/api", "/apis"):
            groups = [g for g in _GROUPS if (g == "") == (path == "/api")]
            if aggregated:
                return self._reply(
                    200,
                    {
                        "kind": "APIGroupDiscoveryList",
                        "apiVersion": "apidiscovery.k8s.io/v2",
                        "metadata": {},
                        "items": [self._group_discovery(g) for g in groups],
                    },
                    _AGGREGATED_CT,
                )
            if path == "/api":
                return self._reply(
                    200,
                    {
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [
                            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                        ],
                    },
                )
            return self._reply(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._api_group(g) for g in groups],
                },
            )
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            return self._reply(
                200, {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(parts[1])}
            )
        group = "" if parts[0] == "api" else parts[1]
        version = parts[-1]
        gv = f"{group}/{version}" if group else version
        resources: list[JSON] = []
        for rt in _GROUPS[group][version]:
            resources.append(
                {
                    "name": rt.plural,
                    "singularName": rt.singular,
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": list(rt.verbs),
                    **({"shortNames": list(rt.short_names)} if rt.short_names else {}),
                    **({"categories": list(rt.categories)} if rt.categories else {}),
                    "storageVersionHash": base64.b64encode(rt.kind.encode()).decode()[:11],
                }
            )
            for sub, sgroup, sversion, skind, sverbs in rt.subresources:
                resources.append(
                    {
                        "name": f"{rt.plural}/{sub}",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "group": sgroup,
                        "version": sversion,
                        "kind": skind,
                        "verbs": list(sverbs),
                    }
                )
        return self._reply(
            200,
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": gv,
                "resources": resources,
            },
        )

    @staticmethod
    def _api_group(group: str) -> JSON:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in _GROUPS[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    @staticmethod
    def _group_discovery(group: str) -> JSON:
        versions = []
        for version, rts in _GROUPS[group].items():
            resources = []
            for rt in rts:
                entry: JSON = {
                    "resource": rt.plural,
                    "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                    "scope": "Namespaced" if rt.namespaced else "Cluster",
                    "singularResource": rt.singular,
                    "verbs": list(rt.verbs),
                }
                if rt.short_names:
                    entry["shortNames"] = list(rt.short_names)
                if rt.categories:
                    entry["categories"] = list(rt.categories)
                if rt.subresources:
                    entry["subresources"] = [
                        {
                            "subresource": sub,
                            "responseKind": {"group": sg, "version": sv, "kind": sk},
                            "verbs": list(sverbs),
                        }
                        for sub, sg, sv, sk, sverbs in rt.subresources
                    ]
                resources.append(entry)
            versions.append({"version": version, "resources": resources, "freshness": "Current"})
        return {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}

    # ------------------------------------------------------------------ reviews

    def _whoami(self) -> JSON:
        return {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": self.user, "groups": list(self.groups)}},
        }

    def _access_review(self, body: Any) -> JSON:
        spec = body.get("spec") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise _bad_request("spec is required")
        attrs = spec.get("resourceAttributes")
        allowed = True
        if isinstance(attrs, dict):
            resource = str(attrs.get("resource") or "*")
            if attrs.get("subresource"):
                resource += f"/{attrs['subresource']}"
            with self._lock:
                allowed = not self._forbidden(
                    str(attrs.get("verb") or "*"),
                    resource,
                    attrs.get("namespace") or None,
                    attrs.get("name") or None,
                )
        status: JSON = {"allowed": allowed}  # RBAC gives no reason for a denial
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    # ------------------------------------------------------------------ storage

    def _bucket(self, rt: ResourceType, namespace: str | None) -> dict[str, JSON]:
        return self._store[rt.plural].setdefault(namespace or "", {})

    def _get(self, rt: ResourceType, namespace: str | None, name: str) -> JSON:
        obj = self._store[rt.plural].get(namespace or "", {}).get(name)
        if obj is None:
            raise _not_found(rt, name)
        return obj

    def _put(self, rt: ResourceType, namespace: str | None, obj: JSON) -> None:
        self._bucket(rt, namespace)[obj["metadata"]["name"]] = obj

    def _namespace_exists(self, name: str) -> bool:
        return name in self._store["namespaces"].get("", {})

    def _serve_resource(self, req: _Request, rt: ResourceType) -> tuple[int, bytes, str]:
        verb, ns, name = req.verb, req.namespace, req.name
        wants_table = "as=Table" in req.headers.get("Accept", "")
        if verb == "list":
            listed = self._list(req, rt)
            return self._reply(
                200, _table(rt, listed["items"], listed["metadata"]) if wants_table else listed
            )
        if verb == "create":
            body = self._json_body(req)
            created = self._create(rt, ns, body, dry_run=req.dry_run)
            return self._reply(201, created)
        assert name is not None
        if verb == "get":
            obj = self._get(rt, ns, name)
            return self._reply(
                200, _table(rt, [obj], {"resourceVersion": str(self._rv)}) if wants_table else obj
            )
        if verb == "delete":
            return self._reply(200, self._delete(req, rt))
        current = self._get(rt, ns, name)
        if verb == "update":
            body = self._json_body(req)
            return self._reply(200, self._update(rt, ns, name, body, current, dry_run=req.dry_run))
        if verb == "patch":
            patched = self._apply_patch(req, copy.deepcopy(current))
            return self._reply(
                200, self._update(rt, ns, name, patched, current, dry_run=req.dry_run)
            )
        raise _method_not_allowed()

    def _list(self, req: _Request, rt: ResourceType) -> JSON:
        store = self._store[rt.plural]
        if req.namespace is None:
            items = [obj for ns in sorted(store) for _, obj in sorted(store[ns].items())]
        else:
            items = [obj for _, obj in sorted(store.get(req.namespace, {}).items())]
        if "labelSelector" in req.query:
            match = _label_matcher(req.query["labelSelector"])
            items = [o for o in items if match(o["metadata"].get("labels") or {})]
        for term in filter(None, req.query.get("fieldSelector", "").split(",")):
            key, _, value = term.replace("==", "=").partition("=")
            if key == "metadata.name":
                items = [o for o in items if o["metadata"]["name"] == value]
            elif key == "metadata.namespace":
                items = [o for o in items if o["metadata"].get("namespace") == value]
            else:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'"{key}" is not a known field selector: only "metadata.name", '
                    '"metadata.namespace"',
                    unhandled=True,
                )
        meta: JSON = {"resourceVersion": str(self._rv)}
        start = 0
        if req.query.get("continue"):
            try:
                start = int(json.loads(base64.urlsafe_b64decode(req.query["continue"]))["i"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid") from None
        limit = int(req.query.get("limit") or 0)
        end = start + limit if limit > 0 else len(items)
        if end < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"i": end}).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [_strip_type(o) for o in items[start:end]],
        }

    def _new_object(self, rt: ResourceType, namespace: str | None, body: JSON) -> JSON:
        """A new stored object from a create body (no rv yet for workloads' status)."""
        meta_in = body.get("metadata") or {}
        name = meta_in.get("name") or ""
        if not name and meta_in.get("generateName"):
            name = f"{meta_in['generateName']}{uuid.uuid4().hex[:5]}"
        if not name:
            raise ApiError(
                422,
                "Invalid",
                f'{rt.kind} "" is invalid: metadata.name: '
                "Required value: name or generateName is required",
                {
                    "kind": rt.kind,
                    "group": rt.group,
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "field": "metadata.name",
                            "message": "Required value: name or generateName is required",
                        }
                    ],
                },
            )
        meta: JSON = {"name": name}
        if rt.namespaced:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = ""
        if rt.is_workload:
            meta["generation"] = 1
        meta["creationTimestamp"] = _now()
        obj: JSON = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        self._copy_meta(meta, meta_in, name)
        self._fill_body(rt, obj, body, None)
        return obj

    @staticmethod
    def _copy_meta(meta: JSON, meta_in: JSON, name: str) -> None:
        for key in ("labels", "annotations"):
            values = meta_in.get(key)
            if values is None:
                continue
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise _bad_request(
                    f"json: cannot unmarshal into Go struct field "
                    f"ObjectMeta.metadata.{key} of type map[string]string "
                    f"(object {name!r})"
                )
            if values:
                meta[key] = dict(values)
        for key in ("ownerReferences", "finalizers"):
            if meta_in.get(key):
                meta[key] = copy.deepcopy(meta_in[key])

    def _fill_body(self, rt: ResourceType, obj: JSON, body: JSON, current: JSON | None) -> None:
        """Copy spec (validated, defaulted) and keep the status of ``current``."""
        name = obj["metadata"]["name"]
        if rt is NAMESPACES:
            obj["spec"] = (
                copy.deepcopy(current["spec"]) if current else {"finalizers": ["kubernetes"]}
            )
            obj["status"] = copy.deepcopy(current["status"]) if current else {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            return
        spec = body.get("spec", {})
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise _bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                f"{rt.kind}: json: cannot unmarshal into Go struct field "
                f"{rt.kind}.spec of type v1.{rt.kind}Spec"
            )
        spec = copy.deepcopy(spec)
        if rt.is_workload:
            replicas = spec.setdefault("replicas", 1)
            if not isinstance(replicas, int) or isinstance(replicas, bool):
                raise _bad_request(
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    f"json: cannot unmarshal {type(replicas).__name__} into Go struct field "
                    f"{rt.kind}Spec.spec.replicas of type int32"
                )
            if replicas < 0:
                raise _invalid(
                    rt.kind,
                    rt.group,
                    name,
                    "spec.replicas",
                    replicas,
                    "must be greater than or equal to 0",
                )
            obj["spec"] = spec
            obj["status"] = copy.deepcopy(current["status"]) if current else {}
        else:
            obj["spec"] = spec

    def _reconcile(self, rt: ResourceType, obj: JSON) -> None:
        """What the workload controller would write into status."""
        if not rt.is_workload:
            return
        replicas = int(obj["spec"].get("replicas", 1))
        generation = int(obj["metadata"].get("generation", 1))
        if rt is DEPLOYMENTS:
            obj["status"] = _deployment_status(
                replicas, generation, obj["metadata"]["creationTimestamp"]
            )
        else:
            obj["status"] = _statefulset_status(obj["metadata"]["name"], replicas, generation)

    def _create(self, rt: ResourceType, namespace: str | None, body: Any, *, dry_run: bool) -> JSON:
        if not isinstance(body, dict):
            raise _bad_request("the request body must be a JSON object")
        self._check_type(rt, body)
        meta_in = body.get("metadata") or {}
        if rt.namespaced and meta_in.get("namespace") not in (None, "", namespace):
            raise _bad_request(
                "the namespace of the provided object does not match the "
                "namespace sent on the request"
            )
        if rt.namespaced and namespace is not None and not self._namespace_exists(namespace):
            raise _not_found(NAMESPACES, namespace)
        obj = self._new_object(rt, namespace, body)
        name = obj["metadata"]["name"]
        if name in self._bucket(rt, namespace):
            raise _already_exists(rt, name)
        if not self.controller:
            self._reconcile(rt, obj)
        if dry_run:
            return obj
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._put(rt, namespace, obj)
        answer = copy.deepcopy(obj)
        if self.controller and rt.is_workload:
            self._reconcile(rt, obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
        return answer

    @staticmethod
    def _check_type(rt: ResourceType, body: JSON) -> None:
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if (kind and kind != rt.kind) or (api_version and api_version != rt.api_version):
            raise _bad_request(
                f"the API version in the data ({api_version}) does not match "
                f"the expected API version ({rt.api_version})"
                if kind == rt.kind
                else f'{kind} in version "{rt.version}" cannot be handled as a '
                f'{rt.kind}: no kind "{kind}" is registered for version '
                f'"{rt.api_version}"'
            )

    def _update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        current: JSON,
        *,
        dry_run: bool,
    ) -> JSON:
        """PUT semantics: ``body`` replaces ``current`` (status excepted). Returns the new
        stored object, or ``current`` itself for a no-op update."""
        if not isinstance(body, dict):
            raise _bad_request("the request body must be a JSON object")
        self._check_type(rt, body)
        meta_in = body.get("metadata") or {}
        if not isinstance(meta_in, dict):
            raise _bad_request("metadata must be an object")
        if meta_in.get("name") not in (None, "", name):
            raise _bad_request(
                f"the name of the object ({meta_in['name']}) does not match the "
                f"name on the URL ({name})"
            )
        if rt.namespaced and meta_in.get("namespace") not in (None, "", namespace):
            raise _bad_request(
                "the namespace of the provided object does not match the "
                "namespace sent on the request"
            )
        rv = meta_in.get("resourceVersion")
        if rv not in (None, "") and rv != current["metadata"]["resourceVersion"]:
            raise _conflict(rt, name)
        uid = meta_in.get("uid")
        if uid not in (None, "") and uid != current["metadata"]["uid"]:
            raise _conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in "
                f"object meta: {current['metadata']['uid']}",
            )
        old_meta = current["metadata"]
        meta: JSON = {
            k: old_meta[k]
            for k in (
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
            )
            if k in old_meta
        }
        new: JSON = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        self._copy_meta(meta, meta_in, name)
        self._fill_body(rt, new, body, current)
        spec_changed = rt.is_workload and new["spec"] != current.get("spec")
        if spec_changed:
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
            if not self.controller:
                self._reconcile(rt, new)
        if new == current:
            return current
        if dry_run:
            return new
        meta["resourceVersion"] = self._next_rv()
        self._put(rt, namespace, new)
        if spec_changed and self.controller:
            answer = copy.deepcopy(new)
            self._reconcile(rt, new)
            meta["resourceVersion"] = self._next_rv()
            return answer
        return new

    def _delete(self, req: _Request, rt: ResourceType) -> JSON:
        assert req.name is not None
        current = self._get(rt, req.namespace, req.name)
        opts = self._json_body(req) if req.body else None
        dry_run = req.dry_run
        if isinstance(opts, dict):
            pre = opts.get("preconditions") or {}
            want_rv, have_rv = pre.get("resourceVersion"), current["metadata"]["resourceVersion"]
            if want_rv and want_rv != have_rv:
                raise _conflict(
                    rt,
                    req.name,
                    f"Precondition failed: ResourceVersion in "
                    f"precondition: {want_rv}, ResourceVersion in object meta: "
                    f"{have_rv}",
                )
            want_uid, have_uid = pre.get("uid"), current["metadata"]["uid"]
            if want_uid and want_uid != have_uid:
                raise _conflict(
                    rt,
                    req.name,
                    f"Precondition failed: UID in precondition: "
                    f"{want_uid}, UID in object meta: {have_uid}",
                )
            dry_run = dry_run or "All" in (opts.get("dryRun") or [])
        if not dry_run:
            del self._bucket(rt, req.namespace)[req.name]
            self._next_rv()
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": _details(rt, req.name, uid=current["metadata"]["uid"]),
        }

    def _apply_patch(self, req: _Request, doc: JSON) -> Any:
        content_type = req.headers.get("Content-Type", "").split(";")[0].strip()
        patch = self._json_body(req)
        try:
            if content_type == _MERGE_PATCH:
                return _merge_patch(doc, patch)
            if content_type == _STRATEGIC_PATCH:
                if req.subresource is None and not isinstance(patch, dict):
                    raise _PatchError("strategic merge patch must be a JSON object")
                return _strategic_merge_patch(doc, patch)
            if content_type == _JSON_PATCH:
                return _json_patch(doc, patch)
        except _PatchError as err:
            raise ApiError(422, "Invalid", str(err)) from None
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media "
            f"types include: {_JSON_PATCH}, {_MERGE_PATCH}, {_STRATEGIC_PATCH}",
            unhandled=True,
        )

    # ------------------------------------------------------------------ scale subresource

    @staticmethod
    def _scale_of(obj: JSON) -> JSON:
        meta = obj["metadata"]
        spec: JSON = {}
        replicas = int(obj["spec"].get("replicas", 1))
        if replicas:
            spec["replicas"] = replicas
        status: JSON = {"replicas": int(obj.get("status", {}).get("replicas", 0))}
        selector = _selector_string(obj["spec"])
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": spec,
            "status": status,
        }

    def _serve_scale(self, req: _Request, rt: ResourceType) -> tuple[int, bytes, str]:
        assert req.name is not None
        current = self._get(rt, req.namespace, req.name)
        scale = self._scale_of(current)
        if req.method == "GET":
            return self._reply(200, scale)
        if req.method == "PUT":
            body = self._json_body(req)
        elif req.method == "PATCH":
            body = self._apply_patch(req, copy.deepcopy(scale))
        else:
            raise _method_not_allowed()
        if not isinstance(body, dict):
            raise _bad_request("the request body must be a JSON object")
        meta_in = body.get("metadata") or {}
        if meta_in.get("name") not in (None, "", req.name):
            raise _bad_request(
                f"the name of the object ({meta_in['name']}) does not match the "
                f"name on the URL ({req.name})"
            )
        rv = meta_in.get("resourceVersion")
        if rv not in (None, "") and rv != current["metadata"]["resourceVersion"]:
            raise _conflict(rt, req.name)
        replicas = (body.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise _bad_request(
                'Scale in version "v1" cannot be handled as a Scale: json: '
                "cannot unmarshal into Go struct field ScaleSpec.spec.replicas "
                "of type int32"
            )
        if replicas < 0:
            raise _invalid(
                "Scale",
                "autoscaling",
                req.name,
                "spec.replicas",
                replicas,
                "must be greater than or equal to 0",
            )
        new = copy.deepcopy(current)
        new["spec"]["replicas"] = replicas
        new["metadata"]["resourceVersion"] = ""
        updated = self._update(rt, req.namespace, req.name, new, current, dry_run=req.dry_run)
        return self._reply(200, self._scale_of(updated))


def _go_duration(text: str | None) -> float | None:
    """Seconds in a Go duration as kubectl sends it ("30s", "1m0s", "500ms"); None if absent."""
    if not text:
        return None
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    i = 0
    while i < len(text):
        if text[i].isdigit() or text[i] == ".":
            number += text[i]
            i += 1
            continue
        unit = next(u for u in ("ms", "us", "ns", "h", "m", "s") if text.startswith(u, i))
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    return total
