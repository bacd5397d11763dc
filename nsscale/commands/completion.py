"""Shell completion, Typer's way: the script `nsscale completion SHELL` prints, the answers the
script asks nsscale for (`_NSSCALE_COMPLETE=complete_bash nsscale`; Typer's order, not Click 8's
`bash_complete`), and the namespaces and contexts it offers, from kubectl. Imported only for
those, never on an ordinary start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

# Typer's completion classes and scripts, which its own --install-completion uses; they are not
# exported, and Typer registers the classes only with add_completion=True (nsscale has an
# explicit `completion` command instead of those two options).
from typer import _completion_classes
from typer._completion_shared import get_completion_script

from nsscale.commands.options import COMPLETE_VAR, SHELL, Parsed, Shell

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

PROG = "nsscale"  # the command completed, also when `kubectl nsscale completion` prints it
# A Tab answers within a second: Python's start and the app's imports take about 0.15 s, then
# kubectl has this long (else nothing is offered).
KUBECTL_S = 0.7


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


def namespaces(params: Mapping[str, Any], incomplete: str) -> list[str]:
    """The namespaces starting with `incomplete`, as kubectl lists them with the --context,
    --kubeconfig and --kubectl already on the command line; none when kubectl cannot answer
    within the budget."""
    from nsscale.errors import NsscaleError

    try:
        listed = _kubectl(params).get_raw("/api/v1/namespaces")
    except NsscaleError:
        return []
    names = [str((item.get("metadata") or {}).get("name", "")) for item in listed.get("items", [])]
    return [name for name in names if name and name.startswith(incomplete)]


def contexts(params: Mapping[str, Any], incomplete: str) -> list[str]:
    """The contexts of the kubeconfig (--kubeconfig, else kubectl's own) starting with
    `incomplete`."""
    from nsscale.errors import NsscaleError

    try:
        listed = _kubectl({**params, "context": None}).run(["config", "get-contexts", "-o", "name"])
    except NsscaleError:
        return []
    return [name for name in listed.stdout.split() if name.startswith(incomplete)]


def _kubectl(params: Mapping[str, Any]) -> Kubectl:
    """kubectl as the command line has it so far, stopped after KUBECTL_S."""
    from nsscale.kubectl import Kubectl, KubectlConfig

    config = KubectlConfig.resolve(
        params.get("kubectl"), params.get("context"), params.get("kubeconfig"), KUBECTL_S
    )
    return Kubectl(config)
