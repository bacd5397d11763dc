from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by the fixture: the plugin below must be imported by pytest first
    from tests.faultkit import MatrixLog

pytest_plugins = ["tests.apiserver.fixtures"]

_MATRIX = pytest.StashKey["MatrixLog"]()


@pytest.fixture
def env(kubeconfig: Path, kubectl_bin: Path) -> dict[str, str]:
    """The environment to run the installed nsscale in, against the test's API server."""
    from tests.faultkit import nsscale_env

    return nsscale_env(kubeconfig, kubectl_bin)


@pytest.fixture(scope="session")
def matrix(request: pytest.FixtureRequest) -> MatrixLog:
    """The fault matrix: every case judged against the contract, printed after the tests."""
    from tests.faultkit import MatrixLog

    return request.config.stash.setdefault(_MATRIX, MatrixLog())


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    log = config.stash.get(_MATRIX, None)
    if log is not None and log.rows:
        terminalreporter.write_sep("=", "fault matrix")
        for line in log.render():
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _private_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test audits into its own folder, never the user's ~/.local/state."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("NSSCALE_AUDIT_TABLE", raising=False)
