"""Is there a kubeconfig kubectl can use?

With no kubeconfig file, or one with no current context, or whose context's cluster has no
server, kubectl falls back to http://localhost:8080 and says only "The connection to the server
localhost:8080 was refused": nsscale would retry that as a passing failure. The executor asks
here when kubectl says so (never on a run that works: no cost then), and turns it into bad
input naming the file and the fix.

kubectl's rules: `--kubeconfig FILE`, else `$KUBECONFIG` (a list of files; those missing are
skipped; the first file that sets a value wins), else ~/.kube/config. Which files exist is seen
here; what they say together is kubectl's own merge (`kubectl config view -o json`, the
`view` given), so every form of YAML kubectl reads is read alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nsscale.errors import KubeconfigError

FIX = "point $KUBECONFIG or --kubeconfig at your cluster's kubeconfig"


def kubeconfig_problem(
    kubeconfig: str | None, context: str | None, view: Callable[[], Mapping[str, Any] | None]
) -> KubeconfigError | None:
    """Why kubectl has no cluster to talk to with this --kubeconfig (or kubectl's default
    files) and --context, or None when the files name one (or cannot be read). `view`: the
    files merged as kubectl merges them, or None when kubectl could not say."""
    files, named = _files(kubeconfig)
    found = [f for f in files if f.is_file()]
    where = ", ".join(str(f) for f in files)
    if not found:
        what = "does not exist" if len(files) == 1 else "do not exist"
        return _problem(f"{named} {where}, which {what}", where)
    config = view()
    if config is None:
        return None  # kubectl's own message says more
    contexts = _named(config.get("contexts"), "context")
    clusters = _named(config.get("clusters"), "cluster")
    where = ", ".join(str(f) for f in found)
    chosen = context or config.get("current-context") or ""
    if not chosen:
        return _problem(
            f"{where} has no current context",
            where,
            "choose one: kubectl config use-context NAME, or --context NAME",
        )
    ctx = contexts.get(chosen)
    if ctx is None:
        return None if context else _problem(f"its current context {chosen!r} is not in it", where)
    cluster_name = ctx.get("cluster")
    cluster = clusters.get(cluster_name) if isinstance(cluster_name, str) else None
    if not (cluster and cluster.get("server")):
        return _problem(
            f"the cluster {cluster_name!r} of context {chosen!r} in {where} has no server",
            where,
            f"set it: kubectl config set-cluster {cluster_name} --server=https://HOST:PORT",
        )
    return None


def _named(entries: object, field: str) -> dict[str, Mapping[str, Any]]:
    """A kubeconfig list (`contexts`, `clusters`) by name: each entry's `field` mapping."""
    named: dict[str, Mapping[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            inner = entry.get(field)
            named.setdefault(entry["name"], inner if isinstance(inner, dict) else {})
    return named


def _problem(what: str, where: str, fix: str = FIX) -> KubeconfigError:
    return KubeconfigError(f"no usable kubeconfig: {what}; {fix}", kubeconfig=where)


def _files(kubeconfig: str | None) -> tuple[list[Path], str]:
    if kubeconfig:
        return [Path(kubeconfig)], "--kubeconfig names"
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return [Path(p) for p in listed], "$KUBECONFIG names"
    return [Path.home() / ".kube" / "config"], "there is no $KUBECONFIG, and"
