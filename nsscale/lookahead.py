"""The reads a run begins with, started side by side as soon as the command line is read.

The namespace's workloads, the caller's review (may they update each kind, and who they are)
and the cluster's name do not depend on each other: run one after another they cost three
kubectl starts and three round trips; side by side they cost the slowest one, and the rest of
nsscale is imported meanwhile. Each is read once; asking again returns the same answer (or
raises the same error).

The threads are daemons: a run that fails early exits without waiting for them. What they run
is read-only, and each kubectl ends on its own within --timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from nsscale.caller import Review, cluster_name, question, review
from nsscale.cluster import KubectlCluster, discover
from nsscale.kubectl import Kubectl
from nsscale.retry import RetryPolicy
from nsscale.workload import Kind, Workload

T = TypeVar("T")

VERB = "update"  # every write nsscale makes is a PUT of the whole object (`kubectl replace`)


def write_question(kind: Kind) -> str:
    """The review question a write of this kind needs answered yes."""
    return question(VERB, resource_of(kind))


def resource_of(kind: Kind) -> str:
    return f"{kind}s.apps"


class Lookahead:
    def __init__(
        self,
        kubectl: Kubectl,
        namespace: str,
        retry: RetryPolicy,
        *,
        writes: bool,
        audited: bool,
        audit_check: Callable[[], None] | None = None,
        selector: str | None = None,
    ) -> None:
        """`writes`: the run may write (not a client-side dry run), so ask the review.
        `audited`: the run will be recorded (never a client-side dry run), so learn who and
        which cluster. `audit_check`: can its record be written (raises if that must stop the
        run before its first change). `selector`: only the workloads it matches are read."""
        self.started = time.monotonic()  # the run's clock starts with its first read
        cluster = KubectlCluster(kubectl)
        self._workloads = _start(lambda: discover(cluster, namespace, retry, selector))
        self._review: Future[Review] | None = None
        if writes:
            questions = [(VERB, resource_of(kind)) for kind in Kind]
            self._review = _start(lambda: review(kubectl, namespace, questions))
        self._cluster: Future[str] | None = None
        if audited:
            self._cluster = _start(lambda: cluster_name(kubectl))
        self._audit: Future[None] | None = _start(audit_check) if audit_check else None

    def workloads(self) -> list[Workload]:
        return self._workloads.result()

    def review(self) -> Review:
        return self._review.result() if self._review else Review(problem="not asked")

    def audit_ready(self) -> None:
        """Raises what the audit check raised: the run must not change anything."""
        if self._audit is not None:
            self._audit.result()

    def cluster(self) -> str:
        return self._cluster.result() if self._cluster else ""


def _start(fn: Callable[[], T]) -> Future[T]:
    future: Future[T] = Future()

    def work() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=work, name="nsscale-lookahead", daemon=True).start()
    return future
