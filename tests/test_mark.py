"""The in-cluster mark on a real kubectl and the local API server: renewed while anything runs,
every call on it retried, retired when it cannot go, and kept by whoever takes it over."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from nsscale.api import run_namespace
from nsscale.audit.auditor import Auditor
from nsscale.engine.interrupts import Interrupts
from nsscale.engine.lock import LEASE, LockHeld
from nsscale.engine.options import AuditOptions, RunOptions
from nsscale.engine.plan import Operation
from nsscale.engine.reads import Lookahead
from nsscale.engine.result import RunResult
from nsscale.engine.run import run_operation
from nsscale.kube.objects import ORIGINAL, SCALED_TO
from nsscale.kube.retry import RetryPolicy
from nsscale.kubectl import Kubectl, KubectlConfig
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.server import ApiServer
from tests.faultkit import (
    Key,
    MatrixLog,
    Running,
    judge_down,
    lease,
    live_mark,
    observe,
    other_mark,
    run,
    scaled_down,
    untouched,
    wait_until,
)

pytestmark = pytest.mark.e2e

NS = "shop"
SPEC: dict[Key, int] = {
    ("deployment", "alpha"): 3,
    ("deployment", "bravo"): 2,
    ("statefulset", "delta"): 2,
}
BATCHES = ("--batch-size", "1", "--parallel", "1")


def mark_annotations(server: ApiServer) -> dict[str, str]:
    mark = lease(server, NS)
    assert mark is not None
    return dict(mark["metadata"].get("annotations", {}))


def down_in_process(kubeconfig: Path, kubectl_bin: Path, lease_s: int) -> RunResult:
    """`down` through the run flow itself, with a short-lived mark (renewed every lease_s/3)."""
    kubectl = Kubectl(KubectlConfig(str(kubectl_bin), kubeconfig=str(kubeconfig), timeout_s=10))
    ahead = Lookahead(kubectl, [NS], RetryPolicy(0), writes=True, audited=False)
    options = RunOptions(batch_size=1, parallel=1, retries=0, run_id="live", lease_s=lease_s)
    [result] = run_operation(kubectl, Operation.DOWN, options, ahead, Interrupts())
    return result


# ------------------------------------------------------------------------ renewed on a timer


def test_a_long_write_does_not_let_the_mark_go_stale(
    shop: ApiServer, kubeconfig: Path, kubectl_bin: Path
) -> None:
    # One write held 2.5 s, a mark of 3 s: renewed during the write, never stale.
    shop.hang("PUT", "statefulsets", "delta", seconds=2.5)
    renewals: list[str] = []

    def watch() -> None:
        while (mark := lease(shop, NS)) is not None or not renewals:
            if mark is not None:
                renewals.append(mark["spec"]["renewTime"])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = down_in_process(kubeconfig, kubectl_bin, lease_s=3)
    watcher.join(5)

    assert result.exit_code == 0
    assert len(set(renewals)) >= 3, "renewed at least twice while the write was held"
    assert observe(shop, NS) == scaled_down(SPEC)


def test_a_mark_taken_away_mid_run_stops_the_run_and_rolls_back(
    shop: ApiServer,
    kubeconfig: Path,
    kubectl_bin: Path,
    kubectl: KubectlFixture,
    matrix: MatrixLog,
) -> None:
    # The last write is held 2 s; meanwhile the mark is deleted (as `nsscale recover` would).
    # The next renewal finds it gone: the run must stop as a failure and undo what it did,
    # never report success over a namespace somebody else now acts on.
    shop.hang("PUT", "statefulsets", "delta", seconds=2)
    deleted = threading.Event()

    def take_away() -> None:
        assert wait_until(lambda: shop.get_object("leases", NS, "nsscale") is not None, 10)
        proc = kubectl("delete", "lease", "nsscale", "-n", NS)
        assert proc.returncode == 0, proc.stderr
        deleted.set()

    thief = threading.Thread(target=take_away, daemon=True)
    thief.start()
    result = down_in_process(kubeconfig, kubectl_bin, lease_s=3)
    thief.join(10)

    final, report = observe(shop, NS), result.to_dict()
    verdict = judge_down(SPEC, final, result.exit_code, report)
    matrix.add("mark", "taken", "rollback", verdict)
    assert verdict.ok, verdict.explain(final, report)
    assert deleted.is_set()
    assert result.exit_code == 1
    assert "the in-cluster mark of this run on shop was taken over" in " ".join(report["errors"])
    assert final == untouched(SPEC)


# ------------------------------------------------------------------------ retried, retired


def test_one_failed_lease_create_is_retried(shop: ApiServer, env: dict[str, str]) -> None:
    shop.fail("POST", "leases", status=500)
    done = run(env, "down", NS, "-o", "json")
    assert done.code == 0, str(done)
    assert observe(shop, NS) == scaled_down(SPEC)
    assert lease(shop, NS) is None


def test_a_mark_that_cannot_be_deleted_is_retired_and_blocks_nobody(
    shop: ApiServer, env: dict[str, str], matrix: MatrixLog
) -> None:
    shop.fail("DELETE", "leases", status=500, times=None)
    done = run(env, "down", NS, "--retries", "1", "-o", "json")
    verdict = judge_down(SPEC, observe(shop, NS), done.code, done.json())
    matrix.add("mark", "undeletable", "rollback", verdict)
    assert verdict.ok, verdict.explain(observe(shop, NS), done.json())
    assert done.code == 0, str(done)
    assert json.loads(done.stdout)["success"] is True
    retired = mark_annotations(shop)
    assert "nsscale/ended" in retired
    assert retired["nsscale/outcome"] == "exit 0"
    assert json.loads(retired["nsscale/snapshot"]) == {}  # nothing left to recover

    shop.clear_faults()
    after = run(env, "up", NS, "-o", "json")
    assert after.code == 0, str(after)
    assert observe(shop, NS) == untouched(SPEC)
    assert lease(shop, NS) is None


def test_up_after_a_down_that_exited_3_just_works(shop: ApiServer, env: dict[str, str]) -> None:
    shop.fail("PUT", "statefulsets", "delta", status=500)  # the last write fails
    shop.fail("PUT", "deployments", "bravo", status=500, nth=2)  # and bravo's undo
    failed = run(env, "down", NS, "--retries", "0", *BATCHES, "-o", "json")
    assert failed.code == 3, str(failed)
    first_run = json.loads(failed.stdout)["run_id"]

    repaired = run(env, "up", NS, "-o", "json")
    assert repaired.code == 0, str(repaired)
    assert first_run in repaired.stderr, "the warning names the run that left it changed"
    assert "deployment/bravo at 0" in repaired.stderr
    assert observe(shop, NS) == untouched(SPEC)
    assert lease(shop, NS) is None


# ------------------------------------------------------------------------ taking over


def test_a_forced_run_that_rolls_back_keeps_the_interrupted_run_s_record(
    shop: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    # An interrupted `down` (its holder gone) left alpha at 0 and its stale mark.
    interrupted = {"deployment/alpha": [[3, None, None], [0, "3", "0"]]}
    shop.edit_workload(
        NS,
        "deployment",
        "alpha",
        replicas=0,
        annotations={"nsscale/original-replicas": "3", "nsscale/scaled-replicas": "0"},
    )
    long_ago = "2020-01-01T00:00:00.000000Z"
    mark = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": "nsscale",
            "namespace": NS,
            "annotations": {
                "nsscale/run-id": "interrupted",
                "nsscale/operation": "down",
                "nsscale/snapshot": json.dumps(interrupted),
            },
        },
        "spec": {
            "holderIdentity": "gone@host pid 1",
            "leaseDurationSeconds": 120,
            "acquireTime": long_ago,
            "renewTime": long_ago,
        },
    }
    created = kubectl("create", "-f", "-", input=json.dumps(mark))
    assert created.returncode == 0, created.stderr

    # `down --force` takes over and fails on its last write: its own changes are undone...
    shop.fail("PUT", "statefulsets", "delta", status=500)
    forced = run(env, "down", NS, "--force", "--retries", "0", *BATCHES, "-o", "json")
    report = json.loads(forced.stdout)
    # ...but alpha is still at 0 from the interrupted run: not "as it was", a person must look.
    assert forced.code == 3, str(forced)
    assert report["left_changed"] == [{"type": "deployment", "name": "alpha", "replicas": 0}]
    kept = json.loads(mark_annotations(shop)["nsscale/snapshot"])
    assert set(kept) == {"deployment/alpha"}

    recovered = run(env, "recover", NS, "-o", "json")
    assert recovered.code == 0, str(recovered)
    assert observe(shop, NS) == untouched(SPEC)
    assert lease(shop, NS) is None


# ------------------------------------------------------------------- one run at a time


def test_a_run_with_nothing_to_do_during_another_run_is_refused(
    shop: ApiServer, env: dict[str, str]
) -> None:
    held = shop.hang("PUT", "deployments", "alpha", seconds=6)  # the down holds its mark
    down = Running(env, "down", NS, *BATCHES, "-o", "json")
    assert wait_until(lambda: held.seen > 0 or down.exited, 30)

    upped = run(env, "up", NS, "-o", "json")  # nothing is down yet: nothing to do
    assert not down.exited, "the down ended before the up tried: nothing was tested"
    done = down.finish()

    assert upped.code == 1, str(upped)
    assert "another nsscale run is working on shop" in upped.stderr
    assert "`down` by " in upped.stderr  # names the holder
    assert upped.json()["success"] is False
    assert done.code == 0, str(done)
    assert observe(shop, NS) == scaled_down(SPEC)
    assert lease(shop, NS) is None


def test_losing_the_race_to_create_the_mark_is_an_ordinary_refusal(
    shop: ApiServer, env: dict[str, str]
) -> None:
    # Between this run's failed create and its read, the other run's mark is cleared; a third
    # run creates it again before this run's second create: AlreadyExists twice.
    shop.before(
        "POST", "leases", call=lambda: shop.create_object("leases", NS, other_mark(NS)), times=2
    )
    shop.before("GET", "leases", "nsscale", call=lambda: shop.delete_object("leases", NS, LEASE))

    refused = run(env, "down", NS, "-o", "json")

    assert refused.code == 1, str(refused)
    assert "AlreadyExists" not in refused.stderr + refused.stdout
    assert "another nsscale run is working on shop" in refused.stderr
    assert "`up` by bob@elsewhere pid 7" in refused.stderr
    assert observe(shop, NS) == untouched(SPEC)
    mark = lease(shop, NS)
    assert mark is not None
    assert mark["spec"]["holderIdentity"] == "bob@elsewhere pid 7"


SCALED_BY_NSSCALE = {ORIGINAL: "2", SCALED_TO: "0"}  # what this run would have written


@pytest.mark.parametrize("by", ["kubectl scale", "another nsscale"], ids=["by-hand", "by-run"])
def test_a_workload_brought_to_target_by_someone_else_meanwhile_is_skipped(
    shop: ApiServer, env: dict[str, str], tmp_path: Path, by: str
) -> None:
    annotations = SCALED_BY_NSSCALE if by == "another nsscale" else None

    def elsewhere() -> None:  # just before this run's write of bravo
        shop.edit_workload(NS, "deployment", "bravo", replicas=0, annotations=annotations)

    shop.before("PUT", "deployments", "bravo", call=elsewhere)
    audit = tmp_path / "audit.jsonl"

    done = run(env, "down", NS, *BATCHES, "-o", "json", "--audit-file", str(audit))

    assert done.code == 0, str(done)
    report = done.json()
    skipped = {"type": "deployment", "name": "bravo", "replicas": 0, "reason": "already at target"}
    assert skipped in report["skipped_resources"]
    assert "bravo" not in [s["name"] for s in report["scaled_resources"]]
    assert report["total_scaled"] == 2
    start, record = [json.loads(line) for line in audit.read_text().splitlines()]
    assert (start["event"], record["event"]) == ("started", "finished")
    steps = {(step["name"], step["action"]) for step in record["steps"]}
    assert ("alpha", "scale") in steps
    assert ("bravo", "skip") in steps  # not this run's change
    assert ("bravo", "scale") not in steps
    assert record["total_scaled"] == 2
    theirs = annotations or {}
    assert observe(shop, NS)[("deployment", "bravo")] == (
        0,
        theirs.get(ORIGINAL),
        theirs.get(SCALED_TO),
    )
    assert lease(shop, NS) is None


def test_the_server_s_run_with_nothing_to_do_under_a_live_mark_is_a_refusal(
    shop: ApiServer, kubeconfig: Path, kubectl_bin: Path, kubectl: KubectlFixture, tmp_path: Path
) -> None:
    # What `nsscale serve` runs for an activate (it answers 409 for a LockHeld refusal).
    live_mark(kubectl, NS)
    runner = Kubectl(KubectlConfig(str(kubectl_bin), kubeconfig=str(kubeconfig), timeout_s=10))
    auditor = Auditor(AuditOptions(file=tmp_path / "audit.jsonl"))

    executed = run_namespace(runner, NS, Operation.UP, auditor)

    assert isinstance(executed.refusal, LockHeld), executed
    assert "`up` by bob@elsewhere pid 7" in str(executed.refusal)
    assert executed.results[0].exit_code == 1
    assert observe(shop, NS) == untouched(SPEC)
