"""HorizontalPodAutoscalers (``autoscaling/v2``, the group's preferred version). The spec is
stored as written and defaulted as the real server does: ``minReplicas`` 1, and without
``metrics`` one CPU target of 80% average utilization. Validated as the real server does in
part: ``scaleTargetRef.kind``/``name`` required, ``maxReplicas`` above 0 and not below
``minReplicas``, ``minReplicas`` at least 1 (422 Invalid). ``metadata.generation`` is bumped
when the spec changes. The status is the HPA controller's and is kept through every client
write: on create ``{"desiredReplicas": 0}`` (``currentReplicas`` is omitempty); a seeded HPA
(``ApiServer.add_hpa``) reports its target's replicas. The HPA controller itself is not
simulated: it never scales its target."""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

from tests.apiserver.errors import FieldError, bad_request, go_type, invalid
from tests.apiserver.kinds import status
from tests.apiserver.kinds.base import RW, Column, Kind, ResourceType, Subresource
from tests.apiserver.wire import JSON

__all__ = ["HORIZONTAL_POD_AUTOSCALERS", "HorizontalPodAutoscalers", "seed_status"]

HORIZONTAL_POD_AUTOSCALERS = ResourceType(
    "autoscaling",
    "v2",
    "horizontalpodautoscalers",
    "horizontalpodautoscaler",
    "HorizontalPodAutoscaler",
    True,
    RW,
    ("hpa",),
    ("all",),
    (
        Subresource(
            "status", "autoscaling", "v2", "HorizontalPodAutoscaler", ("get", "patch", "update")
        ),
    ),
)

DEFAULT_METRICS: list[JSON] = [
    {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
]


def _reference(obj: JSON) -> str:
    ref = obj.get("spec", {}).get("scaleTargetRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _targets(obj: JSON) -> str:
    shown = []
    for metric in obj.get("spec", {}).get("metrics") or ():
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if "averageUtilization" in target:
            shown.append(f"{resource.get('name', '')}: <unknown>/{target['averageUtilization']}%")
        else:
            shown.append("<unknown>")
    return ", ".join(shown) or "<none>"


def _int32(rt_kind: str, field: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(
            f'{rt_kind} in version "v2" cannot be handled as a {rt_kind}: json: cannot '
            f"unmarshal {go_type(value)} into Go struct field "
            f"HorizontalPodAutoscalerSpec.spec.{field} of type int32"
        )
    return value


class HorizontalPodAutoscalers(Kind):
    resource = HORIZONTAL_POD_AUTOSCALERS
    generation = True
    handlers = MappingProxyType({"status": status.serve})
    columns = (
        Column("Reference", _reference),
        Column("Targets", _targets),
        Column("MinPods", lambda obj: obj.get("spec", {}).get("minReplicas", 1), "integer"),
        Column("MaxPods", lambda obj: obj.get("spec", {}).get("maxReplicas", 0), "integer"),
        Column("Replicas", lambda obj: obj.get("status", {}).get("currentReplicas", 0), "integer"),
    )

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        rt = self.resource
        spec = self.spec(body)
        if spec.get("minReplicas") is None:
            spec["minReplicas"] = 1
        if not spec.get("metrics"):
            spec["metrics"] = copy.deepcopy(DEFAULT_METRICS)
        low = _int32(rt.kind, "minReplicas", spec["minReplicas"])
        high = _int32(rt.kind, "maxReplicas", spec.get("maxReplicas")) or 0
        errors: list[FieldError] = []
        ref = spec.get("scaleTargetRef")
        ref = ref if isinstance(ref, dict) else {}
        for key in ("kind", "name"):
            if not ref.get(key):
                errors.append(
                    FieldError(f"spec.scaleTargetRef.{key}", "", "", reason="FieldValueRequired")
                )
        if low is not None and low < 1:
            errors.append(FieldError("spec.minReplicas", low, "must be greater than or equal to 1"))
        if high < 1:
            errors.append(FieldError("spec.maxReplicas", high, "must be greater than 0"))
        elif low is not None and high < low:
            why = "must be greater than or equal to `minReplicas`"
            errors.append(FieldError("spec.maxReplicas", high, why))
        if errors:
            raise invalid(rt.kind, rt.group, obj["metadata"]["name"], errors)
        obj["spec"] = spec
        obj["status"] = copy.deepcopy(current["status"]) if current else {"desiredReplicas": 0}


def seed_status(low: int, high: int, target: JSON | None) -> JSON:
    """The status the HPA controller reports for a target at its replicas: none scaled at 0
    (scaling is disabled then), else within ``low``..``high`` (min and max replicas)."""
    if target is None:
        return {"desiredReplicas": 0}
    current = int(target.get("spec", {}).get("replicas", 1))
    out: JSON = {}
    if current:
        out["currentReplicas"] = current
    out["desiredReplicas"] = min(max(current, low), high) if current else 0
    return out
