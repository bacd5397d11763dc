"""`nsscale serve` against the command line it serves: what the HTTP server adds to a run; and
/healthz under hostile load.

    python -m benchmarks.serve [--requests 100] [--cli-runs 15] [--workloads 10] [--latency 0]
                               [--part all|runs|healthz] [--probes 300]

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

healthz: `nsscale serve --kubernetes-auth` (the local API server answers its TokenReviews), and
--probes sequential `GET /healthz`, each on a new connection: idle; with HALF_OPEN connections
held, each with a request begun and never finished (re-opened as the server closes them after
10 s); and with FLOODERS clients sending requests with random bearer tokens as fast as they are
answered. It prints the median and p99 of each, and each as a ratio to the idle figure beside
it; the goal: median under 20 ms, p99 under 100 ms, under either load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import socket
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
HALF_OPEN = 200
FLOODERS = 16
HEALTHZ_GOALS_MS = (20.0, 100.0)  # median, p99
PARTIAL = b"POST /api/namespaces/bench/deactivate HTTP/1.1\r\nHost: nsscale\r\n"


def start_server(env: Mapping[str, str], *auth: str) -> tuple[subprocess.Popen[str], int]:
    """`nsscale serve AUTH` on a free port; the process and its port (from its first line)."""
    argv = [sys.executable, "-m", "nsscale", "serve", "--listen", "127.0.0.1:0", *auth]
    proc = subprocess.Popen(argv, env=dict(env), stderr=subprocess.PIPE, text=True)
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


def healthz(port: int) -> float:
    """One GET /healthz on a new connection; its wall time (seconds)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        answer.read()
    finally:
        connection.close()
    if answer.status != 200:
        sys.exit(f"/healthz answered {answer.status}")
    return time.perf_counter() - started


class HalfOpen:
    """HALF_OPEN connections held, each with a request begun; re-opened when the server closes
    one (it does 10 s after it opened)."""

    def __init__(self, port: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.held: list[socket.socket] = [self._open() for _ in range(HALF_OPEN)]
        self.thread = threading.Thread(target=self._keep, daemon=True)
        self.thread.start()

    def _open(self) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        connection.sendall(PARTIAL)
        connection.setblocking(False)
        return connection

    def _keep(self) -> None:
        while not self.stop.wait(0.5):
            for i, connection in enumerate(self.held):
                try:
                    if connection.recv(1) == b"":  # closed by the server
                        raise ConnectionResetError
                except BlockingIOError:
                    continue
                except OSError:
                    connection.close()
                    self.held[i] = self._open()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for connection in self.held:
            connection.close()


class Flood:
    """FLOODERS clients sending requests with random bearer tokens, as fast as answered."""

    def __init__(self, port: int) -> None:
        self.port, self.stop, self.sent = port, threading.Event(), 0
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(FLOODERS)]
        for thread in self.threads:
            thread.start()

    def _send(self) -> None:
        while not self.stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                token = secrets.token_hex(16)
                connection.request(
                    "GET", f"/api/namespaces/{NS}", headers={"Authorization": f"Bearer {token}"}
                )
                connection.getresponse().read()
                self.sent += 1
            except OSError:
                pass
            finally:
                connection.close()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def healthz_under_load(env: Mapping[str, str], probes: int) -> None:
    """/healthz idle, with HALF_OPEN connections held, and under a flood of random tokens."""
    proc, port = start_server(env, "--kubernetes-auth")
    try:
        for _ in range(WARM_UP):
            healthz(port)
        idle = [healthz(port) for _ in range(probes)]
        held = HalfOpen(port)
        try:
            half_open = [healthz(port) for _ in range(probes)]
        finally:
            held.close()
        flood = Flood(port)
        try:
            time.sleep(1)  # the flood under way
            flooded = [healthz(port) for _ in range(probes)]
        finally:
            flood.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    idle_median, idle_p99 = statistics.median(idle), p99(idle)
    header = "| /healthz | median | p99 | median / idle | p99 / idle | goal: < 20 ms, < 100 ms |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, times in (
        ("idle", idle),
        (f"{HALF_OPEN} half-open connections held", half_open),
        (f"{FLOODERS} clients of random tokens ({flood.sent} requests)", flooded),
    ):
        median, high = statistics.median(times), p99(times)
        met = median * 1000 < HEALTHZ_GOALS_MS[0] and high * 1000 < HEALTHZ_GOALS_MS[1]
        cells = [
            name,
            f"{median * 1000:.1f} ms",
            f"{high * 1000:.1f} ms",
            f"{median / idle_median:.2f}x",
            f"{high / idle_p99:.2f}x",
            "met" if met else "MISSED",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="timed server requests")
    parser.add_argument("--cli-runs", type=int, default=15, help="timed CLI and API runs")
    parser.add_argument("--workloads", type=int, default=10)
    parser.add_argument("--latency", type=int, default=0, help="ms added to every API request")
    parser.add_argument("--part", choices=("all", "runs", "healthz"), default="all")
    parser.add_argument("--probes", type=int, default=300, help="timed /healthz per load")
    args = parser.parse_args()
    print(machine())
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        populate(server, args.workloads, NS)
        env = {**bench_env(server, Path(tmp), NS), "XDG_STATE_HOME": str(Path(tmp) / "state")}
        server.latency = args.latency / 1000
        if args.part != "runs":
            healthz_under_load(env, args.probes)
        if args.part == "healthz":
            return
        tokens = Path(tmp) / "tokens"
        tokens.write_text(f"{TOKEN}  # bench\n")
        tokens.chmod(0o600)
        proc, port = start_server(env, "--token-file", str(tokens))
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
