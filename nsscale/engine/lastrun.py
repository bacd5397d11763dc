"""`nsscale/last-run` on each Namespace a run changed: the run's id, operation, outcome, exit
code, end and who ran it, as compact JSON. Kept on the Namespace itself, so that a pod with no
volume and no DynamoDB (the CronJob, a server's page) still knows what last happened there.

Written at the end of every run that wrote some workload there (done, rolled back, or failed
part-way), after its audit record, whatever the interface (command line, Python, serve): never
for a dry run, a refused run or a run with nothing to change. One kubectl call sets it on every
Namespace whose document is the same (usually all of a run's); its failure is a warning, and the
run's result and exit code stand.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nsscale.engine.outcome import run_outcome
from nsscale.engine.result import RunResult
from nsscale.errors import NsscaleError
from nsscale.kube.cluster import annotate_namespaces
from nsscale.kube.objects import LAST_RUN

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")


def changed(result: RunResult) -> bool:
    """Whether the run wrote a workload of its namespace: some write landed (even if undone
    since) or may have."""
    o = result.outcome  # a rollback undoes only these
    return not result.dry_run and bool(o.scaled or o.uncertain)


def last_run(result: RunResult, by: str, at: datetime) -> dict[str, Any]:
    """The annotation's document: `at` is the run's end (RFC 3339, UTC), `by` who ran it."""
    return {
        "run_id": result.run_id,
        "operation": result.operation.value,
        "outcome": run_outcome(result).value,
        "exit_code": result.exit_code,
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "by": by,
    }


def write_last_run(
    kubectl: Kubectl, results: Sequence[RunResult], by: str, at: datetime | None = None
) -> None:
    """Set `nsscale/last-run` on the Namespaces the run changed (see `changed`): one kubectl
    call per distinct document. A failure is a warning: the run is over and stands."""
    at = at or datetime.now(UTC)
    namespaces_of: dict[str, list[str]] = {}
    for result in results:
        if changed(result):
            value = json.dumps(last_run(result, by, at), separators=(",", ":"))
            namespaces_of.setdefault(value, []).append(result.namespace)
    for value, namespaces in namespaces_of.items():
        try:
            annotate_namespaces(kubectl, namespaces, LAST_RUN, value)
        except NsscaleError as err:
            log.warning(
                "could not record the run on the Namespace %s (%s): %s",
                ", ".join(namespaces),
                LAST_RUN,
                err,
            )
