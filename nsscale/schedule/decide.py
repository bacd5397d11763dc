"""What `nsscale reconcile` does to one namespace at one instant: from its schedule (its own
annotation, else the command's), its `nsscale/pause-until`, and its workloads as read.

Pure: the decision to act is the planner's own (a run is made only where `make_plan` finds a
change), so a namespace already as its schedule wants gets no write, no mark and no record.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from nsscale.defaults import DEFAULT_TIMEZONE
from nsscale.engine.plan import (
    Operation,
    Selection,
    excluded_until,
    make_plan,
)
from nsscale.engine.respect import Respect
from nsscale.errors import UsageError
from nsscale.kube.objects import (
    EXCLUDE,
    KUBE_DOWNSCALER,
    PAUSE_UNTIL,
    Namespace,
    Workload,
    annotation,
)
from nsscale.schedule.grammar import ScheduleError, parse_schedule, time_zone
from nsscale.schedule.windows import Schedule

log = logging.getLogger("nsscale")

UPTIME = "nsscale/uptime"  # on a Namespace: when it should be up (else down)
DOWNTIME = "nsscale/downtime"  # on a Namespace: when it should be down (else up)


class Action(enum.StrEnum):
    DOWN = "down"
    UP = "up"
    NONE = "none"  # already as wanted
    PAUSED = "paused"  # nsscale/pause-until is still ahead
    SKIPPED = "skipped"  # no schedule
    ERROR = "error"  # an annotation that cannot be read: the run fails, loudly


@dataclass(frozen=True)
class Policy:
    """The command's own schedule (at most one of the two) and its default time zone."""

    uptime: Schedule | None = None
    downtime: Schedule | None = None
    timezone: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Decision:
    namespace: str
    action: Action
    reason: str
    schedule: str | None = None  # as described, when there is one
    source: str | None = None  # "annotation", "kube-downscaler annotation" or "option"
    desired: str | None = None  # "up" or "down", when a schedule said

    @property
    def operation(self) -> Operation | None:
        return {Action.DOWN: Operation.DOWN, Action.UP: Operation.UP}.get(self.action)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "namespace": self.namespace,
            "schedule": self.schedule,
            "schedule_source": self.source,
            "desired": self.desired,
            "action": self.action.value,
            "reason": self.reason,
        }


def policy_of(uptime: str | None, downtime: str | None, timezone: str) -> Policy:
    """The command line's schedule; UsageError naming the option and the bad part."""
    if uptime is not None and downtime is not None:
        raise UsageError(
            "--uptime and --downtime together: give one",
            "a namespace is down outside its uptime, or up outside its downtime",
        )
    try:
        time_zone(timezone)
    except ScheduleError as err:
        raise UsageError(f"invalid --timezone: {err}", "use an IANA name: Europe/Madrid") from err
    option, text = ("--uptime", uptime) if uptime is not None else ("--downtime", downtime)
    try:
        schedule = parse_schedule(text, timezone) if text is not None else None
    except ScheduleError as err:
        raise UsageError(f"invalid {option}: {err}", "see `nsscale reconcile --help`") from err
    if uptime is not None:
        return Policy(uptime=schedule, timezone=timezone)
    return Policy(downtime=schedule, timezone=timezone)


def instant(text: str | None) -> datetime:
    """--at as an aware datetime (now without it); UsageError without an offset."""
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise UsageError(
            f"invalid --at {text!r}: an RFC 3339 time with an offset is needed",
            "for example 2026-12-24T22:00:00+01:00 or 2026-12-24T21:00:00Z",
        )
    return at


def decide(
    namespace: Namespace,
    workloads: Iterable[Workload],
    policy: Policy,
    at: datetime,
    selection: Selection,
    respect: Respect | None = None,
    *,
    loud: bool = True,
) -> Decision:
    """`respect`: the namespace's rules for a down (grace period, hand changes, sleeping at N).
    `loud`: an annotation that cannot be read is also said in the log (a view that only shows
    it, polled every few seconds, says it in its answer alone)."""
    name = namespace.name
    paused = pause_until(namespace, loud=loud)
    if paused is not None and at < paused:
        return Decision(name, Action.PAUSED, f"paused until {paused.isoformat()}")
    excluded = excluded_until(namespace.annotations, at)
    if excluded is not None:
        why, unreadable = excluded
        if unreadable:
            return invalid(name, f"its {why.removeprefix('excluded: ')}", "annotation", loud)
        return Decision(name, Action.SKIPPED, why)
    key, value = annotation(namespace.annotations, EXCLUDE) or (EXCLUDE, "false")
    if value.lower() == "true":  # kube-downscaler's teams exclude whole namespaces this way
        return Decision(name, Action.SKIPPED, f"excluded (annotation {key})")
    found = ruling_schedule(namespace, policy, loud=loud)
    if isinstance(found, Decision):
        return found
    schedule, source, is_uptime = found
    inside = schedule.contains(at)
    desired = Operation.UP if inside == is_uptime else Operation.DOWN
    window = "inside" if inside else "outside"
    kind = "uptime" if is_uptime else "downtime"
    plan = make_plan(name, desired, workloads, selection=selection, respect=respect)
    described = schedule.describe()
    held = [f"{skip.workload.ref} {skip.reason}" for skip in plan.skips if skip.held]
    if not plan.changes and held:  # wanted down, but not yet: say why, not "already down"
        action, why = Action.NONE, f"{window} its {kind} {described}: left alone, {held[0]}"
        why += f" (and {len(held) - 1} more)" if len(held) > 1 else ""
    elif not plan.changes:
        action, why = Action.NONE, f"already {desired.value} ({window} its {kind} {described})"
    else:
        action = Action.DOWN if desired is Operation.DOWN else Action.UP
        why = f"{window} its {kind} {described}: {len(plan.changes)} to bring {desired.value}"
    return Decision(name, action, why, described, source, desired.value)


def pause_until(namespace: Namespace, *, loud: bool = True) -> datetime | None:
    """Its `nsscale/pause-until`, when set and readable (an unreadable one is ignored, and a
    warning when `loud`)."""
    value = namespace.annotations.get(PAUSE_UNTIL)
    if value is None:
        return None
    try:
        until = datetime.fromisoformat(value.strip())
    except ValueError:
        until = None
    if until is None or until.tzinfo is None:
        if not loud:
            return None
        log.warning(
            "namespace %s: %s is %r, not an RFC 3339 time with an offset: ignored",
            namespace.name,
            PAUSE_UNTIL,
            value,
        )
        return None
    return until


def ruling_schedule(
    namespace: Namespace, policy: Policy, *, loud: bool = True
) -> tuple[Schedule, str, bool] | Decision:
    """The schedule that rules the namespace: (it, where from, is it an uptime), or the
    decision to skip it. kube-downscaler's annotations count only without nsscale's."""
    name, annotations = namespace.name, namespace.annotations
    own = UPTIME in annotations or DOWNTIME in annotations
    source = "annotation" if own else "kube-downscaler annotation"
    uptime, downtime = (
        (UPTIME, DOWNTIME) if own else (KUBE_DOWNSCALER[UPTIME], KUBE_DOWNSCALER[DOWNTIME])
    )
    if uptime in annotations and downtime in annotations:
        return invalid(name, f"both {uptime} and {downtime} are set: keep one", source, loud)
    for key, is_uptime in ((uptime, True), (downtime, False)):
        if key in annotations:
            try:
                return parse_schedule(annotations[key], policy.timezone), source, is_uptime
            except ScheduleError as err:
                return invalid(name, f"its {key} cannot be read: {err}", source, loud)
    if policy.uptime is not None:
        return policy.uptime, "option", True
    if policy.downtime is not None:
        return policy.downtime, "option", False
    return Decision(name, Action.SKIPPED, "no schedule")


def invalid(namespace: str, why: str, source: str, loud: bool = True) -> Decision:
    """A namespace left as it is because of its annotations, said on stderr as an error
    (`loud`)."""
    if loud:
        log.error("namespace %s left as it is: %s", namespace, why)
    return Decision(namespace, Action.ERROR, why, source=source)
