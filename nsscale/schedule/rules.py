"""The command's rules for a scheduled `down` (`--grace-period`, `--deployment-time-annotation`,
`--enforce`, `--downtime-replicas`), made into each namespace's own with its annotations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from nsscale.engine.respect import Respect, namespace_rules
from nsscale.kube.objects import Namespace


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
