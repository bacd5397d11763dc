"""RBAC, the simple way round: everything is allowed except what ``forbid`` denies.

``forbid(verb, resource)`` makes matching requests (and ``kubectl auth can-i`` questions)
answer 403 with the real message, e.g. ``deployments.apps "a" is forbidden: User "tester"
cannot patch resource "deployments/scale" in API group "apps" in the namespace "shop"``. As in
RBAC, a rule for ``deployments`` does not cover ``deployments/scale``; ``"*"`` matches any verb
or resource; a rule without ``namespace``/``name`` matches every namespace/name, and
``namespace=CLUSTER_SCOPE`` only requests across all namespaces (a user whose RoleBindings
allow each namespace, and no ClusterRole the whole cluster). A rule with ``user`` denies that user
only: what a SubjectAccessReview asks about another user (kinds/reviews.py) is answered from the
same rules; kubectl's own requests are the server's ``user``'s.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tests.apiserver.errors import ApiError, details
from tests.apiserver.kinds.base import ResourceType

__all__ = ["CLUSTER_SCOPE", "Authorization", "ForbidRule", "forbidden", "forbidden_message"]

CLUSTER_SCOPE = ""  # a rule's namespace that matches only requests at the cluster scope


@dataclass(frozen=True)
class ForbidRule:
    """Requests with this verb on this resource are Forbidden (``"*"`` = any)."""

    verb: str = "*"
    resource: str = "*"
    namespace: str | None = None
    name: str | None = None
    user: str | None = None  # None: every user

    def matches(
        self, verb: str, resource: str, namespace: str | None, name: str | None, user: str
    ) -> bool:
        return (
            self.verb in ("*", verb)
            and self.resource in ("*", resource)
            and (self.namespace is None or self.namespace == (namespace or CLUSTER_SCOPE))
            and (self.name is None or self.name == name)
            and (self.user is None or self.user == user)
        )


def forbidden_message(
    user: str, verb: str, resource: str, rt: ResourceType, namespace: str | None, name: str | None
) -> str:
    why = f'User "{user}" cannot {verb} resource "{resource}" in API group "{rt.group}"'
    why += f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    if name:
        return f'{rt.qualified} "{name}" is forbidden: {why}'
    return f"{rt.qualified} is forbidden: {why}"


def forbidden(
    user: str, verb: str, resource: str, rt: ResourceType, namespace: str | None, name: str | None
) -> ApiError:
    """The 403 that RBAC answers."""
    message = forbidden_message(user, verb, resource, rt, namespace, name)
    return ApiError(403, "Forbidden", message, details(rt, name))


class Authorization:
    """The ``forbid`` rules of :class:`~tests.apiserver.server.ApiServer` (a mixin)."""

    user: str
    _lock: threading.RLock
    _forbid: list[ForbidRule]

    def forbid(
        self,
        verb: str = "*",
        resource: str = "*",
        *,
        namespace: str | None = None,
        name: str | None = None,
        user: str | None = None,
    ) -> ForbidRule:
        """Deny ``verb`` (get, list, watch, create, update, patch, delete...) on ``resource``
        (a plural, ``deployments/scale`` for a subresource) to ``user`` (None: everyone)."""
        rule = ForbidRule(verb, resource, namespace, name, user)
        with self._lock:
            self._forbid.append(rule)
        return rule

    def allow_all(self) -> None:
        """Drop every ``forbid`` rule."""
        with self._lock:
            self._forbid.clear()

    def allowed(
        self,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str | None,
        user: str | None = None,
    ) -> bool:
        """Whether no ``forbid`` rule denies ``verb`` on ``resource`` to ``user`` (None: the
        server's own user, kubectl's)."""
        who = self.user if user is None else user
        with self._lock:
            return not any(r.matches(verb, resource, namespace, name, who) for r in self._forbid)
