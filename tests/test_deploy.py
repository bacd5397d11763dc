"""deploy/ (the CronJob) and deploy/scheduler/ (the server) render with the pinned kubectl's
kustomize; their shared ClusterRole grants exactly what nsscale sends: every (API group,
resource, verb) the API server saw while every command ran every feature against it, and nothing
more; no `*`, no Secrets. The scheduler's own grants (the reviews of --kubernetes-auth, its
leader Lease) are each used by a real `nsscale serve --reconcile-every`, which needs nothing
beyond them and the ClusterRole."""

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
from tests.faultkit import nsscale_env, observe, run, scaled_down, seed, wait_until
from tests.test_serve import SPEC, Served

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SCHEDULER = DEPLOY / "scheduler"
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


# What the built-in ClusterRole system:auth-delegator grants (deploy/scheduler binds it).
AUTH_DELEGATOR = {
    ("authentication.k8s.io", "tokenreviews", "create"),
    ("authorization.k8s.io", "subjectaccessreviews", "create"),
}


def rendered(kubectl_bin: Path, where: Path = DEPLOY) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(kubectl_bin), "kustomize", str(where)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def granted(documents: list[dict[str, Any]], kind: str = "ClusterRole") -> set[Grant]:
    [role] = [d for d in documents if d["kind"] == kind]
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

    sent = _sent(apiserver.requests)
    assert sorted(sent) == sorted(granted(rendered(kubectl_bin)))


def test_the_scheduler_renders_a_server_that_reconciles_beside_the_cronjob(
    kubectl_bin: Path,
) -> None:
    documents = rendered(kubectl_bin, SCHEDULER)
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "Deployment",
        "Namespace",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    shared = ("Namespace", "ServiceAccount", "ClusterRole")
    cronjob_base = {(d["kind"], d["metadata"]["name"]): d for d in rendered(kubectl_bin)}
    for document in documents:  # the very same as the CronJob's: one role to keep exact
        if document["kind"] in shared:
            assert cronjob_base[(document["kind"], document["metadata"]["name"])] == document
    assert {
        d["metadata"].get("namespace")
        for d in documents
        if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")
    } == {"nsscale"}
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "nsscale"
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    args = container["args"]
    assert args[:2] == ["serve", "--listen"]
    assert args[2] == "0.0.0.0:8080"
    assert "--kubernetes-auth" in args
    assert args[args.index("--reconcile-every") + 1] == "5m"
    assert args[args.index("--namespace-selector") + 1] == "nsscale/scheduled=true"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert {
        "name": "POD_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    } in container["env"]
    [service] = [d for d in documents if d["kind"] == "Service"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    bindings = [d for d in documents if d["kind"] == "ClusterRoleBinding"]
    assert {b["roleRef"]["name"] for b in bindings} == {"nsscale", "system:auth-delegator"}


def test_the_scheduler_needs_exactly_its_grants_and_the_cluster_role(
    apiserver: ApiServer, kubectl_bin: Path, tmp_path: Path
) -> None:
    """A real `nsscale serve` with the Deployment's arguments: a caller's run (a TokenReview, a
    SubjectAccessReview per kind written), a status read, rounds of the loop (one acting), and
    its leader Lease taken, renewed and released (SIGTERM)."""
    documents = rendered(kubectl_bin, SCHEDULER)
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    args = list(args[3:])  # past `serve --listen 0.0.0.0:8080`: the tests' own listen
    args[args.index("--reconcile-every") + 1] = "1s"
    apiserver.add_namespace("nsscale")
    for ns in ("alpha", "bravo"):
        seed(apiserver, ns, SPEC)
        apiserver.add_cronjob(ns, "report")
    apiserver.add_namespace(
        "alpha", labels={"nsscale/scheduled": "true"}, annotations={"nsscale/uptime": "never"}
    )
    apiserver.add_token("alice-token-0123456789", "alice", ("team", "system:authenticated"))
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    env = nsscale_env(
        kubeconfig, kubectl_bin, XDG_STATE_HOME=str(tmp_path / "state"), POD_NAMESPACE="nsscale"
    )
    before = apiserver.request_count
    served = Served(env, *args, "--grace-period", "0")
    try:
        alice = "alice-token-0123456789"
        assert served.request("POST", "/api/namespaces/bravo/deactivate", token=alice).status == 200
        assert served.request("GET", "/api/namespaces/bravo", token=alice).status == 200
        assert served.request("GET", "/api/namespaces", token=alice).status == 200
        assert served.request("GET", "/api/namespaces/bravo/history", token=alice).status == 200
        assert wait_until(lambda: observe(apiserver, "alpha") == scaled_down(SPEC), 30)
        assert served.request("GET", "/readyz", token=None).status == 200
    finally:
        assert served.stop() == 0, served.stderr
    lease = apiserver.get_object("leases", "nsscale", "nsscale-scheduler")
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")  # released
    requests = apiserver.requests[before:]
    sent = _sent(requests)
    own = AUTH_DELEGATOR | granted(documents, "Role")
    assert sent <= granted(documents) | own, sorted(sent - granted(documents) - own)
    assert own <= sent, sorted(own - sent)  # each of the scheduler's own grants is used
    leader = [r for r in requests if r.resource == "leases" and r.namespace == "nsscale"]
    assert {(r.name, r.verb) for r in leader} >= {
        ("nsscale-scheduler", "get"),
        ("nsscale-scheduler", "update"),
    }
    assert {r.name for r in leader if r.verb != "create"} == {"nsscale-scheduler"}


def _sent(requests: Any) -> set[Grant]:
    """What the requests needed of RBAC: (API group, resource, verb), past what anyone may."""
    return {
        (group, r.resource.split("/")[0], r.verb)
        for r in requests
        if r.verb and r.resource not in (None, "discovery", "openapi")
        if (group := _group(r.path)) is not None and r.resource not in EVERYONE
    }


def _group(path: str) -> str | None:
    """The API group of a resource path: "" for /api/v1, the group for /apis/GROUP/VERSION."""
    if path.startswith("/api/v1/"):
        return ""
    match = re.match(r"/apis/([^/]+)/[^/]+/", path)
    return match.group(1) if match else None
