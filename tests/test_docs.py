"""The README is part of the product: every command and option must be documented there."""

from __future__ import annotations

import re
import subprocess
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


def tracked_files() -> list[Path]:
    """The files of the repository: git's list in a checkout, else the tree without caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False, timeout=30
    )
    if listed.returncode == 0 and listed.stdout:
        names = [name for name in listed.stdout.decode().split("\0") if name]
        return [ROOT / name for name in names if (ROOT / name).is_file()]
    skipped = {".git", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
    return [
        path
        for path in ROOT.rglob("*")
        if path.is_file() and not skipped & set(path.relative_to(ROOT).parts)
    ]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None  # not text: nothing a reader follows


# A path that climbs out of the file's folder (`../x`), not an ellipsis (`.../x`).
CLIMBING = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-]+(?:/[\w.-]+)*")
SYSTEM_FOLDERS = {"/tmp", "/var", "/var/tmp", "/home", "/root", "/run", "/opt", "/usr", "/srv"}
MARKDOWN_NAME = re.compile(r"(?<![\w.-])[\w.-]+\.md\b")


def test_no_file_points_outside_the_repository() -> None:
    """A reader of the repository has the repository only: no climbing path leaves it, no
    absolute path names the folder it was checked out in, and every Markdown file a file names
    is one of its own."""
    files = tracked_files()
    ours = {path.name for path in files if path.suffix == ".md"}
    # an absolute path into a folder above the checkout (where it was built, shared notes);
    # not the system's own folders, which a pod's manifest names (/tmp) wherever we are cloned
    above = [
        re.escape(str(folder))
        for folder in ROOT.resolve().parents
        if folder.parent != folder and str(folder) not in SYSTEM_FOLDERS
    ]
    outside = re.compile(rf"(?<![\w.~$/-])(?:{'|'.join(above)})/[\w.-]+") if above else None
    found = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        where = path.relative_to(ROOT)
        for match in CLIMBING.finditer(text):
            target = (path.parent / match.group()).resolve()
            if not target.is_relative_to(ROOT.resolve()):
                found.append(f"{where}: {match.group()}")
        found += [f"{where}: {hit}" for hit in outside.findall(text)] if outside else []
        found += [f"{where}: {name}" for name in MARKDOWN_NAME.findall(text) if name not in ours]
    assert not found, f"paths outside the repository: {found}"


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's ids of a page's headings: lowercase, punctuation dropped, spaces as dashes,
    a repeated heading numbered."""
    seen: dict[str, int] = {}
    for line in markdown.splitlines():
        if not re.match(r"#{1,6} ", line):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def test_every_link_of_the_readme_and_the_docs_leads_somewhere() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 1, "docs/ holds the design notes"
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or not linked.resolve().is_relative_to(ROOT.resolve()):
                broken.append(f"{page.name}: {target}")
            elif anchor and anchor not in anchors(linked.read_text(encoding="utf-8")):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, f"links that lead nowhere: {broken}"


# A file or folder of the repository named in code style: `nsscale/kubectl.py`, `engine/plan.py`,
# `tests/apiserver/`, `deploy/` (a name with a slash, or a Python file).
NAMED_PATH = re.compile(r"`((?:[\w.-]+/)+(?:[\w.-]+\.\w+)?|[\w-]+\.py)`")


def test_every_file_the_readme_and_the_docs_name_exists() -> None:
    """Modules move; the pages that name them must move with them. A name is looked up from the
    repository's root and from the package (the docs say `engine/plan.py` for short)."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = []
    for page in pages:
        for name in NAMED_PATH.findall(page.read_text(encoding="utf-8")):
            if not any((base / name).exists() for base in (ROOT, ROOT / "nsscale")):
                missing.append(f"{page.name}: {name}")
    assert not missing, f"named in the docs, not in the repository: {sorted(set(missing))}"
