"""`nsscale history`: the recorded runs in a namespace, newest first."""

from __future__ import annotations

from rich.text import Text

from nsscale.audit.auditor import Auditor
from nsscale.audit.trail import since, utcnow
from nsscale.commands.common import Common, Scope, audit_options
from nsscale.commands.options import LIMIT, SINCE, OutputFormat, Parsed
from nsscale.commands.output import print_json, show
from nsscale.commands.tables import history_table
from nsscale.kube.review import cluster_name


def history(parsed: Parsed) -> None:
    scope, common = Scope.of(parsed), Common.of(parsed)
    common.setup_logging()
    scope.check()
    namespace = scope.named[0]
    cluster = cluster_name(common.make_kubectl())
    source = Auditor(audit_options(parsed)).main
    events = source.history(cluster, namespace, since(parsed[SINCE], utcnow()), parsed[LIMIT])
    if common.output is OutputFormat.JSON:
        document = {"cluster": cluster, "namespace": namespace, "source": source.name}
        print_json(document | {"events": events})
    elif events:
        show(history_table(f"nsscale history {namespace} ({cluster})", events))
    else:
        show(Text(f"No recorded runs in {namespace} ({cluster}) in the {source.name}."))
