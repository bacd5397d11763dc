"""What goes over the wire: the JSON alias, the media types, and the shape of an answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "AGGREGATED_CT",
    "JSON",
    "JSON_CT",
    "JSON_PATCH",
    "MERGE_PATCH",
    "OPENAPI_V2_CT",
    "PROTOBUF_CT",
    "STRATEGIC_PATCH",
    "Answer",
    "Reply",
    "now",
    "reply",
]

JSON = dict[str, Any]

JSON_CT = "application/json"
AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PROTOBUF_CT = "application/vnd.kubernetes.protobuf"
OPENAPI_V2_CT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# (status, body, content type): what a route answers
Reply = tuple[int, bytes, str]


@dataclass(frozen=True)
class Answer:
    """What is sent back for one request; ``unhandled``: also record it in ``unhandled``."""

    code: int
    body: bytes
    content_type: str = JSON_CT
    headers: dict[str, str] = field(default_factory=dict)
    unhandled: bool = False


def reply(code: int, body: Any, content_type: str = JSON_CT) -> Reply:
    """``body`` as compact JSON, like the real server writes it."""
    return code, json.dumps(body, separators=(",", ":")).encode(), content_type


def now() -> str:
    """A ``creationTimestamp``: RFC 3339, whole seconds, UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
