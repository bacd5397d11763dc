"""`--kubernetes-auth`: the cluster says who a bearer token is and what they may do, the way
kube-rbac-proxy asks it, so that the cluster's RBAC decides who may sleep which namespace.

- authenticate: a TokenReview (`authentication.k8s.io/v1`) of the token: authenticated, and as
  which user, groups, uid and extra.
- authorize: a SubjectAccessReview (`authorization.k8s.io/v1`) for that user: may they `update`
  (a run) or `get` (the status) deployments.apps in the namespace?

Each is one `kubectl create -f - -o json` of the review, the token on stdin (never in argv,
which other users of the host can read). The SubjectAccessReview needs the user the TokenReview
found, so they cannot share one kubectl process; instead, as kube-rbac-proxy does, answers are
kept for CACHE_TTL_S: a token's by its SHA-256 digest (never the token), yes and no alike, and a
right by the user and the question. A review that fails (the cluster unreachable, the server's
own identity without `system:auth-delegator`) is not kept: the request is answered 503.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from nsscale.errors import ErrorKind, KubectlError, KubectlFailure, UsageError
from nsscale.kube.review import question, review
from nsscale.kubectl import Kubectl
from nsscale.serve.answers import Forbidden, Unauthenticated, Unavailable
from nsscale.serve.auth import Caller

log = logging.getLogger("nsscale")

CACHE_TTL_S = 10.0  # kube-rbac-proxy's default
CACHE_SIZE = 4096
AUTH_DELEGATOR = "system:auth-delegator"
_REVIEWS = (
    ("create", "tokenreviews.authentication.k8s.io"),
    ("create", "subjectaccessreviews.authorization.k8s.io"),
)
_CREATE = ["create", "-f", "-", "--validate=false"]  # objects made here: nothing to validate

_NOBODY = Caller("")  # what a token the cluster does not know is cached as

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Answers kept `ttl_s` seconds, at most `size` of them (the oldest dropped first)."""

    def __init__(
        self, ttl_s: float, size: int = CACHE_SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s, self.size, self.clock = ttl_s, size, clock
        self._items: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[0] <= self.clock():
                del self._items[key]
                return None
            return found[1]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            now = self.clock()
            if len(self._items) >= self.size:
                self._items = {k: v for k, v in self._items.items() if v[0] > now}
            while len(self._items) >= self.size:
                del self._items[next(iter(self._items))]
            self._items[key] = (now + self.ttl_s, value)


class KubernetesAuthority:
    def __init__(self, kubectl: Kubectl, ttl_s: float = CACHE_TTL_S) -> None:
        self.kubectl = kubectl
        self._tokens: TtlCache[bytes, Caller] = TtlCache(ttl_s)  # _NOBODY: not authenticated
        self._rights: TtlCache[tuple[Hashable, ...], str | None] = TtlCache(ttl_s)  # why not

    def describe(self) -> str:
        return "Kubernetes TokenReview and SubjectAccessReview"

    def check_rights(self) -> None:
        """At start-up: the server's own identity may create both reviews (the ClusterRole
        system:auth-delegator); UsageError if the cluster says no, a warning if it would not
        say."""
        answers = review(self.kubectl, [""], _REVIEWS)
        denied = [r for v, r in _REVIEWS if answers.allowed.get(question(v, r, "")) is False]
        if denied:
            who = f" ({answers.user})" if answers.user else ""
            raise UsageError(
                f"the server's own identity{who} may not create {' or '.join(denied)}, "
                "so it cannot check anybody's token",
                f"bind it to the ClusterRole {AUTH_DELEGATOR} (a ClusterRoleBinding)",
            )
        if answers.problem:
            log.warning("could not check that the server may review tokens: %s", answers.problem)

    def authenticate(self, token: str) -> Caller:
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found = self._tokens.get(key)
        if found is None:
            found = self._token_review(token) or _NOBODY
            self._tokens.put(key, found)
        if found is _NOBODY:
            raise Unauthenticated("unknown bearer token")
        return found

    def authorize(self, caller: Caller, verb: str, namespace: str) -> None:
        extra = tuple(sorted(caller.extra.items()))
        key = (caller.name, caller.uid, caller.groups, extra, verb, namespace)
        why_not = self._rights.get(key)
        if why_not is None:
            why_not = self._access_review(caller, verb, namespace)
            self._rights.put(key, why_not)
        if why_not:
            raise Forbidden(why_not)

    def _token_review(self, token: str) -> Caller | None:
        document = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        status = self._create(document, "check the token", token)
        user = status.get("user") or {}
        if status.get("authenticated") is not True or not user.get("username"):
            return None
        extra = user.get("extra") or {}
        return Caller(
            str(user["username"]),
            tuple(str(g) for g in user.get("groups") or ()),
            str(user.get("uid") or ""),
            {str(k): tuple(str(x) for x in v or ()) for k, v in extra.items()},
        )

    def _access_review(self, caller: Caller, verb: str, namespace: str) -> str:
        """Why the caller may not `verb` deployments in the namespace; "" when they may."""
        spec: dict[str, Any] = {
            "user": caller.name,
            "groups": list(caller.groups),
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": "apps",
                "resource": "deployments",
            },
        }
        if caller.uid:
            spec["uid"] = caller.uid
        if caller.extra:
            spec["extra"] = {k: list(v) for k, v in caller.extra.items()}
        document = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        status = self._create(document, "check the caller's rights", None)
        if status.get("allowed") is True:
            return ""
        reason = str(status.get("reason") or "")
        why = f"{caller.name} may not {verb} deployments.apps in namespace {namespace}"
        return f"{why} ({reason})" if reason else why

    def _create(self, document: dict[str, Any], what: str, secret: str | None) -> dict[str, Any]:
        """The `status` of a review the cluster answered; Unavailable when it did not."""
        try:
            answer = self.kubectl.json(_CREATE, json.dumps(document))
        except KubectlFailure as err:
            message = str(err) if secret is None else str(err).replace(secret, "<token>")
            log.error("could not %s with the cluster: %s", what, message)
            forbidden = isinstance(err, KubectlError) and err.kind is ErrorKind.FORBIDDEN
            hint = f": the server needs the ClusterRole {AUTH_DELEGATOR}" if forbidden else ""
            raise Unavailable(f"could not {what} with the cluster now{hint}") from None
        status = answer.get("status")
        return status if isinstance(status, dict) else {}
