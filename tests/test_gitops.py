"""--suspend-gitops with the real kubectl and the local API server: each GitOps owner of the
workloads a run changes is suspended in the same transaction, for the namespaces it covers, and
`up` resumes it, putting back exactly what was there, once none of them is still down."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nsscale.engine.plan import Change, Operation, Plan
from nsscale.engine.rivals.gitops import with_owners
from nsscale.kube.objects import (
    ORIGINAL_AUTOMATED,
    ORIGINAL_SUSPEND,
    SUSPENDED_FOR,
    State,
    Workload,
)
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.kinds.custom import ARGO_APPLICATION, FLUX_KUSTOMIZATION
from tests.apiserver.server import ApiServer
from tests.faultkit import live_mark, run
from tests.kube import workload

pytestmark = pytest.mark.e2e

FLUX = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux"}
ARGO = {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}
AUTOMATED = {"prune": True, "selfHeal": True}
NSSCALE = (ORIGINAL_SUSPEND, ORIGINAL_AUTOMATED, SUSPENDED_FOR)


@pytest.fixture
def gitops(apiserver: ApiServer) -> ApiServer:
    """Namespaces a and b applied by one Flux Kustomization; shop's web by an Argo CD
    Application with automated sync."""
    apiserver.install_crds(FLUX_KUSTOMIZATION, ARGO_APPLICATION)
    apiserver.add_custom(FLUX_KUSTOMIZATION.api_version, "Kustomization", "flux", "apps", {})
    apiserver.add_custom(
        ARGO_APPLICATION.api_version,
        "Application",
        "argocd",
        "shop",
        {"project": "default", "syncPolicy": {"automated": AUTOMATED, "syncOptions": ["x"]}},
    )
    for ns in ("a", "b"):
        apiserver.add_namespace(ns)
        apiserver.add_deployment(ns, "web", replicas=2, labels=FLUX)
        apiserver.add_deployment(ns, "plain", replicas=1)
    apiserver.add_namespace("shop")
    apiserver.add_deployment("shop", "web", replicas=3, annotations=ARGO)
    return apiserver


def kustomization(server: ApiServer) -> tuple[Any, dict[str, str]]:
    """The Kustomization's spec.suspend (None when absent) and nsscale's annotations on it."""
    obj = server.get_object("kustomizations", "flux", "apps")
    assert obj is not None
    annotations = obj["metadata"].get("annotations") or {}
    return obj["spec"].get("suspend"), {k: v for k, v in annotations.items() if k in NSSCALE}


def application(server: ApiServer) -> tuple[dict[str, Any], dict[str, str]]:
    obj = server.get_object("applications", "argocd", "shop")
    assert obj is not None
    annotations = obj["metadata"].get("annotations") or {}
    return obj["spec"]["syncPolicy"], {k: v for k, v in annotations.items() if k in NSSCALE}


def replicas(server: ApiServer, ns: str, name: str = "web") -> int:
    obj = server.get_object("deployments", ns, name)
    assert obj is not None
    return int(obj["spec"]["replicas"])


def owner(api_version: str, kind: str, spec: dict[str, Any]) -> Workload:
    return Workload.from_manifest(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": "o", "namespace": "gitops", "resourceVersion": "7"},
            "spec": spec,
        }
    )


def managed_by(kind: str) -> Workload:
    """A deployment of namespace a applied by the owner `o` of kind `kind` (in gitops)."""
    obj = workload("web", 2)
    obj["metadata"]["namespace"] = "a"
    if kind == "Application":
        obj["metadata"]["annotations"] = {
            "argocd.argoproj.io/tracking-id": "o:apps/Deployment:a/web"
        }
    else:
        group = "kustomize" if kind == "Kustomization" else "helm"
        obj["metadata"]["labels"] = {
            f"{group}.toolkit.fluxcd.io/name": "o",
            f"{group}.toolkit.fluxcd.io/namespace": "gitops",
        }
    return Workload.from_manifest(obj)


@pytest.mark.parametrize(
    ("api_version", "kind", "spec"),
    [
        (FLUX_KUSTOMIZATION.api_version, "Kustomization", {"path": "./apps"}),
        (FLUX_KUSTOMIZATION.api_version, "Kustomization", {"suspend": False}),
        ("helm.toolkit.fluxcd.io/v2", "HelmRelease", {"chart": {"spec": {"chart": "db"}}}),
        (ARGO_APPLICATION.api_version, "Application", {"syncPolicy": {"automated": {}}}),
        (ARGO_APPLICATION.api_version, "Application", {"syncPolicy": {"automated": AUTOMATED}}),
    ],
)
def test_a_suspension_and_its_resume_give_back_the_very_same_object(
    api_version: str, kind: str, spec: dict[str, Any]
) -> None:
    before = owner(api_version, kind, spec)
    assert before.replicas == 1
    web = managed_by(kind)
    plan = Plan("a", Operation.DOWN, (Change(web, State(0, "2", "0")),), ())
    plans, bonds = with_owners({"a": plan}, {before.key: before}, "gitops")
    suspension = plans["a"].changes[0]
    assert (suspension.workload, suspension.scope, bonds) == (before, "a", [])
    suspended = Workload.from_manifest(before.render(suspension.after))
    assert (suspended.replicas, suspended.state) == (0, suspension.after)
    assert suspended.state.holders == "a"

    up = Plan("a", Operation.UP, (Change(web, State(2)),), ())
    resume = with_owners({"a": up}, {suspended.key: suspended}, "gitops")[0]["a"].changes[-1]
    assert resume.after == State(1)
    resumed = suspended.render(resume.after)
    assert resumed["spec"] == before.manifest["spec"]
    assert "annotations" not in resumed["metadata"]


def test_down_suspends_each_owner_and_up_puts_back_exactly_what_was_there(
    gitops: ApiServer, env: dict[str, str]
) -> None:
    down = run(env, "down", "a", "shop", "--suspend-gitops", "-o", "json")
    assert down.code == 0, str(down)
    assert "put back the count from Git" not in down.stderr  # suspended: nothing to warn of
    report = {ns["namespace"]: ns for ns in json.loads(down.stdout)["namespaces"]}
    assert report["a"]["suspended_resources"] == [
        {
            "type": "kustomization",
            "namespace": "flux",
            "name": "apps",
            "change": "suspend",
            "status": "success",
            "suspended_for": ["a"],
        }
    ]
    assert [(s["type"], s["namespace"]) for s in report["shop"]["suspended_resources"]] == [
        ("application", "argocd")
    ]
    assert kustomization(gitops) == (True, {ORIGINAL_SUSPEND: "none", SUSPENDED_FOR: "a"})
    policy, recorded = application(gitops)
    assert policy == {"syncOptions": ["x"]}
    assert json.loads(recorded[ORIGINAL_AUTOMATED]) == AUTOMATED
    assert recorded[SUSPENDED_FOR] == "shop"

    up = run(env, "up", "a", "shop")
    assert up.code == 0, str(up)
    assert "Kustomization resumed" in up.stdout
    assert kustomization(gitops) == (None, {})
    assert application(gitops) == ({"automated": AUTOMATED, "syncOptions": ["x"]}, {})
    assert replicas(gitops, "a") == 2
    assert replicas(gitops, "shop") == 3


def test_an_owner_of_several_namespaces_is_resumed_once_none_is_down(
    gitops: ApiServer, env: dict[str, str]
) -> None:
    assert run(env, "down", "a", "--suspend-gitops").code == 0
    assert run(env, "down", "b", "--suspend-gitops").code == 0
    assert kustomization(gitops) == (True, {ORIGINAL_SUSPEND: "none", SUSPENDED_FOR: "a,b"})

    up = run(env, "up", "a", "-o", "json")
    assert up.code == 0, str(up)
    (kept,) = json.loads(up.stdout)["suspended_resources"]
    assert (kept["change"], kept["suspended_for"]) == ("suspend", ["b"])
    assert kustomization(gitops) == (True, {ORIGINAL_SUSPEND: "none", SUSPENDED_FOR: "b"})

    assert run(env, "up", "b").code == 0
    assert kustomization(gitops) == (None, {})


def test_one_run_over_both_namespaces_writes_the_owner_once(
    gitops: ApiServer, env: dict[str, str]
) -> None:
    down = run(env, "down", "a", "b", "--suspend-gitops", "-o", "json")
    assert down.code == 0, str(down)
    assert kustomization(gitops) == (True, {ORIGINAL_SUSPEND: "none", SUSPENDED_FOR: "a,b"})
    puts = [r for r in gitops.requests if r.method == "PUT" and r.resource == "kustomizations"]
    assert len(puts) == 1
    assert run(env, "up", "a", "b").code == 0
    assert kustomization(gitops) == (None, {})


def test_namespaces_one_owner_covers_are_undone_together(
    gitops: ApiServer, env: dict[str, str]
) -> None:
    """b fails: the owner's suspension, one write for a and b, is undone, and so is a (else Flux
    would put a back up behind nsscale's back); shop, not bound to them, stays down."""
    gitops.fail("PUT", "deployments", "plain", namespace="b", status=500, times=None)
    down = run(env, "down", "a", "b", "shop", "--suspend-gitops", "--retries", "0", "-o", "json")
    assert down.code == 1, str(down)
    report = {ns["namespace"]: ns for ns in json.loads(down.stdout)["namespaces"]}
    assert not report["a"]["success"]
    assert any("one GitOps owner is suspended for both" in e for e in report["a"]["errors"])
    assert ("kustomization", None) in {
        (r["type"], r["restored_replicas"]) for r in report["a"]["rollback_results"]
    }
    assert report["shop"]["success"]
    assert kustomization(gitops) == (None, {})
    assert (replicas(gitops, "a"), replicas(gitops, "b"), replicas(gitops, "shop")) == (2, 2, 0)


def test_an_owner_suspended_by_someone_else_is_left_alone(
    gitops: ApiServer, env: dict[str, str]
) -> None:
    gitops.edit_object("kustomizations", "flux", "apps", {"spec": {"suspend": True}})
    down = run(env, "down", "a", "--suspend-gitops", "-o", "json")
    assert down.code == 0, str(down)
    (skipped,) = [
        s for s in json.loads(down.stdout)["skipped_resources"] if s["type"] == "kustomization"
    ]
    assert "not by nsscale" in skipped["reason"]
    assert run(env, "up", "a").code == 0
    assert kustomization(gitops) == (True, {})  # still the other party's to resume


def test_an_owner_that_cannot_be_read_stops_the_run_before_any_change(
    gitops: ApiServer, env: dict[str, str]
) -> None:
    gitops.forbid("list", "kustomizations")
    down = run(env, "down", "a", "--suspend-gitops")
    assert down.code == 1, str(down)
    assert "could not read the GitOps owners to suspend" in down.stderr
    assert "Traceback" not in down.stderr
    assert replicas(gitops, "a") == 2


def test_without_flux_installed_the_run_goes_on_with_a_warning(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.add_namespace("a")
    apiserver.add_deployment("a", "web", replicas=2, labels=FLUX)
    down = run(env, "down", "a", "--suspend-gitops")
    assert down.code == 0, str(down)
    assert "kustomizations.kustomize.toolkit.fluxcd.io is not installed" in down.stderr
    assert replicas(apiserver, "a") == 0


def test_a_bad_argocd_namespace_is_a_usage_error(gitops: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "down", "shop", "--suspend-gitops", "--argocd-namespace", "Argo_CD")
    assert done.code == 2, str(done)
    assert "invalid namespace 'Argo_CD'" in done.stderr
    assert replicas(gitops, "shop") == 3


def test_an_owner_left_suspended_by_a_failed_rollback_is_put_back_by_recover(
    gitops: ApiServer, env: dict[str, str]
) -> None:
    gitops.fail("PUT", "deployments", "plain", namespace="a", status=500, times=None)
    gitops.fail("PUT", "kustomizations", "apps", status=500, nth=2)  # its undo
    down = run(env, "down", "a", "--suspend-gitops", "--retries", "0", "-o", "json")
    assert down.code == 3, str(down)
    assert kustomization(gitops)[0] is True
    recovered = run(env, "recover", "a", "-o", "json")
    assert recovered.code == 0, str(recovered)
    assert kustomization(gitops) == (None, {})
    assert replicas(gitops, "a") == 2


def test_reconcile_suspends_the_owner_at_night_and_resumes_it_in_the_morning(
    gitops: ApiServer, env: dict[str, str]
) -> None:
    night = run(
        env, "reconcile", "a", "--uptime", "never", "--suspend-gitops", "--grace-period", "0"
    )
    assert night.code == 0, str(night)
    assert kustomization(gitops) == (True, {ORIGINAL_SUSPEND: "none", SUSPENDED_FOR: "a"})
    morning = run(env, "reconcile", "a", "--uptime", "always")
    assert morning.code == 0, str(morning)
    assert kustomization(gitops) == (None, {})
    assert replicas(gitops, "a") == 2


def test_namespaces_one_owner_covers_do_not_start_without_each_other(
    gitops: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    """a holds the owner's one suspension for a and b: with b held by another run, a must not
    go down either (Flux, unsuspended, would put it back up)."""
    live_mark(kubectl, "b")
    down = run(env, "down", "a", "b", "shop", "--suspend-gitops", "-o", "json")
    assert down.code == 1, str(down)
    report = {ns["namespace"]: ns for ns in json.loads(down.stdout)["namespaces"]}
    assert "one GitOps owner is suspended for both" in report["a"]["errors"][0]
    assert report["shop"]["success"]
    assert kustomization(gitops) == (None, {})
    assert (replicas(gitops, "a"), replicas(gitops, "shop")) == (2, 0)
    assert gitops.get_object("leases", "a", "nsscale") is None  # its mark is cleared
