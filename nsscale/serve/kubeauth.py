"""`--kubernetes-auth`: the cluster says who a bearer token is and what they may do, the way
kube-rbac-proxy asks it, so that the cluster's RBAC decides who may sleep which namespace.

- authenticate: a TokenReview (`authentication.k8s.io/v1`) of the token, for the audiences of
  --token-audience (`spec.audiences`; an answer whose `status.audiences` holds none of them is
  not authenticated): as which user, groups, uid and extra.
- authorize: a SubjectAccessReview (`authorization.k8s.io/v1`) for that user per access the
  request needs: a run's `update` of each (group, resource) its plan writes, in the namespace
  each object lives in; a status's `get` and `list` of each kind it shows. The caller must be
  allowed all, as if they ran nsscale themselves.
- visible: the namespaces a caller may see (GET /api/namespaces): every one when they may
  `list namespaces`, else each they may `get` (a review per namespace, all in one kubectl
  and cached like every right: a caller with a RoleBinding in a few namespaces of a large
  fleet costs one kubectl per CACHE_TTL_S).

Each review is a `kubectl create -f - -o json`, the token on stdin (never in argv, which other
users of the host can read); the SubjectAccessReviews of one request are one List, one kubectl.
At most --max-reviews kubectl processes review at once: past that a request is answered 503 at
once rather than queued, so that a flood of made-up tokens holds no more than that many of the
server's threads (/healthz and the runs keep theirs). As kube-rbac-proxy does, answers are kept
for CACHE_TTL_S: a token's by its SHA-256 digest (never the token), known and unknown alike, and
a right by the user and the access. A review that fails (the cluster unreachable, the server's
own identity without `system:auth-delegator`) is not kept: the request is answered 503.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from nsscale.defaults import DEFAULT_MAX_REVIEWS
from nsscale.errors import ErrorKind, KubectlError, KubectlFailure, UsageError
from nsscale.kube.review import ask, question, review
from nsscale.kubectl import Kubectl
from nsscale.serve.answers import Forbidden, Unauthenticated, Unavailable
from nsscale.serve.auth import Access, Caller

log = logging.getLogger("nsscale")

CACHE_TTL_S = 10.0  # kube-rbac-proxy's default
CACHE_SIZE = 4096
AUTH_DELEGATOR = "system:auth-delegator"
_REVIEWS = (
    ("create", "tokenreviews.authentication.k8s.io"),
    ("create", "subjectaccessreviews.authorization.k8s.io"),
)

_NOBODY = Caller("")  # what a token the cluster does not know is cached as
LIST_NAMESPACES = Access("list", "", "namespaces", "")  # sees every namespace

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
    def __init__(
        self,
        kubectl: Kubectl,
        audiences: Sequence[str] = (),
        max_reviews: int = DEFAULT_MAX_REVIEWS,
        ttl_s: float = CACHE_TTL_S,
    ) -> None:
        self.kubectl = kubectl
        self.audiences = tuple(audiences)
        self.max_reviews = max_reviews
        self._reviewing = threading.BoundedSemaphore(max_reviews)
        self._tokens: TtlCache[bytes, Caller] = TtlCache(ttl_s)  # _NOBODY: not authenticated
        self._rights: TtlCache[tuple[Hashable, ...], str] = TtlCache(ttl_s)  # why not ("": may)

    def describe(self) -> str:
        audiences = f", audiences {', '.join(self.audiences)}" if self.audiences else ""
        return f"Kubernetes TokenReview and SubjectAccessReview{audiences}"

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

    def admit(self, caller: Caller, namespace: str) -> None:
        """Anybody the cluster knows: what they may do is asked of it per access."""

    def authorize(self, caller: Caller, accesses: Sequence[Access]) -> None:
        for why_not in self._denials(caller, accesses).values():
            if why_not:
                raise Forbidden(why_not)

    def visible(self, caller: Caller, namespaces: Sequence[str]) -> list[str]:
        if not self._denials(caller, [LIST_NAMESPACES])[LIST_NAMESPACES]:
            return list(namespaces)
        gets = {ns: Access("get", "", "namespaces", ns, ns) for ns in namespaces}
        denials = self._denials(caller, list(gets.values())) if gets else {}
        return [ns for ns, access in gets.items() if not denials[access]]

    def _denials(self, caller: Caller, accesses: Sequence[Access]) -> dict[Access, str]:
        """Why the caller may not make each access ("" when they may), in the order given:
        from the cache, else asked of the cluster in one kubectl."""
        extra = tuple(sorted(caller.extra.items()))
        who = (caller.name, caller.uid, caller.groups, extra)
        wanted = list(dict.fromkeys(accesses))  # each asked once, in the order given
        answers: dict[Access, str | None] = {a: self._rights.get((*who, a)) for a in wanted}
        unknown = [a for a, why_not in answers.items() if why_not is None]
        if unknown:
            for access, reviewed in self._access_reviews(caller, unknown).items():
                self._rights.put((*who, access), reviewed)
                answers[access] = reviewed
        return {access: answers[access] or "" for access in wanted}

    def _token_review(self, token: str) -> Caller | None:
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = list(self.audiences)
        document = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": spec,
        }
        [answer] = self._create([document], "check the token", token)
        status = answer.get("status")
        status = status if isinstance(status, dict) else {}
        user = status.get("user") or {}
        if status.get("authenticated") is not True or not user.get("username"):
            return None
        if self.audiences and not set(self.audiences) & set(status.get("audiences") or ()):
            log.info("a token of %s is not for the audiences %s", user["username"], self.audiences)
            return None
        extra = user.get("extra") or {}
        return Caller(
            str(user["username"]),
            tuple(str(g) for g in user.get("groups") or ()),
            str(user.get("uid") or ""),
            {str(k): tuple(str(x) for x in v or ()) for k, v in extra.items()},
        )

    def _access_reviews(self, caller: Caller, accesses: Sequence[Access]) -> dict[Access, str]:
        """Why the caller may not make each access ("" when they may): one review each, all
        in one kubectl process."""
        documents = [_access_review(caller, access) for access in accesses]
        answers = self._create(documents, "check the caller's rights", None)
        found: dict[Access, str] = {}
        for answer in answers:
            attributes = (answer.get("spec") or {}).get("resourceAttributes") or {}
            access = Access(
                str(attributes.get("verb", "")),
                str(attributes.get("group", "")),
                str(attributes.get("resource", "")),
                str(attributes.get("namespace", "")),
                str(attributes.get("name", "")),
            )
            status = answer.get("status") or {}
            if status.get("allowed") is True:
                found[access] = ""
                continue
            reason = str(status.get("reason") or "")
            why = f"{caller.name} may not {access}"
            found[access] = f"{why} ({reason})" if reason else why
        missing = [a for a in accesses if a not in found]
        if missing:
            log.error("the cluster did not answer the review of %s", ", ".join(map(str, missing)))
            raise Unavailable("could not check the caller's rights with the cluster now")
        return found

    def _create(
        self, documents: Sequence[dict[str, Any]], what: str, secret: str | None
    ) -> list[dict[str, Any]]:
        """The reviews as the cluster answered them, in order; Unavailable when it did not,
        or when --max-reviews reviews are in flight already."""
        if not self._reviewing.acquire(blocking=False):
            raise Unavailable(
                f"{self.max_reviews} token and access checks are in flight already "
                "(--max-reviews): try again later"
            )
        try:
            return [dict(answer) for answer in ask(self.kubectl, documents)]
        except KubectlFailure as err:
            message = str(err) if secret is None else str(err).replace(secret, "<token>")
            log.error("could not %s with the cluster: %s", what, message)
            forbidden = isinstance(err, KubectlError) and err.kind is ErrorKind.FORBIDDEN
            hint = f": the server needs the ClusterRole {AUTH_DELEGATOR}" if forbidden else ""
            raise Unavailable(f"could not {what} with the cluster now{hint}") from None
        finally:
            self._reviewing.release()


def _access_review(caller: Caller, access: Access) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "user": caller.name,
        "groups": list(caller.groups),
        "resourceAttributes": {
            "namespace": access.namespace,
            "verb": access.verb,
            "group": access.group,
            "resource": access.resource,
            **({"name": access.name} if access.name else {}),
        },
    }
    if caller.uid:
        spec["uid"] = caller.uid
    if caller.extra:
        spec["extra"] = {k: list(v) for k, v in caller.extra.items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
