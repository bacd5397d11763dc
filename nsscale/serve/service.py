"""What each endpoint does, free of HTTP plumbing: who may, how many runs at once, the run (or
the status read) through the same functions as the Python API, and the answer its result makes.

The order of the checks: the bearer token (401), the namespace's name (400), a namespace of the
cluster's own (403, before asking anybody), the caller's right (403), a free run slot (503), and
then the engine, which finds a namespace that does not exist (404) or is annotated protected
(403), and one whose in-cluster mark another run holds (409).
"""

from __future__ import annotations

import threading
from typing import Any

from nsscale.api import namespace_status, run_namespace
from nsscale.audit.auditor import Auditor
from nsscale.engine.plan import Operation, check_namespace
from nsscale.engine.run import Executed
from nsscale.errors import (
    InvalidNamespace,
    LockHeld,
    NamespaceNotFound,
    NsscaleError,
    ProtectedNamespace,
    UsageError,
)
from nsscale.kube.objects import SYSTEM
from nsscale.kubectl import Kubectl
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
from nsscale.serve.auth import Authority, Caller, bearer_token

# The endpoint's word for each operation: (the verb, what the namespace then is)
WORDS = {Operation.DOWN: ("deactivate", "deactivated"), Operation.UP: ("activate", "activated")}


class Service:
    """The endpoints' work for one server: its kubectl (its own identity), its authority, its
    audit, and the slots of --max-runs."""

    def __init__(
        self, kubectl: Kubectl, authority: Authority, auditor: Auditor, max_runs: int
    ) -> None:
        self.kubectl = kubectl
        self.authority = authority
        self.auditor = auditor
        self.max_runs = max_runs
        self._slots = threading.BoundedSemaphore(max_runs)
        self.stopping = threading.Event()  # set on SIGTERM: new requests are refused (503)

    def caller(self, authorization: str | None) -> Caller:
        """Who sent the request's `Authorization` header; Unauthenticated if nobody known."""
        return self.authority.authenticate(bearer_token(authorization))

    def act(
        self, caller: Caller, namespace: str, operation: Operation, dry_run: bool, run_id: str
    ) -> Answer:
        """One run of `operation` on the namespace for the caller, audited as theirs: 200 when
        it reached its target (or a dry run completed), 500 when it failed (rolled back or
        not); a refusal for everything that stops it first."""
        self._check(caller, "update", namespace)
        if not self._slots.acquire(blocking=False):
            raise Unavailable(
                f"{self.max_runs} runs are in progress already (--max-runs): try again later"
            )
        try:
            executed = run_namespace(
                self.kubectl,
                namespace,
                operation,
                self.auditor.for_caller(caller.name),
                dry_run=dry_run,
                run_id=run_id,
            )
        except UsageError as err:
            raise _refusal(err, f"Failed to {WORDS[operation][0]} namespace {namespace}") from None
        finally:
            self._slots.release()
        return run_answer(executed, namespace, operation)

    def status(self, caller: Caller, namespace: str) -> Answer:
        """200 with what `nsscale status NAMESPACE -o json` prints; 500 when it cannot be read."""
        self._check(caller, "get", namespace)
        failed = f"Failed to read namespace {namespace}"
        try:
            return Answer(200, namespace_status(self.kubectl, namespace))
        except UsageError as err:
            raise _refusal(err, failed) from None
        except NsscaleError as err:  # a read that failed
            raise ServerFailed(failed, error=[err.message]) from None

    def _check(self, caller: Caller, verb: str, namespace: str) -> None:
        """What is refused before kubectl is started for the run: a bad name, a namespace of
        the cluster's own, a caller without the right."""
        try:
            check_namespace(namespace)
        except InvalidNamespace as err:
            raise BadRequest(err.message) from None
        if namespace in SYSTEM:
            raise Forbidden(f"namespace {namespace} is protected: nsscale never scales it")
        self.authority.authorize(caller, verb, namespace)


def run_answer(executed: Executed, namespace: str, operation: Operation) -> Answer:
    """The seed's answer to a run: 200 on success, 409 when another run holds the namespace,
    else 500 with the errors (and `rollback_info` when a rollback was performed)."""
    document = executed.results[0].to_dict()
    verb, done = WORDS[operation]
    run = {"run_id": document.get("run_id", ""), "result": document}
    if isinstance(executed.refusal, LockHeld):
        raise Conflict(executed.refusal.message, **run)
    if document["success"]:
        dry = " (dry run: nothing changed)" if document.get("dry_run") else ""
        message = f"Namespace {namespace} {done}{dry}"
        body = {
            "success": True,
            "message": message,
            "scaled_resources": document["scaled_resources"],
        }
        return Answer(200, body | run)
    failed: dict[str, Any] = {
        "success": False,
        "message": f"Failed to {verb} namespace {namespace}",
        "error": document["errors"],
    }
    if document["rollback_performed"]:
        failed["rollback_info"] = {
            "performed": True,
            "success_count": document["rollback_success_count"],
            "failed_count": document["rollback_failed_count"],
        }
    return Answer(500, failed | run)


def _refusal(err: UsageError, failed: str) -> Refusal:
    """What the engine found wrong before it attempted anything, as an answer."""
    if isinstance(err, NamespaceNotFound):
        return NotFound(err.message)
    if isinstance(err, ProtectedNamespace):
        return Forbidden(err.message)
    if isinstance(err, InvalidNamespace):
        return BadRequest(err.message)
    # The server's own set-up (its kubectl, its kubeconfig): nothing the caller can change.
    return ServerFailed(failed, error=[err.message])
