"""--events, with the real kubectl and the local API server: an Event on each workload changed,
found by `kubectl describe`."""

from __future__ import annotations

import pytest

from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.server import ApiServer
from tests.faultkit import Key, run

pytestmark = pytest.mark.e2e

NS = "shop"
SPEC: dict[Key, int] = {("deployment", "web"): 3, ("statefulset", "db"): 1}


def reasons(server: ApiServer) -> list[tuple[str, str, str]]:
    return sorted(
        (e["involvedObject"]["name"], e["reason"], e.get("reportingComponent", ""))
        for e in server.objects("events", NS)
    )


def test_each_changed_workload_gets_an_event_that_describe_shows(
    shop: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    down = run(env, "down", NS, "--events", "-vv")
    assert down.code == 0, str(down)
    assert reasons(shop) == [("db", "ScaledDown", "nsscale"), ("web", "ScaledDown", "nsscale")]
    assert down.stderr.count("create -f - --validate=false -o name") == 1  # one call for all
    described = kubectl("describe", "deployment", "web", "-n", NS)
    assert described.returncode == 0, described.stderr
    assert "ScaledDown" in described.stdout
    assert "nsscale run" in described.stdout

    up = run(env, "up", NS, "--events")
    assert up.code == 0, str(up)
    assert ("web", "ScaledUp", "nsscale") in reasons(shop)


def test_an_undone_change_is_a_rolled_back_event(shop: ApiServer, env: dict[str, str]) -> None:
    shop.fail("PUT", "statefulsets", "db", status=500, times=None)
    down = run(env, "down", NS, "--events", "--retries", "0")
    assert down.code == 1, str(down)
    assert ("web", "RolledBack", "nsscale") in reasons(shop)


def test_without_the_flag_no_event_is_written(shop: ApiServer, env: dict[str, str]) -> None:
    assert run(env, "down", NS).code == 0
    assert reasons(shop) == []
