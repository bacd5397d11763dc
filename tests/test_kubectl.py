"""The executor's own edge cases, with kubectl faked at the process boundary."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsscale.errors import (
    ErrorKind,
    KubeconfigError,
    KubectlError,
    KubectlNotFound,
    KubectlOutputError,
    classify,
)
from nsscale.kube.cluster import KubectlCluster
from nsscale.kube.kubeconfig import kubeconfig_problem
from nsscale.kubectl import Kubectl, KubectlConfig, Runner
from tests.apiserver.server import ApiServer
from tests.faultkit import NSSCALE

# Real kubectl stderr, as measured in docs/kubectl-facts.md (v1.37 and v1.32).
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
    # one request of a batch (`replace -f -` of a List) cut by --request-timeout; kubectl goes on
    (
        'error: error when replacing "STDIN": Put "http://127.0.0.1:38409/apis/apps/v1/namespaces/'
        'shop/deployments/a?timeout=3s": net/http: request canceled (Client.Timeout exceeded '
        "while awaiting headers)",
        ErrorKind.TIMEOUT,
    ),
    (
        'error when replacing "STDIN": Put "http://127.0.0.1:38409/apis/apps/v1/namespaces/shop/'
        'deployments/a?timeout=3s": context deadline exceeded',
        ErrorKind.TIMEOUT,
    ),
    # the deadline fell while the server's 504 was being read (seen in a fresh-clone CI run)
    (
        'error when replacing "STDIN": error: unexpected error when reading response body. Please '
        "retry. Original error: net/http: request canceled (Client.Timeout or context "
        "cancellation while reading body)",
        ErrorKind.TIMEOUT,
    ),
    ("Error from server (InternalError): an error on the server", ErrorKind.SERVER_ERROR),
    ("Error from server (TooManyRequests): slow down", ErrorKind.SERVER_ERROR),
    ("error: something new", ErrorKind.OTHER),
]


def kubectl(**config: Any) -> Kubectl:
    return Kubectl(KubectlConfig("kubectl", **config))


def recording(timeouts: list[float]) -> Runner:
    """subprocess.run (faked by fp), noting the process timeout of every call."""

    def runner(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        timeouts.append(kwargs["timeout"])
        return subprocess.run(argv, **kwargs)

    return runner


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


@pytest.mark.parametrize("method", ["run", "json", "json_documents"])
def test_a_call_of_several_requests_gets_the_timeout_per_request(fp: Any, method: str) -> None:
    # --request-timeout bounds each request; the process, making 4 of them, gets 4 x 3 s
    fp.register(["kubectl", "replace", "-f", "-", fp.any()], stdout="{}", occurrences=2)
    timeouts: list[float] = []
    call = getattr(
        Kubectl(KubectlConfig("kubectl", timeout_s=3), runner=recording(timeouts)), method
    )
    call(["replace", "-f", "-"], "{}", requests=4)
    call(["replace", "-f", "-"], "{}")  # one request unless told
    assert timeouts == [12, 3]
    assert [argv[-1] for argv in fp.calls] == ["--request-timeout=3s"] * 2  # each request: 3 s


def test_a_call_of_several_requests_over_its_deadline_names_the_real_limit(fp: Any) -> None:
    def hang(process: Any) -> None:
        raise subprocess.TimeoutExpired("kubectl", 12)

    fp.register(["kubectl", "replace", fp.any()], callback=hang)
    with pytest.raises(KubectlError) as info:
        kubectl(timeout_s=3).run(["replace", "-f", "-"], "{}", requests=4)
    assert info.value.kind is ErrorKind.TIMEOUT
    assert info.value.killed
    assert str(info.value) == (
        "kubectl did not answer within 12s (--timeout 3s per request, 4 requests)"
    )


def test_a_batch_replace_allows_one_request_per_object(fp: Any) -> None:
    objects = [workload_manifest(f"w{i}") for i in range(5)]
    fp.register(["kubectl", "replace", fp.any()], stdout=_list(objects))
    timeouts: list[float] = []
    cluster = KubectlCluster(
        Kubectl(KubectlConfig("kubectl", timeout_s=2), runner=recording(timeouts))
    )
    assert [w.name for w in cluster.replace(objects)] == ["w0", "w1", "w2", "w3", "w4"]
    assert timeouts == [10]


def test_the_read_of_a_namespace_allows_one_list_request_per_kind(fp: Any) -> None:
    # `get deployments,statefulsets` sends two LIST requests, one after the other
    fp.register(["kubectl", "get", "deployments,statefulsets", fp.any()], stdout=_list([]))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    fp.register(["kubectl", "get", "namespace", "ns", fp.any()], stdout=json.dumps(namespace))
    timeouts: list[float] = []
    cluster = KubectlCluster(
        Kubectl(KubectlConfig("kubectl", timeout_s=2), runner=recording(timeouts))
    )
    assert cluster.list_workloads(["ns"]) == []
    assert list(cluster.namespaces(["ns"])) == ["ns"]
    assert timeouts == [4, 2]


@pytest.mark.e2e
def test_a_batch_on_a_slow_but_healthy_server_is_not_killed_midway(
    apiserver: ApiServer,
    kubeconfig: Path,
    kubectl_bin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every request takes 0.1 s (a slow admission webhook): well within --timeout 0.5 s, but the
    # 8 PUTs of one `replace -f -`, one after another, take longer than 0.5 s together.
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "cache"))
    for i in range(8):
        apiserver.add_deployment("ns", f"app-{i}", replicas=2)
    config = KubectlConfig(str(kubectl_bin), kubeconfig=str(kubeconfig), timeout_s=0.5)
    cluster = KubectlCluster(Kubectl(config))
    objects = [dict(w.manifest) for w in cluster.list_workloads(["ns"])]
    for obj in objects:
        obj["spec"] = {**obj["spec"], "replicas": 0}
    apiserver.latency = 0.1

    started = time.monotonic()
    written = cluster.replace(objects)
    took = time.monotonic() - started

    assert took > config.timeout_s  # before the fix, kubectl was killed here, mid-batch
    assert [(w.name, w.replicas) for w in written] == [(f"app-{i}", 0) for i in range(8)]
    assert [w["spec"]["replicas"] for w in apiserver.workloads("ns")] == [0] * 8


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
    assert (
        str(info.value)
        == f"cannot run kubectl at {str(tmp_path / 'kubectl')!r}: No such file or directory"
    )


def test_a_binary_that_cannot_be_executed_is_a_usage_error(tmp_path: Path) -> None:
    # executable, but neither a program nor a script with a #! line: execve fails with ENOEXEC
    fake = tmp_path / "kubectl"
    fake.write_text("kubectl, but not really\n")
    fake.chmod(0o755)
    with pytest.raises(KubectlNotFound) as info:
        Kubectl(KubectlConfig(str(fake))).run(["version"])
    assert info.value.exit_code == 2
    assert str(info.value) == f"cannot run kubectl at {str(fake)!r}: Exec format error"
    assert "--kubectl PATH" in info.value.hint


# What kubectl v1.37 prints for a --context its kubeconfig lacks: the wording depends on the
# command (measured against tests/apiserver).
MISSING_CONTEXT = [
    'error: context "nope" does not exist',
    'context "nope" does not exist\ncontext "nope" does not exist',
    "Error in configuration: context was not found for specified context: nope",
]


@pytest.mark.parametrize("stderr", MISSING_CONTEXT)
def test_a_missing_context_is_a_kubeconfig_error(fp: Any, stderr: str) -> None:
    fp.register(["kubectl", "get", fp.any()], stderr=stderr + "\n", returncode=1)
    with pytest.raises(KubeconfigError) as info:
        kubectl(context="nope").run(["get", "namespace", "shop"])
    err = info.value
    assert err.exit_code == 2
    assert err.context == "nope"
    assert str(err) == 'context "nope" is not in the kubeconfig'
    assert err.hint == "pick one that is: kubectl config get-contexts"
    assert err.stderr == stderr + "\n"


def test_a_missing_context_in_a_named_kubeconfig_says_which_file(fp: Any) -> None:
    stderr = 'error: context "nope" does not exist\n'
    fp.register(["kubectl", "get", fp.any()], stderr=stderr, returncode=1)
    with pytest.raises(KubeconfigError) as info:
        kubectl(context="nope", kubeconfig="/k/config").run(["get", "x"])
    assert str(info.value) == 'context "nope" is not in the kubeconfig /k/config'
    assert info.value.hint == "pick one that is: kubectl config get-contexts --kubeconfig=/k/config"


def test_a_kubeconfig_kubectl_cannot_load_is_a_kubeconfig_error(fp: Any) -> None:
    stderr = 'error: error loading config file "/k": read /k: is a directory\n'
    fp.register(["kubectl", "get", fp.any()], stderr=stderr, returncode=1)
    with pytest.raises(KubeconfigError) as info:
        kubectl(kubeconfig="/k").run(["get", "x"])
    assert str(info.value) == "cannot load kubeconfig /k: read /k: is a directory"
    assert (info.value.kubeconfig, info.value.exit_code) == ("/k", 2)


@pytest.mark.parametrize(
    "stderr",
    [
        "error: stat /elsewhere: no such file or directory",  # not the kubeconfig
        'Error from server (NotFound): configmaps "context" not found',
    ],
)
def test_other_failures_are_not_kubeconfig_errors(fp: Any, stderr: str) -> None:
    fp.register(["kubectl", "get", fp.any()], stderr=stderr + "\n", returncode=1)
    with pytest.raises(KubectlError):
        kubectl(kubeconfig="/k").run(["get", "x"])


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args",
    [
        ["get", "deployments,statefulsets", "-n", "shop", "-o", "json"],
        ["get", "namespace", "shop", "-o", "name"],
        ["replace", "-n", "shop", "-f", "-", "-o", "json"],
        ["create", "-f", "-", "--validate=false", "-o", "json"],
    ],
)
def test_the_real_kubectl_with_a_missing_context_is_a_kubeconfig_error(
    apiserver: ApiServer, kubeconfig: Path, kubectl_bin: Path, args: list[str]
) -> None:
    config = KubectlConfig(str(kubectl_bin), context="nope", kubeconfig=str(kubeconfig))
    with pytest.raises(KubeconfigError) as info:
        Kubectl(config).run(args, '{"apiVersion": "v1", "kind": "List", "items": []}')
    assert (info.value.context, info.value.exit_code) == ("nope", 2)
    assert "kubectl config get-contexts" in info.value.hint
    assert apiserver.requests == []  # kubectl never reached the server


@pytest.mark.e2e
def test_the_real_kubectl_with_a_missing_kubeconfig_is_a_kubeconfig_error(
    kubectl_bin: Path, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-kubeconfig")
    with pytest.raises(KubeconfigError) as info:
        Kubectl(KubectlConfig(str(kubectl_bin), kubeconfig=missing)).run(["get", "ns"])
    assert info.value.kubeconfig == missing
    assert str(info.value) == f"kubeconfig {missing} does not exist"
    assert info.value.exit_code == 2


def workload_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"},
        "spec": {"replicas": 0},
    }


def _list(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def test_resolve_prefers_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSSCALE_KUBECTL", "/env/kubectl")
    assert KubectlConfig.resolve("/opt/kubectl").binary == "/opt/kubectl"
    assert KubectlConfig.resolve().binary == "/env/kubectl"
    monkeypatch.delenv("NSSCALE_KUBECTL")
    assert KubectlConfig.resolve().binary == "kubectl"


# ------------------------------------------------------------------- no usable kubeconfig

NO_CURRENT_CONTEXT = """apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://10.0.0.1:6443
  name: prod
contexts:
- context:
    cluster: prod
    user: admin
  name: prod
current-context: ""
users:
- name: admin
  user:
    token: abc
"""
NO_SERVER = NO_CURRENT_CONTEXT.replace('current-context: ""', "current-context: prod").replace(
    "    server: https://10.0.0.1:6443\n", "    insecure-skip-tls-verify: true\n"
)


def _outside_a_pod(tmp_path: Path, kubectl_bin: Path, **extra: str) -> dict[str, str]:
    """nsscale's environment with no kubeconfig of the user's and no pod around it."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "NSSCALE"))}
    return {**keep, "HOME": str(home), "NSSCALE_KUBECTL": str(kubectl_bin), **extra}


@pytest.mark.e2e
@pytest.mark.parametrize("problem", ["KUBECONFIG missing", "no current context", "no server"])
def test_no_usable_kubeconfig_is_one_line_exit_2_without_retries(
    tmp_path: Path, kubectl_bin: Path, problem: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(NO_SERVER if problem == "no server" else NO_CURRENT_CONTEXT)
    args: list[str] = []
    if problem == "KUBECONFIG missing":
        config = tmp_path / "nonexistent"
        env = _outside_a_pod(tmp_path, kubectl_bin, KUBECONFIG=str(config))
    else:
        env = _outside_a_pod(tmp_path, kubectl_bin, KUBECONFIG=str(config))
    started = time.monotonic()
    proc = subprocess.run(
        [str(NSSCALE), "down", "shop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    seconds = time.monotonic() - started

    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""  # no table
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(config) in lines[0]
    assert "kubeconfig" in lines[0]
    assert "retrying" not in proc.stderr
    assert seconds < 10, f"{seconds:.1f}s: retried?"


def _viewed(kubectl_bin: Path, config: Path) -> Callable[[], Any]:
    """kubectl's own reading of the kubeconfig, as the executor asks for it."""

    def view() -> Any:
        argv = [str(kubectl_bin), "--kubeconfig", str(config), "config", "view", "-o", "json"]
        return json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)

    return view


def test_a_kubeconfig_with_a_server_is_usable(tmp_path: Path, kubectl_bin: Path) -> None:
    config = tmp_path / "config"
    config.write_text(NO_SERVER.replace("insecure-skip-tls-verify: true", "server: https://x:1"))
    view = _viewed(kubectl_bin, config)
    assert kubeconfig_problem(str(config), None, view) is None
    assert kubeconfig_problem(str(config), "elsewhere", view) is None  # kubectl names that one
    json_config = tmp_path / "config.json"  # what nsscale writes in a pod
    json_config.write_text(
        json.dumps(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:443"}}],
                "contexts": [{"name": "in", "context": {"cluster": "c"}}],
                "current-context": "in",
            }
        )
    )
    assert kubeconfig_problem(str(json_config), None, _viewed(kubectl_bin, json_config)) is None


def test_a_kubeconfig_in_flow_style_yaml_is_read_as_kubectl_reads_it(
    tmp_path: Path, kubectl_bin: Path
) -> None:
    """Any YAML kubectl reads (flow style, anchors) is judged alike: kubectl merges it."""
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "clusters: [{name: c, cluster: &c {insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: a, context: {cluster: c}}]\n"
    )
    problem = kubeconfig_problem(str(config), None, _viewed(kubectl_bin, config))
    assert problem is not None
    assert "the cluster 'c' of context 'a'" in str(problem)
    assert "has no server" in str(problem)
