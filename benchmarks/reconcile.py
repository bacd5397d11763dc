"""`nsscale reconcile` when nothing needs doing, the run cron makes every few minutes.

    python -m benchmarks.reconcile [--namespaces 50] [--workloads 20] [--latencies 0,20]
                                   [--repeat 5]

On the local API server, --namespaces namespaces of --workloads workloads each (labelled
bench=many), every one annotated `nsscale/uptime: always` and up, so reconcile finds nothing to
do (the baseline). Two variants with the rules of a scheduled down at work, still with nothing to
do: "awake, HPAs": the same, each workload with an HPA and each namespace annotated
`nsscale/downtime-replicas: 1`; "asleep at 1, HPAs": each namespace `nsscale/uptime: never` with
downtime replicas 1, each workload already at 1 as nsscale's down left it (its original and
scaled-to recorded) and its HPA's minReplicas lowered to 1 (the original recorded). Their
reconcile's own time (beyond start-up) is printed as a ratio to the baseline's. For each, it
times, in turns, `nsscale reconcile --namespace-selector bench=many` and the start-up of
the same program (`nsscale --version`), and prints the medians, their difference (reconcile's own
work) and the kubectl processes reconcile started (the goal: one or two, and well under a second
beyond start-up). Beside them, the deciding read of the workloads as one `kubectl get -o json`
(kubectl decodes the lists and prints them again) and as the two `get --raw` reconcile sends side
by side, and their ratio. Figures, not pass/fail.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.many import CALLS_ENV, LABEL, PEAK_ENV, PROBE, Bench, spread_parser
from benchmarks.run import KUBECTL, Timed, machine, median, timed
from tests.apiserver.server import ApiServer

PROCESS_GOAL = 2
SLEEP = "1"  # the variants' downtime replicas


def awake(server: ApiServer, namespace: str) -> None:
    server.add_namespace(namespace, annotations={"nsscale/uptime": "always"})


def awake_with_hpas(server: ApiServer, namespace: str) -> None:
    annotations = {"nsscale/uptime": "always", "nsscale/downtime-replicas": SLEEP}
    server.add_namespace(namespace, annotations=annotations)
    for obj in server.workloads(namespace):
        name = obj["metadata"]["name"]
        server.add_hpa(namespace, name, obj["kind"], name, 2, max_replicas=6)


def asleep_with_hpas(server: ApiServer, namespace: str) -> None:
    """As a down to 1 left it: nothing for the next reconcile to do."""
    annotations = {"nsscale/uptime": "never", "nsscale/downtime-replicas": SLEEP}
    server.add_namespace(namespace, annotations=annotations)
    for obj in server.workloads(namespace):
        name, kind, replicas = obj["metadata"]["name"], obj["kind"], obj["spec"]["replicas"]
        recorded = {"nsscale/original-min-replicas": "2"}
        if replicas > 1:
            records = {"nsscale/original-replicas": str(replicas), "nsscale/scaled-replicas": SLEEP}
            server.edit_workload(namespace, kind, name, replicas=1, annotations=records)
        server.add_hpa(namespace, name, kind, name, 1, max_replicas=6, annotations=recorded)


# each namespace seeded, and reconcile's options beyond the selector (asleep: its workloads are
# new, past the grace period all the same, so that every rule of a down is asked)
VARIANTS: dict[str, tuple[Callable[[ApiServer, str], None], tuple[str, ...]]] = {
    "baseline": (awake, ()),
    "awake, HPAs": (awake_with_hpas, ()),
    "asleep at 1, HPAs": (asleep_with_hpas, ("--grace-period", "0")),
}


def measure(
    namespaces: int, workloads: int, latency_ms: int, repeat: int, variant: str
) -> tuple[str, float]:
    """The table's row, and reconcile's own time (beyond start-up)."""
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        bench = Bench(server, Path(tmp), namespaces, workloads)
        seeded, options = VARIANTS[variant]
        for namespace in bench.namespaces:
            seeded(server, namespace)
        server.latency = latency_ms / 1000
        calls = Path(tmp) / "calls"
        env = {**bench.env, CALLS_ENV: str(calls), PEAK_ENV: str(Path(tmp) / "peak")}
        reconciles: list[Timed] = []
        startups: list[Timed] = []
        processes = []
        decoded: list[float] = []
        passed: list[float] = []
        for _ in range(repeat):
            calls.write_text("")
            argv = ["reconcile", "--namespace-selector", LABEL, *options]
            reconciles.append(timed(server, [sys.executable, "-c", PROBE, *argv], env))
            processes.append(len(calls.read_text().splitlines()))
            startups.append(timed(server, [sys.executable, "-c", PROBE, "--version"], env))
            decoded.append(side_by_side([DECODED], env))
            passed.append(side_by_side(PASSED_THROUGH, env))
    run, start = median(reconciles), median(startups)
    json_read, raw_read = statistics.median(decoded), statistics.median(passed)
    code = f" (exit {run.code})" if run.code else ""
    return (
        f"| {variant} | {namespaces} × {workloads} | {latency_ms} ms | {run.seconds:.2f} s{code} "
        f"| {start.seconds:.2f} s | {run.seconds - start.seconds:.2f} s "
        f"| {max(processes)} (goal ≤ {PROCESS_GOAL}) | {run.requests} "
        f"| {json_read:.2f} s / {raw_read:.2f} s ({raw_read / json_read:.2f}×) |"
    ), run.seconds - start.seconds


# The deciding read of the workloads as it was (kubectl decodes and prints the lists again) and
# as it is (each list passed through as the server sent it, side by side).
DECODED = ["get", "deployments,statefulsets", "-A", "-o", "json"]
PASSED_THROUGH = [
    ["get", "--raw", "/apis/apps/v1/deployments?limit=500"],
    ["get", "--raw", "/apis/apps/v1/statefulsets?limit=500"],
]


def side_by_side(commands: list[list[str]], env: dict[str, str]) -> float:
    """Wall time of the kubectl commands started together, their output parsed as nsscale
    parses it."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen([str(KUBECTL), *args], env=env, stdout=subprocess.PIPE)
        for args in commands
    ]
    for proc in procs:
        out, _ = proc.communicate()
        json.loads(out)
    return time.perf_counter() - started


def main() -> None:
    args = spread_parser(__doc__.splitlines()[0], repeat=5).parse_args()
    print(machine())
    print("nsscale reconcile with nothing to do, against the start-up of nsscale --version")
    print(
        "| variant | namespaces × workloads | latency | reconcile | start-up "
        "| reconcile − start-up | kubectl processes | API requests "
        "| deciding read: -o json / --raw side by side | × baseline |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for latency in (int(s) for s in args.latencies.split(",")):
        baseline = 0.0
        for variant in VARIANTS:
            row, own = measure(args.namespaces, args.workloads, latency, args.repeat, variant)
            baseline = baseline or own
            print(f"{row} {own / baseline:.2f} |", flush=True)


if __name__ == "__main__":
    main()
