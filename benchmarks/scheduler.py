"""One round of `nsscale serve --reconcile-every` when nothing needs doing, beside the command.

    python -m benchmarks.scheduler [--namespaces 50] [--workloads 20] [--latencies 0,20]
                                   [--repeat 5]

On the local API server, --namespaces namespaces of --workloads workloads each (labelled
bench=many), every one annotated `nsscale/uptime: always` and up, so a round finds nothing to do
(benchmarks/reconcile.py's fleet). It times, in turns, one round of the server's loop
(serve/scheduler.py's `reconcile_once`, in this process: the engine already loaded, as in a
server that has been up for a while; no Python start-up) and the command `nsscale reconcile
--namespace-selector bench=many` (a new process each time, as a CronJob pays), and prints their
medians, the kubectl processes each started, and the API requests. The goal: a round under 0.5 s
at 0 ms. Figures, not pass/fail.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.many import CALLS_ENV, LABEL, PEAK_ENV, PROBE, Bench, spread_parser
from benchmarks.run import Timed, machine, median, timed
from nsscale.audit.auditor import Auditor
from nsscale.engine.options import AuditOptions
from nsscale.kubectl import Kubectl, KubectlConfig
from nsscale.schedule.decide import Policy
from nsscale.serve.options import LoopOptions
from nsscale.serve.scheduler import Scheduler
from tests.apiserver.server import ApiServer

ROUND_GOAL_S = 0.5  # at 0 ms


def measure(namespaces: int, workloads: int, latency_ms: int, repeat: int) -> str:
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        bench = Bench(server, Path(tmp), namespaces, workloads)
        for namespace in bench.namespaces:
            server.add_namespace(namespace, annotations={"nsscale/uptime": "always"})
        server.latency = latency_ms / 1000
        calls = Path(tmp) / "calls"
        env = {**bench.env, CALLS_ENV: str(calls), PEAK_ENV: str(Path(tmp) / "peak")}
        os.environ.update(env)  # the loop's kubectl: the same cache, the same counting wrapper
        kubectl = Kubectl(KubectlConfig(binary=env["NSSCALE_KUBECTL"]))
        scheduler = Scheduler(kubectl, None, Policy(), Auditor(AuditOptions()))
        loop = LoopOptions(every=timedelta(minutes=5), namespace_selector=LABEL)
        scheduler.reconcile_once(loop)  # a server's first round loads the engine once
        rounds: list[Timed] = []
        commands: list[Timed] = []
        for _ in range(repeat):
            calls.write_text("")
            rounds.append(one_round(server, scheduler, loop, calls))
            calls.write_text("")
            argv = ["reconcile", "--namespace-selector", LABEL]
            command = timed(server, [sys.executable, "-c", PROBE, *argv], env)
            command.processes = len(calls.read_text().splitlines())
            commands.append(command)
    loop_round, command = median(rounds), median(commands)
    code = f" (exit {loop_round.code})" if loop_round.code else ""
    goal = f" (goal < {ROUND_GOAL_S} s)" if latency_ms == 0 else ""
    return (
        f"| {namespaces} × {workloads} | {latency_ms} ms | {loop_round.seconds:.2f} s{code}{goal} "
        f"| {command.seconds:.2f} s | {command.seconds / loop_round.seconds:.1f}× "
        f"| {loop_round.processes} / {command.processes} "
        f"| {loop_round.requests} / {command.requests} |"
    )


def one_round(server: ApiServer, scheduler: Scheduler, loop: LoopOptions, calls: Path) -> Timed:
    before = server.request_count
    started = time.perf_counter()
    done = scheduler.reconcile_once(loop)
    seconds = time.perf_counter() - started
    processes = len(calls.read_text().splitlines())
    return Timed(seconds, server.request_count - before, processes, done.exit_code)


def main() -> None:
    args = spread_parser(__doc__.splitlines()[0], repeat=5).parse_args()
    print(machine())
    print("a round of serve --reconcile-every with nothing to do, beside nsscale reconcile")
    print(
        "| namespaces × workloads | latency | loop round | nsscale reconcile | ratio "
        "| kubectl processes (round / command) | API requests (round / command) |"
    )
    print("|---|---|---|---|---|---|---|")
    for latency in (int(s) for s in args.latencies.split(",")):
        print(measure(args.namespaces, args.workloads, latency, args.repeat), flush=True)


if __name__ == "__main__":
    main()
