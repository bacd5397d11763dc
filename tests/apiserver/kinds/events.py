"""Events: one storage served as two kinds, as on a real server -- ``events`` in the core
group (``v1``: ``involvedObject``, ``message``, ``source``, ``firstTimestamp``...) and in
``events.k8s.io/v1`` (``regarding``, ``note``, ``reportingController``,
``deprecatedSource``...). An Event written through either is read through both (stored in the
core shape, converted field by field as the real conversion does), and ``kubectl describe``
finds the Events of an object by a ``fieldSelector`` on ``involvedObject.name``, ``.namespace``,
``.kind`` and ``.uid``.

Validation, as the real server's: an Event without ``eventTime`` (the core shape, as ``kubectl
create`` of one writes it) must name the namespace it is in as ``involvedObject.namespace``
(422 ``... does not match event.namespace``); one with it needs ``reportingComponent``,
``reportingInstance`` and ``action``. Through ``events.k8s.io/v1`` ``eventTime`` is required,
``type`` must be Normal or Warning, and the deprecated fields must be unset. The fields are
kept as written (the server does not default timestamps or counts: a seeded Event,
``ApiServer.add_event``, carries them as the controllers write them). Event TTLs and
the client-side aggregation into ``count``/``series`` are not modelled."""

from __future__ import annotations

import copy
import re
from typing import Any, ClassVar

from tests.apiserver.errors import FieldError, bad_request, go_type, invalid
from tests.apiserver.kinds.base import RW, Column, Kind, ResourceType
from tests.apiserver.tables import age
from tests.apiserver.wire import JSON

__all__ = ["CORE_EVENTS", "EVENTS", "CoreEvents", "Events"]

CORE_EVENTS = ResourceType("", "v1", "events", "event", "Event", True, RW, ("ev",))
EVENTS = ResourceType("events.k8s.io", "v1", "events", "event", "Event", True, RW, ("ev",))

_OMIT = object()  # an unset field that is omitted (omitempty)
# the core shape, in the order the real server writes it: field -> how it is written unset
_CORE_FIELDS: dict[str, Any] = {
    "involvedObject": {},
    "reason": _OMIT,
    "message": _OMIT,
    "source": {},
    "firstTimestamp": None,
    "lastTimestamp": None,
    "count": _OMIT,
    "type": _OMIT,
    "eventTime": None,
    "series": _OMIT,
    "action": _OMIT,
    "related": _OMIT,
    "reportingComponent": "",
    "reportingInstance": "",
}
_STRUCTS = {
    "involvedObject": "ObjectReference",
    "related": "ObjectReference",
    "source": "EventSource",
    "series": "EventSeries",
}
# events.k8s.io/v1 field -> core field
_V1_TO_CORE = {
    "eventTime": "eventTime",
    "series": "series",
    "reportingController": "reportingComponent",
    "reportingInstance": "reportingInstance",
    "action": "action",
    "reason": "reason",
    "regarding": "involvedObject",
    "related": "related",
    "note": "message",
    "type": "type",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
# events.k8s.io/v1 fields always written (not omitempty): value when unset
_V1_ALWAYS: dict[str, Any] = {
    "eventTime": None,
    "regarding": {},
    "deprecatedSource": {},
    "deprecatedFirstTimestamp": None,
    "deprecatedLastTimestamp": None,
}
_INVOLVED = (
    "kind",
    "namespace",
    "name",
    "uid",
    "apiVersion",
    "resourceVersion",
    "fieldPath",
)
_MICRO = re.compile(r"\.\d+Z$")


def _core(fields: JSON, version: str) -> JSON:
    """The core shape of an Event's fields (unset ones as the real server writes them)."""
    out: JSON = {}
    for key, unset in _CORE_FIELDS.items():
        value = fields.get(key)
        if key in _STRUCTS and value is not None and not isinstance(value, dict):
            raise bad_request(
                f'Event in version "{version}" cannot be handled as a Event: json: cannot '
                f"unmarshal {go_type(value)} into Go struct field Event.{key} of type "
                f"v1.{_STRUCTS[key]}"
            )
        if value is None or value == "" or value == 0 or value == {}:
            if unset is not _OMIT:
                out[key] = copy.deepcopy(unset)
            continue
        out[key] = copy.deepcopy(value)
    return out


def _age(timestamp: object) -> str:
    return age(_MICRO.sub("Z", timestamp)) if isinstance(timestamp, str) else "<unknown>"


def _last_seen(obj: JSON) -> str:
    series = obj.get("series") or {}
    if series.get("lastObservedTime"):
        return _age(series["lastObservedTime"])
    return _age(obj.get("lastTimestamp") or obj.get("eventTime"))


def _source(obj: JSON) -> str:
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return f"{component}, {host}" if host else component


def _object(obj: JSON) -> str:
    ref = obj.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


_TABLE = (
    Column("Last Seen", _last_seen),
    Column("Type", lambda obj: obj.get("type") or ""),
    Column("Reason", lambda obj: obj.get("reason") or ""),
    Column("Object", _object),
    Column(
        "Subobject", lambda obj: (obj.get("involvedObject") or {}).get("fieldPath", ""), priority=1
    ),
    Column("Source", _source, priority=1),
    Column("Message", lambda obj: obj.get("message") or ""),
    Column("First Seen", lambda obj: _age(obj.get("firstTimestamp")), priority=1),
    Column("Count", lambda obj: str(obj.get("count") or 1), priority=1),
    Column("Name", lambda obj: obj["metadata"]["name"], priority=1),
)


def _legacy_errors(obj: JSON, reporting: str) -> list[FieldError]:
    """legacyValidateEvent: what every Event must satisfy."""
    errors: list[FieldError] = []
    namespace = obj["metadata"].get("namespace") or ""
    involved = str((obj.get("involvedObject") or {}).get("namespace") or "")
    mismatch = "does not match event.namespace"
    if obj.get("eventTime") is None:
        if (not involved and namespace not in ("", "default")) or (
            involved and involved != namespace
        ):
            errors.append(FieldError("involvedObject.namespace", involved, mismatch))
        return errors
    if not involved and namespace not in ("default", "kube-system"):
        errors.append(FieldError("involvedObject.namespace", involved, mismatch))
    for field, key in (
        (reporting, "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
        ("action", "action"),
    ):
        if not obj.get(key):
            errors.append(FieldError(field, "", "", reason="FieldValueRequired"))
    return errors


class CoreEvents(Kind):
    """``events`` in the core group (``v1``): the shape the store keeps."""

    resource = CORE_EVENTS
    table_columns = _TABLE
    selectable_fields: ClassVar[tuple[str, ...]] = (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
        "metadata.namespace",
        "metadata.name",
    )

    def unsupported_field(self, label: str) -> str:
        return f"field label not supported: {label}"

    def field_value(self, obj: JSON, label: str) -> str:
        if label == "source":  # the component, else the reporting controller
            return str((obj.get("source") or {}).get("component") or "") or str(
                obj.get("reportingComponent") or ""
            )
        return super().field_value(obj, label)

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        obj.update(_core(body, "v1"))
        errors = _legacy_errors(obj, "reportingComponent")
        if errors:
            raise invalid("Event", "", obj["metadata"]["name"], errors)


class Events(CoreEvents):
    """``events.k8s.io/v1``: the same Events, converted to and from the core shape."""

    resource = EVENTS
    selectable_fields = (
        *(f"regarding.{key}" for key in _INVOLVED),
        "reason",
        "reportingController",
        "type",
        "metadata.namespace",
        "metadata.name",
    )

    def field_value(self, obj: JSON, label: str) -> str:
        if label.startswith("regarding."):
            label = "involvedObject." + label.removeprefix("regarding.")
        elif label == "reportingController":
            label = "reportingComponent"
        return super().field_value(obj, label)

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        fields = {core: body.get(v1) for v1, core in _V1_TO_CORE.items()}
        obj["apiVersion"] = CORE_EVENTS.api_version  # stored in the core shape
        obj.update(_core(fields, "v1"))
        errors = _legacy_errors(obj, "reportingController")
        if current is None:
            # ValidateEventCreate: strict for events.k8s.io/v1
            if obj.get("eventTime") is None:
                errors.append(FieldError("eventTime", "", "", reason="FieldValueRequired"))
            if obj.get("type") not in ("Normal", "Warning"):
                why = f"has invalid value: {obj.get('type') or ''}"
                errors.append(FieldError("type", "", why))
            for key in ("firstTimestamp", "lastTimestamp", "count"):
                if obj.get(key):
                    errors.append(FieldError(key, "", "needs to be unset"))
            if any((obj.get("source") or {}).values()):
                errors.append(FieldError("source", "", "needs to be unset"))
        if errors:
            raise invalid("Event", EVENTS.group, obj["metadata"]["name"], errors)

    def present(self, obj: JSON) -> JSON:
        out: JSON = {"kind": "Event", "apiVersion": EVENTS.api_version}
        out["metadata"] = obj["metadata"]
        for v1, core in _V1_TO_CORE.items():
            value = obj.get(core)
            if value not in (None, "", 0, {}):
                out[v1] = value
            elif v1 in _V1_ALWAYS:
                out[v1] = value if value is not None else copy.deepcopy(_V1_ALWAYS[v1])
        return out
