"""CronJobs (``batch/v1``). The spec is stored as written, defaulted as the real server
defaults it: ``suspend`` false, ``concurrencyPolicy`` Allow, ``successfulJobsHistoryLimit`` 3,
``failedJobsHistoryLimit`` 1 (a ``suspend`` that is not a boolean is the real 400; a missing
``schedule`` the real 422). ``metadata.generation`` is bumped when the spec changes; the status
is the cronjob controller's (``{}`` here: no Jobs are ever started) and is kept through every
client write; the ``status`` subresource writes it. The job template is stored as written (not
validated, not defaulted)."""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

from tests.apiserver.errors import FieldError, bad_request, go_type, invalid
from tests.apiserver.kinds import status
from tests.apiserver.kinds.base import RW, Column, Kind, ResourceType, Subresource
from tests.apiserver.tables import age
from tests.apiserver.wire import JSON

__all__ = ["CRONJOBS", "CronJobs", "seed_spec"]

CRONJOBS = ResourceType(
    "batch",
    "v1",
    "cronjobs",
    "cronjob",
    "CronJob",
    True,
    RW,
    ("cj",),
    ("all",),
    (Subresource("status", "batch", "v1", "CronJob", ("get", "patch", "update")),),
)

_DEFAULTS: JSON = {
    "concurrencyPolicy": "Allow",
    "suspend": False,
    "successfulJobsHistoryLimit": 3,
    "failedJobsHistoryLimit": 1,
}


def _containers(obj: JSON) -> list[Any]:
    job = obj.get("spec", {}).get("jobTemplate", {}).get("spec", {})
    return list(job.get("template", {}).get("spec", {}).get("containers", []))


def _last_schedule(obj: JSON) -> str:
    when = obj.get("status", {}).get("lastScheduleTime")
    return age(when) if isinstance(when, str) else "<none>"


class CronJobs(Kind):
    resource = CRONJOBS
    generation = True
    handlers = MappingProxyType({"status": status.serve})
    columns = (
        Column("Schedule", lambda obj: obj.get("spec", {}).get("schedule", "")),
        Column("Timezone", lambda obj: obj.get("spec", {}).get("timeZone") or "<none>"),
        Column("Suspend", lambda obj: str(bool(obj.get("spec", {}).get("suspend")))),
        Column("Active", lambda obj: len(obj.get("status", {}).get("active") or ()), "integer"),
        Column("Last Schedule", _last_schedule),
        Column(
            "Containers",
            lambda obj: ",".join(str(c.get("name", "")) for c in _containers(obj)),
            priority=1,
        ),
        Column(
            "Images",
            lambda obj: ",".join(str(c.get("image", "")) for c in _containers(obj)),
            priority=1,
        ),
    )

    def fill(self, obj: JSON, body: JSON, current: JSON | None) -> None:
        rt = self.resource
        spec = self.spec(body)
        for key, default in _DEFAULTS.items():
            if spec.get(key) is None:
                spec[key] = default
        suspend = spec["suspend"]
        if not isinstance(suspend, bool):
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"json: cannot unmarshal {go_type(suspend)} into Go struct field "
                f"{rt.kind}Spec.spec.suspend of type bool"
            )
        if not spec.get("schedule"):
            error = FieldError("spec.schedule", "", "", reason="FieldValueRequired")
            raise invalid(rt.kind, rt.group, obj["metadata"]["name"], [error])
        obj["spec"] = spec
        obj["status"] = copy.deepcopy(current["status"]) if current else {}


def seed_spec(schedule: str, suspend: bool | None, image: str, name: str) -> JSON:
    """The spec of a CronJob added by ``ApiServer.add_cronjob`` (``suspend`` None: absent
    from what was written, so defaulted to false)."""
    spec: JSON = {
        "schedule": schedule,
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": name,
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "resources": {},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File",
                            }
                        ],
                        "restartPolicy": "OnFailure",
                        "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst",
                        "securityContext": {},
                        "schedulerName": "default-scheduler",
                    }
                }
            }
        },
    }
    if suspend is not None:
        spec["suspend"] = suspend
    return spec
