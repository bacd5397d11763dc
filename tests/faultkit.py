"""Helpers of tests/test_faults.py: seed a namespace, run the installed `nsscale` (to the end, or
in the background to signal it), read the server's state, and judge how a run ended against the
contract's three allowed outcomes.

The judge is the heart of it. A run of `down` may end in exactly one of three ways:

- exit 0: every workload at its target (0, original recorded, scaled-to "0"; one already at 0
  untouched);
- exit 1, 130 or 143: the namespace as it was (replicas as before, no nsscale annotation);
- exit 3: exactly the workloads listed in the JSON's `left_changed` differ from how they were,
  each at the count listed.

Whatever the outcome, no original is lost: a workload not at its original count carries the
annotation `nsscale/original-replicas` with that count, and no workload carries a wrong one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from nsscale.engine.lock import Mark
from nsscale.kube.objects import ORIGINAL, ORIGINAL_MIN_REPLICAS, SCALED_TO
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.fixtures import kubectl_env
from tests.apiserver.server import ApiServer

NSSCALE = Path(sys.executable).parent / "nsscale"  # the installed console script

Key = tuple[str, str]  # (kind, name): ("deployment", "web")
Observed = tuple[int, str | None, str | None]  # (spec.replicas, original, scaled-to)
WORKLOAD_RESOURCES = ("deployments", "statefulsets")


def seed(server: ApiServer, namespace: str, spec: Mapping[Key, int]) -> None:
    server.add_namespace(namespace)
    for (kind, name), replicas in spec.items():
        if kind == "deployment":
            server.add_deployment(namespace, name, replicas=replicas)
        else:
            server.add_statefulset(namespace, name, replicas=replicas)


def observe(server: ApiServer, namespace: str) -> dict[Key, Observed]:
    found: dict[Key, Observed] = {}
    for obj in server.workloads(namespace):
        annotations = obj["metadata"].get("annotations", {})
        key = (obj["kind"].lower(), obj["metadata"]["name"])
        found[key] = (
            obj["spec"]["replicas"],
            annotations.get(ORIGINAL),
            annotations.get(SCALED_TO),
        )
    return found


def observe_floors(server: ApiServer, namespace: str) -> dict[Key, Observed]:
    """The HPAs of the namespace, each as (minReplicas, its recorded original, None): an HPA's
    floor is judged as a workload's count is."""
    found: dict[Key, Observed] = {}
    for obj in server.objects("horizontalpodautoscalers", namespace):
        annotations = obj["metadata"].get("annotations", {})
        key = ("horizontalpodautoscaler", obj["metadata"]["name"])
        found[key] = (obj["spec"]["minReplicas"], annotations.get(ORIGINAL_MIN_REPLICAS), None)
    return found


def untouched(initial: Mapping[Key, int]) -> dict[Key, Observed]:
    return {key: (n, None, None) for key, n in initial.items()}


def scaled_down(initial: Mapping[Key, int]) -> dict[Key, Observed]:
    """The namespace after a complete `down`: a workload already at 0 is skipped, untouched."""
    return {key: (0, str(n), "0") if n else (0, None, None) for key, n in initial.items()}


def workload_writes(server: ApiServer, namespace: str, status: int | None = None) -> int:
    """PUTs of Deployments and StatefulSets the server saw (with this answer status)."""
    return sum(
        1
        for r in server.requests
        if r.method == "PUT"
        and r.resource in WORKLOAD_RESOURCES
        and r.namespace == namespace
        and (status is None or r.status == status)
    )


def lease(server: ApiServer, namespace: str) -> dict[str, Any] | None:
    return server.get_object("leases", namespace, "nsscale")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def settle(server: ApiServer, quiet: float = 0.5, timeout: float = 20.0) -> None:
    """Wait until the server has seen no request for `quiet` seconds: a killed nsscale's
    kubectl (in its own session, so it outlives its parent) may still be writing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = server.request_count
        time.sleep(quiet)
        if server.request_count == before:
            return
    raise AssertionError(f"the server never went quiet within {timeout}s")


def nsscale_env(kubeconfig: Path, kubectl_bin: Path, **extra: str) -> dict[str, str]:
    return {
        **kubectl_env(kubeconfig),
        "NSSCALE_KUBECTL": str(kubectl_bin),
        "COLUMNS": "200",
        "EKS_CLUSTER_NAME": "faults",  # the audit's cluster name: one kubectl call fewer
        **extra,
    }


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        """The JSON report, or None when the run printed none (interrupted before a plan)."""
        return json.loads(self.stdout) if self.stdout.strip() else None

    def __str__(self) -> str:
        return f"exit {self.code} after {self.seconds:.1f}s\n{self.stdout}\n{self.stderr}"


def run(env: Mapping[str, str], *args: str, timeout: float = 120) -> Finished:
    started = time.monotonic()
    proc = subprocess.run(
        [str(NSSCALE), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Finished(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


class Running:
    """`nsscale ARGS` in the background; its stderr is read line by line as it comes."""

    def __init__(self, env: Mapping[str, str], *args: str) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(NSSCALE), *args],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._stdout: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self._stdout.append(self.proc.stdout.read())

    @property
    def exited(self) -> bool:
        return self.proc.poll() is not None

    def wait_for_line(self, needle: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: any(needle in line for line in self._lines) or self.exited, timeout
            ) and any(needle in line for line in self._lines)

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 120) -> Finished:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        for reader in self._readers:
            reader.join(10)
        return Finished(
            code, "".join(self._stdout), "".join(self._lines), time.monotonic() - self.started
        )


AS_IT_WAS = (1, 129, 130, 143)  # failed or interrupted, everything undone
OUTCOMES = {0: "at target", 3: "as reported"} | dict.fromkeys(AS_IT_WAS, "as it was")


@dataclass(frozen=True)
class Verdict:
    """How a run of `down` ended, judged on the server's state."""

    code: int
    outcome: str
    changed: frozenset[Key]
    originals_lost: tuple[Key, ...] = ()
    unreported: tuple[Key, ...] = ()  # state that contradicts the exit code and the report
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.originals_lost or self.unreported or self.problems)

    def explain(self, final: Mapping[Key, Observed], report: Any) -> str:
        wrong = sorted(set(self.originals_lost) | set(self.unreported))
        left = report.get("left_changed") if isinstance(report, dict) else None
        return (
            f"exit {self.code} ({self.outcome}): {len(self.originals_lost)} originals lost, "
            f"{len(self.unreported)} unreported, problems {list(self.problems)}\n"
            f"wrong: {[(k, final[k]) for k in wrong][:20]}\n"
            f"left_changed reported: {left}\nerrors: {report and report.get('errors')}"
        )


def originals_lost(initial: Mapping[Key, int], final: Mapping[Key, Observed]) -> tuple[Key, ...]:
    """Workloads away from their original count without that count recorded, or with a
    recorded original that is not theirs."""
    lost = []
    for key, (replicas, original, _) in final.items():
        if (replicas != initial[key] and original != str(initial[key])) or (
            original is not None and original != str(initial[key])
        ):
            lost.append(key)
    return tuple(sorted(lost))


def judge_down(
    initial: Mapping[Key, int],
    final: Mapping[Key, Observed],
    code: int,
    report: Any,
    target: Mapping[Key, Observed] | None = None,
) -> Verdict:
    """Judge a run of `down` that exited `code` and printed `report` (or None); `target`: how a
    complete run leaves each object (by default: every workload at 0)."""
    before = untouched(initial)
    target = scaled_down(initial) if target is None else target
    changed = frozenset(k for k in final if final[k] != before[k])
    problems: list[str] = []
    if report is not None:
        if report.get("exit_code") != code:
            problems.append(f"the report says exit {report.get('exit_code')}")
        if report.get("success") is not (code == 0):
            problems.append(f"the report says success={report.get('success')}")
    if code == 0:
        unreported = {k for k in final if final[k] != target[k]}
    elif code in AS_IT_WAS:
        unreported = set(changed)
    elif code == 3:
        if report is None:
            problems.append("exit 3 without a report of what is left changed")
            left: dict[Key, int] = {}
        else:
            left = {(w["type"], w["name"]): w["replicas"] for w in report["left_changed"]}
        unreported = set(changed ^ left.keys())
        # a workload left changed must be exactly as the run's write left it
        unreported |= {k for k in left.keys() & changed if final[k] != (left[k], *target[k][1:])}
    else:
        problems.append(f"exit {code} is not an allowed outcome")
        unreported = set()
    return Verdict(
        code,
        OUTCOMES.get(code, "?"),
        changed,
        originals_lost(initial, final),
        tuple(sorted(unreported)),
        tuple(problems),
    )


def judge_racers(
    initial: Mapping[Key, int], final: Mapping[Key, Observed], runs: list[Finished]
) -> list[Verdict]:
    """Judge runs of `down` that raced on one namespace: the namespace must end as one of
    them may leave it (each run that proceeded is judged as if alone, on the final state), a
    refused run (exit 1) must report no change of its own, and every workload changed must be
    claimed by exactly one run (never by two, never by none)."""
    verdicts = []
    claims: dict[Key, int] = {}
    for finished in runs:
        report = finished.json()
        scaled = [(s["type"], s["name"]) for s in (report or {}).get("scaled_resources", [])]
        for key in scaled:
            claims[key] = claims.get(key, 0) + 1
        if finished.code == 1 and report is not None:
            problems = [f"refused, yet claims {key}" for key in scaled]
            problems += [f"refused, yet left {w['name']}" for w in report["left_changed"]]
            verdicts.append(
                Verdict(
                    1, "refused", frozenset(), originals_lost(initial, final), (), tuple(problems)
                )
            )
        else:
            verdicts.append(judge_down(initial, final, finished.code, report))
    changed = {k for k, (replicas, *_) in final.items() if replicas != initial[k]}
    twice = tuple(sorted(k for k, n in claims.items() if n > 1))
    unclaimed = tuple(sorted(changed - claims.keys()))
    if twice or unclaimed:
        first = verdicts[0]
        verdicts[0] = replace(
            first, unreported=tuple(sorted({*first.unreported, *twice, *unclaimed}))
        )
    return verdicts


MatrixRow = tuple[str, str, str, int, str, int, int]  # kind, position, mode, exit, outcome, ...


@dataclass
class MatrixLog:
    """Every fault-matrix case tried, for the summary printed at the end."""

    rows: list[MatrixRow] = field(default_factory=list)

    def plain_rows(self) -> list[list[int | str]]:
        """The rows in values a pytest-xdist worker can send (an ExitCode as its int)."""
        return [[_plain(value) for value in row] for row in self.rows]

    def gather(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows from another log's `plain_rows` (an xdist worker's)."""
        self.rows.extend(cast(MatrixRow, tuple(row)) for row in rows)

    def add(self, kind: str, position: str, mode: str, verdict: Verdict) -> None:
        self.rows.append(
            (
                kind,
                position,
                mode,
                verdict.code,
                verdict.outcome,
                len(verdict.originals_lost),
                len(verdict.unreported) + len(verdict.problems),
            )
        )

    def render(self) -> list[str]:
        lines = [f"{'kind':8} {'position':9} {'mode':12} exit  outcome       lost unreported"]
        for kind, position, mode, code, outcome, lost, unreported in self.rows:
            lines.append(
                f"{kind:8} {position:9} {mode:12} {code:<5} {outcome:13} {lost:<4} {unreported}"
            )
        lost = sum(r[5] for r in self.rows)
        unreported = sum(r[6] for r in self.rows)
        by_code: dict[int, int] = {}
        for row in self.rows:
            by_code[row[3]] = by_code.get(row[3], 0) + 1
        codes = ", ".join(f"exit {c}: {n}" for c, n in sorted(by_code.items()))
        lines.append(
            f"fault matrix: {len(self.rows)} cases tried ({codes}); "
            f"originals lost: {lost}; unreported changes: {unreported}"
        )
        return lines


def _plain(value: object) -> int | str:
    return int(value) if isinstance(value, int) else str(value)


def other_mark(namespace: str) -> dict[str, Any]:
    """The Lease of another run's live mark on the namespace."""
    now = datetime.now(UTC)
    return Mark("bob@elsewhere pid 7", "other-run", "up", now, now, 120, {}).to_lease(namespace)


def live_mark(kubectl: KubectlFixture, namespace: str) -> None:
    """Another run's live mark on the namespace, created through the API."""
    created = kubectl("create", "-f", "-", input=json.dumps(other_mark(namespace)))
    assert created.returncode == 0, created.stderr
