"""`nsscale reconcile` with the real kubectl and the local API server: the decision per
namespace (its annotation, else the option; pause-until), acting only where needed, quiet when
nothing is, `--at` previews, and bad input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver.server import ApiServer
from tests.faultkit import Key, lease, observe, run, scaled_down, seed, untouched

pytestmark = pytest.mark.e2e

SPEC: dict[Key, int] = {("deployment", "web"): 2, ("statefulset", "db"): 1}
WORKDAYS = "Mon-Fri 08:00-20:00 Europe/Madrid"
# Wednesday 2026-12-02: 10:00 in Madrid is inside WORKDAYS, 23:00 is outside
DAY, NIGHT = "2026-12-02T10:00:00+01:00", "2026-12-02T23:00:00+01:00"


@pytest.fixture
def teams(apiserver: ApiServer) -> ApiServer:
    for ns in ("dev", "qa", "demo"):
        seed(apiserver, ns, SPEC)
        apiserver.add_namespace(ns, labels={"nsscale/scheduled": "true"})
    # qa keeps its own schedule: always up
    apiserver.add_namespace("qa", annotations={"nsscale/uptime": "always"})
    return apiserver


def decisions(report: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {d["namespace"]: (d["action"], d["schedule_source"]) for d in report["namespaces"]}


def reconcile(env: dict[str, str], *args: str) -> Any:
    return run(env, "reconcile", "--namespace-selector", "nsscale/scheduled=true", *args)


def test_at_night_it_brings_down_what_its_schedule_wants_down(
    teams: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    night = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "-o", "json")
    assert night.code == 0, str(night)
    report = json.loads(night.stdout)
    assert set(report) == {"success", "exit_code", "at", "namespaces"}
    assert decisions(report) == {
        "demo": ("down", "option"),
        "dev": ("down", "option"),
        "qa": ("none", "annotation"),
    }
    assert report["namespaces"][0]["result"]["total_scaled"] == 2
    assert observe(teams, "dev") == scaled_down(SPEC)
    assert observe(teams, "qa") == untouched(SPEC)

    again = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "-vv")  # cron, 5 minutes later
    assert again.code == 0, str(again)
    # the Namespaces, then each kind of workload (Argo Rollouts too, not installed here) passed
    # through as the server sent it, side by side: no write, no mark
    starts = [s.split()[3:6] for s in re.findall(r"\[DEBUG\] kubectl: .*", again.stderr)]
    assert starts[0] == ["get", "namespaces", "-l"], again.stderr
    assert sorted(starts[1:]) == [
        ["get", "--raw", "'/apis/apps/v1/deployments?limit=500'"],
        ["get", "--raw", "'/apis/apps/v1/statefulsets?limit=500'"],
        ["get", "--raw", "'/apis/argoproj.io/v1alpha1/rollouts?limit=500'"],
    ], again.stderr
    assert "already down" in again.stdout
    audit = tmp_path / "state" / "nsscale" / "audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [r["event"] for r in records].count("finished") == 2  # dev and demo, once

    morning = reconcile(env, "--uptime", WORKDAYS, "--at", DAY, "-o", "json")
    assert morning.code == 0, str(morning)
    assert decisions(json.loads(morning.stdout))["dev"] == ("up", "option")
    assert observe(teams, "dev") == untouched(SPEC)
    assert all(lease(teams, ns) is None for ns in ("dev", "qa", "demo"))


def test_a_dry_run_previews_without_changing_anything(
    teams: ApiServer, env: dict[str, str]
) -> None:
    preview = reconcile(env, "--downtime", "Mon-Sun 22:00-06:00", "--at", NIGHT, "--dry-run")
    assert preview.code == 0, str(preview)
    assert re.search(r"^dev\s+down\s+down\s", preview.stdout, re.MULTILINE), preview.stdout
    assert "would scale" in preview.stdout
    assert observe(teams, "dev") == untouched(SPEC)


def test_pause_until_is_left_alone(teams: ApiServer, env: dict[str, str]) -> None:
    teams.add_namespace("dev", annotations={"nsscale/pause-until": "2026-12-03T08:00:00Z"})
    done = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT, "-o", "json")
    assert done.code == 0, str(done)
    found = {d["namespace"]: d for d in json.loads(done.stdout)["namespaces"]}
    assert found["dev"]["action"] == "paused"
    assert observe(teams, "dev") == untouched(SPEC)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--uptime", "Mon-Fri 25:00-20:00"], "invalid --uptime"),
        (["--uptime", "always", "--downtime", "never"], "--uptime and --downtime together"),
        (["--uptime", "always", "--at", "2026-12-02T10:00:00"], "an RFC 3339 time with an offset"),
        (["--uptime", "always", "--timezone", "Mars/Olympus"], "unknown time zone Mars/Olympus"),
    ],
)
def test_bad_input_is_exit_2_and_changes_nothing(
    teams: ApiServer, env: dict[str, str], args: list[str], says: str
) -> None:
    done = reconcile(env, *args)
    assert done.code == 2, str(done)
    assert says in done.stderr
    assert observe(teams, "dev") == untouched(SPEC)


def test_up_with_hold_keeps_reconcile_off_the_namespace_until_then(
    teams: ApiServer, env: dict[str, str]
) -> None:
    night = reconcile(env, "--uptime", WORKDAYS, "--at", NIGHT)
    assert night.code == 0, str(night)
    woken = run(env, "up", "dev", "--hold", "4h")  # a developer wakes dev for the evening
    assert woken.code == 0, str(woken)
    [namespace] = [n for n in teams.objects("namespaces") if n["metadata"]["name"] == "dev"]
    until = namespace["metadata"]["annotations"]["nsscale/pause-until"]
    held = datetime.fromisoformat(until) - datetime.now(UTC)
    assert timedelta(hours=3, minutes=59) < held <= timedelta(hours=4)
    # reconcile an hour later leaves it up; at the hold's end it would act again
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    done = reconcile(env, "--uptime", "never", "--at", later, "-o", "json")
    assert {d["namespace"]: d["action"] for d in json.loads(done.stdout)["namespaces"]}["dev"] == (
        "paused"
    )
    assert observe(teams, "dev") == untouched(SPEC)
