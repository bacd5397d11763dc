"""What the server saw: every request in ``requests``, and the ones it did not understand
(unknown path: 404, unknown method: 405, unsupported media type: 415, unknown field selector:
400) also in ``unhandled``."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["RequestLog", "RequestRecord"]


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it. ``status`` is 0 when it got no answer: its connection
    was dropped (``drop``, ``late``), its client hung up during admission, or the server
    stopped."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    resource: str | None = None  # "deployments/scale", "discovery", "openapi", None if unknown
    namespace: str | None = None
    name: str | None = None
    verb: str | None = None  # the RBAC verb: get, list, create, update, patch, delete...


class RequestLog:
    """The request log of :class:`~tests.apiserver.server.ApiServer` (a mixin)."""

    _lock: threading.RLock
    _requests: list[RequestRecord]
    _unhandled: list[RequestRecord]

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def unhandled(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._unhandled)

    def reset_counters(self) -> None:
        """Forget the recorded ``requests`` (``unhandled`` is kept)."""
        with self._lock:
            self._requests.clear()

    def _record(self, record: RequestRecord, *, unhandled: bool) -> None:
        with self._lock:
            self._requests.append(record)
            if unhandled:
                self._unhandled.append(record)
