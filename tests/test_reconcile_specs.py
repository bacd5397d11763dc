"""`nsscale reconcile` with the real kubectl and the local API server, for the schedule language:
a bad annotation is that namespace's error (exit 1 once every other namespace is handled, an
`InvalidSchedule` Event with `--events`), kube-downscaler's annotations where nsscale's are absent,
`exclude-until`, and an `--exclude` that matches nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.apiserver.server import ApiServer
from tests.faultkit import Key, observe, run, scaled_down, seed, untouched

pytestmark = pytest.mark.e2e

SPEC: dict[Key, int] = {("deployment", "web"): 2, ("statefulset", "db"): 1}
WORKDAYS = "Mon-Fri 08:00-20:00 Europe/Madrid"
NIGHT = "2026-12-02T23:00:00+01:00"  # a Wednesday, outside WORKDAYS
TYPO = "Mon-Fry 08:00-20:00"


@pytest.fixture
def teams(apiserver: ApiServer) -> ApiServer:
    for ns in ("dev", "qa", "demo"):
        seed(apiserver, ns, SPEC)
        apiserver.add_namespace(ns, labels={"nsscale/scheduled": "true"})
    return apiserver


def reconcile(env: dict[str, str], *args: str) -> Any:
    return run(env, "reconcile", "--namespace-selector", "nsscale/scheduled=true", *args)


def entries(stdout: str) -> dict[str, dict[str, Any]]:
    return {d["namespace"]: d for d in json.loads(stdout)["namespaces"]}


def test_a_bad_schedule_is_that_namespaces_error_and_the_run_fails_after_the_others(
    teams: ApiServer, env: dict[str, str]
) -> None:
    teams.add_namespace("demo", annotations={"nsscale/uptime": TYPO})
    done = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "-o", "json", "--events")
    assert done.code == 1, str(done)
    report = json.loads(done.stdout)
    assert report["success"] is False
    assert report["exit_code"] == 1
    demo = entries(done.stdout)["demo"]
    assert demo["action"] == "error"
    assert demo["schedule_source"] == "annotation"
    assert demo["reason"].startswith(f'its nsscale/uptime cannot be read: in "{TYPO}": ')
    assert "unknown day Fry" in demo["reason"]
    assert "namespace demo left as it is" in done.stderr
    # every other namespace was handled all the same
    assert observe(teams, "dev") == scaled_down(SPEC)
    assert observe(teams, "qa") == scaled_down(SPEC)
    assert observe(teams, "demo") == untouched(SPEC)
    [event] = [e for e in teams.objects("events", "demo") if e["reason"] == "InvalidSchedule"]
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "Namespace"
    assert event["involvedObject"]["name"] == "demo"
    assert event["involvedObject"]["uid"]
    assert "unknown day Fry" in event["message"]


def test_a_bad_schedule_without_events_writes_none_and_the_table_says_error(
    teams: ApiServer, env: dict[str, str]
) -> None:
    teams.add_namespace("demo", annotations={"nsscale/downtime": TYPO})
    done = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT)
    assert done.code == 1, str(done)
    assert "error" in done.stdout
    assert teams.objects("events", "demo") == []
    assert observe(teams, "dev") == scaled_down(SPEC)


def test_both_annotations_are_an_error(teams: ApiServer, env: dict[str, str]) -> None:
    teams.add_namespace("qa", annotations={"nsscale/uptime": "always", "nsscale/downtime": "never"})
    done = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "-o", "json")
    assert done.code == 1, str(done)
    qa = entries(done.stdout)["qa"]
    assert (qa["action"], qa["reason"]) == (
        "error",
        "both nsscale/uptime and nsscale/downtime are set: keep one",
    )


def test_kube_downscalers_annotations_are_read_where_nsscales_are_absent(
    teams: ApiServer, env: dict[str, str]
) -> None:
    # dev moved from kube-downscaler: its uptime and an excluded workload, as it wrote them
    teams.add_namespace("dev", annotations={"downscaler/uptime": "Mon-Fri 08:00-18:00 UTC"})
    teams.add_deployment("dev", "cache", 1, annotations={"downscaler/exclude": "true"})
    # qa has both: nsscale's own wins
    teams.add_namespace(
        "qa", annotations={"nsscale/uptime": "always", "downscaler/uptime": "never"}
    )
    # demo's kube-downscaler schedule is unreadable: the error names its annotation
    teams.add_namespace("demo", annotations={"downscaler/downtime": "Sat-Sun 25:00-26:00"})
    done = reconcile(env, "--at", NIGHT, "-o", "json")
    assert done.code == 1, str(done)
    found = entries(done.stdout)
    dev, qa, demo = found["dev"], found["qa"], found["demo"]
    assert (dev["action"], dev["schedule_source"]) == ("down", "kube-downscaler annotation")
    assert dev["schedule"] == "Mon-Fri 08:00-18:00 UTC"
    skips = {s["name"]: s["reason"] for s in dev["result"]["skipped_resources"]}
    assert skips["cache"] == "excluded (annotation downscaler/exclude)"
    assert {
        d["metadata"]["name"]: d["spec"]["replicas"] for d in teams.objects("deployments", "dev")
    } == {
        "web": 0,
        "cache": 1,
    }
    assert (qa["action"], qa["schedule_source"]) == ("none", "annotation")
    assert (demo["action"], demo["schedule_source"]) == ("error", "kube-downscaler annotation")
    assert demo["reason"].startswith("its downscaler/downtime cannot be read: ")
    assert observe(teams, "demo") == untouched(SPEC)
