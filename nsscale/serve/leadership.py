"""Which replica of `nsscale serve --reconcile-every` reconciles: the one holding the leader
Lease (kube/leader.py), as client-go's leader election does it.

Every RETRY of the lease's duration each replica reads the Lease. The holder renews it (a
replace naming the resourceVersion it read: of two writers only one wins, the other gets a
Conflict). Another replica takes it when it is released (no holder) or when it has not changed
for a whole lease duration by this replica's own clock (client-go's rule: no trust in another
host's clock). A holder that cannot renew for RENEW_DEADLINE of the duration stops counting
itself the leader before anyone else may take over; one that finds another holder has lost at
once. Release (SIGTERM) clears the holder, so another replica takes over at its next try.

The durations derive from the interval (lease_duration_s): 3 x the interval, from 3 s to 15 s.
The Lease is renewed beside the rounds, never by them, so a round longer than the lease keeps
it; a short interval (tests) gets a short lease and a quick takeover; 15 s is client-go's usual
lease, nothing beside a round every few minutes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from nsscale.errors import ErrorKind, KubectlError, NsscaleError
from nsscale.kube.leader import LEADER_LEASE, LeaderRecord, now, read_leader, write_leader
from nsscale.kubectl import Kubectl
from nsscale.serve.accesslog import server_log

log = logging.getLogger("nsscale")

MIN_LEASE_S, MAX_LEASE_S = 3, 15
RETRY = 1 / 5  # of the duration: how often each replica reads (and the holder renews)
RENEW_DEADLINE = 2 / 3  # of the duration: a holder that could not renew this long steps down


def lease_duration_s(interval: timedelta) -> int:
    return max(MIN_LEASE_S, min(MAX_LEASE_S, math.ceil(3 * interval.total_seconds())))


class Leadership:
    """This replica's part in the election: `leader` while it holds a fresh Lease."""

    def __init__(
        self,
        kubectl: Kubectl,
        namespace: str,
        identity: str,
        duration_s: int,
        *,
        on_contact: Callable[[], None] = lambda: None,
        on_lost: Callable[[str], None] = lambda why: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.identity = identity
        self.duration_s = duration_s
        self.retry_s = duration_s * RETRY
        self.on_contact = on_contact  # the API server answered (readiness)
        self.on_lost = on_lost  # the Lease is lost while held: stop the round in flight
        self.clock = clock
        self.holder: str | None = None  # as last read
        self._record: LeaderRecord | None = None
        self._observed_at = 0.0  # when the record last changed, by this replica's clock
        self._renewed_at: float | None = None  # when this replica last wrote it as holder
        self._lock = threading.Lock()

    @property
    def leader(self) -> bool:
        renewed = self._renewed_at
        return renewed is not None and self.clock() - renewed < self.duration_s * RENEW_DEADLINE

    def run(self, stop: threading.Event) -> None:
        """Try (take or renew) every retry_s until `stop`; then release the Lease if held."""
        while not stop.is_set():
            self.try_once()
            stop.wait(self.retry_s)
        self.release()

    def try_once(self) -> None:
        """One read, and a write when this replica holds the Lease or may take it."""
        with self._lock:
            was_leader = self.leader
            try:
                self._try()
            except NsscaleError as err:
                log.warning("the leader Lease %s: %s", LEADER_LEASE, err)
            if was_leader and not self.leader:
                why = (
                    f"lost the leader Lease {LEADER_LEASE} (now held by {self.holder or 'nobody'})"
                )
                log.warning("%s: no reconcile until it is won again", why)
                self._renewed_at = None
                self.on_lost(why)

    def _try(self) -> None:
        record = read_leader(self.kubectl, self.namespace)
        self.on_contact()
        at = self.clock()
        if record is None or self._record is None or record != self._record:
            self._observed_at = at  # it changed (or is first seen): its holder is alive
        self._record = record
        self.holder = record.holder if record is not None else None
        mine = record is not None and record.holder == self.identity
        if record is not None and record.holder and not mine:
            if at - self._observed_at < self.duration_s:
                self._renewed_at = None  # somebody else's, and alive
                return
            log.info("the leader Lease %s of %s has expired", LEADER_LEASE, record.holder)
        stamp = now()
        taken = record is None or not mine
        wanted = LeaderRecord(
            holder=self.identity,
            duration_s=self.duration_s,
            acquired=stamp if taken or record is None else record.acquired,
            renewed=stamp,
            transitions=(record.transitions + (1 if taken else 0)) if record else 0,
            resource_version=record.resource_version if record else "",
        )
        try:
            written = write_leader(self.kubectl, self.namespace, wanted)
        except KubectlError as err:
            if err.kind is ErrorKind.CONFLICT:  # another replica wrote it first
                self._renewed_at = None
                return
            raise
        if taken:
            server_log.info(
                "nsscale serve: took the leader Lease %s in %s", LEADER_LEASE, self.namespace
            )
        self._record, self.holder = written, written.holder
        self._observed_at = self._renewed_at = at

    def release(self) -> None:
        """Give the Lease up, if held: its holder cleared, so another replica takes it at once
        (a Conflict or a failure: it expires instead)."""
        with self._lock:
            record, self._renewed_at = self._record, None
            if record is None or record.holder != self.identity:
                return
            released = LeaderRecord(
                holder="",
                duration_s=1,
                acquired=record.acquired,
                renewed=now(),
                transitions=record.transitions,
                resource_version=record.resource_version,
            )
            try:
                self._record = write_leader(self.kubectl, self.namespace, released)
                self.holder = None
                server_log.info("nsscale serve: released the leader Lease %s", LEADER_LEASE)
            except NsscaleError as err:
                log.warning("could not release the leader Lease %s: %s", LEADER_LEASE, err)
