"""`nsscale serve` and clients that do not play along: idle, half-sent and byte-by-byte
connections are closed 10 s after they opened (or after their last answer) without a whole
request, 200 of them held lock nobody out, and SIGTERM exits within 5 s once the runs in flight
are answered, whatever the clients do. The real server process, raw sockets, the local API
server."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiserver.server import ApiServer
from tests.faultkit import MatrixLog, judge_down, nsscale_env, observe, scaled_down, seed
from tests.test_serve import ADMIN, SPEC, Served, token_file

HALF_OPEN = 200
PARTIAL = b"POST /api/namespaces/shop/deactivate HTTP/1.1\r\nHost: nsscale\r\n"  # no end


@pytest.fixture(scope="module")
def cluster() -> Iterator[ApiServer]:
    with ApiServer() as server:
        seed(server, "held", SPEC)
        seed(server, "busy", SPEC)
        yield server


@pytest.fixture(scope="module")
def serve_env(
    cluster: ApiServer, tmp_path_factory: pytest.TempPathFactory, kubectl_bin: Path
) -> dict[str, str]:
    home = tmp_path_factory.mktemp("connections")
    kubeconfig = cluster.write_kubeconfig(home / "kubeconfig")
    return nsscale_env(kubeconfig, kubectl_bin, XDG_STATE_HOME=str(home / "state"))


@pytest.fixture
def served(serve_env: dict[str, str], tmp_path: Path) -> Iterator[Served]:
    tokens = str(token_file(tmp_path / "tokens", ADMIN))
    server = Served(serve_env, "--token-file", tokens, "--max-runs", "1")
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait(10)


def half_open(port: int, count: int) -> list[socket.socket]:
    """`count` connections, each with a request begun and never finished."""
    held = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        connection.sendall(PARTIAL)
        held.append(connection)
    return held


def closed_by_server(connection: socket.socket) -> bool:
    """Blocks until the server closes the connection (end-of-file or a reset)."""
    try:
        return connection.recv(4096) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def timed(served: Served, path: str, token: str | None = None) -> tuple[int, float]:
    started = time.monotonic()
    reply = served.request("GET" if path == "/healthz" else "POST", path, token=token)
    return reply.status, time.monotonic() - started


@pytest.mark.e2e
def test_200_half_open_connections_lock_nobody_out_and_are_closed_within_10_s(
    served: Served, cluster: ApiServer, matrix: MatrixLog
) -> None:
    opened = time.monotonic()
    held = half_open(served.port, HALF_OPEN)
    try:
        status, took = timed(served, "/healthz")
        assert (status, took < 1.0) == (200, True), took
        run = served.request("POST", "/api/namespaces/held/deactivate", token=ADMIN)
        assert run.status == 200, run
        final = observe(cluster, "held")
        verdict = judge_down(SPEC, final, run.json["result"]["exit_code"], run.json["result"])
        matrix.add("slow-cli", f"{HALF_OPEN} held", "serve", verdict)
        assert verdict.ok, verdict.explain(final, run.json["result"])
        assert final == scaled_down(SPEC)

        for connection in held:  # each closed 10 s after it opened, never much later
            assert closed_by_server(connection)
        assert time.monotonic() - opened < 10 + 3
        assert served.wait_for("listening on")
    finally:
        for connection in held:
            connection.close()
    assert served.stop() == 0, served.stderr


@pytest.mark.e2e
def test_a_client_sending_a_byte_at_a_time_is_closed_10_s_after_it_opened(
    served: Served,
) -> None:
    connection = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    opened = time.monotonic()
    with connection:
        for byte in PARTIAL + PARTIAL:  # a header line without end, 1 byte every 0.25 s
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.25)
        else:
            pytest.fail("the server kept a connection that never sent a whole request")
        closed_after = time.monotonic() - opened
    assert 10 - 0.5 < closed_after < 10 + 2, closed_after
    # a connection that sent its request gets its answer, then 10 s more for the next
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as alive:
        alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: nsscale\r\n\r\n")
        assert alive.recv(4096).startswith(b"HTTP/1.1 200 OK")
    assert served.stop() == 0, served.stderr


@pytest.mark.e2e
def test_healthz_answers_at_once_while_every_worker_waits_on_the_cluster(
    served: Served, cluster: ApiServer
) -> None:
    # 13 workers (--max-runs 1 + --max-reviews 8 + 4 spare): 20 status reads, each held by the
    # cluster, hold them all
    held = cluster.hang("GET", "deployments", namespace="busy", seconds=60, times=None)
    waiting = [
        threading.Thread(
            target=lambda: served.request("GET", "/api/namespaces/busy", token=ADMIN), daemon=True
        )
        for _ in range(20)
    ]
    try:
        for thread in waiting:
            thread.start()
        time.sleep(3)  # every status read started, and held
        status, took = timed(served, "/healthz")
        assert (status, took < 1.0) == (200, True), took
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw:
            raw.sendall(b"GET /healthz HTTP/1.0\r\nUser-Agent: kube-probe/1.36\r\n\r\n")
            answer = raw.makefile("rb").read()  # HTTP/1.0: closed after the answer
        assert answer.startswith(b"HTTP/1.0 200 OK\r\n"), answer
        assert answer.endswith(b'\r\n\r\n{"success": true, "status": "ok"}\n'), answer
        assert served.wait_for("GET /healthz 200")
    finally:
        held.release()
        for thread in waiting:
            thread.join(60)
    assert served.stop() == 0, served.stderr


def feed(connection: socket.socket, chunk: bytes, stop: threading.Event) -> None:
    """Send `chunk` again and again, never reading, until the server closes or `stop`."""
    while not stop.is_set():
        try:
            connection.sendall(chunk)
        except OSError:  # the server closed it
            return


@pytest.mark.e2e
def test_sigterm_exits_within_5_s_whatever_clients_do(served: Served) -> None:
    idle = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    [partial] = half_open(served.port, 1)
    unread = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    unread.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # never read: it fills at once
    unread.connect(("127.0.0.1", served.port))
    stop = threading.Event()
    pipelined = b"GET /healthz HTTP/1.1\r\nHost: nsscale\r\n\r\n" * 100
    feeder = threading.Thread(target=feed, args=(unread, pipelined, stop), daemon=True)
    feeder.start()
    try:
        assert served.wait_for("GET /healthz 200")  # the pipelined requests are being answered
        stopped = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        try:
            code = served.wait(30)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - stopped
    finally:
        stop.set()
        for connection in (idle, partial, unread):
            connection.close()
        feeder.join(10)
    assert code == 0, served.stderr[-2000:]
    assert took < 5, took
    assert served.stderr.rstrip().endswith("nsscale serve: stopped")
