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
    teams.add_namespace("lab", labels={"nsscale/scheduled": "true"})
    teams.add_namespace("lab", annotations={"downscaler/exclude": "true"})
    seed(teams, "lab", SPEC)
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
    lab = found["lab"]
    assert (lab["action"], lab["reason"]) == ("skipped", "excluded (annotation downscaler/exclude)")
    assert observe(teams, "lab") == untouched(SPEC)
    assert (demo["action"], demo["schedule_source"]) == ("error", "kube-downscaler annotation")
    assert demo["reason"].startswith("its downscaler/downtime cannot be read: ")
    assert observe(teams, "demo") == untouched(SPEC)


def test_exclude_until_leaves_a_workload_or_namespace_alone_until_then(
    teams: ApiServer, env: dict[str, str]
) -> None:
    # NIGHT is 2026-12-02T22:00:00Z
    teams.add_deployment(
        "dev", "late", 2, annotations={"nsscale/exclude-until": "2026-12-02T22:00:01Z"}
    )
    teams.add_deployment("dev", "api", 2, annotations={"downscaler/exclude-until": "2026-12-03"})
    teams.add_deployment("dev", "old", 2, annotations={"nsscale/exclude-until": "2026-12-02"})
    teams.add_deployment("dev", "bad", 2, annotations={"nsscale/exclude-until": "tomorrow"})
    teams.add_namespace("qa", annotations={"nsscale/exclude-until": "2026-12-02T23:30:00+01:00"})
    teams.add_namespace(
        "demo", annotations={"downscaler/exclude-until": "2026-12-02T23:00:00+01:00"}
    )
    done = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "-o", "json")
    assert done.code == 0, str(done)
    found = entries(done.stdout)
    skips = {s["name"]: s["reason"] for s in found["dev"]["result"]["skipped_resources"]}
    assert (
        skips["late"]
        == "excluded until 2026-12-02T22:00:01+00:00 (annotation nsscale/exclude-until)"
    )
    assert (
        skips["api"]
        == "excluded until 2026-12-03T00:00:00+00:00 (annotation downscaler/exclude-until)"
    )
    assert skips["bad"] == (
        "excluded: nsscale/exclude-until is 'tomorrow', "
        "neither an RFC 3339 time with an offset nor YYYY-MM-DD"
    )
    assert "old" not in skips
    replicas = {
        d["metadata"]["name"]: d["spec"]["replicas"] for d in teams.objects("deployments", "dev")
    }
    assert replicas == {"web": 0, "late": 2, "api": 2, "old": 0, "bad": 2}
    assert (found["qa"]["action"], found["qa"]["reason"]) == (
        "skipped",
        "excluded until 2026-12-02T23:30:00+01:00 (annotation nsscale/exclude-until)",
    )
    assert observe(teams, "qa") == untouched(SPEC)
    # the end instant is no longer excluded
    assert found["demo"]["action"] == "down"
    assert observe(teams, "demo") == scaled_down(SPEC)


def test_an_unreadable_exclude_until_on_a_namespace_is_its_error(
    teams: ApiServer, env: dict[str, str]
) -> None:
    teams.add_namespace("qa", annotations={"nsscale/exclude-until": "next week"})
    done = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "-o", "json")
    assert done.code == 1, str(done)
    qa = entries(done.stdout)["qa"]
    assert qa["action"] == "error"
    assert qa["reason"] == (
        "its nsscale/exclude-until is 'next week', "
        "neither an RFC 3339 time with an offset nor YYYY-MM-DD"
    )
    assert observe(teams, "qa") == untouched(SPEC)


def test_down_leaves_a_workload_excluded_until_a_later_day(
    teams: ApiServer, env: dict[str, str]
) -> None:
    teams.add_deployment("dev", "late", 2, annotations={"nsscale/exclude-until": "2999-01-01"})
    done = run(env, "down", "dev", "-o", "json")
    assert done.code == 0, str(done)
    [skip] = json.loads(done.stdout)["skipped_resources"]
    assert (
        skip["reason"]
        == "excluded until 2999-01-01T00:00:00+00:00 (annotation nsscale/exclude-until)"
    )
    assert observe(teams, "dev")[("deployment", "late")][0] == 2
    assert observe(teams, "dev")[("deployment", "web")][0] == 0


def test_an_exclude_that_matches_nothing_is_a_warning(
    teams: ApiServer, env: dict[str, str]
) -> None:
    done = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "--exclude", "webb")
    assert done.code == 0, str(done)
    assert done.stderr.count("--exclude webb matches no workload in the chosen namespaces") == 1
    assert observe(teams, "dev") == scaled_down(SPEC)

    matched = run(env, "up", "dev", "--exclude", "deploy/web", "--exclude", "sts/web")
    assert matched.code == 0, str(matched)
    assert "--exclude deploy/web" not in matched.stderr
    assert "--exclude sts/web matches no workload in the chosen namespaces" in matched.stderr

    quiet = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "--exclude", "db")
    assert "matches no workload" not in quiet.stderr
