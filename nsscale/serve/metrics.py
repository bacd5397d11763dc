"""`GET /metrics`: the server's runs and reconcile rounds in Prometheus' text format, from a
registry of this server's own (never prometheus_client's global one, which would also carry
the process's and another server's metrics in the same interpreter: the tests start several).

    nsscale_runs_total{operation,outcome}         runs made (served and the loop's; not dry runs)
    nsscale_run_duration_seconds                  their durations (a histogram)
    nsscale_workloads_changed_total{operation}    workloads a successful run scaled
    nsscale_rollbacks_total                       runs that rolled back
    nsscale_namespaces{state}                     awake|asleep|partly|empty, as the last round read
    nsscale_reconcile_last_success_timestamp_seconds   the end of the last round that ran
    nsscale_schedule_errors_total                 namespaces whose annotations could not be read,
                                                  runs that could not start, rounds that failed
"""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from nsscale.audit.trail import run_outcome
from nsscale.engine.result import RunResult
from nsscale.schedule.reconcile import Reconciled

STATES = ("awake", "asleep", "partly", "empty")  # engine.status.namespace_state's
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# what generate_latest writes, as every Prometheus reads it (prometheus_client's newer LATEST
# says version=1.0.0, which Prometheus 2 does not know)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter(
            "nsscale_runs",
            "Runs made by this server (served and scheduled; dry runs are not counted).",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "nsscale_run_duration_seconds",
            "How long each counted run took.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.changed = Counter(
            "nsscale_workloads_changed",
            "Workloads scaled by a successful run.",
            ["operation"],
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "nsscale_rollbacks", "Runs that rolled back their changes.", registry=self.registry
        )
        self.namespaces = Gauge(
            "nsscale_namespaces",
            "The scheduled namespaces by state, as the last reconcile round read them.",
            ["state"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "nsscale_reconcile_last_success_timestamp_seconds",
            "When the last reconcile round that could run ended (Unix time).",
            registry=self.registry,
        )
        self.schedule_errors = Counter(
            "nsscale_schedule_errors",
            "Namespaces whose schedule annotations could not be read, runs that could not "
            "start, and rounds that failed, in reconcile rounds.",
            registry=self.registry,
        )

    def observe_run(self, result: RunResult) -> None:
        if result.dry_run:
            return
        operation = result.operation.value
        self.runs.labels(operation, run_outcome(result).value).inc()
        self.duration.observe(result.duration_s)
        if result.success:
            self.changed.labels(operation).inc(len(result.scaled))
        if result.rollback_performed:
            self.rollbacks.inc()

    def observe_round(self, done: Reconciled, ended_at: float) -> None:
        """A round that ran (it may have failed in some namespaces)."""
        for result in done.results.values():
            self.observe_run(result)
        counts = Tally(done.states.values())
        for state in STATES:
            self.namespaces.labels(state).set(counts[state])
        if errors := len(done.errors) + len(done.refusals):
            self.schedule_errors.inc(errors)
        self.last_success.set(ended_at)

    def round_failed(self) -> None:
        """A round that could not run at all (its read failed)."""
        self.schedule_errors.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
