"""What a run asks of its audit. The engine is given one (`nsscale.audit.auditor.Auditor` in
production) and never imports the audit itself: the trail, and boto3 with it, stays above."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nsscale.engine.plan import Operation
    from nsscale.engine.result import RunResult
    from nsscale.kube.cluster import ClusterIdentity
    from nsscale.kube.review import Review


class Audit(Protocol):
    def now(self) -> datetime:
        """The audit's clock: a run's start is stamped by the trail that records it."""

    def check(self) -> None:
        """Before the first change: raises when the run's record could not be written and
        that must stop the run."""

    def started(
        self,
        run_id: str,
        operation: Operation,
        namespaces: Sequence[str],
        review: Review,
        cluster: ClusterIdentity,
        started_at: datetime,
    ) -> None:
        """Just before the run's first change (never for a dry run, nor a run with nothing to
        change): record that it started, so that a run killed before its end is still known.
        Raises when that could not be recorded and that must stop the run."""

    def record(
        self,
        results: Sequence[RunResult],
        review: Review,
        cluster: ClusterIdentity,
        started_at: datetime,
    ) -> list[RunResult]:
        """Record each namespace's run; the results with what could not be recorded."""

    def by(self, review: Review) -> str:
        """Who ran the run, in a few words: the caller of a served run, else the kube user
        (or the OS user) at the host."""
