"""The command line: parse options, run, render, and the only place that exits."""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from nsscale import __version__
from nsscale.commands.options import (
    ALERTING,
    ALL_OR_NOTHING,
    ARGOCD_NAMESPACE,
    AT,
    AUDIT,
    AUDIT_FILE,
    AUDIT_REQUIRED,
    AUDIT_TABLE,
    BATCH_SIZE,
    CHOICE,
    COMPLETE_VAR,
    CONNECTION,
    CONTEXT,
    DOWNTIME,
    DRY_RUN,
    EVENTS,
    EXCLUDE,
    FORCE,
    HOLD,
    KUBECONFIG,
    KUBECTL,
    LIMIT,
    LOG_FILE,
    NAMESPACE,
    NAMESPACE_SELECTOR,
    NAMESPACES,
    NO_ROLLBACK,
    ON_FAILURE,
    OUTPUT,
    PARALLEL,
    PLUGIN,
    RECOVER_FORCE,
    REPLICAS,
    REPORTING,
    REQUIRE_LOCK,
    RETRIES,
    RUN,
    SELECTOR,
    SERVER_DRY_RUN,
    SINCE,
    SUSPEND_CRONJOBS,
    SUSPEND_GITOPS,
    TIMEOUT,
    TIMEZONE,
    UPTIME,
    VERBOSE,
    WAIT,
    WAIT_TIMEOUT,
    OutputFormat,
    Param,
    Parsed,
    Shell,
    command,
)
from nsscale.defaults import DEFAULT_TIMEOUT_S
from nsscale.engine.options import AuditOptions, RunOptions
from nsscale.engine.plan import Operation, Selection, check_namespace
from nsscale.errors import NsscaleError, UsageError
from nsscale.kubectl import Kubectl, KubectlConfig

# Imported where used, so that `nsscale --version` and `--help` start fast: rich, the run flow,
# the audit (which may load boto3). Their names are here for type checking only.
if TYPE_CHECKING:
    from rich.console import Console

    from nsscale.engine.result import MultiResult, RunResult
    from nsscale.engine.waiting import Progress
    from nsscale.schedule.reconcile import Reconciled

log = logging.getLogger("nsscale")

app = typer.Typer(
    name="nsscale",
    help="Scale every Deployment and StatefulSet of a namespace down, up, or to N, "
    "undoing every change when any step fails.",
    no_args_is_help=True,
    add_completion=False,  # `nsscale completion SHELL` prints the script instead
    pretty_exceptions_show_locals=False,  # never print locals: they hold kubeconfigs
    rich_markup_mode=None,
)


@dataclass(frozen=True)
class Common:
    """kubectl's connection, the output and the logs: what every command that runs kubectl takes
    (`Common.of`), and the error boundary needs."""

    timeout: float = DEFAULT_TIMEOUT_S
    context: str | None = None
    kubeconfig: str | None = None
    kubectl: str | None = None
    output: OutputFormat = OutputFormat.TABLE
    verbose: int = 0
    log_file: Path | None = None

    @classmethod
    def of(cls, parsed: Parsed) -> Common:
        return cls(
            timeout=parsed[TIMEOUT],
            context=parsed[CONTEXT],
            kubeconfig=parsed[KUBECONFIG],
            kubectl=parsed[KUBECTL],
            output=parsed[OUTPUT],
            verbose=parsed[VERBOSE],
            log_file=parsed[LOG_FILE],
        )

    def make_kubectl(self) -> Kubectl:
        # --kubectl, else $NSSCALE_KUBECTL (both through the option's envvar), else PATH's
        config = KubectlConfig.resolve(self.kubectl, self.context, self.kubeconfig, self.timeout)
        return Kubectl(config)


def _audit_options(parsed: Parsed) -> AuditOptions:
    return AuditOptions(
        table=parsed[AUDIT_TABLE], file=parsed[AUDIT_FILE], required=parsed[AUDIT_REQUIRED]
    )


@dataclass(frozen=True)
class Scope:
    """The namespaces a command names, and the selector that picks more."""

    named: tuple[str, ...]
    selector: str | None = None

    @classmethod
    def of(cls, parsed: Parsed) -> Scope:
        names = parsed[NAMESPACES] if NAMESPACES.name in parsed.values else [parsed[NAMESPACE]]
        return cls(tuple(dict.fromkeys(names or ())), parsed[NAMESPACE_SELECTOR])

    @property
    def single(self) -> bool:
        """One namespace named and none selected: the one-namespace report, as ever."""
        return len(self.named) == 1 and self.selector is None

    def check(self) -> None:
        """UsageError for a bad name, or for no namespace at all."""
        if not self.named and self.selector is None:
            raise UsageError(
                "no namespace: name one or more, or pick them with --namespace-selector",
                "for example: nsscale down shop, or nsscale down --namespace-selector team=web",
            )
        for name in self.named:
            check_namespace(name)

    def document(self) -> dict[str, Any]:
        """What is known of the command's namespaces, for a report of a failure."""
        return {"namespace": self.named[0]} if self.single else {"namespaces": []}


def _run_options(operation: Operation, parsed: Parsed) -> RunOptions:
    if operation is Operation.RECOVER:
        # best effort: rolling back a recovery would redo the interrupted change
        return RunOptions(
            cronjobs=True,  # what the interrupted run suspended or paused is put back
            keda=True,
            dry_run=parsed[DRY_RUN],
            rollback=False,
            retries=parsed[RETRIES],
            force=parsed[RECOVER_FORCE],
            parallel=1,
        )
    return RunOptions(
        dry_run=parsed[DRY_RUN],
        server_dry_run=parsed[SERVER_DRY_RUN],
        rollback=not parsed[NO_ROLLBACK],
        batch_size=parsed[BATCH_SIZE],
        parallel=parsed[PARALLEL],
        retries=parsed[RETRIES],
        force=parsed[FORCE],
        require_lock=parsed[REQUIRE_LOCK],
        replicas=parsed[REPLICAS] if operation is Operation.SCALE else None,
        selection=Selection(parsed[SELECTOR], tuple(parsed[EXCLUDE] or ())),
        all_or_nothing=parsed[ALL_OR_NOTHING],
        # down suspends CronJobs when asked; up always resumes those nsscale suspended
        cronjobs=operation is Operation.UP or parsed[SUSPEND_CRONJOBS],
        suspend_cronjobs=parsed[SUSPEND_CRONJOBS],
        suspend_gitops=parsed[SUSPEND_GITOPS],
        argocd_namespace=check_namespace(parsed[ARGOCD_NAMESPACE]),
        keda=operation in (Operation.DOWN, Operation.UP),
        wait=parsed[WAIT],
        wait_timeout_s=_seconds(parsed[WAIT_TIMEOUT]),
        hold_s=_seconds(parsed[HOLD]) if parsed[HOLD] is not None else None,
        events=parsed[EVENTS],
    )


def _seconds(value: timedelta | str) -> float:
    """An option's duration (its default comes as the text the command line would give)."""
    if isinstance(value, str):
        from nsscale.durations import parse_duration

        value = parse_duration(value, "smh", "a duration", "90s")
    return value.total_seconds()


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


def _command(
    name: str, params: Sequence[Param], body: Callable[[Parsed], None], doc: str | None = None
) -> None:
    """Register `body` as the command `name` taking `params`; its help is `doc`, else the body's
    docstring."""
    app.command(name)(command(params, body, doc or inspect.getdoc(body) or ""))


def _operation(operation: Operation) -> Callable[[Parsed], None]:
    """The body of down, up, scale and recover: one run of the operation."""

    def run(parsed: Parsed) -> None:
        from nsscale.commands.alert import parse_command

        common, scope = Common.of(parsed), Scope.of(parsed)
        try:
            options = _run_options(operation, parsed)
            hook = parse_command(parsed[ON_FAILURE]) if parsed[ON_FAILURE] is not None else ()
        except UsageError as err:  # a bad --exclude or --on-failure: nothing was attempted
            _fail(err, common, scope.document())
        _scale(operation, scope, common, _audit_options(parsed), options, hook)

    return run


# The options of down, up and scale, in the order --help lists them.
OPERATION_OPTIONS = (*CHOICE, *RUN, *CONNECTION, *REPORTING, *ALERTING, *AUDIT)

_command(
    "down",
    [NAMESPACES, SUSPEND_CRONJOBS, SUSPEND_GITOPS, ARGOCD_NAMESPACE, HOLD, *OPERATION_OPTIONS],
    _operation(Operation.DOWN),
    "Scale every Deployment and StatefulSet to 0, recording each original count.",
)
_command(
    "up",
    [NAMESPACES, ARGOCD_NAMESPACE, HOLD, *OPERATION_OPTIONS],
    _operation(Operation.UP),
    "Restore every workload to its recorded original count.",
)
_command(
    "scale",
    [NAMESPACES, REPLICAS, SUSPEND_GITOPS, ARGOCD_NAMESPACE, *OPERATION_OPTIONS],
    _operation(Operation.SCALE),
    "Scale every Deployment and StatefulSet to N, recording each original count.",
)
_command(
    "recover",
    [NAMESPACE, RECOVER_FORCE, DRY_RUN, RETRIES, *CONNECTION, *REPORTING, *AUDIT],
    _operation(Operation.RECOVER),
    "Undo what an interrupted run (SIGKILL, a lost host) did, from its in-cluster snapshot.",
)


def _status(parsed: Parsed) -> None:
    """Show current, ready and recorded-original replicas per workload (read only)."""
    from nsscale.commands.tables import status_table
    from nsscale.engine.reads import Lookahead
    from nsscale.engine.status import status_document

    scope, common = Scope.of(parsed), Common.of(parsed)
    out = _stdout()
    try:
        _setup_logging(common)
        scope.check()
        kubectl = common.make_kubectl()
        ahead = Lookahead.for_status(kubectl, scope.named, scope.selector, parsed[SELECTOR])
        workloads, autoscalers = ahead.workloads(), ahead.autoscalers()
    except NsscaleError as err:
        _fail(err, common, scope.document())
    except KeyboardInterrupt as exc:
        _exit_interrupted(exc, common, scope)
    if common.output is OutputFormat.JSON:
        documents = [status_document(ns, found, autoscalers) for ns, found in workloads.items()]
        _print_json(documents[0] if scope.single else {"namespaces": documents})
        return
    with _stdout_may_be_gone():
        for namespace, found in workloads.items():
            out.print(status_table(namespace, found, autoscalers))


_command("status", [NAMESPACES, NAMESPACE_SELECTOR, SELECTOR, *CONNECTION, *REPORTING], _status)


def _reconcile(parsed: Parsed) -> None:
    """Bring each namespace to what its schedule wants now (up or down), acting only where it is
    not so already: safe to run from cron every few minutes. A namespace's schedule is its
    annotation nsscale/uptime or nsscale/downtime, else --uptime or --downtime; one annotated
    nsscale/pause-until (RFC 3339) is left alone until then."""
    from nsscale.commands.alert import alert, parse_command
    from nsscale.engine.interrupts import Interrupts

    common, scope = Common.of(parsed), Scope.of(parsed)
    try:
        from nsscale.schedule.decide import instant, policy_of

        options = _run_options(Operation.DOWN, parsed)
        policy = policy_of(parsed[UPTIME], parsed[DOWNTIME], parsed[TIMEZONE])
        at = instant(parsed[AT])
        hook = parse_command(parsed[ON_FAILURE]) if parsed[ON_FAILURE] is not None else ()
    except UsageError as err:  # nothing was attempted
        _fail(err, common, {"namespaces": []})
    interrupts = Interrupts(raising=True)
    with interrupts:
        try:
            _setup_logging(common)
            scope.check()
            kubectl = common.make_kubectl()
            from nsscale.audit.auditor import Auditor
            from nsscale.schedule.reconcile import reconcile

            with _wait_display(options) as display:
                done = reconcile(
                    kubectl,
                    scope.named,
                    scope.selector,
                    policy,
                    at,
                    options,
                    Auditor(_audit_options(parsed)),
                    interrupts,
                    on_wait=display,
                )
        except UsageError as err:
            _fail(err, common, {"namespaces": []})
        except NsscaleError as err:  # the deciding read failed: nothing was changed
            _fail(err, common, {"namespaces": []})
        except KeyboardInterrupt as exc:
            _exit_interrupted(exc, common, scope)
        for refusal in done.refusals:
            _say_error(refusal)
        if done.interrupted is not None:
            _say("interrupted before any change: nothing was changed")
        with interrupts.refusing("the result is being reported"):
            _emit_reconciled(done, common)
            if hook:
                namespaces = list(done.results)
                alert(hook, done.to_dict(), done.exit_code, namespaces)
    raise typer.Exit(done.exit_code)


def _emit_reconciled(done: Reconciled, common: Common) -> None:
    from nsscale.commands.tables import decisions_table, result_parts

    if common.output is OutputFormat.JSON:
        _print_json(done.to_dict())
        return
    with _stdout_may_be_gone():
        out = _stdout()
        out.print(decisions_table(done))  # the runs' summary: a row per namespace
        for result in done.runs.results:
            for renderable in result_parts(result):
                out.print(renderable)


_command(
    "reconcile",
    [
        NAMESPACES,
        NAMESPACE_SELECTOR,
        UPTIME,
        DOWNTIME,
        TIMEZONE,
        AT,
        SUSPEND_CRONJOBS,
        SUSPEND_GITOPS,
        ARGOCD_NAMESPACE,
        SELECTOR,
        EXCLUDE,
        DRY_RUN,
        WAIT,
        WAIT_TIMEOUT,
        BATCH_SIZE,
        PARALLEL,
        RETRIES,
        REQUIRE_LOCK,
        *CONNECTION,
        *REPORTING,
        *ALERTING,
        *AUDIT,
    ],
    _reconcile,
)


def _history(parsed: Parsed) -> None:
    """List the recorded runs in a namespace, newest first (from DynamoDB when a table is set,
    else from the audit file). The cluster is $EKS_CLUSTER_NAME, else the kubectl context."""
    from rich.text import Text

    from nsscale.audit.auditor import Auditor
    from nsscale.audit.trail import since, utcnow
    from nsscale.commands.tables import history_table
    from nsscale.kube.review import cluster_name

    namespace, common = parsed[NAMESPACE], Common.of(parsed)
    try:
        _setup_logging(common)
        check_namespace(namespace)
        cluster = cluster_name(common.make_kubectl())
        source = Auditor(_audit_options(parsed)).main
        events = source.history(cluster, namespace, since(parsed[SINCE], utcnow()), parsed[LIMIT])
    except NsscaleError as err:
        _fail(err, common, {"namespace": namespace})
    if common.output is OutputFormat.JSON:
        document = {"cluster": cluster, "namespace": namespace, "source": source.name}
        _print_json(document | {"events": events})
        return
    with _stdout_may_be_gone():
        out = _stdout()
        if events:
            out.print(history_table(f"nsscale history {namespace} ({cluster})", events))
        else:
            out.print(Text(f"No recorded runs in {namespace} ({cluster}) in the {source.name}."))


_command(
    "history",
    [NAMESPACE, SINCE, LIMIT, AUDIT_TABLE, AUDIT_FILE, CONTEXT, KUBECONFIG, KUBECTL, OUTPUT],
    _history,
)


audit_app = typer.Typer(
    name="audit",
    help="Manage the DynamoDB table of the audit trail.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(audit_app)


@audit_app.command("create-table")
def create_table(
    name: Annotated[str, typer.Argument(help="The name of the DynamoDB table.")],
) -> None:
    """Create the audit table: key pk/sk (strings), on-demand billing. Fine if it exists."""
    from rich.text import Text

    from nsscale.audit.trail import DynamoSink

    try:
        created = DynamoSink(name).create_table()
    except NsscaleError as err:
        _fail(err, Common(), {})
    done = "created" if created else "already exists; nothing to do"
    _stdout().print(Text(f"DynamoDB table {name} {done}."))


@app.command()
def completion(
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script of nsscale. bash: `source <(nsscale completion bash)`
    in ~/.bashrc; zsh: `source <(nsscale completion zsh)` in ~/.zshrc, after compinit; fish:
    `nsscale completion fish > ~/.config/fish/completions/nsscale.fish`."""
    from nsscale.commands.completion import completion_script

    print(completion_script(shell))


# `nsscale serve`'s own options; the server itself is nsscale/serve (Flask and waitress, an extra).
LISTEN = Param(
    "listen",
    Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Where to listen: 0.0.0.0:8080 is every interface, port 0 any free one.",
        ),
    ],
    "127.0.0.1:8080",
)
TOKEN_FILE = Param(
    "token_file",
    Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            metavar="FILE",
            help="Static bearer tokens: one per line, then the namespace globs it may act on "
            "(none: every one); re-read when it changes.",
        ),
    ],
    None,
)
KUBERNETES_AUTH = Param(
    "kubernetes_auth",
    Annotated[
        bool,
        typer.Option(
            "--kubernetes-auth",
            help="Check each bearer token with a TokenReview and its right with a "
            "SubjectAccessReview (the server needs system:auth-delegator).",
        ),
    ],
    False,
)
MAX_RUNS = Param(
    "max_runs",
    Annotated[
        int,
        typer.Option("--max-runs", min=1, help="Runs at once; past it a request gets 503."),
    ],
    4,
)
TOKEN_AUDIENCE = Param(
    "token_audience",
    Annotated[
        list[str] | None,
        typer.Option(
            "--token-audience",
            metavar="AUD",
            help="--kubernetes-auth: accept only tokens minted for this audience (repeatable; "
            "kubectl create token SA --audience AUD).",
        ),
    ],
    None,
)
MAX_REVIEWS = Param(
    "max_reviews",
    Annotated[
        int,
        typer.Option(
            "--max-reviews",
            min=1,
            help="TokenReviews and SubjectAccessReviews in flight at once; past it a request "
            "gets 503.",
        ),
    ],
    8,
)
MAX_CONNECTIONS = Param(
    "max_connections",
    Annotated[
        int,
        typer.Option(
            "--max-connections",
            min=1,
            help="Connections open at once; one that sends no whole request in 10 s is closed.",
        ),
    ],
    1000,
)


def _serve(parsed: Parsed) -> None:
    """Serve the HTTP endpoints a web app calls: POST /api/namespaces/NS/deactivate
    (down) and /activate (up), GET /api/namespaces/NS (status), GET /healthz. Needs an auth
    mode; SIGTERM lets the runs in flight finish, then exits 0."""
    common = Common.of(parsed)
    try:
        _setup_logging(common)
        from nsscale.serve import require_extra

        require_extra()
        from nsscale.serve.command import serve
        from nsscale.serve.options import ServeOptions

        config = KubectlConfig.resolve(
            common.kubectl, common.context, common.kubeconfig, common.timeout
        )
        options = ServeOptions(
            listen=parsed[LISTEN],
            token_file=parsed[TOKEN_FILE],
            kubernetes_auth=parsed[KUBERNETES_AUTH],
            max_runs=parsed[MAX_RUNS],
            token_audiences=tuple(parsed[TOKEN_AUDIENCE] or ()),
            max_reviews=parsed[MAX_REVIEWS],
            max_connections=parsed[MAX_CONNECTIONS],
            kubectl=config,
            audit=_audit_options(parsed),
        )
        code = serve(options)
    except NsscaleError as err:
        _fail(err, common, {})
    raise typer.Exit(code)


_command(
    "serve",
    [
        LISTEN,
        TOKEN_FILE,
        KUBERNETES_AUTH,
        TOKEN_AUDIENCE,
        MAX_RUNS,
        MAX_REVIEWS,
        MAX_CONNECTIONS,
        *CONNECTION,
        VERBOSE,
        LOG_FILE,
        *AUDIT,
    ],
    _serve,
)


def _scale(
    operation: Operation,
    scope: Scope,
    common: Common,
    audit: AuditOptions,
    options: RunOptions,
    hook: Sequence[str] = (),
) -> NoReturn:
    """One run, reported; `hook`: the --on-failure command, run when it ended badly."""
    from nsscale.engine.interrupts import Interrupts, signal_name
    from nsscale.engine.result import failed_before_start, new_run_id

    run_id = new_run_id()
    options = replace(options, run_id=run_id)
    dry_run = options.dry_run or options.server_dry_run
    # One guard from the start to the report: a signal ends the command at once while nothing
    # can have changed, and is only noted from just before the first change on (run.py).
    interrupts = Interrupts(raising=True)
    with interrupts:
        try:
            _setup_logging(common, run_id)
            scope.check()
            kubectl = common.make_kubectl()
            from nsscale.audit.auditor import Auditor
            from nsscale.engine.reads import Lookahead

            auditor = Auditor(audit)
            ahead = Lookahead.for_run(kubectl, scope.named, scope.selector, options, auditor)
            # Imported while kubectl reads: the run flow and rich cost about 0.1 s to import.
            import nsscale.commands.tables  # noqa: F401  (for _emit)
            from nsscale.engine.run import execute

            with _wait_display(options) as display:
                executed = execute(
                    kubectl, operation, options, ahead, auditor, interrupts, on_wait=display
                )
        except UsageError as err:  # nothing was attempted: not a run to record
            failed = [
                failed_before_start(ns, operation, str(err), dry_run, run_id) for ns in scope.named
            ]
            _fail(err, common, _report(scope, operation, failed, run_id, dry_run).to_dict())
        except KeyboardInterrupt as exc:  # before kubectl was started: nothing to record
            name = signal_name(exc)
            _say("interrupted before any change: nothing was changed")
            failed = [
                failed_before_start(ns, operation, f"interrupted by {name}", dry_run, run_id, name)
                for ns in scope.named
            ]
            executed_report = _report(scope, operation, failed, run_id, dry_run)
            _emit(executed_report, common)
            raise typer.Exit(executed_report.exit_code) from None
        if executed.refusal is not None:
            _say_error(executed.refusal)
        if executed.interrupted is not None:
            _say("interrupted before any change: nothing was changed")
        with interrupts.refusing("the result is being reported"):
            report = _report(scope, operation, executed.results, run_id, dry_run)
            _emit(report, common)
            if hook:
                from nsscale.commands.alert import alert

                namespaces = [r.namespace for r in executed.results]
                alert(hook, report.to_dict(), report.exit_code, namespaces)
    raise typer.Exit(report.exit_code)


@contextmanager
def _wait_display(options: RunOptions) -> Iterator[Callable[[Progress], None]]:
    """--wait shown on stderr while it lasts (nothing without --wait)."""
    if not options.wait:
        yield lambda progress: None
        return
    from nsscale.commands.progress import WaitDisplay

    with WaitDisplay(_console(stderr=True)) as display:
        yield display.update


def _report(
    scope: Scope,
    operation: Operation,
    results: Sequence[RunResult],
    run_id: str,
    dry_run: bool,
) -> RunResult | MultiResult:
    """One namespace's result as ever, or the results of several."""
    from nsscale.engine.result import MultiResult

    if scope.single:
        return results[0]
    return MultiResult(tuple(results), operation, run_id, dry_run)


def _emit(report: RunResult | MultiResult, common: Common) -> None:
    from nsscale.commands.tables import render_report

    if common.output is OutputFormat.JSON:
        _print_json(report.to_dict())
        return
    with _stdout_may_be_gone():
        out = _stdout()
        for renderable in render_report(report):
            out.print(renderable)


def _fail(err: NsscaleError, common: Common, document: dict[str, Any]) -> NoReturn:
    """The one error boundary: one actionable message on stderr; with -o json, one JSON
    document on stdout all the same (`document`, what is known of the command)."""
    _say_error(err)
    if common.output is OutputFormat.JSON:
        base = {"success": False, "errors": [err.message]}
        _print_json(base | document | {"exit_code": int(err.exit_code)})
    raise typer.Exit(err.exit_code)


def _say_error(err: NsscaleError) -> None:
    _say(f"error: {err.message}", "red")
    if err.hint:
        _say(f"  {err.hint}")


def _say(text: str, style: str = "") -> None:
    from rich.text import Text

    with _stdout_may_be_gone():  # stderr too, after a dropped SSH session
        _console(stderr=True).print(Text(text, style))


def _print_json(document: dict[str, Any]) -> None:
    from nsscale.commands.tables import print_json

    with _stdout_may_be_gone():
        print_json(_stdout(), document)


@contextmanager
def _stdout_may_be_gone() -> Iterator[None]:
    """A reader that went away (`nsscale down ns | head -1`, a dropped SSH session) never
    changes the run's exit code: what it would have read is dropped."""
    try:
        yield
    except OSError:  # BrokenPipeError, or EIO on a terminal that is gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())  # and at exit, Python's flush finds no pipe
        os.close(devnull)


def _exit_interrupted(exc: KeyboardInterrupt, common: Common, scope: Scope) -> NoReturn:
    from nsscale.engine.interrupts import signal_name
    from nsscale.engine.result import SIGNAL_EXIT

    name = signal_name(exc)
    _say("interrupted: nothing was changed")
    if common.output is OutputFormat.JSON:
        message = f"interrupted by {name}"
        document = {"success": False, **scope.document(), "errors": [message]}
        _print_json(document | {"exit_code": int(SIGNAL_EXIT[name])})
    raise typer.Exit(SIGNAL_EXIT[name])


def _stdout() -> Console:
    return _console(stderr=False)


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    class Stream(Console):
        def on_broken_pipe(self) -> None:
            # Rich would exit 1; a gone reader is _stdout_may_be_gone's to handle.
            raise BrokenPipeError

    # Rich colours only a terminal and honours NO_COLOR; no highlighting of numbers in tables.
    return Stream(stderr=stderr, highlight=False, soft_wrap=stderr)


_HANDLER_NAME = "nsscale-cli"


def _setup_logging(common: Common, run_id: str | None = None) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(common.verbose, logging.DEBUG)
    for handler in [h for h in log.handlers if h.get_name() == _HANDLER_NAME]:
        log.removeHandler(handler)
        handler.close()
    stream = logging.StreamHandler(sys.stderr)
    stream.setLevel(level)
    stream.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    handlers: list[logging.Handler] = [stream]
    if common.log_file is not None:
        try:
            file_handler = logging.FileHandler(common.log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot write the log file {str(common.log_file)!r}: {exc.strerror}",
                "choose a writable --log-file path",
            ) from exc
        file_handler.setLevel(min(level, logging.INFO))
        run = f"run={run_id} " if run_id else ""  # stderr's lines stay the seed's, word for word
        file_handler.setFormatter(
            logging.Formatter(f"%(asctime)s {run}[%(levelname)s] %(message)s")
        )
        handlers.append(file_handler)
    for handler in handlers:
        handler.set_name(_HANDLER_NAME)
        log.addHandler(handler)
    log.setLevel(min(h.level for h in handlers))


def main() -> None:
    """`nsscale`, and `kubectl-nsscale`: the same program run by kubectl as a plugin (`kubectl
    nsscale down shop`), whose usage lines then say `kubectl nsscale`."""
    if COMPLETE_VAR in os.environ:  # a shell asking for completions (`nsscale completion`)
        from nsscale.commands.completion import answer_completions

        answer_completions()
    plugin = Path(sys.argv[0]).stem == PLUGIN
    app(prog_name="kubectl nsscale" if plugin else None, complete_var=COMPLETE_VAR)
