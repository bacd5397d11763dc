"""The command line: the Typer app, each command wired to its parameters, its help and its body
in nsscale/commands/. A body's module is imported only when its command runs, so that `nsscale
--version` and `--help` start fast (without rich, the engine or the audit)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from nsscale import __version__
from nsscale.commands.boundary import Known, command, run_app
from nsscale.commands.options import (
    ALERTING,
    ALL_CLUSTERS,
    ARGOCD_NAMESPACE,
    AT,
    AUDIT,
    AUDIT_FILE,
    AUDIT_TABLE,
    CHOICE,
    COMPLETE_VAR,
    CONNECTION,
    CONTEXT,
    DRY_RUN,
    FORCE,
    HOLD,
    KUBECONFIG,
    KUBECTL,
    LIMIT,
    LOG_FILE,
    NAMESPACE,
    NAMESPACE_FLAG,
    NAMESPACE_SELECTOR,
    NAMESPACES,
    NO_ROLLBACK,
    OUTPUT,
    PLUGIN,
    RECONCILE_RULES,
    RECOVER_FORCE,
    REPLICAS,
    REPORTING,
    RETRIES,
    RUN,
    SCALE_RESOURCE,
    SCHEDULING,
    SELECTOR,
    SERVE,
    SERVER_DRY_RUN,
    SHELL,
    SINCE,
    SUSPEND_CRONJOBS,
    SUSPEND_GITOPS,
    TABLE_NAME,
    VERBOSE,
    Param,
    Parsed,
)

app = typer.Typer(
    name="nsscale",
    help="Scale every Deployment and StatefulSet of a namespace down, up, or to N, "
    "undoing every change when any step fails.",
    no_args_is_help=True,
    add_completion=False,  # `nsscale completion SHELL` prints the script instead
    pretty_exceptions_show_locals=False,  # never print locals: they hold kubeconfigs
    rich_markup_mode=None,
)
audit_app = typer.Typer(
    name="audit",
    help="Manage the DynamoDB table of the audit trail.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(audit_app)


def _version(value: bool) -> None:
    if value:
        print(f"nsscale {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Scale a namespace's workloads as one operation that rolls back on failure."""


def scope_document(parsed: Parsed) -> dict[str, Any]:
    """What a command over namespaces knows of them when it fails (loaded only then)."""
    from nsscale.commands.common import scope_document

    return scope_document(parsed)


def _wire(
    name: str,
    params: Sequence[Param[Any]],
    body: str,
    doc: str,
    known: Known | None = None,
    group: typer.Typer = app,
) -> None:
    """The command `name` taking `params`, its help `doc`; `body` is `module:function` in
    nsscale/commands/, imported when the command runs; `known`: what its -o json document of
    a failure says of it."""
    module, _, function = body.partition(":")

    def run(parsed: Parsed) -> Any:
        return getattr(importlib.import_module(f"nsscale.commands.{module}"), function)(parsed)

    group.command(name)(command(params, run, doc, known))


# The options of down, up and scale, in the order --help lists them.
OPERATION_OPTIONS = (*CHOICE, *RUN, *CONNECTION, *REPORTING, *ALERTING, *AUDIT)

_wire(
    "down",
    [
        NAMESPACES,
        NAMESPACE_FLAG,
        SUSPEND_CRONJOBS,
        SUSPEND_GITOPS,
        ARGOCD_NAMESPACE,
        HOLD,
        *OPERATION_OPTIONS,
    ],
    "run:down",
    "Scale every Deployment and StatefulSet to 0, recording each original count.",
    scope_document,
)
_wire(
    "up",
    [NAMESPACES, NAMESPACE_FLAG, ARGOCD_NAMESPACE, HOLD, *OPERATION_OPTIONS],
    "run:up",
    "Restore every workload to its recorded original count.",
    scope_document,
)
_wire(
    "scale",
    [NAMESPACES, NAMESPACE_FLAG, REPLICAS, SUSPEND_GITOPS, ARGOCD_NAMESPACE, *OPERATION_OPTIONS],
    "run:scale",
    "Scale every Deployment and StatefulSet to N, recording each original count.",
    scope_document,
)
_wire(
    "recover",
    [
        NAMESPACE,
        NAMESPACE_FLAG,
        RECOVER_FORCE,
        DRY_RUN,
        RETRIES,
        SCALE_RESOURCE,
        *CONNECTION,
        *REPORTING,
        *AUDIT,
    ],
    "run:recover",
    "Undo what an interrupted run (SIGKILL, a lost host) did, from its in-cluster snapshot.",
    scope_document,
)
_wire(
    "status",
    [
        NAMESPACES,
        NAMESPACE_FLAG,
        NAMESPACE_SELECTOR,
        SELECTOR,
        SCALE_RESOURCE,
        *CONNECTION,
        *REPORTING,
    ],
    "status:status",
    "Show current, ready and recorded-original replicas per workload (read only).",
    scope_document,
)
_wire(
    "reconcile",
    [
        NAMESPACES,
        *SCHEDULING,
        AT,
        *RECONCILE_RULES,
        SCALE_RESOURCE,
        *(
            p for p in RUN if p not in (SERVER_DRY_RUN, NO_ROLLBACK, FORCE)
        ),  # the run options, less three
        *CONNECTION,
        *REPORTING,
        *ALERTING,
        *AUDIT,
    ],
    "reconcile:reconcile_command",
    "Bring each namespace to what its schedule wants now (up or down), acting only where it is\n"
    "not so already: safe to run from cron every few minutes. A namespace's schedule is its\n"
    "annotation nsscale/uptime or nsscale/downtime, else --uptime or --downtime; one annotated\n"
    "nsscale/pause-until (RFC 3339) is left alone until then.",
    lambda parsed: {"namespaces": []},  # its report lists namespaces, even one
)
_wire(
    "history",
    [
        NAMESPACE,
        NAMESPACE_FLAG,
        SINCE,
        LIMIT,
        ALL_CLUSTERS,
        AUDIT_TABLE,
        AUDIT_FILE,
        CONTEXT,
        KUBECONFIG,
        KUBECTL,
        OUTPUT,
    ],
    "history:history",
    "List the recorded runs in a namespace, newest first (from DynamoDB when a table is set,\n"
    "else from the audit file). The cluster is $EKS_CLUSTER_NAME, else the kubectl context;\n"
    "of the runs recorded under that name, those of the cluster the context points at (the\n"
    "uid of its kube-system Namespace), and those recorded without an id.",
    scope_document,
)
_wire(
    "completion",
    [SHELL],
    "completion:completion",
    "Print the shell completion script of nsscale. bash: `source <(nsscale completion bash)`\n"
    "in ~/.bashrc; zsh: `source <(nsscale completion zsh)` in ~/.zshrc, after compinit; fish:\n"
    "`nsscale completion fish > ~/.config/fish/completions/nsscale.fish`.",
)
_wire(
    "serve",
    [*SERVE, *CONNECTION, VERBOSE, LOG_FILE, *AUDIT],
    "serve:serve_command",
    "Serve the HTTP endpoints a web app calls: POST /api/namespaces/NS/deactivate\n"
    "(down) and /activate (up), GET /api/namespaces/NS (status), GET /healthz. Needs an auth\n"
    "mode; SIGTERM lets the runs in flight finish, then exits 0.",
)
_wire(
    "create-table",
    [TABLE_NAME],
    "audit:create_table",
    "Create the audit table: key pk/sk (strings), on-demand billing. Fine if it exists.",
    group=audit_app,
)


def main() -> None:
    """`nsscale`, and `kubectl-nsscale`: the same program run by kubectl as a plugin (`kubectl
    nsscale down shop`), whose usage lines then say `kubectl nsscale`."""
    if COMPLETE_VAR in os.environ:  # a shell asking for completions (`nsscale completion`)
        from nsscale.commands.completion import answer_completions

        answer_completions()
    plugin = Path(sys.argv[0]).stem == PLUGIN
    prog_name = "kubectl nsscale" if plugin else None
    sys.exit(run_app(app, prog_name, COMPLETE_VAR))
