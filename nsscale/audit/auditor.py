"""The audit of runs as the options ask: made before a run, light to import (the audit trail
itself, and boto3 with it, is loaded when the check or the record first needs it)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from nsscale.engine.options import AuditOptions

if TYPE_CHECKING:
    from nsscale.audit.trail import Sink
    from nsscale.engine.plan import Operation
    from nsscale.engine.result import RunResult
    from nsscale.errors import AuditError
    from nsscale.kube.cluster import ClusterIdentity
    from nsscale.kube.review import Review

log = logging.getLogger("nsscale")


class Auditor:
    """The audit of runs as the options ask: the sinks (made once: one AWS client for the check
    before a run and the record after it), the check and the record."""

    def __init__(
        self, options: AuditOptions, caller: str = "", sinks: tuple[Sink, ...] | None = None
    ) -> None:
        """`caller`: who asked for the run, when that is not the process's own user (the
        identity of an `nsscale serve` request); recorded beside the user and host."""
        self.options = options
        self.caller = caller
        self._sinks = sinks

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The local file, and DynamoDB when a table is named."""
        if self._sinks is None:
            from nsscale.audit.trail import make_sinks

            file_sink, table_sink = make_sinks(self.options.table, self.options.file)
            self._sinks = (file_sink, table_sink) if table_sink else (file_sink,)
        return self._sinks

    def for_caller(self, caller: str) -> Auditor:
        """The same audit, recording `caller` as who asked for the run: a server audits each
        request's run with one set of sinks (one AWS client for every run)."""
        return Auditor(self.options, caller, self.sinks)

    def now(self) -> datetime:
        from nsscale.audit.trail import utcnow

        return utcnow()

    @property
    def main(self) -> Sink:
        """The sink `history` reads and --audit-required requires: DynamoDB when a table is
        named, else the file."""
        return self.sinks[-1]

    def check(self) -> None:
        """Before the first change: can the run's record be written? A sink that cannot is a
        warning later (its record is tried all the same); the required one, with
        --audit-required, fails the run here (nothing changed)."""
        from nsscale.audit.trail import check_sinks

        self._required(check_sinks(self.sinks), "the run's record could not be written")

    def started(
        self,
        run_id: str,
        operation: Operation,
        namespaces: Sequence[str],
        review: Review,
        cluster: ClusterIdentity,
        started_at: datetime,
    ) -> None:
        """Just before the first change: the run's start, in every sink. With --audit-required,
        a start the required sink could not keep fails the run here (nothing changed)."""
        from nsscale.audit.trail import RunStart, record, utcnow, who

        start = RunStart(
            run_id,
            operation,
            tuple(namespaces),
            started_at,
            utcnow(),
            cluster,
            who(review, self.caller),
        )
        self._required(record(start, self.sinks), "the run's start could not be recorded")

    def _required(self, failures: Mapping[str, AuditError], what: str) -> None:
        """Raises the required sink's failure, with --audit-required; the others are said
        later, if the run's record fails there too (it is tried all the same)."""
        required = self.main
        for name, err in failures.items():
            if not (self.options.required and name == required.name):
                log.debug("audit: %s", err)
        if self.options.required and required.name in failures:
            err = failures[required.name]
            raise type(err)(
                f"{err.message}: {what}, so nothing was changed (--audit-required)",
                err.hint,
                sink=err.sink,
                code=err.code,
            )

    def record(
        self,
        results: Sequence[RunResult],
        review: Review,
        cluster: ClusterIdentity,
        started_at: datetime,
    ) -> list[RunResult]:
        """Record each namespace's run. A failed write is a warning and an entry of
        `audit_errors`; it fails the run only with --audit-required."""
        from nsscale.audit.trail import AuditEvent, record, who

        by = who(review, self.caller)
        recorded = []
        for result in results:
            event = AuditEvent.from_result(result, by, cluster, started_at)
            failures = record(event, self.sinks)
            for err in failures.values():
                log.warning("audit: %s%s", err, f" ({err.hint})" if err.hint else "")
            recorded.append(
                replace(
                    result,
                    audit_errors=tuple(map(str, failures.values())),
                    audit_missing=self.options.required and self.main.name in failures,
                )
            )
        return recorded

    def by(self, review: Review) -> str:
        """Who ran the run, as its record names them (Who.by)."""
        from nsscale.audit.trail import who

        return who(review, self.caller).by
