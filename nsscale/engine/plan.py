"""Planning: from the workloads of a namespace to the changes a run makes and the ones it skips.

Pure logic over plain data: no kubectl here, so dry runs and real runs share every decision.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from nsscale.engine.respect import Respect
from nsscale.errors import InvalidNamespace, InvalidRule, UsageError
from nsscale.kube.kinds import EXCLUDABLE_KINDS
from nsscale.kube.objects import (
    EXCLUDE,
    EXCLUDE_UNTIL,
    ORIGINAL,
    Kind,
    State,
    Workload,
    annotation,
    parse_count,
)

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def check_namespace(name: str) -> str:
    """The name if it is an RFC 1123 label (what Kubernetes accepts); InvalidNamespace if not."""
    if len(name) > 63:
        raise InvalidNamespace(f"invalid namespace {name!r}: longer than 63 characters")
    if not _RFC1123_LABEL.fullmatch(name):
        raise InvalidNamespace(
            f"invalid namespace {name!r}: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


class Operation(enum.StrEnum):
    DOWN = "down"
    UP = "up"
    SCALE = "scale"
    RECOVER = "recover"  # undo an interrupted run from its snapshot

    @property
    def seed_name(self) -> str:
        """The name the seed (and its audit items) gives the operation (docs/contract.md)."""
        return {"down": "scale_down", "up": "scale_up"}.get(self.value, self.value)


@dataclass(frozen=True)
class Change:
    """One workload moved from `before` to `after` (replicas and nsscale's annotations)."""

    workload: Workload
    after: State
    # The namespace of the run the change belongs to, when it is not the object's own: a
    # GitOps owner lives apart from the namespaces it applies.
    scope: str = ""

    @property
    def namespace(self) -> str:
        return self.scope or self.workload.namespace

    @property
    def before(self) -> State:
        return self.workload.state

    @property
    def from_replicas(self) -> int:
        return self.before.replicas

    @property
    def to_replicas(self) -> int:
        return self.after.replicas


NO_ORIGINAL = "no recorded original: nsscale has not scaled it"  # `up`: not nsscale's to restore


@dataclass(frozen=True)
class Skip:
    workload: Workload
    reason: str
    warn: bool = False  # a person should hear of it (an annotation nsscale cannot read)
    held: bool = False  # left alone for a person: a grace period, a change by hand


# The kinds --exclude names: those read with the workloads, and the ScaledObjects paused beside
# them (one excluded is not paused).
EXCLUDE_KINDS = tuple(dict.fromkeys((*EXCLUDABLE_KINDS, Kind.SCALEDOBJECT)))


def kind_names(kinds: Iterable[Kind] = EXCLUDE_KINDS) -> dict[str, Kind]:
    """Every name kubectl takes for each kind, lowercase: its kind, plural and short names,
    and the kind or plural with its group, as `kubectl get -o name` prints it
    (`deployment.apps`), or its version and group (`deployments.v1.apps`)."""
    names: dict[str, Kind] = {}
    for kind in kinds:
        group, _, version = kind.api_version.rpartition("/")
        for name in (kind.value, kind.plural):
            names[name] = kind
            if group:
                names[f"{name}.{group}"] = names[f"{name}.{version}.{group}"] = kind
        names.update(dict.fromkeys(kind.info.short_names, kind))
    return names


@dataclass(frozen=True)
class Selection:
    """Which workloads take part. `selector` (kubectl's label selector) is applied by the read
    itself: the others are never seen. `excludes` are `NAME` (that name in every kind) or
    `KIND/NAME`, KIND as kubectl names it (`deploy/web`, `deployment.apps/web`); they,
    workloads annotated `nsscale/exclude: "true"` and workloads a controller owns are skipped,
    each with its reason."""

    selector: str | None = None
    excludes: tuple[str, ...] = ()
    at: datetime | None = None  # the instant an exclude-until is compared with (None: now)

    def __post_init__(self) -> None:
        _ = self.excluded_names  # a bad one is a UsageError before anything is read

    @cached_property
    def excluded_names(self) -> list[tuple[str, Kind | None, str]]:
        """Each --exclude as (what was given, its kind or None for every kind, its name)."""
        known = kind_names()
        parsed = []
        for item in self.excludes:
            kind, _, name = item.rpartition("/")
            if not name or "/" in kind:
                raise UsageError(
                    f"invalid --exclude {item!r}: use NAME or KIND/NAME",
                    "for example: --exclude web, --exclude deploy/web",
                )
            if kind and kind.lower() not in known:
                raise UsageError(
                    f"invalid --exclude {item!r}: no kind {kind!r}", _accepted_kinds(known)
                )
            parsed.append((item, known[kind.lower()] if kind else None, name))
        return parsed

    def excluded(self, workload: Workload) -> Skip | None:
        """Why the workload takes no part, or None if it does."""
        for item, kind, name in self.excluded_names:
            if name == workload.name and kind in (None, workload.kind):
                return Skip(workload, f"excluded (--exclude {item})")
        until = excluded_until(workload.annotations, self.at or datetime.now(UTC))
        if until is not None:
            return Skip(workload, *until)
        key, value = annotation(workload.annotations, EXCLUDE) or (EXCLUDE, None)
        if value is not None and value.lower() != "false":
            if value.lower() == "true":
                return Skip(workload, f"excluded (annotation {key})")
            return Skip(
                workload,
                f"excluded: the annotation {key} is {value!r}, neither true nor false",
                warn=True,
            )
        if workload.owner is not None:
            return Skip(workload, f"managed by {workload.owner[0]} {workload.owner[1]}")
        return None


def unmatched_excludes(selection: Selection, workloads: Iterable[Workload]) -> list[str]:
    """A warning for each --exclude that names no workload among `workloads` (every workload
    of the chosen namespaces): a typo must not pass in silence. A ScaledObject's is not checked:
    those are read apart from the workloads."""
    seen = list(workloads)
    return [
        f"--exclude {item} matches no workload in the chosen namespaces"
        for item, kind, name in selection.excluded_names
        if kind is not Kind.SCALEDOBJECT
        and not any(w.name == name and kind in (None, w.kind) for w in seen)
    ]


def excluded_until(annotations: Mapping[str, str], at: datetime) -> tuple[str, bool] | None:
    """(why an `exclude-until`, nsscale's else kube-downscaler's, leaves the object alone at
    `at`, whether that is because it cannot be read), or None when there is none or its time
    has come. One that cannot be read leaves it alone too: a guess would act on what its owner
    kept out."""
    found = annotation(annotations, EXCLUDE_UNTIL)
    if found is None:
        return None
    key, value = found
    until = until_instant(value)
    if until is None:
        why = f"{key} is {value!r}, neither an RFC 3339 time with an offset nor YYYY-MM-DD"
        return f"excluded: {why}", True
    return (f"excluded until {until.isoformat()} (annotation {key})", False) if at < until else None


def until_instant(value: str) -> datetime | None:
    """An RFC 3339 time with an offset, or a day `YYYY-MM-DD` (its start in UTC, as
    kube-downscaler reads it); None if it is neither."""
    text = value.strip()
    try:
        if _DAY.fullmatch(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        until = datetime.fromisoformat(text)
    except ValueError:
        return None
    return until if until.tzinfo is not None else None


def _accepted_kinds(known: Mapping[str, Kind]) -> str:
    """The kinds --exclude takes, each with its other names: `deployment (deploy, ...)`."""
    by_kind: dict[Kind, list[str]] = {}
    for name, kind in known.items():
        if name != kind.value and "." not in name:
            by_kind.setdefault(kind, []).append(name)
    listed = "; ".join(f"{k.value} ({', '.join(names)})" for k, names in by_kind.items())
    return f"KIND is one of {listed}, or KIND.GROUP as kubectl get -o name prints it"


@dataclass(frozen=True)
class Entry:
    """A workload in a run's in-cluster snapshot: the state to recover it to, and every state
    a run may have left it in (one per run, when a run took over an earlier one's mark)."""

    before: State
    after: tuple[State, ...]

    @property
    def states(self) -> tuple[State, ...]:
        return (self.before, *self.after)


Snapshot = Mapping[str, Entry]  # "kind/name" -> Entry


@dataclass(frozen=True)
class Plan:
    namespace: str
    operation: Operation
    changes: tuple[Change, ...]
    skips: tuple[Skip, ...]


def make_plan(
    namespace: str,
    operation: Operation,
    workloads: Iterable[Workload],
    *,
    replicas: int | None = None,
    force: bool = False,
    selection: Selection = Selection(),
    respect: Respect | None = None,
) -> Plan:
    """Decide, per workload, what the operation does to it and why it skips the others;
    `respect`: a scheduled down's rules (grace period, hand changes, downtime replicas)."""
    changes: list[Change] = []
    skips: list[Skip] = []
    target = 0 if operation is Operation.DOWN else replicas
    if operation is Operation.SCALE and target is None:
        raise ValueError("scale needs a replica count")
    for workload in workloads:
        if workload.kind is Kind.CRONJOB and target is None and workload.state.original is None:
            continue  # `up` resumes only the CronJobs nsscale suspended; the others are not its
        decision = selection.excluded(workload) or (
            _restore(workload, force)
            if target is None
            else _move(workload, target)
            if respect is None or operation is not Operation.DOWN
            else _respectful_down(workload, respect)
        )
        if isinstance(decision, Change):
            changes.append(decision)
        else:
            skips.append(decision)
    return Plan(namespace, operation, tuple(changes), tuple(skips))


def _move(workload: Workload, target: int) -> Change | Skip:
    state = workload.state
    if state.original is not None and parse_count(state.original) is None:
        return Skip(workload, _unreadable(state.original))
    if state.replicas == target:
        if workload.kind is Kind.CRONJOB:
            return Skip(workload, "already suspended")
        return Skip(workload, f"already at {target}")
    # The first recorded original is kept: a second `down` must not record 0.
    original = state.original if state.original is not None else str(state.replicas)
    return Change(workload, State(target, original, str(target)))


def _respectful_down(workload: Workload, respect: Respect) -> Change | Skip:
    if (why := respect.held(workload)) is not None:
        return Skip(workload, why, held=True)
    try:
        target = respect.target(workload)
    except InvalidRule as err:
        return Skip(workload, f"left alone: {err}", warn=True)
    if target and workload.replicas <= target:
        return Skip(workload, f"already at or below {target}")  # a down never raises one
    return _move(workload, target)


def _restore(workload: Workload, force: bool) -> Change | Skip:
    state = workload.state
    if state.original is None:
        return Skip(workload, NO_ORIGINAL)
    original = parse_count(state.original)
    if original is None:
        return Skip(workload, _unreadable(state.original))
    if not force:
        if state.scaled_to is None:
            return Skip(
                workload,
                f"no record of the count nsscale set; original {original} kept"
                " (--force restores it)",
            )
        if str(state.replicas) != state.scaled_to:
            return Skip(
                workload,
                f"changed since nsscale set it to {state.scaled_to} (now {state.replicas}); "
                f"original {original} kept (--force restores it)",
            )
    return Change(workload, State(original))


def _unreadable(value: str) -> str:
    return f"recorded original {value!r} is not a count: fix or remove the annotation {ORIGINAL}"


def plan_recovery(namespace: str, snapshot: Snapshot, workloads: Iterable[Workload]) -> Plan:
    """Undo an interrupted run from its snapshot: only workloads still as a run left them."""
    changes: list[Change] = []
    skips: list[Skip] = []
    for workload in workloads:
        if workload.ref not in snapshot:
            continue
        entry = snapshot[workload.ref]
        if workload.state in entry.after and workload.state != entry.before:
            changes.append(Change(workload, entry.before))
        elif workload.state == entry.before:
            skips.append(Skip(workload, "not changed by the interrupted run"))
        else:
            skips.append(
                Skip(
                    workload,
                    f"changed since the interrupted run (now {workload.replicas}); left as is",
                )
            )
    return Plan(namespace, Operation.RECOVER, tuple(changes), tuple(skips))
