"""What moving Argo Rollouts costs: `nsscale down` of 500 workloads of which 100 are Rollouts
against `down` of 500 Deployments, on the local API server, same script, same run.

    python -m benchmarks.kinds [--size 500] [--rollouts 100] [--latency 0] [--repeat 5]

Both namespaces live on one server with Argo Rollouts' CRD installed (so both runs read the
Rollouts: the mixed one finds 100, the other none); each turn times a down then an up of each,
in turns, so that a slow moment of the machine does not land on one side only. Prints the
median wall times and the ratio (goal: within 10 %). Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.run import Timed, bench_env, machine, median, timed
from tests.apiserver.kinds.custom import ARGO_ROLLOUT
from tests.apiserver.server import ApiServer

PLAIN, MIXED = "deployments", "mixed"


def populate(server: ApiServer, namespace: str, size: int, rollouts: int) -> None:
    """`size` workloads: the first `rollouts` of them Argo Rollouts, the rest Deployments."""
    server.add_namespace(namespace)
    for i in range(size):
        name, replicas = f"w{i:04d}", 1 + i % 3
        if i < rollouts:
            spec = {"replicas": replicas, "selector": {"matchLabels": {"app": name}}}
            server.add_custom(ARGO_ROLLOUT.api_version, "Rollout", namespace, name, spec)
        else:
            server.add_deployment(namespace, name, replicas=replicas)


def measure(size: int, rollouts: int, latency_ms: int, repeat: int) -> dict[str, Timed]:
    runs: dict[str, list[Timed]] = {}
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.install_crds(ARGO_ROLLOUT)
        populate(server, PLAIN, size, 0)
        populate(server, MIXED, size, rollouts)
        env = bench_env(server, Path(tmp), PLAIN)
        server.latency = latency_ms / 1000
        nsscale = [sys.executable, "-m", "nsscale"]
        for _ in range(repeat):
            for namespace in (PLAIN, MIXED):
                for operation in ("down", "up"):
                    done = timed(server, [*nsscale, operation, namespace, "-vv"], env)
                    if done.code != 0:
                        raise SystemExit(f"{operation} {namespace} failed:\n{done.stderr_tail}")
                    runs.setdefault(f"{operation} {namespace}", []).append(done)
    return {name: median(timings) for name, timings in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--latency", type=int, default=0, help="ms added to every request")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (the median)")
    args = parser.parse_args()
    print(machine())
    results = measure(args.size, args.rollouts, args.latency, args.repeat)
    print(f"| run | wall (s) | kubectl processes | API requests |  ({args.latency} ms latency)")
    print("|---|---|---|---|")
    for name, t in results.items():
        print(f"| {name} | {t.seconds:.2f} | {t.processes} | {t.requests} |")
    for operation in ("down", "up"):
        plain, mixed = results[f"{operation} {PLAIN}"], results[f"{operation} {MIXED}"]
        print(
            f"{operation}: {args.size} workloads with {args.rollouts} Rollouts / "
            f"{args.size} Deployments = {mixed.seconds / plain.seconds:.3f}"
        )


if __name__ == "__main__":
    main()
