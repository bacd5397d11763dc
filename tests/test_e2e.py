"""End to end: the installed `nsscale` script, the real kubectl, the local API server.

Every assertion is on the server's final state (or on the exit code and JSON), not on wording.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver.fixtures import kubectl_env
from tests.apiserver.server import ApiServer
from tests.faultkit import NSSCALE, Key, Observed, observe, scaled_down, untouched
from tests.kube import SEED_KEYS

pytestmark = pytest.mark.e2e

NS = "shop"
SPEC = {
    ("deployment", "web"): 3,
    ("deployment", "api"): 2,
    ("deployment", "idle"): 0,
    ("statefulset", "db"): 1,
    ("statefulset", "cache"): 2,
}
INITIAL = untouched(SPEC)
DOWN = scaled_down(SPEC)


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def nsscale(kubeconfig: Path, kubectl_bin: Path) -> Any:
    def run(*args: str) -> Run:
        env = {
            **kubectl_env(kubeconfig),
            "NSSCALE_KUBECTL": str(kubectl_bin),
            "COLUMNS": "200",
        }
        started = time.monotonic()
        proc = subprocess.run(
            [str(NSSCALE), *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        return Run(proc, time.monotonic() - started)

    return run


def state(server: ApiServer) -> dict[Key, Observed]:
    """(kind, name) -> (spec.replicas, recorded original, recorded scaled-to)."""
    return observe(server, NS)


def versions(server: ApiServer) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in server.workloads(NS)}


def test_down_up_round_trip_restores_every_count_and_removes_the_annotations(
    shop: ApiServer, nsscale: Any
) -> None:
    down = nsscale("down", NS)
    assert down.code == 0, down.stderr
    assert state(shop) == DOWN

    up = nsscale("up", NS)
    assert up.code == 0, up.stderr
    assert state(shop) == INITIAL
    assert shop.unhandled == []


def test_down_twice_keeps_the_originals(shop: ApiServer, nsscale: Any) -> None:
    assert nsscale("down", NS).code == 0
    again = nsscale("down", NS, "-o", "json")
    assert again.code == 0
    assert again.json()["total_scaled"] == 0
    assert state(shop) == DOWN
    assert nsscale("up", NS).code == 0
    assert state(shop) == INITIAL


def test_dry_run_changes_nothing(shop: ApiServer, nsscale: Any) -> None:
    before = versions(shop)
    run = nsscale("down", NS, "--dry-run", "-o", "json")
    assert run.code == 0, run.stderr
    assert run.json()["total_scaled"] == 4
    assert versions(shop) == before
    assert not [r for r in shop.requests if r.method in ("PUT", "PATCH", "POST", "DELETE")]


def test_server_dry_run_sends_every_write_and_changes_nothing(
    shop: ApiServer, nsscale: Any
) -> None:
    before = versions(shop)
    run = nsscale("down", NS, "--server-dry-run", "-o", "json")
    assert run.code == 0, run.stdout + run.stderr
    doc = run.json()
    assert doc["dry_run"] is True
    assert {s["status"] for s in doc["scaled_resources"]} == {"dry_run"}
    assert versions(shop) == before
    puts = [r for r in shop.requests if r.method == "PUT"]
    assert len(puts) == 4
    assert all(r.query.get("dryRun") == "All" for r in puts)
    assert shop.get_object("leases", NS, "nsscale") is None  # nothing to mark


def test_server_dry_run_reports_a_refused_write(shop: ApiServer, nsscale: Any) -> None:
    shop.forbid("update", "statefulsets", name="db")  # an admission-like refusal of one object
    run = nsscale("down", NS, "--server-dry-run", "-o", "json")
    assert run.code == 1, run.stdout + run.stderr
    doc = run.json()
    assert [f["name"] for f in doc["failed_resources"]] == ["db"]
    assert doc["failed_resources"][0]["error_kind"] == "forbidden"
    assert doc["rollback_performed"] is False
    assert state(shop) == INITIAL


def test_up_skips_a_workload_changed_since_unless_forced(shop: ApiServer, nsscale: Any) -> None:
    assert nsscale("down", NS).code == 0
    shop.edit_workload(NS, "deployment", "web", replicas=1)  # somebody, meanwhile

    up = nsscale("up", NS, "-o", "json")
    assert up.code == 0
    skipped = {s["name"]: s["reason"] for s in up.json()["skipped_resources"]}
    assert "changed since nsscale set it to 0 (now 1)" in skipped["web"]
    assert state(shop)[("deployment", "web")] == (1, "3", "0")  # original kept

    assert nsscale("up", NS, "--force").code == 0
    assert state(shop) == INITIAL


def test_scale_then_up_restores_a_workload_that_was_at_zero(shop: ApiServer, nsscale: Any) -> None:
    assert nsscale("scale", NS, "--replicas", "2").code == 0
    assert {k: v[0] for k, v in state(shop).items()} == {k: 2 for k in SPEC}
    assert nsscale("up", NS).code == 0
    assert state(shop) == INITIAL


@pytest.mark.parametrize("k", [1, 3, 4])
def test_a_failure_on_the_kth_workload_leaves_every_workload_at_its_original(
    shop: ApiServer, nsscale: Any, k: int
) -> None:
    # the k-th write of the run is refused (in discovery order: api, web, cache, db)
    kind, name = [
        ("deployments", "api"),
        ("deployments", "web"),
        ("statefulsets", "cache"),
        ("statefulsets", "db"),
    ][k - 1]
    shop.fail("PUT", kind, name, status=500)
    run = nsscale(
        "down", NS, "--batch-size", "1", "--parallel", "1", "--retries", "0", "-o", "json"
    )
    assert run.code == 1, run.stdout + run.stderr
    assert state(shop) == INITIAL
    doc = run.json()
    assert doc["total_failed"] == 1
    assert doc["rollback_performed"] is (k > 1)
    assert doc["rollback_success_count"] == k - 1


def test_parallel_steps_roll_back_whatever_finished(shop: ApiServer, nsscale: Any) -> None:
    for i in range(40):
        shop.add_deployment(NS, f"extra-{i:02d}", replicas=1 + i % 3)
    before = state(shop)
    shop.fail("PUT", "deployments", "extra-17", status=500)
    run = nsscale(
        "down", NS, "--batch-size", "5", "--parallel", "4", "--retries", "0", "-o", "json"
    )
    assert run.code == 1, run.stdout + run.stderr
    assert state(shop) == before
    doc = run.json()
    assert doc["rollback_success_count"] == doc["total_scaled"] > 0
    assert [f["name"] for f in doc["failed_resources"]] == ["extra-17"]


def test_a_failure_during_rollback_exits_3_and_names_what_is_left(
    shop: ApiServer, nsscale: Any
) -> None:
    shop.fail("PUT", "statefulsets", "db", status=500)  # the last forward write
    shop.fail("PUT", "deployments", "web", status=500, nth=2)  # web's undo
    run = nsscale("down", NS, "--retries", "0", "-o", "json")
    assert run.code == 3, run.stdout + run.stderr
    doc = run.json()
    assert doc["left_changed"] == [{"type": "deployment", "name": "web", "replicas": 0}]
    assert doc["rollback_failed_count"] == 1
    changed = {k for k, v in state(shop).items() if v != INITIAL[k]}
    assert changed == {("deployment", "web")}
    assert state(shop)[("deployment", "web")] == (0, "3", "0")  # its original is kept


def test_forbidden_exits_1_with_nothing_changed_naming_the_permission(
    shop: ApiServer, nsscale: Any
) -> None:
    shop.forbid("update", "deployments")
    run = nsscale("down", NS)
    assert run.code == 1, run.stdout + run.stderr
    # found by the pre-flight check, before any change
    assert "error: not allowed to update deployments.apps in namespace shop" in run.stderr
    assert state(shop) == INITIAL
    assert shop.get_object("leases", NS, "nsscale") is None


def test_the_review_does_not_wait_for_the_read_of_the_namespace(
    shop: ApiServer, nsscale: Any
) -> None:
    shop.hang("GET", "deployments", seconds=2.0)  # the read of the namespace, held 2 s
    run = nsscale("down", NS, "-o", "json")
    assert run.code == 0, run.stderr
    # recorded as answered: the review's questions were answered while the read was held
    served = [r.resource for r in shop.requests if r.resource != "discovery"]
    first_read = served.index("deployments")
    assert served.index("selfsubjectaccessreviews") < first_read
    assert served.index("selfsubjectreviews") < first_read
    assert state(shop) == DOWN


def test_forbidden_at_write_time_rolls_back_and_names_the_permission(
    shop: ApiServer, nsscale: Any
) -> None:
    shop.forbid("update", "statefulsets", name="db")  # can-i (no name) still says yes
    run = nsscale("down", NS)
    assert run.code == 1, run.stdout + run.stderr
    assert 'cannot update resource "statefulsets" in API group "apps"' in run.stderr
    assert state(shop) == INITIAL


@pytest.mark.timing  # an upper bound on the seconds it takes
def test_an_unreachable_server_exits_1_within_the_timeout(
    tmp_path: Path, kubectl_bin: Path
) -> None:
    with ApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "gone")
    env = {**kubectl_env(kubeconfig), "NSSCALE_KUBECTL": str(kubectl_bin)}
    started = time.monotonic()
    proc = subprocess.run(
        # no retries: a refused connection is otherwise retried with backoff, as it may pass
        [
            str(NSSCALE),
            "down",
            NS,
            "--kubeconfig",
            str(kubeconfig),
            "--timeout",
            "3",
            "--retries",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - started < 3 + 2
    assert "was refused" in proc.stderr
    assert "kubectl cluster-info" in proc.stderr  # what to do about it


@pytest.mark.timing  # an upper bound on the seconds it takes
def test_a_hung_write_is_cut_at_its_request_timeout_and_rolled_back(
    shop: ApiServer, nsscale: Any
) -> None:
    shop.hang("PUT", "statefulsets", "cache", seconds=60)
    run = nsscale("down", NS, "--timeout", "3", "--retries", "0", "-v", "-o", "json")
    assert run.code == 1, run.stdout + run.stderr
    # the server cuts the held write at 3 s (its 504), then 3 s for any write still in flight
    assert run.seconds < 3 + 3 + 4
    assert "waiting 3s for its own deadline" in run.stderr
    assert state(shop) == INITIAL
    time.sleep(1)  # nothing lands after the report
    assert state(shop) == INITIAL
    doc = run.json()
    # cache's write was cut; db's, after it in the same call, was done and undone
    assert {(f["name"], f["error_kind"]) for f in doc["failed_resources"]} == {("cache", "timeout")}
    assert doc["rollback_performed"] is True
    assert {r["name"] for r in doc["rollback_results"]} == {"api", "web", "db"}


@pytest.mark.timing  # 3.9 s held against a 4 s deadline
def test_a_write_landing_after_kubectl_was_killed_is_still_seen(
    shop: ApiServer, nsscale: Any
) -> None:
    # Slow requests: cache's write (alone in its call) reaches the server about 0.3 s into the
    # call, and is held 3.9 s, just under the server's own 4 s deadline: it lands after kubectl
    # is killed at 4 s. Judged only once that deadline has passed, it is found done.
    shop.latency = 0.3
    shop.hang("PUT", "statefulsets", "cache", seconds=3.9)
    run = nsscale("down", NS, "--timeout", "4", "--batch-size", "1", "--retries", "0", "-o", "json")
    assert run.code == 0, run.stdout + run.stderr
    assert "cache" in [r["name"] for r in run.json()["scaled_resources"]]
    assert state(shop) == DOWN
    time.sleep(1)
    assert state(shop) == DOWN


def test_transient_failures_are_retried_to_success(shop: ApiServer, nsscale: Any) -> None:
    shop.fail("PUT", "deployments", "web", status=500)  # once
    shop.hang("PUT", "statefulsets", "cache", seconds=60)  # once: killed, then retried
    run = nsscale("down", NS, "--timeout", "3", "-o", "json")
    assert run.code == 0, run.stdout + run.stderr
    assert state(shop) == DOWN
    assert run.stderr.count("[WARNING] retrying") >= 1


def test_a_controller_bumping_versions_does_not_break_the_round_trip(
    shop: ApiServer, nsscale: Any
) -> None:
    shop.controller = True
    shop.fail("PUT", "statefulsets", "db", status=500)  # forces undos over bumped versions
    run = nsscale("down", NS, "--retries", "0", "-o", "json")
    assert run.code == 1, run.stdout + run.stderr
    assert run.json()["rollback_failed_count"] == 0
    assert state(shop) == INITIAL


def test_json_output_carries_every_seed_key(shop: ApiServer, nsscale: Any) -> None:
    run = nsscale("down", NS, "-o", "json")
    doc = run.json()
    assert set(doc) >= SEED_KEYS | {
        "namespace",
        "operation",
        "dry_run",
        "skipped_resources",
        "duration_s",
    }
    assert {(s["type"], s["name"], s["from_replicas"]) for s in doc["scaled_resources"]} == {
        (kind, name, n) for (kind, name), n in SPEC.items() if n
    }


def test_a_missing_namespace_exits_2(apiserver: ApiServer, nsscale: Any) -> None:
    run = nsscale("down", "nowhere")
    assert run.code == 2
    assert 'namespace "nowhere" not found' in run.stderr


def test_status_shows_the_recorded_originals(shop: ApiServer, nsscale: Any) -> None:
    assert nsscale("down", NS).code == 0
    doc = nsscale("status", NS, "-o", "json").json()
    originals = {w["name"]: w["original_replicas"] for w in doc["workloads"]}
    assert originals == {"web": 3, "api": 2, "idle": None, "db": 1, "cache": 2}
