"""The objects that fight a scale, with the real kubectl and the local API server: GitOps owners
found from a workload's own metadata, shown by `status` and warned of once per owner."""

from __future__ import annotations

import json

import pytest

from nsscale.rivals.gitops import GitOpsOwner, gitops_owner
from nsscale.workload import Workload
from tests.apiserver.server import ApiServer
from tests.faultkit import run
from tests.kube import NS, workload

pytestmark = pytest.mark.e2e

ARGO = {"argocd.argoproj.io/tracking-id": "shop-web:apps/Deployment:shop/web"}
FLUX = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux"}
HELM = {"helm.toolkit.fluxcd.io/name": "db", "helm.toolkit.fluxcd.io/namespace": "flux"}


@pytest.mark.parametrize(
    ("annotations", "labels", "owner"),
    [
        (ARGO, {}, GitOpsOwner("Argo CD", "Application", "shop-web")),
        ({}, FLUX, GitOpsOwner("Flux", "Kustomization", "apps", "flux")),
        ({}, HELM, GitOpsOwner("Flux", "HelmRelease", "db", "flux")),
        ({}, {"kustomize.toolkit.fluxcd.io/name": "apps"}, None),  # no namespace: not Flux's
        ({}, {}, None),
    ],
)
def test_a_gitops_owner_is_read_off_the_workload(
    annotations: dict[str, str], labels: dict[str, str], owner: GitOpsOwner | None
) -> None:
    obj = workload("web", 3)
    obj["metadata"]["annotations"] = annotations
    obj["metadata"]["labels"] = labels
    assert gitops_owner(Workload.from_manifest(obj)) == owner


@pytest.fixture
def managed(apiserver: ApiServer) -> ApiServer:
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=3, annotations=ARGO)
    apiserver.add_deployment(NS, "api", replicas=2, labels=FLUX)
    apiserver.add_deployment(NS, "worker", replicas=1, labels=FLUX)
    apiserver.add_statefulset(NS, "db", replicas=1)
    return apiserver


def test_down_warns_once_per_gitops_owner(managed: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "down", NS)
    assert done.code == 0, str(done)
    warnings = [line for line in done.stderr.splitlines() if "put back the count from Git" in line]
    assert len(warnings) == 2, done.stderr
    assert any(
        "Flux Kustomization flux/apps manages deployment/api, deployment/worker" in w
        and "flux suspend kustomization apps -n flux" in w
        for w in warnings
    )
    assert any("Argo CD Application shop-web manages deployment/web" in w for w in warnings)
    assert "Git" not in run(env, "up", NS).stderr  # up puts back what Git has anyway


def test_status_shows_each_workload_s_gitops_owner(managed: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "status", NS, "-o", "json")
    assert done.code == 0, str(done)
    owners = {w["name"]: w["gitops_owner"] for w in json.loads(done.stdout)["workloads"]}
    assert owners["web"] == {
        "tool": "Argo CD",
        "kind": "Application",
        "name": "shop-web",
        "namespace": "",
    }
    assert owners["api"] == {
        "tool": "Flux",
        "kind": "Kustomization",
        "name": "apps",
        "namespace": "flux",
    }
    assert owners["db"] is None
    table = run(env, "status", NS)
    assert "Flux Kustomization flux/apps" in table.stdout
