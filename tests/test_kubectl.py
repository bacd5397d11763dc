"""The executor's own edge cases, with kubectl faked at the process boundary."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from nsscale.errors import ErrorKind, KubectlError, KubectlNotFound, KubectlOutputError, classify
from nsscale.kubectl import Kubectl, KubectlConfig

# Real kubectl stderr, as measured in KUBECTL-FACTS.md (v1.37 and v1.32).
STDERR_KINDS = [
    ('Error from server (NotFound): namespaces "x" not found', ErrorKind.NOT_FOUND),
    ('error: no objects passed to scale deployments.apps "missing" not found', ErrorKind.NOT_FOUND),
    (
        'Error from server (Forbidden): deployments.apps "a" is forbidden: User "viewer" cannot '
        'patch resource "deployments/scale" in API group "apps" in the namespace "ns"',
        ErrorKind.FORBIDDEN,
    ),
    (
        'Error from server (Conflict): Operation cannot be fulfilled on deployments.apps "a": the '
        "object has been modified; please apply your changes to the latest version and try again",
        ErrorKind.CONFLICT,
    ),
    ("error: Expected replicas to be 5, was 1", ErrorKind.CONFLICT),
    (
        'The Deployment "a" is invalid: spec.replicas: Invalid value: -1: must be greater than or '
        "equal to 0",
        ErrorKind.INVALID,
    ),
    ("error: You must be logged in to the server (Unauthorized)", ErrorKind.UNAUTHORIZED),
    (
        "E1128 10:00:00.000 memcache.go:265] couldn't get current server API group list: "
        "connection refused\nThe connection to the server 127.0.0.1:1 was refused - did you "
        "specify the right host or port?",
        ErrorKind.UNREACHABLE,
    ),
    ("Unable to connect to the server: context deadline exceeded", ErrorKind.UNREACHABLE),
    ("Error from server (InternalError): an error on the server", ErrorKind.SERVER_ERROR),
    ("Error from server (TooManyRequests): slow down", ErrorKind.SERVER_ERROR),
    ("error: something new", ErrorKind.OTHER),
]


def kubectl(**config: Any) -> Kubectl:
    return Kubectl(KubectlConfig("kubectl", **config))


@pytest.mark.parametrize(("stderr", "kind"), STDERR_KINDS)
def test_errors_are_classified_by_the_stable_parts(fp: Any, stderr: str, kind: ErrorKind) -> None:
    assert classify(stderr) is kind
    fp.register(["kubectl", "get", "x", fp.any()], stderr=stderr + "\n", returncode=1)
    with pytest.raises(KubectlError) as info:
        kubectl().run(["get", "x"])
    err = info.value
    assert err.kind is kind
    assert err.returncode == 1
    assert err.stderr == stderr + "\n"
    assert err.argv[:3] == ("kubectl", "get", "x")
    assert err.duration_s >= 0
    assert str(err) == stderr.splitlines()[-1]  # the last line: after klog noise


def test_argv_forwards_context_kubeconfig_and_request_timeout(fp: Any) -> None:
    fp.register(
        ["kubectl", "version", "--context=prod", "--kubeconfig=/k", "--request-timeout=2.5s"]
    )
    result = kubectl(context="prod", kubeconfig="/k", timeout_s=2.5).run(["version"])
    assert result.returncode == 0
    assert result.argv[-1] == "--request-timeout=2.5s"


def test_a_call_over_its_timeout_is_a_timeout_error_naming_the_limit(fp: Any) -> None:
    def hang(process: Any) -> None:
        raise subprocess.TimeoutExpired("kubectl", 3)

    fp.register(["kubectl", "get", fp.any()], callback=hang)
    with pytest.raises(KubectlError) as info:
        kubectl(timeout_s=3).run(["get", "pods"])
    assert info.value.kind is ErrorKind.TIMEOUT
    assert info.value.returncode is None
    assert str(info.value) == "kubectl did not answer within 3s (--timeout)"
    assert info.value.kind.transient


def test_the_child_gets_its_own_session_and_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def runner(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.update(kwargs, argv=argv)
        return subprocess.CompletedProcess(argv, 0, "{}", "")

    Kubectl(KubectlConfig("kubectl", timeout_s=4), runner=runner).run(["get", "x"])
    assert seen["timeout"] == 4
    assert seen["start_new_session"] is True  # a terminal's Ctrl-C must not kill it mid-undo
    assert "shell" not in seen
    assert isinstance(seen["argv"], list)


@pytest.mark.parametrize("stdout", ["", "not json", "[1, 2]", '{"truncated": '])
def test_output_that_is_not_a_json_object_is_an_output_error(fp: Any, stdout: str) -> None:
    fp.register(["kubectl", "get", "x", "-o", "json", fp.any()], stdout=stdout)
    with pytest.raises(KubectlOutputError):
        kubectl().json(["get", "x"])


def test_output_that_is_not_utf8_is_an_output_error(tmp_path: Path) -> None:
    # a real process, printing invalid UTF-8 to the pipe; read with replacement characters, the
    # object would be written back changed (issue 5: a clear error, nothing changed)
    fake = tmp_path / "kubectl"
    fake.write_text('#!/bin/sh\nprintf \'{"a": "\\377"}\'\n')
    fake.chmod(0o755)
    with pytest.raises(KubectlOutputError, match="not UTF-8"):
        Kubectl(KubectlConfig(str(fake))).json(["get", "x"])


def test_stderr_that_is_not_utf8_is_read_with_replacements(tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\nprintf 'error: caf\\351' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(KubectlError) as info:
        Kubectl(KubectlConfig(str(fake))).run(["get", "x"])
    assert str(info.value) == "error: caf\ufffd"


def test_a_large_timeout_is_written_without_an_exponent(fp: Any) -> None:
    fp.register(["kubectl", "version", "--request-timeout=1000000s"])
    kubectl(timeout_s=1e6).run(["version"])


def test_missing_binary_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(KubectlNotFound) as info:
        Kubectl(KubectlConfig(str(tmp_path / "kubectl"))).run(["version"])
    assert info.value.exit_code == 2


def test_resolve_prefers_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSSCALE_KUBECTL", "/env/kubectl")
    assert KubectlConfig.resolve("/opt/kubectl").binary == "/opt/kubectl"
    assert KubectlConfig.resolve().binary == "/env/kubectl"
    monkeypatch.delenv("NSSCALE_KUBECTL")
    assert KubectlConfig.resolve().binary == "kubectl"
