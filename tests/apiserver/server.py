"""An in-memory Kubernetes API server that the real ``kubectl`` can talk to.

``ApiServer`` is a threaded HTTP server on 127.0.0.1 (plain http, see Authentication) that speaks
just enough of the Kubernetes REST API for the commands nsscale shells out to. Its answers are
shaped like a real kube-apiserver's, so that kubectl prints its real output and its real error
lines (see docs/kubectl-facts.md)::

    with ApiServer() as server:
        server.add_deployment("shop", "web", replicas=3)
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        # kubectl --kubeconfig=... get deployments -n shop -o json

What is served, and where it is written
---------------------------------------
Each concern is one module of this package; its docstring tells the details.

- kinds/: one module per kind and its rules -- namespaces (get, list, create, update, patch),
  deployments, statefulsets and replicasets (get, list, create, update, patch, delete; the
  ``scale`` subresource, kinds/scale.py), cronjobs (``batch/v1``), horizontalpodautoscalers
  (``autoscaling/v2``), events (``v1`` and ``events.k8s.io/v1``, one storage), leases (get,
  list, create, update, patch, delete; a PUT to a missing Lease creates it, one to an existing
  Lease needs its resourceVersion), customresourcedefinitions and the custom resources they
  define, served from when they are installed (kinds/custom.py: ready-made definitions for
  KEDA, Flux and Argo CD), the reviews ``kubectl auth whoami`` and ``kubectl auth can-i``
  create, and the TokenReviews and SubjectAccessReviews a server of other clients creates
  (kinds/reviews.py; the tokens they know: tokens.py, ``add_token``). registry.py lists them
  (each server has its own registry: the CRDs it installed); kinds/base.py tells how to add one.
- readiness.py: how fast the simulated controllers bring workloads to ready --
  ``hold_ready``, ``rollout(ready_after=...)``, ``stall``, ``release``.
- objects.py: what every object shares -- metadata, ownerReferences, preconditions, no-op
  updates, dry runs, generation and the simulated controller (``controller`` below).
- storage.py: the objects and the one resourceVersion counter; lists in etcd's key order.
- resources.py: list/get/create/update/patch/delete; lists across all namespaces
  (``/apis/apps/v1/deployments``), ``limit``/``continue`` pagination, Tables (tables.py).
- selectors.py: ``labelSelector`` (the full grammar, and the real 400 for a bad one) and
  ``fieldSelector`` (the fields each kind can select on, and the real 400 for another);
  patches.py: merge, strategic merge and JSON patches.
- routing.py: paths, authentication, RBAC and the order of checks; discovery.py: discovery
  and OpenAPI; rbac.py: ``forbid``; protobuf.py: the protobuf kubectl sends for ``can-i``.
- faults.py: ``fail``, ``hang``, ``drop``, ``late``, ``garble``; admission.py: ``latency``,
  ``admission_latency``, request timeouts, late writes.
- requestlog.py: ``requests`` and ``unhandled``; seeding.py: ``add_*`` (namespaces,
  workloads, CronJobs, HPAs, Events, custom resources), ``install_crd``, ``workload``,
  ``objects``, ``edit_object`` and the other methods a test calls directly; httpd.py: the HTTP
  plumbing.

Query parameters: ``limit``/``continue``, ``labelSelector``, ``fieldSelector``, ``dryRun=All``
(validated and answered, nothing stored, no resourceVersion consumed) and ``timeout``
(kubectl's ``--request-timeout``: the request's deadline; ``0s`` means none, as in the real
server). ``fieldManager``, ``fieldValidation``, ``pretty``, ``propagationPolicy`` and
``resourceVersion``/``resourceVersionMatch`` are accepted and ignored. ``watch=true`` is not
served (405, recorded in ``unhandled``); nor is server-side apply (415). So ``kubectl rollout
status`` prints its verdict from the list it starts with (with ``--watch=false``, once; it
logs the refused watch on stderr), but cannot wait for a change.

A new server holds the Namespaces ``default`` and ``kube-system``, as every real cluster does;
the uid of ``kube-system`` (``cluster_id``) is the cluster's id, its own per server.

Objects look like a real cluster's: ``metadata.resourceVersion`` comes from one global
counter; ``generation`` is bumped on spec changes; a no-op update does not consume a
resourceVersion; ``annotations``/``labels`` are absent when empty; workload ``status`` follows
``spec.replicas`` with the keys the real controllers omit at 0 (a Deployment at 0 has no
``status.replicas``; a StatefulSet keeps ``replicas`` and ``availableReplicas``). A PUT without
``metadata.resourceVersion`` is an unconditional update, except of a Lease (422, as its real
strategy refuses unconditional updates).

``server.controller = True`` simulates the workload controllers: a write that changes a
workload's spec is stored with the old status and answered, and the "controller" then
immediately (synchronously, before the response is sent) writes the new status, consuming a
second resourceVersion -- so a client that reuses the resourceVersion of its own write gets a
409 Conflict. With ``controller = False`` (the default) the status changes in the same write.
Neither mode adds the deployment controller's ``deployment.kubernetes.io/revision``
annotation, so workloads keep no annotations unless a test or a client gives them some. In
both, the controller's status is a finished rollout unless a test slows it (readiness.py:
pods held not ready, ready after a delay, a controller that has not seen the spec).

What kubectl prints (measured with kubectl v1.37.1 against this server)
----------------------------------------------------------------------
``kubectl replace -f - -o json`` with a ``List`` on stdin prints, on stdout, each replaced
object as its own pretty-printed JSON document (4-space indent), one after the other -- NOT a
``List``: 1 object -> one JSON object; several -> several concatenated JSON objects (parse with
``json.JSONDecoder.raw_decode`` in a loop). Objects that failed are simply absent from stdout;
each failure is one stderr line ``Error from server (<Reason>): error when replacing "STDIN":
<message>`` (for example ``Error from server (Conflict): error when replacing "STDIN":
Operation cannot be fulfilled on deployments.apps "a": the object has been modified; please
apply your changes to the latest version and try again``), kubectl goes on with the next
object, and exits 1 if any failed. Exception: when the only object (or the only error) is
Invalid, stderr is ``The Deployment "a" is invalid: spec.replicas: Invalid value: -1: must be
greater than or equal to 0`` without the ``error when replacing`` part. ``kubectl create -f -``
and ``replace -f -`` of a List whose items name different namespaces (no ``-n``) write each
item to its own namespace.

Authentication: kubectl never sends credentials over plain http (client-go only attaches a
bearer token to TLS connections; kubernetes/kubectl#744), so a request WITHOUT an
``Authorization`` header is served as the configured ``user``; a request with a wrong token
gets 401 (``error: You must be logged in to the server (Unauthorized)``, also reachable with
``fail(status=401)``). The kubeconfig still carries the token, as a real one would.

Errors are ``Status`` objects with the real reasons and messages (NotFound, Forbidden,
Conflict, AlreadyExists, Invalid, BadRequest, Unauthorized, InternalError, TooManyRequests...).
A request the server does not understand (unknown path: 404, unknown method: 405, unsupported
media type: 415) is also recorded in ``unhandled``; a bad label or field selector is not (its
400 is the real server's answer); a bug in the server is answered 500 (recorded there too) and
the server keeps serving.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

from tests.apiserver.admission import admit, land_late
from tests.apiserver.discovery import KUBE_VERSION
from tests.apiserver.errors import ApiError, NoAnswer
from tests.apiserver.faults import Fault, FaultInjection
from tests.apiserver.httpd import Handler, HTTPServer
from tests.apiserver.kinds.base import ResourceType
from tests.apiserver.rbac import Authorization, ForbidRule
from tests.apiserver.readiness import ReadinessControl
from tests.apiserver.registry import Registry
from tests.apiserver.request import Request
from tests.apiserver.requestlog import RequestLog, RequestRecord
from tests.apiserver.routing import parse_path, route
from tests.apiserver.seeding import Seeding
from tests.apiserver.storage import Store
from tests.apiserver.tokens import Tokens, TokenUser
from tests.apiserver.wire import JSON_CT, Answer, Reply

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "KUBE_VERSION",
    "ApiError",
    "ApiServer",
    "Fault",
    "ForbidRule",
    "RequestRecord",
    "ResourceType",
]

DEFAULT_USER = "tester"
DEFAULT_TOKEN = "nsscale-test-token"


class ApiServer(Seeding, ReadinessControl, FaultInjection, Authorization, Tokens, RequestLog):
    """An in-memory, threaded Kubernetes API server; see the module docstring.

    Its methods come from the modules of each concern: seeding and inspection (seeding.py),
    the pace of the workload controllers (readiness.py), faults (faults.py), ``forbid``
    (rbac.py), other clients' tokens (tokens.py), the request log (requestlog.py)."""

    def __init__(
        self,
        port: int = 0,
        *,
        user: str = DEFAULT_USER,
        groups: tuple[str, ...] = ("system:authenticated",),
        token: str = DEFAULT_TOKEN,
        controller: bool = False,
        latency: float = 0.0,
        admission_latency: float = 0.0,
    ) -> None:
        self.user = user
        self.groups = groups
        self.token = token
        self.controller = controller
        # seconds added to every request before the server takes it up (a slow network)
        self.latency = latency
        # seconds every admitted write waits before it is stored (a slow validating webhook)
        self.admission_latency = admission_latency
        self._port = port
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._http: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        # the stored objects and the kinds served (storage.py, registry.py); tests read them
        # through the seeding methods
        self.store = Store(Registry(), self._lock)
        self._init_readiness()
        self._faults: list[Fault] = []
        self._forbid: list[ForbidRule] = []
        self._tokens: dict[str, TokenUser] = {}
        self._requests: list[RequestRecord] = []
        self._unhandled: list[RequestRecord] = []
        self.add_namespace("default")
        # every real cluster has it; its uid (made once per server) names the cluster
        self.cluster_id: str = self.add_namespace("kube-system")["metadata"]["uid"]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._http is not None:
            return self
        self._stopping.clear()
        self._http = HTTPServer(self._serve, self._port)
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"apiserver:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        http, thread = self._http, self._thread
        if http is None:
            return
        self._stopping.set()
        self._stop_readiness()
        http.shutdown()
        http.server_close()
        http.close_all()
        if thread is not None:
            thread.join(timeout=5)
        self._http = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("the server is not started")
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(
        self,
        path: Path,
        context: str = "local",
        *,
        namespace: str | None = None,
        token: str | None = None,
    ) -> Path:
        """Write a kubeconfig (token auth, plain http) whose current context is ``context``."""
        ctx = {"cluster": "nsscale-test", "user": self.user}
        if namespace:
            ctx["namespace"] = namespace
        q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
        lines = [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            f"- name: {q('nsscale-test')}",
            "  cluster:",
            f"    server: {q(self.url)}",
            "users:",
            f"- name: {q(self.user)}",
            "  user:",
            f"    token: {q(token if token is not None else self.token)}",
            "contexts:",
            f"- name: {q(context)}",
            "  context:",
            *(f"    {k}: {q(v)}" for k, v in ctx.items()),
            f"current-context: {q(context)}",
            "preferences: {}",
        ]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    # ------------------------------------------------------------------ serving

    def _serve(self, handler: Handler) -> None:
        """Answer one request (or drop its connection), and record it."""
        split = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        req = Request(handler.command, split.path, query, dict(handler.headers.items()), b"")
        answer = self._answer(handler, req)
        # Record before answering: a client that has its answer finds the request recorded.
        record = RequestRecord(
            req.method,
            req.path,
            query,
            answer.code if answer else 0,
            req.resource,
            req.namespace,
            req.name,
            req.verb if req.area == "resource" else None,
        )
        self._record(record, unhandled=answer is not None and answer.unhandled)
        if answer is None:
            handler.drop()
            if req.late is not None:
                threading.Thread(
                    target=land_late,
                    args=(req, req.late, self._route_late, self._stopping, self._lock),
                    name="apiserver:late",
                    daemon=True,
                ).start()
            return
        try:
            handler.send(answer.code, answer.body, answer.content_type, answer.headers)
        except OSError:  # the client went away
            handler.close_connection = True

    def _answer(self, handler: Handler, req: Request) -> Answer | None:
        """What to send back, or None to drop the connection."""
        try:
            req.body = handler.read_body()
            parse_path(req, self.store.registry)
            if self.latency > 0:
                time.sleep(self.latency)
            req.received = time.monotonic()
            fault = self._match_fault(req)
            if fault is not None:
                faulted = self._fault_answer(fault, req)
                if faulted is not None:
                    return faulted
            wait = self.admission_latency
            code, body, content_type = route(
                self, req, lambda: admit(handler.connection, req, wait, self._stopping)
            )
            return Answer(code, body, content_type)
        except NoAnswer:
            return None
        except ApiError as err:
            body = json.dumps(err.status()).encode()
            return Answer(err.code, body, JSON_CT, err.headers, err.unhandled)
        except Exception as err:  # a bug in the server: answer 500, keep serving
            message = f"Internal error occurred: {type(err).__name__}: {err}"
            error = ApiError(500, "InternalError", message, {"causes": [{"message": message}]})
            return Answer(500, json.dumps(error.status()).encode(), JSON_CT, unhandled=True)

    def _route_late(self, req: Request) -> Reply:
        """Serve a ``late`` write when it lands: past admission."""
        return route(self, req)
