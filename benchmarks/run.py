"""nsscale against the practical floor and bare `kubectl scale`, on the local API server.

    python -m benchmarks.run [--sizes 10,100,500] [--latencies 0,20] [--repeat 3]
                             [--no-scale-baseline]

For each namespace size N and added latency per request, on a fresh namespace of N workloads
(half Deployments, half StatefulSets), it times in the same run:
- floor: `kubectl annotate deployments,statefulsets --all k=v --overwrite` (one unthrottled pass);
- nsscale down, nsscale up, and a down whose last write is refused (so every workload is
  written and then rolled back);
- bare `kubectl scale deployments,statefulsets --all --replicas=0` (records nothing, cannot roll
  back; throttled by kubectl to 5 requests/s).
Every figure but bare `scale --all` is the median of --repeat runs, taken in turns (floor, down,
up, rollback, floor, ...) so that a slow moment of the machine does not land on one side only.
It prints wall times, ratios against the floor, kubectl processes nsscale launched (counted from
its -vv log) and API requests served (counted by the server). Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tests.apiserver.fixtures import kubectl_env
from tests.apiserver.server import ApiServer

KUBECTL = Path(sys.executable).parent / "kubectl"
NS = "bench"


@dataclass
class Timed:
    seconds: float
    requests: int
    processes: int = 0
    code: int = 0
    stderr_tail: str = ""  # the last lines of its stderr: why it failed


T = TypeVar("T", bound=Timed)


def populate(
    server: ApiServer, n: int, namespace: str = NS, labels: Mapping[str, str] | None = None
) -> list[str]:
    """A namespace of n workloads, half Deployments, half StatefulSets (the namespace and each
    workload carrying `labels`); their names."""
    server.add_namespace(namespace, labels)
    names = []
    for i in range(n):
        name = f"w{i:04d}"
        if i % 2:
            server.add_statefulset(namespace, name, replicas=1 + i % 3, labels=labels)
        else:
            server.add_deployment(namespace, name, replicas=1 + i % 3, labels=labels)
        names.append(name)
    return names


def bench_env(server: ApiServer, tmp: Path, namespace: str = NS) -> dict[str, str]:
    """The environment of kubectl and nsscale against the server (its kubeconfig written in
    tmp), kubectl's discovery cache warmed so that every measured call starts alike."""
    kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
    env = {**kubectl_env(kubeconfig), "NSSCALE_KUBECTL": str(KUBECTL)}
    subprocess.run(
        [str(KUBECTL), "-n", namespace, "get", "deployments,statefulsets"],
        env=env,
        capture_output=True,
        check=True,
    )
    return env


def timed(server: ApiServer, argv: list[str], env: dict[str, str]) -> Timed:
    before = server.request_count
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    processes = proc.stderr.count("[DEBUG] kubectl: ")
    tail = "\n".join(proc.stderr.splitlines()[-20:])
    return Timed(seconds, server.request_count - before, processes, proc.returncode, tail)


def median(runs: list[T]) -> T:
    """The run of median wall time (its requests and processes with it)."""
    return sorted(runs, key=lambda t: t.seconds)[len(runs) // 2]


def machine() -> str:
    """The machine, Python and kubectl the figures were measured with."""
    version = subprocess.run(
        [str(KUBECTL), "version", "--client"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    return f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, kubectl {version}"


def measure(n: int, latency_ms: int, repeat: int, scale_baseline: bool) -> dict[str, Timed]:
    runs: dict[str, list[Timed]] = {}
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        names = populate(server, n)
        env = bench_env(server, Path(tmp))
        kubectl = [str(KUBECTL), "-n", NS]
        nsscale = [sys.executable, "-m", "nsscale"]
        server.latency = latency_ms / 1000
        last = names[-1]
        for turn in range(repeat):
            # a new value each turn: every annotate is a real write
            floor = [*kubectl, "annotate", "deployments,statefulsets", "--all", f"k=v{turn}"]
            runs.setdefault("floor", []).append(timed(server, [*floor, "--overwrite"], env))
            runs.setdefault("down", []).append(timed(server, [*nsscale, "down", NS, "-vv"], env))
            runs.setdefault("up", []).append(timed(server, [*nsscale, "up", NS, "-vv"], env))
            # a permanent refusal (403 is never retried) of the last write: every other write is
            # done, then undone
            server.fail("PUT", "statefulsets" if (n - 1) % 2 else "deployments", last, status=403)
            rollback = timed(server, [*nsscale, "down", NS, "-vv"], env)
            runs.setdefault("rollback", []).append(rollback)
            server.clear_faults()
        results = {name: median(timings) for name, timings in runs.items()}
        if scale_baseline:
            results["scale --all"] = timed(
                server,
                [*kubectl, "scale", "deployments,statefulsets", "--all", "--replicas=0"],
                env,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500")
    parser.add_argument("--latencies", default="0,20", help="ms added to every request")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the median)")
    parser.add_argument(
        "--no-scale-baseline",
        action="store_true",
        help="skip bare kubectl scale --all (slow: about 0.2 s per workload)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    latencies = [int(s) for s in args.latencies.split(",")]
    print(machine())
    header = (
        "| N | latency | floor (annotate --all) | nsscale down | up | rollback | "
        "down / floor | up / floor | rollback / floor | scale --all | scale --all / down "
        "| kubectl processes (down/up/rollback) | API requests (down/up/rollback) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for n in sizes:
        for latency in latencies:
            r = measure(n, latency, args.repeat, not args.no_scale_baseline)
            floor = r["floor"].seconds
            scale = r.get("scale --all")
            cells = [
                str(n),
                f"{latency} ms",
                f"{floor:.2f} s",
                f"{r['down'].seconds:.2f} s",
                f"{r['up'].seconds:.2f} s",
                f"{r['rollback'].seconds:.2f} s (exit {r['rollback'].code})",
                f"{r['down'].seconds / floor:.2f}×",
                f"{r['up'].seconds / floor:.2f}×",
                f"{r['rollback'].seconds / floor:.2f}×",
                f"{scale.seconds:.1f} s" if scale else "-",
                f"{scale.seconds / r['down'].seconds:.1f}×" if scale else "-",
                f"{r['down'].processes}/{r['up'].processes}/{r['rollback'].processes}",
                f"{r['down'].requests}/{r['up'].requests}/{r['rollback'].requests}",
            ]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
