"""Discovery and OpenAPI: what kubectl reads before it makes its first real request.

- ``/version``, ``/api``, ``/apis`` (aggregated discovery ``apidiscovery.k8s.io/v2`` when the
  Accept header asks for it, as kubectl >= 1.30 does; the legacy ``APIVersions`` /
  ``APIGroupList`` otherwise), ``/api/v1``, ``/apis/<group>`` and ``/apis/<group>/<version>``
  for every group and version the server's registry serves (registry.py) -- the custom
  resources installed at runtime included, as soon as their definition is stored. kubectl
  caches discovery (under ``KUBECACHEDIR``); when it meets a type its cache does not know it
  drops the cache and asks again once, so a type installed after an earlier kubectl call is
  found by the next one.
- OpenAPI, for the default client-side validation of ``kubectl create/replace -f``
  (``--validate=strict``): kubectl asks ``/openapi/v3`` (whether the server supports
  server-side field validation; answered 404 like a server without OpenAPI v3 -- an answer of
  ``{"paths": {}}`` would cost an extra CRD list), then needs ``/openapi/v2`` as protobuf (a
  404 there fails the command: ``error validating data: the server could not find the
  requested resource``). ``/openapi/v2`` is answered with the smallest gnostic protobuf
  document (no definitions: kubectl finds no schema and validates nothing client-side). Both
  are expected answers, not recorded in ``unhandled``. ``fieldValidation=Strict`` itself is
  accepted and ignored (unknown fields are kept, not rejected).
"""

from __future__ import annotations

import base64

from tests.apiserver.errors import ApiError, unknown_path
from tests.apiserver.kinds.base import Kind
from tests.apiserver.protobuf import encode_field
from tests.apiserver.registry import Registry
from tests.apiserver.request import Request
from tests.apiserver.wire import AGGREGATED_CT, JSON, OPENAPI_V2_CT, Reply, reply

__all__ = ["KUBE_VERSION", "discovery", "openapi"]

# group -> version -> kinds (Registry.groups)
Groups = dict[str, dict[str, tuple[Kind, ...]]]

KUBE_VERSION = "v1.36.2"


def openapi(req: Request) -> Reply:
    """``/openapi/v2`` and ``/openapi/v3`` (see the module docstring)."""
    if req.method == "GET" and req.path.rstrip("/") == "/openapi/v2":
        return 200, _openapi_v2_document(), OPENAPI_V2_CT
    if req.method == "GET" and req.path.rstrip("/") == "/openapi/v3":
        # Like a server without OpenAPI v3: kubectl then checks /openapi/v2 (answering
        # {"paths": {}} here costs an extra CRD list). Expected, so not "unhandled".
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    raise unknown_path()


def _openapi_v2_document() -> bytes:
    """The smallest OpenAPI v2 document kubectl accepts: ``{"swagger": "2.0", "info": {...},
    "paths": {}, "definitions": {}}`` as gnostic's ``openapi.v2.Document`` protobuf. With no
    definitions, kubectl's client-side validation finds no schema for any kind and skips."""
    info = encode_field(1, b"Kubernetes") + encode_field(2, KUBE_VERSION.encode())
    return (
        encode_field(1, b"2.0")
        + encode_field(2, info)
        + encode_field(8, b"")
        + encode_field(9, b"")
    )


def discovery(req: Request, port: int, registry: Registry) -> Reply:
    """A discovery document (a GET; the path was found to be one by routing)."""
    groups = registry.groups  # one snapshot: a CRD installed meanwhile is in the next answer
    path = req.path.rstrip("/")
    accept = req.headers.get("Accept", "")
    aggregated = "as=APIGroupDiscoveryList" in accept and "v=v2;" in accept + ";"
    if path == "/version":
        return reply(200, _version())
    if path in ("/api", "/apis"):
        names = [g for g in groups if (g == "") == (path == "/api")]
        if aggregated:
            return reply(
                200,
                {
                    "kind": "APIGroupDiscoveryList",
                    "apiVersion": "apidiscovery.k8s.io/v2",
                    "metadata": {},
                    "items": [_group_discovery(groups, g) for g in names],
                },
                AGGREGATED_CT,
            )
        if path == "/api":
            return reply(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}
                    ],
                },
            )
        return reply(
            200,
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_api_group(groups, g) for g in names],
            },
        )
    parts = path.strip("/").split("/")
    if parts[0] == "apis" and len(parts) == 2:
        return reply(200, {"kind": "APIGroup", "apiVersion": "v1", **_api_group(groups, parts[1])})
    group = "" if parts[0] == "api" else parts[1]
    return reply(200, _resource_list(groups, group, parts[-1]))


def _version() -> JSON:
    major, minor = KUBE_VERSION[1:].split(".")[:2]
    return {
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
    }


def _resource_list(groups: Groups, group: str, version: str) -> JSON:
    resources: list[JSON] = []
    for kind in groups[group][version]:
        rt = kind.resource
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
        for sub in rt.subresources:
            resources.append(
                {
                    "name": f"{rt.plural}/{sub.name}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "group": sub.group,
                    "version": sub.version,
                    "kind": sub.kind,
                    "verbs": list(sub.verbs),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _api_group(groups: Groups, group: str) -> JSON:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in groups[group]]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def _group_discovery(groups: Groups, group: str) -> JSON:
    versions = []
    for version, kinds in groups[group].items():
        resources = []
        for kind in kinds:
            rt = kind.resource
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
                        "subresource": sub.name,
                        "responseKind": {
                            "group": sub.group,
                            "version": sub.version,
                            "kind": sub.kind,
                        },
                        "verbs": list(sub.verbs),
                    }
                    for sub in rt.subresources
                ]
            resources.append(entry)
        versions.append({"version": version, "resources": resources, "freshness": "Current"})
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}
