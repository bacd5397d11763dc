"""The reviews kubectl creates to ask about itself, answered and never stored:

- ``selfsubjectreviews`` (``authentication.k8s.io/v1``, ``kubectl auth whoami``): the user and
  groups the server serves the request as.
- ``selfsubjectaccessreviews`` (``authorization.k8s.io/v1``, ``kubectl auth can-i``): whether
  RBAC (``ApiServer.forbid``) allows the verb on the resource; kubectl sends it as protobuf.
"""

from __future__ import annotations

from tests.apiserver import protobuf
from tests.apiserver.errors import bad_request
from tests.apiserver.kinds.base import Identity, ResourceType, Review
from tests.apiserver.request import Request, json_body
from tests.apiserver.wire import JSON, PROTOBUF_CT

__all__ = [
    "SELF_SUBJECT_ACCESS_REVIEWS",
    "SELF_SUBJECT_REVIEWS",
    "SelfSubjectAccessReviews",
    "SelfSubjectReviews",
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
        allowed = True
        if isinstance(attrs, dict):
            resource = str(attrs.get("resource") or "*")
            if attrs.get("subresource"):
                resource += f"/{attrs['subresource']}"
            allowed = identity.allowed(
                str(attrs.get("verb") or "*"),
                resource,
                attrs.get("namespace") or None,
                attrs.get("name") or None,
            )
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": allowed},  # RBAC gives no reason for a denial
        }
