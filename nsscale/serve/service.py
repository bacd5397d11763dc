"""What each endpoint does, free of HTTP plumbing: who may, how many runs at once, the run (or
the status read) through the same functions as the Python API, and the answer its result makes.

The order of the checks: the bearer token (401), the namespace's name (400), a namespace of the
cluster's own (403, before asking anybody), the caller's admission to the namespace (403), a
free run slot (503), and then the engine, which finds a namespace that does not exist (404) or is
annotated protected (403); once it has planned, before its first write (a dry run alike), the
caller's right to every write of the plan (403 naming the first denied: RUN_VERB of each (group,
resource) in the namespace its object lives in); then one whose in-cluster mark another run
holds (409). A status asks STATUS_VERBS of each kind it shows before it reads.

An answer names nothing of the server (redact.py): a 500 says what failed in the namespace and
the run id, and the detail goes to the server's log; a 409 names the holding run's id,
operation, start and, for a served run, its caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from itertools import chain
from typing import Any

from nsscale.api import namespace_status, run_namespace
from nsscale.audit.auditor import Auditor
from nsscale.engine.lock import Mark, RunLock
from nsscale.engine.plan import Operation, Plan, check_namespace
from nsscale.engine.result import RunResult
from nsscale.engine.rivals.hpa import RESOURCE as AUTOSCALERS
from nsscale.engine.run import Executed
from nsscale.errors import (
    InvalidNamespace,
    LockHeld,
    NamespaceNotFound,
    NsscaleError,
    ProtectedNamespace,
    UsageError,
)
from nsscale.kube.kinds import Kind
from nsscale.kube.objects import SYSTEM, WORKLOAD_KINDS
from nsscale.kube.retry import RetryPolicy
from nsscale.kubectl import Kubectl
from nsscale.schedule.decide import Policy
from nsscale.serve.answers import (
    Answer,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Refusal,
    ServerFailed,
    Unavailable,
)
from nsscale.serve.auth import Access, Authority, Caller, bearer_token
from nsscale.serve.redact import redact, redacted

log = logging.getLogger("nsscale")

# The endpoint's word for each operation: (the verb, what the namespace then is)
WORDS = {Operation.DOWN: ("deactivate", "deactivated"), Operation.UP: ("activate", "activated")}
RUN_VERB = "update"  # every write nsscale makes is a PUT of the whole object
STATUS_VERBS = ("get", "list")
SERVED = " via nsscale serve"  # how the in-cluster mark of a served run ends its holder


class Service:
    """The endpoints' work for one server: its kubectl (its own identity), its authority, its
    audit, and the slots of --max-runs."""

    def __init__(
        self,
        kubectl: Kubectl,
        authority: Authority,
        auditor: Auditor,
        max_runs: int,
        scale_resources: tuple[str, ...] = (),
        on_run: Callable[[RunResult], None] = lambda result: None,
        policy: Policy | None = None,
    ) -> None:
        self.kubectl = kubectl
        self.on_run = on_run  # each run made, as it ended (the metrics)
        self.policy = policy or Policy()  # reconcile's schedule: GET /api/namespaces decides by it
        self.scale_resources = scale_resources  # --scale-resource: moved and shown too
        self.authority = authority
        self.auditor = auditor
        self.max_runs = max_runs
        self._slots = threading.BoundedSemaphore(max_runs)
        self.stopping = threading.Event()  # set on SIGTERM: new requests are refused (503)

    def caller(self, authorization: str | None) -> Caller:
        """Who sent the request's `Authorization` header; Unauthenticated if nobody known."""
        return self.authority.authenticate(bearer_token(authorization))

    def act(
        self,
        caller: Caller,
        namespace: str,
        operation: Operation,
        dry_run: bool,
        run_id: str,
        hold: timedelta | None = None,
    ) -> Answer:
        """One run of `operation` on the namespace for the caller, audited as theirs: 200 when
        it reached its target (or a dry run completed), 500 when it failed (rolled back or
        not); a refusal for everything that stops it first. `hold`: as `up --hold`, after a
        successful run reconcile leaves the namespace alone this long."""
        self.check(caller, namespace)
        if not self._slots.acquire(blocking=False):
            raise Unavailable(
                f"{self.max_runs} runs are in progress already (--max-runs): try again later"
            )

        def authorize(plans: Mapping[str, Plan]) -> None:
            try:
                self.authority.authorize(caller, plan_writes(plans.values()))
            except Forbidden as refusal:
                raise Forbidden(f"{refusal.message}: nothing changed", run_id=run_id) from None

        try:
            executed = run_namespace(
                self.kubectl,
                namespace,
                operation,
                self.auditor.for_caller(caller.name),
                dry_run=dry_run,
                run_id=run_id,
                authorize=authorize,
                holder=f"{caller.name}{SERVED}",
                scale_resources=self.scale_resources,
                hold_s=hold.total_seconds() if hold is not None else None,
            )
        except UsageError as err:
            failed = f"Failed to {WORDS[operation][0]} namespace {namespace}"
            raise _refusal(err, failed, run_id) from None
        finally:
            self._slots.release()
        for result in executed.results:
            self.on_run(result)
        return self.run_answer(executed, namespace, operation)

    def status(self, caller: Caller, namespace: str) -> Answer:
        """200 with what `nsscale status NAMESPACE -o json` prints; 500 when it cannot be read."""
        self.check(caller, namespace)
        self.authority.authorize(caller, status_reads(namespace))
        failed = f"Failed to read namespace {namespace}"
        try:
            document = namespace_status(self.kubectl, namespace, self.scale_resources)
        except UsageError as err:
            raise _refusal(err, failed, "") from None
        except NsscaleError as err:  # a read that failed
            log.error("%s: %s", failed, err)
            raise ServerFailed(failed, error=["its workloads could not be read"]) from None
        # a kind read only where installed (Argo Rollouts, --scale-resource) is asked about
        # once it is shown
        self.authority.authorize(caller, shown_reads(namespace, document))
        return Answer(200, document)

    def check(self, caller: Caller, namespace: str) -> None:
        """What is refused before kubectl is started for the request: a bad name, a namespace
        of the cluster's own, a caller not admitted to it."""
        try:
            check_namespace(namespace)
        except InvalidNamespace as err:
            raise BadRequest(err.message) from None
        if namespace in SYSTEM:
            raise Forbidden(f"namespace {namespace} is protected: nsscale never scales it")
        self.authority.admit(caller, namespace)

    def run_answer(self, executed: Executed, namespace: str, operation: Operation) -> Answer:
        """run_answer, with a 409 that names the run holding the namespace as its mark says."""
        if isinstance(executed.refusal, LockHeld):
            try:
                mark = RunLock(self.kubectl, RetryPolicy(0)).read([namespace])[namespace]
            except NsscaleError as err:  # the refusal stands; only its holder is unknown
                log.warning("could not read the mark on %s: %s", namespace, err)
                mark = None
            result = executed.results[0]
            log.info("%s: %s", namespace, executed.refusal)
            message = held_message(namespace, mark)
            # the result says it in these words: the engine's name the holder's host and pid
            raise Conflict(
                message,
                holder=holder_document(mark),
                run_id=result.run_id,
                result=redacted(result.to_dict() | {"errors": [message]}),
            )
        return run_answer(executed, namespace, operation)


def plan_writes(plans: Iterable[Plan]) -> list[Access]:
    """What a run's plans write, as RBAC names it: RUN_VERB of each (group, resource) in each
    namespace an object lives in (a GitOps owner in its own), in the plans' order. The
    workload kinds are asked in every run's namespace even when its plan is empty, so that a
    caller who may not scale them learns nothing of the namespace ("already down") either."""
    plans = list(plans)
    workloads = (
        Access.of(RUN_VERB, kind, plan.namespace) for plan in plans for kind in WORKLOAD_KINDS
    )
    writes = (
        Access.of(RUN_VERB, c.workload.kind, c.workload.namespace or plan.namespace)
        for plan in plans
        for c in plan.changes
    )
    return list(dict.fromkeys(chain(workloads, writes)))


def status_reads(namespace: str) -> list[Access]:
    """What a status reads and shows: the workloads of each kind, and the HPAs targeting them."""
    resources = [kind.resource for kind in WORKLOAD_KINDS] + [AUTOSCALERS]
    return [Access.named(v, r, namespace) for r in resources for v in STATUS_VERBS]


def shown_reads(namespace: str, document: Mapping[str, Any]) -> list[Access]:
    """What a status document shows beyond status_reads: the kinds read only where their CRD
    is installed (Argo Rollouts, --scale-resource), asked about only when there are some to
    show (a cluster without Argo has no RBAC rule for Rollouts)."""
    shown = {Kind(w["type"]) for w in document.get("workloads", [])}
    extra = sorted(shown - set(WORKLOAD_KINDS))
    return [Access.of(v, kind, namespace) for kind in extra for v in STATUS_VERBS]


def held_message(namespace: str, mark: Mark | None) -> str:
    if mark is None:
        return f"another nsscale run was working on {namespace}: try again"
    by = f", by {caller}" if (caller := served_caller(mark)) else ""
    return (
        f"another nsscale run is working on {namespace}: `{mark.operation}` (run "
        f"{mark.run_id}), started {mark.acquired:%Y-%m-%d %H:%M:%S} UTC{by}"
    )


def holder_document(mark: Mark | None) -> dict[str, Any] | None:
    """The holding run, as the 409 names it: never the host or pid it runs on."""
    if mark is None:
        return None
    return {
        "run_id": mark.run_id,
        "operation": mark.operation,
        "started": mark.acquired.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "caller": served_caller(mark),
    }


def served_caller(mark: Mark) -> str | None:
    """Who asked for the marked run, when `nsscale serve` runs it (its mark says so)."""
    return mark.holder.removesuffix(SERVED) if mark.holder.endswith(SERVED) else None


def run_answer(executed: Executed, namespace: str, operation: Operation) -> Answer:
    """The seed's answer to a run: 200 on success, else 500 with what failed in the namespace
    (and `rollback_info` when a rollback was performed); the detail goes to the server's log."""
    result = executed.results[0]
    verb, done = WORDS[operation]
    run = {"run_id": result.run_id, "result": redacted(result.to_dict())}
    if result.success:
        dry = " (dry run: nothing changed)" if result.dry_run else ""
        message = f"Namespace {namespace} {done}{dry}"
        body = {
            "success": True,
            "message": message,
            "scaled_resources": result.scaled_json(),
        }
        return Answer(200, body | run)
    log.error("run %s on %s failed: %s", result.run_id, namespace, "; ".join(result.errors))
    failed: dict[str, Any] = {
        "success": False,
        "message": f"Failed to {verb} namespace {namespace}",
        "error": [redact(e) for e in result.errors],
    }
    if result.rollback_performed:
        failed["rollback_info"] = {
            "performed": True,
            "success_count": result.rollback_success_count,
            "failed_count": result.rollback_failed_count,
        }
    return Answer(500, failed | run)


def _refusal(err: UsageError, failed: str, run_id: str) -> Refusal:
    """What the engine found wrong before it attempted anything, as an answer."""
    if isinstance(err, NamespaceNotFound):
        return NotFound(err.message)
    if isinstance(err, ProtectedNamespace):
        return Forbidden(err.message)
    if isinstance(err, InvalidNamespace):
        return BadRequest(err.message)
    # The server's own set-up (its kubectl, its kubeconfig): nothing the caller can change,
    # and nothing they need to know of; the server's log says what.
    log.error("%s%s: %s", failed, f" (run {run_id})" if run_id else "", err)
    extra = {"run_id": run_id} if run_id else {}
    return ServerFailed(failed, error=["the server could not run it: see its log"], **extra)
