"""deploy/: the kustomize base renders with the pinned kubectl, and its ClusterRole grants exactly
what nsscale sends: every (API group, resource, verb) the API server saw while every command ran
every feature against it, and nothing more; no `*`, no Secrets."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from nsscale.engine.lock import Mark
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.kinds.custom import (
    ARGO_APPLICATION,
    ARGO_ROLLOUT,
    FLUX_HELM_RELEASE,
    FLUX_KUSTOMIZATION,
    KEDA_SCALED_OBJECT,
)
from tests.apiserver.server import ApiServer
from tests.faultkit import run, seed

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
Grant = tuple[str, str, str]  # (API group, resource, verb)
# What every authenticated user may do already (the built-in system:basic-user and
# system:discovery roles): not the ClusterRole's to grant.
EVERYONE = {"selfsubjectaccessreviews", "selfsubjectreviews"}
GITOPS = (ARGO_APPLICATION, FLUX_KUSTOMIZATION, FLUX_HELM_RELEASE)
OWNED: list[dict[str, Any]] = [  # a workload's owner: its metadata, and where the owner lives
    {"annotations": {"argocd.argoproj.io/tracking-id": "site:apps/Deployment:x/site"}},
    {
        "labels": {
            "kustomize.toolkit.fluxcd.io/name": "site",
            "kustomize.toolkit.fluxcd.io/namespace": "flux",
        },
        "namespace": "flux",
    },
    {
        "labels": {
            "helm.toolkit.fluxcd.io/name": "site",
            "helm.toolkit.fluxcd.io/namespace": "flux",
        },
        "namespace": "flux",
    },
]


def rendered(kubectl_bin: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(kubectl_bin), "kustomize", str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def granted(documents: list[dict[str, Any]]) -> set[Grant]:
    [role] = [d for d in documents if d["kind"] == "ClusterRole"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_base_renders_what_runs_reconcile_in_the_cluster(kubectl_bin: Path) -> None:
    documents = rendered(kubectl_bin)
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CronJob",
        "Namespace",
        "ServiceAccount",
    ]
    [cronjob] = [d for d in documents if d["kind"] == "CronJob"]
    assert cronjob["metadata"]["namespace"] == "nsscale"
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "nsscale"
    assert pod["containers"][0]["args"][:3] == [
        "reconcile",
        "--namespace-selector",
        "nsscale/scheduled=true",
    ]
    assert {"name": "KUBECACHEDIR", "value": "/tmp/kube-cache"} in pod["containers"][0]["env"]
    grants = granted(documents)
    assert not [g for g in grants if "*" in g], "a wildcard in the ClusterRole"
    assert not [g for g in grants if g[1] == "secrets"], "Secrets in the ClusterRole"


def test_the_cluster_role_grants_exactly_what_nsscale_sends(
    apiserver: ApiServer, env: dict[str, str], kubectl_bin: Path, kubectl: KubectlFixture
) -> None:
    # Every feature that reaches the API: several namespaces, CronJobs, KEDA, HPAs, Argo
    # Rollouts, the marks, a rollback, reconcile, --hold, --events, status and recover.
    apiserver.install_crds(KEDA_SCALED_OBJECT, ARGO_ROLLOUT, *GITOPS)
    for crd, kind, where in zip(
        GITOPS, ("Application", "Kustomization", "HelmRelease"), OWNED, strict=True
    ):
        spec: dict[str, Any] = {"syncPolicy": {"automated": {}}} if kind == "Application" else {}
        apiserver.add_custom(crd.api_version, kind, where.get("namespace", "argocd"), "site", spec)
    for ns in ("alpha", "bravo"):
        seed(apiserver, ns, {("deployment", "web"): 2, ("statefulset", "db"): 1})
        apiserver.add_namespace(ns, labels={"nsscale/scheduled": "true"})
        for i, owner in enumerate(OWNED):  # applied by Argo CD, by Flux twice
            labels = {k: v for k, v in owner.items() if k != "namespace"}
            apiserver.add_deployment(ns, f"site-{i}", replicas=1, **labels)
        apiserver.add_cronjob(ns, "report")
        apiserver.add_custom(ARGO_ROLLOUT.api_version, "Rollout", ns, "canary", {"replicas": 2})
        apiserver.add_hpa(ns, "web", "Deployment", "web", 2, 4)  # lowered by a down to 1
        apiserver.add_custom(
            "keda.sh/v1alpha1", "ScaledObject", ns, "web", {"scaleTargetRef": {"name": "web"}}
        )
    now = datetime.now(UTC)
    for ns in ("alpha", "bravo"):  # earlier runs' marks, read across namespaces and taken over
        ended = Mark("gone@host pid 1", "earlier", "up", now, now, 120, {}, ended=now)
        created = kubectl("create", "-f", "-", input=json.dumps(ended.to_lease(ns)))
        assert created.returncode == 0, created.stderr
    commands = [
        ["down", "alpha", "bravo", "--suspend-cronjobs", "--suspend-gitops", "--events"],
        ["up", "alpha", "bravo", "--hold", "1h", "--events"],
        ["scale", "alpha", "--replicas", "2"],
        ["status", "alpha", "bravo"],
        [
            "reconcile",
            "--namespace-selector",
            "nsscale/scheduled=true",
            "--uptime",
            "never",
            "--grace-period",
            "0",
            "--downtime-replicas",
            "1",
            "--at",  # past the --hold above
            (now + timedelta(hours=2)).isoformat(),
        ],
        ["recover", "alpha"],
    ]
    for args in commands:
        done = run(env, *args)
        assert done.code == 0, str(done)
    apiserver.fail("PUT", "statefulsets", "db", namespace="bravo", status=500, times=None)
    failed = run(env, "down", "bravo", "--retries", "0")  # a rollback, and its re-reads
    assert failed.code == 1, str(failed)

    sent = {
        (group, r.resource.split("/")[0], r.verb)
        for r in apiserver.requests
        if r.verb and r.resource not in (None, "discovery", "openapi")
        if (group := _group(r.path)) is not None and r.resource not in EVERYONE
    }
    assert sorted(sent) == sorted(granted(rendered(kubectl_bin)))


def _group(path: str) -> str | None:
    """The API group of a resource path: "" for /api/v1, the group for /apis/GROUP/VERSION."""
    if path.startswith("/api/v1/"):
        return ""
    match = re.match(r"/apis/([^/]+)/[^/]+/", path)
    return match.group(1) if match else None
