"""Slow admission, timeouts and late writes.

``latency`` (seconds, default 0) is added to every request before the server takes it up, like a
slow network; a request's ``?timeout=`` deadline counts from after it.

``admission_latency`` (seconds, default 0; constructor argument and attribute) is a slow
validating webhook whose rules match every resource and subresource (``*/*``) for CREATE,
UPDATE and DELETE: every write -- POST, PUT, PATCH, DELETE of a resource, ``/scale`` and
server-side dry runs included (webhooks without side effects are called on dry runs) -- waits
that long before it is stored. Reads, discovery, OpenAPI and the review "creates"
(``selfsubjectreviews``, ``selfsubjectaccessreviews``: answered, never stored) are not admitted
and not slowed: a real 1.36 webhook matching ``*`` would see the reviews too, but webhooks that
guard writes exclude them (from 1.37 the server skips them, feature gate
``ExcludeAdmissionWebhookVirtualResources``). As in the real server (docs/kubectl-facts.md):

- what is refused before the webhooks are called is answered at once: NotFound, a stale
  ``resourceVersion`` (Conflict), Invalid, BadRequest, Forbidden. AlreadyExists is found by
  storage, after the wait.
- the write is decided when the wait is over, against the object as it is then: a
  ``resourceVersion`` that went stale meanwhile is a 409 Conflict and nothing lands.
- a request whose ``?timeout=`` (kubectl's ``--request-timeout``) runs out during the wait is
  answered ``504 Timeout: request did not complete within the allotted timeout`` at that
  deadline, and its write is never done (the webhook call is cancelled). kubectl's own deadline
  falls due at the same time: it prints that error or its own ``context deadline exceeded``.
- a client that hangs up during the wait (kubectl killed) gets no answer and its write is never
  done; the request is recorded with status 0.
- ``kubectl replace -f -`` of a List sends its PUTs one after another: N objects take at least
  N x ``admission_latency``.

``hang`` holds before admission (the two waits share the one deadline); a ``late`` write is past
admission (``seconds`` is when it lands; ``admission_latency`` is not added). The seeding and
editing methods (``add_*``, ``edit_workload``...) are not requests: never slowed.

No write lands after a 504 answer, after ``drop`` or ``garble``, after its client hung up
during admission, or once the server stops. A write lands unanswered only through ``late``;
after its client gave up, only through ``late`` and ``hang``. Not modelled: the real server's
own cap on requests without a shorter ``?timeout=`` (its ``--request-timeout``, 60 s by
default), and webhooks that match some resources only (one matching ``deployments`` does not
see ``deployments/scale``).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable

from tests.apiserver.errors import ApiError, NoAnswer, timeout_error
from tests.apiserver.faults import Fault
from tests.apiserver.request import Request
from tests.apiserver.wire import Reply

__all__ = ["ADMITTED_VERBS", "admit", "land_late"]

# Writes go through admission; reads and the review "creates" (selfsubjectreviews,
# selfsubjectaccessreviews: answered, never stored) do not.
ADMITTED_VERBS = frozenset({"create", "update", "patch", "delete"})


def admit(
    connection: socket.socket, req: Request, seconds: float, stopping: threading.Event
) -> None:
    """Wait ``seconds`` as a validating webhook would, before the write is stored. The real
    server abandons the webhook call when the request's deadline comes (answered 504,
    nothing stored) or its client hangs up (nothing answered or stored: :class:`NoAnswer`)."""
    end = time.monotonic() + seconds
    deadline = req.deadline
    until = end if deadline is None else min(end, deadline)
    if not _connected_until(connection, until, stopping):
        raise NoAnswer
    if until < end:
        raise timeout_error()


def _connected_until(sock: socket.socket, until: float, stopping: threading.Event) -> bool:
    """Wait until ``until`` (``time.monotonic()``); False as soon as the client hangs up or
    the server stops."""
    while (left := until - time.monotonic()) > 0:
        if stopping.is_set():
            return False
        try:
            readable, _, _ = select.select([sock], [], [], min(left, 0.1))
            if readable and not sock.recv(1, socket.MSG_PEEK):
                return False  # EOF: the client closed its end
        except (OSError, ValueError):  # reset, or closed by stop()
            return False
        if readable:  # bytes from the client (it pipelines): wait it out
            return not stopping.wait(max(0.0, until - time.monotonic()))
    return not stopping.is_set()


def land_late(
    req: Request,
    fault: Fault,
    route: Callable[[Request], Reply],
    stopping: threading.Event,
    lock: threading.RLock,
) -> None:
    """Serve a ``late`` request, whose connection is closed, when its time comes; record the
    status it got in ``fault.outcomes``."""
    seconds, timeout = fault.seconds or 0.0, req.timeout
    cut = timeout is not None and timeout < seconds
    due = req.received + (timeout if timeout is not None and cut else seconds)
    if stopping.wait(max(0.0, due - time.monotonic())):
        outcome = 0
    elif cut:
        outcome = 504  # cut at its deadline, like the real server: never done
    else:
        try:
            outcome = route(req)[0]
        except ApiError as err:
            outcome = err.code
        except Exception:  # a bug in the server, as its 500 answer
            outcome = 500
    with lock:
        fault.outcomes.append(outcome)
