"""nsscale over many namespaces in one run, against the practical floor, on the local API server.

    python -m benchmarks.many [--namespaces 50] [--workloads 20] [--latencies 0,20] [--repeat 3]
                              [--single]

For each added latency per request, on a fresh server holding --namespaces namespaces of
--workloads workloads each (half Deployments, half StatefulSets; the namespaces and the
workloads labelled bench=many), it times in turns (floor, down, up, floor, ...):
- floor: `kubectl annotate deployments,statefulsets -A -l bench=many k=v --overwrite`, one
  unthrottled pass over every workload;
- `nsscale down --namespace-selector bench=many` and `nsscale up --namespace-selector bench=many`.
Each figure is the median of --repeat runs. It also runs down and up once on a server of 5
namespaces (same size, same latency), and prints, beside the goals:
- wall times and their ratio to the floor;
- the kubectl processes nsscale launched for the whole run, at 5 namespaces and at --namespaces:
  every nsscale run is given (as $NSSCALE_KUBECTL) a wrapper script that appends a line to a
  file each time it starts, then execs the pinned kubectl: a count of real process starts, not
  of log lines;
- nsscale's own peak memory (kubectl's not included): nsscale runs as `python -c`, with an
  atexit hook that writes resource.getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux; RUSAGE_SELF
  excludes children) to a file, then calls nsscale.cli.main(); the peak over the runs is shown;
- the API requests the server answered.
A cell says "(exit N)" when nsscale exited N, "(K not done)" when K workloads were not left as
the command promises (0 replicas after down, their original count after up). Figures, not
pass/fail.

--single measures, in place of one run over the selector, one `nsscale down NS` (`up NS`) per
namespace in turn (the only way before multi-namespace runs; slow: about a second per
namespace and command); its figures add up over the runs (the peak memory is the highest one).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.run import KUBECTL, Timed, bench_env, machine, median, populate, timed
from tests.apiserver.server import ApiServer

LABEL_KEY, LABEL_VALUE = "bench", "many"
LABEL = f"{LABEL_KEY}={LABEL_VALUE}"
FEW = 5  # the small run, whose kubectl processes must be as many as the large one's
CALLS_ENV = "NSSCALE_BENCH_CALLS"  # the file the kubectl wrapper appends a line to per start
PEAK_ENV = "NSSCALE_BENCH_PEAK"  # the file nsscale's peak RSS (KiB) is written to at exit

# nsscale, with its peak RSS written at exit. The hook is registered before nsscale is
# imported, so that it runs last (atexit is last in, first out), after nsscale's own.
PROBE = f"""\
import atexit, os, resource, sys

def _peak():
    with open(os.environ["{PEAK_ENV}"], "w") as out:
        out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))

atexit.register(_peak)
sys.argv[0] = "nsscale"
from nsscale.cli import main
main()
"""

# Goals, printed beside the figures.
RATIO_GOALS = {0: 2.5, 20: 1.0}  # latency (ms) -> down or up at most this many times the floor
PROCESS_GOAL = 15  # kubectl processes per run, and the same for FEW namespaces as for many
PEAK_GOAL_MB = 150


@dataclass
class Run(Timed):
    peak_kib: int = 0  # nsscale's own peak RSS
    not_done: int = 0  # workloads not left as the command promises


def namespace_names(count: int) -> list[str]:
    return [f"many-{i:02d}" for i in range(count)]


def counting_kubectl(directory: Path) -> Path:
    """A kubectl that appends its pid to $NSSCALE_BENCH_CALLS, then becomes the pinned one."""
    script = directory / "kubectl"
    script.write_text(
        f'#!/bin/sh\necho "$$" >> "${CALLS_ENV}"\nexec {shlex.quote(str(KUBECTL))} "$@"\n'
    )
    script.chmod(0o755)
    return script


class Bench:
    """One server of `count` namespaces of `workloads` each, and nsscale run against it."""

    def __init__(self, server: ApiServer, tmp: Path, count: int, workloads: int) -> None:
        self.server = server
        self.tmp = tmp
        self.namespaces = namespace_names(count)
        for namespace in self.namespaces:
            populate(server, workloads, namespace, {LABEL_KEY: LABEL_VALUE})
        self.replicas = self._replicas()
        self.env = {
            **bench_env(server, tmp, self.namespaces[0]),
            "NSSCALE_KUBECTL": str(counting_kubectl(tmp)),
            # the run's audit records go beside the kubeconfig, not into the user's trail
            "XDG_STATE_HOME": str(tmp / "state"),
        }

    def _replicas(self) -> dict[tuple[str, str, str], int]:
        return {
            (namespace, obj["kind"], obj["metadata"]["name"]): obj["spec"]["replicas"]
            for namespace in self.namespaces
            for obj in self.server.workloads(namespace)
        }

    def floor(self, turn: int) -> Timed:
        # a new value each turn: every annotate is a real write
        argv = [str(KUBECTL), "annotate", "deployments,statefulsets", "-A", "-l", LABEL]
        return timed(self.server, [*argv, f"k=v{turn}", "--overwrite"], self.env)

    def nsscale(self, command: str, single: bool) -> Run:
        """`nsscale COMMAND --namespace-selector bench=many`, or with `single` one
        `nsscale COMMAND NS` per namespace in turn (their figures added up)."""
        argvs = (
            [[command, namespace] for namespace in self.namespaces]
            if single
            else [[command, "--namespace-selector", LABEL]]
        )
        calls = self.tmp / "calls"
        peak_file = self.tmp / "peak"
        calls.write_text("")
        env = {**self.env, CALLS_ENV: str(calls), PEAK_ENV: str(peak_file)}
        total = Run(0.0, 0)
        for argv in argvs:
            peak_file.unlink(missing_ok=True)
            one = timed(self.server, [sys.executable, "-c", PROBE, *argv], env)
            peak = int(peak_file.read_text()) if peak_file.exists() else 0
            total.seconds += one.seconds
            total.requests += one.requests
            total.peak_kib = max(total.peak_kib, peak)
            if one.code and not total.code:
                total.code, total.stderr_tail = one.code, one.stderr_tail
        total.processes = len(calls.read_text().splitlines())
        total.not_done = self._not_done(command)
        return total

    def _not_done(self, command: str) -> int:
        now = self._replicas()
        want = dict.fromkeys(self.replicas, 0) if command == "down" else self.replicas
        return sum(now.get(key) != count for key, count in want.items())


@dataclass
class Figures:
    floor: Timed  # each the run of median wall time
    down: Run
    up: Run
    down_peak_kib: int  # the highest of the runs
    up_peak_kib: int
    down_few: Run  # one run over FEW namespaces
    up_few: Run


def measure(namespaces: int, workloads: int, latency_ms: int, repeat: int, single: bool) -> Figures:
    floors: list[Timed] = []
    runs: dict[str, list[Run]] = {"down": [], "up": []}
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        bench = Bench(server, Path(tmp), namespaces, workloads)
        server.latency = latency_ms / 1000
        for turn in range(repeat):
            floors.append(bench.floor(turn))
            for command, timings in runs.items():
                run = bench.nsscale(command, single)
                if run.code == 2:  # bad usage: this nsscale cannot run over many namespaces
                    sys.exit(
                        f"nsscale {command} exited 2 (bad usage):\n{run.stderr_tail}\n"
                        "Does this nsscale have --namespace-selector yet? --single measures "
                        "one run per namespace instead."
                    )
                timings.append(run)
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        few = Bench(server, Path(tmp), min(FEW, namespaces), workloads)
        server.latency = latency_ms / 1000
        down_few = few.nsscale("down", single)
        up_few = few.nsscale("up", single)
    return Figures(
        median(floors),
        median(runs["down"]),
        median(runs["up"]),
        max(r.peak_kib for r in runs["down"]),
        max(r.peak_kib for r in runs["up"]),
        down_few,
        up_few,
    )


def notes(run: Timed) -> str:
    said = [f"exit {run.code}"] if run.code else []
    if isinstance(run, Run) and run.not_done:
        said.append(f"{run.not_done} not done")
    return f" ({', '.join(said)})" if said else ""


def megabytes(kib: int) -> str:
    return f"{kib * 1024 / 1e6:.0f} MB" if kib else "?"


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def spread_parser(description: str, repeat: int) -> argparse.ArgumentParser:
    """The options of a benchmark over many namespaces: how many, how big, how slow, how often."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--namespaces", type=positive, default=50)
    parser.add_argument("--workloads", type=positive, default=20, help="per namespace")
    parser.add_argument("--latencies", default="0,20", help="ms added to every request")
    parser.add_argument(
        "--repeat", type=positive, default=repeat, help="runs per figure (the median)"
    )
    return parser


def main() -> None:
    parser = spread_parser(__doc__.splitlines()[0], repeat=3)
    parser.add_argument(
        "--single",
        action="store_true",
        help="one nsscale run per namespace instead of one run over the selector",
    )
    args = parser.parse_args()
    latencies = [int(s) for s in args.latencies.split(",")]
    many, few = args.namespaces, min(FEW, args.namespaces)
    print(machine())
    how = (
        "one `nsscale down NS` / `up NS` per namespace, in turn (--single)"
        if args.single
        else f"`nsscale down|up --namespace-selector {LABEL}`"
    )
    print(f"nsscale: {how}; floor: `kubectl annotate deployments,statefulsets -A -l {LABEL}`")
    header = (
        "| namespaces × workloads | latency | floor (annotate -A -l) | nsscale down | up "
        "| down / floor | up / floor | goal "
        f"| kubectl processes down/up, {few} ns | {many} ns | goal "
        "| nsscale peak RSS down/up | goal | API requests (floor/down/up) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for latency in latencies:
        f = measure(many, args.workloads, latency, args.repeat, args.single)
        floor, down, up = f.floor, f.down, f.up
        goal = RATIO_GOALS.get(latency)
        cells = [
            f"{many} × {args.workloads}",
            f"{latency} ms",
            f"{floor.seconds:.2f} s{notes(floor)}",
            f"{down.seconds:.2f} s{notes(down)}",
            f"{up.seconds:.2f} s{notes(up)}",
            f"{down.seconds / floor.seconds:.2f}×",
            f"{up.seconds / floor.seconds:.2f}×",
            f"≤ {goal:.1f}×" if goal is not None else "-",
            f"{f.down_few.processes}{notes(f.down_few)}/{f.up_few.processes}{notes(f.up_few)}",
            f"{down.processes}/{up.processes}",
            f"≤ {PROCESS_GOAL}, the same",
            f"{megabytes(f.down_peak_kib)}/{megabytes(f.up_peak_kib)}",
            f"≤ {PEAK_GOAL_MB} MB",
            f"{floor.requests}/{down.requests}/{up.requests}",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
