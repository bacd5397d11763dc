"""Retrying transient kubectl failures: exponential backoff with jitter.

Transient: a timeout, a connection refused or reset, 429 and 5xx answers (ErrorKind.transient).
Permanent failures (forbidden, not found, invalid, a precondition conflict) are never retried.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from nsscale.errors import KubectlError

log = logging.getLogger("nsscale")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 0
    base_s: float = 0.5
    cap_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based): doubling, capped, jittered."""
        return min(self.cap_s, self.base_s * 2.0 ** (attempt - 1)) * (0.5 + self.jitter())

    def wait(self, attempt: int, what: str, err: Exception) -> None:
        delay = self.delay(attempt)
        log.warning(
            "retrying %s in %.1fs (retry %d of %d) after: %s",
            what,
            delay,
            attempt,
            self.retries,
            err,
        )
        self.sleep(delay)

    def call(self, fn: Callable[[], T], what: str) -> T:
        """fn(), retried while it fails with a transient KubectlError and retries are left."""
        attempt = 0
        while True:
            try:
                return fn()
            except KubectlError as err:
                attempt += 1
                if not err.kind.transient or attempt > self.retries:
                    raise
                self.wait(attempt, what, err)
