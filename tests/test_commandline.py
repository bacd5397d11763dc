"""The command line's shape: every command lists every option it takes, each said once (the same
help, default and type wherever it appears), --kubectl read from the environment, shell
completion, and `kubectl nsscale` as a kubectl plugin (the installed console scripts, the real
kubectl)."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import nsscale
from nsscale import __version__
from nsscale.cli import app
from nsscale.commands.boundary import command
from nsscale.commands.options import CONTEXT, NAMESPACE, OUTPUT, TIMEOUT, Param, Parsed
from nsscale.engine.interrupts import Terminated
from nsscale.errors import (
    KubectlError,
    KubectlFailure,
    KubectlOutputError,
    NsscaleError,
    ProtectedNamespace,
)
from nsscale.schedule import ScheduleError
from nsscale.serve.answers import Refusal
from tests.apiserver.fixtures import kubectl_env
from tests.apiserver.server import ApiServer
from tests.kube import (
    KUBECTL,
    NS,
    listing,
    register_autoscalers,
    register_namespace,
    register_no_rollouts,
    workload,
)

BIN = Path(sys.executable).parent  # the virtualenv's bin: the installed console scripts
REINSTALL = "reinstall the package: .venv/bin/pip install -e . --no-deps"

CHOICE = [
    "--namespace-selector",
    "--all-or-nothing",
    "-l",
    "--selector",
    "--exclude",
    "--scale-resource",
]
RUN = [
    "--dry-run",
    "--server-dry-run",
    "--no-rollback",
    "--force",
    "--wait",
    "--wait-timeout",
    "--batch-size",
    "--parallel",
    "--retries",
    "--require-lock",
]
CONNECTION = ["--timeout", "--context", "--kubeconfig", "--kubectl"]
REPORTING = ["-o", "--output", "-v", "--verbose", "--log-file"]
AUDIT = ["--audit-table", "--audit-file", "--audit-required"]
# Every command's options, in the order --help lists them: the README's contract.
NS_FLAG = ["-n", "--namespace"]  # kubectl's habit, beside the namespaces named
OPTIONS = {
    "down": [
        *NS_FLAG,
        "--suspend-cronjobs",
        "--suspend-gitops",
        "--argocd-namespace",
        "--hold",
        *CHOICE,
        *RUN,
        *CONNECTION,
        *REPORTING,
        "--on-failure",
        "--events",
        *AUDIT,
    ],
    "up": [
        *NS_FLAG,
        "--argocd-namespace",
        "--hold",
        *CHOICE,
        *RUN,
        *CONNECTION,
        *REPORTING,
        "--on-failure",
        "--events",
        *AUDIT,
    ],
    "scale": [
        *NS_FLAG,
        "--replicas",
        "--suspend-gitops",
        "--argocd-namespace",
        *CHOICE,
        *RUN,
        *CONNECTION,
        *REPORTING,
        "--on-failure",
        "--events",
        *AUDIT,
    ],
    "recover": [
        *NS_FLAG,
        "--force",
        "--dry-run",
        "--retries",
        "--scale-resource",
        *CONNECTION,
        *REPORTING,
        *AUDIT,
    ],
    "status": [
        *NS_FLAG,
        "--namespace-selector",
        "-l",
        "--selector",
        "--scale-resource",
        *CONNECTION,
        *REPORTING,
    ],
    "reconcile": [
        *NS_FLAG,
        "--namespace-selector",
        "--uptime",
        "--downtime",
        "--timezone",
        "--at",
        "--grace-period",
        "--deployment-time-annotation",
        "--enforce",
        "--downtime-replicas",
        "--suspend-cronjobs",
        "--suspend-gitops",
        "--argocd-namespace",
        "-l",
        "--selector",
        "--exclude",
        "--scale-resource",
        "--dry-run",
        "--wait",
        "--wait-timeout",
        "--batch-size",
        "--parallel",
        "--retries",
        "--require-lock",
        *CONNECTION,
        *REPORTING,
        "--on-failure",
        "--events",
        *AUDIT,
    ],
    "history": [
        *NS_FLAG,
        "--since",
        "--limit",
        "--all-clusters",
        "--audit-table",
        "--audit-file",
        "--context",
        "--kubeconfig",
        "--kubectl",
        "-o",
        "--output",
    ],
}


def click_commands() -> dict[str, Any]:
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def help_options(runner: CliRunner, name: str) -> list[str]:
    """The options `nsscale NAME --help` lists, in order, each checked to carry a help text."""
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    many = name in ("down", "up", "scale", "status", "reconcile")
    argument = "[NAMESPACE...]" if many else "[NAMESPACE]"
    assert result.stdout.startswith(f"Usage: nsscale {name} [OPTIONS] {argument}")
    listed = []
    lines = result.stdout.split("Options:\n")[1].splitlines()
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if not re.match("  -", line):  # a help text's next line is indented further
            continue
        names, _, help_text = line.strip().partition("  ")
        if not help_text and not re.match("  -", after):  # a long name: its help goes below
            help_text = after
        flags = re.findall(r"--?[a-z][a-z-]*", names.split(" <")[0])
        assert help_text.strip(), f"{name} {flags}: no help text"
        listed += flags
    return listed


@pytest.mark.parametrize("name", OPTIONS)
def test_every_command_lists_every_option_it_takes_with_its_help(
    runner: CliRunner, name: str
) -> None:
    assert help_options(runner, name) == [*OPTIONS[name], "--help"]


DESCRIBED = ("opts", "secondary_opts", "required", "default", "envvar", "help", "count", "is_flag")


def test_a_shared_option_is_the_same_option_in_every_command() -> None:
    """Said once: the same help, default, type, envvar and bounds wherever it appears (recover's
    --force alone says what it does there)."""
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, cmd in click_commands().items():
        for param in cmd.params:
            if name == "recover" and param.name == "force":
                continue
            info = {attr: getattr(param, attr, None) for attr in DESCRIBED}
            info["type"] = (type(param.type), vars(param.type))  # its bounds, choices...
            first = seen.setdefault(param.name, (name, info))
            assert first[1] == info, f"{param.name}: {first[0]} and {name} differ"
    assert seen["timeout"][1]["help"].startswith("How long one API request may take")


def test_environment_variables_are_shown_where_an_option_reads_one(runner: CliRunner) -> None:
    shown = " ".join(runner.invoke(app, ["down", "--help"]).stdout.split())
    assert "Path to kubectl (default: kubectl on PATH). [env var: NSSCALE_KUBECTL]" in shown
    assert "[env var: NSSCALE_AUDIT_TABLE]" in shown
    envvars = {p.name: p.envvar for p in click_commands()["down"].params}
    # kubectl reads $KUBECONFIG itself: nsscale does not pass it a second time
    assert {k: v for k, v in envvars.items() if v} == {
        "kubectl": "NSSCALE_KUBECTL",
        "audit_table": "NSSCALE_AUDIT_TABLE",
    }


def status_argv(binary: str) -> list[str]:
    return [binary, "get", "deployments,statefulsets", "-n", NS, "-o", "json"]


def test_kubectl_from_the_environment(fp: Any, runner: CliRunner) -> None:
    fp.register([*status_argv("/opt/k/kubectl"), fp.any()], stdout=listing(workload("a", 3)))
    register_namespace(fp, "/opt/k/kubectl")
    register_autoscalers(fp, "/opt/k/kubectl")
    register_no_rollouts(fp, "/opt/k/kubectl")
    result = runner.invoke(app, ["status", NS], env={"NSSCALE_KUBECTL": "/opt/k/kubectl"})
    assert result.exit_code == 0, result.output
    assert [call[0] for call in fp.calls] == ["/opt/k/kubectl"] * 4


def test_the_kubectl_option_wins_over_the_environment(fp: Any, runner: CliRunner) -> None:
    fp.register([*status_argv("/opt/flag/kubectl"), fp.any()], stdout=listing(workload("a", 3)))
    register_namespace(fp, "/opt/flag/kubectl")
    register_autoscalers(fp, "/opt/flag/kubectl")
    register_no_rollouts(fp, "/opt/flag/kubectl")
    result = runner.invoke(
        app,
        ["status", NS, "--kubectl", "/opt/flag/kubectl"],
        env={"NSSCALE_KUBECTL": "/opt/env/kubectl"},
    )
    assert result.exit_code == 0, result.output
    assert [call[0] for call in fp.calls] == ["/opt/flag/kubectl"] * 4


@pytest.mark.parametrize("value", [None, ""])
def test_without_the_option_or_the_variable_kubectl_is_the_one_on_path(
    fp: Any, runner: CliRunner, value: str | None
) -> None:
    fp.register([*status_argv(KUBECTL), fp.any()], stdout=listing(workload("a", 3)))
    register_namespace(fp)
    register_autoscalers(fp)
    register_no_rollouts(fp)
    result = runner.invoke(app, ["status", NS], env={"NSSCALE_KUBECTL": value})
    assert result.exit_code == 0, result.output
    assert [call[0] for call in fp.calls] == [KUBECTL] * 4


def test_a_command_takes_each_parameter_once_and_reads_those_it_lacks_as_their_default() -> None:
    with pytest.raises(ValueError, match="duplicate parameter name: 'timeout'"):
        command([NAMESPACE, TIMEOUT, TIMEOUT], lambda parsed: None, "")
    parsed = Parsed({"namespace": NS})
    assert (parsed[NAMESPACE], parsed[TIMEOUT], parsed[CONTEXT]) == (NS, 30.0, None)
    with pytest.raises(KeyError, match="replicas is required"):
        parsed[Param("replicas", int)]


@pytest.mark.parametrize(
    ("option", "examples"), [("--hold", "(90m, 4h)"), ("--wait-timeout", "(90s, 10m, 1h)")]
)
def test_a_bad_duration_is_refused_with_the_examples_of_its_own_option(
    runner: CliRunner, option: str, examples: str
) -> None:
    result = runner.invoke(app, ["up", NS, option, "5x"])
    assert result.exit_code == 2, result.output
    assert f"'5x' is not a duration: use a number and s, m or h {examples}" in result.stderr


def test_a_parameter_says_its_type_for_mypy_and_click_alike() -> None:
    assert TIMEOUT.annotation.__origin__ is float  # Param[float]: what Click converts to
    with pytest.raises(TypeError, match=r"say the type of replicas: Param\[TYPE\]"):
        command([Param("replicas", typer.Option("--replicas"))], lambda parsed: None, "")


def boundary_app(raised: BaseException) -> typer.Typer:
    """An app of one command whose body raises `raised`, inside the command line's boundary."""

    def body(parsed: Parsed) -> None:
        raise raised

    one = typer.Typer()
    one.command("one")(
        command([NAMESPACE, OUTPUT], body, "", lambda p: {"namespace": p[NAMESPACE]})
    )
    one.command("two")(command([NAMESPACE], lambda parsed: 3, ""))  # two commands: named
    return one


@pytest.mark.parametrize("output", ["table", "json"])
def test_the_error_boundary_says_an_error_once_and_exits_with_its_code(
    runner: CliRunner, output: str
) -> None:
    raised = ProtectedNamespace("kube-system is protected", "pick another namespace")
    result = runner.invoke(boundary_app(raised), ["one", NS, "-o", output])
    assert result.exit_code == 2, result.output
    assert result.stderr == "error: kube-system is protected\n  pick another namespace\n"
    if output == "json":
        document = {"success": False, "errors": ["kube-system is protected"], "namespace": NS}
        assert json.loads(result.stdout) == document | {"exit_code": 2}
    else:
        assert result.stdout == ""
    assert runner.invoke(boundary_app(raised), ["two", NS]).exit_code == 3  # the body's code


@pytest.mark.parametrize(("raised", "code"), [(KeyboardInterrupt(), 130), (Terminated(), 143)])
def test_the_error_boundary_ends_a_command_a_signal_stopped_before_any_change(
    runner: CliRunner, raised: KeyboardInterrupt, code: int
) -> None:
    result = runner.invoke(boundary_app(raised), ["one", NS, "-o", "json"])
    assert result.exit_code == code, result.output
    assert result.stderr == "interrupted: nothing was changed\n"
    name = {130: "SIGINT", 143: "SIGTERM"}[code]
    document = {"success": False, "namespace": NS, "errors": [f"interrupted by {name}"]}
    assert json.loads(result.stdout) == document | {"exit_code": code}


def test_every_error_class_is_in_errors_py_under_nsscale_error() -> None:
    """Those outside are no errors of a command: signals, an HTTP answer, a parse that the
    schedule's caller turns into a UsageError."""
    not_errors = (KeyboardInterrupt, Refusal, ScheduleError)
    for module in pkgutil.walk_packages(nsscale.__path__, "nsscale."):
        if module.name == "nsscale.__main__":  # runs the command line
            continue
        loaded = importlib.import_module(module.name)
        for name, cls in vars(loaded).items():
            if not isinstance(cls, type) or not issubclass(cls, BaseException):
                continue
            if cls.__module__ == module.name and module.name != "nsscale.errors":
                assert issubclass(cls, not_errors), f"{module.name}.{name} belongs in errors.py"
            if cls.__module__ == "nsscale.errors":
                assert issubclass(cls, NsscaleError), name
    assert KubectlError.__bases__ == KubectlOutputError.__bases__ == (KubectlFailure,)


# ------------------------------------------------------------------------------- completion


@pytest.mark.parametrize(
    ("shell", "marks"),
    [
        ("bash", ["complete -o default -F _nsscale_completion nsscale", "complete_bash"]),
        ("zsh", ["#compdef nsscale", "compdef _nsscale_completion nsscale", "complete_zsh"]),
        ("fish", ["complete --command nsscale", "complete_fish"]),
    ],
)
def test_completion_prints_the_script_of_each_shell(
    runner: CliRunner, shell: str, marks: list[str]
) -> None:
    result = runner.invoke(app, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    for mark in [*marks, "_NSSCALE_COMPLETE="]:
        assert mark in result.stdout


@pytest.mark.parametrize("args", [["completion", "tcsh"], ["completion"]])
def test_completion_of_an_unknown_or_no_shell_is_a_usage_error(
    runner: CliRunner, args: list[str]
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "bash" in result.stderr
    assert result.stdout == ""


def installed(name: str) -> Path:
    script = BIN / name
    if not script.is_file():
        pytest.fail(f"{script} is missing: {REINSTALL}", pytrace=False)
    return script


def complete(protocol: dict[str, str]) -> list[str]:
    """What the installed nsscale answers a shell asking for completions."""
    proc = subprocess.run(
        [str(installed("nsscale"))],
        env={**os.environ, **protocol},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_the_installed_nsscale_answers_each_shells_completion_request() -> None:
    bash = {"_NSSCALE_COMPLETE": "complete_bash", "COMP_WORDS": "nsscale do", "COMP_CWORD": "1"}
    assert complete(bash) == ["down"]
    after_o = {**bash, "COMP_WORDS": "nsscale down shop -o ", "COMP_CWORD": "4"}
    assert complete(after_o) == ["table", "json"]
    zsh = {"_NSSCALE_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "nsscale st"}
    assert "status" in "".join(complete(zsh))
    fish = {
        "_NSSCALE_COMPLETE": "complete_fish",
        "_TYPER_COMPLETE_ARGS": "nsscale rec",
        "_TYPER_COMPLETE_FISH_ACTION": "get-args",
    }
    assert [line.split("\t")[0] for line in complete(fish)] == ["recover", "reconcile"]


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        ("nsscale do", ["down"]),
        ("nsscale s", ["scale", "serve", "status"]),
        ("nsscale down shop --audit-r", ["--audit-required"]),
        ("nsscale completion z", ["zsh"]),
    ],
)
def test_bash_completes_through_the_printed_script(words: str, offered: list[str]) -> None:
    """The script `nsscale completion bash` prints, sourced in bash, completing as on a Tab."""
    bash = shutil.which("bash")
    assert bash, "bash is needed to test its completion"
    cword = len(words.split()) - 1
    program = (
        "source <(nsscale completion bash)\n"
        f"COMP_WORDS=({words}); COMP_CWORD={cword}\n"
        "_nsscale_completion nsscale\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    installed("nsscale")
    proc = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", program],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == offered


# ------------------------------------------------------------------------- the kubectl plugin


def run_kubectl_plugin(
    kubectl_bin: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real kubectl, finding `kubectl-nsscale` on PATH as it finds any plugin."""
    installed("kubectl-nsscale")
    environment = {**(env or os.environ), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(kubectl_bin), *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_kubectl_lists_the_plugin_and_runs_it(kubectl_bin: Path) -> None:
    listed = run_kubectl_plugin(kubectl_bin, "plugin", "list")
    assert str(BIN / "kubectl-nsscale") in listed.stdout.splitlines(), listed.stdout
    warnings = [line for line in listed.stderr.splitlines() if "kubectl-nsscale" in line]
    assert not warnings  # not overshadowed by another kubectl-nsscale earlier on PATH

    version = run_kubectl_plugin(kubectl_bin, "nsscale", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"nsscale {__version__}\n"


def test_the_plugin_says_kubectl_nsscale_in_its_usage(kubectl_bin: Path) -> None:
    missing = run_kubectl_plugin(kubectl_bin, "nsscale", "scale", NS)
    assert missing.returncode == 2
    assert missing.stderr.startswith("Usage: kubectl nsscale scale [OPTIONS] [NAMESPACE...]\n")
    assert "Try 'kubectl nsscale scale --help' for help." in missing.stderr

    helped = run_kubectl_plugin(kubectl_bin, "nsscale", "--help")
    assert helped.stdout.startswith("Usage: kubectl nsscale [OPTIONS] COMMAND [ARGS]...")


@pytest.mark.e2e
def test_kubectl_nsscale_down_scales_the_namespace(
    apiserver: ApiServer, kubeconfig: Path, kubectl_bin: Path
) -> None:
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=3)
    env = {**kubectl_env(kubeconfig), "COLUMNS": "200"}
    env.pop("NSSCALE_KUBECTL", None)  # the plugin's kubectl is the one on PATH, as kubectl's

    proc = run_kubectl_plugin(kubectl_bin, "nsscale", "down", NS, "-o", "json", env=env)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["total_scaled"] == 1
    assert [w["spec"]["replicas"] for w in apiserver.workloads(NS)] == [0]
