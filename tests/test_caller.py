"""The caller's review (what they may update, who they are) and the cluster's name."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nsscale.kube.review import Review, cluster_name, review
from nsscale.kubectl import Kubectl, KubectlConfig
from tests.apiserver.server import ApiServer
from tests.kube import KUBECTL, NS, REVIEW_ARGV

QUESTIONS = [("update", "deployments.apps"), ("update", "statefulsets.apps")]


def access_answer(resource: str, allowed: bool) -> dict[str, Any]:
    plural, _, group = resource.partition(".")
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {"creationTimestamp": None},
        "spec": {
            "resourceAttributes": {
                "group": group,
                "namespace": NS,
                "resource": plural,
                "verb": "update",
            }
        },
        "status": {"allowed": allowed},
    }


SELF_ANSWER = {
    "apiVersion": "authentication.k8s.io/v1",
    "kind": "SelfSubjectReview",
    "metadata": {"creationTimestamp": None},
    "status": {"userInfo": {"username": "alice", "groups": ["devs", "system:authenticated"]}},
}


def printed(*documents: dict[str, Any]) -> str:
    """As kubectl create -o json prints several objects: one indented document after another."""
    return "".join(json.dumps(d, indent=4) + "\n" for d in documents)


def test_one_kubectl_call_asks_every_question_and_who(fp: Any) -> None:
    sent: list[dict[str, Any]] = []
    answers = (
        access_answer("deployments.apps", True),
        access_answer("statefulsets.apps", False),
        SELF_ANSWER,
    )
    fp.register(
        [*REVIEW_ARGV, fp.any()],
        stdin_callable=lambda text: sent.append(json.loads(text)),
        stdout=printed(*answers),
    )

    found = review(Kubectl(KubectlConfig(KUBECTL)), [NS], QUESTIONS)

    assert found == Review(
        {f"update deployments.apps in {NS}": True, f"update statefulsets.apps in {NS}": False},
        "alice",
        ("devs", "system:authenticated"),
        "",
    )
    assert [item["kind"] for item in sent[0]["items"]] == [
        "SelfSubjectAccessReview",
        "SelfSubjectAccessReview",
        "SelfSubjectReview",
    ]
    assert sent[0]["items"][1]["spec"]["resourceAttributes"] == {
        "namespace": NS,
        "verb": "update",
        "group": "apps",
        "resource": "statefulsets",
    }
    assert fp.call_count([*REVIEW_ARGV, fp.any()]) == 1


def test_a_server_without_self_subject_review_still_answers_the_access_questions(fp: Any) -> None:
    # Kubernetes before 1.28: kubectl creates what it can, prints it, and exits 1.
    fp.register(
        [*REVIEW_ARGV, fp.any()],
        returncode=1,
        stdout=printed(
            access_answer("deployments.apps", True), access_answer("statefulsets.apps", True)
        ),
        stderr='unable to recognize no matches for kind "SelfSubjectReview" in version '
        '"authentication.k8s.io/v1"\n',
    )

    found = review(Kubectl(KubectlConfig(KUBECTL)), [NS], QUESTIONS)

    assert found.allowed == {
        f"update deployments.apps in {NS}": True,
        f"update statefulsets.apps in {NS}": True,
    }
    assert (found.user, found.groups) == ("", ())
    assert "SelfSubjectReview" in found.problem


def hang(process: Any) -> None:
    raise subprocess.TimeoutExpired(process.args, 5)


@pytest.mark.parametrize(
    "failure",
    [
        {
            "returncode": 1,
            "stderr": "Error from server (Forbidden): selfsubjectaccessreviews.authorization"
            '.k8s.io is forbidden: User "bot" cannot create resource "selfsubjectaccessreviews"\n',
        },
        {"stdout": "not json"},
        {"stdout": printed({"kind": "SelfSubjectAccessReview", "status": {}})},
        {"callback": hang},
    ],
    ids=["forbidden", "garbled", "no-status", "timeout"],
)
def test_what_the_server_does_not_answer_is_missing_never_raised(
    fp: Any, failure: dict[str, Any]
) -> None:
    fp.register([*REVIEW_ARGV, fp.any()], **failure)
    found = review(Kubectl(KubectlConfig(KUBECTL)), [NS], QUESTIONS)
    assert (found.allowed, found.user, found.groups) == ({}, "", ())
    assert found.problem


@pytest.mark.e2e
def test_the_real_kubectl_asks_the_server(
    kubectl_bin: Path, apiserver: ApiServer, kubeconfig: Path
) -> None:
    apiserver.add_namespace(NS)
    apiserver.forbid("update", "statefulsets", namespace=NS)
    kubectl = Kubectl(KubectlConfig(str(kubectl_bin), kubeconfig=str(kubeconfig)))

    found = review(kubectl, [NS], QUESTIONS)

    assert found.allowed == {
        f"update deployments.apps in {NS}": True,
        f"update statefulsets.apps in {NS}": False,
    }
    assert (found.user, found.problem) == ("tester", "")
    assert [r.resource for r in apiserver.requests if r.method == "POST"] == [
        "selfsubjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectreviews",
    ]
    assert not apiserver.unhandled


@pytest.mark.e2e
def test_the_real_kubectl_goes_on_past_a_refused_question(
    kubectl_bin: Path, apiserver: ApiServer, kubeconfig: Path
) -> None:
    apiserver.add_namespace(NS)
    apiserver.forbid("create", "selfsubjectreviews")
    kubectl = Kubectl(KubectlConfig(str(kubectl_bin), kubeconfig=str(kubeconfig)))

    found = review(kubectl, [NS], QUESTIONS)

    assert found.allowed == {
        f"update deployments.apps in {NS}": True,
        f"update statefulsets.apps in {NS}": True,
    }
    assert found.user == ""
    assert "Forbidden" in found.problem


def test_the_cluster_is_eks_cluster_name_else_the_context(
    fp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EKS_CLUSTER_NAME", "prod-eu")
    assert cluster_name(Kubectl(KubectlConfig(KUBECTL, context="ctx"))) == "prod-eu"
    monkeypatch.delenv("EKS_CLUSTER_NAME")
    assert cluster_name(Kubectl(KubectlConfig(KUBECTL, context="ctx"))) == "ctx"
    current = [KUBECTL, "config", "current-context", fp.any()]
    fp.register(current, stdout="kind-dev\n")
    assert cluster_name(Kubectl(KubectlConfig(KUBECTL))) == "kind-dev"
    fp.register(current, returncode=1, stderr="error: current-context is not set\n")
    assert cluster_name(Kubectl(KubectlConfig(KUBECTL))) == "unknown"
