"""`nsscale reconcile`: bring each namespace to what its schedule wants at an instant, acting
only where it is not so already.

One read decides for every namespace (their Namespaces, and each kind of workload passed through
as the server sends it: three kubectl calls side by side, however many namespaces); then at
most two runs of the ordinary engine, one `down` over the namespaces
to bring down and one `up` over those to bring up, each with its marks, transaction, rollback
and audit record. A namespace already as wanted, paused, or without a schedule is only reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from nsscale.audit.auditor import Auditor
from nsscale.engine.events import record_namespace_warnings
from nsscale.engine.interrupts import Interrupts
from nsscale.engine.options import RunOptions
from nsscale.engine.plan import Operation, unmatched_excludes
from nsscale.engine.reads import Lookahead
from nsscale.engine.respect import Respect
from nsscale.engine.result import MultiResult, RunResult, new_run_id
from nsscale.engine.status import namespace_state
from nsscale.engine.waiting import Progress
from nsscale.errors import ExitCode, NsscaleError
from nsscale.kube.retry import RetryPolicy
from nsscale.kubectl import Kubectl
from nsscale.schedule.decide import Action, Decision, Policy
from nsscale.schedule.rules import Rules

log = logging.getLogger("nsscale")


@dataclass
class Reconciled:
    at: datetime
    decisions: list[Decision]
    results: dict[str, RunResult] = field(default_factory=dict)  # of the namespaces acted on
    refusals: list[NsscaleError] = field(default_factory=list)  # runs that could not start
    interrupted: str | None = None
    states: dict[str, str] = field(default_factory=dict)  # each namespace's, as read (metrics)

    @property
    def runs(self) -> MultiResult:
        """The runs made, as one report (exit 0 when none was needed)."""
        ordered = tuple(
            self.results[d.namespace] for d in self.decisions if d.namespace in self.results
        )
        operation = ordered[0].operation if ordered else Operation.DOWN
        run_id = ordered[0].run_id if ordered else ""
        return MultiResult(ordered, operation, run_id, any(r.dry_run for r in ordered))

    @property
    def errors(self) -> list[Decision]:
        """The namespaces whose annotations could not be read."""
        return [d for d in self.decisions if d.action is Action.ERROR]

    @property
    def exit_code(self) -> int:
        """The runs' code; 1 when they went well but an annotation could not be read."""
        return self.runs.exit_code or (ExitCode.FAILED if self.errors else 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.runs.success and not self.errors,
            "exit_code": self.exit_code,
            "at": self.at.isoformat(),
            "namespaces": [
                d.to_dict()
                | {"result": r.to_dict() if (r := self.results.get(d.namespace)) else None}
                for d in self.decisions
            ],
        }


def reconcile(
    kubectl: Kubectl,
    named: Sequence[str],
    namespace_selector: str | None,
    policy: Policy,
    at: datetime,
    options: RunOptions,
    auditor: Auditor,
    interrupts: Interrupts,
    *,
    rules: Rules | None = None,
    on_wait: Callable[[Progress], None] = lambda progress: None,
) -> Reconciled:
    """Decide for every namespace, then run `down` and `up` where needed. UsageError (a named
    namespace missing or protected...) before anything was attempted."""
    options = replace(options, selection=replace(options.selection, at=at))  # exclude-until
    ahead = Lookahead(
        kubectl,
        named,
        RetryPolicy(options.retries),
        writes=False,
        audited=False,
        selector=options.selection.selector,
        namespace_selector=namespace_selector,
        scale_resources=options.scale_resources,
        raw_reads=True,  # cron runs it every few minutes: the decision read is its whole cost
    )
    rules = rules or Rules()
    workloads = ahead.workloads()
    every = (w for found in workloads.values() for w in found)
    for warning in unmatched_excludes(options.selection, every):
        log.warning("%s", warning)
    decisions = []
    respect: dict[str, Respect] = {}
    for ns, found in workloads.items():
        decision, kept = rules.decide(ahead.namespace(ns), found, policy, at, options.selection)
        decisions.append(decision)
        if kept is not None:
            respect[ns] = kept
    states = {ns: namespace_state(found) for ns, found in workloads.items()}
    done = Reconciled(at, decisions, states=states)
    if options.events and not (options.dry_run or options.server_dry_run):
        warnings = [
            (ahead.namespace(d.namespace), "InvalidSchedule", d.reason) for d in done.errors
        ]
        record_namespace_warnings(kubectl, warnings)
    for operation in (Operation.DOWN, Operation.UP):
        group = [d.namespace for d in decisions if d.operation is operation]
        if not group or interrupts.stop_reason:
            continue
        # each run its own id, as audited
        run_options = replace(options, run_id=new_run_id(), replicas=None, respect=respect)
        run_options = run_options.for_operation(operation)
        from nsscale.engine.run import execute  # the engine: loaded only when a namespace needs it

        run_ahead = Lookahead.for_run(kubectl, group, None, run_options, auditor)
        executed = execute(
            kubectl,
            operation,
            run_options,
            run_ahead,
            auditor,
            interrupts,
            on_wait=on_wait,
            check_excludes=False,  # checked above, over every namespace
        )
        done.results.update((r.namespace, r) for r in executed.results)
        if executed.refusal is not None:
            done.refusals.append(executed.refusal)
        done.interrupted = done.interrupted or executed.interrupted
    return done
