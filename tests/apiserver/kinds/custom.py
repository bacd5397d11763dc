"""CustomResourceDefinitions (``apiextensions.k8s.io/v1``) and the custom resources they
define.

A CustomResourceDefinition is stored like any object (cluster-scoped, named
``<plural>.<group>``; get, list, create -- update, patch and delete are not served: 405), and
once stored its kind is served: every served version of it, listed by discovery under its group
(``kubectl get scaledobjects.keda.sh -A``), all versions on one storage (conversion strategy
None: only ``apiVersion`` differs). Before that, kubectl answers as for any unknown type:
``error: the server doesn't have a resource type "scaledobjects"`` (with the group suffix,
kubectl 1.37 adds `` in group "keda.sh"``), exit 1. Tests install one with
``ApiServer.install_crd`` (or ``install_crds`` and the ready-made definitions here); ``kubectl
create -f`` of a CustomResourceDefinition works too.

Custom resources follow the real custom resource strategy: whatever the object carries beside
``metadata`` is kept as written (no schema: ``x-kubernetes-preserve-unknown-fields``);
``metadata.generation`` starts at 1 and is bumped by any change but to metadata and status;
with the ``status`` subresource (the ready-made ones have it) the status is written only
through it -- dropped on create, kept through updates; a PUT must carry
``metadata.resourceVersion`` (AllowUnconditionalUpdate is false: 422 without); a strategic
merge patch is refused 415 (kubectl: ``error: application/strategic-merge-patch+json is not
supported by keda.sh/v1alpha1, Kind=ScaledObject: ...``; use ``--type=merge``). The plural of a
custom resource must not be one the server already stores for another group (a limitation of
this server, whose storage is keyed by plural).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from tests.apiserver.errors import FieldError, invalid
from tests.apiserver.kinds import status
from tests.apiserver.kinds.base import (
    RW,
    Column,
    Kind,
    ResourceType,
    Subresource,
    SubresourceHandler,
)
from tests.apiserver.wire import JSON, now

if TYPE_CHECKING:
    from tests.apiserver.storage import Store

__all__ = [
    "ARGO_APPLICATION",
    "ARGO_ROLLOUT",
    "CRD",
    "CUSTOM_RESOURCE_DEFINITIONS",
    "FLUX_HELM_RELEASE",
    "FLUX_KUSTOMIZATION",
    "GADGET",
    "KEDA_SCALED_OBJECT",
    "READY_MADE",
    "WIDGET",
    "CustomResource",
    "CustomResourceDefinitions",
    "custom_kinds",
]

CUSTOM_RESOURCE_DEFINITIONS = ResourceType(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "customresourcedefinition",
    "CustomResourceDefinition",
    False,
    RW,
    ("crd", "crds"),
    ("api-extensions",),
    (
        Subresource(
            "status",
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            ("get", "patch", "update"),
        ),
    ),
)
_STATUS_VERBS = ("get", "patch", "update")
_OWN = ("apiVersion", "kind", "metadata", "status")  # what is not a custom resource's content


@dataclass(frozen=True)
class CRD:
    """A CustomResourceDefinition with one version (served, stored), a schema that keeps
    every field, and the ``status`` subresource (unless ``status`` is False)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = True
    # the scale subresource: (specReplicasPath, statusReplicasPath), or none
    scale: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        """``<plural>.<group>``: the CustomResourceDefinition's name."""
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def manifest(self) -> JSON:
        """The CustomResourceDefinition as a client writes it."""
        names: JSON = {
            "kind": self.kind,
            "listKind": f"{self.kind}List",
            "plural": self.plural,
            "singular": self.singular or self.kind.lower(),
        }
        if self.short_names:
            names["shortNames"] = list(self.short_names)
        if self.categories:
            names["categories"] = list(self.categories)
        version: JSON = {
            "name": self.version,
            "served": True,
            "storage": True,
            "schema": {
                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            },
        }
        subresources: JSON = {}
        if self.status:
            subresources["status"] = {}
        if self.scale is not None:
            subresources["scale"] = {
                "specReplicasPath": self.scale[0],
                "statusReplicasPath": self.scale[1],
                "labelSelectorPath": ".status.selector",
            }
        if subresources:
            version["subresources"] = subresources
        return {
            "apiVersion": CUSTOM_RESOURCE_DEFINITIONS.api_version,
            "kind": CUSTOM_RESOURCE_DEFINITIONS.kind,
            "metadata": {"name": self.name},
            "spec": {
                "group": self.group,
                "names": names,
                "scope": "Namespaced" if self.namespaced else "Cluster",
                "versions": [version],
            },
        }


# The definitions of the owners nsscale looks at, named as the projects name them.
KEDA_SCALED_OBJECT = CRD(
    "keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", short_names=("so",)
)
FLUX_KUSTOMIZATION = CRD(
    "kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations", short_names=("ks",)
)
FLUX_HELM_RELEASE = CRD(
    "helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases", short_names=("hr",)
)
ARGO_APPLICATION = CRD(
    "argoproj.io", "v1alpha1", "Application", "applications", short_names=("app", "apps")
)
ARGO_ROLLOUT = CRD(
    "argoproj.io",
    "v1alpha1",
    "Rollout",
    "rollouts",
    short_names=("ro",),
    scale=(".spec.replicas", ".status.replicas"),
)
# a made-up kind that keeps its count elsewhere than spec.replicas
WIDGET = CRD(
    "example.com",
    "v1",
    "Widget",
    "widgets",
    short_names=("wg",),
    scale=(".spec.size", ".status.readySize"),
)
# the same without a scale subresource: nothing nsscale can move by
GADGET = CRD("example.com", "v1", "Gadget", "gadgets")
READY_MADE = (KEDA_SCALED_OBJECT, FLUX_KUSTOMIZATION, FLUX_HELM_RELEASE, ARGO_APPLICATION)


def _content(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in _OWN}


class CustomResource(Kind):
    """The rules of every custom resource; :func:`custom_kinds` makes one class per served
    version of a definition."""

    generation = True
    unconditional_update = False
    strategic_merge = False
    # the apiVersion objects are stored with (the definition's storage version)
    storage_api_version: ClassVar[str]
    # the status subresource: status written only through it
    status_subresource: ClassVar[bool] = True

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        obj["apiVersion"] = self.storage_api_version
        obj.update(copy.deepcopy(_content(body)))
        if not self.status_subresource:
            if body.get("status") is not None:
                obj["status"] = copy.deepcopy(body["status"])
        elif current is not None and "status" in current:
            obj["status"] = copy.deepcopy(current["status"])

    def bumps_generation(self, new: JSON, current: JSON) -> bool:
        if not self.status_subresource:
            return _content(new) != _content(current) or new.get("status") != current.get("status")
        return _content(new) != _content(current)

    def present(self, obj: JSON) -> JSON:
        api_version = self.resource.api_version
        if obj.get("apiVersion") == api_version:
            return obj
        return {**obj, "apiVersion": api_version}


def custom_kinds(definition: JSON) -> list[Kind]:
    """The kinds a stored CustomResourceDefinition serves: one per served version."""
    spec = definition["spec"]
    names = spec["names"]
    versions = [v for v in spec["versions"] if v.get("served", True)]
    storage = next((v["name"] for v in spec["versions"] if v.get("storage")), versions[0]["name"])
    kinds: list[Kind] = []
    for version in versions:
        has_status = "status" in (version.get("subresources") or {})
        subresources = (
            (Subresource("status", spec["group"], version["name"], names["kind"], _STATUS_VERBS),)
            if has_status
            else ()
        )
        rt = ResourceType(
            spec["group"],
            version["name"],
            names["plural"],
            names["singular"],
            names["kind"],
            spec["scope"] == "Namespaced",
            RW,
            tuple(names.get("shortNames") or ()),
            tuple(names.get("categories") or ()),
            subresources,
        )
        handlers: Mapping[str, SubresourceHandler] = MappingProxyType(
            {"status": status.serve} if has_status else {}
        )
        cls = type(
            f"{names['kind']}{version['name'].capitalize()}",
            (CustomResource,),
            {
                "resource": rt,
                "storage_api_version": f"{spec['group']}/{storage}",
                "status_subresource": has_status,
                "handlers": handlers,
            },
        )
        kinds.append(cls())
    return kinds


def _required(path: str) -> FieldError:
    return FieldError(path, "", "", reason="FieldValueRequired")


class CustomResourceDefinitions(Kind):
    resource = CUSTOM_RESOURCE_DEFINITIONS
    generation = True
    refused = frozenset({"update", "patch", "delete"})
    table_columns = (
        Column("Name", lambda obj: obj["metadata"]["name"]),
        Column("Created At", lambda obj: obj["metadata"].get("creationTimestamp", ""), "date"),
    )

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        rt = self.resource
        name = obj["metadata"]["name"]
        spec = self.spec(body)
        given = spec.get("names")
        names: JSON = given if isinstance(given, dict) else {}
        errors: list[FieldError] = []
        for key in ("plural", "kind"):
            if not names.get(key):
                errors.append(_required(f"spec.names.{key}"))
        if not spec.get("group"):
            errors.append(_required("spec.group"))
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            errors.append(
                FieldError(
                    "spec.scope",
                    spec.get("scope") or "",
                    'supported values: "Cluster", "Namespaced"',
                    reason="FieldValueNotSupported",
                )
            )
        versions: list[JSON] = [v for v in spec.get("versions") or () if isinstance(v, dict)]
        if not versions:
            errors.append(_required("spec.versions"))
        elif [bool(v.get("storage")) for v in versions].count(True) != 1:
            why = "must have exactly one version marked as storage version"
            errors.append(FieldError("spec.versions", versions, why))
        if not errors and name != f"{names['plural']}.{spec['group']}":
            why = 'must be spec.names.plural+"."+spec.group'
            errors.append(FieldError("metadata.name", name, why))
        if errors:
            raise invalid(rt.kind, rt.group, name, errors)
        names.setdefault("singular", str(names["kind"]).lower())
        names.setdefault("listKind", f"{names['kind']}List")
        spec["names"] = names
        spec.setdefault("conversion", {"strategy": "None"})
        obj["spec"] = spec
        stamp = now()
        storage = next(v["name"] for v in versions if v.get("storage"))
        obj["status"] = (
            copy.deepcopy(current["status"])
            if current
            else {
                "conditions": [
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "lastTransitionTime": stamp,
                        "reason": "NoConflicts",
                        "message": "no conflicts found",
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "lastTransitionTime": stamp,
                        "reason": "InitialNamesAccepted",
                        "message": "the initial names have been accepted",
                    },
                ],
                "acceptedNames": copy.deepcopy(names),
                "storedVersions": [storage],
            }
        )

    def stored(self, store: Store, obj: JSON) -> None:
        for kind in custom_kinds(obj):
            rt = kind.resource
            if store.registry.plural_taken(rt.plural, rt.group):
                continue  # not served: this server keys its storage by plural
            store.add_type(rt)
            store.registry.add(kind)
