"""The reviews, answered and never stored: those kubectl creates to ask about itself, and those a
program that serves other clients creates to ask about them (kube-rbac-proxy, ``nsscale serve
--kubernetes-auth``; the asker needs the ClusterRole ``system:auth-delegator``'s ``create`` on
both, which RBAC checks as for any request):

- ``selfsubjectreviews`` (``authentication.k8s.io/v1``, ``kubectl auth whoami``): the user and
  groups the server serves the request as.
- ``selfsubjectaccessreviews`` (``authorization.k8s.io/v1``, ``kubectl auth can-i``): whether
  RBAC (``ApiServer.forbid``) allows the verb on the resource; kubectl sends it as protobuf.
- ``tokenreviews`` (``authentication.k8s.io/v1``): who ``spec.token`` authenticates as, from the
  tokens a test registered (``ApiServer.add_token``, tokens.py); an unknown one is not
  authenticated (``status.authenticated`` absent, as the real server omits a false one). The
  review is for ``spec.audiences`` (none: the API server's own); ``status.audiences`` are those of
  them the token was minted for, and a token minted for none of them is not authenticated.
- ``subjectaccessreviews`` (``authorization.k8s.io/v1``): whether RBAC allows ``spec.user`` the
  verb on the resource (``forbid(..., user=...)`` denies one user only).
"""

from __future__ import annotations

from tests.apiserver import protobuf
from tests.apiserver.errors import FieldError, bad_request, invalid
from tests.apiserver.kinds.base import Identity, ResourceType, Review
from tests.apiserver.request import Request, json_body
from tests.apiserver.tokens import API_AUDIENCES
from tests.apiserver.wire import JSON, PROTOBUF_CT

__all__ = [
    "SELF_SUBJECT_ACCESS_REVIEWS",
    "SELF_SUBJECT_REVIEWS",
    "SUBJECT_ACCESS_REVIEWS",
    "TOKEN_REVIEWS",
    "SelfSubjectAccessReviews",
    "SelfSubjectReviews",
    "SubjectAccessReviews",
    "TokenReviews",
]

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
TOKEN_REVIEWS = ResourceType(
    "authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", False, ("create",)
)
SUBJECT_ACCESS_REVIEWS = ResourceType(
    "authorization.k8s.io",
    "v1",
    "subjectaccessreviews",
    "subjectaccessreview",
    "SubjectAccessReview",
    False,
    ("create",),
)


class SelfSubjectReviews(Review):
    resource = SELF_SUBJECT_REVIEWS

    def answer(self, identity: Identity, req: Request) -> JSON:
        return {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": identity.user, "groups": list(identity.groups)}},
        }


class SelfSubjectAccessReviews(Review):
    resource = SELF_SUBJECT_ACCESS_REVIEWS

    def answer(self, identity: Identity, req: Request) -> JSON:
        if req.headers.get("Content-Type", "").startswith(PROTOBUF_CT):
            try:
                body = protobuf.access_review(req.body)
            except ValueError as err:
                raise bad_request(f"unable to decode the protobuf body: {err}") from None
        else:
            body = json_body(req)
        spec = body.get("spec") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise bad_request("spec is required")
        attrs = spec.get("resourceAttributes")
        allowed = _allowed(identity, attrs, None) if isinstance(attrs, dict) else True
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": allowed},  # RBAC gives no reason for a denial
        }


class TokenReviews(Review):
    resource = TOKEN_REVIEWS

    def answer(self, identity: Identity, req: Request) -> JSON:
        spec = _spec(json_body(req))
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            error = FieldError("spec.token", "", "", "FieldValueRequired")
            raise invalid("TokenReview", "authentication.k8s.io", "", [error])
        found = identity.authenticate(token)
        asked = spec.get("audiences") or list(API_AUDIENCES)
        if not isinstance(asked, list) or not all(isinstance(a, str) for a in asked):
            error = FieldError("spec.audiences", asked, "must be a list of strings")
            raise invalid("TokenReview", "authentication.k8s.io", "", [error])
        status: JSON = {"user": {}, "error": "invalid bearer token"}
        if found is not None:
            matched = [a for a in asked if a in found.audiences]
            if matched:
                user = {"username": found.user, "uid": found.uid, "groups": list(found.groups)}
                status = {"authenticated": True, "user": user, "audiences": matched}
            else:
                status = {
                    "user": {},
                    "error": f"[invalid bearer token, token audiences {list(found.audiences)} "
                    f"is invalid for the target audiences {asked}]",
                }
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,  # the real server sends the token back as it came
            "status": status,
        }


class SubjectAccessReviews(Review):
    resource = SUBJECT_ACCESS_REVIEWS

    def answer(self, identity: Identity, req: Request) -> JSON:
        spec = _spec(json_body(req))
        attrs = spec.get("resourceAttributes")
        user = spec.get("user")
        errors = []
        if not isinstance(user, str) or not user:
            errors.append(FieldError("spec.user", "", "", "FieldValueRequired"))
        if not isinstance(attrs, dict) and not isinstance(spec.get("nonResourceAttributes"), dict):
            detail = "exactly one of nonResourceAttributes or resourceAttributes must be specified"
            errors.append(FieldError("spec.resourceAttributes", None, detail))
        if errors:
            raise invalid("SubjectAccessReview", "authorization.k8s.io", "", errors)
        allowed = _allowed(identity, attrs, str(user)) if isinstance(attrs, dict) else True
        return {
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": allowed},
        }


def _spec(body: object) -> JSON:
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise bad_request("spec is required")
    return spec


def _allowed(identity: Identity, attrs: JSON, user: str | None) -> bool:
    """What RBAC answers for a review's ``resourceAttributes``, asked for ``user`` (None: the
    one asking)."""
    resource = str(attrs.get("resource") or "*")
    if attrs.get("subresource"):
        resource += f"/{attrs['subresource']}"
    return identity.allowed(
        str(attrs.get("verb") or "*"),
        resource,
        attrs.get("namespace") or None,
        attrs.get("name") or None,
        user,
    )
