"""`GET /api/namespaces` (the web page's fleet view) over many namespaces, beside the command
line's own view of the same fleet.

    python -m benchmarks.fleet [--namespaces 50] [--workloads 20] [--latencies 0,20]
                               [--repeat 10] [--cli-repeat 3]

On the local API server, --namespaces namespaces of --workloads workloads each (labelled
bench=many), each annotated `nsscale/uptime: Mon-Fri 08:00-18:00 Europe/Madrid` so that every
entry carries a decision, a next change and a week strip. For each added latency per request
it starts `nsscale serve --token-file` (waitress) on a free loopback port, warms it up, and
times --repeat sequential `GET /api/namespaces`, each on a new connection with its bearer token;
then, for the same fleet, --cli-repeat runs of `nsscale status --namespace-selector bench=many
-o json` and of `nsscale reconcile --namespace-selector bench=many --dry-run -o json` (a new
process each: what a script or a dashboard would run without the server). It prints the
medians (and the server's 90th percentile), the kubectl processes one GET started, the answer's
size, and the goals: under 300 ms median at 0 ms, under 600 ms at 20 ms. Figures, not pass/fail.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.many import CALLS_ENV, LABEL, Bench, spread_parser
from benchmarks.run import Timed, machine, median, timed
from benchmarks.serve import TOKEN, start_server
from tests.apiserver.server import ApiServer

UPTIME = "Mon-Fri 08:00-18:00 Europe/Madrid"
GOALS_MS = {0: 300.0, 20: 600.0}  # latency (ms) -> the median GET's goal
WARM_UP = 3


def get_fleet(port: int, namespaces: int) -> tuple[float, int]:
    """One `GET /api/namespaces` on a new connection: its wall time and the answer's size."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", "/api/namespaces", headers={"Authorization": f"Bearer {TOKEN}"})
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    if answer.status != 200:
        sys.exit(f"the server answered {answer.status}: {body.decode()[:300]}")
    found = [e for e in json.loads(body)["namespaces"] if e["namespace"].startswith("many-")]
    if len(found) != namespaces or any(e["week"] is None for e in found):
        sys.exit(f"the answer shows {len(found)} of the {namespaces} namespaces, or no schedule")
    return seconds, len(body)


def measure(namespaces: int, workloads: int, latency_ms: int, repeat: int, cli: int) -> str:
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        bench = Bench(server, Path(tmp), namespaces, workloads)
        for namespace in bench.namespaces:
            server.add_namespace(namespace, annotations={"nsscale/uptime": UPTIME})
        tokens = Path(tmp) / "tokens"
        tokens.write_text(f"{TOKEN}  # bench\n")
        tokens.chmod(0o600)
        calls = Path(tmp) / "calls"
        env = {**bench.env, CALLS_ENV: str(calls)}
        proc, port = start_server(env, "--token-file", str(tokens))
        try:
            server.latency = latency_ms / 1000
            for _ in range(WARM_UP):
                get_fleet(port, namespaces)
            calls.write_text("")
            gets = [get_fleet(port, namespaces) for _ in range(repeat)]
            processes = len(calls.read_text().splitlines()) / repeat
        finally:
            proc.terminate()
            proc.wait(30)
        status = _cli(server, env, ["status", "--namespace-selector", LABEL, "-o", "json"], cli)
        dry_run = ["reconcile", "--namespace-selector", LABEL, "--dry-run", "-o", "json"]
        reconcile = _cli(server, env, dry_run, cli)
    seconds = sorted(s for s, _ in gets)
    middle = statistics.median(seconds)
    p90 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.9))]
    goal = GOALS_MS.get(latency_ms)
    goal_text = f" (goal < {goal:.0f} ms)" if goal is not None else ""
    return (
        f"| {namespaces} × {workloads} | {latency_ms} ms | {middle * 1000:.0f} ms{goal_text} "
        f"| {p90 * 1000:.0f} ms | {processes:.0f} | {gets[0][1] / 1024:.0f} KiB "
        f"| {status.seconds * 1000:.0f} ms{_code(status)} "
        f"| {reconcile.seconds * 1000:.0f} ms{_code(reconcile)} |"
    )


def _cli(server: ApiServer, env: dict[str, str], argv: list[str], repeat: int) -> Timed:
    command = [sys.executable, "-m", "nsscale", *argv]
    return median([timed(server, command, env) for _ in range(repeat)])


def _code(run: Timed) -> str:
    return f" (exit {run.code})" if run.code else ""


def main() -> None:
    parser = spread_parser(__doc__.splitlines()[0], repeat=10)
    parser.add_argument("--cli-repeat", type=int, default=3, help="runs per CLI figure")
    args = parser.parse_args()
    print(f"{machine()}, load average {os.getloadavg()[0]:.1f} at the start")
    print("GET /api/namespaces against the command line's view of the same fleet")
    print(
        "| namespaces × workloads | latency | GET /api/namespaces (median) | p90 "
        "| kubectl per GET | answer | nsscale status -o json | nsscale reconcile --dry-run |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for latency in (int(s) for s in args.latencies.split(",")):
        line = measure(args.namespaces, args.workloads, latency, args.repeat, args.cli_repeat)
        print(line, flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end (figures rise with it)")


if __name__ == "__main__":
    main()
