"""One request as the server handles it: what its path names, its verb, its deadline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tests.apiserver.errors import ApiError, bad_request

if TYPE_CHECKING:
    from tests.apiserver.faults import Fault
    from tests.apiserver.kinds.base import Kind

__all__ = ["Request", "go_duration", "json_body"]


@dataclass
class Request:
    """A request being served: what the client sent, and what routing found in its path."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    area: Literal["discovery", "openapi", "resource", "unknown"] = "unknown"
    kind: Kind | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    extra: bool = False  # path has segments past what the server understands
    received: float = 0.0  # time.monotonic() when the server took it up, after ``latency``
    late: Fault | None = None  # a ``late`` fault: do the write after the connection is closed
    # RBAC lets the caller ``create`` this object: asked of a PUT that may create (routing.py)
    may_create: bool = True

    @property
    def resource(self) -> str | None:
        """The RBAC resource (``deployments/scale``), ``discovery`` or ``openapi``; None if
        the path is not understood."""
        if self.area in ("discovery", "openapi"):
            return self.area
        if self.kind is None:
            return None
        plural = self.kind.resource.plural
        return f"{plural}/{self.subresource}" if self.subresource else plural

    @property
    def verb(self) -> str:
        """The RBAC verb: get, list, watch, create, update, patch, delete, deletecollection."""
        m = self.method
        if m == "GET":
            if self.name is None:
                return "watch" if self.query.get("watch") in ("true", "1") else "list"
            return "get"
        if m == "DELETE":
            return "delete" if self.name is not None else "deletecollection"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(m, m.lower())

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"

    @property
    def timeout(self) -> float | None:
        """Seconds of the request's own ``?timeout=`` (kubectl's ``--request-timeout``); None
        without one. As in the real server, ``0s`` means none."""
        seconds = go_duration(self.query.get("timeout"))
        return seconds if seconds is not None and seconds > 0 else None

    @property
    def deadline(self) -> float | None:
        """When the server cuts the request (``time.monotonic()``), None if never."""
        timeout = self.timeout
        return None if timeout is None else self.received + timeout


def json_body(req: Request) -> Any:
    """The request's JSON body (415 for another media type, 400 if it does not parse)."""
    content_type = req.headers.get("Content-Type", "")
    if content_type and "json" not in content_type:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media "
            f'types include: application/json, not "{content_type}"',
            unhandled=True,
        )
    try:
        return json.loads(req.body or b"null")
    except ValueError as err:
        raise bad_request(f"the request body is not JSON: {err}") from None


def go_duration(text: str | None) -> float | None:
    """Seconds in a Go duration as kubectl sends it ("30s", "1m0s", "500ms"); None if absent."""
    if not text:
        return None
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    i = 0
    while i < len(text):
        if text[i].isdigit() or text[i] == ".":
            number += text[i]
            i += 1
            continue
        unit = next(u for u in ("ms", "us", "ns", "h", "m", "s") if text.startswith(u, i))
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    return total
