"""The README is part of the product: every command and option must be documented there."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer

from nsscale.cli import app
from nsscale.commands.options import Shell

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(full name, command) of every command and sub-command under a Typer group."""
    found = []
    for name, command in getattr(group, "commands", {}).items():
        found.append((f"{prefix}{name}", command))
        found += commands(command, f"{prefix}{name} ")
    return found


def test_every_command_and_option_is_in_the_readme() -> None:
    found = commands(typer.main.get_command(app))
    assert {"down", "up", "scale", "status"} <= {name for name, _ in found}
    missing = []
    for name, command in found:
        if f"nsscale {name}" not in README:
            missing.append(f"nsscale {name}")
        for param in command.params:
            missing += [opt for opt in param.opts if opt.startswith("--") and opt not in README]
    assert not missing, f"not documented in README.md: {sorted(set(missing))}"


def test_the_readme_has_the_exit_code_table_and_the_two_setup_commands() -> None:
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in README
    assert "$ make demo" in README
    assert "$ make test" in README
    assert README.index("```console\n$ nsscale") < README.index("## Install")


def test_the_readme_shows_completion_for_every_shell_and_the_kubectl_plugin() -> None:
    missing = [f"nsscale completion {shell}" for shell in Shell]
    missing = [text for text in missing if text not in README]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = pyproject["project"]["scripts"]
    missing += [f"`{name}`" for name in scripts if f"`{name}`" not in README]
    if "$ kubectl nsscale " not in README:
        missing.append("$ kubectl nsscale ...")
    assert not missing, f"not shown in README.md: {missing}"
