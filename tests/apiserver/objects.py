"""How every stored object is created, replaced and deleted, whatever its kind.

Common to all kinds: ``metadata.name`` (or ``generateName``), ``uid``, ``creationTimestamp``
and ``resourceVersion`` are the server's; ``labels``, ``annotations``, ``ownerReferences`` and
``finalizers`` are the client's (``labels``/``annotations`` absent when empty, as in a real
cluster); a ``resourceVersion`` or ``uid`` in the body is a precondition (409 Conflict when it
differs; without one an update is unconditional); an update that changes nothing is answered
and consumes no resourceVersion; a dry run is answered and consumes none. What differs by kind
(spec, status, generation, the controller) is the kind's :class:`~tests.apiserver.kinds.base.Kind`;
how far the controller has got (readiness.py) is the store's ``pace``.

Preconditions fail with the real messages: a ``uid`` in a PUT body that is not the stored
object's is checked by storage, before the resourceVersion (``Operation cannot be fulfilled on
deployments.apps "a": StorageError: invalid object, Code: 4, Key: /registry/deployments/ns/a,
ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: <uid>, UID in
object meta: <uid>``); the preconditions of a DELETE are checked against the object first
(``Operation cannot be fulfilled on Lease.coordination.k8s.io "x": the ResourceVersion in the
precondition (1) does not match the ResourceVersion in record (2). The object might have been
modified`` -- named by Kind, as rest.BeforeDelete does). A kind whose strategy allows it
(``Kind.create_on_update``: Leases) is created by a PUT to a missing object; one that does not
allow unconditional updates (``Kind.unconditional_update``: Leases) refuses a PUT without a
resourceVersion (422).

ownerReferences are validated as the real server does: ``apiVersion``, ``kind``, ``name`` and
``uid`` must not be empty, and at most one may have ``controller: true`` (422 Invalid).

With ``controller`` (ApiServer.controller) a write that changes a controlled kind's spec is
stored with the old status and answered; the "controller" then writes the new status at once,
consuming a second resourceVersion. Without it the status changes in the same write.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from tests.apiserver.errors import (
    ApiError,
    FieldError,
    already_exists,
    bad_request,
    conflict,
    details,
    invalid,
    not_found,
)
from tests.apiserver.kinds.base import Kind, ResourceType
from tests.apiserver.kinds.namespaces import NAMESPACES
from tests.apiserver.storage import Store
from tests.apiserver.wire import JSON, now

__all__ = [
    "check_name",
    "check_resource_version",
    "create",
    "create_on_update",
    "delete",
    "new_object",
    "owner_reference",
    "update",
]

# metadata the server keeps through an update
_SERVER_META = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp")
_OWNER_REFERENCE_KEYS = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")


def owner_reference(owner: JSON, *, controller: bool = True) -> JSON:
    """An ownerReference to ``owner``, as a controller writes it into what it owns."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def new_object(kind: Kind, namespace: str | None, body: JSON) -> JSON:
    """A new object from a create body (its resourceVersion still empty)."""
    rt = kind.resource
    meta_in = body.get("metadata") or {}
    name = meta_in.get("name") or ""
    if not name and meta_in.get("generateName"):
        name = f"{meta_in['generateName']}{uuid.uuid4().hex[:5]}"
    if not name:
        required = "name or generateName is required"
        error = FieldError("metadata.name", "", required, reason="FieldValueRequired")
        raise invalid(rt.kind, rt.group, "", [error])
    meta: JSON = {"name": name}
    if rt.namespaced:
        meta["namespace"] = namespace
    meta["uid"] = str(uuid.uuid4())
    meta["resourceVersion"] = ""
    if kind.generation:
        meta["generation"] = 1
    meta["creationTimestamp"] = now()
    obj: JSON = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
    _copy_meta(rt, meta, meta_in, name)
    kind.fill(obj, body, None)
    return obj


def _copy_meta(rt: ResourceType, meta: JSON, meta_in: JSON, name: str) -> None:
    """Copy the client's metadata into ``meta``."""
    for key in ("labels", "annotations"):
        values = meta_in.get(key)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise bad_request(
                f"json: cannot unmarshal into Go struct field "
                f"ObjectMeta.metadata.{key} of type map[string]string "
                f"(object {name!r})"
            )
        if values:
            meta[key] = dict(values)
    refs = meta_in.get("ownerReferences")
    if refs is not None and (
        not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs)
    ):
        raise bad_request(
            "json: cannot unmarshal into Go struct field ObjectMeta.metadata.ownerReferences "
            f"of type []v1.OwnerReference (object {name!r})"
        )
    if refs:
        _check_owner_references(rt, name, refs)
    for key in ("ownerReferences", "finalizers"):
        if meta_in.get(key):
            meta[key] = copy.deepcopy(meta_in[key])


def _check_owner_references(rt: ResourceType, name: str, refs: list[JSON]) -> None:
    """ValidateOwnerReferences of apimachinery."""
    path = "metadata.ownerReferences"
    errors: list[FieldError] = []
    controller = ""
    for ref in refs:
        api_version = str(ref.get("apiVersion") or "")
        version = api_version.split("/")[-1] if api_version.count("/") <= 1 else ""
        for key, empty in (("apiVersion", not version), ("kind", False), ("name", False)):
            if empty or not ref.get(key):
                what = "version" if key == "apiVersion" else key
                errors.append(
                    FieldError(f"{path}.{key}", ref.get(key) or "", f"{what} must not be empty")
                )
        if not ref.get("uid"):
            errors.append(FieldError(f"{path}.uid", ref.get("uid") or "", "uid must not be empty"))
        if ref.get("controller") is True:
            this = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                shown = [{k: r[k] for k in _OWNER_REFERENCE_KEYS if k in r} for r in refs]
                why = (
                    "Only one reference can have Controller set to true. Found "
                    f'"true" in references for {controller} and {this}'
                )
                errors.append(FieldError(path, shown, why))
            else:
                controller = this
    if errors:
        raise invalid(rt.kind, rt.group, name, errors)


def _check_type(rt: ResourceType, body: JSON) -> None:
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind and kind != rt.kind) or (api_version and api_version != rt.api_version):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match "
            f"the expected API version ({rt.api_version})"
            if kind == rt.kind
            else f'{kind} in version "{rt.version}" cannot be handled as a '
            f'{rt.kind}: no kind "{kind}" is registered for version '
            f'"{rt.api_version}"'
        )


def check_name(meta_in: JSON, name: str) -> None:
    """The name in a written body, if any, must be the one on the URL."""
    if meta_in.get("name") not in (None, "", name):
        raise bad_request(
            f"the name of the object ({meta_in['name']}) does not match the "
            f"name on the URL ({name})"
        )


def check_resource_version(rt: ResourceType, name: str, meta_in: JSON, current: JSON) -> None:
    """A resourceVersion in a written body is a precondition: 409 Conflict when stale."""
    rv = meta_in.get("resourceVersion")
    if rv not in (None, "") and rv != current["metadata"]["resourceVersion"]:
        raise conflict(rt, name)


def _check_namespace(rt: ResourceType, meta_in: JSON, namespace: str | None) -> None:
    if rt.namespaced and meta_in.get("namespace") not in (None, "", namespace):
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )


def create(
    store: Store,
    kind: Kind,
    namespace: str | None,
    body: Any,
    *,
    dry_run: bool,
    controller: bool,
) -> JSON:
    """POST semantics; returns what is answered."""
    rt = kind.resource
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    _check_type(rt, body)
    meta_in = body.get("metadata") or {}
    _check_namespace(rt, meta_in, namespace)
    if (
        rt.namespaced
        and namespace is not None
        and store.find(NAMESPACES.plural, None, namespace) is None
    ):
        raise not_found(NAMESPACES, namespace)
    obj = new_object(kind, namespace, body)
    name = obj["metadata"]["name"]
    if name in store.bucket(rt, namespace):
        raise already_exists(rt, name)
    return _store_new(store, kind, namespace, obj, dry_run=dry_run, controller=controller)


def _put_metadata(rt: ResourceType, body: Any, namespace: str | None, name: str) -> JSON:
    """The metadata of a PUT's body, once the body is checked to be this object."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    _check_type(rt, body)
    meta_in = body.get("metadata") or {}
    if not isinstance(meta_in, dict):
        raise bad_request("metadata must be an object")
    check_name(meta_in, name)
    _check_namespace(rt, meta_in, namespace)
    return meta_in


def create_on_update(
    store: Store,
    kind: Kind,
    namespace: str | None,
    name: str,
    body: Any,
    *,
    may_create: bool,
    dry_run: bool,
    controller: bool,
) -> JSON:
    """PUT to an object that does not exist, of a kind whose strategy allows creating on
    update (Store.Update's create path): the body's resourceVersion is not checked, a ``uid``
    in it is a precondition that fails (the stored "object" has none), the namespace must
    exist, and the caller must be allowed to ``create`` (``may_create``: else 403 with the
    authorizer's reason, which RBAC leaves empty). Returns what is answered (201)."""
    rt = kind.resource
    meta_in = _put_metadata(rt, body, namespace, name)
    uid = meta_in.get("uid")
    if uid not in (None, ""):
        raise uid_precondition_failed(rt, namespace, name, str(uid), "")
    if (
        rt.namespaced
        and namespace is not None
        and store.find(NAMESPACES.plural, None, namespace) is None
    ):
        raise not_found(NAMESPACES, namespace)
    obj = new_object(kind, namespace, {**body, "metadata": {**meta_in, "name": name}})
    if not may_create:
        raise ApiError(
            403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: ', details(rt, name)
        )
    return _store_new(store, kind, namespace, obj, dry_run=dry_run, controller=controller)


def _store_new(
    store: Store, kind: Kind, namespace: str | None, obj: JSON, *, dry_run: bool, controller: bool
) -> JSON:
    """Store a new object (not for a dry run); returns what is answered."""
    if not controller:
        store.reconcile(kind, obj)
    if dry_run:
        return obj
    obj["metadata"]["resourceVersion"] = store.next_rv()
    store.put(kind.resource, namespace, obj)
    answer = copy.deepcopy(obj)
    if controller and kind.controlled:
        store.reconcile(kind, obj)
        if obj != answer:  # a stalled controller (readiness.py) writes nothing
            obj["metadata"]["resourceVersion"] = store.next_rv()
    kind.stored(store, obj)
    return answer


def uid_precondition_failed(
    rt: ResourceType, namespace: str | None, name: str, want: str, have: str
) -> ApiError:
    """The 409 of a write whose ``uid`` precondition storage found failed (etcd3's
    Preconditions.Check, then InterpretUpdateError)."""
    key = (
        f"/registry/{rt.plural}/{namespace}/{name}"
        if namespace
        else f"/registry/{rt.plural}/{name}"
    )
    return conflict(
        rt,
        name,
        f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: UID in precondition: {want}, UID in "
        f"object meta: {have}",
    )


def update(
    store: Store,
    kind: Kind,
    namespace: str | None,
    name: str,
    body: Any,
    current: JSON,
    *,
    dry_run: bool,
    controller: bool,
) -> JSON:
    """PUT semantics: ``body`` replaces ``current`` (what the server owns excepted). Returns
    the new stored object (what is answered), or ``current`` itself for a no-op update."""
    rt = kind.resource
    meta_in = _put_metadata(rt, body, namespace, name)
    uid = meta_in.get("uid")
    if uid not in (None, "") and uid != current["metadata"]["uid"]:
        raise uid_precondition_failed(rt, namespace, name, str(uid), current["metadata"]["uid"])
    if meta_in.get("resourceVersion") in (None, "") and not kind.unconditional_update:
        why = "must be specified for an update"
        # NewInvalid of the GroupKind {group, plural}: "leases.coordination.k8s.io"
        raise invalid(rt.plural, rt.group, name, [FieldError("metadata.resourceVersion", 0, why)])
    check_resource_version(rt, name, meta_in, current)
    old_meta = current["metadata"]
    meta: JSON = {k: old_meta[k] for k in _SERVER_META if k in old_meta}
    new: JSON = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
    _copy_meta(rt, meta, meta_in, name)
    kind.fill(new, body, current)
    spec_changed = kind.generation and kind.bumps_generation(new, current)
    if spec_changed:
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if not controller:
            store.reconcile(kind, new)
    if new == current:
        return current
    if dry_run:
        return new
    meta["resourceVersion"] = store.next_rv()
    store.put(rt, namespace, new)
    if spec_changed and controller and kind.controlled:
        answer = copy.deepcopy(new)
        store.reconcile(kind, new)
        if new != answer:  # a stalled controller (readiness.py) writes nothing
            meta["resourceVersion"] = store.next_rv()
        return answer
    return new


def delete(
    store: Store,
    kind: Kind,
    namespace: str | None,
    name: str,
    options: Any,
    *,
    dry_run: bool,
) -> JSON:
    """DELETE semantics, ``options`` a DeleteOptions body (its preconditions are checked);
    returns the ``Status`` answered."""
    rt = kind.resource
    current = store.get(rt, namespace, name)
    if isinstance(options, dict):
        pre = options.get("preconditions") or {}
        want_uid, have_uid = pre.get("uid"), current["metadata"]["uid"]
        if want_uid is not None and want_uid != have_uid:
            raise _delete_conflict(
                rt,
                name,
                f"the UID in the precondition ({want_uid}) does not match the UID in record "
                f"({have_uid}). The object might have been deleted and then recreated",
            )
        want_rv, have_rv = pre.get("resourceVersion"), current["metadata"]["resourceVersion"]
        if want_rv is not None and want_rv != have_rv:
            raise _delete_conflict(
                rt,
                name,
                f"the ResourceVersion in the precondition ({want_rv}) does not match the "
                f"ResourceVersion in record ({have_rv}). The object might have been modified",
            )
        dry_run = dry_run or "All" in (options.get("dryRun") or [])
    if not dry_run:
        store.remove(rt, namespace, name)
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details(rt, name, uid=current["metadata"]["uid"]),
    }


def _delete_conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    """The 409 of rest.BeforeDelete: it names the GroupResource {group, Kind}
    (``Lease.coordination.k8s.io``, ``Deployment.apps``, ``Namespace``)."""
    resource = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    out: JSON = {"name": name}
    if rt.group:
        out["group"] = rt.group
    out["kind"] = rt.kind
    return ApiError(
        409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": {why}', out
    )
