"""Shell completion, Typer's way: the script `nsscale completion SHELL` prints, the answers the
script asks nsscale for (`_NSSCALE_COMPLETE=complete_bash nsscale`; Typer's order, not Click 8's
`bash_complete`). Imported only for those, never on an ordinary start; the namespaces and
contexts it offers come from completers.py."""

from __future__ import annotations

# Typer's completion classes and scripts, which its own --install-completion uses; they are not
# exported, and Typer registers the classes only with add_completion=True (nsscale has an
# explicit `completion` command instead of those two options).
from typer import _completion_classes
from typer._completion_shared import get_completion_script

from nsscale.commands.options import COMPLETE_VAR, SHELL, Parsed, Shell

PROG = "nsscale"  # the command completed, also when `kubectl nsscale completion` prints it


def completion_script(shell: Shell) -> str:
    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell.value)


def answer_completions() -> None:
    """Before the app runs with COMPLETE_VAR set: Typer answers with its own classes, which
    speak the protocol of its scripts (Click's own would answer `plain,down` to bash)."""
    # nsscale's help is plain text (rich_markup_mode=None): nothing to strip of rich's markup,
    # which would import rich (70 ms) at each Tab for zsh and fish, and wrap the help lines.
    _completion_classes._sanitize_help_text = _plain
    _completion_classes.completion_init()


def _plain(text: str) -> str:
    return text


def completion(parsed: Parsed) -> None:
    print(completion_script(parsed[SHELL]))
