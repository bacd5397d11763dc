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
undoes that run from its snapshot, or `--force` takes it over; unless its holder was a process
of this same machine that no longer exists (engine/holder.py): that mark is over at once, as
if retired, and the next run or `recover` takes it over without waiting. Every call on the Lease is
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
from typing import TYPE_CHECKING, Any

from nsscale.defaults import DEFAULT_LEASE_S
from nsscale.engine.holder import Holder, this_process
from nsscale.engine.plan import Change, Entry, Snapshot
from nsscale.errors import (
    ErrorKind,
    KubectlError,
    KubectlOutputError,
    LockForbidden,
    LockHeld,
    MarkLost,
    NsscaleError,
    error_lines,
)
from nsscale.kube.cluster import each_namespace
from nsscale.kube.leases import LEASE, delete_lease, delete_leases, read_leases, write_leases
from nsscale.kube.objects import State
from nsscale.kube.retry import RetryPolicy

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")

__all__ = ["LEASE", "LockForbidden", "LockHeld", "Mark", "MarkLost", "RunLock"]

_RUN_ID, _OPERATION, _SNAPSHOT = "nsscale/run-id", "nsscale/operation", "nsscale/snapshot"
_ENDED = "nsscale/ended"  # the run is over; the snapshot holds what it left changed
_OUTCOME = "nsscale/outcome"  # how the run that retired the mark ended
_PROCESS = "nsscale/holder-process"  # which process holds it (engine/holder.py)
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


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
    # The Lease's uid, sent with every write as a precondition: a PUT to a deleted Lease would
    # otherwise create it again (Leases allow create-on-update) and hide that it was deleted.
    uid: str = ""
    ended: datetime | None = None  # set when the run is over but left its mark on purpose
    outcome: str = ""  # with `ended`: how the run ended
    process: Holder | None = None  # the process holding it, when it could tell

    @property
    def expires(self) -> datetime:
        return self.renewed + timedelta(seconds=self.duration_s)

    def stale(self, now: datetime) -> bool:
        """No live run holds it: its holder stopped renewing it, has ended, or is gone."""
        return self.ended is not None or now > self.expires or self.holder_gone()

    def holder_gone(self) -> bool:
        """Its holder was a process of this machine that no longer exists."""
        return self.ended is None and self.process is not None and self.process.gone(this_process())

    def describe(self) -> str:
        text = (
            f"`{self.operation}` by {self.holder} (run {self.run_id}), started "
            f"{self.acquired:%Y-%m-%d %H:%M:%S} UTC, last renewed {self.renewed:%H:%M:%S} UTC"
        )
        if self.ended is not None:
            text += f", ended {self.ended:%H:%M:%S} UTC ({self.outcome or 'partly changed'})"
        elif self.holder_gone():
            text += ", whose process no longer exists"
        return text

    def left_changed(self) -> str:
        """The workloads the marked run may have left changed, with the count it left."""
        if not self.snapshot:
            return "nothing"
        return ", ".join(
            f"{ref} at {entry.after[-1].replicas}" for ref, entry in sorted(self.snapshot.items())
        )

    def same_write(self, other: Mark) -> bool:
        """`other` is this mark as written (only what the server sets differs)."""
        return replace(self, resource_version="", uid="") == replace(
            other, resource_version="", uid=""
        )

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
        if self.process is not None:
            metadata["annotations"][_PROCESS] = self.process.encode()
        if self.resource_version:
            metadata["resourceVersion"] = self.resource_version
        if self.uid:
            metadata["uid"] = self.uid
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
                uid=str(meta.get("uid", "")),
                ended=_time(annotations[_ENDED]) if _ENDED in annotations else None,
                outcome=str(annotations.get(_OUTCOME, "")),
                process=Holder.decode(str(annotations.get(_PROCESS, ""))),
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
    """The marks of one run, one per namespace it changes. Each call covers every namespace at
    once: one `kubectl create` of a List of Leases, one `replace` per renewal, one read."""

    kubectl: Kubectl
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    held: dict[str, Mark] = field(default_factory=dict)  # by namespace
    taken_over: dict[str, Mark] = field(default_factory=dict)  # the earlier runs' marks replaced
    # The renewal timer and the run's own calls never write the Leases at the same time.
    _writing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def acquire(
        self, marks: Mapping[str, Mark], force: bool = False, recovering: bool = False
    ) -> dict[str, NsscaleError]:
        """Create each namespace's Lease; returns the namespaces refused, with why. An earlier
        run's mark is taken over (its snapshot kept) when that run has ended, or when it is stale
        and `force` or `recovering` says so; LockHeld if not. `recovering` with `force` also
        takes over a live mark. A run that loses a race for a mark (another run created it, or
        took it over, between this run's read and its write) is refused like any other: the
        mark is read again and its holder named."""
        refused: dict[str, NsscaleError] = {}
        earlier: dict[str, Mark] = {}
        # each mark names this process, so that a run on this machine can tell once it is gone
        marks = {ns: replace(m, process=m.process or this_process()) for ns, m in marks.items()}
        attempts: list[tuple[str, dict[str, Mark]]] = [("create", dict(marks))]
        for _ in range(_RACE_ROUNDS):
            lost: list[str] = []
            for verb, batch in attempts:
                done, failed = self._send(verb, batch)
                self.held.update(done)
                self.taken_over.update({ns: earlier[ns] for ns in done if verb == "replace"})
                for ns, err in failed.items():
                    if err.kind is ErrorKind.CONFLICT:  # AlreadyExists, or a newer version
                        lost.append(ns)
                    else:
                        refused[ns] = self._refusal(verb, ns, err)
            if not lost:
                break
            attempts = self._next_attempts(lost, marks, earlier, refused, force, recovering)
        else:  # still racing: somebody else won each time
            racing = [ns for _, batch in attempts for ns in batch]
            for ns, existing in self.read(racing).items() if racing else ():
                refused[ns] = _race_lost(ns, existing)
        for ns in self.held:
            refused.pop(ns, None)
        return refused

    def _next_attempts(
        self,
        namespaces: Sequence[str],
        marks: Mapping[str, Mark],
        earlier: dict[str, Mark],
        refused: dict[str, NsscaleError],
        force: bool,
        recovering: bool,
    ) -> list[tuple[str, dict[str, Mark]]]:
        """The writes to try next for the namespaces whose mark exists: create again where it
        was released meanwhile, take over an ended or stale one (as allowed), refuse the rest."""
        again: dict[str, Mark] = {}
        taking: dict[str, Mark] = {}
        for ns, existing in self.read(namespaces).items():
            if existing is None:  # released meanwhile: try once more
                again[ns] = marks[ns]
                continue
            try:
                self._refuse_or_take_over(ns, existing, force, recovering)
            except LockHeld as err:
                refused[ns] = err
                continue
            earlier[ns] = existing
            taking[ns] = replace(
                marks[ns],
                resource_version=existing.resource_version,
                uid=existing.uid,
                snapshot=merged(existing.snapshot, marks[ns].snapshot),
            )
        return [("create", again), ("replace", taking)]

    def live_elsewhere(self, namespaces: Sequence[str]) -> dict[str, NsscaleError]:
        """The namespaces another live run holds (LockHeld, naming it), for a run that takes no
        mark of its own (nothing to change there): it must not answer success while that run
        changes the namespace. A stale mark is only a warning here; a mark that cannot be read
        too (the caller may not read Leases)."""
        try:
            found = self.read(namespaces)
        except NsscaleError as err:
            log.warning("could not read the in-cluster marks: %s", err)
            return {}
        held: dict[str, NsscaleError] = {}
        now = self.clock()
        for ns, existing in found.items():
            if existing is None or existing.ended is not None:
                continue
            if existing.stale(now):
                log.warning(
                    "an interrupted nsscale run may have left %s half changed: %s; "
                    "`nsscale recover %s` undoes it",
                    ns,
                    existing.describe(),
                    ns,
                )
                continue
            held[ns] = _held_by(ns, existing)
        return held

    def _refuse_or_take_over(self, ns: str, existing: Mark, force: bool, recovering: bool) -> None:
        if existing.holder_gone():
            log.warning(
                "the run holding the mark on %s is gone: %s; it may have left %s. This run "
                "takes over its mark and keeps that record",
                ns,
                existing.describe(),
                existing.left_changed(),
            )
            return
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
            raise _held_by(ns, existing)
        if not (force or recovering):
            raise LockHeld(
                f"an interrupted nsscale run may have left {ns} half changed: "
                f"{existing.describe()}",
                f"undo it with `nsscale recover {ns}`, or complete it by running "
                f"`nsscale {existing.operation} {ns} --force`",
            )
        log.warning("taking over the mark of an interrupted run: %s", existing.describe())

    @staticmethod
    def _refusal(verb: str, ns: str, err: KubectlError) -> NsscaleError:
        if err.kind is ErrorKind.FORBIDDEN:
            return LockForbidden(
                f"cannot {verb} the Lease {LEASE!r} in {ns}: {err}",
                "grant create/update/delete on leases.coordination.k8s.io, "
                "or run without --require-lock",
            )
        return err

    def renew(self) -> None:
        """Renew every mark now; MarkLost if another run took one over or it was deleted."""
        with self._writing:
            if not self.held:
                return
            now = self.clock()
            done, failed = self._send(
                "replace", {ns: replace(m, renewed=now) for ns, m in self.held.items()}
            )
            self.held.update(done)
            lost = [ns for ns, e in failed.items() if e.kind in _LOST]
            if lost:
                found = self.read(lost)
                for ns in lost:  # not ours any more: never cleared by this run
                    del self.held[ns]
                whose = "; ".join(
                    f"{ns}: " + ("it was deleted" if m is None else f"now held by {m.describe()}")
                    for ns, m in found.items()
                )
                raise MarkLost(
                    f"the in-cluster mark of this run on {', '.join(lost)} was taken over: {whose}",
                    "another nsscale run (recover, or one with --force) acts on the namespace",
                )
            if failed:
                raise next(iter(failed.values()))

    @contextmanager
    def kept(self, on_lost: Callable[[str], None]) -> Iterator[None]:
        """Renew the marks every third of their duration while the block runs. A renewal that
        finds one lost calls `on_lost` with why (once) and stops; one that keeps failing calls
        it when the marks are about to expire, since others may then take them as stale."""
        stop = threading.Event()
        duration = min((m.duration_s for m in self.held.values()), default=DEFAULT_LEASE_S)
        period = timedelta(seconds=duration / 3)

        def beat() -> None:
            while not stop.wait(period.total_seconds()):
                try:
                    self.renew()
                except MarkLost as err:
                    on_lost(err.message)
                    return
                except NsscaleError as err:
                    log.warning("could not renew the in-cluster mark: %s", err)
                    soonest = min((m.expires for m in self.held.values()), default=None)
                    if soonest is not None and soonest - self.clock() < period:
                        on_lost(f"the in-cluster mark could not be renewed in time: {err}")
                        return

        thread = threading.Thread(target=beat, name="nsscale-mark", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def retire(self, left: Mapping[str, tuple[Snapshot, str]]) -> None:
        """Keep the marks of the namespaces, each holding only what is left changed (and how
        its run ended), and say the run is over: nobody waits for it, and `nsscale recover` can
        still undo what is left."""
        with self._writing:
            now = self.clock()
            ended = {
                ns: replace(self.held[ns], snapshot=snapshot, ended=now, outcome=outcome)
                for ns, (snapshot, outcome) in left.items()
                if ns in self.held
            }
            done, failed = self._send("replace", ended)
            self.held.update(done)
            if failed:
                raise next(iter(failed.values()))

    def release(self, namespaces: Sequence[str]) -> dict[str, NsscaleError]:
        """Delete the marks of the namespaces if they are still this run's; returns those
        that could not be deleted, with why. A mark another run has taken over is left to it."""
        with self._writing:
            mine = [ns for ns in namespaces if ns in self.held]
            if len(mine) == 1:
                return self._delete_one(mine[0])
            return self._delete_many(mine)

    def _delete_one(self, ns: str) -> dict[str, NsscaleError]:
        """One mark: a DELETE with its resourceVersion as precondition."""
        held = self.held[ns]
        try:
            self.retry.call(
                lambda: delete_lease(self.kubectl, ns, held.resource_version),
                "deleting the in-cluster mark",
            )
        except KubectlError as err:
            if err.kind is ErrorKind.CONFLICT:
                log.warning(_NOT_OURS, ns)
            elif err.kind is not ErrorKind.NOT_FOUND:  # gone: deleted by a lost answer
                return {ns: err}
        del self.held[ns]
        return {}

    def _delete_many(self, namespaces: Sequence[str]) -> dict[str, NsscaleError]:
        """Several marks in two calls: `kubectl delete` takes no precondition, so a guarded
        renewal first proves each is still ours (a live mark is taken over by nobody but
        `recover --force`), then one delete of the List."""
        if not namespaces:
            return {}
        now = self.clock()
        ours, failed = self._send(
            "replace", {ns: replace(self.held[ns], renewed=now) for ns in namespaces}
        )
        for ns, err in failed.items():
            if err.kind is ErrorKind.CONFLICT:
                log.warning(_NOT_OURS, ns)
                del self.held[ns]
        errors: dict[str, NsscaleError] = {
            ns: err for ns, err in failed.items() if err.kind is not ErrorKind.CONFLICT
        }
        if not ours:
            return errors
        leases = [m.to_lease(ns) for ns, m in ours.items()]
        try:
            self.retry.call(
                lambda: delete_leases(self.kubectl, leases), "deleting the in-cluster marks"
            )
        except KubectlError as err:
            left = self.read(list(ours))
            errors.update({ns: err for ns, mark in left.items() if mark is not None})
        for ns in ours:
            if ns not in errors:
                del self.held[ns]
        return errors

    def read(self, namespaces: Sequence[str]) -> dict[str, Mark | None]:
        """The marks of the namespaces (None where there is none), in one call."""
        try:
            leases, argv = self.retry.call(
                lambda: read_leases(self.kubectl, namespaces), "reading the in-cluster mark"
            )
        except KubectlError as err:
            if err.kind is ErrorKind.NOT_FOUND:
                return dict.fromkeys(namespaces)
            if err.kind is ErrorKind.FORBIDDEN and len(namespaces) > 1:
                # allowed in each namespace, not across all: one read per namespace
                found = each_namespace(lambda ns: self.read([ns])[ns], namespaces)
                return dict(found)
            raise
        found = dict.fromkeys(namespaces)
        for obj in leases:
            ns = str((obj.get("metadata") or {}).get("namespace", ""))
            if ns in found:
                found[ns] = _mark(argv, obj)
        return found

    def _send(
        self, verb: str, marks: Mapping[str, Mark]
    ) -> tuple[dict[str, Mark], dict[str, KubectlError]]:
        """Write the Leases in one call, retrying those that failed for a passing reason.
        Returns the marks as written, and the failures by namespace. A conflict after a retry
        may be our own earlier attempt that landed with its answer lost: the Lease as read
        then tells."""
        done: dict[str, Mark] = {}
        failed: dict[str, KubectlError] = {}
        pending = dict(marks)
        attempt = 0
        while pending:
            written, failed = self._write(verb, pending)
            done.update(written)
            transient = {ns: e for ns, e in failed.items() if e.kind.transient}
            if not transient or attempt >= self.retry.retries:
                break
            attempt += 1
            what = f"writing the in-cluster mark ({verb})"
            self.retry.wait(attempt, what, next(iter(transient.values())))
            pending = {ns: marks[ns] for ns in transient}
            failed = {ns: e for ns, e in failed.items() if ns not in transient}
        if attempt:
            conflicts = [ns for ns, e in failed.items() if e.kind is ErrorKind.CONFLICT]
            for ns, existing in self.read(conflicts).items() if conflicts else ():
                if existing is not None and existing.same_write(marks[ns]):
                    done[ns] = existing
                    del failed[ns]
        return done, failed

    def _write(
        self, verb: str, marks: Mapping[str, Mark]
    ) -> tuple[dict[str, Mark], dict[str, KubectlError]]:
        """One kubectl call writing every Lease; the marks written and the failures."""
        leases = [m.to_lease(ns) for ns, m in marks.items()]
        printed, err, argv = write_leases(self.kubectl, verb, leases)
        written: dict[str, Mark] = {}
        for obj in printed:
            ns = str((obj.get("metadata") or {}).get("namespace", ""))
            if ns in marks:
                written[ns] = _mark(argv, obj)
        missing = [ns for ns in marks if ns not in written]
        if not missing:
            return written, {}
        if err is None:
            raise KubectlOutputError(argv, "a Lease written was not printed", "")
        return written, _per_object(err, missing)


def _mark(argv: Sequence[str], obj: Mapping[str, Any]) -> Mark:
    try:
        return Mark.from_lease(obj)
    except ValueError as exc:
        raise KubectlOutputError(argv, str(exc), json.dumps(obj)[:200]) from exc


_LOST = (ErrorKind.CONFLICT, ErrorKind.NOT_FOUND)
_RACE_ROUNDS = 3  # reads and writes of a mark other runs keep taking, before giving up


def _held_by(ns: str, existing: Mark) -> LockHeld:
    return LockHeld(
        f"another nsscale run is working on {ns}: {existing.describe()}",
        "wait for it to finish (a live run is never interrupted); if it was killed, "
        f"`nsscale recover {ns}` undoes it once its mark expires at "
        f"{existing.expires:%H:%M:%S} UTC",
    )


def _race_lost(ns: str, existing: Mark | None) -> LockHeld:
    """The refusal of a run that kept losing the race for the mark to other runs."""
    if existing is not None:
        return _held_by(ns, existing)
    return LockHeld(
        f"another nsscale run took and cleared the in-cluster mark on {ns} while this run "
        "tried to take it",
        "run again: other runs are changing the namespace right now",
    )


_NOT_OURS = (
    "the in-cluster mark on %s is no longer this run's (another run took it over): left in place"
)


def _per_object(err: KubectlError, namespaces: Sequence[str]) -> dict[str, KubectlError]:
    """The failure of each object of a call that failed. kubectl goes on past a failed object
    and prints one line for each, in the order of the objects (a Lease's line names no
    namespace); when the lines cannot be matched, each object gets the whole error."""
    lines = error_lines(err.stderr)
    if len(lines) != len(namespaces):
        return dict.fromkeys(namespaces, err)
    return {
        ns: KubectlError(err.argv, err.returncode, line + "\n", err.duration_s, stdout=err.stdout)
        for ns, line in zip(namespaces, lines, strict=True)
    }


def _encode(state: State) -> list[Any]:
    encoded = [state.replicas, state.original, state.scaled_to]
    return encoded if state.holders is None else [*encoded, state.holders]


def _decode(raw: Sequence[Any]) -> State:
    replicas, original, scaled_to, *holders = raw
    return State(int(replicas), original, scaled_to, *holders[:1])


def _entry(states: Sequence[Sequence[Any]]) -> Entry:
    before, *after = (_decode(s) for s in states)
    if not after:
        raise ValueError("a snapshot entry without the state a run left")
    return Entry(before, tuple(after))


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"time {value!r}")
    return datetime.strptime(value, _MICRO).replace(tzinfo=UTC)
