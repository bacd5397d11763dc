"""The in-cluster mark of a run in progress: a coordination.k8s.io/v1 Lease named `nsscale`.

Before its first change a run creates the Lease (create fails if it exists: exactly one run
proceeds). It holds who (user@host, pid), the operation, the run id, the start time and the
snapshot of every planned change (before and after), and is deleted after the last step. A Lease
still there from a run that stopped renewing it (SIGKILL, a lost host), or that a run left on
purpose when it ended with the namespace partly changed (marked `nsscale/ended`: nobody waits
for it), tells a later run that the namespace may be half changed: `nsscale recover NS` undoes
that run from its snapshot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from nsscale.errors import ErrorKind, KubectlError, KubectlOutputError, NsscaleError
from nsscale.kubectl import Kubectl
from nsscale.plan import Change
from nsscale.workload import State

log = logging.getLogger("nsscale")

LEASE = "nsscale"
DEFAULT_LEASE_S = 120
_RUN_ID, _OPERATION, _SNAPSHOT = "nsscale/run-id", "nsscale/operation", "nsscale/snapshot"
_ENDED = "nsscale/ended"  # the run is over, its namespace left partly changed
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


class LockHeld(NsscaleError):
    """Another run holds the namespace, or an unfinished run left its mark."""


class LockForbidden(NsscaleError):
    """The caller may not create or delete Leases in the namespace."""


@dataclass(frozen=True)
class Mark:
    holder: str
    run_id: str
    operation: str
    acquired: datetime
    renewed: datetime
    duration_s: int
    # "kind/name" -> (state before, state after) of every change the run planned
    snapshot: Mapping[str, tuple[State, State]]
    resource_version: str = ""
    ended: datetime | None = None  # set when the run is over but left its mark on purpose

    @property
    def expires(self) -> datetime:
        return self.renewed + timedelta(seconds=self.duration_s)

    def stale(self, now: datetime) -> bool:
        """No live run holds it: its holder stopped renewing it, or has ended."""
        return self.ended is not None or now > self.expires

    def describe(self) -> str:
        text = (
            f"`{self.operation}` by {self.holder} (run {self.run_id}), started "
            f"{self.acquired:%Y-%m-%d %H:%M:%S} UTC, last renewed {self.renewed:%H:%M:%S} UTC"
        )
        if self.ended is not None:
            text += f", ended {self.ended:%H:%M:%S} UTC with the namespace partly changed"
        return text

    def to_lease(self, namespace: str) -> dict[str, Any]:
        snapshot = {ref: [_encode(b), _encode(a)] for ref, (b, a) in self.snapshot.items()}
        metadata: dict[str, Any] = {
            "name": LEASE,
            "namespace": namespace,
            "annotations": {
                _RUN_ID: self.run_id,
                _OPERATION: self.operation,
                _SNAPSHOT: json.dumps(snapshot, separators=(",", ":")),
            },
        }
        if self.ended is not None:
            metadata["annotations"][_ENDED] = self.ended.strftime(_MICRO)
        if self.resource_version:
            metadata["resourceVersion"] = self.resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.duration_s,
                "acquireTime": self.acquired.strftime(_MICRO),
                "renewTime": self.renewed.strftime(_MICRO),
            },
        }

    @classmethod
    def from_lease(cls, obj: Mapping[str, Any]) -> Mark:
        try:
            meta, spec = obj["metadata"], obj["spec"]
            annotations = meta.get("annotations") or {}
            raw = json.loads(annotations.get(_SNAPSHOT, "{}"))
            return cls(
                holder=str(spec.get("holderIdentity", "?")),
                run_id=str(annotations.get(_RUN_ID, "?")),
                operation=str(annotations.get(_OPERATION, "?")),
                acquired=_time(spec.get("acquireTime")),
                renewed=_time(spec.get("renewTime") or spec.get("acquireTime")),
                duration_s=int(spec.get("leaseDurationSeconds", DEFAULT_LEASE_S)),
                snapshot={ref: (_decode(b), _decode(a)) for ref, (b, a) in raw.items()},
                resource_version=str(meta.get("resourceVersion", "")),
                ended=_time(annotations[_ENDED]) if _ENDED in annotations else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the Lease {LEASE!r} is not one nsscale wrote ({exc!r})") from exc


def snapshot_of(changes: Sequence[Change]) -> dict[str, tuple[State, State]]:
    return {c.workload.ref: (c.before, c.after) for c in changes}


@dataclass
class RunLock:
    kubectl: Kubectl
    namespace: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    held: Mark | None = None

    def acquire(self, mark: Mark, force: bool = False) -> None:
        """Create the Lease; LockHeld if a live run holds it, or an unfinished run left it
        (unless `force` and it is stale: then take it over)."""
        try:
            created = self._write("create", mark)
        except KubectlError as err:
            if err.kind is not ErrorKind.CONFLICT:  # AlreadyExists
                raise
            existing = self.read()
            if existing is None:  # released meanwhile: try once more
                created = self._write("create", mark)
            else:
                self._refuse_or_take_over(existing, mark, force)
                created = self._write(
                    "replace", replace(mark, resource_version=existing.resource_version)
                )
        self.held = created

    def _refuse_or_take_over(self, existing: Mark, mark: Mark, force: bool) -> None:
        ns = self.namespace
        if not existing.stale(self.clock()):
            raise LockHeld(
                f"another nsscale run is working on {ns}: {existing.describe()}",
                "wait for it to finish (a live run is never interrupted); if it was killed, "
                f"`nsscale recover {ns}` undoes it once its mark expires at "
                f"{existing.expires:%H:%M:%S} UTC",
            )
        if not force:
            what = (
                "an nsscale run left"
                if existing.ended
                else "an interrupted nsscale run may have left"
            )
            raise LockHeld(
                f"{what} {ns} half changed: {existing.describe()}",
                f"undo it with `nsscale recover {ns}`, or complete it by running "
                f"`nsscale {existing.operation} {ns} --force`",
            )
        log.warning("taking over the mark of an interrupted run: %s", existing.describe())

    def renew(self) -> None:
        """Renew the Lease when a third of its duration has passed since the last renewal."""
        now = self.clock()
        if self.held is None or now - self.held.renewed < timedelta(
            seconds=self.held.duration_s / 3
        ):
            return
        renewed = replace(self.held, renewed=now)
        self.held = self._write("replace", renewed)

    def retire(self) -> None:
        """Keep the mark for `nsscale recover`, but say the run is over: nobody waits for it."""
        if self.held is None:
            return
        self.held = self._write("replace", replace(self.held, ended=self.clock()))

    def release(self) -> None:
        """Delete the Lease if it is still the one this run holds (its resourceVersion as a
        precondition of the delete): a mark another run has taken over is left to that run."""
        if self.held is None:
            return
        held, self.held = self.held, None
        url = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{LEASE}"
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if held.resource_version:
            options["preconditions"] = {"resourceVersion": held.resource_version}
        try:
            # `kubectl delete NAME` has no precondition; `--raw` sends DeleteOptions as the body.
            self.kubectl.run(["delete", "--raw", url, "-f", "-"], json.dumps(options))
        except KubectlError as err:
            if err.kind is ErrorKind.NOT_FOUND:
                return
            if err.kind is ErrorKind.CONFLICT:
                log.warning(
                    "the in-cluster mark is no longer this run's (another run took it over): "
                    "left in place"
                )
                return
            raise

    def read(self) -> Mark | None:
        try:
            obj = self.kubectl.json(["get", "lease", LEASE, "-n", self.namespace])
        except KubectlError as err:
            if err.kind is ErrorKind.NOT_FOUND:
                return None
            raise
        try:
            return Mark.from_lease(obj)
        except ValueError as exc:
            argv = self.kubectl.argv(["get", "lease", LEASE])
            raise KubectlOutputError(argv, str(exc), json.dumps(obj)[:200]) from exc

    def _write(self, verb: str, mark: Mark) -> Mark:
        try:
            obj = self.kubectl.json(
                [verb, "-n", self.namespace, "-f", "-"], json.dumps(mark.to_lease(self.namespace))
            )
        except KubectlError as err:
            if err.kind is ErrorKind.FORBIDDEN:
                raise LockForbidden(
                    f"cannot {verb} the Lease {LEASE!r} in {self.namespace}: {err}",
                    "grant create/update/delete on leases.coordination.k8s.io, "
                    "or run without --require-lock",
                ) from err
            raise
        return Mark.from_lease(obj)


def _encode(state: State) -> list[Any]:
    return [state.replicas, state.original, state.scaled_to]


def _decode(raw: Sequence[Any]) -> State:
    replicas, original, scaled_to = raw
    return State(int(replicas), original, scaled_to)


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"time {value!r}")
    return datetime.strptime(value, _MICRO).replace(tzinfo=UTC)
