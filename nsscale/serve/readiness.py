"""`GET /readyz`: has the server reached the API server lately? Any answer of the API server
counts (the leader Lease's read, a reconcile round, or a read of `/version` made for the probe
itself, which every client may make); a probe within FRESH_S of the last answer costs nothing,
one after asks again, with a short timeout (a probe must not hang on an API server that is
gone)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from nsscale.errors import NsscaleError
from nsscale.kubectl import Kubectl

FRESH_S = 10.0
PROBE_TIMEOUT_S = 3.0


class Readiness:
    def __init__(self, kubectl: Kubectl, clock: Callable[[], float] = time.monotonic) -> None:
        timeout = min(kubectl.config.timeout_s, PROBE_TIMEOUT_S)
        self.kubectl = Kubectl(replace(kubectl.config, timeout_s=timeout), kubectl.runner)
        self.clock = clock
        self._reached_at: float | None = None
        self._probing = threading.Lock()  # concurrent probes share one kubectl call

    def reached(self) -> None:
        """The API server has just answered."""
        self._reached_at = self.clock()

    def ready(self) -> bool:
        if self._fresh():
            return True
        with self._probing:
            if self._fresh():  # another probe asked meanwhile
                return True
            try:
                self.kubectl.get_raw("/version")
            except NsscaleError:
                self._reached_at = None
                return False
            self.reached()
            return True

    def _fresh(self) -> bool:
        at = self._reached_at
        return at is not None and self.clock() - at < FRESH_S
