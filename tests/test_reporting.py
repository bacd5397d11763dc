"""What a run tells, on every path: one JSON document with -o json, the exit code a reader that
went away cannot change, a signal after the run that cannot turn it into "nothing changed", an
audit record that must be writable before anything changes, and refused runs recorded too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import nsscale.engine.run
from nsscale.cli import app
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.server import ApiServer
from tests.faultkit import (
    NSSCALE,
    Key,
    Running,
    lease,
    observe,
    run,
    scaled_down,
    untouched,
    wait_until,
)
from tests.kube import KUBECTL, NS, Script, moved, workload

SPEC: dict[Key, int] = {("deployment", "alpha"): 3, ("statefulset", "delta"): 2}


def audit_lines(env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(env["XDG_STATE_HOME"]) / "nsscale" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------------ signals, pipes


def test_a_signal_once_the_run_is_over_never_says_nothing_changed(
    fp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Ctrl-C right after the run returns, before its report: the run changed the namespace,
    # so it must be reported as it ended, never as "interrupted before any change".
    a, b = workload("a", 3, 10), workload("b", 2, 11)
    script = Script(fp)
    script.get(a, b)
    script.guards()
    script.replace(moved(a, 0, 20, 3, 0), moved(b, 0, 21, 2, 0))
    real = nsscale.engine.run.run_operation

    def then_sigint(*args: Any) -> Any:
        result = real(*args)
        os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(nsscale.engine.run, "run_operation", then_sigint)
    argv = ["down", NS, "--kubectl", KUBECTL, "--timeout", "5", "-o", "json"]
    result = CliRunner().invoke(app, argv)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_scaled"] == 2
    assert "nothing was changed" not in result.output


@pytest.mark.e2e
def test_a_reader_that_goes_away_does_not_change_the_exit_code(
    shop: ApiServer, env: dict[str, str]
) -> None:
    # `nsscale down shop | head -0`: stdout is closed before the report is written.
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run(
        [str(NSSCALE), "down", NS], env=env, stdout=write, stderr=subprocess.PIPE, check=False
    )
    os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    assert observe(shop, NS) == scaled_down(SPEC)


@pytest.mark.e2e
def test_an_interrupt_before_any_change_still_prints_one_json_document(
    shop: ApiServer, env: dict[str, str]
) -> None:
    held = shop.hang("GET", "deployments", seconds=2)  # the first read
    running = Running(env, "down", NS, "-o", "json")
    assert wait_until(lambda: held.seen > 0 or running.exited, 30)
    running.send(signal.SIGINT)
    done = running.finish()

    assert done.code == 130, str(done)
    report = done.json()
    assert (report["success"], report["interrupted"], report["exit_code"]) == (False, "SIGINT", 130)
    assert "nothing was changed" in done.stderr
    assert observe(shop, NS) == untouched(SPEC)


# ------------------------------------------------------------------------ JSON on every path


NO_DYNAMODB = {
    "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:1",  # refused at once
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["status", "nowhere"], 2),
        (["down", "nowhere"], 2),
        (["history", NS, "--audit-table", "nsscale-audit"], 1),
        (["status", NS, "--kubectl", "/nonexistent/kubectl"], 2),
        (["down", NS, "--kubectl", "/nonexistent/kubectl"], 2),
    ],
)
def test_every_error_with_json_output_is_one_json_document(
    shop: ApiServer, env: dict[str, str], args: list[str], code: int
) -> None:
    done = run(env | NO_DYNAMODB, *args, "-o", "json")
    assert done.code == code, str(done)
    document = json.loads(done.stdout)  # exactly one document
    assert (document["success"], document["exit_code"]) == (False, code)
    assert document["errors"]
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_no_rollback_where_nothing_changed_is_exit_1(shop: ApiServer, env: dict[str, str]) -> None:
    # Refused by the server (an admission policy, say), not by RBAC: every write fails.
    shop.fail("PUT", "deployments", "alpha", status=403)
    shop.fail("PUT", "statefulsets", "delta", status=403)
    done = run(env, "down", NS, "--no-rollback", "--retries", "0", "-o", "json")
    assert done.code == 1, str(done)
    assert done.json()["left_changed"] == []
    assert observe(shop, NS) == untouched(SPEC)


# ------------------------------------------------------------------------ audit


@pytest.mark.e2e
def test_an_unwritable_required_audit_changes_nothing(
    shop: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    audit = blocker / "audit.jsonl"  # its folder is a file: never writable
    done = run(env, "down", NS, "--audit-required", "--audit-file", str(audit), "-o", "json")

    assert done.code == 1, str(done)
    assert "nothing was changed" in done.stderr
    assert done.json()["total_scaled"] == 0
    assert observe(shop, NS) == untouched(SPEC)
    assert lease(shop, NS) is None


@pytest.mark.e2e
def test_a_run_refused_before_any_change_is_recorded(
    shop: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    shop.hang("PUT", "deployments", "alpha", seconds=2)
    live = Running(env, "down", NS, "-o", "json")  # holds the namespace while a write is held
    assert wait_until(lambda: lease(shop, NS) is not None or live.exited, 30)
    refused = run(env, "down", NS, "-o", "json")
    live.finish()

    assert refused.code == 1, str(refused)
    assert "another nsscale run is working" in refused.stderr
    records = {r["run_id"]: r for r in audit_lines(env)}
    mine = records[refused.json()["run_id"]]
    assert (mine["outcome"], mine["exit_code"], mine["total_scaled"]) == ("failed", 1, 0)
    assert "another nsscale run is working" in mine["errors"][0]
