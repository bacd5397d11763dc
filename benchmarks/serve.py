"""`nsscale serve` against the command line it serves: what the HTTP server adds to a run.

    python -m benchmarks.serve [--requests 100] [--cli-runs 15] [--workloads 10] [--latency 0]

On the local API server, one namespace of --workloads workloads (half Deployments, half
StatefulSets). It starts `nsscale serve --token-file` (waitress, the production server) on a
free loopback port and times, with the pinned kubectl behind both:
- server: --requests sequential `POST /api/namespaces/bench/deactivate {"dry_run": true}`, each
  on a new connection with its bearer token (as curl sends it), after a few to warm up;
- api: the same dry run through the Python API in this process (`scale_namespace_resources`):
  the engine's own time, kubectl included, without HTTP or a process start;
- cli: --cli-runs `nsscale down bench --dry-run -o json`, a new process each.
It prints the medians (and the server's 90th percentile), what the server adds over the
engine it runs (server - api) and how it compares with the command line (server - cli, and the
ratio). The goal, printed beside them: the server adds at most 50 ms to a request. Every dry
run reads the same Namespace, workloads and ScaledObjects: the three runs do the same work.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from benchmarks.run import bench_env, machine, populate
from tests.apiserver.server import ApiServer

NS = "bench"
TOKEN = "bench-0123456789abcdef0123456789abcdef"
GOAL_MS = 50.0  # what the server may add to a request
WARM_UP = 3


def start_server(env: Mapping[str, str], tokens: Path) -> tuple[subprocess.Popen[str], int]:
    """`nsscale serve` on a free port; the process and its port (from its first line)."""
    argv = [sys.executable, "-m", "nsscale", "serve", "--listen", "127.0.0.1:0"]
    proc = subprocess.Popen(
        [*argv, "--token-file", str(tokens)], env=dict(env), stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "listening on http://" not in line:
        proc.kill()
        sys.exit(f"nsscale serve did not start: {line}{proc.stderr.read()}")
    # the access log goes on to stderr: drain it, or the pipe fills and the server blocks
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, int(line.split("listening on http://", 1)[1].split()[0].rsplit(":", 1)[1])


def post(port: int) -> float:
    """One dry-run deactivate on a new connection; its wall time (seconds)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            "POST",
            f"/api/namespaces/{NS}/deactivate",
            body=json.dumps({"dry_run": True}),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    if answer.status != 200:
        sys.exit(f"the server answered {answer.status}: {body.decode()[:300]}")
    return time.perf_counter() - started


def api_dry_run(env: Mapping[str, str]) -> Callable[[], float]:
    """The dry run through the Python API, in this process, against the same server."""
    os.environ.update(env)
    from nsscale import scale_namespace_resources

    def once() -> float:
        started = time.perf_counter()
        result = scale_namespace_resources(NS, 0, dry_run=True)
        if not result["success"]:
            sys.exit(f"the API's dry run failed: {result['errors']}")
        return time.perf_counter() - started

    return once


def cli_dry_run(env: Mapping[str, str]) -> float:
    argv = [sys.executable, "-m", "nsscale", "down", NS, "--dry-run", "-o", "json"]
    started = time.perf_counter()
    done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"nsscale down --dry-run exited {done.returncode}: {done.stderr[-500:]}")
    return seconds


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="timed server requests")
    parser.add_argument("--cli-runs", type=int, default=15, help="timed CLI and API runs")
    parser.add_argument("--workloads", type=int, default=10)
    parser.add_argument("--latency", type=int, default=0, help="ms added to every API request")
    args = parser.parse_args()
    print(machine())
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        populate(server, args.workloads, NS)
        env = {**bench_env(server, Path(tmp), NS), "XDG_STATE_HOME": str(Path(tmp) / "state")}
        server.latency = args.latency / 1000
        tokens = Path(tmp) / "tokens"
        tokens.write_text(f"{TOKEN}  # bench\n")
        tokens.chmod(0o600)
        proc, port = start_server(env, tokens)
        try:
            for _ in range(WARM_UP):
                post(port)
            served = [post(port) for _ in range(args.requests)]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        api = api_dry_run(env)
        api()  # warm: the imports
        in_process = [api() for _ in range(args.cli_runs)]
        cli = [cli_dry_run(env) for _ in range(args.cli_runs)]
    server_ms, api_ms, cli_ms = (statistics.median(t) for t in (served, in_process, cli))
    p90 = statistics.quantiles(served, n=10)[-1]
    added = server_ms - api_ms
    header = (
        "| workloads | latency | server median (p90) | API in-process | CLI `down --dry-run` "
        "| server - API | server - CLI | server / CLI | goal: server adds <= 50 ms |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    cells = [
        str(args.workloads),
        f"{args.latency} ms",
        f"{ms(server_ms)} ({ms(p90)}), {args.requests} requests",
        f"{ms(api_ms)}",
        f"{ms(cli_ms)}",
        f"{added * 1000:+.0f} ms",
        f"{(server_ms - cli_ms) * 1000:+.0f} ms",
        f"{server_ms / cli_ms:.2f}x",
        "met" if added * 1000 <= GOAL_MS and server_ms <= cli_ms + GOAL_MS / 1000 else "MISSED",
    ]
    print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
