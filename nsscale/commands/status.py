"""`nsscale status`: current, ready and recorded-original replicas per workload (read only)."""

from __future__ import annotations

from nsscale.commands.common import Common, Scope
from nsscale.commands.options import SCALE_RESOURCE, SELECTOR, OutputFormat, Parsed
from nsscale.commands.output import print_json, show
from nsscale.commands.tables import status_table
from nsscale.engine.reads import Lookahead
from nsscale.engine.status import status_document


def status(parsed: Parsed) -> None:
    scope, common = Scope.of(parsed), Common.of(parsed)
    common.setup_logging()
    scope.check()
    kubectl = common.make_kubectl()
    ahead = Lookahead.for_status(
        kubectl,
        scope.named,
        scope.selector,
        parsed[SELECTOR],
        scale_resources=_scale_resources(parsed),
    )
    workloads, autoscalers = ahead.workloads(), ahead.autoscalers()
    if common.output is OutputFormat.JSON:
        documents = [status_document(ns, found, autoscalers) for ns, found in workloads.items()]
        print_json(documents[0] if scope.single else {"namespaces": documents})
        return
    show(*(status_table(namespace, found, autoscalers) for namespace, found in workloads.items()))


def _scale_resources(parsed: Parsed) -> tuple[str, ...]:
    """--scale-resource, each once."""
    named: list[str] | None = parsed[SCALE_RESOURCE]
    return tuple(dict.fromkeys(named or ()))
