"""Sleeping at N with an HPA (SPEC Part 3, "Schedules that respect people"), with the real kubectl
and the local API server: a scheduled down to N > 0 lowers the `minReplicas` of a workload's HPA
to N in the same transaction (the floor before it recorded on the HPA), `up`, the rollback and
`recover` put it back, and `maxReplicas` is never written. With N = 0 the HPA is left alone.

And the property of reconcile against the server: for any schedule and instant, a second
reconcile right after the first changes nothing."""

from __future__ import annotations

import itertools
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nsscale.kube.objects import ORIGINAL, ORIGINAL_MIN_REPLICAS, SCALED_TO
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.server import ApiServer
from tests.faultkit import observe, run

NS = "dev"
NIGHT = ("--uptime", "never", "--grace-period", "0")
HPA = "horizontalpodautoscaler"


def floor(server: ApiServer, name: str = "web", namespace: str = NS) -> tuple[int, int, str | None]:
    """An HPA as the server holds it: (minReplicas, maxReplicas, its recorded original)."""
    obj = server.get_object("horizontalpodautoscalers", namespace, name)
    assert obj is not None
    annotations = obj["metadata"].get("annotations") or {}
    spec = obj["spec"]
    return spec["minReplicas"], spec["maxReplicas"], annotations.get(ORIGINAL_MIN_REPLICAS)


def hpa_writes(server: ApiServer) -> list[str]:
    """The PUTs of HPAs and Deployments the server answered, in order: "kind/name status"."""
    return [
        f"{r.resource}/{r.name} {r.status}"
        for r in server.requests
        if r.method == "PUT" and r.resource in ("horizontalpodautoscalers", "deployments")
    ]


@pytest.fixture
def autoscaled(apiserver: ApiServer) -> ApiServer:
    """web (4 replicas, HPA 3-6) and api (2, no HPA) in dev."""
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "api", replicas=2)
    apiserver.add_deployment(NS, "web", replicas=4)
    apiserver.add_hpa(NS, "web", "Deployment", "web", min_replicas=3, max_replicas=6)
    return apiserver


def reconciled(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = run(env, "reconcile", NS, *NIGHT, "-o", "json", *args)
    assert done.code == 0, str(done)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def floors_moved(report: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    return [
        (s["name"], s["change"], s["from_min_replicas"], s["to_min_replicas"])
        for s in report["suspended_resources"]
        if s["type"] == HPA
    ]


@pytest.mark.e2e
def test_a_down_to_n_lowers_the_hpa_floor_first_and_up_puts_it_back(
    autoscaled: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    down = reconciled(env, "--downtime-replicas", "1")
    result = down["namespaces"][0]["result"]
    assert floors_moved(result) == [("web", "lower", 3, 1)]
    assert result["total_scaled"] == 2  # the HPA's floor is no workload scaled
    assert floor(autoscaled) == (1, 6, "3")  # maxReplicas never written
    assert observe(autoscaled, NS)[("deployment", "web")] == (1, "4", "1")
    # the floor goes first: the HPA never raises the workload back between the two writes
    assert hpa_writes(autoscaled) == [
        "horizontalpodautoscalers/web 200",
        "deployments/api 200",
        "deployments/web 200",
    ]
    assert reconciled(env, "--downtime-replicas", "1")["namespaces"][0]["action"] == "none"

    table = run(env, "up", NS)
    assert table.code == 0, str(table)
    assert "2 restored, 1 HorizontalPodAutoscaler restored" in table.stdout
    assert floor(autoscaled) == (3, 6, None)
    assert observe(autoscaled, NS)[("deployment", "web")] == (4, None, None)
    # put back after the workload is up
    assert hpa_writes(autoscaled)[-3:] == [
        "deployments/api 200",
        "deployments/web 200",
        "horizontalpodautoscalers/web 200",
    ]
    audit = tmp_path / "state" / "nsscale" / "audit.jsonl"
    steps = [
        (step["action"], step["from_min_replicas"], step["to_min_replicas"])
        for line in audit.read_text().splitlines()
        for step in json.loads(line).get("steps", [])
        if step.get("type") == HPA
    ]
    assert steps == [("lower", 3, 1), ("restore", 1, 3)]


@pytest.mark.e2e
def test_the_table_and_a_dry_run_show_the_floor_moved(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    preview = reconciled(env, "--downtime-replicas", "2", "--dry-run")
    assert floors_moved(preview["namespaces"][0]["result"]) == [("web", "lower", 3, 2)]
    assert floor(autoscaled) == (3, 6, None)

    done = run(env, "reconcile", NS, *NIGHT, "--downtime-replicas", "2")
    assert done.code == 0, str(done)
    row = next(line for line in done.stdout.splitlines() if HPA in line)
    assert "3 → 2" in row
    assert "lowered" in row
    assert "1 HorizontalPodAutoscaler lowered" in done.stdout
    assert "will raise it back" not in done.stderr  # no longer true: nothing to warn of


@pytest.mark.e2e
def test_at_zero_or_under_a_floor_at_or_below_n_the_hpa_is_left_alone(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    autoscaled.add_deployment(NS, "queue", replicas=5)
    autoscaled.add_hpa(NS, "queue", "Deployment", "queue", min_replicas=2, max_replicas=9)
    autoscaled.edit_workload(
        NS, "deployment", "web", annotations={"nsscale/downtime-replicas": "0"}
    )
    report = reconciled(env, "--downtime-replicas", "2")
    assert floors_moved(report["namespaces"][0]["result"]) == []
    assert floor(autoscaled) == (3, 6, None)  # web sleeps at 0: the HPA does not act at 0
    assert floor(autoscaled, "queue") == (2, 9, None)  # its floor is no higher than 2
    assert observe(autoscaled, NS)[("deployment", "web")] == (0, "4", "0")
    assert not [w for w in hpa_writes(autoscaled) if w.startswith("horizontalpodautoscalers")]


@pytest.mark.e2e
def test_a_failed_write_after_the_floor_undoes_it(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    autoscaled.fail("PUT", "deployments", "web", status=500, times=None)
    args = ("--downtime-replicas", "1", "--retries", "0", "-o", "json")
    done = run(env, "reconcile", NS, *NIGHT, *args)
    assert done.code == 1, str(done)
    result = json.loads(done.stdout)["namespaces"][0]["result"]
    assert {
        (r["type"], r["name"], r["restored_replicas"], r["status"])
        for r in result["rollback_results"]
    } == {(HPA, "web", 3, "success"), ("deployment", "api", 2, "success")}
    assert result["left_changed"] == []
    assert floor(autoscaled) == (3, 6, None)  # back, its record gone
    assert observe(autoscaled, NS)[("deployment", "api")] == (2, None, None)
    moved = [w for w in hpa_writes(autoscaled) if w.startswith("horizontalpodautoscalers")]
    assert moved == ["horizontalpodautoscalers/web 200"] * 2  # lowered, then put back


@pytest.mark.e2e
def test_recover_puts_back_a_floor_a_failed_rollback_left_lowered(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    autoscaled.fail("PUT", "deployments", "web", status=500, times=None)
    autoscaled.fail("PUT", "horizontalpodautoscalers", "web", status=500, nth=2)  # its undo
    args = ("--downtime-replicas", "1", "--retries", "0", "--batch-size", "1", "-o", "json")
    done = run(env, "reconcile", NS, *NIGHT, *args)
    assert done.code == 3, str(done)
    result = json.loads(done.stdout)["namespaces"][0]["result"]
    assert [(w["type"], w["name"], w["replicas"]) for w in result["left_changed"]] == [
        (HPA, "web", 1)
    ]
    assert {(r["type"], r["status"]) for r in result["rollback_results"]} == {
        (HPA, "failed"),
        ("deployment", "success"),
    }
    assert floor(autoscaled) == (1, 6, "3")  # the original kept on the HPA itself

    autoscaled.clear_faults()
    recovered = run(env, "recover", NS, "-o", "json")
    assert recovered.code == 0, str(recovered)
    assert floor(autoscaled) == (3, 6, None)
    assert observe(autoscaled, NS)[("deployment", "api")] == (2, None, None)


@pytest.mark.e2e
def test_an_unreadable_recorded_floor_is_named_and_left_as_is_by_up(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    reconciled(env, "--downtime-replicas", "1")
    patch = {"metadata": {"annotations": {ORIGINAL_MIN_REPLICAS: "zero"}}}
    autoscaled.edit_object("horizontalpodautoscalers", NS, "web", patch)
    up = run(env, "up", NS, "-o", "json")
    assert up.code == 0, str(up)
    skipped = {s["name"]: s["reason"] for s in json.loads(up.stdout)["skipped_resources"]}
    assert "recorded minReplicas 'zero' is not a count" in skipped["web"]
    assert floor(autoscaled) == (1, 6, "zero")


@pytest.mark.e2e
def test_the_hpa_controller_s_status_write_meanwhile_is_no_conflict_to_give_up_on(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    # The controller writes the HPA's status at every sync: a new resourceVersion, and nsscale's
    # PUT carrying the one it read is refused (409): its floor still as read, it is sent again.
    autoscaled.before(
        "PUT",
        "horizontalpodautoscalers",
        "web",
        call=lambda: autoscaled.set_status(
            "horizontalpodautoscalers", NS, "web", {"currentReplicas": 4, "desiredReplicas": 3}
        ),
    )
    reconciled(env, "--downtime-replicas", "1")
    assert floor(autoscaled) == (1, 6, "3")
    moved = [w for w in hpa_writes(autoscaled) if w.startswith("horizontalpodautoscalers")]
    assert moved == ["horizontalpodautoscalers/web 409", "horizontalpodautoscalers/web 200"]


@pytest.mark.e2e
def test_a_floor_somebody_changes_meanwhile_is_left_to_them_and_nothing_changes(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    autoscaled.before(
        "PUT",
        "horizontalpodautoscalers",
        "web",
        call=lambda: autoscaled.edit_object(
            "horizontalpodautoscalers", NS, "web", {"spec": {"minReplicas": 2}}
        ),
    )
    done = run(env, "reconcile", NS, *NIGHT, "--downtime-replicas", "1", "-o", "json")
    assert done.code == 1, str(done)
    [failed] = json.loads(done.stdout)["namespaces"][0]["result"]["failed_resources"]
    assert (failed["type"], failed["error_kind"]) == (HPA, "conflict")
    assert floor(autoscaled) == (2, 6, None)  # theirs, never clobbered
    assert observe(autoscaled, NS)[("deployment", "web")] == (4, None, None)


@pytest.mark.e2e
def test_up_puts_a_floor_back_no_higher_than_a_ceiling_lowered_meanwhile(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    reconciled(env, "--downtime-replicas", "1")
    autoscaled.edit_object("horizontalpodautoscalers", NS, "web", {"spec": {"maxReplicas": 2}})
    up = run(env, "up", NS, "-o", "json")
    assert up.code == 0, str(up)  # the API refuses minReplicas 3 over maxReplicas 2
    assert "HPA web (1-2): its recorded minReplicas 3 is above its maxReplicas 2" in up.stderr
    assert floor(autoscaled) == (2, 2, None)
    assert observe(autoscaled, NS)[("deployment", "web")] == (4, None, None)


@pytest.mark.e2e
def test_hpas_nobody_may_read_are_a_warning_to_a_down_to_n_but_not_to_up(
    autoscaled: ApiServer, env: dict[str, str]
) -> None:
    autoscaled.forbid("list", "horizontalpodautoscalers")
    down = run(env, "reconcile", NS, *NIGHT, "--downtime-replicas", "1")
    assert down.code == 0, str(down)
    assert "[WARNING] could not read the HorizontalPodAutoscalers (forbidden)" in down.stderr
    assert floor(autoscaled) == (3, 6, None)  # not moved: not known
    up = run(env, "up", NS)  # who may not read them lowered none
    assert up.code == 0, str(up)
    assert "HorizontalPodAutoscalers" not in up.stderr


@pytest.mark.e2e
def test_the_local_api_server_answers_an_hpa_put_as_a_real_one(
    autoscaled: ApiServer, kubectl: KubectlFixture
) -> None:
    def replaced(change: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        obj = autoscaled.get_object("horizontalpodautoscalers", NS, "web")
        assert obj is not None
        obj["spec"] |= change.get("spec", {})
        obj["metadata"] |= change.get("metadata", {})
        return kubectl("replace", "-f", "-", "-o", "json", input=json.dumps(obj))

    def refusal(proc: subprocess.CompletedProcess[str]) -> str:
        assert proc.returncode == 1, proc
        return proc.stderr.strip()

    autoscaled.set_status("horizontalpodautoscalers", NS, "web", {"desiredReplicas": 4})
    assert refusal(replaced({"spec": {"minReplicas": 0}})) == (
        'The HorizontalPodAutoscaler "web" is invalid: spec.minReplicas: Invalid value: 0: '
        "must be greater than or equal to 1"
    )
    assert refusal(replaced({"spec": {"minReplicas": 7}})) == (
        'The HorizontalPodAutoscaler "web" is invalid: spec.maxReplicas: Invalid value: 6: '
        "must be greater than or equal to `minReplicas`"
    )
    stale = {"metadata": {"resourceVersion": "1"}, "spec": {"minReplicas": 1}}
    assert "the object has been modified" in refusal(replaced(stale))
    done = replaced({"spec": {"minReplicas": 1}})
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    assert (written["spec"]["minReplicas"], written["metadata"]["generation"]) == (1, 2)
    assert written["status"] == {"desiredReplicas": 4}  # the controller's, kept
    assert floor(autoscaled) == (1, 6, None)


# ------------------------------------------------ the property: a second reconcile changes nothing

WEEKLY = st.sampled_from(
    [
        "Mon-Fri 08:00-18:00 UTC",
        "Mon-Fri 08:00-20:00 Europe/Madrid",
        "Sat-Sun 00:00-24:00 UTC",
        "Sun-Sun 15:30-16:00 UTC",  # kube-downscaler's: Sunday alone
        "Mon-Fri 08:00-18:00 UTC, Sun-Sun 15:30-16:00 UTC",
        "2026-12-24T00:00:00+01:00-2027-01-02T00:00:00+01:00",  # an absolute range
        "Mon-Sun 07:00-23:00 America/New_York, 2026-12-25T00:00:00Z-2026-12-26T00:00:00Z",
        "always",
        "never",
    ]
)
SCHEDULES = st.tuples(
    st.sampled_from(["nsscale/uptime", "nsscale/downtime", "downscaler/uptime"]), WEEKLY
)
INSTANTS = st.datetimes(
    min_value=datetime(2026, 12, 18), max_value=datetime(2027, 1, 4), timezones=st.just(UTC)
)
SLEEP = st.none() | st.integers(0, 3)  # a downtime-replicas annotation, or none
# replicas, a downtime-replicas annotation, its HPA's minReplicas, asleep at this count already
# (nsscale's records on it and on the HPA, as a down to it leaves them)
WORKLOADS = st.lists(
    st.tuples(
        st.integers(1, 5), SLEEP, st.none() | st.integers(1, 4), st.none() | st.integers(0, 2)
    ),
    min_size=1,
    max_size=3,
)
_EXAMPLES = itertools.count()


@pytest.mark.e2e
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    schedule=SCHEDULES,
    at=INSTANTS,
    workloads=WORKLOADS,
    namespace_sleep=SLEEP,
    option_sleep=st.none() | st.integers(0, 2),
)
def test_reconcile_twice_in_a_row_changes_nothing_the_second_time(
    apiserver: ApiServer,
    env: dict[str, str],
    schedule: tuple[str, str],
    at: datetime,
    workloads: list[tuple[int, int | None, int | None, int | None]],
    namespace_sleep: int | None,
    option_sleep: int | None,
) -> None:
    namespace = f"p{next(_EXAMPLES)}"  # each example its own namespace on the one server
    annotations = {schedule[0]: schedule[1]}
    if namespace_sleep is not None:
        annotations["nsscale/downtime-replicas"] = str(namespace_sleep)
    apiserver.add_namespace(namespace, annotations=annotations)
    for i, (replicas, sleep, hpa_min, asleep) in enumerate(workloads):
        name = f"w{i}"
        notes = {"downscaler/downtime-replicas": str(sleep)} if sleep is not None else {}
        if asleep is not None and asleep < replicas:
            notes |= {ORIGINAL: str(replicas), SCALED_TO: str(asleep)}
        count = replicas if asleep is None else min(asleep, replicas)
        apiserver.add_deployment(namespace, name, replicas=count, annotations=notes)
        if hpa_min is not None:
            lowered = count < hpa_min and ORIGINAL in notes and count > 0
            recorded = {ORIGINAL_MIN_REPLICAS: str(hpa_min)} if lowered else {}
            low = count if lowered else hpa_min
            apiserver.add_hpa(
                namespace, name, "Deployment", name, low, max_replicas=6, annotations=recorded
            )
    args = ["reconcile", namespace, "--at", at.isoformat(), "--grace-period", "0", "-o", "json"]
    if option_sleep is not None:
        args += ["--downtime-replicas", str(option_sleep)]
    first = run(env, *args)  # up or down, or nothing to do
    assert first.code == 0, str(first)
    event(f"first: {json.loads(first.stdout)['namespaces'][0]['action']}")
    writes = _writes(apiserver, namespace)
    second = run(env, *args)
    assert second.code == 0, str(second)
    [decision] = json.loads(second.stdout)["namespaces"]
    assert decision["action"] not in ("down", "up"), (str(first), str(second))
    assert decision["result"] is None
    assert _writes(apiserver, namespace) == writes  # not one object written the second time


def _writes(server: ApiServer, namespace: str) -> int:
    return sum(
        1
        for r in server.requests
        if r.method in ("PUT", "PATCH", "POST") and r.namespace == namespace
    )
