"""`nsscale serve --reconcile-every`: `reconcile` on an interval, in a thread of the server, on
the same engine (no subprocess, no start-up to pay), by the one replica holding the leader Lease
(leadership.py). A round is an ordinary reconcile: its runs take their marks, run as
transactions, roll back, and are audited as `nsscale reconcile`'s are.

Two threads: the election (take or renew the Lease every few seconds, beside the rounds) and the
loop (a round when this replica leads and one is due; the next one an interval after its start).
A stop (SIGTERM) interrupts the round in flight as a signal interrupts a CLI run (no new step,
roll back, audited as interrupted); once it has ended, the Lease is released, so another replica
takes over at once. A replica that loses the Lease stops its round the same way and keeps
serving HTTP.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nsscale.audit.auditor import Auditor
from nsscale.durations import format_duration
from nsscale.engine.interrupts import Interrupts
from nsscale.errors import NsscaleError
from nsscale.kube.leader import LEADER_LEASE, server_namespace
from nsscale.kubectl import Kubectl
from nsscale.schedule.decide import Policy
from nsscale.schedule.reconcile import Reconciled, reconcile
from nsscale.serve.accesslog import server_log
from nsscale.serve.answers import rfc3339
from nsscale.serve.leadership import Leadership, lease_duration_s
from nsscale.serve.metrics import Metrics
from nsscale.serve.options import LoopOptions
from nsscale.serve.readiness import Readiness
from nsscale.serve.redact import redact

log = logging.getLogger("nsscale")

TICK_S = 0.5  # how often the loop looks whether it leads and a round is due


@dataclass(frozen=True)
class Round:
    """A reconcile round, as GET /api/scheduler shows it."""

    at: datetime
    exit_code: int
    acted_on: tuple[str, ...]
    errors: tuple[str, ...]

    @classmethod
    def of(cls, at: datetime, done: Reconciled) -> Round:
        errors = [f"{d.namespace}: {d.reason}" for d in done.errors]
        errors += [str(refusal) for refusal in done.refusals]
        errors += [
            f"{ns}: {'; '.join(r.errors)}" for ns, r in done.results.items() if not r.success
        ]
        return cls(at, done.exit_code, tuple(done.results), tuple(errors))

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": rfc3339(self.at.astimezone(UTC)),
            "exit_code": self.exit_code,
            "namespaces_acted_on": list(self.acted_on),
            "errors": [redact(e) for e in self.errors],
        }


class Scheduler:
    """The loop, its election, and what the server shows of them; `loop` None: no loop (the
    metrics and the readiness are the server's all the same)."""

    def __init__(
        self,
        kubectl: Kubectl,
        loop: LoopOptions | None,
        policy: Policy,
        auditor: Auditor,
        metrics: Metrics | None = None,
        readiness: Readiness | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.kubectl = kubectl
        self.loop = loop
        self.policy = policy
        self.auditor = auditor
        self.metrics = metrics or Metrics()
        self.readiness = readiness or Readiness(kubectl)
        if loop is not None and leadership is None:
            leadership = Leadership(
                kubectl,
                server_namespace(kubectl, os.environ),
                f"{socket.gethostname()}_{os.getpid()}",
                lease_duration_s(loop.every),
            )
        self.leadership = leadership
        if leadership is not None:
            leadership.on_contact = self.readiness.reached
            leadership.on_lost = self._halt
        self.last: Round | None = None
        self.next: datetime | None = None
        self._stop = threading.Event()
        self._stop_leading = threading.Event()
        self._lock = threading.Lock()
        self._interrupts: Interrupts | None = None  # of the round in flight
        self._threads: list[threading.Thread] = []

    @property
    def enabled(self) -> bool:
        return self.loop is not None

    def start(self) -> None:
        if self.loop is None or self.leadership is None:
            return
        leadership = self.leadership
        self._threads = [
            threading.Thread(
                target=lambda: leadership.run(self._stop_leading), name="nsscale-leader"
            ),
            threading.Thread(target=self._run, args=(self.loop,), name="nsscale-reconcile"),
        ]
        for thread in self._threads:
            thread.start()
        server_log.info(
            "nsscale serve: reconciling every %s when holding the Lease %s in %s "
            "(lease %d s, as %s)",
            format_duration(self.loop.every),
            LEADER_LEASE,
            leadership.namespace,
            leadership.duration_s,
            leadership.identity,
        )

    def stop(self, reason: str) -> None:
        """No round from now; the one in flight stops as if `reason` (a signal's name) had
        interrupted a CLI run: no new step, roll back."""
        self._stop.set()
        with self._lock:
            if self._interrupts is not None and self._interrupts.received is None:
                # noted as Interrupts' handler notes a signal in the main thread; the round's
                # thread gets none itself
                self._interrupts.received = reason

    def join(self) -> None:
        """Once the round in flight has ended: release the Lease (and end the election)."""
        if not self._threads:
            return
        loop, leader = self._threads[1], self._threads[0]
        loop.join()
        self._stop_leading.set()
        leader.join()

    def _halt(self, why: str) -> None:
        with self._lock:
            if self._interrupts is not None:
                self._interrupts.halt(why)

    def _run(self, loop: LoopOptions) -> None:
        assert self.leadership is not None
        due = _now()
        while not self._stop.is_set():
            if self.leadership.leader and _now() >= due:
                started = _now()
                self.reconcile_once(loop)
                due = started + loop.every
            self.next = due if self.leadership.leader else None
            wait = (due - _now()).total_seconds()
            self._stop.wait(max(0.0, min(TICK_S, wait)))
        self.next = None

    def reconcile_once(self, loop: LoopOptions) -> Round:
        """One round, now: its record kept as the last, counted in the metrics."""
        interrupts = Interrupts(handlers=False)  # a thread: no signal comes here
        with self._lock:
            self._interrupts = interrupts
        at = _now()
        started = time.monotonic()
        try:
            done = reconcile(
                self.kubectl,
                loop.named,
                loop.namespace_selector,
                self.policy,
                at,
                loop.run,
                self.auditor,
                interrupts,
                rules=loop.rules,
            )
        except NsscaleError as err:  # the read failed; the next round tries again
            log.error("reconcile round: %s", err)
            self.metrics.round_failed()
            done_round = Round(at, err.exit_code, (), (str(err),))
        except Exception as exc:  # a bug: the loop goes on, the server's log says what
            log.exception("reconcile round: internal error")
            self.metrics.round_failed()
            done_round = Round(at, 1, (), (f"internal error: {type(exc).__name__}",))
        else:
            self.readiness.reached()
            self.metrics.observe_round(done, time.time())
            done_round = Round.of(at, done)
        finally:
            with self._lock:
                self._interrupts = None
        self.last = done_round
        server_log.info(
            "nsscale serve: reconcile round: exit %d in %.2f s, acted on %s",
            done_round.exit_code,
            time.monotonic() - started,
            ", ".join(done_round.acted_on) or "no namespace",
        )
        return done_round

    def document(self) -> dict[str, Any]:
        """GET /api/scheduler's answer."""
        leadership = self.leadership
        return {
            "enabled": self.enabled,
            "interval_s": self.loop.every.total_seconds() if self.loop else None,
            "leader": leadership is not None and leadership.leader,
            "holder": leadership.holder if leadership is not None else None,
            "last": self.last.to_dict() if self.last is not None else None,
            "next": rfc3339(self.next.astimezone(UTC)) if self.next is not None else None,
        }


def _now() -> datetime:
    return datetime.now(UTC)
