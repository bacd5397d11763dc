"""The objects that fight a scale, with the real kubectl and the local API server: GitOps owners
found from a workload's own metadata, shown by `status` and warned of once per owner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsscale.engine.rivals.gitops import GitOpsOwner, gitops_owner
from nsscale.kube.objects import PAUSED, Workload
from tests.apiserver.kinds.custom import KEDA_SCALED_OBJECT
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


@pytest.fixture
def autoscaled(apiserver: ApiServer) -> ApiServer:
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=3)
    apiserver.add_deployment(NS, "api", replicas=2)
    apiserver.add_statefulset(NS, "db", replicas=1)
    apiserver.add_hpa(NS, "web-hpa", "Deployment", "web", min_replicas=2, max_replicas=8)
    return apiserver


def test_status_shows_the_hpa_of_each_workload(autoscaled: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "status", NS, "-o", "json")
    assert done.code == 0, str(done)
    hpas = {w["name"]: w["hpa"] for w in json.loads(done.stdout)["workloads"]}
    assert hpas == {"web": {"name": "web-hpa", "min": 2, "max": 8}, "api": None, "db": None}
    assert "HPA web-hpa (2-8)" in run(env, "status", NS).stdout


def test_scale_to_n_warns_of_the_hpa_that_will_override_it(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    scaled = run(env, "scale", NS, "--replicas", "1")
    assert scaled.code == 0, str(scaled)
    assert "deployment/web: HPA web-hpa (2-8) will override --replicas 1" in scaled.stderr
    assert "api" not in scaled.stderr
    down = run(env, "down", NS)  # at 0 an HPA stops acting on its target: nothing to say
    assert down.code == 0, str(down)
    assert "HPA" not in down.stderr


# ------------------------------------------------------------------------------ CronJobs


@pytest.fixture
def scheduled(apiserver: ApiServer) -> ApiServer:
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=2)
    apiserver.add_cronjob(NS, "a-report")
    apiserver.add_cronjob(NS, "b-cleanup", suspend=False)
    apiserver.add_cronjob(NS, "c-paused", suspend=True)  # suspended by someone else
    return apiserver


def cronjobs(server: ApiServer) -> dict[str, tuple[bool, str | None]]:
    """name -> (spec.suspend, nsscale/original-suspend)."""
    found = {}
    for name in ("a-report", "b-cleanup", "c-paused"):
        obj = server.get_object("cronjobs", NS, name)
        assert obj is not None
        annotations = obj["metadata"].get("annotations") or {}
        found[name] = (
            obj["spec"].get("suspend", False),
            annotations.get("nsscale/original-suspend"),
        )
    return found


RUNNING = {"a-report": (False, None), "b-cleanup": (False, None), "c-paused": (True, None)}


def test_down_suspends_cronjobs_when_asked_and_up_resumes_only_those(
    scheduled: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    plain = run(env, "down", NS, "--dry-run", "-o", "json")  # without the flag: not touched
    assert json.loads(plain.stdout)["suspended_resources"] == []

    down = run(env, "down", NS, "--suspend-cronjobs", "-o", "json")
    assert down.code == 0, str(down)
    report = json.loads(down.stdout)
    assert [(s["name"], s["change"]) for s in report["suspended_resources"]] == [
        ("a-report", "suspend"),
        ("b-cleanup", "suspend"),
    ]
    assert report["total_scaled"] == 1  # web; a CronJob is suspended, not scaled
    assert {s["name"]: s["reason"] for s in report["skipped_resources"]} == {
        "c-paused": "already suspended"
    }
    assert cronjobs(scheduled) == {
        "a-report": (True, "false"),
        "b-cleanup": (True, "false"),
        "c-paused": (True, None),
    }

    up = run(env, "up", NS)  # no flag needed: up puts back what nsscale suspended
    assert up.code == 0, str(up)
    assert "1 restored, 2 CronJobs resumed" in up.stdout
    assert cronjobs(scheduled) == RUNNING
    audit = tmp_path / "state" / "nsscale" / "audit.jsonl"
    steps = [
        (step["action"], step["name"])
        for line in audit.read_text().splitlines()
        for step in json.loads(line).get("steps", [])  # a run's start has none
        if step.get("type") == "cronjob" and step["action"] != "skip"
    ]
    assert steps == [
        ("suspend", "a-report"),
        ("suspend", "b-cleanup"),
        ("resume", "a-report"),
        ("resume", "b-cleanup"),
    ]


def test_a_suspended_cronjob_is_resumed_by_the_rollback(
    scheduled: ApiServer, env: dict[str, str]
) -> None:
    scheduled.fail("PUT", "cronjobs", "b-cleanup", status=500, times=None)
    down = run(
        env,
        "down",
        NS,
        "--suspend-cronjobs",
        "--retries",
        "0",
        "--batch-size",
        "1",
        "--parallel",
        "1",
        "-o",
        "json",
    )
    assert down.code == 1, str(down)
    report = json.loads(down.stdout)
    assert {(r["type"], r["name"], r["restored_replicas"]) for r in report["rollback_results"]} == {
        ("cronjob", "a-report", None),
        ("deployment", "web", 2),
    }
    assert report["failed_resources"][0]["type"] == "cronjob"
    assert cronjobs(scheduled) == RUNNING


# ------------------------------------------------------------------------------ KEDA


@pytest.fixture
def keda(apiserver: ApiServer) -> ApiServer:
    apiserver.install_crds(KEDA_SCALED_OBJECT)
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=3)
    apiserver.add_deployment(NS, "api", replicas=2)
    apiserver.add_statefulset(NS, "db", replicas=1)
    target = {"scaleTargetRef": {"name": "web"}}  # kind: Deployment by default
    apiserver.add_custom("keda.sh/v1alpha1", "ScaledObject", NS, "web-so", target)
    held = {"scaleTargetRef": {"kind": "StatefulSet", "name": "db"}}
    apiserver.add_custom(
        "keda.sh/v1alpha1", "ScaledObject", NS, "db-so", held, annotations={PAUSED: "2"}
    )
    return apiserver


def paused(server: ApiServer) -> dict[str, tuple[str | None, str | None]]:
    """ScaledObject name -> (paused-replicas, nsscale's record of it)."""
    found = {}
    for name in ("web-so", "db-so"):
        obj = server.get_object("scaledobjects", NS, name)
        assert obj is not None
        annotations = obj["metadata"].get("annotations") or {}
        found[name] = (annotations.get(PAUSED), annotations.get("nsscale/original-paused-replicas"))
    return found


def test_down_pauses_the_scaledobjects_of_its_workloads_and_up_puts_back_what_was_there(
    keda: ApiServer, env: dict[str, str]
) -> None:
    down = run(env, "down", NS, "-o", "json")
    assert down.code == 0, str(down)
    report = json.loads(down.stdout)
    assert {(s["type"], s["name"], s["change"]) for s in report["suspended_resources"]} == {
        ("scaledobject", "web-so", "suspend"),
        ("scaledobject", "db-so", "suspend"),
    }
    assert paused(keda) == {"web-so": ("0", "none"), "db-so": ("0", "2")}

    up = run(env, "up", NS)
    assert up.code == 0, str(up)
    assert "2 ScaledObjects resumed" in up.stdout
    assert paused(keda) == {"web-so": (None, None), "db-so": ("2", None)}


def test_a_failed_down_resumes_the_scaledobject_it_paused(
    keda: ApiServer, env: dict[str, str]
) -> None:
    keda.fail("PUT", "statefulsets", "db", status=500, times=None)
    down = run(env, "down", NS, "--retries", "0", "-o", "json")
    assert down.code == 1, str(down)
    assert paused(keda) == {"web-so": (None, None), "db-so": ("2", None)}
    restored = {(r["type"], r["name"]) for r in json.loads(down.stdout)["rollback_results"]}
    assert {("scaledobject", "web-so"), ("scaledobject", "db-so")} <= restored


def test_without_keda_nothing_is_paused_and_nothing_is_said(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=3)
    down = run(env, "down", NS, "-o", "json")
    assert down.code == 0, str(down)
    assert json.loads(down.stdout)["suspended_resources"] == []
    assert "ScaledObject" not in down.stderr


def test_up_without_the_right_to_read_cronjobs_still_brings_the_workloads_back(
    scheduled: ApiServer, env: dict[str, str]
) -> None:
    down = run(env, "down", NS)
    assert down.code == 0, str(down)
    scheduled.forbid("list", "cronjobs")
    up = run(env, "up", NS)
    assert up.code == 0, str(up)
    assert "could not read the CronJobs, so none is resumed" in up.stderr
    web = scheduled.get_object("deployments", NS, "web")
    assert web is not None
    assert web["spec"]["replicas"] == 2
    asked = run(env, "down", NS, "--suspend-cronjobs")  # asked for: not reading them fails
    assert asked.code == 1, str(asked)
    assert 'cannot list resource "cronjobs"' in asked.stderr
