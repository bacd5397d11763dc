"""Schedules that respect people (SPEC Part 3), with the real kubectl and the local API server:
the grace period, hand changes that win until the next up, sleeping at N replicas; and, as a
property of the planner, a second reconcile right after a first changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsscale.engine.plan import Operation, make_plan
from nsscale.engine.respect import Respect
from nsscale.kube.objects import ORIGINAL, SCALED_TO, Kind, State, Workload
from tests.apiserver.server import ApiServer
from tests.faultkit import observe, run

NIGHT = "--uptime", "never"


def reconcile(env: dict[str, str], *args: str) -> Any:
    done = run(env, "reconcile", "dev", *NIGHT, "-o", "json", *args)
    assert done.code == 0, str(done)
    return json.loads(done.stdout)


def skipped(report: dict[str, Any]) -> dict[str, str]:
    found = (report["namespaces"][0]["result"] or {}).get("skipped_resources", [])
    return {f"{s['type']}/{s['name']}": s["reason"] for s in found}


def created(server: ApiServer, name: str) -> datetime:
    stamp = server.workload("dev", "deployment", name)["metadata"]["creationTimestamp"]
    return datetime.fromisoformat(stamp)


@pytest.mark.e2e
def test_a_new_workload_is_left_alone_for_its_grace_period(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.add_deployment("dev", "new", replicas=2)
    apiserver.add_deployment(
        "dev", "old", replicas=2, annotations={"ci/deployed-at": "2000-01-01T00:00:00Z"}
    )
    born = created(apiserver, "new")
    at = (born + timedelta(minutes=4, seconds=10)).isoformat()
    report = reconcile(env, "--at", at)
    [decision] = report["namespaces"]
    assert decision["action"] == "none"  # all new: not yet, and not "already down"
    assert decision["reason"] == (
        "outside its uptime never: left alone, deployment/new grace period: created 4m ago"
        " (15m) (and 1 more)"
    )

    # a deployment time later than the creation counts from it
    late = (born + timedelta(minutes=20)).isoformat()
    apiserver.edit_workload("dev", "deployment", "old", annotations={"ci/deployed-at": late})
    at = (born + timedelta(minutes=25)).isoformat()
    after = reconcile(env, "--at", at, "--deployment-time-annotation", "ci/deployed-at")
    assert skipped(after) == {"deployment/old": "grace period: created 5m ago (15m)"}
    assert observe(apiserver, "dev")[("deployment", "new")] == (0, "2", "0")
    assert observe(apiserver, "dev")[("deployment", "old")] == (2, None, None)


@pytest.mark.e2e
def test_the_grace_period_option_beats_the_annotation_only_when_given(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.add_deployment("dev", "web", replicas=2)
    apiserver.add_namespace("dev", annotations={"nsscale/grace-period": "1h"})
    at = (created(apiserver, "web") + timedelta(minutes=30)).isoformat()
    held = reconcile(env, "--at", at, "--dry-run")
    assert held["namespaces"][0]["action"] == "none"
    moved = reconcile(env, "--at", at, "--grace-period", "0")
    assert moved["namespaces"][0]["action"] == "down"
    assert observe(apiserver, "dev")[("deployment", "web")] == (0, "2", "0")


@pytest.mark.e2e
def test_a_workload_created_after_a_past_at_is_not_in_its_grace_period(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.add_deployment("dev", "web", replicas=2)
    at = (created(apiserver, "web") - timedelta(hours=1)).isoformat()
    report = reconcile(env, "--at", at)
    assert report["namespaces"][0]["action"] == "down"


@pytest.mark.e2e
def test_a_hand_change_wins_until_the_next_up_unless_enforced(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.add_deployment(
        "dev", "web", replicas=3, annotations={ORIGINAL: "2", SCALED_TO: "0"}
    )  # nsscale took it to 0, someone scaled it to 3 since
    apiserver.add_deployment("dev", "db", replicas=1)
    first = reconcile(env, "--grace-period", "0")
    assert skipped(first)["deployment/web"] == "changed by hand since nsscale scaled it"
    assert observe(apiserver, "dev")[("deployment", "web")] == (3, "2", "0")
    assert reconcile(env, "--grace-period", "0")["namespaces"][0]["action"] == "none"

    enforced = reconcile(env, "--grace-period", "0", "--enforce")
    assert enforced["namespaces"][0]["action"] == "down"
    assert observe(apiserver, "dev")[("deployment", "web")] == (0, "2", "0")


@pytest.mark.e2e
def test_downtime_replicas_from_workload_namespace_or_option(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.add_deployment(
        "dev", "web", replicas=4, annotations={"nsscale/downtime-replicas": "2"}
    )
    apiserver.add_deployment("dev", "queue", replicas=3)
    apiserver.add_deployment("dev", "cache", replicas=1)
    apiserver.add_namespace("dev", annotations={"downscaler/downtime-replicas": "1"})
    down = reconcile(env, "--grace-period", "0", "--downtime-replicas", "3")
    assert skipped(down) == {"deployment/cache": "already at or below 1"}
    seen = observe(apiserver, "dev")
    assert seen[("deployment", "web")] == (2, "4", "2")
    assert seen[("deployment", "queue")] == (1, "3", "1")  # the Namespace's beats the option
    assert seen[("deployment", "cache")] == (1, None, None)  # never raised
    assert reconcile(env, "--grace-period", "0")["namespaces"][0]["action"] == "none"

    up = run(env, "up", "dev", "-o", "json")
    assert up.code == 0, str(up)
    seen = observe(apiserver, "dev")
    assert seen[("deployment", "web")] == (4, None, None)
    assert seen[("deployment", "queue")] == (3, None, None)


@pytest.mark.e2e
def test_an_unreadable_downtime_replicas_is_named(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.add_deployment(
        "dev", "web", replicas=2, annotations={"nsscale/downtime-replicas": "x"}
    )
    apiserver.add_deployment("dev", "db", replicas=2)
    done = run(env, "reconcile", "dev", *NIGHT, "--grace-period", "0")
    assert "deployment/web: nsscale/downtime-replicas is 'x', not a replica count" in done.stderr
    assert observe(apiserver, "dev")[("deployment", "web")] == (2, None, None)


# ------------------------------------------------------------------------- the planner's property

AT = datetime(2026, 12, 2, 23, tzinfo=UTC)


def _workload(name: str, replicas: int, age_m: int, annotations: dict[str, str]) -> Workload:
    born = (AT - timedelta(minutes=age_m)).isoformat()
    return Workload(
        Kind.DEPLOYMENT,
        name,
        replicas,
        replicas,
        "1",
        annotations,
        {"metadata": {"creationTimestamp": born}},
        namespace="dev",
    )


def _applied(workload: Workload, after: State) -> Workload:
    annotations = {k: v for k, v in workload.annotations.items() if k not in (ORIGINAL, SCALED_TO)}
    annotations |= {
        k: v for k, v in ((ORIGINAL, after.original), (SCALED_TO, after.scaled_to)) if v
    }
    return Workload(
        workload.kind,
        workload.name,
        after.replicas,
        after.replicas,
        "2",
        annotations,
        workload.manifest,
        namespace="dev",
    )


workloads = st.lists(
    st.builds(
        lambda i, replicas, age, sleep, scaled: _workload(
            f"w{i}",
            replicas,
            age,
            ({"nsscale/downtime-replicas": str(sleep)} if sleep is not None else {})
            | ({ORIGINAL: "5", SCALED_TO: str(scaled)} if scaled is not None else {}),
        ),
        st.integers(0, 1000),
        st.integers(0, 6),
        st.integers(-30, 120),
        st.none() | st.integers(0, 4),
        st.none() | st.integers(0, 4),
    ),
    max_size=6,
    unique_by=lambda w: w.name,
)


@settings(max_examples=300, deadline=None)
@given(
    workloads,
    st.sampled_from([Operation.DOWN, Operation.UP]),
    st.integers(0, 60),
    st.integers(0, 3),
    st.booleans(),
)
def test_a_second_decision_right_after_the_first_changes_nothing(
    found: list[Workload], operation: Operation, grace_m: int, sleep: int, enforce: bool
) -> None:
    respect = Respect(AT, timedelta(minutes=grace_m), None, enforce, sleep)
    first = make_plan("dev", operation, found, respect=respect)
    changed = {c.workload.name: c.after for c in first.changes}
    after = [_applied(w, changed[w.name]) if w.name in changed else w for w in found]
    second = make_plan("dev", operation, after, respect=respect)
    assert second.changes == ()


# An HPA's floor above the downtime replicas is moved with the workload: tests/test_hpa_min.py.
