"""How a run ended, in the words the audit records and the Namespace's `nsscale/last-run` keeps:
defined once, here below both (the audit imports the engine, never the other way)."""

from __future__ import annotations

import enum

from nsscale.engine.result import RunResult
from nsscale.errors import ExitCode


class RunOutcome(enum.StrEnum):
    SUCCESS = "success"
    ROLLED_BACK = "rolled_back"  # failed, and every change was undone
    ROLLBACK_FAILED = "rollback_failed"  # failed, and some undo failed: left partly changed
    PARTIAL = "partial"  # failed without a rollback (--no-rollback): a person must look
    FAILED = "failed"  # failed before it changed anything


def run_outcome(result: RunResult) -> RunOutcome:
    o = result.outcome
    if o.success:
        return RunOutcome.SUCCESS
    if o.rollback is not None:
        ok = all(r.ok for r in o.rollback)
        return RunOutcome.ROLLED_BACK if ok else RunOutcome.ROLLBACK_FAILED
    if result.exit_code == ExitCode.PARTIAL:
        return RunOutcome.PARTIAL
    return RunOutcome.FAILED
