"""The in-cluster mark of a run in progress: a coordination.k8s.io/v1 Lease named `nsscale`.

Before its first change a run creates the Lease (create fails if it exists: exactly one run
proceeds). It holds who (user@host, pid), the operation, the run id, the start time and the
snapshot of every planned change, and is renewed on a timer from the moment it is taken until
it is cleared (`RunLock.kept`): a live run never looks stale, however long one write takes. A
renewal that finds the mark taken over or deleted stops the run.

When the run ends with nothing left changed, the Lease is deleted. When it ends with workloads
left changed, or the delete fails, the mark is retired instead: marked `nsscale/ended` with the
outcome, holding the snapshot of what is left. A retired mark never blocks the next run, which
takes it over (with a warning naming the earlier run) and keeps its snapshot. A mark that stopped
being renewed without being retired (SIGKILL, a lost host) blocks until `nsscale recover NS`
undoes that run from its snapshot, or `--force` takes it over. Every call on the Lease is
retried like any other kubectl call; a retried write that had landed is recognised as ours.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from nsscale.defaults import DEFAULT_LEASE_S
from nsscale.errors import ErrorKind, KubectlError, KubectlOutputError, NsscaleError
from nsscale.kubectl import Kubectl
from nsscale.plan import Change, Entry, Snapshot
from nsscale.retry import RetryPolicy
from nsscale.workload import State

log = logging.getLogger("nsscale")

LEASE = "nsscale"
_RUN_ID, _OPERATION, _SNAPSHOT = "nsscale/run-id", "nsscale/operation", "nsscale/snapshot"
_ENDED = "nsscale/ended"  # the run is over; the snapshot holds what it left changed
_OUTCOME = "nsscale/outcome"  # how the run that retired the mark ended
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


class LockHeld(NsscaleError):
    """Another run holds the namespace, or an interrupted run left its mark."""


class LockForbidden(NsscaleError):
    """The caller may not create or delete Leases in the namespace."""


class MarkLost(NsscaleError):
    """The mark this run holds was taken over or deleted by someone else."""


@dataclass(frozen=True)
class Mark:
    holder: str
    run_id: str
    operation: str
    acquired: datetime
    renewed: datetime
    duration_s: int
    snapshot: Snapshot  # "kind/name" -> Entry, for every change the run planned or took over
    resource_version: str = ""
    ended: datetime | None = None  # set when the run is over but left its mark on purpose
    outcome: str = ""  # with `ended`: how the run ended

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
            text += f", ended {self.ended:%H:%M:%S} UTC ({self.outcome or 'partly changed'})"
        return text

    def left_changed(self) -> str:
        """The workloads the marked run may have left changed, with the count it left."""
        if not self.snapshot:
            return "nothing"
        return ", ".join(
            f"{ref} at {entry.after[-1].replicas}" for ref, entry in sorted(self.snapshot.items())
        )

    def same_write(self, other: Mark) -> bool:
        """`other` is this mark as written (only the server's resourceVersion differs)."""
        return replace(self, resource_version="") == replace(other, resource_version="")

    def to_lease(self, namespace: str) -> dict[str, Any]:
        snapshot = {ref: [_encode(s) for s in e.states] for ref, e in self.snapshot.items()}
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
            metadata["annotations"][_OUTCOME] = self.outcome
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
                snapshot={ref: _entry(states) for ref, states in raw.items()},
                resource_version=str(meta.get("resourceVersion", "")),
                ended=_time(annotations[_ENDED]) if _ENDED in annotations else None,
                outcome=str(annotations.get(_OUTCOME, "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the Lease {LEASE!r} is not one nsscale wrote ({exc!r})") from exc


def snapshot_of(changes: Sequence[Change]) -> dict[str, Entry]:
    return {c.workload.ref: Entry(c.before, (c.after,)) for c in changes}


def merged(earlier: Snapshot, later: Snapshot) -> dict[str, Entry]:
    """The snapshot of a run that takes over an earlier run's mark: a workload in both goes back
    to where the earlier run found it, from any state either run may leave it in."""
    both = dict(earlier)
    for ref, entry in later.items():
        first = both.get(ref)
        both[ref] = entry if first is None else Entry(first.before, first.after + entry.after)
    return both


@dataclass
class RunLock:
    kubectl: Kubectl
    namespace: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    held: Mark | None = None
    taken_over: Mark | None = None  # the earlier run's mark this run replaced, if any
    # The renewal timer and the run's own calls never write the Lease at the same time.
    _writing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def acquire(self, mark: Mark, force: bool = False, recovering: bool = False) -> None:
        """Create the Lease. An earlier run's mark is taken over (its snapshot kept) when that
        run has ended, or when it is stale and `force` or `recovering` says so; LockHeld if not.
        `recovering` with `force` also takes over a live mark."""
        try:
            created = self._send("create", mark)
        except KubectlError as err:
            if err.kind is not ErrorKind.CONFLICT:  # AlreadyExists
                raise
            existing = self.read()
            if existing is None:  # released meanwhile: try once more
                created = self._send("create", mark)
            else:
                self._refuse_or_take_over(existing, force, recovering)
                taking = replace(
                    mark,
                    resource_version=existing.resource_version,
                    snapshot=merged(existing.snapshot, mark.snapshot),
                )
                created = self._send("replace", taking)
                self.taken_over = existing
        self.held = created

    def _refuse_or_take_over(self, existing: Mark, force: bool, recovering: bool) -> None:
        ns = self.namespace
        if existing.ended is not None:
            if existing.snapshot:
                log.warning(
                    "an earlier run left %s partly changed: %s; it left %s. This run takes "
                    "over its mark and keeps that record",
                    ns,
                    existing.describe(),
                    existing.left_changed(),
                )
            else:
                log.info("an earlier run's mark was not cleared: %s", existing.describe())
            return
        if not existing.stale(self.clock()) and not (recovering and force):
            raise LockHeld(
                f"another nsscale run is working on {ns}: {existing.describe()}",
                "wait for it to finish (a live run is never interrupted); if it was killed, "
                f"`nsscale recover {ns}` undoes it once its mark expires at "
                f"{existing.expires:%H:%M:%S} UTC",
            )
        if not (force or recovering):
            raise LockHeld(
                f"an interrupted nsscale run may have left {ns} half changed: "
                f"{existing.describe()}",
                f"undo it with `nsscale recover {ns}`, or complete it by running "
                f"`nsscale {existing.operation} {ns} --force`",
            )
        log.warning("taking over the mark of an interrupted run: %s", existing.describe())

    def renew(self) -> None:
        """Renew the Lease now; MarkLost if another run took it over or it was deleted."""
        with self._writing:
            if self.held is None:
                return
            try:
                self.held = self._send("replace", replace(self.held, renewed=self.clock()))
            except KubectlError as err:
                if err.kind not in (ErrorKind.CONFLICT, ErrorKind.NOT_FOUND):
                    raise
                now = self.read()
                whose = "it was deleted" if now is None else f"now held by {now.describe()}"
                self.held = None  # not ours any more: never cleared by this run
                raise MarkLost(
                    f"the in-cluster mark of this run on {self.namespace} was taken over: {whose}",
                    "another nsscale run (recover, or one with --force) acts on the namespace",
                ) from err

    @contextmanager
    def kept(self, on_lost: Callable[[str], None]) -> Iterator[None]:
        """Renew the mark every third of its duration while the block runs. A renewal that
        finds it lost calls `on_lost` with why (once) and stops; one that keeps failing calls
        it when the mark is about to expire, since others may then take it as stale."""
        stop = threading.Event()
        period = timedelta(seconds=(self.held.duration_s if self.held else DEFAULT_LEASE_S) / 3)

        def beat() -> None:
            while not stop.wait(period.total_seconds()):
                try:
                    self.renew()
                except MarkLost as err:
                    on_lost(err.message)
                    return
                except NsscaleError as err:
                    log.warning("could not renew the in-cluster mark: %s", err)
                    held = self.held
                    if held is not None and held.expires - self.clock() < period:
                        on_lost(f"the in-cluster mark could not be renewed in time: {err}")
                        return

        thread = threading.Thread(target=beat, name="nsscale-mark", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def retire(self, snapshot: Snapshot, outcome: str) -> None:
        """Keep the mark, holding only what is left changed, and say the run is over: nobody
        waits for it, and `nsscale recover` can still undo what is left."""
        with self._writing:
            if self.held is None:
                return
            ended = replace(self.held, snapshot=snapshot, ended=self.clock(), outcome=outcome)
            self.held = self._send("replace", ended)

    def release(self) -> None:
        """Delete the Lease if it is still the one this run holds (its resourceVersion as a
        precondition of the delete): a mark another run has taken over is left to that run."""
        with self._writing:
            if self.held is None:
                return
            url = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{LEASE}"
            options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
            if self.held.resource_version:
                options["preconditions"] = {"resourceVersion": self.held.resource_version}
            body = json.dumps(options)
            try:
                # `kubectl delete NAME` has no precondition; `--raw` sends DeleteOptions.
                self.retry.call(
                    lambda: self.kubectl.run(["delete", "--raw", url, "-f", "-"], body),
                    "deleting the in-cluster mark",
                )
            except KubectlError as err:
                if err.kind is ErrorKind.CONFLICT:
                    log.warning(
                        "the in-cluster mark is no longer this run's (another run took it "
                        "over): left in place"
                    )
                elif err.kind is not ErrorKind.NOT_FOUND:  # gone: deleted by a lost answer
                    raise
            self.held = None

    def read(self) -> Mark | None:
        try:
            obj = self.retry.call(
                lambda: self.kubectl.json(["get", "lease", LEASE, "-n", self.namespace]),
                "reading the in-cluster mark",
            )
        except KubectlError as err:
            if err.kind is ErrorKind.NOT_FOUND:
                return None
            raise
        try:
            return Mark.from_lease(obj)
        except ValueError as exc:
            argv = self.kubectl.argv(["get", "lease", LEASE])
            raise KubectlOutputError(argv, str(exc), json.dumps(obj)[:200]) from exc

    def _send(self, verb: str, mark: Mark) -> Mark:
        """Write the Lease, retried like any call. A conflict after a retry may be our own
        earlier attempt that landed with its answer lost: the Lease as read then tells."""
        attempts = 0

        def write() -> Mark:
            nonlocal attempts
            attempts += 1
            return self._write(verb, mark)

        try:
            return self.retry.call(write, f"writing the in-cluster mark ({verb})")
        except KubectlError as err:
            if err.kind is ErrorKind.CONFLICT and attempts > 1:
                existing = self.read()
                if existing is not None and existing.same_write(mark):
                    return existing
            raise

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


def _entry(states: Sequence[Sequence[Any]]) -> Entry:
    before, *after = (_decode(s) for s in states)
    if not after:
        raise ValueError("a snapshot entry without the state a run left")
    return Entry(before, tuple(after))


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"time {value!r}")
    return datetime.strptime(value, _MICRO).replace(tzinfo=UTC)
