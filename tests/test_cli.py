"""The command line through Typer's CliRunner, kubectl faked at the process boundary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nsscale import __version__
from nsscale.cli import app
from tests.apiserver.fixtures import kubectl_env
from tests.apiserver.server import ApiServer
from tests.columns import plain_rows
from tests.faultkit import NSSCALE
from tests.kube import (
    KUBECTL,
    NS,
    REVIEW_ARGV,
    SEED_KEYS,
    Script,
    moved,
    namespace_object,
    register_autoscalers,
    register_no_rollouts,
    workload,
)

A, B = workload("a", 3, 10), workload("b", 2, 11, kind="StatefulSet")
ERR_500 = 'Error from server (InternalError): error when replacing "STDIN": boom\n'


def nsscale(runner: CliRunner, *args: str) -> Any:
    # no retries: a faked 500 is meant to fail
    retries = ["--retries", "0"] if args[0] in ("down", "up", "scale") else []
    return runner.invoke(app, [*args, *retries, "--kubectl", KUBECTL, "--timeout", "5"])


def rows(table: str) -> list[list[str]]:
    """The body rows of the tables printed (not on a terminal: plain columns), as lists of
    cells."""
    return plain_rows(table)


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"nsscale {__version__}\n"


def test_down_succeeds_with_exit_0_and_a_table(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get(A, B, workload("idle", 0))
    script.guards()
    script.replace(moved(A, 0, 20, 3, 0), moved(B, 0, 21, 2, 0))

    result = nsscale(runner, "down", NS)

    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == [
        ["deployment", "a", "3 → 0", "scaled", ""],
        ["statefulset", "b", "2 → 0", "scaled", ""],
        ["deployment", "idle", "0", "skipped", "already at 0"],
    ]
    assert "shop: 2 scaled, 1 skipped." in result.stdout
    assert result.stderr == ""


def test_json_output_carries_every_seed_key(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get(A, B)
    script.guards()
    script.replace(moved(A, 0, 20, 3, 0), moved(B, 0, 21, 2, 0))

    result = nsscale(runner, "down", NS, "--output", "json")

    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # exactly one document
    assert set(doc) >= SEED_KEYS | {
        "namespace",
        "operation",
        "dry_run",
        "skipped_resources",
        "duration_s",
    }
    assert doc["scaled_resources"][1] == {
        "type": "statefulset",
        "name": "b",
        "from_replicas": 2,
        "to_replicas": 0,
        "status": "success",
    }
    assert (doc["total_scaled"], doc["total_failed"]) == (2, 0)
    assert (doc["namespace"], doc["operation"], doc["dry_run"]) == (NS, "down", False)


def test_json_on_failure_and_exit_1_when_rolled_back(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get(A, B)
    script.guards()
    script.replace(returncode=1, stderr=ERR_500)
    script.get(moved(A, 0, 20, 3, 0), B)
    script.replace(moved(A, 3, 22, None, None))
    script.get(moved(A, 3, 22, None, None), B)

    result = nsscale(runner, "down", NS, "-o", "json", "--batch-size", "2")

    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert set(doc) >= SEED_KEYS
    assert doc["rollback_performed"] is True
    assert doc["rollback_success_count"] == 1


def test_rollback_failure_exits_3_and_names_what_is_left(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get(A, B)
    script.guards()
    script.replace(moved(A, 0, 20, 3, 0))
    script.replace(returncode=1, stderr=ERR_500)
    script.get(moved(A, 0, 20, 3, 0), B)
    script.replace(
        returncode=1,
        stderr='Error from server (Forbidden): deployments.apps "a" is '
        'forbidden: User "x" cannot update resource "deployments"\n',
    )
    script.get(moved(A, 0, 20, 3, 0), B)
    script.get(moved(A, 0, 20, 3, 0), B)  # the rollback's verification read
    script.retire()

    result = nsscale(runner, "down", NS, "--batch-size", "1")

    assert result.exit_code == 3, result.output
    assert "PARTLY CHANGED" in result.stdout
    assert "deployment/a (at 0)" in result.stdout
    assert "[ERROR] Failed to rollback deployment/a: Error from server (Forbidden)" in result.stderr


def test_no_rollback_with_a_failure_exits_3(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get(A, B)
    script.guards()
    script.replace(returncode=1, stderr=ERR_500)
    script.get(moved(A, 0, 20, 3, 0), B)
    script.get(moved(A, 0, 20, 3, 0), B)  # the verification
    script.retire()

    result = nsscale(runner, "down", NS, "--no-rollback")

    assert result.exit_code == 3, result.output


def test_dry_run_makes_no_mutating_call(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get(A, B, workload("idle", 0))  # only the read is registered: a write would fail

    result = nsscale(runner, "down", NS, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would scale" in result.stdout
    assert "Dry run: 2 would be scaled, 1 skipped in shop; nothing changed." in result.stdout
    # the workloads, the Namespace, KEDA, Argo Rollouts
    assert [c[1] for c in fp.calls] == ["get"] * 4


def test_dry_run_json_marks_planned_changes(fp: Any, runner: CliRunner) -> None:
    Script(fp).get(A)
    result = nsscale(runner, "down", NS, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True
    assert doc["scaled_resources"][0]["status"] == "dry_run"


def test_empty_namespace_is_a_success_with_nothing_to_do(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get()
    script.review()  # asked as the run starts, for the audit record's kubectl identity
    script.no_mark()

    result = nsscale(runner, "down", NS)

    assert result.exit_code == 0, result.output
    assert "Nothing to do in shop." in result.stdout


def test_missing_namespace_exits_2_with_json(fp: Any, runner: CliRunner) -> None:
    script = Script(fp, namespace_exists=False)
    script.get()

    result = nsscale(runner, "down", NS, "-o", "json")

    assert result.exit_code == 2
    assert 'error: namespace "shop" not found' in result.stderr
    doc = json.loads(result.stdout)
    assert doc["success"] is False
    assert doc["exit_code"] == 2
    assert doc["errors"] == ['namespace "shop" not found']


@pytest.mark.parametrize("name", ["Shop", "a_b", "a-", "x" * 64])
def test_bad_namespace_exits_2_before_any_kubectl_call(
    fp: Any, runner: CliRunner, name: str
) -> None:
    result = nsscale(runner, "down", name)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: invalid namespace {name!r}")
    assert "Traceback" not in result.output
    assert list(fp.calls) == []


def test_kubectl_missing_exits_2_saying_how_to_point_at_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["down", NS, "--kubectl", str(tmp_path / "kubectl")])
    assert result.exit_code == 2
    assert "error: cannot run kubectl at" in result.stderr
    assert "--kubectl PATH or $NSSCALE_KUBECTL" in result.stderr


def test_kubectl_path_from_the_environment(
    fp: Any, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NSSCALE_KUBECTL", "/opt/k/kubectl")
    kubeconfig = tmp_path / "kc"
    kubeconfig.touch()  # nsscale checks it exists; kubectl, faked here, would read it
    argv = [
        "/opt/k/kubectl",
        "get",
        "deployments,statefulsets",
        "-n",
        NS,
        "-o",
        "json",
        "--context=prod",
        f"--kubeconfig={kubeconfig}",
        "--request-timeout=7s",
    ]
    fp.register(argv, stdout=json.dumps({"kind": "List", "items": [A]}))
    read_namespace = ["/opt/k/kubectl", "get", "namespace", NS, "-o", "json", *argv[-3:]]
    fp.register(read_namespace, stdout=namespace_object())
    register_autoscalers(fp, "/opt/k/kubectl")
    register_no_rollouts(fp, "/opt/k/kubectl")

    result = runner.invoke(
        app,
        ["status", NS, "--context", "prod", "--kubeconfig", str(kubeconfig), "--timeout", "7"],
    )

    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == [["deployment", "a", "3", "3", "-", "-"]]


def test_forbidden_discovery_exits_1_naming_the_permission(fp: Any, runner: CliRunner) -> None:
    forbidden = (
        'Error from server (Forbidden): deployments.apps is forbidden: User "viewer" '
        'cannot list resource "deployments" in API group "apps" in the namespace "shop"\n'
    )
    script = Script(fp)
    script.get(returncode=1, stderr=forbidden)
    script.review()  # asked as the run starts, for the audit record's kubectl identity

    result = nsscale(runner, "down", NS)

    assert result.exit_code == 1, result.output
    assert 'cannot list resource "deployments"' in result.stderr
    assert "ask for that permission" in result.stderr


def test_unparseable_discovery_exits_1_with_a_clear_error(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get(stdout="<html>proxy error</html>")
    script.review()
    result = nsscale(runner, "down", NS)
    assert result.exit_code == 1
    assert "error: could not read the output of `kubectl get deployments,statefulsets" in (
        result.stderr
    )


def test_status_shows_recorded_originals(fp: Any, runner: CliRunner) -> None:
    Script(fp).get(moved(A, 0, 20, 3, 0), B)
    register_autoscalers(fp)
    result = nsscale(runner, "status", NS, "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["workloads"][0] == {
        "type": "deployment",
        "name": "a",
        "replicas": 0,
        "ready_replicas": 0,
        "original_replicas": 3,
        "scaled_replicas": 0,
        "hpa": None,
        "gitops_owner": None,
    }


def test_a_denied_update_fails_before_any_change(fp: Any, runner: CliRunner) -> None:
    script = Script(fp)
    script.get(A, B)
    script.review(denied=("statefulsets.apps",))

    result = nsscale(runner, "down", NS, "-o", "json")

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        "error: not allowed to update statefulsets.apps in namespace shop: nothing changed\n"
    )
    assert json.loads(result.stdout)["total_scaled"] == 0
    # the reads (the cluster's id among them) and the review, no write
    assert sorted(c[1] for c in fp.calls) == ["create", "get", "get", "get", "get", "get"]


def test_an_unanswered_review_is_a_warning_and_the_guarded_writes_go_on(
    fp: Any, runner: CliRunner
) -> None:
    script = Script(fp)
    script.get(A)
    fp.register(
        [*REVIEW_ARGV, fp.any()],
        returncode=1,
        stderr="Error from server (Forbidden): selfsubjectaccessreviews.authorization.k8s.io "
        'is forbidden: User "bot" cannot create resource "selfsubjectaccessreviews"\n',
    )
    script.mark()
    script.replace(moved(A, 0, 20, 3, 0))

    result = nsscale(runner, "down", NS)

    assert result.exit_code == 0, result.output
    assert "[WARNING] could not check the permission to update deployments.apps: " in result.stderr
    assert script.names() == ["a"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["scale", NS], "Missing option '--replicas'"),
        (["scale", NS, "--replicas", "-1"], "Invalid value for '--replicas'"),
        (["scale", NS, "--replicas", "2147483648"], "Invalid value for '--replicas'"),
        (["down"], "no namespace: name one or more, or pick them with --namespace-selector"),
    ],
)
def test_usage_errors_exit_2(fp: Any, runner: CliRunner, args: list[str], error: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert error in result.stderr
    assert "Traceback" not in result.output
    assert list(fp.calls) == []  # refused before any kubectl call


def test_replicas_up_to_the_api_maximum_are_accepted(fp: Any, runner: CliRunner) -> None:
    Script(fp).get(A)  # a dry run: only the reads are registered
    register_autoscalers(fp)  # scale to N > 0: an HPA would override it
    result = nsscale(runner, "scale", NS, "--replicas", "2147483647", "--dry-run")
    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == [["deployment", "a", "3 → 2147483647", "would scale", ""]]


def lines(text: str) -> list[str]:
    return text.strip().splitlines()


@pytest.mark.parametrize("command", [["down", NS], ["status", NS], ["up", NS]])
def test_a_missing_kubeconfig_exits_2_before_any_kubectl_call(
    fp: Any, runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    result = nsscale(runner, *command, "--kubeconfig", str(missing))
    assert result.exit_code == 2, result.output
    assert lines(result.stderr) == [
        f"error: kubeconfig {missing} does not exist",
        "  check the --kubeconfig path, or leave it out to use $KUBECONFIG or ~/.kube/config",
    ]
    assert list(fp.calls) == []


def test_a_kubeconfig_that_is_a_folder_exits_2(fp: Any, runner: CliRunner, tmp_path: Path) -> None:
    result = nsscale(runner, "down", NS, "--kubeconfig", str(tmp_path), "-o", "json")
    assert result.exit_code == 2, result.output
    assert lines(result.stderr)[0] == f"error: kubeconfig {tmp_path} is not a file"
    assert json.loads(result.stdout)["exit_code"] == 2
    assert list(fp.calls) == []


def test_an_unknown_context_exits_2_naming_it(fp: Any, runner: CliRunner) -> None:
    Script(fp).get(returncode=1, stderr='error: context "nope" does not exist\n')
    fp.register([*REVIEW_ARGV, fp.any()], returncode=1, stderr='context "nope" does not exist\n')

    result = nsscale(runner, "down", NS, "--context", "nope")

    assert result.exit_code == 2, result.output
    assert lines(result.stderr) == [
        'error: context "nope" is not in the kubeconfig',
        "  pick one that is: kubectl config get-contexts",
    ]
    assert "replace" not in [call[1] for call in fp.calls]  # no write


@pytest.mark.e2e
def test_an_unknown_context_with_the_real_kubectl_exits_2_and_changes_nothing(
    apiserver: ApiServer, kubeconfig: Path, kubectl_bin: Path
) -> None:
    apiserver.add_deployment(NS, "web", replicas=3)
    before = apiserver.workloads(NS)
    proc = subprocess.run(
        [str(NSSCALE), "down", NS, "--context", "nope", "--kubeconfig", str(kubeconfig)],
        env={**kubectl_env(kubeconfig), "NSSCALE_KUBECTL": str(kubectl_bin)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert lines(proc.stderr) == [
        f'error: context "nope" is not in the kubeconfig {kubeconfig}',
        f"  pick one that is: kubectl config get-contexts --kubeconfig={kubeconfig}",
    ]
    assert apiserver.requests == []  # kubectl never reached the server
    assert apiserver.workloads(NS) == before


def test_a_kubectl_that_is_not_a_program_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text("not a program, and no #! line\n")
    fake.chmod(0o755)
    result = runner.invoke(app, ["down", NS, "--kubectl", str(fake)])
    assert result.exit_code == 2, result.output
    assert lines(result.stderr) == [
        f"error: cannot run kubectl at {str(fake)!r}: Exec format error",
        "  install kubectl, or point nsscale at it with --kubectl PATH or $NSSCALE_KUBECTL",
    ]
    assert "Traceback" not in result.output


def test_log_file_and_verbose(fp: Any, runner: CliRunner, tmp_path: Path) -> None:
    script = Script(fp)
    script.get(A)
    script.guards()
    script.replace(moved(A, 0, 20, 3, 0))
    log_file = tmp_path / "nsscale.log"

    result = nsscale(runner, "down", NS, "-vv", "--log-file", str(log_file))

    assert result.exit_code == 0, result.output
    assert "[DEBUG] kubectl: kubectl replace -f - -o json" in result.stderr
    assert "kubectl exited 0 in" in log_file.read_text()


def test_unwritable_log_file_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = nsscale(runner, "down", NS, "--log-file", str(tmp_path / "no" / "such" / "x.log"))
    assert result.exit_code == 2
    assert "cannot write the log file" in result.stderr
