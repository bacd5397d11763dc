"""The rules a scheduled `down` keeps for people (SPEC Part 3, "Schedules that respect people"):
a workload in its grace period is left alone, a hand change since nsscale's down wins until the
next up, and a workload may sleep at N replicas instead of 0.

Pure: `make_plan` asks these of each workload, in reconcile's decision and in its run alike, so
the decision to act and the act never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from nsscale.defaults import DEFAULT_GRACE_PERIOD
from nsscale.durations import format_duration, parse_duration
from nsscale.errors import InvalidRule
from nsscale.kube.objects import DOWNTIME_REPLICAS, GRACE_PERIOD, Workload, annotation, parse_count

HAND_CHANGED = "changed by hand since nsscale scaled it"


@dataclass(frozen=True)
class Respect:
    """One namespace's rules for a `down` decided at `at`."""

    at: datetime
    grace: timedelta = DEFAULT_GRACE_PERIOD  # timedelta(0): off
    time_annotation: str | None = None  # a workload annotation with its deployment time
    enforce: bool = False  # a hand change does not hold the workload up
    downtime_replicas: int = 0  # the namespace's (its annotation, else the option)

    def held(self, workload: Workload) -> str | None:
        """Why the down leaves the workload alone, or None."""
        if self.grace and (age := self._age(workload)) is not None and age < self.grace:
            return (
                f"grace period: created {format_duration(_whole_minutes(age))} ago "
                f"({format_duration(self.grace)})"
            )
        scaled_to = workload.state.scaled_to
        if not self.enforce and scaled_to is not None and str(workload.replicas) != scaled_to:
            return HAND_CHANGED
        return None

    def target(self, workload: Workload) -> int:
        """The count the down brings the workload to (InvalidRule: its annotation is no count)."""
        if not workload.kind.scales:  # a CronJob, a ScaledObject: only stopped
            return 0
        if found := annotation(workload.annotations, DOWNTIME_REPLICAS):
            key, value = found
            return replica_count(value, f"{workload.ref}: {key}")
        return self.downtime_replicas

    def _age(self, workload: Workload) -> timedelta | None:
        """How long the workload has existed at `at`: None when it did not exist then."""
        meta = workload.manifest.get("metadata") or {}
        born = [_time(meta.get("creationTimestamp"))]
        if self.time_annotation is not None:
            born.append(_time(workload.annotations.get(self.time_annotation)))
        known = [t for t in born if t is not None]
        if not known:
            return None
        age = self.at - max(known)
        return age if age >= timedelta(0) else None


def replica_count(text: str, what: str) -> int:
    count = parse_count(text)
    if count is None:
        raise InvalidRule(f"{what} is {text!r}, not a replica count (0 or more)")
    return count


def grace_period(text: str, what: str) -> timedelta:
    try:
        return parse_duration(text, "dhms", "a duration", "15m, 1h, 0")
    except ValueError as err:
        raise InvalidRule(f"{what}: {err}") from None


def namespace_rules(
    annotations: Mapping[str, str],
    at: datetime,
    *,
    grace: timedelta | None,
    time_annotation: str | None,
    enforce: bool,
    downtime_replicas: int | None,
) -> Respect:
    """A namespace's rules from its annotations and the options (None: not given). The grace
    period option beats the annotation only when given; the downtime replicas of the Namespace
    beat the option's. InvalidRule for an annotation that cannot be read."""
    if grace is None:
        text = annotations.get(GRACE_PERIOD)
        grace = DEFAULT_GRACE_PERIOD if text is None else grace_period(text, GRACE_PERIOD)
    count = downtime_replicas or 0
    if found := annotation(annotations, DOWNTIME_REPLICAS):
        key, value = found
        count = replica_count(value, f"namespace annotation {key}")
    return Respect(at, grace, time_annotation, enforce, count)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _whole_minutes(age: timedelta) -> timedelta:
    """The age as a person reads it: whole minutes, seconds under one."""
    if age < timedelta(minutes=1):
        return timedelta(seconds=int(age.total_seconds()))
    return timedelta(minutes=int(age.total_seconds() // 60))
