"""What a served kind is.

A kind is a :class:`ResourceType` (how discovery describes it: group, version, plural, verbs,
short names, subresources) and a :class:`Kind` (the rules its objects follow): how a written
body is validated and defaulted (``fill``), what the server keeps of the stored object
(status), whether ``metadata.generation`` is tracked and what bumps it, what a controller
writes into status (``reconcile``, paced by a :class:`Pace`), how a stored object is served
(``present``: one storage, several API versions), the fields a field selector reads, the
columns of ``kubectl get``'s table, and the subresources it serves.
Everything else -- resourceVersions, uids, labels, annotations, ownerReferences, preconditions,
patches, selectors, pagination, dry runs, RBAC, faults and admission -- is common to all kinds
and lives outside this package.

Adding a kind is one module here and one line in tests/apiserver/registry.py::

    CONFIGMAPS = ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, RW, ("cm",))

    class ConfigMaps(Kind):
        resource = CONFIGMAPS

        def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
            obj["data"] = copy.deepcopy(body.get("data") or {})

A kind that is answered and never stored (a review) subclasses :class:`Review` instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from tests.apiserver.errors import bad_request
from tests.apiserver.wire import JSON, Reply

if TYPE_CHECKING:
    from tests.apiserver.request import Request
    from tests.apiserver.storage import Store
    from tests.apiserver.tokens import TokenUser

__all__ = [
    "RW",
    "SETTLED",
    "Column",
    "Identity",
    "Kind",
    "Pace",
    "ResourceType",
    "Review",
    "Subresource",
    "SubresourceHandler",
]

# The verbs of a read-write kind, as discovery lists them.
RW = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    """A subresource as discovery lists it (``scale``: an ``autoscaling/v1`` Scale)."""

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]


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
    subresources: tuple[Subresource, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``, ``namespaces``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass(frozen=True)
class Column:
    """A column of the ``meta.k8s.io/v1`` Table that ``kubectl get`` prints; ``cell`` reads
    it from the object. Priority 0 columns come between NAME and AGE, priority 1 ones (shown
    by ``-o wide``) after AGE."""

    name: str
    cell: Callable[[JSON], Any]
    type: str = "string"
    priority: int = 0


@dataclass(frozen=True)
class Pace:
    """How far a controller has got with an object's latest spec (readiness.py decides it):
    ``observed`` False -- it has not seen the spec yet, the status stays as it was (its
    ``observedGeneration`` behind); ``ready`` -- at most that many pods are ready (None: all
    of them, the settled state)."""

    ready: int | None = None
    observed: bool = True


SETTLED = Pace()


class SubresourceHandler(Protocol):
    """Serves a request to one subresource of a stored object (the store is locked)."""

    def __call__(self, store: Store, req: Request, kind: Kind, *, controller: bool) -> Reply: ...


class Identity(Protocol):
    """Who is asking, and what RBAC lets them do: what the reviews answer from."""

    user: str
    groups: tuple[str, ...]

    def allowed(
        self,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str | None,
        user: str | None = None,
    ) -> bool:
        """Whether RBAC allows ``verb`` on ``resource`` (``deployments/scale``...) to ``user``
        (None: the one asking)."""
        ...

    def authenticate(self, token: str) -> TokenUser | None:
        """Who a bearer token of another client authenticates as (tokens.py), or None."""
        ...


class Kind:
    """The rules of one stored kind. The defaults fit an object whose ``spec`` is stored as
    given and that has no status (a Lease): override what differs."""

    resource: ClassVar[ResourceType]
    # metadata.generation: 1 on create, bumped when the spec changes
    generation: ClassVar[bool] = False
    # a controller writes status (``reconcile``) after the spec changes; see ApiServer.controller
    controlled: ClassVar[bool] = False
    # verbs discovery lists that the server still refuses (405)
    refused: ClassVar[frozenset[str]] = frozenset()
    columns: ClassVar[tuple[Column, ...]] = ()
    # subresource name -> handler; discovery may list more (``status``), those are 404
    handlers: ClassVar[Mapping[str, SubresourceHandler]] = MappingProxyType({})
    # the strategy's AllowCreateOnUpdate: a PUT to a missing object creates it (201)
    create_on_update: ClassVar[bool] = False
    # the strategy's AllowUnconditionalUpdate: a PUT without metadata.resourceVersion
    # replaces whatever is stored; else it is 422 Invalid ("must be specified for an update")
    unconditional_update: ClassVar[bool] = True
    # the fields a list's ``fieldSelector`` may name (the scheme's field label conversion);
    # the default is apimachinery's DefaultMetaV1FieldSelectorConversion
    selectable_fields: ClassVar[tuple[str, ...]] = ("metadata.name", "metadata.namespace")
    # a PATCH may be a strategic merge patch (custom resources: 415, as the real server)
    strategic_merge: ClassVar[bool] = True
    # the whole column list of ``kubectl get``'s table, when it is not NAME, ``columns``, AGE
    # (Events: no NAME, no AGE)
    table_columns: ClassVar[tuple[Column, ...] | None] = None

    def serves(self, verb: str) -> bool:
        """Whether a request with this RBAC verb is served (else 405). Watches and
        deletecollection never are."""
        return (
            verb in self.resource.verbs
            and verb not in ("watch", "deletecollection")
            and verb not in self.refused
        )

    def unsupported_field(self, label: str) -> str:
        """The 400's message for a field selector on a field not in ``selectable_fields``."""
        return (
            f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'
        )

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        """Validate and default what the client wrote (``body``) into the new stored object
        ``obj``, whose metadata is done; keep from ``current`` (None on create) what the
        client does not write. Raise :class:`~tests.apiserver.errors.ApiError` to refuse."""
        obj["spec"] = self.spec(body)

    def reconcile(self, obj: JSON, pace: Pace = SETTLED) -> None:
        """What this kind's controller writes into ``obj["status"]`` for its spec, as far as
        ``pace`` says it has got. ``obj["status"]`` is the status before, when there was one."""

    def bumps_generation(self, new: JSON, current: JSON) -> bool:
        """Whether an update from ``current`` to ``new`` bumps ``metadata.generation`` (only
        asked of a kind that tracks it): a change of the spec."""
        return new.get("spec") != current.get("spec")

    def present(self, obj: JSON) -> JSON:
        """The stored object as this kind's API version serves it (a copy when it differs;
        Events are stored once and served as ``v1`` and ``events.k8s.io/v1``)."""
        return obj

    def field_value(self, obj: JSON, label: str) -> str:
        """The value of the selectable field ``label`` (one of ``selectable_fields``) of a
        stored object; "" when unset."""
        value: object = obj
        for part in label.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value if isinstance(value, str) else ""

    def stored(self, store: Store, obj: JSON) -> None:
        """Called once a created object is stored (not on a dry run): a
        CustomResourceDefinition starts serving its kind."""

    def spec(self, body: JSON) -> JSON:
        """A copy of ``body``'s spec, which must be an object (absent or null: ``{}``)."""
        spec = body.get("spec", {})
        if spec is None:
            return {}
        if not isinstance(spec, dict):
            rt = self.resource
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                f"{rt.kind}: json: cannot unmarshal into Go struct field "
                f"{rt.kind}.spec of type v1.{rt.kind}Spec"
            )
        return copy.deepcopy(spec)


class Review(Kind):
    """A kind that is only ever created, answered from who is asking, and never stored
    (``selfsubjectreviews``...). Not admitted: webhooks that guard writes skip them."""

    def answer(self, identity: Identity, req: Request) -> JSON:
        raise NotImplementedError
