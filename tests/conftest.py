"""The suite's shared fixtures, and how it runs in parallel (pytest-xdist, `-n auto`).

Tests that need exact timing run one at a time in the group `timing` (`--dist loadgroup` keeps
a group on one worker): those marked `@pytest.mark.timing`, and the fault matrix's (they use the
`matrix` fixture). The fault matrix's rows travel from the worker that logged them to the
controller in each test's report, so that the table printed at the end is whole.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from typer.testing import CliRunner

import nsscale.kube.cluster

if TYPE_CHECKING:  # imported by the fixtures: the plugin below must be imported by pytest first
    from tests.apiserver.server import ApiServer
    from tests.faultkit import MatrixLog

pytest_plugins = ["tests.apiserver.fixtures"]

TIMING = "timing"  # the marker, and the xdist group of the tests that need exact timing
MATRIX_ROWS = "fault matrix rows"  # the key of a test's matrix rows in its report
_TEST_MATRIX = pytest.StashKey["MatrixLog"]()


@pytest.fixture
def env(kubeconfig: Path, kubectl_bin: Path) -> dict[str, str]:
    """The environment to run the installed nsscale in, against the test's API server."""
    from tests.faultkit import nsscale_env

    return nsscale_env(kubeconfig, kubectl_bin)


@pytest.fixture
def shop(apiserver: ApiServer, request: pytest.FixtureRequest) -> ApiServer:
    """The API server with the namespace "shop" seeded as the test module's SPEC says
    ((kind, name) -> replicas)."""
    from tests.faultkit import seed
    from tests.kube import NS

    seed(apiserver, NS, request.module.SPEC)
    return apiserver


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Typer's runner for the command line in this process, kubectl found on PATH."""
    monkeypatch.setenv("COLUMNS", "200")  # pin Rich's width
    monkeypatch.delenv("NSSCALE_KUBECTL", raising=False)
    return CliRunner()


@pytest.fixture
def matrix(request: pytest.FixtureRequest) -> MatrixLog:
    """The test's cases of the fault matrix: judged against the contract, carried in the
    test's report to the process that prints the whole table after the tests."""
    from tests.faultkit import MatrixLog

    log: MatrixLog = request.node.stash.setdefault(_TEST_MATRIX, MatrixLog())
    return log


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The call's report carries the matrix rows its test logged, in plain values: an xdist
    worker sends reports to the controller, which prints the table."""
    report = yield
    log = item.stash.get(_TEST_MATRIX, None)
    if call.when == "call" and log is not None:
        report.user_properties.append((MATRIX_ROWS, log.plain_rows()))
    return report


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (its hook has no order)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that need exact timing share one group: one worker runs them one by one."""
    for item in items:
        if item.get_closest_marker(TIMING) or "matrix" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(TIMING))


class MatrixTable:
    """The fault matrix's rows, gathered from the tests' reports (of this process, or of the
    xdist workers), printed after the tests."""

    def __init__(self) -> None:
        from tests.faultkit import MatrixLog

        self.log = MatrixLog()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, rows in report.user_properties:
            if key == MATRIX_ROWS:
                self.log.gather(cast("list[Sequence[Any]]", rows))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.log.rows:
            terminalreporter.write_sep("=", "fault matrix")
            for line in self.log.render():
                terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(MatrixTable(), "fault-matrix-table")


@pytest.fixture(autouse=True)
def _private_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test audits into its own folder, never the user's ~/.local/state, and reads its
    own cluster's id (a process remembers it)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("NSSCALE_AUDIT_TABLE", raising=False)
    monkeypatch.setattr(nsscale.kube.cluster, "_cluster_ids", {})
