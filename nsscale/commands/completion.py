"""Shell completion, Typer's way: the script `nsscale completion SHELL` prints, and the answers
the script asks nsscale for (`_NSSCALE_COMPLETE=complete_bash nsscale`; Typer's order, not
Click 8's `bash_complete`). Imported only for those two, never on an ordinary start."""

from __future__ import annotations

# Typer's completion classes and scripts, which its own --install-completion uses; they are not
# exported, and Typer registers the classes only with add_completion=True (nsscale has an
# explicit `completion` command instead of those two options).
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script

from nsscale.commands.options import COMPLETE_VAR, SHELL, Parsed, Shell

PROG = "nsscale"  # the command completed, also when `kubectl nsscale completion` prints it


def completion_script(shell: Shell) -> str:
    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell.value)


def answer_completions() -> None:
    """Before the app runs with COMPLETE_VAR set: Typer answers with its own classes, which
    speak the protocol of its scripts (Click's own would answer `plain,down` to bash)."""
    completion_init()


def completion(parsed: Parsed) -> None:
    print(completion_script(parsed[SHELL]))
