"""Every workload that scales (SPEC Part 3): Argo Rollouts moved like Deployments whenever their
CRD is installed, and any custom resource with a scale subresource named by `--scale-resource`,
its count read and written at its CRD's own paths; against the local API server with the real
kubectl."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nsscale.engine.plan import Change, Operation, Plan
from nsscale.errors import NoScaleResource
from nsscale.kube import kinds
from nsscale.kube.kinds import KINDS, Kind, register
from nsscale.kube.objects import ORIGINAL, SCALED_TO, State, Workload
from nsscale.serve.service import plan_writes
from tests.apiserver.kinds.custom import ARGO_ROLLOUT, GADGET, WIDGET
from tests.apiserver.server import ApiServer
from tests.faultkit import (
    NSSCALE,
    Finished,
    Key,
    MatrixLog,
    Observed,
    judge_down,
    observe,
    run,
    seed,
    untouched,
)
from tests.kube import NS

WIDGETS = "widgets.example.com"


def rollout(server: ApiServer, name: str, replicas: int, **meta: Any) -> None:
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": name}}}
    server.add_custom("argoproj.io/v1alpha1", "Rollout", NS, name, spec, **meta)


def widget(server: ApiServer, name: str, size: int) -> None:
    server.add_custom("example.com/v1", "Widget", NS, name, {"size": size})


def spec_of(server: ApiServer, resource: str, name: str) -> tuple[Any, str | None]:
    """(the object's spec, its recorded original count)."""
    obj = server.get_object(resource, NS, name)
    assert obj is not None
    return obj["spec"], (obj["metadata"].get("annotations") or {}).get(ORIGINAL)


@pytest.fixture
def argo(apiserver: ApiServer) -> ApiServer:
    apiserver.install_crds(ARGO_ROLLOUT)
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=2)
    rollout(apiserver, "canary", 3)
    return apiserver


@pytest.fixture
def widgets(apiserver: ApiServer) -> ApiServer:
    apiserver.install_crds(WIDGET, GADGET)
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=2)
    widget(apiserver, "big", 4)
    return apiserver


# ------------------------------------------------------------------------------ the kind table


def test_a_rollout_is_one_entry_of_the_kind_table() -> None:
    assert Kind("rollout") is Kind.ROLLOUT is Kind.from_api("Rollout")
    info = Kind.ROLLOUT.info
    assert (info.name, Kind.ROLLOUT.resource, Kind.ROLLOUT.listed) == (
        "Rollout",
        "rollouts.argoproj.io",
        "rollouts.argoproj.io",
    )
    assert {"ro", "rollouts"} <= set(info.short_names)
    assert Kind.ROLLOUT in list(Kind)


@pytest.fixture
def registry() -> Iterator[None]:
    """The kinds known, as they were before the test registered its own (the table is the
    process's: other tests list it)."""
    known, named = dict(kinds.KINDS), dict(kinds._NAMED)
    yield
    kinds.KINDS.clear()
    kinds.KINDS.update(known)
    kinds._NAMED.clear()
    kinds._NAMED.update(named)


@pytest.mark.usefixtures("registry")
def test_a_crd_with_a_scale_subresource_becomes_a_kind_at_its_own_paths() -> None:
    kind = register(WIDGET.manifest())
    assert kind is Kind("widget") is register(WIDGET.manifest())  # once, whatever is asked
    assert KINDS[kind].replicas == ("spec", "size")
    assert KINDS[kind].ready == ("readySize",)
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": NS, "resourceVersion": "7"},
        "spec": {"size": 5, "colour": "blue"},
        "status": {"readySize": 2},
    }
    found = Workload.from_manifest(obj)
    assert (found.kind, found.replicas, found.ready) == (kind, 5, 2)
    written = found.render(State(0, "5"))
    assert written["spec"] == {"size": 0, "colour": "blue"}
    assert written["metadata"]["annotations"][ORIGINAL] == "5"
    with pytest.raises(NoScaleResource, match=GADGET.name):
        register(GADGET.manifest())


def test_serve_asks_to_update_rollouts_in_their_group() -> None:
    obj = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "canary", "namespace": NS, "resourceVersion": "1"},
        "spec": {"replicas": 3},
    }
    plan = Plan(NS, Operation.DOWN, (Change(Workload.from_manifest(obj), State(0, "3")),), ())
    asked = {(a.verb, a.group, a.resource) for a in plan_writes([plan])}
    assert ("update", "argoproj.io", "rollouts") in asked


# ------------------------------------------------------------------------------ Argo Rollouts


def test_down_and_up_move_rollouts_like_deployments(argo: ApiServer, env: dict[str, str]) -> None:
    down = run(env, "down", NS, "--events", "-o", "json")
    assert down.code == 0, str(down)
    moved = {(s["type"], s["name"]) for s in json.loads(down.stdout)["scaled_resources"]}
    assert moved == {("deployment", "web"), ("rollout", "canary")}
    spec, original = spec_of(argo, "rollouts", "canary")
    assert (spec["replicas"], original) == (0, "3")
    canary = argo.get_object("rollouts", NS, "canary")
    assert canary is not None
    events = [e for e in argo.objects("events", NS) if e["involvedObject"]["kind"] == "Rollout"]
    assert [(e["reason"], e["involvedObject"]["uid"]) for e in events] == [
        ("ScaledDown", canary["metadata"]["uid"])
    ]

    status = run(env, "status", NS, "-o", "json")
    assert status.code == 0, str(status)
    shown = {(w["type"], w["name"], w["replicas"], w["original_replicas"]) for w in _shown(status)}
    assert ("rollout", "canary", 0, 3) in shown
    table = run(env, "status", NS)
    assert table.code == 0, str(table)
    assert [line for line in table.stdout.splitlines() if "rollout" in line and "canary" in line]

    up = run(env, "up", NS)
    assert up.code == 0, str(up)
    spec, original = spec_of(argo, "rollouts", "canary")
    assert (spec["replicas"], original) == (3, None)


def test_rollouts_are_chosen_like_deployments(argo: ApiServer, env: dict[str, str]) -> None:
    rollout(argo, "kept", 2, annotations={"nsscale/exclude": "true"})
    rollout(argo, "named", 2)
    owner = {"apiVersion": "v1", "kind": "Thing", "name": "boss", "uid": "u1", "controller": True}
    rollout(argo, "owned", 2, owner_references=[owner])
    down = run(env, "down", NS, "--exclude", "rollout/named", "-o", "json")
    assert down.code == 0, str(down)
    report = json.loads(down.stdout)
    assert {s["name"] for s in report["scaled_resources"]} == {"web", "canary"}
    for name in ("kept", "named", "owned"):
        assert spec_of(argo, "rollouts", name)[0]["replicas"] == 2


def test_a_failed_down_rolls_its_rollouts_back(argo: ApiServer, env: dict[str, str]) -> None:
    argo.fail("PUT", "deployments", "web", status=500, times=None)
    down = run(env, "down", NS, "--retries", "0", "-o", "json")
    assert down.code == 1, str(down)
    assert spec_of(argo, "rollouts", "canary") == ({"replicas": 3, **_selector("canary")}, None)


def _shown(status: Finished) -> list[dict[str, Any]]:
    """The workloads `status -o json` shows (one namespace, or a list of them)."""
    document = json.loads(status.stdout)
    documents = document if isinstance(document, list) else [document]
    return [w for d in documents for w in d.get("workloads", [])]


def _selector(name: str) -> dict[str, Any]:
    return {"selector": {"matchLabels": {"app": name}}}


def test_without_argo_rollouts_nothing_is_said(apiserver: ApiServer, env: dict[str, str]) -> None:
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=2)
    down = run(env, "down", NS)
    assert down.code == 0, str(down)
    assert "ollout" not in down.stderr


def test_rollouts_that_may_not_be_read_are_one_warning(
    argo: ApiServer, env: dict[str, str]
) -> None:
    argo.forbid("list", "rollouts")
    down = run(env, "down", NS, "-o", "json")
    assert down.code == 0, str(down)
    assert down.stderr.count("could not read the Rollouts") == 1, down.stderr
    assert {s["name"] for s in json.loads(down.stdout)["scaled_resources"]} == {"web"}
    assert spec_of(argo, "rollouts", "canary")[0]["replicas"] == 3


# ------------------------------------------------------------------------------ --scale-resource


def test_a_custom_resource_is_moved_at_its_crd_s_path(
    widgets: ApiServer, env: dict[str, str]
) -> None:
    down = run(env, "down", NS, "--scale-resource", WIDGETS, "-o", "json")
    assert down.code == 0, str(down)
    moved = {(s["type"], s["name"]) for s in json.loads(down.stdout)["scaled_resources"]}
    assert moved == {("deployment", "web"), ("widget", "big")}
    assert spec_of(widgets, "widgets", "big") == ({"size": 0}, "4")

    status = run(env, "status", NS, "--scale-resource", WIDGETS, "-o", "json")
    assert status.code == 0, str(status)
    shown = {(w["type"], w["name"], w["replicas"], w["original_replicas"]) for w in _shown(status)}
    assert ("widget", "big", 0, 4) in shown

    up = run(env, "up", NS, "--scale-resource", WIDGETS)
    assert up.code == 0, str(up)
    assert spec_of(widgets, "widgets", "big") == ({"size": 4}, None)


def test_recover_puts_back_the_custom_resources_a_failed_run_left(
    widgets: ApiServer, env: dict[str, str]
) -> None:
    widget(widgets, "small", 1)
    widgets.fail("PUT", "widgets", "small", status=500)
    widgets.fail("PUT", "widgets", "big", status=500, nth=2)  # its undo fails too
    args = ("--scale-resource", WIDGETS, "--batch-size", "1", "--parallel", "1", "--retries", "0")
    failed = run(env, "down", NS, *args)
    assert failed.code == 3, str(failed)
    assert spec_of(widgets, "widgets", "big") == ({"size": 0}, "4")

    recovered = run(env, "recover", NS, "--scale-resource", WIDGETS)
    assert recovered.code == 0, str(recovered)
    assert spec_of(widgets, "widgets", "big") == ({"size": 4}, None)
    assert widgets.workload(NS, "deployment", "web")["spec"]["replicas"] == 2


@pytest.mark.parametrize("named", ["gadgets.example.com", "sprockets.example.com"])
def test_a_resource_without_a_scale_subresource_is_exit_2_naming_it(
    widgets: ApiServer, env: dict[str, str], named: str
) -> None:
    down = run(env, "down", NS, "--scale-resource", named)
    assert down.code == 2, str(down)
    assert named in down.stderr
    assert "Traceback" not in down.stderr
    assert spec_of(widgets, "widgets", "big")[1] is None
    assert widgets.workload(NS, "deployment", "web")["spec"]["replicas"] == 2


def test_wait_judges_a_custom_resource_by_its_status_path(
    widgets: ApiServer, env: dict[str, str]
) -> None:
    # nobody brings status.readySize to 0: never ready
    widgets.set_status("widgets", NS, "big", {"readySize": 4})
    late = run(env, "down", NS, "--scale-resource", WIDGETS, "--wait", "--wait-timeout", "3s")
    assert late.code == 4, str(late)
    assert "big" in late.stdout + late.stderr

    widgets.edit_object("widgets", NS, "big", {"spec": {"size": 4}})
    proc = subprocess.Popen(
        [str(NSSCALE), "down", NS, "--scale-resource", WIDGETS, "--wait", "--wait-timeout", "60s"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def controller() -> None:  # the widget's: reports the new size once it sees it
        while spec_of(widgets, "widgets", "big")[0]["size"] != 0:
            time.sleep(0.1)
        time.sleep(1)
        widgets.set_status("widgets", NS, "big", {"readySize": 0})

    threading.Thread(target=controller, daemon=True).start()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, out + err


def test_custom_resources_that_may_not_be_read_are_one_warning(
    widgets: ApiServer, env: dict[str, str]
) -> None:
    widgets.forbid("list", "widgets")
    down = run(env, "down", NS, "--scale-resource", WIDGETS)
    assert down.code == 0, str(down)
    assert down.stderr.count("could not read the Widgets") == 1, down.stderr
    assert spec_of(widgets, "widgets", "big")[0]["size"] == 4


# ------------------------------------------------------------------------------ the fault matrix

# Deployments are written first (the always-served kinds), then the widgets, each by name:
# with --batch-size 1 --parallel 1 a fault on a widget's first PUT hits its forward write, on
# its second its undo.
FAULTED: dict[Key, int] = {
    ("deployment", "alpha"): 3,
    ("deployment", "bravo"): 2,
    ("widget", "big"): 4,
    ("widget", "small"): 1,
}
# failure kind -> the error_kind nsscale reports for it
WRITE_FAILURES = {
    "timeout": "timeout",
    "500": "server_error",
    "403": "forbidden",
    "409": "conflict",
    "drop": "unreachable",
    "garble": "other",
}
UNKNOWN = {"timeout", "drop", "garble"}  # the answer never reaches nsscale


def fault(server: ApiServer, failure: str, name: str, nth: int = 1) -> None:
    """The failure on the nth PUT of this widget (1: its write, 2: its undo)."""
    if failure == "timeout":
        server.hang("PUT", "widgets", name, nth=nth)
    elif failure == "drop":
        server.drop("PUT", "widgets", name, nth=nth)
    elif failure == "garble":
        server.garble("PUT", "widgets", name, nth=nth)
    else:
        server.fail("PUT", "widgets", name, status=int(failure), nth=nth)


def observed(server: ApiServer) -> dict[Key, Observed]:
    """The deployments and widgets as faultkit judges them: (count, original, scaled-to)."""
    found = {k: v for k, v in observe(server, NS).items() if k in FAULTED}
    for obj in server.objects("widgets", NS):
        annotations = obj["metadata"].get("annotations") or {}
        found[("widget", obj["metadata"]["name"])] = (
            obj["spec"]["size"],
            annotations.get(ORIGINAL),
            annotations.get(SCALED_TO),
        )
    return found


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["rollback", "no-rollback"])
@pytest.mark.parametrize("position", ["first", "last", "rollback"])
@pytest.mark.parametrize("failure", WRITE_FAILURES)
def test_fault_matrix_of_a_custom_kind(
    apiserver: ApiServer,
    env: dict[str, str],
    matrix: MatrixLog,
    failure: str,
    position: str,
    mode: str,
) -> None:
    apiserver.install_crds(WIDGET)
    seed(apiserver, NS, {k: n for k, n in FAULTED.items() if k[0] == "deployment"})
    for (kind, name), size in FAULTED.items():
        if kind == "widget":
            widget(apiserver, name, size)
    failing = "big" if position == "first" else "small"
    fault(apiserver, failure, failing)
    if position == "rollback":  # and then the undo of the first widget fails too
        fault(apiserver, failure, "big", nth=2)
    args = ["down", NS, "--scale-resource", WIDGETS, "--batch-size", "1", "--parallel", "1"]
    args += ["--retries", "0", "--timeout", "3" if failure in UNKNOWN else "20", "-o", "json"]
    if mode == "no-rollback":
        args.append("--no-rollback")
    done = run(env, *args)
    final, report = observed(apiserver), done.json()
    verdict = judge_down(FAULTED, final, done.code, report)
    matrix.add(f"wg:{failure}", position, mode, verdict)
    assert verdict.ok, verdict.explain(final, report)
    assert verdict.originals_lost == ()
    assert "Traceback" not in done.stderr, done.stderr
    assert [(f["type"], f["name"], f["error_kind"]) for f in report["failed_resources"]] == [
        ("widget", failing, WRITE_FAILURES[failure])
    ]
    if mode == "rollback" and position != "rollback":
        assert done.code == 1, str(done)
        assert final == untouched(FAULTED)


def test_reconcile_brings_down_rollouts_and_the_custom_resources_named(
    widgets: ApiServer, env: dict[str, str]
) -> None:
    widgets.install_crds(ARGO_ROLLOUT)
    widgets.add_namespace(NS, labels={"nsscale/scheduled": "true"})
    rollout(widgets, "canary", 3)
    args = ("--namespace-selector", "nsscale/scheduled=true", "--uptime", "never", "-o", "json")
    done = run(env, "reconcile", *args, "--scale-resource", WIDGETS, "--grace-period", "0")
    assert done.code == 0, str(done)
    [decision] = json.loads(done.stdout)["namespaces"]
    moved = {(s["type"], s["name"]) for s in decision["result"]["scaled_resources"]}
    assert moved == {("deployment", "web"), ("rollout", "canary"), ("widget", "big")}
    assert spec_of(widgets, "widgets", "big") == ({"size": 0}, "4")


# ------------------------------------------------------------------------------- serve


def test_serve_moves_and_shows_the_custom_resources_it_is_given(
    widgets: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    from tests.test_serve import ADMIN, Served, token_file

    tokens = token_file(tmp_path / "tokens", ADMIN)
    served = Served(env, "--token-file", str(tokens), "--scale-resource", WIDGETS)
    try:
        shown = served.request("GET", f"/api/namespaces/{NS}")
        assert shown.status == 200, shown
        assert ("widget", "big") in {(w["type"], w["name"]) for w in shown.json["workloads"]}

        down = served.post(NS)
        assert down.status == 200, down
        assert spec_of(widgets, "widgets", "big") == ({"size": 0}, "4")
        assert widgets.workload(NS, "deployment", "web")["spec"]["replicas"] == 0
    finally:
        assert served.stop() == 0, served.stderr


def test_serve_with_a_resource_that_cannot_scale_does_not_start(
    widgets: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    from tests.test_serve import ADMIN, token_file

    tokens = token_file(tmp_path / "tokens", ADMIN)
    argv = [str(NSSCALE), "serve", "--listen", "127.0.0.1:0", "--token-file", str(tokens)]
    done = subprocess.run(
        [*argv, "--scale-resource", "gadgets.example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "gadgets.example.com" in done.stderr
    assert "Traceback" not in done.stderr
