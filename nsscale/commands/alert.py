"""The alert hook, `--on-failure CMD`: the seed's "alert the operations team".

When a run ends badly (exit 1, 3, 4, or interrupted: 129, 130, 143), CMD runs once, split as a
shell would split it but never through a shell, with the run's JSON document on stdin and
NSSCALE_EXIT_CODE and NSSCALE_NAMESPACE (several namespaces: joined by commas) in its
environment. nsscale waits for it 30 s at most. What it prints goes to stderr (stdout is the
report's). Its failure, or its time running out, is a warning naming the command and how it
ended, and never changes nsscale's exit code.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from nsscale.errors import ExitCode, UsageError

log = logging.getLogger("nsscale")

ALERT_ON = frozenset(
    {
        ExitCode.FAILED,
        ExitCode.PARTIAL,
        ExitCode.NOT_READY,
        ExitCode.HUNG_UP,
        ExitCode.INTERRUPTED,
        ExitCode.TERMINATED,
    }
)
TIMEOUT_S = 30.0


def parse_command(text: str) -> tuple[str, ...]:
    """CMD as an argv; UsageError when it cannot be split or is empty."""
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise UsageError(
            f"cannot read --on-failure {text!r}: {exc}", "quote it as you would in a shell"
        ) from None
    if not argv:
        raise UsageError("--on-failure is empty", "give the command to run, e.g. ./page-oncall")
    return argv


def alert(
    argv: Sequence[str],
    document: dict[str, Any],
    exit_code: int,
    namespaces: Sequence[str],
    timeout_s: float = TIMEOUT_S,
) -> None:
    """Run the hook if the exit code calls for it; a warning if it fails."""
    if exit_code not in ALERT_ON:
        return
    env = {
        **os.environ,
        "NSSCALE_EXIT_CODE": str(exit_code),
        "NSSCALE_NAMESPACE": ",".join(namespaces),
    }
    command = shlex.join(argv)
    try:
        done = subprocess.run(
            list(argv),
            input=json.dumps(document),
            text=True,
            env=env,
            stdout=subprocess.PIPE,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        log.warning("the --on-failure command `%s` ran over %gs: stopped", command, timeout_s)
        return
    except OSError as exc:
        log.warning("the --on-failure command `%s` could not run: %s", command, exc.strerror)
        return
    if done.stdout:
        sys.stderr.write(done.stdout)
    if done.returncode != 0:
        log.warning("the --on-failure command `%s` exited %d", command, done.returncode)
