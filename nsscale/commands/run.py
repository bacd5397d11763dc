"""`nsscale down`, `up`, `scale` and `recover`: one run of the operation over the namespaces,
reported on stdout (a table, or -o json), the --on-failure hook when it ended badly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from nsscale.audit.auditor import Auditor
from nsscale.commands.alert import alert, parse_command
from nsscale.commands.common import Common, Scope, audit_options
from nsscale.commands.options import (
    ALL_OR_NOTHING,
    ARGOCD_NAMESPACE,
    BATCH_SIZE,
    DRY_RUN,
    EVENTS,
    EXCLUDE,
    FORCE,
    HOLD,
    NO_ROLLBACK,
    ON_FAILURE,
    PARALLEL,
    RECOVER_FORCE,
    REPLICAS,
    REQUIRE_LOCK,
    RETRIES,
    SCALE_RESOURCE,
    SELECTOR,
    SERVER_DRY_RUN,
    SUSPEND_CRONJOBS,
    SUSPEND_GITOPS,
    WAIT,
    WAIT_TIMEOUT,
    OutputFormat,
    Parsed,
)
from nsscale.commands.output import print_json, say, say_error, show, wait_display
from nsscale.engine.interrupts import Interrupts, signal_name
from nsscale.engine.options import RunOptions
from nsscale.engine.plan import Operation, Selection, check_namespace
from nsscale.engine.reads import Lookahead
from nsscale.engine.result import MultiResult, RunResult, failed_before_start, new_run_id
from nsscale.errors import UsageError


def down(parsed: Parsed) -> int:
    return _operation(Operation.DOWN, parsed)


def up(parsed: Parsed) -> int:
    return _operation(Operation.UP, parsed)


def scale(parsed: Parsed) -> int:
    return _operation(Operation.SCALE, parsed)


def recover(parsed: Parsed) -> int:
    return _operation(Operation.RECOVER, parsed)


def _operation(operation: Operation, parsed: Parsed) -> int:
    common, scope = Common.of(parsed), Scope.of(parsed)
    # a bad --exclude or --on-failure: nothing was attempted (the error boundary says so)
    options = run_options(operation, parsed)
    return _scale(operation, scope, common, Auditor(audit_options(parsed)), options, hook(parsed))


def hook(parsed: Parsed) -> Sequence[str]:
    """The --on-failure command, as its argv (UsageError for one that does not parse)."""
    command = parsed[ON_FAILURE]
    return parse_command(command) if command is not None else ()


def run_options(operation: Operation, parsed: Parsed) -> RunOptions:
    """What the command line asks of a run of `operation` (UsageError for a bad option)."""
    if operation is Operation.RECOVER:
        # best effort: rolling back a recovery would redo the interrupted change
        return RunOptions(
            dry_run=parsed[DRY_RUN],
            rollback=False,
            retries=parsed[RETRIES],
            force=parsed[RECOVER_FORCE],
            parallel=1,
            scale_resources=_scale_resources(parsed),
        ).for_operation(operation)
    excluded = parsed[EXCLUDE]
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
        selection=Selection(parsed[SELECTOR], tuple(excluded or ())),
        all_or_nothing=parsed[ALL_OR_NOTHING],
        suspend_cronjobs=parsed[SUSPEND_CRONJOBS],
        suspend_gitops=parsed[SUSPEND_GITOPS],
        argocd_namespace=check_namespace(parsed[ARGOCD_NAMESPACE]),
        wait=parsed[WAIT],
        wait_timeout_s=parsed[WAIT_TIMEOUT].total_seconds(),
        hold_s=hold.total_seconds() if (hold := parsed[HOLD]) is not None else None,
        events=parsed[EVENTS],
        scale_resources=_scale_resources(parsed),
    ).for_operation(operation)


def _scale(
    operation: Operation,
    scope: Scope,
    common: Common,
    auditor: Auditor,
    options: RunOptions,
    hook: Sequence[str] = (),
) -> int:
    """One run, reported; `hook`: the --on-failure command, run when it ended badly."""
    run_id = new_run_id()
    options = replace(options, run_id=run_id)
    dry_run = options.dry_run or options.server_dry_run
    # One guard from the start to the report: a signal ends the command at once while nothing
    # can have changed, and is only noted from just before the first change on (run.py).
    interrupts = Interrupts(raising=True)
    with interrupts:
        try:
            common.setup_logging(run_id)
            scope.check()
            kubectl = common.make_kubectl()
            ahead = Lookahead.for_run(kubectl, scope.named, scope.selector, options, auditor)
            # Imported while kubectl reads: the run flow and rich's tables cost about 0.1 s.
            import nsscale.commands.tables  # noqa: F401  (for _emit)
            from nsscale.engine.run import execute

            with wait_display(options) as display:
                executed = execute(
                    kubectl, operation, options, ahead, auditor, interrupts, on_wait=display
                )
        except UsageError as err:  # nothing was attempted: not a run to record
            if scope.named:  # else the boundary's document (no run over no namespace succeeds)
                failed = [
                    failed_before_start(ns, operation, str(err), dry_run, run_id)
                    for ns in scope.named
                ]
                err.report = _report(scope, operation, failed, run_id, dry_run).to_dict()
            raise
        except KeyboardInterrupt as exc:  # before kubectl was started: nothing to record
            name = signal_name(exc)
            say("interrupted before any change: nothing was changed")
            failed = [
                failed_before_start(ns, operation, f"interrupted by {name}", dry_run, run_id, name)
                for ns in scope.named
            ]
            interrupted = _report(scope, operation, failed, run_id, dry_run)
            _emit(interrupted, common, refused=True)
            return interrupted.exit_code
        if executed.refusal is not None:
            say_error(executed.refusal)
        if executed.interrupted is not None:
            say("interrupted before any change: nothing was changed")
        with interrupts.refusing("the result is being reported"):
            report = _report(scope, operation, executed.results, run_id, dry_run)
            refused = executed.refusal is not None or executed.interrupted is not None
            _emit(report, common, refused=refused)
            if hook:
                namespaces = [r.namespace for r in executed.results]
                alert(hook, report.to_dict(), report.exit_code, namespaces)
    return report.exit_code


def _report(
    scope: Scope,
    operation: Operation,
    results: Sequence[RunResult],
    run_id: str,
    dry_run: bool,
) -> RunResult | MultiResult:
    """One namespace's result as ever, or the results of several."""
    if scope.single:
        return results[0]
    return MultiResult(tuple(results), operation, run_id, dry_run)


def _emit(report: RunResult | MultiResult, common: Common, *, refused: bool = False) -> None:
    """The report: its JSON document, or its tables; none for a run `refused` before any
    change (what was said on stderr is all there is to tell)."""
    from nsscale.commands.tables import render_report  # loaded while kubectl read (_scale)

    if common.output is OutputFormat.JSON:
        print_json(report.to_dict())
    elif not refused:
        show(*render_report(report))


def _scale_resources(parsed: Parsed) -> tuple[str, ...]:
    """--scale-resource, each once."""
    named: list[str] | None = parsed[SCALE_RESOURCE]
    return tuple(dict.fromkeys(named or ()))
