from pathlib import Path

import pytest

pytest_plugins = ["tests.apiserver.fixtures"]


@pytest.fixture(autouse=True)
def _private_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test audits into its own folder, never the user's ~/.local/state."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("NSSCALE_AUDIT_TABLE", raising=False)
