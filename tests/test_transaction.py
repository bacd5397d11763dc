"""The Transaction through the real stack down to the process boundary (pytest-subprocess).

Batch size 1 makes each workload its own step, as in the seed's unit tests (docs/design.md).
"""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

import pytest

from nsscale.engine.plan import Operation, make_plan
from nsscale.engine.result import RunResult
from nsscale.engine.writer import Writer
from nsscale.kube.cluster import KubectlCluster
from nsscale.kube.objects import ORIGINAL, SCALED_TO, Workload
from nsscale.kube.retry import RetryPolicy
from nsscale.kubectl import Kubectl, KubectlConfig
from nsscale.transaction import Transaction
from tests.kube import KUBECTL, NS, Script, moved, workload

A, B, C, D = (
    workload("a", 3, 10),
    workload("b", 2, 11),
    workload("c", 1, 12),
    workload("d", 4, 13, kind="StatefulSet"),
)
ERR_500 = 'Error from server (InternalError): error when replacing "STDIN": boom\n'


def down(
    *objs: dict[str, Any],
    rollback: bool = True,
    batch_size: int = 1,
    retry: RetryPolicy | None = None,
) -> RunResult:
    kubectl = Kubectl(KubectlConfig(KUBECTL, timeout_s=5))
    cluster = KubectlCluster(kubectl)
    plan = make_plan(NS, Operation.DOWN, cluster.list_workloads([NS]))
    writer = Writer(cluster, (NS,), retry=retry or RetryPolicy())
    outcome = Transaction(writer, rollback=rollback, batch_size=batch_size).run(plan.changes)
    return RunResult(plan, outcome, rollback_enabled=rollback)


def down_of(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    """obj after nsscale scaled it down."""
    return moved(obj, 0, rv, obj["spec"]["replicas"], 0)


def test_partial_failure_rolls_back_the_done_steps(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B, C)
    script.replace(down_of(A, 20))
    script.replace(returncode=1, stderr=ERR_500)
    script.get(down_of(A, 20), B, C)  # the re-read: b unchanged, so its write was refused
    script.replace(moved(A, 3, 21, None, None))
    script.get(moved(A, 3, 21, None, None), B, C)  # the rollback, verified

    result = down()

    doc = result.to_dict()
    assert doc["success"] is False
    assert [r["name"] for r in doc["scaled_resources"]] == ["a"]
    assert doc["failed_resources"] == [
        {
            "type": "deployment",
            "name": "b",
            "status": "failed",
            "error": ERR_500.strip(),
            "error_kind": "server_error",
            "from_replicas": 2,
            "to_replicas": 0,
        }
    ]
    assert doc["rollback_performed"] is True
    assert doc["rollback_results"] == [
        {"type": "deployment", "name": "a", "restored_replicas": 3, "status": "success"}
    ]
    assert (doc["rollback_success_count"], doc["rollback_failed_count"]) == (1, 0)
    assert result.exit_code == 1
    # c was never attempted; the undo put a back with its annotations removed
    assert script.names() == ["a", "b", "a"]
    assert script.written(2) == [("a", 3, {})]


def test_rollback_disabled_goes_on_and_undoes_nothing(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B, C)
    script.replace(down_of(A, 20))
    script.replace(returncode=1, stderr=ERR_500)
    script.get(down_of(A, 20), B, C)
    script.replace(down_of(C, 21))
    script.get(down_of(A, 20), B, down_of(C, 21))  # the verification

    result = down(rollback=False)

    doc = result.to_dict()
    assert [r["name"] for r in doc["scaled_resources"]] == ["a", "c"]
    assert [r["name"] for r in doc["failed_resources"]] == ["b"]
    assert doc["rollback_performed"] is False
    assert doc["rollback_results"] == []
    assert doc["success"] is False
    assert result.exit_code == 3
    assert doc["left_changed"] == [
        {"type": "deployment", "name": "a", "replicas": 0},
        {"type": "deployment", "name": "c", "replicas": 0},
    ]


def test_first_operation_fails_nothing_to_undo(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B)
    script.replace(returncode=1, stderr=ERR_500)
    script.get(A, B)
    script.get(A, B)  # the verification

    result = down()

    doc = result.to_dict()
    assert doc["scaled_resources"] == []
    assert [r["name"] for r in doc["failed_resources"]] == ["a"]
    assert doc["rollback_performed"] is False
    assert result.exit_code == 1
    assert len(script.writes) == 1


def test_rollback_failure_is_counted_logged_and_keeps_the_first_error(
    fp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(fp)
    script.get(A, B, C)
    script.replace(down_of(A, 20))
    script.replace(down_of(B, 21))
    script.replace(returncode=1, stderr=ERR_500)
    script.get(down_of(A, 20), down_of(B, 21), C)
    # undo b: the call times out, and the re-read shows b still at 0; then a is undone anyway
    script.replace(raises=subprocess.TimeoutExpired(KUBECTL, 5))
    script.get(down_of(A, 20), down_of(B, 21), C)
    script.replace(moved(A, 3, 22, None, None))
    script.get(moved(A, 3, 22, None, None), down_of(B, 21), C)

    with caplog.at_level(logging.INFO, logger="nsscale"):
        result = down()

    doc = result.to_dict()
    assert doc["rollback_performed"] is True
    assert doc["rollback_results"] == [
        {
            "type": "deployment",
            "name": "b",
            "restored_replicas": 2,
            "status": "failed",
            "error": "kubectl did not answer within 5s (--timeout)",
        },
        {"type": "deployment", "name": "a", "restored_replicas": 3, "status": "success"},
    ]
    assert (doc["rollback_success_count"], doc["rollback_failed_count"]) == (1, 1)
    assert doc["errors"] == [f"deployment/c: {ERR_500.strip()}"]
    assert doc["left_changed"] == [{"type": "deployment", "name": "b", "replicas": 0}]
    assert result.exit_code == 3
    assert caplog.record_tuples == [
        ("nsscale", logging.ERROR, f"Failed to scale deployment/c: {ERR_500.strip()}"),
        (
            "nsscale",
            logging.WARNING,
            "Failure detected, initiating rollback of 2 successfully scaled resources",
        ),
        ("nsscale", logging.INFO, "Starting rollback of 2 resources in namespace shop"),
        ("nsscale", logging.INFO, "Rolling back deployment/b to 2 replicas"),
        (
            "nsscale",
            logging.ERROR,
            "Failed to rollback deployment/b: kubectl did not answer within 5s (--timeout)",
        ),
        ("nsscale", logging.INFO, "Rolling back deployment/a to 3 replicas"),
        ("nsscale", logging.INFO, "Successfully rolled back deployment/a"),
        ("nsscale", logging.INFO, "Rollback completed: 2 operations performed"),
    ]


def test_undo_runs_in_reverse_order_in_one_batch(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B, C, D)
    script.replace(down_of(A, 20), down_of(B, 21), down_of(C, 22))
    script.replace(returncode=1, stderr=ERR_500)
    script.get(down_of(A, 20), down_of(B, 21), down_of(C, 22), D)
    script.replace(
        moved(C, 1, 30, None, None), moved(B, 2, 31, None, None), moved(A, 3, 32, None, None)
    )
    script.get(
        moved(A, 3, 32, None, None), moved(B, 2, 31, None, None), moved(C, 1, 30, None, None), D
    )

    result = down(batch_size=3)

    assert script.written(2) == [("c", 1, {}), ("b", 2, {}), ("a", 3, {})]
    assert result.exit_code == 1
    assert [r["name"] for r in result.to_dict()["rollback_results"]] == ["c", "b", "a"]


def test_every_write_carries_the_resource_version_read(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B)
    script.replace(down_of(A, 20), down_of(B, 21))

    result = down(batch_size=10)

    assert result.exit_code == 0
    versions = [(o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in script.writes[0]]
    assert versions == [("a", "10"), ("b", "11")]
    assert script.written(0) == [
        ("a", 0, {ORIGINAL: "3", SCALED_TO: "0"}),
        ("b", 0, {ORIGINAL: "2", SCALED_TO: "0"}),
    ]


def test_a_conflict_is_retried_while_the_replica_count_holds(fp: Any) -> None:
    script = Script(fp)
    script.get(A)
    conflict = (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
        'fulfilled on deployments.apps "a": the object has been modified\n'
    )
    script.replace(returncode=1, stderr=conflict)
    bumped = workload("a", 3, 15)  # a status update bumped the version, replicas still 3
    script.get(bumped)
    script.replace(down_of(A, 20))

    result = down()

    assert result.exit_code == 0
    assert [o["metadata"]["resourceVersion"] for ws in script.writes for o in ws] == ["10", "15"]


def test_a_change_made_meanwhile_is_a_conflict_not_clobbered(fp: Any) -> None:
    script = Script(fp)
    script.get(A)
    script.replace(
        returncode=1, stderr="Error from server (Conflict): the object has been modified\n"
    )
    script.get(workload("a", 5, 15))  # somebody scaled it to 5 meanwhile
    script.get(workload("a", 5, 15))  # the verification

    result = down()

    assert result.exit_code == 1
    failure = result.to_dict()["failed_resources"][0]
    assert failure["error_kind"] == "conflict"
    assert "changed by someone else meanwhile (replicas now 5)" in failure["error"]
    assert len(script.writes) == 1  # no second write over their change


@pytest.mark.parametrize(
    ("trigger", "expected_error"),
    [
        ("bad_json", "could not read the output"),
        ("timeout_then_reread_fails", "Error from server (InternalError)"),
        ("exception", "unexpected error"),
        ("keyboard_interrupt", "interrupted by SIGINT"),
    ],
)
def test_each_trigger_rolls_back(
    fp: Any, monkeypatch: pytest.MonkeyPatch, trigger: str, expected_error: str
) -> None:
    script = Script(fp)
    script.get(A, B)
    script.replace(down_of(A, 20))
    if trigger == "bad_json":  # the write's output, then the re-read's, cannot be read
        script.replace(stdout="this is not json")
        script.get(stdout='{"kind": "List", "items": [')
    elif trigger == "timeout_then_reread_fails":
        script.replace(raises=subprocess.TimeoutExpired(KUBECTL, 5))
        script.get(returncode=1, stderr="Error from server (InternalError): etcd is down\n")
    elif trigger == "exception":
        script.replace(raises=RuntimeError("disk on fire"))
    else:
        script.replace(raises=KeyboardInterrupt())
    # the rollback: b's state is unknown, so it is undone first (a no-op if its write never
    # landed: the guard is the state), then a
    script.replace(moved(B, 2, 22, None, None))
    script.replace(moved(A, 3, 23, None, None))
    script.get(moved(A, 3, 23, None, None), moved(B, 2, 22, None, None))

    result = down()

    doc = result.to_dict()
    assert any(expected_error in e for e in doc["errors"]), doc["errors"]
    assert doc["rollback_performed"] is True
    assert [(r["name"], r["status"]) for r in doc["rollback_results"]] == [
        ("b", "success"),
        ("a", "success"),
    ]
    assert [f["name"] for f in doc["failed_resources"]] == ["b"]
    assert result.exit_code == (130 if trigger == "keyboard_interrupt" else 1)


def test_several_documents_from_replace_are_read_one_by_one(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B)
    printed = json.dumps(down_of(A, 20), indent=4) + "\n" + json.dumps(down_of(B, 21), indent=4)
    script.replace(stdout=printed)  # what kubectl v1.37 prints for a List of two

    result = down(batch_size=2)

    assert result.exit_code == 0, result.to_dict()
    assert len(script.writes) == 1


def test_unreadable_write_output_is_judged_by_reading_the_namespace(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B)
    script.replace(stdout="<html>502 Bad Gateway</html>")
    script.get(down_of(A, 20), down_of(B, 21))  # both landed: the truth, not the garbage
    script.get(down_of(A, 20), down_of(B, 21))  # the verification of what was judged

    result = down(batch_size=2)

    assert result.exit_code == 0, result.to_dict()
    assert [s["name"] for s in result.to_dict()["scaled_resources"]] == ["a", "b"]


def test_a_timed_out_write_is_judged_by_reading_the_namespace(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B)
    script.replace(raises=subprocess.TimeoutExpired(KUBECTL, 5))
    script.get(down_of(A, 20), B)  # a landed before the kill, b did not
    script.replace(moved(A, 3, 21, None, None))
    script.get(moved(A, 3, 21, None, None), B)

    result = down(batch_size=2)

    doc = result.to_dict()
    assert [r["name"] for r in doc["scaled_resources"]] == ["a"]
    assert doc["failed_resources"][0]["name"] == "b"
    assert doc["failed_resources"][0]["error_kind"] == "timeout"
    assert [r["name"] for r in doc["rollback_results"]] == ["a"]
    assert result.exit_code == 1


def test_workload_keys_round_trip() -> None:
    w = Workload.from_manifest(workload("a", 3, 10, original=3, scaled_to=0))
    assert w.state.original == "3"
    assert w.render(w.state)["metadata"]["resourceVersion"] == "10"


def test_transient_failures_are_retried_with_backoff(
    fp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    slept: list[float] = []
    retry = RetryPolicy(retries=3, base_s=1, sleep=slept.append, jitter=lambda: 0.5)
    script = Script(fp)
    script.get(A)
    script.replace(returncode=1, stderr=ERR_500)
    script.get(returncode=1, stderr="The connection to the server x was refused\n")
    script.get(A)  # the re-read, retried: a is unchanged, so the write is sent again
    script.replace(returncode=1, stderr="Error from server (TooManyRequests): slow down\n")
    script.get(A)
    script.replace(down_of(A, 20))

    with caplog.at_level(logging.WARNING, logger="nsscale"):
        result = down(retry=retry)

    assert result.exit_code == 0, result.to_dict()
    assert slept == [1.0, 1.0, 2.0]  # the read's first retry, then the writes' first and second
    retries = [m for _, _, m in caplog.record_tuples if m.startswith("retrying")]
    assert len(retries) == 3
    assert "retrying 1 write(s) in 2.0s (retry 2 of 3)" in retries[2]


def test_permanent_failures_are_not_retried(fp: Any) -> None:
    retry = RetryPolicy(retries=3, sleep=lambda s: None)
    script = Script(fp)
    script.get(A)
    script.replace(
        returncode=1,
        stderr='Error from server (Forbidden): deployments.apps "a" is '
        'forbidden: User "x" cannot update resource "deployments"\n',
    )
    script.get(A)
    script.get(A)  # the verification

    result = down(retry=retry)

    assert result.exit_code == 1
    assert result.to_dict()["failed_resources"][0]["error_kind"] == "forbidden"
    assert len(script.writes) == 1


def test_retries_run_out(fp: Any) -> None:
    retry = RetryPolicy(retries=1, sleep=lambda s: None)
    script = Script(fp)
    script.get(A)
    for _ in range(2):
        script.replace(returncode=1, stderr=ERR_500)
        script.get(A)
    script.get(A)  # the verification

    result = down(retry=retry)

    assert result.exit_code == 1
    assert len(script.writes) == 2
    assert result.to_dict()["failed_resources"][0]["error_kind"] == "server_error"


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    policy = RetryPolicy(retries=9, base_s=0.5, cap_s=4, jitter=lambda: 0.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    high = RetryPolicy(base_s=0.5, jitter=lambda: 1.0)
    assert high.delay(1) == 0.75


def test_a_rollback_that_does_not_hold_is_reported(fp: Any) -> None:
    script = Script(fp)
    script.get(A, B)
    script.replace(down_of(A, 20))
    script.replace(returncode=1, stderr=ERR_500)
    script.get(down_of(A, 20), B)
    script.replace(moved(A, 3, 21, None, None))
    script.get(moved(A, 0, 22, None, None), B)  # something scaled it to 0 again right after

    result = down()

    assert result.exit_code == 3
    assert (
        result.to_dict()["rollback_results"][0]["error"] == "verify after rollback: replicas now 0"
    )
