"""Fault injection: ``fail``, ``hang``, ``drop``, ``late`` and ``garble`` add a :class:`Fault`:

- ``fail``: answer an error ``Status`` (nothing is done).
- ``hang(seconds=...)``: hold the request, then serve it normally -- the slow write that lands
  and is answered. Cut at its ``?timeout=`` deadline with a 504, never done then. The hold does
  not watch the connection: a held write whose client hung up (kubectl killed) still lands when
  its time is up, like a request past the point where the real server would notice.
  ``Fault.release()`` ends the hold at once (a test that waits for something to happen while
  the request is held, then lets it go): the held requests, and those it matches later, are
  served.
- ``drop``: close the connection without answering (kubectl: ``EOF``); nothing is done.
- ``late(seconds=...)``: the connection drops after the request was sent: closed at once
  without an answer (kubectl: ``EOF``, as ``drop``), but the write is done ``seconds`` later
  through the normal route (its ``resourceVersion`` checked then), unless its ``?timeout=``
  deadline comes first. ``Fault.outcomes`` tells how each went.
- ``garble``: answer 200 with a body that is not JSON (nothing is done).
- ``before(call=...)``: run ``call()`` (another actor's change: a concurrent create, a scale),
  then serve the request normally, against the objects as ``call`` left them -- the race a
  client loses when someone else writes between its read and its write.

A request matches a fault when each of its set fields matches (``None`` = anything):

- ``method``: the HTTP method (``GET``, ``PUT``, ``PATCH``, ``POST``, ``DELETE``), any case.
- ``resource``: the API plural, with a subresource as ``deployments/scale``; requests that are
  not resource requests are ``discovery`` (``/version``, ``/api...``, ``/apis...`` discovery
  documents) and ``openapi``. ``None`` matches every request, discovery included.
- ``name``: the object's name; list and create requests have no name and only match ``None``.
- ``namespace``: the request's namespace.

Each fault counts the requests it matches; it fires on the ``nth`` match (1-based) and the
following ones, ``times`` times in all (``None`` = forever). Faults are checked in the order
they were added, before authentication and authorization; every matching fault counts the
request, the first one that fires acts. ``Fault.fired`` tells how often it acted.

A request is matched after ``latency`` and before everything else; ``hang`` holds it before
admission (admission.py), the two waits sharing its one deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from tests.apiserver.errors import REASONS, ApiError, NoAnswer, conflict, details, timeout_error
from tests.apiserver.rbac import forbidden_message
from tests.apiserver.request import Request
from tests.apiserver.wire import JSON, Answer

__all__ = ["Fault", "FaultAction", "FaultInjection"]

FaultAction = Literal["fail", "hang", "drop", "late", "garble", "before"]


@dataclass
class Fault:
    """An injected fault; see the module docstring for the matching rules."""

    action: FaultAction
    method: str | None = None
    resource: str | None = None
    name: str | None = None
    namespace: str | None = None
    nth: int = 1
    times: int | None = 1
    status: int = 500
    message: str | None = None
    reason: str | None = None
    retry_after: int | None = None
    seconds: float | None = None
    call: Callable[[], object] | None = None  # before: another actor's write, first
    seen: int = 0
    fired: int = 0
    # late: the status each held-back write got when its time came (0: the server stopped)
    outcomes: list[int] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event, repr=False)

    def release(self) -> None:
        """A ``hang``: serve the requests it holds now, and those it matches later at once."""
        self.released.set()

    def matches(
        self, method: str, resource: str | None, namespace: str | None, name: str | None
    ) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.resource is None or self.resource == resource)
            and (self.name is None or self.name == name)
            and (self.namespace is None or self.namespace == namespace)
        )


class FaultInjection:
    """The faults of :class:`~tests.apiserver.server.ApiServer` (a mixin)."""

    user: str
    _lock: threading.RLock
    _stopping: threading.Event
    _faults: list[Fault]

    def _add_fault(self, fault: Fault) -> Fault:
        if fault.nth < 1:
            raise ValueError("nth is 1-based")
        if fault.method is not None:
            fault.method = fault.method.upper()
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        status: int = 500,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
        message: str | None = None,
        reason: str | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        """Answer matching requests with an error ``Status`` of code ``status``.

        The message/reason default to the real ones for that code (a 404/403/409 names the
        object like the real server does). A 429 carries ``Retry-After: 1`` unless
        ``retry_after`` says otherwise (client-go then retries the request itself)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        return self._add_fault(
            Fault(
                "fail",
                method,
                resource,
                name,
                namespace,
                nth,
                times,
                status,
                message,
                reason,
                retry_after,
            )
        )

    def hang(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        seconds: float | None = None,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """Hold matching requests ``seconds`` (None: until the server stops), then serve them
        normally: a write held this way lands ``seconds`` late and is answered (a request
        still held when the server stops gets no answer and does nothing). A request whose
        ``?timeout=`` (kubectl's ``--request-timeout``) runs out first is answered 504 Timeout
        at that deadline, its write not done, ever, as the real apiserver does.

        The hold does not watch the connection: a write whose client hangs up meanwhile
        (kubectl killed) still lands when ``seconds`` are over, like a request already past
        the point where the real server would notice. For a wait the server abandons when
        its client goes away (a webhook call), use ``admission_latency``."""
        return self._add_fault(
            Fault("hang", method, resource, name, namespace, nth, times, seconds=seconds)
        )

    def drop(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """Close the connection of matching requests without answering (nothing is done)."""
        return self._add_fault(Fault("drop", method, resource, name, namespace, nth, times))

    def late(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        seconds: float,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """The connection drops after the request was sent: read matching requests, close
        their connection at once without answering (the client sees EOF, like ``drop``), and
        serve them ``seconds`` later all the same, as a request already on its way to storage
        is -- unless their ``?timeout=`` deadline comes first: then nothing is done.

        The write goes through the normal route when its time comes (authorization,
        validation, and the ``resourceVersion`` precondition against the object as it is
        then: a write whose object changed meanwhile fails with a Conflict and nothing
        lands); ``admission_latency`` is not added, the write is past admission. Nobody hears
        how it went: the request is recorded with status 0, and ``Fault.outcomes`` gets the
        status it got (504 when its deadline came first, 0 when the server stopped)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        return self._add_fault(
            Fault("late", method, resource, name, namespace, nth, times, seconds=seconds)
        )

    def garble(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """Answer matching requests 200 with a body that is not JSON (nothing is done)."""
        return self._add_fault(Fault("garble", method, resource, name, namespace, nth, times))

    def before(
        self,
        method: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        call: Callable[[], object],
        nth: int = 1,
        times: int | None = 1,
        namespace: str | None = None,
    ) -> Fault:
        """Run ``call()`` when a matching request arrives, then serve the request normally:
        someone else's write lands just before it (``call`` may use the seeding methods,
        ``edit_object``, ``add_object``...)."""
        return self._add_fault(
            Fault("before", method, resource, name, namespace, nth, times, call=call)
        )

    def clear_faults(self) -> None:
        """Drop every fault; the requests a ``hang`` still holds are let go (served)."""
        with self._lock:
            for fault in self._faults:
                fault.release()
            self._faults.clear()

    def _match_fault(self, req: Request) -> Fault | None:
        with self._lock:
            chosen = None
            for fault in self._faults:
                if not fault.matches(req.method, req.resource, req.namespace, req.name):
                    continue
                fault.seen += 1
                if (
                    chosen is None
                    and fault.seen >= fault.nth
                    and (fault.times is None or fault.fired < fault.times)
                ):
                    fault.fired += 1
                    chosen = fault
            return chosen

    def _fault_answer(self, fault: Fault, req: Request) -> Answer | None:
        """Act on the fault that fired for ``req``: an answer, None to serve ``req`` normally
        (after a ``hang``), or :class:`NoAnswer` to close the connection unanswered (``drop``;
        ``late``, which sets ``req.late`` for the server to land it)."""
        if fault.action == "hang":
            # As the real apiserver, a request carrying ?timeout= (kubectl's
            # --request-timeout) is cut at that deadline with a 504, its write not done.
            timeout = req.timeout
            cut = timeout is not None and (fault.seconds is None or timeout < fault.seconds)
            held = self._hold(fault, timeout if cut else fault.seconds)
            if held == "stopped":
                raise NoAnswer
            if held == "elapsed" and cut:
                raise timeout_error()
            return None
        if fault.action == "before":
            assert fault.call is not None
            fault.call()
            return None
        if fault.action == "drop":
            raise NoAnswer
        if fault.action == "late":
            req.late = fault
            raise NoAnswer
        if fault.action == "garble":
            return Answer(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n")
        raise self._fault_error(fault, req)

    def _hold(
        self, fault: Fault, seconds: float | None
    ) -> Literal["elapsed", "released", "stopped"]:
        """Hold a request ``seconds`` (None: until released or stopped): how it ended."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not fault.released.is_set():
            left = 0.01 if deadline is None else min(0.01, deadline - time.monotonic())
            if left <= 0:
                return "elapsed"
            if self._stopping.wait(left):
                return "stopped"
        return "released"

    def _fault_error(self, fault: Fault, req: Request) -> ApiError:
        reason, message = REASONS.get(fault.status, ("", "injected failure"))
        out: JSON = {}
        if req.kind is not None:
            rt = req.kind.resource
            out = details(rt, req.name)
            if fault.status == 404 and req.name:
                message = f'{rt.qualified} "{req.name}" not found'
            elif fault.status == 403:
                resource = req.resource or ""
                message = forbidden_message(
                    self.user, req.verb, resource, rt, req.namespace, req.name
                )
            elif fault.status == 409 and req.name:
                message = conflict(rt, req.name).message
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            out["retryAfterSeconds"] = fault.retry_after
            headers["Retry-After"] = str(fault.retry_after)
        if fault.status == 500:
            out.setdefault("causes", [{"message": "injected failure"}])
        return ApiError(
            fault.status,
            fault.reason if fault.reason is not None else reason,
            fault.message if fault.message is not None else message,
            out,
            headers=headers,
        )
