"""Who runs nsscale, on which cluster, and what they may change there.

The API server answers "may I update deployments here?" (a SelfSubjectAccessReview, what
`kubectl auth can-i` sends) and "who am I?" (a SelfSubjectReview, what `kubectl auth whoami`
sends) as objects that are created and answered at once. `kubectl create -f -` of one List
holding all of them asks every question in one process instead of one process per question:
each kubectl start costs about 65 ms of CPU (docs/kubectl-facts.md).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nsscale.errors import KubectlError, KubectlOutputError
from nsscale.kubectl import Kubectl, parse_documents

log = logging.getLogger("nsscale")

CLUSTER_ENV = "EKS_CLUSTER_NAME"  # the seed's source of the cluster name
UNKNOWN = "unknown"

_ACCESS_REVIEW = ("authorization.k8s.io/v1", "SelfSubjectAccessReview")
_SELF_REVIEW = ("authentication.k8s.io/v1", "SelfSubjectReview")


@dataclass(frozen=True)
class Review:
    """The server's answers: `allowed` maps "update deployments.apps" style questions to yes or
    no (a question missing from it went unanswered), and the caller's kubectl identity."""

    allowed: Mapping[str, bool] = field(default_factory=dict)
    user: str = ""  # empty where the server would not say (an old server, a refusal)
    groups: tuple[str, ...] = ()
    problem: str = ""  # why some answer is missing


def question(verb: str, resource: str, namespace: str) -> str:
    """How a question is keyed in Review.allowed: "update deployments.apps in shop"."""
    return f"{verb} {resource} in {namespace}"


def review(
    kubectl: Kubectl, namespaces: Sequence[str], questions: Sequence[tuple[str, str]]
) -> Review:
    """Ask, in one kubectl call, whether the caller may do each (verb, "plural.group") in each
    namespace, and who the caller is. Never raises for the server's sake: what it would not
    answer is missing from the Review, with the reason in `problem`."""
    asked = [(v, r, ns) for ns in namespaces for v, r in questions]
    items: list[dict[str, Any]] = [_access_review(ns, v, r) for v, r, ns in asked]
    items.append({"apiVersion": _SELF_REVIEW[0], "kind": _SELF_REVIEW[1]})
    problem = ""
    try:
        printed = _create(kubectl, items)
    except KubectlError as err:
        # kubectl goes on past an object it cannot create (a server older than 1.28 has no
        # SelfSubjectReview) and prints the others: keep every answer it did print.
        printed, problem = err.stdout, str(err)
    except KubectlOutputError as err:
        return Review(problem=str(err))
    try:
        answers = _read_answers(parse_documents(printed))
    except ValueError as exc:
        return Review(problem=f"kubectl printed what cannot be read ({exc})")
    unanswered = [question(*q) for q in asked if question(*q) not in answers.allowed]
    if unanswered and not problem:
        problem = f"no answer to: {', '.join(unanswered)}"
    return replace(answers, problem=problem)


def ask(kubectl: Kubectl, reviews: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Reviews of any kind (TokenReview, SubjectAccessReview, ...) created in one kubectl call,
    as the cluster answered them, in their order. They go on stdin: a token is never in argv.
    KubectlFailure when kubectl failed, or printed other than one answer per review."""
    document = reviews[0] if len(reviews) == 1 else None
    printed = _create(kubectl, reviews, document)
    try:
        answers = parse_documents(printed)
    except ValueError as exc:
        raise KubectlOutputError(list(_CREATE), str(exc), printed) from exc
    # several objects come back as one List
    items = [i for a in answers for i in (a.get("items") or [] if a.get("kind") == "List" else [a])]
    if len(items) != len(reviews):
        reason = f"{len(items)} answers to {len(reviews)} reviews"
        raise KubectlOutputError(list(_CREATE), reason, printed)
    return [i if isinstance(i, dict) else {} for i in items]


# Nothing to validate client-side in objects built here: --validate=false spares kubectl a
# download of the server's OpenAPI document.
_CREATE = ("create", "-f", "-", "--validate=false", "-o", "json")


def _create(
    kubectl: Kubectl,
    items: Sequence[Mapping[str, Any]],
    document: Mapping[str, Any] | None = None,
) -> str:
    """What kubectl printed for the objects created (one POST each, one after another); sent as
    one List unless `document` is given."""
    sent = document or {"apiVersion": "v1", "kind": "List", "items": list(items)}
    return kubectl.run(list(_CREATE), json.dumps(sent), requests=len(items)).stdout


def _access_review(namespace: str, verb: str, resource: str) -> dict[str, Any]:
    plural, _, group = resource.partition(".")
    return {
        "apiVersion": _ACCESS_REVIEW[0],
        "kind": _ACCESS_REVIEW[1],
        "spec": {
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": group,
                "resource": plural,
            }
        },
    }


def _read_answers(answers: Sequence[Mapping[str, Any]]) -> Review:
    allowed: dict[str, bool] = {}
    groups: tuple[str, ...]
    user, groups = "", ()
    for answer in answers:
        kind = (answer.get("apiVersion"), answer.get("kind"))
        status = answer.get("status") or {}
        if kind == _ACCESS_REVIEW and isinstance(status.get("allowed"), bool):
            attributes = (answer.get("spec") or {}).get("resourceAttributes") or {}
            resource = f"{attributes.get('resource')}.{attributes.get('group')}"
            verb, namespace = str(attributes.get("verb")), str(attributes.get("namespace"))
            allowed[question(verb, resource, namespace)] = status["allowed"]
        elif kind == _SELF_REVIEW:
            info = status.get("userInfo") or {}
            user = str(info.get("username", ""))
            groups = tuple(str(g) for g in info.get("groups", []))
    return Review(allowed, user, groups)


def cluster_name(kubectl: Kubectl) -> str:
    """$EKS_CLUSTER_NAME, else the kubectl context in use; "unknown" if kubectl cannot say."""
    if name := os.environ.get(CLUSTER_ENV) or kubectl.config.context:
        return name
    try:
        return kubectl.run(["config", "current-context"]).stdout.strip() or UNKNOWN
    except Exception:  # best effort: the cluster's name only labels the audit record
        log.debug("kubectl config current-context: no context", exc_info=True)
        return UNKNOWN


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER: a bare container
        return UNKNOWN
