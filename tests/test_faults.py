"""Issue 5: faults, signals, crashes, concurrent runs and bad input.

The end-to-end parts run the installed `nsscale` with the real, pinned kubectl against the local
API server, inject faults there, and judge every run on the server's final state (see
tests/faultkit.py): it must be as it was, at target, or exactly as reported, matching the exit
code and the JSON report, and no original count may ever be lost.

Position is precise because writes follow the discovery order (Deployments then StatefulSets,
each by name) and `--batch-size 1 --parallel 1` makes each workload its own step: a fault on a
workload's first PUT hits its forward write, on its second PUT its undo (the rollback undoes in
reverse order).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nsscale.cli import app
from nsscale.engine.lock import Mark, RunLock
from nsscale.engine.plan import Operation, check_namespace, make_plan
from nsscale.engine.result import RunResult
from nsscale.engine.writer import Move, MoveResult, Writer
from nsscale.kube.cluster import KubectlCluster
from nsscale.kubectl import Kubectl, KubectlConfig
from nsscale.transaction import Transaction
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.server import ApiServer, Fault
from tests.faultkit import (
    Finished,
    Key,
    MatrixLog,
    Observed,
    Running,
    judge_down,
    judge_racers,
    lease,
    nsscale_env,
    observe,
    observe_floors,
    originals_lost,
    run,
    scaled_down,
    seed,
    settle,
    untouched,
    wait_until,
    workload_writes,
)
from tests.kube import KUBECTL, REVIEW_ARGV, Script, moved, workload

NS = "shop"

# ------------------------------------------------------------------------------ fixtures


SMALL: dict[Key, int] = {
    ("deployment", "alpha"): 3,
    ("deployment", "bravo"): 2,
    ("deployment", "charlie"): 1,
    ("deployment", "idle"): 0,
    ("statefulset", "delta"): 2,
    ("statefulset", "echo"): 1,
}
# The forward writes, in order: alpha, bravo, charlie, delta, echo (idle is skipped).
WRITES = [key for key, n in SMALL.items() if n]
FIRST, MIDDLE, LAST = WRITES[0], WRITES[2], WRITES[-1]
UNDO_FAILS = WRITES[1]  # bravo: its undo is the rollback's third


@pytest.fixture
def small(apiserver: ApiServer) -> ApiServer:
    seed(apiserver, NS, SMALL)
    return apiserver


# 200 workloads: a run in batches of 20 against a server answering in 5 ms takes ~3.5 seconds.
BIG: dict[Key, int] = {("deployment", f"web-{i:03d}"): 1 + i % 3 for i in range(120)} | {
    ("statefulset", f"db-{i:03d}"): 1 + i % 2 for i in range(80)
}
SLOW = ("--batch-size", "20", "--parallel", "1")


@pytest.fixture
def big(apiserver: ApiServer) -> ApiServer:
    seed(apiserver, NS, BIG)
    apiserver.latency = 0.005
    return apiserver


# ------------------------------------------------------------------------------ 1. fault matrix

# failure kind -> the error_kind nsscale must report for it
KINDS = {
    "timeout": "timeout",  # the server holds the request past --timeout (and never applies it)
    "500": "server_error",
    "403": "forbidden",
    "409": "conflict",
    "drop": "unreachable",  # the connection is closed without an answer
    "garble": "other",  # 200 with a body that is not JSON
}
TRANSIENT = {"timeout", "500", "drop"}  # retried unless --retries 0
UNKNOWN = {"timeout", "drop", "garble", "late"}  # the server's answer never reaches nsscale
POSITIONS = ("first", "middle", "last", "rollback")
MODES = ("rollback", "no-rollback")
RETRIES = "retries"  # the mode of the cases run with the default retries, fault in the middle
MATRIX_ARGS = ("--batch-size", "1", "--parallel", "1", "-o", "json")
MATRIX_WORKERS = 3  # cases played at once, each against its own server


def inject(server: ApiServer, kind: str, key: Key, nth: int = 1) -> Fault:
    """The failure `kind` on the nth PUT of this workload (1: its write, 2: its undo)."""
    resource, name = f"{key[0]}s", key[1]
    if kind == "timeout":
        return server.hang("PUT", resource, name, nth=nth)
    if kind == "drop":
        return server.drop("PUT", resource, name, nth=nth)
    if kind == "garble":
        return server.garble("PUT", resource, name, nth=nth)
    if kind == "late":  # the connection drops at once, the write lands a second later
        return server.late("PUT", resource, name, nth=nth, seconds=1)
    return server.fail("PUT", resource, name, status=int(kind), nth=nth)


def failing_write(position: str) -> Key:
    return {"first": FIRST, "middle": MIDDLE}.get(position, LAST)


@dataclass(frozen=True)
class Played:
    """One matrix case, played: how the run ended and what the server holds after it."""

    done: Finished
    final: dict[Key, Observed]
    fired: list[int]  # per fault: how often it acted
    marked: bool  # the Lease is still there


def play(case: tuple[str, str, str], directory: Path, kubectl_bin: Path) -> Played:
    kind, position, mode = case
    with ApiServer() as server:
        seed(server, NS, SMALL)
        faults = [inject(server, kind, failing_write(position))]
        if position == "rollback":  # and then the undo of bravo fails too
            faults.append(inject(server, kind, UNDO_FAILS, nth=2))
        env = nsscale_env(
            server.write_kubeconfig(directory / "kubeconfig"),
            kubectl_bin,
            XDG_STATE_HOME=str(directory / "state"),
        )
        # An unknown outcome (a timeout, a dropped or unreadable answer) is judged only after
        # the server's own deadline on the writes in flight, which is --timeout: keep it short.
        args = ["down", NS, *MATRIX_ARGS, "--timeout", "3" if kind in UNKNOWN else "20"]
        if mode != RETRIES:
            args += ["--retries", "0"]
        if mode == "no-rollback":
            args.append("--no-rollback")
        done = run(env, *args)
        return Played(
            done, observe(server, NS), [f.fired for f in faults], lease(server, NS) is not None
        )


def _matrix_case(item: pytest.Item) -> tuple[str, str, str] | None:
    callspec = getattr(item, "callspec", None)
    if getattr(item, "originalname", None) not in MATRIX_TESTS or callspec is None:
        return None
    params = callspec.params
    return (params["kind"], params.get("position", "middle"), params.get("mode", RETRIES))


@pytest.fixture(scope="module")
def played(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    kubectl_bin: Path,
) -> Iterator[dict[tuple[str, str, str], Future[Played]]]:
    """Every selected matrix case, started at once on a few workers: each test waits for its
    own (the runs spend their time in kubectl processes and --timeout waits)."""
    cases = [case for item in request.session.items if (case := _matrix_case(item))]
    with ThreadPoolExecutor(MATRIX_WORKERS, thread_name_prefix="matrix") as pool:
        yield {
            case: pool.submit(play, case, tmp_path_factory.mktemp("matrix"), kubectl_bin)
            for case in cases
        }


def judged(
    played: dict[tuple[str, str, str], Future[Played]],
    matrix: MatrixLog,
    case: tuple[str, str, str],
) -> Played:
    result = played[case].result(timeout=300)
    report = result.done.json()
    verdict = judge_down(SMALL, result.final, result.done.code, report)
    matrix.add(*case, verdict)
    assert verdict.ok, verdict.explain(result.final, report)
    assert "Traceback" not in result.done.stderr, result.done.stderr
    return result


@pytest.mark.e2e
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_fault_matrix(
    played: dict[tuple[str, str, str], Future[Played]],
    matrix: MatrixLog,
    kind: str,
    position: str,
    mode: str,
) -> None:
    result = judged(played, matrix, (kind, position, mode))
    done, report = result.done, result.done.json()

    # The exact outcome of this case.
    failing = failing_write(position)
    written_before = WRITES.index(failing)
    rollback = mode == "rollback"
    if rollback:
        left = {UNDO_FAILS} if position == "rollback" else set()
    else:
        left = set(WRITES) - {failing}
    assert done.code == (3 if left else 1), str(done)
    assert {(w["type"], w["name"]) for w in report["left_changed"]} == left
    assert [(f["type"], f["name"], f["error_kind"]) for f in report["failed_resources"]] == [
        (*failing, KINDS[kind])
    ]
    if rollback:
        assert report["rollback_performed"] is (written_before > 0)
        assert report["rollback_success_count"] == written_before - len(left)
        assert report["rollback_failed_count"] == len(left)
    else:
        assert report["rollback_performed"] is False
    # A mark stays only for a namespace left partly changed (for `nsscale recover`).
    assert result.marked == bool(left)
    undo_fired = result.fired[1:]
    assert result.fired[0] == 1
    assert undo_fired == ([1] if position == "rollback" and rollback else [0] * len(undo_fired))


@pytest.mark.e2e
@pytest.mark.parametrize("kind", KINDS)
def test_fault_matrix_with_retries_a_one_off_transient_failure_ends_at_target(
    played: dict[tuple[str, str, str], Future[Played]], matrix: MatrixLog, kind: str
) -> None:
    result = judged(played, matrix, (kind, "middle", RETRIES))
    done = result.done
    assert result.fired == [1]
    if kind in TRANSIENT:
        assert done.code == 0, str(done)
        assert "[WARNING] retrying 1 write(s)" in done.stderr
    else:  # permanent: never retried
        assert done.code == 1, str(done)
        assert "retrying" not in done.stderr
    assert not result.marked


@pytest.mark.e2e
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", ["late"])
def test_fault_matrix_a_write_that_lands_after_its_connection_dropped(
    played: dict[tuple[str, str, str], Future[Played]],
    matrix: MatrixLog,
    kind: str,
    position: str,
    mode: str,
) -> None:
    # kubectl sees the connection drop; the write lands a second later, before the server's
    # deadline for it. Judged only after that deadline, it is found done: the run goes on.
    result = judged(played, matrix, (kind, position, mode))
    assert result.done.code == 0, str(result.done)
    assert result.final == scaled_down(SMALL)
    assert result.fired[0] == 1
    assert not result.marked


@pytest.mark.e2e
def test_fault_matrix_slow_admission_is_not_a_timeout(
    tmp_path: Path, kubectl_bin: Path, matrix: MatrixLog
) -> None:
    # A webhook adds 0.3 s to each write; one kubectl writes all five (1.5 s) under a
    # --timeout of 1 s, which bounds each request, not the batch.
    with ApiServer(admission_latency=0.3) as server:
        seed(server, NS, SMALL)
        env = nsscale_env(server.write_kubeconfig(tmp_path / "kubeconfig"), kubectl_bin)
        done = run(env, "down", NS, "--batch-size", "5", "--timeout", "1", "-o", "json")
        final = observe(server, NS)
    verdict = judge_down(SMALL, final, done.code, done.json())
    matrix.add("slow", "every", "rollback", verdict)
    assert verdict.ok, verdict.explain(final, done.json())
    assert done.code == 0, str(done)


# An HPA's floor moved with a scheduled down to N (SPEC Part 3): reconcile at night with
# --downtime-replicas 1 over api (2) and web (4, its HPA 3-6). The writes, one per step: the HPA's
# minReplicas to 1 first, then api, then web; the rollback undoes them in reverse order.
SLEEPING: dict[Key, int] = {("deployment", "api"): 2, ("deployment", "web"): 4}
FLOOR: Key = ("horizontalpodautoscaler", "web")
ASLEEP: dict[Key, Observed] = {
    ("deployment", "api"): (1, "2", "1"),
    ("deployment", "web"): (1, "4", "1"),
    FLOOR: (1, "3", None),  # maxReplicas never written
}
FLOOR_POSITIONS = {
    "hpa": [(FLOOR, 1)],  # the floor's own PUT
    "after-hpa": [(("deployment", "web"), 1)],  # the last workload's, after the floor moved
    "hpa-undo": [(("deployment", "web"), 1), (FLOOR, 2)],  # ... and the floor's undo too
}
FLOOR_CASES = [
    *((kind, position) for kind in ("500", "timeout", "drop") for position in ("hpa", "after-hpa")),
    ("500", "hpa-undo"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("kind", "position"), FLOOR_CASES)
def test_fault_matrix_a_failure_while_an_hpa_floor_is_moved(
    tmp_path: Path, kubectl_bin: Path, matrix: MatrixLog, kind: str, position: str
) -> None:
    with ApiServer() as server:
        seed(server, NS, SLEEPING)
        server.add_hpa(NS, "web", "Deployment", "web", min_replicas=3, max_replicas=6)
        faults = [inject(server, kind, key, nth) for key, nth in FLOOR_POSITIONS[position]]
        env = nsscale_env(server.write_kubeconfig(tmp_path / "kubeconfig"), kubectl_bin)
        done = run(
            env,
            "reconcile",
            NS,
            *("--uptime", "never", "--grace-period", "0", "--downtime-replicas", "1"),
            *MATRIX_ARGS,
            *("--retries", "0", "--timeout", "3" if kind in UNKNOWN else "20"),
        )
        final = observe(server, NS) | observe_floors(server, NS)
    initial = SLEEPING | {FLOOR: 3}
    report = done.json()["namespaces"][0]["result"]
    verdict = judge_down(initial, final, done.code, report, ASLEEP)
    matrix.add(kind, position, "rollback", verdict)
    assert verdict.ok, verdict.explain(final, report)
    assert "Traceback" not in done.stderr, done.stderr
    assert [f.fired for f in faults] == [1] * len(faults)
    failing = FLOOR_POSITIONS[position][0][0]
    assert [(f["type"], f["name"], f["error_kind"]) for f in report["failed_resources"]] == [
        (*failing, KINDS[kind])
    ]
    if position == "hpa-undo":  # left lowered, reported, its original kept on it
        assert done.code == 3, str(done)
        assert final[FLOOR] == (1, "3", None)
        assert [(w["type"], w["name"]) for w in report["left_changed"]] == [FLOOR]
    else:  # as it was: the floor back at 3, its record gone
        assert done.code == 1, str(done)
        assert final == untouched(initial)
        assert report["rollback_performed"] is (position == "after-hpa")


MATRIX_TESTS = {
    test_fault_matrix.__name__,
    test_fault_matrix_with_retries_a_one_off_transient_failure_ends_at_target.__name__,
    test_fault_matrix_a_write_that_lands_after_its_connection_dropped.__name__,
}


@pytest.mark.e2e
def test_after_a_failed_rollback_recover_restores_at_once(
    small: ApiServer, env: dict[str, str]
) -> None:
    inject(small, "500", LAST)
    inject(small, "500", UNDO_FAILS, nth=2)
    failed = run(env, "down", NS, "--retries", "0", *MATRIX_ARGS)
    assert failed.code == 3, str(failed)

    # The mark left for `nsscale recover` is not a live run: nobody is told to wait for it, and
    # it says what the failed run left, for recover to undo.
    assert lease(small, NS) is not None

    recovered = run(env, "recover", NS, "-o", "json")
    assert recovered.code == 0, str(recovered)
    assert observe(small, NS) == untouched(SMALL)
    assert lease(small, NS) is None


# ------------------------------------------------------------------------------ 2. signals

RNG = random.Random(20250505)  # every "random moment" below comes from this seed
SIGNAL_CASES = [
    (sig, RNG.randint(0, len(BIG) - 1))
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for _ in range(2)
]
EXIT_OF = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def after_writes(server: ApiServer, running: Running, writes: int, timeout: float = 60) -> None:
    """Wait until the server has seen `writes` workload PUTs (0: any request at all)."""
    if writes == 0:
        reached = wait_until(lambda: server.request_count > 0 or running.exited, timeout)
    else:
        reached = wait_until(
            lambda: workload_writes(server, NS) >= writes or running.exited, timeout
        )
    assert reached, f"no progress to {writes} writes within {timeout}s"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("signum", "writes"),
    SIGNAL_CASES,
    ids=[f"{sig.name}-after-{k}-writes" for sig, k in SIGNAL_CASES],
)
def test_a_signal_at_a_random_moment_rolls_back(
    big: ApiServer, env: dict[str, str], matrix: MatrixLog, signum: signal.Signals, writes: int
) -> None:
    # The next write is held a second: the signal lands while the run is surely changing the
    # namespace, never after it is over.
    big.hang("PUT", nth=writes + 1, seconds=1)
    running = Running(env, "down", NS, *SLOW, "-o", "json")
    after_writes(big, running, writes)
    running.send(signum)
    done = running.finish()

    final, report = observe(big, NS), done.json()
    verdict = judge_down(BIG, final, done.code, report)
    matrix.add(signum.name, f"write {writes + 1}", "rollback", verdict)
    assert verdict.ok, verdict.explain(final, report)
    assert done.code == EXIT_OF[signum], str(done)
    assert "Traceback" not in done.stderr
    assert report["interrupted"] == signum.name
    assert final == untouched(BIG)
    assert lease(big, NS) is None


def running_from(path: Path) -> list[int]:
    """The processes running the program at `path` (their command line names it)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # not a process, or gone meanwhile
        if argv and argv[0] == str(path).encode() and state != "Z":
            found.append(int(proc.name))
    return found


@pytest.mark.e2e
@pytest.mark.timing
@pytest.mark.parametrize("signum", list(EXIT_OF), ids=[s.name for s in EXIT_OF])
def test_a_signal_during_the_first_reads_ends_the_run_within_2s(
    small: ApiServer,
    kubeconfig: Path,
    kubectl_bin: Path,
    tmp_path: Path,
    matrix: MatrixLog,
    signum: signal.Signals,
) -> None:
    # A kubectl of this test's own (its path is the marker), reads the server never answers:
    # before the fix, the run waited for every retry of every read (minutes).
    marked = tmp_path / "kubectl-of-this-test"
    marked.symlink_to(kubectl_bin)
    held = small.hang(times=None)  # every request, as from a server gone quiet
    running = Running(nsscale_env(kubeconfig, marked), "down", NS, "-o", "json")
    assert wait_until(lambda: held.seen > 0 or running.exited, 30), "the reads never started"
    assert running_from(marked), "no kubectl running: nothing to test"
    time.sleep(1)  # nsscale is surely waiting for its reads now, past its imports

    sent = time.monotonic()
    running.send(signum)
    done = running.finish(timeout=60)
    took = time.monotonic() - sent
    left = running_from(marked)

    final, report = observe(small, NS), done.json()
    verdict = judge_down(SMALL, final, done.code, report)
    matrix.add(signum.name, "reads", "rollback", verdict)
    assert verdict.ok, verdict.explain(final, report)
    assert done.code == EXIT_OF[signum], str(done)
    assert took < 2, f"{took:.2f}s after {signum.name}\n{done}"
    assert left == [], f"kubectl still running after nsscale exited: {left}"
    assert "Traceback" not in done.stderr
    assert report["interrupted"] == signum.name
    assert final == untouched(SMALL)
    assert lease(small, NS) is None


@pytest.mark.e2e
def test_a_second_sigint_during_the_rollback_is_refused(
    big: ApiServer, env: dict[str, str]
) -> None:
    running = Running(env, "down", NS, *SLOW, "-o", "json")
    after_writes(big, running, 100)
    running.send(signal.SIGINT)
    assert running.wait_for_line("initiating rollback", 30)
    undo_started = workload_writes(big, NS) + 5
    assert wait_until(lambda: workload_writes(big, NS) >= undo_started or running.exited, 30)
    assert not running.exited
    running.send(signal.SIGINT)
    done = running.finish()

    assert done.code == 130, str(done)
    assert "SIGINT received: a rollback is finishing" in done.stderr
    report = done.json()
    assert report["rollback_performed"] is True
    assert report["rollback_failed_count"] == 0
    assert observe(big, NS) == untouched(BIG)
    assert lease(big, NS) is None


@pytest.mark.e2e
def test_a_signal_while_marking_the_namespace_leaves_no_mark(
    small: ApiServer, env: dict[str, str]
) -> None:
    held = small.hang("POST", "leases", seconds=1)  # the Lease is created after a second
    running = Running(env, "down", NS, "-o", "json")
    assert wait_until(lambda: held.seen > 0 or running.exited, 30)
    running.send(signal.SIGINT)
    done = running.finish()
    time.sleep(1.2)  # whatever the server was holding has landed by now

    assert done.code == 130, str(done)
    report = done.json()
    assert (report["interrupted"], report["total_scaled"]) == ("SIGINT", 0)
    assert observe(small, NS) == untouched(SMALL)
    assert lease(small, NS) is None, "an interrupted run left its mark behind"


@pytest.mark.e2e
def test_a_signal_while_clearing_the_mark_keeps_the_finished_result(
    small: ApiServer, env: dict[str, str]
) -> None:
    held = small.hang("DELETE", "leases", seconds=1)  # the run's very last call
    running = Running(env, "down", NS, "-o", "json")
    assert wait_until(lambda: held.seen > 0 or running.exited, 30)
    running.send(signal.SIGINT)
    done = running.finish()
    time.sleep(1.2)

    final, report = observe(small, NS), done.json()
    verdict = judge_down(SMALL, final, done.code, report)
    assert verdict.ok, verdict.explain(final, report)
    assert done.code == 0, str(done)  # every change was made: too late to interrupt
    assert "SIGINT received: the run is finishing" in done.stderr
    assert lease(small, NS) is None


@pytest.mark.e2e
def test_a_signal_while_verifying_the_rollback_is_refused(
    small: ApiServer, env: dict[str, str]
) -> None:
    small.fail("PUT", "statefulsets", LAST[1])  # the last write fails: roll back 4
    # GET deployments (lists): 1 discovery, 2 the re-read of the failed write, 3 the verification
    held = small.hang("GET", "deployments", nth=3, seconds=1)
    running = Running(env, "down", NS, *MATRIX_ARGS, "--retries", "0")
    assert wait_until(lambda: held.seen >= 3 or running.exited, 30)
    running.send(signal.SIGINT)
    done = running.finish()

    assert held.fired == 1
    assert done.code == 1, str(done)
    assert "SIGINT received: the run is finishing and cannot be interrupted" in done.stderr
    report = done.json()
    assert report["rollback_success_count"] == 4
    assert observe(small, NS) == untouched(SMALL)
    assert lease(small, NS) is None


@pytest.mark.e2e
def test_an_interrupted_no_rollback_run_left_partly_changed_exits_3(
    big: ApiServer, env: dict[str, str]
) -> None:
    running = Running(env, "down", NS, *SLOW, "--no-rollback", "-o", "json")
    after_writes(big, running, 50)
    running.send(signal.SIGINT)
    done = running.finish()

    final, report = observe(big, NS), done.json()
    verdict = judge_down(BIG, final, done.code, report)
    assert verdict.ok, verdict.explain(final, report)


class SignalAfterFirstStep(Writer):
    """Sends this process SIGINT as soon as the first step's write is done."""

    sent = False

    def write(self, moves: Sequence[Move]) -> list[MoveResult]:
        results = super().write(moves)
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        return results


def test_a_signal_between_waves_stops_and_rolls_back(fp: Any) -> None:
    # A Ctrl-C that lands between two steps must still stop the run and undo the step done,
    # never escape the transaction with nothing undone.
    a, b = workload("a", 3, 10), workload("b", 2, 11)
    script = Script(fp)
    script.get(a, b)
    script.replace(moved(a, 0, 20, 3, 0))
    script.replace(moved(a, 3, 21, None, None))  # the undo of a
    script.get(moved(a, 3, 21, None, None), b)  # the verification
    cluster = KubectlCluster(Kubectl(KubectlConfig(KUBECTL, timeout_s=5)))
    plan = make_plan(NS, Operation.DOWN, cluster.list_workloads([NS]))

    transaction = Transaction(SignalAfterFirstStep(cluster, (NS,)), batch_size=1)
    try:
        outcome = transaction.run(plan.changes)
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped the transaction: the done step was not undone")
    result = RunResult(plan, outcome)
    assert outcome.interrupted == "SIGINT"
    assert [r.change.workload.name for r in outcome.rollback or []] == ["a"]
    assert result.exit_code == 130
    assert result.left_changed == []
    assert len(script.writes) == 2  # b was never written


# ------------------------------------------------------------------------------ crashes


def make_stale(kubectl: KubectlFixture) -> None:
    """Age the mark as if its holder stopped renewing it long ago."""
    patch = {"spec": {"renewTime": "2020-01-01T00:00:00.000000Z"}}
    proc = kubectl("patch", "lease", "nsscale", "-n", NS, "--type=merge", "-p", json.dumps(patch))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("then", ["recover", "down --force"])
def test_after_sigkill_the_mark_refuses_until_recovered_or_forced(
    big: ApiServer, env: dict[str, str], kubectl: KubectlFixture, then: str
) -> None:
    writes = random.Random(f"sigkill {then}").randint(20, len(BIG) - 20)
    running = Running(env, "down", NS, *SLOW, "-o", "json")
    after_writes(big, running, writes)
    running.proc.kill()
    killed = running.finish()
    assert killed.code == -signal.SIGKILL
    settle(big)  # its last kubectl, in its own session, may still have been writing

    killed_state = observe(big, NS)
    changed = [k for k, v in killed_state.items() if v != untouched(BIG)[k]]
    assert changed, "the kill came before any change"
    assert originals_lost(BIG, killed_state) == ()
    mark = lease(big, NS)
    assert mark is not None, "a killed run leaves its mark"
    # As if killed on another host: one killed on this machine is over at once (test_habits.py)
    forget = {"metadata": {"annotations": {"nsscale/holder-process": None}}}
    proc = kubectl("patch", "lease", "nsscale", "-n", NS, "--type=merge", "-p", json.dumps(forget))
    assert proc.returncode == 0, proc.stderr

    # While the mark is live: refused, saying who, what and when, and how to undo it.
    refused = run(env, "down", NS)
    assert refused.code == 1, str(refused)
    assert f"pid {running.proc.pid}" in refused.stderr
    assert "`down`" in refused.stderr
    assert "started" in refused.stderr
    assert f"nsscale recover {NS}" in refused.stderr
    assert observe(big, NS) == killed_state

    make_stale(kubectl)
    stale = run(env, "down", NS)
    assert stale.code == 1, str(stale)
    assert f"nsscale recover {NS}" in stale.stderr
    assert f"nsscale down {NS} --force" in stale.stderr
    assert observe(big, NS) == killed_state

    if then == "recover":
        done = run(env, "recover", NS, "-o", "json")
        assert done.code == 0, str(done)
        assert observe(big, NS) == untouched(BIG)
    else:
        done = run(env, "down", NS, "--force", "-o", "json")
        assert done.code == 0, str(done)
        assert observe(big, NS) == scaled_down(BIG)
    assert lease(big, NS) is None


# ------------------------------------------------------------------------------ 3. concurrency


def _racers(server: ApiServer, env: dict[str, str], stagger: str) -> tuple[Any, Any]:
    args = ("down", NS, "--batch-size", "5", "--parallel", "1", "-o", "json")
    if stagger == "overlapping":  # the first surely still holds the namespace meanwhile
        server.hang("PUT", "deployments", nth=11, seconds=3)
    if stagger == "unmarked":  # neither may write the mark: both go on, their writes race
        server.forbid("create", "leases")
    first = Running(env, *args)
    if stagger == "after":
        first.finish()
    elif stagger == "overlapping":
        after_writes(server, first, 10)
    second = Running(env, *args)
    return first.finish(), second.finish()


@pytest.mark.e2e
@pytest.mark.parametrize("stagger", ["together", "overlapping", "after", "unmarked"])
def test_two_runs_at_once_exactly_one_proceeds(
    apiserver: ApiServer, env: dict[str, str], matrix: MatrixLog, stagger: str
) -> None:
    spec = {("deployment", f"app-{i:02d}"): 1 + i % 3 for i in range(40)}
    seed(apiserver, NS, spec)
    apiserver.latency = 0.005

    first, second = _racers(apiserver, env, stagger)

    final = observe(apiserver, NS)
    for i, verdict in enumerate(judge_racers(spec, final, [first, second]), 1):
        matrix.add("race", stagger, f"run {i} of 2", verdict)
        assert verdict.ok, verdict.explain(final, [first, second][i - 1].json())
    assert final == scaled_down(spec)
    assert lease(apiserver, NS) is None
    assert workload_writes(apiserver, NS, status=200) == len(spec)  # each written once
    runs = sorted([first, second], key=lambda r: r.code)
    winner, other = runs
    assert winner.code == 0, str(winner)
    if stagger == "unmarked":  # each workload is one run's change, the other's skip
        assert other.code == 0, str(other)
        reports = [first.json(), second.json()]
        assert sum(r["total_scaled"] for r in reports) == len(spec)
        for report in reports:  # the rest skipped: found at 0, or brought there meanwhile
            assert report["total_scaled"] + len(report["skipped_resources"]) == len(spec)
    elif stagger == "after":
        assert other.code == 0, str(other)
        assert other.json()["total_scaled"] == 0  # nothing left to do
    elif stagger == "together" and other.code == 0:
        # (unlikely) the second took the mark only after the first had finished: its writes
        # found every workload already as it wanted (none was written twice, see above)
        assert other.json()["total_failed"] == 0
    else:
        assert other.code == 1, str(other)
        assert "another nsscale run is working" in other.stderr
        assert "`down` by " in other.stderr  # names the holder
        assert other.json()["total_scaled"] == 0
    if stagger == "overlapping":
        assert (first.code, second.code) == (0, 1)


@pytest.mark.e2e
def test_a_live_mark_is_never_broken_even_with_force(small: ApiServer, env: dict[str, str]) -> None:
    held = small.hang("PUT", "deployments", MIDDLE[1], seconds=8)  # the live run is busy
    live = Running(env, "down", NS, "-o", "json", "--batch-size", "1", "--parallel", "1")
    assert wait_until(lambda: held.seen > 0 or live.exited, 30)

    forced = run(env, "down", NS, "--force", "-o", "json")
    upped = run(env, "up", NS, "--force")
    recovered = run(env, "recover", NS)
    assert not live.exited, "the live run ended before the others tried: nothing was tested"
    done = live.finish()

    assert forced.code == 1, str(forced)
    assert "another nsscale run is working" in forced.stderr
    assert upped.code == 1, str(upped)
    assert "another nsscale run is working" in upped.stderr
    assert recovered.code == 1, str(recovered)
    assert "a live nsscale run is working" in recovered.stderr
    assert done.code == 0, str(done)
    assert observe(small, NS) == scaled_down(SMALL)
    assert workload_writes(small, NS, status=200) == len(WRITES)
    assert lease(small, NS) is None


@pytest.mark.e2e
def test_a_run_whose_mark_was_taken_over_leaves_it_to_the_new_holder(
    apiserver: ApiServer, kubeconfig: Path, kubectl_bin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    apiserver.add_namespace(NS)
    kubectl = Kubectl(KubectlConfig(str(kubectl_bin), kubeconfig=str(kubeconfig)))
    now = datetime.now(UTC)
    first = RunLock(kubectl)
    first.acquire({NS: Mark("a@host pid 1", "run-1", "down", now, now, 120, {})})
    # its holder stopped renewing (a paused VM, say); another run took the stale mark over
    later = now + timedelta(minutes=5)
    second = RunLock(kubectl, clock=lambda: later)
    second.acquire({NS: Mark("b@host pid 2", "run-2", "up", later, later, 120, {})}, force=True)

    first.release([NS])  # the first holder wakes up and clears what it believes is its mark

    kept = lease(apiserver, NS)
    assert kept is not None, "the first run deleted the mark of the run that took it over"
    assert kept["spec"]["holderIdentity"] == "b@host pid 2"
    assert "another run took it over" in caplog.text
    second.release([NS])
    assert lease(apiserver, NS) is None


# ------------------------------------------------------------------------------ 4. bad input

RFC1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def valid_namespace(name: str) -> bool:
    return len(name) <= 63 and RFC1123.fullmatch(name) is not None


def assert_usage_error(result: Any) -> None:
    """Exit 2, one line that says what is wrong, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if re.match(r"(?i)error: ", line)]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output


NAMESPACES = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"[a-z0-9-]{0,70}", fullmatch=True),
    st.from_regex(r"[a-zA-Z0-9._ -]{1,63}", fullmatch=True),
).filter(lambda name: not valid_namespace(name))
COMMANDS = [["down"], ["up"], ["scale", "--replicas", "1"], ["status"], ["recover"]]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=NAMESPACES, command=st.sampled_from(COMMANDS))
def test_a_bad_namespace_exits_2_in_one_line_without_calling_kubectl(
    fp: Any, runner: CliRunner, name: str, command: list[str]
) -> None:
    result = runner.invoke(app, [*command, "--kubectl", KUBECTL, "--", name])
    assert_usage_error(result)
    assert result.stderr.startswith("error: invalid namespace")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(fp.calls) == []


@given(st.from_regex(RFC1123, fullmatch=True).filter(lambda n: len(n) <= 63))
def test_every_rfc1123_label_is_accepted(name: str) -> None:
    assert check_namespace(name) == name


def _numbers(option: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[str]]:
    command = ["scale", NS, "--replicas", "1"] if option != "--replicas" else ["scale", NS]
    return values.map(lambda v: [*command, f"{option}={v}"])


BAD_OPTIONS = st.one_of(
    _numbers("--replicas", st.integers(max_value=-1)),
    _numbers("--timeout", st.floats(max_value=0.0999, allow_infinity=True)),
    _numbers("--timeout", st.sampled_from(["nan", "-inf", "soon", ""])),
    _numbers("--batch-size", st.integers(max_value=0)),
    _numbers("--parallel", st.integers(max_value=0)),
    _numbers("--retries", st.integers(max_value=-1)),
    _numbers("--replicas", st.sampled_from(["1.5", "three", ""])),
    st.text(max_size=12)
    .filter(lambda s: s not in ("table", "json"))
    .map(lambda s: ["down", NS, f"--output={s}"]),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=BAD_OPTIONS)
def test_a_bad_option_value_exits_2_in_one_line_without_calling_kubectl(
    fp: Any, runner: CliRunner, argv: list[str]
) -> None:
    result = runner.invoke(app, [*argv, "--kubectl", KUBECTL])
    assert_usage_error(result)
    assert list(fp.calls) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["scale", NS, "--replicas", "-1"],
        ["down", NS, "--timeout", "0"],
        ["down", NS, "--batch-size", "0"],
        ["down", NS, "--parallel", "0"],
        ["down", NS, "--retries", "-1"],
        ["down", NS, "--output", "yaml"],
    ],
)
def test_the_issue_s_bad_option_values_exit_2(fp: Any, runner: CliRunner, argv: list[str]) -> None:
    result = runner.invoke(app, [*argv, "--kubectl", KUBECTL])
    assert_usage_error(result)
    assert list(fp.calls) == []


@pytest.mark.e2e
def test_a_large_timeout_is_passed_to_kubectl_in_a_form_it_reads(
    small: ApiServer, env: dict[str, str]
) -> None:
    done = run(env, "status", NS, "--timeout", "86400", "-o", "json")  # the largest allowed
    assert done.code == 0, str(done)
    assert len(done.json()["workloads"]) == len(SMALL)


# kubectl printing what cannot be read, from a real process (pipes, bytes and all)

FAKE_KUBECTL = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["get", "deployments,statefulsets"]:
    with open(os.environ["FAKE_KUBECTL_GET"], "rb") as canned:
        sys.stdout.buffer.write(canned.read())
elif args[:2] in (["get", "scaledobjects.keda.sh"], ["get", "rollouts.argoproj.io"]):
    print("error: the server doesn't have a resource type", file=sys.stderr)
    sys.exit(1)
elif args[:2] == ["get", "horizontalpodautoscalers.autoscaling"]:
    print(json.dumps({{"apiVersion": "v1", "kind": "List", "items": []}}))
elif args[:2] == ["get", "namespace"]:
    print(json.dumps({{"apiVersion": "v1", "kind": "Namespace", "metadata": {{"name": args[2]}}}}))
elif args[0] in ("create", "replace"):
    sys.stdout.buffer.write(sys.stdin.buffer.read())
"""
MUTATING = {"create", "replace", "delete", "patch", "scale", "annotate", "apply", "edit"}


class FakeKubectl:
    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = directory / "kubectl"
        self.path.write_text(FAKE_KUBECTL.format(python=sys.executable))
        self.path.chmod(0o755)
        self.log = directory / "calls.jsonl"
        self.canned = directory / "get.out"
        monkeypatch.setenv("FAKE_KUBECTL_LOG", str(self.log))
        monkeypatch.setenv("FAKE_KUBECTL_GET", str(self.canned))

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def mutations(self) -> list[list[str]]:
        review = REVIEW_ARGV[1:]  # creates nothing
        return [c for c in self.calls() if c[0] in MUTATING and c[: len(review)] != review]


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    return FakeKubectl(tmp_path, monkeypatch)


def listing_bytes(count: int, annotation: bytes = b"") -> bytes:
    items = [workload(f"w-{i:05d}", 1 + i % 3, 100 + i) for i in range(count)]
    for item in items:
        item["metadata"]["annotations"] = {"note": "@@"}
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=4).encode()
    return text.replace(b"@@", annotation)


UNREADABLE = {
    "empty": b"",
    "truncated": listing_bytes(3)[:150],
    "not json": b"<html><body>502 Bad Gateway</body></html>\n",
    "not utf-8": listing_bytes(3, annotation=b"caf\xe9 \xff"),
}


@pytest.mark.parametrize("output", UNREADABLE.values(), ids=UNREADABLE.keys())
@pytest.mark.parametrize("command", [["down"], ["scale", "--replicas", "2"], ["status"]])
def test_unreadable_kubectl_output_is_a_clear_error_and_changes_nothing(
    runner: CliRunner, fake_kubectl: FakeKubectl, output: bytes, command: list[str]
) -> None:
    fake_kubectl.canned.write_bytes(output)
    result = runner.invoke(app, [*command, NS, "--kubectl", str(fake_kubectl.path)])
    assert result.exit_code == 1, result.output
    assert re.match(
        r"error: could not read the output of `\S*kubectl get deployments,statefulsets \.\.\.`: ",
        result.stderr,
    ), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert "Traceback" not in result.output
    assert fake_kubectl.mutations() == []


def test_enormous_kubectl_output_still_parses(runner: CliRunner, fake_kubectl: FakeKubectl) -> None:
    count = 2000
    fake_kubectl.canned.write_bytes(listing_bytes(count, annotation=b"x" * 1500))
    assert fake_kubectl.canned.stat().st_size > 3_000_000

    result = runner.invoke(
        app, ["down", NS, "--dry-run", "-o", "json", "--kubectl", str(fake_kubectl.path)]
    )

    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["total_scaled"] == count
    assert fake_kubectl.mutations() == []
