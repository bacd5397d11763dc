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
from nsscale.kube.objects import State
from nsscale.kube.retry import RetryPolicy
from nsscale.kubectl import Kubectl, parse_documents

log = logging.getLogger("nsscale")

LEASE = "nsscale"
_RUN_ID, _OPERATION, _SNAPSHOT = "nsscale/run-id", "nsscale/operation", "nsscale/snapshot"
_ENDED = "nsscale/ended"  # the run is over; the snapshot holds what it left changed
_OUTCOME = "nsscale/outcome"  # how the run that retired the mark ended
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
        takes over a live mark."""
        created, failed = self._send("create", marks)
        self.held.update(created)
        refused = {ns: self._refusal("create", ns, err) for ns, err in failed.items()}
        exists = [ns for ns, err in failed.items() if err.kind is ErrorKind.CONFLICT]
        if not exists:
            return refused
        again: dict[str, Mark] = {}
        taking: dict[str, Mark] = {}
        earlier: dict[str, Mark] = {}
        for ns, existing in self.read(exists).items():
            if existing is None:  # released meanwhile: try once more
                again[ns] = marks[ns]
                continue
            earlier[ns] = existing
            try:
                self._refuse_or_take_over(ns, existing, force, recovering)
            except LockHeld as err:
                refused[ns] = err
                continue
            taking[ns] = replace(
                marks[ns],
                resource_version=existing.resource_version,
                uid=existing.uid,
                snapshot=merged(existing.snapshot, marks[ns].snapshot),
            )
        for verb, batch in (("create", again), ("replace", taking)):
            done, failed = self._send(verb, batch)
            self.held.update(done)
            self.taken_over.update({ns: earlier[ns] for ns in done if ns in taking})
            refused.update({ns: self._refusal(verb, ns, err) for ns, err in failed.items()})
        for ns in self.held:
            refused.pop(ns, None)
        return refused

    def _refuse_or_take_over(self, ns: str, existing: Mark, force: bool, recovering: bool) -> None:
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
        url = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{LEASE}"
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if held.resource_version:
            options["preconditions"] = {"resourceVersion": held.resource_version}
        body = json.dumps(options)
        try:
            # `kubectl delete NAME` has no precondition; `--raw` sends DeleteOptions.
            self.retry.call(
                lambda: self.kubectl.run(["delete", "--raw", url, "-f", "-"], body),
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
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": leases})
        try:
            self.retry.call(
                lambda: self.kubectl.run(
                    ["delete", "-f", "-", "--ignore-not-found", "--wait=false"],
                    document,
                    requests=len(leases),
                ),
                "deleting the in-cluster marks",
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
        if len(namespaces) == 1:
            args = ["get", "lease", LEASE, "-n", namespaces[0]]
        else:
            args = ["get", "leases", "-A", "--field-selector", f"metadata.name={LEASE}"]
        try:
            document = self.retry.call(
                lambda: self.kubectl.json(args), "reading the in-cluster mark"
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
        items = document.get("items") if document.get("kind") == "List" else [document]
        for obj in items or []:
            ns = str((obj.get("metadata") or {}).get("namespace", ""))
            if ns in found:
                found[ns] = self._mark(args, obj)
        return found

    def _mark(self, args: Sequence[str], obj: Mapping[str, Any]) -> Mark:
        try:
            return Mark.from_lease(obj)
        except ValueError as exc:
            raise KubectlOutputError(
                self.kubectl.argv(args), str(exc), json.dumps(obj)[:200]
            ) from exc

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
        document = {"apiVersion": "v1", "kind": "List", "items": leases}
        args = [verb, "-f", "-"]
        try:
            printed = self.kubectl.json_documents(args, json.dumps(document), requests=len(leases))
            err = None
        except KubectlError as exc:
            err = exc
            try:
                printed = parse_documents(exc.stdout)
            except ValueError:
                printed = []
        written: dict[str, Mark] = {}
        for doc in printed:
            for obj in doc.get("items", []) if doc.get("kind") == "List" else [doc]:
                ns = str((obj.get("metadata") or {}).get("namespace", ""))
                if ns in marks:
                    written[ns] = self._mark(args, obj)
        missing = [ns for ns in marks if ns not in written]
        if not missing:
            return written, {}
        if err is None:
            raise KubectlOutputError(self.kubectl.argv(args), "a Lease written was not printed", "")
        return written, _per_object(err, missing)


_LOST = (ErrorKind.CONFLICT, ErrorKind.NOT_FOUND)
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
