"""`nsscale reconcile`: each namespace brought to what its schedule wants now."""

from __future__ import annotations

from nsscale.audit.auditor import Auditor
from nsscale.commands.alert import alert
from nsscale.commands.common import Common, Scope, audit_options
from nsscale.commands.options import (
    AT,
    DEPLOYMENT_TIME_ANNOTATION,
    DOWNTIME,
    DOWNTIME_REPLICAS,
    ENFORCE,
    GRACE_PERIOD,
    TIMEZONE,
    UPTIME,
    OutputFormat,
    Parsed,
)
from nsscale.commands.output import print_json, say, say_error, show, wait_display
from nsscale.commands.run import hook, run_options
from nsscale.commands.tables import decisions_table, result_parts
from nsscale.engine.interrupts import Interrupts
from nsscale.engine.plan import Operation
from nsscale.schedule.decide import instant, policy_of
from nsscale.schedule.reconcile import Reconciled, reconcile
from nsscale.schedule.rules import Rules


def reconcile_command(parsed: Parsed) -> int:
    common, scope = Common.of(parsed), Scope.of(parsed)
    options = run_options(Operation.DOWN, parsed)
    policy = policy_of(parsed[UPTIME], parsed[DOWNTIME], parsed[TIMEZONE])
    at = instant(parsed[AT])
    on_failure = hook(parsed)
    interrupts = Interrupts(raising=True)
    with interrupts:
        common.setup_logging()
        scope.check()
        kubectl = common.make_kubectl()
        with wait_display(options) as display:
            done = reconcile(
                kubectl,
                scope.named,
                scope.selector,
                policy,
                at,
                options,
                Auditor(audit_options(parsed)),
                interrupts,
                rules=Rules(
                    parsed[GRACE_PERIOD],
                    parsed[DEPLOYMENT_TIME_ANNOTATION],
                    parsed[ENFORCE],
                    parsed[DOWNTIME_REPLICAS],
                ),
                on_wait=display,
            )
        for refusal in done.refusals:
            say_error(refusal)
        if done.interrupted is not None:
            say("interrupted before any change: nothing was changed")
        with interrupts.refusing("the result is being reported"):
            _emit(done, common)
            if on_failure:
                namespaces = list(done.results)
                alert(on_failure, done.to_dict(), done.exit_code, namespaces)
    return done.exit_code


def _emit(done: Reconciled, common: Common) -> None:
    if common.output is OutputFormat.JSON:
        print_json(done.to_dict())
        return
    # the runs' summary (a row per namespace), then each run
    show(decisions_table(done), *(p for r in done.runs.results for p in result_parts(r)))
