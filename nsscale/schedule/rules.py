"""The command's rules for a scheduled `down` (`--grace-period`, `--deployment-time-annotation`,
`--enforce`, `--downtime-replicas`), made into each namespace's own with its annotations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from nsscale.engine.plan import Selection
from nsscale.engine.respect import Respect, namespace_rules
from nsscale.errors import InvalidRule
from nsscale.kube.objects import Namespace, Workload
from nsscale.schedule.decide import Decision, Policy, decide, invalid


@dataclass(frozen=True)
class Rules:
    grace: timedelta | None = None  # None: not given (the Namespace's, else 15m)
    time_annotation: str | None = None
    enforce: bool = False
    downtime_replicas: int | None = None  # None: not given (0 unless the Namespace says)

    def of(self, namespace: Namespace, at: datetime) -> Respect:
        """The namespace's rules at `at`; InvalidRule for an annotation that cannot be read."""
        return namespace_rules(
            namespace.annotations,
            at,
            grace=self.grace,
            time_annotation=self.time_annotation,
            enforce=self.enforce,
            downtime_replicas=self.downtime_replicas,
        )

    def decide(
        self,
        namespace: Namespace,
        workloads: Iterable[Workload],
        policy: Policy,
        at: datetime,
        selection: Selection,
        *,
        loud: bool = True,
    ) -> tuple[Decision, Respect | None]:
        """What reconcile decides for the namespace at `at`, with the rules its down would keep
        (None when an annotation of theirs cannot be read: that namespace's error, as a bad
        schedule's). `loud`: as `decide`'s."""
        try:
            respect = self.of(namespace, at)
        except InvalidRule as err:
            return invalid(namespace.name, str(err), "annotation", loud=loud), None
        return decide(namespace, workloads, policy, at, selection, respect, loud=loud), respect
