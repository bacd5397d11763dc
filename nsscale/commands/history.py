"""`nsscale history`: the recorded runs in a namespace of the cluster pointed at, newest first."""

from __future__ import annotations

import logging
from dataclasses import replace

from rich.text import Text

from nsscale.audit.auditor import Auditor
from nsscale.audit.trail import since, utcnow
from nsscale.commands.common import Common, Scope, audit_options
from nsscale.commands.options import ALL_CLUSTERS, LIMIT, SINCE, OutputFormat, Parsed
from nsscale.commands.output import print_json, show
from nsscale.commands.tables import history_table
from nsscale.errors import NsscaleError
from nsscale.kube.cluster import ClusterIdentity, read_cluster_id
from nsscale.kube.review import cluster_name
from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")

CLUSTER_ID_TIMEOUT_S = 5.0  # history works offline: a cluster that does not answer soon is skipped


def history(parsed: Parsed) -> None:
    scope, common = Scope.of(parsed), Common.of(parsed)
    common.setup_logging()
    scope.check()
    namespace = scope.named[0]
    kubectl = common.make_kubectl()
    cluster = ClusterIdentity(cluster_name(kubectl))
    if not parsed[ALL_CLUSTERS]:
        cluster = replace(cluster, id=_cluster_id(kubectl, cluster.name))
    source = Auditor(audit_options(parsed)).main
    events = source.history(cluster, namespace, since(parsed[SINCE], utcnow()), parsed[LIMIT])
    name = cluster.name
    if common.output is OutputFormat.JSON:
        document = {"cluster": name, "cluster_id": cluster.id, "namespace": namespace}
        print_json(document | {"source": source.name, "events": events})
    elif events:
        show(history_table(f"nsscale history {namespace} ({name})", events))
    else:
        show(Text(f"No recorded runs in {namespace} ({name}) in the {source.name}."))


def _cluster_id(kubectl: Kubectl, name: str) -> str | None:
    """The id of the cluster the context points at; None, with a warning, when it cannot be
    read: then every run recorded under the cluster's name is shown (from the file, offline)."""
    timeout_s = min(kubectl.config.timeout_s, CLUSTER_ID_TIMEOUT_S)
    quick = replace(kubectl, config=replace(kubectl.config, timeout_s=timeout_s))
    try:
        return read_cluster_id(quick)
    except NsscaleError as err:
        log.warning(
            "could not learn which cluster %s is (%s): showing every run recorded under its name",
            name,
            err,
        )
        return None
