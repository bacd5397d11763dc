"""The ``meta.k8s.io/v1`` Table that kubectl's human-readable ``get`` asks for
(``Accept: ...;as=Table``): NAME, the kind's columns, AGE, then the kind's ``-o wide``
columns (or the kind's own ``table_columns``: Events); each row carries the object's
metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.apiserver.kinds.base import Column, Kind
from tests.apiserver.wire import JSON

__all__ = ["age", "table"]


def age(timestamp: str) -> str:
    """The AGE column, like k8s.io/apimachinery's duration.HumanDuration."""
    try:
        created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    secs = max(0, int((datetime.now(UTC) - created).total_seconds()))
    mins, hours, days = secs // 60, secs // 3600, secs // 86400
    if secs < 120:
        return f"{secs}s"
    if mins < 10:
        return f"{mins}m{secs % 60}s" if secs % 60 else f"{mins}m"
    if hours < 3:
        return f"{mins}m"
    if hours < 8:
        return f"{hours}h{mins % 60}m" if mins % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{days}d"


_NAME = Column("Name", lambda obj: obj["metadata"]["name"])
_AGE = Column("Age", lambda obj: age(obj["metadata"].get("creationTimestamp", "")))


def _definition(column: Column) -> JSON:
    return {
        "name": column.name,
        "type": column.type,
        "format": "name" if column.name == "Name" else "",
        "description": column.name,
        "priority": column.priority,
    }


def table(kind: Kind, objs: list[JSON], list_meta: JSON) -> JSON:
    columns = list(kind.table_columns or ()) or [
        _NAME,
        *(c for c in kind.columns if c.priority == 0),
        _AGE,
        *(c for c in kind.columns if c.priority > 0),
    ]
    rows: list[Any] = [
        {
            "cells": [column.cell(obj) for column in columns],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            },
        }
        for obj in objs
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [_definition(c) for c in columns],
        "rows": rows,
    }
