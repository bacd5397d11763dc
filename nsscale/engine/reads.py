"""The reads a run begins with, started side by side as soon as the command line is read.

The namespaces, their workloads, the caller's review (may they update each kind, and who they
are) and the cluster's name and id do not depend on each other: run one after another they cost
a kubectl start and a round trip each; side by side they cost the slowest one, and the rest of
nsscale is imported meanwhile. Each is read once; asking again returns the same answer (or
raises the same error).

The threads are daemons: a run that fails early exits without waiting for them. What they run
is read-only; a kubectl still running when nsscale exits is killed (kubectl.CHILDREN). A run
interrupted before its first change `cancel`s its reads: nothing waits for them any more (a
read retrying against a server that does not answer would hold a Ctrl-C for minutes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

from nsscale.defaults import DEFAULT_RETRIES
from nsscale.engine.auditing import Audit
from nsscale.engine.namespaces import Targets, choose
from nsscale.engine.options import RunOptions
from nsscale.engine.rivals.hpa import Autoscaler, read_autoscalers
from nsscale.engine.rivals.keda import read_scaledobjects
from nsscale.errors import ErrorKind, KubectlError, ReadsCancelled
from nsscale.kube.cluster import (
    ClusterIdentity,
    KubectlCluster,
    cluster_id,
    read_namespaces,
    read_workloads,
    scale_resource_kinds,
)
from nsscale.kube.kinds import OPTIONAL_WORKLOAD_KINDS
from nsscale.kube.objects import WORKLOAD_KINDS, Kind, Namespace, Workload, WorkloadKey
from nsscale.kube.retry import RetryPolicy
from nsscale.kube.review import Review, cluster_name, question, review

T = TypeVar("T")

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

log = logging.getLogger("nsscale")

VERB = "update"  # every write nsscale makes is a PUT of the whole object (`kubectl replace`)
# the kinds a run moves by their count of pods: Argo Rollouts among them when installed
MOVED_KINDS = (*WORKLOAD_KINDS, *OPTIONAL_WORKLOAD_KINDS)


def write_question(kind: Kind, namespace: str) -> str:
    """The review question a write of this kind in the namespace needs answered yes."""
    return question(VERB, kind.resource, namespace)


class Lookahead:
    def __init__(
        self,
        kubectl: Kubectl,
        named: Sequence[str],
        retry: RetryPolicy,
        *,
        writes: bool,
        audited: bool,
        audit_check: Callable[[], None] | None = None,
        selector: str | None = None,
        namespace_selector: str | None = None,
        autoscalers: bool = False,
        kinds: Sequence[Kind] = MOVED_KINDS,
        scale_resources: Sequence[str] = (),
        scaledobjects: bool = False,
        autoscalers_moved: bool = False,
        autoscalers_put_back: bool = False,
        optional_cronjobs: bool = False,
        raw_reads: bool = False,
    ) -> None:
        """`named`: the namespaces named; `namespace_selector` picks more by their labels.
        `writes`: the run may write (not a client-side dry run), so ask the review.
        `audited`: the run will be recorded (never a client-side dry run), so learn who and
        which cluster (its name; its id, read once per process). `audit_check`: can its record
        be written (raises if that must stop the run before its first change). `selector`:
        only the workloads it matches are read.
        `autoscalers`: also read the HorizontalPodAutoscalers targeting them. `kinds`: those
        read (and asked about), CronJobs among them when the run may move them.
        `scale_resources`: custom resources (RESOURCE.GROUP) read and moved beside them, each
        a kind built from its CustomResourceDefinition, read first (NoScaleResource: exit 2).
        `scaledobjects`: also read KEDA's ScaledObjects (a call of their own).
        `autoscalers_moved`: the run may write the HPAs' floors (asked about);
        `autoscalers_put_back`: only to put back what nsscale lowered (up, recover).
        `optional_cronjobs`: CronJobs the caller may not read are a warning, not a failure.
        `raw_reads`: the workloads are read a kind per process, faster (see KubectlCluster)."""
        self.started = time.monotonic()  # the run's clock starts with its first read
        self._cancelled = False
        self._named, self._namespace_selector = tuple(named), namespace_selector
        custom = scale_resource_kinds(kubectl, scale_resources) if scale_resources else ()
        self.kinds = tuple(dict.fromkeys((*kinds, *custom)))
        self._targets: Targets | None = None
        self._choosing = threading.Lock()
        cluster = KubectlCluster(kubectl, raw_reads=raw_reads)
        self._namespaces = _start(
            lambda: read_namespaces(cluster, named, namespace_selector, retry)
        )

        # The namespaces named: read in one call (across all namespaces when there are
        # several); with a selector, every namespace's, kept to those chosen once known.
        def read(scope: Sequence[str] | None) -> list[Workload]:
            try:
                return read_workloads(cluster, scope, retry, selector, self.kinds)
            except KubectlError as err:
                # `up` and `recover` read CronJobs unasked, to resume what nsscale suspended:
                # a caller who may not read them still gets the workloads back up
                if not (optional_cronjobs and err.kind is ErrorKind.FORBIDDEN):
                    raise
                if "cronjobs" not in err.message:
                    raise
                log.warning("could not read the CronJobs, so none is resumed: %s", err)
                self.kinds = tuple(k for k in self.kinds if k is not Kind.CRONJOB)
                return read_workloads(cluster, scope, retry, selector, self.kinds)

        self._read = read
        self._scope = None if namespace_selector is not None else list(named)
        self._workloads = _start(lambda: self._read(self._scope))
        self._review: Future[Review] | None = None
        if writes:
            asked = (
                *self.kinds,
                *([Kind.SCALEDOBJECT] if scaledobjects else []),
                *([Kind.HPA] if autoscalers_moved else []),
            )
            questions = [(VERB, kind.resource) for kind in asked]
            self._review = _start(
                lambda: review(
                    kubectl, named if namespace_selector is None else self.namespaces(), questions
                )
            )
        self._cluster: Future[str] | None = None
        self._cluster_id: Future[str | None] | None = None
        if audited:
            self._cluster = _start(lambda: cluster_name(kubectl))
            self._cluster_id = _start(lambda: cluster_id(kubectl))
        self._audit: Future[None] | None = _start(audit_check) if audit_check else None
        self._scaledobjects: Future[list[Workload]] | None = None
        if scaledobjects:
            self._scaledobjects = _start(lambda: read_scaledobjects(kubectl, self._scope))
        self._autoscalers: Future[dict[WorkloadKey, Autoscaler]] | None = None
        if autoscalers:
            self._autoscalers = _start(
                lambda: read_autoscalers(kubectl, self._scope, putting_back=autoscalers_put_back)
            )

    @classmethod
    def for_run(
        cls,
        kubectl: Kubectl,
        named: Sequence[str],
        namespace_selector: str | None,
        options: RunOptions,
        auditor: Audit,
    ) -> Lookahead:
        """The reads a run of `options` begins with."""
        dry_run = options.dry_run or options.server_dry_run
        resuming = options.cronjobs and not options.suspend_cronjobs  # up, recover
        return cls(
            kubectl,
            named,
            RetryPolicy(options.retries),
            writes=not options.dry_run,
            audited=not dry_run,
            selector=options.selection.selector,
            namespace_selector=namespace_selector,
            audit_check=None if dry_run else auditor.check,
            # scale to N > 0: an HPA overrides it; a scheduled down to N, up, recover: moved
            autoscalers=bool(options.replicas or options.autoscalers),
            autoscalers_moved=options.autoscalers,
            autoscalers_put_back=options.autoscalers and resuming,
            kinds=(*MOVED_KINDS, Kind.CRONJOB) if options.cronjobs else MOVED_KINDS,
            scale_resources=options.scale_resources,
            scaledobjects=options.keda,
            optional_cronjobs=resuming,
        )

    @classmethod
    def for_status(
        cls,
        kubectl: Kubectl,
        named: Sequence[str],
        namespace_selector: str | None = None,
        selector: str | None = None,
        scale_resources: Sequence[str] = (),
    ) -> Lookahead:
        """The reads `status` shows: the namespaces, their workloads and the HPAs targeting
        them, side by side; nothing written, nothing audited."""
        return cls(
            kubectl,
            named,
            RetryPolicy(DEFAULT_RETRIES),
            writes=False,
            audited=False,
            selector=selector,
            namespace_selector=namespace_selector,
            autoscalers=True,
            scale_resources=scale_resources,
        )

    @property
    def named(self) -> tuple[str, ...]:
        return self._named

    def cancel(self) -> None:
        """The run stops before its first change (a signal): from now on a read not done yet
        is not waited for (ReadsCancelled; the review and the cluster's name: unknown)."""
        self._cancelled = True

    def _result(self, future: Future[T]) -> T:
        if self._cancelled and not future.done():
            raise ReadsCancelled("the run was stopped before its reads were done")
        return future.result()

    def targets(self) -> Targets:
        """The namespaces the run acts on; UsageError for a name that is missing or
        protected. A protected namespace the selector picked is skipped with a warning."""
        namespaces = self._result(self._namespaces)
        with self._choosing:  # the review's thread may ask at the same time
            return self._choose(namespaces)

    def _choose(self, namespaces: dict[str, Namespace]) -> Targets:
        if self._targets is None:
            targets = choose(self._named, self._namespace_selector, namespaces)
            for namespace, why in targets.skipped:
                log.warning("skipping namespace %s: %s", namespace, why)
            if not targets.namespaces:
                log.warning(
                    "no namespace matches --namespace-selector %s: nothing to do",
                    self._namespace_selector,
                )
            self._targets = targets
        return self._targets

    def namespaces(self) -> tuple[str, ...]:
        return self.targets().namespaces

    def namespace(self, name: str) -> Namespace:
        """A chosen namespace as read (its labels and annotations)."""
        return self._result(self._namespaces).get(name) or Namespace(name)

    def workloads(self) -> dict[str, list[Workload]]:
        """The workloads of each namespace chosen."""
        by_namespace: dict[str, list[Workload]] = {ns: [] for ns in self.namespaces()}
        if not by_namespace:
            return by_namespace
        try:
            found = self._result(self._workloads)
        except KubectlError as err:
            if err.kind is not ErrorKind.FORBIDDEN or self._scope is not None:
                raise
            # not allowed across all namespaces: read those chosen (each alone if need be)
            found = self._read(list(by_namespace))
        for w in found:
            if w.namespace in by_namespace:
                by_namespace[w.namespace].append(w)
        return by_namespace

    def scaledobjects(self) -> dict[str, list[Workload]]:
        """KEDA's ScaledObjects of each namespace chosen (none when not asked for)."""
        found = self._result(self._scaledobjects) if self._scaledobjects else []
        by_namespace: dict[str, list[Workload]] = {ns: [] for ns in self.namespaces()}
        for so in found:
            if so.namespace in by_namespace:
                by_namespace[so.namespace].append(so)
        return by_namespace

    def autoscalers(self) -> dict[WorkloadKey, Autoscaler]:
        """The HPA targeting each workload (none when not asked for)."""
        return self._result(self._autoscalers) if self._autoscalers else {}

    def review(self) -> Review:
        if self._review is None:
            return Review(problem="not asked")
        if self._cancelled and not self._review.done():
            return Review(problem="not answered before the run was stopped")
        return self._review.result()

    def audit_ready(self) -> None:
        """Raises what the audit check raised: the run must not change anything."""
        if self._audit is not None:
            self._audit.result()

    def cluster(self) -> ClusterIdentity:
        """The cluster's name and id ("" and None when not read, or not before a signal)."""
        if self._cluster is None or self._cluster_id is None:
            return ClusterIdentity("")
        if self._cancelled and not (self._cluster.done() and self._cluster_id.done()):
            return ClusterIdentity("")
        return ClusterIdentity(self._cluster.result(), self._cluster_id.result())


def _start(fn: Callable[[], T]) -> Future[T]:
    future: Future[T] = Future()

    def work() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=work, name="nsscale-lookahead", daemon=True).start()
    return future
