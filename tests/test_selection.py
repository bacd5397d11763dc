"""Choosing workloads, with the real kubectl and the local API server: a label selector, --exclude,
the annotation nsscale/exclude, and workloads a controller owns; `up` honours the same choice."""

from __future__ import annotations

import json

import pytest

from tests.apiserver.server import ApiServer
from tests.faultkit import observe, run

pytestmark = pytest.mark.e2e

NS = "shop"


@pytest.fixture
def shop(apiserver: ApiServer) -> ApiServer:
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=3, labels={"tier": "front"})
    apiserver.add_deployment(NS, "api", replicas=2, labels={"tier": "back"})
    apiserver.add_statefulset(NS, "db", replicas=1, labels={"tier": "back"})
    back = {"tier": "back"}
    apiserver.add_deployment(NS, "batch", 2, labels=back, annotations={"nsscale/exclude": "true"})
    apiserver.add_deployment(NS, "odd", 1, labels=back, annotations={"nsscale/exclude": "yes"})
    apiserver.add_deployment(NS, "owned", replicas=1, owner=("Deployment", "web"))
    return apiserver


def replicas(server: ApiServer) -> dict[str, int]:
    return {name: counts[0] for (_, name), counts in observe(server, NS).items()}


def skipped(report: dict[str, object]) -> dict[str, str]:
    return {s["name"]: s["reason"] for s in report["skipped_resources"]}  # type: ignore[attr-defined]


def test_only_the_selected_workloads_take_part_and_up_honours_the_same_choice(
    shop: ApiServer, env: dict[str, str]
) -> None:
    choice = ("-l", "tier=back", "--exclude", "statefulset/db")
    down = run(env, "down", NS, *choice, "-o", "json")
    assert down.code == 0, str(down)
    report = json.loads(down.stdout)
    assert [s["name"] for s in report["scaled_resources"]] == ["api"]
    assert skipped(report) == {
        "batch": "excluded (annotation nsscale/exclude)",
        "odd": "excluded: the annotation nsscale/exclude is 'yes', neither true nor false",
        "db": "excluded (--exclude statefulset/db)",
    }
    assert "[WARNING] deployment/odd: excluded: the annotation" in down.stderr
    assert replicas(shop) == {"web": 3, "api": 0, "db": 1, "batch": 2, "odd": 1, "owned": 1}

    up = run(env, "up", NS, *choice, "-o", "json")
    assert up.code == 0, str(up)
    assert [s["name"] for s in json.loads(up.stdout)["scaled_resources"]] == ["api"]
    assert replicas(shop) == {"web": 3, "api": 2, "db": 1, "batch": 2, "odd": 1, "owned": 1}


def test_a_workload_a_controller_owns_is_left_to_it(shop: ApiServer, env: dict[str, str]) -> None:
    down = run(env, "down", NS, "--exclude", "web", "-o", "json")
    assert down.code == 0, str(down)
    report = json.loads(down.stdout)
    assert skipped(report)["owned"] == "managed by Deployment web"
    assert skipped(report)["web"] == "excluded (--exclude web)"
    assert replicas(shop)["owned"] == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--exclude", "pod/web"], "invalid --exclude 'pod/web'"),
        (["-l", "tier in (front"], "invalid --selector 'tier in (front'"),
    ],
)
def test_a_bad_choice_is_bad_input_and_changes_nothing(
    shop: ApiServer, env: dict[str, str], args: list[str], says: str
) -> None:
    before = observe(shop, NS)
    done = run(env, "down", NS, *args)
    assert done.code == 2, str(done)
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 2
    assert observe(shop, NS) == before
