"""Rendering: results as Rich tables for people, as one JSON document for machines."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nsscale.errors import ExitCode
from nsscale.result import RunResult
from nsscale.workload import ORIGINAL, SCALED_TO, Workload

ARROW = "→"


def print_json(console: Console, document: dict[str, Any]) -> None:
    # Plain print: Rich must not wrap or colour a document meant for machines.
    console.file.write(json.dumps(document, indent=2) + "\n")
    console.file.flush()


def run_table(result: RunResult) -> Table:
    o = result.outcome
    restored = {r.change.workload.key: r for r in o.rollback or []}
    table = Table(title=f"nsscale {result.operation} {result.namespace}", title_justify="left")
    for column in ("kind", "name", "replicas", "status", "detail"):
        table.add_column(column, overflow="fold")
    for s in o.scaled:
        w, change = s.change.workload, s.change
        status, style = ("would scale", "cyan") if result.dry_run else ("scaled", "green")
        detail = ""
        if (r := restored.get(w.key)) is not None:
            status, style = ("rolled back", "yellow") if r.ok else ("LEFT CHANGED", "bold red")
            detail = "" if r.ok else r.failure.message if r.failure else ""
        _row(
            table,
            w.kind,
            w.name,
            _move(change.from_replicas, change.to_replicas),
            Text(status, style),
            detail,
        )
    for f in o.failed + o.uncertain:
        w, change = f.change.workload, f.change
        _row(
            table,
            w.kind,
            w.name,
            _move(change.from_replicas, change.to_replicas),
            Text("failed", "red"),
            f.failure.message,
        )
    for skip in result.plan.skips:
        w = skip.workload
        _row(table, w.kind, w.name, str(w.replicas), Text("skipped", "dim"), skip.reason)
    return table


def rollback_table(result: RunResult) -> Table | None:
    if result.outcome.rollback is None:
        return None
    table = Table(title="rollback", title_justify="left")
    for column in ("kind", "name", "restored to", "status", "detail"):
        table.add_column(column, overflow="fold")
    for r in result.outcome.rollback:
        w = r.change.workload
        status = Text("restored", "green") if r.ok else Text("FAILED", "bold red")
        detail = r.failure.message if r.failure else ""
        _row(table, w.kind, w.name, str(r.change.from_replicas), status, detail)
    return table


def summary(result: RunResult) -> Text:
    o = result.outcome
    ns = result.namespace
    skipped = f", {len(result.plan.skips)} skipped" if result.plan.skips else ""
    if result.dry_run and o.success:
        return Text(f"Dry run: {len(o.scaled)} would be scaled{skipped} in {ns}; nothing changed.")
    if o.success:
        if not o.scaled:
            return Text(f"Nothing to do in {ns}{skipped}.", "green")
        verb = "restored" if result.operation == "up" else "scaled"
        return Text(f"{ns}: {len(o.scaled)} {verb}{skipped}.", "green")
    left = result.left_changed
    if left:
        names = ", ".join(f"{w.ref} (at {n})" for w, n in left)
        return Text(
            f"{ns} is PARTLY CHANGED: {len(left)} workload(s) left changed: {names}. "
            "A person must look (their originals are kept in the annotation "
            f"{ORIGINAL}).",
            "bold red",
        )
    if o.rollback is not None:
        return Text(
            f"{ns}: failed; {len(o.rollback)} change(s) rolled back: the namespace is as it was.",
            "yellow",
        )
    if result.exit_code == ExitCode.PARTIAL:
        return Text(f"{ns}: failed; state of some workloads unknown: check them.", "bold red")
    return Text(f"{ns}: failed; nothing was changed.", "yellow")


def status_table(namespace: str, workloads: Sequence[Workload]) -> Table:
    table = Table(title=f"nsscale status {namespace}", title_justify="left")
    for column in ("kind", "name", "replicas", "ready", "original", "set by nsscale"):
        table.add_column(column)
    for w in workloads:
        _row(
            table,
            w.kind,
            w.name,
            str(w.replicas),
            str(w.ready),
            w.annotations.get(ORIGINAL, "-"),
            w.annotations.get(SCALED_TO, "-"),
        )
    return table


def status_document(namespace: str, workloads: Sequence[Workload]) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "workloads": [
            {
                "type": w.kind.value,
                "name": w.name,
                "replicas": w.replicas,
                "ready_replicas": w.ready,
                "original_replicas": w.annotations.get(ORIGINAL),
                "scaled_replicas": w.annotations.get(SCALED_TO),
            }
            for w in workloads
        ],
    }


def history_table(title: str, events: Sequence[Mapping[str, Any]]) -> Table:
    """Recorded runs, newest first; `--output json` has every field, the run id among them."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("time (UTC)", "op", "outcome", "scaled", "failed", "skipped"):
        table.add_column(column, no_wrap=True)
    table.add_column("by", overflow="fold", min_width=10)
    for e in events:
        when = str(e.get("time", "")).replace("T", " ")[:19]
        by = f"{e.get('kubectl_user') or e.get('user')}@{e.get('host')}"
        counts = (str(e.get(k, "")) for k in ("total_scaled", "total_failed", "total_skipped"))
        _row(table, when, str(e.get("operation", "")), str(e.get("outcome", "")), *counts, by)
    return table


def _move(before: int, after: int) -> str:
    return f"{before} {ARROW} {after}"


def _row(table: Table, *cells: str | Text) -> None:
    """Add a row; plain strings stay plain (kubectl's messages may hold [brackets])."""
    table.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells))
