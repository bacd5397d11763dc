"""`nsscale serve`: the real server (waitress) run as `nsscale serve` in a subprocess, a real HTTP
client (http.client), the real kubectl behind it and the local API server, which answers its
TokenReviews and SubjectAccessReviews. Every status code of the contract, the auth modes, the access
log, the audit record's caller, the drain on SIGTERM, and a fuzz of paths and bodies.

One server (token file, --max-runs 2) serves most tests of the module; a test that needs
another mode or its own life starts its own."""

from __future__ import annotations

import getpass
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nsscale.cli import app
from nsscale.errors import TokenFileError
from nsscale.serve import EXTRA, require_extra
from nsscale.serve.tokens import parse_tokens
from tests.apiserver.server import ApiServer
from tests.faultkit import NSSCALE, Key, lease, nsscale_env, observe, scaled_down, seed, untouched
from tests.faultkit import wait_until as _wait_until

# Tokens: the module server's file lets ADMIN act anywhere and CI on preview-* and shop only.
ADMIN = "admin-0123456789abcdef0123456789abcdef"
CI = "ci-fedcba9876543210fedcba9876543210"
SPEC: dict[Key, int] = {
    ("deployment", "web"): 3,
    ("deployment", "api"): 2,
    ("statefulset", "db"): 1,
}
# Namespaces of the module's cluster, each test its own: tests never see each other's runs.
DELEGATED_REVIEWS = ("tokenreviews", "subjectaccessreviews")  # what --kubernetes-auth creates
NAMESPACES = ("shop", "race", "faulty", "slow-a", "slow-b", "term", "preview-1", "kube-team")


def wait_until(predicate: Any, timeout: float = 20) -> bool:
    return _wait_until(predicate, timeout, 0.02)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # lowercase names
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    def __str__(self) -> str:
        return f"{self.status} {dict(self.headers)} {self.text}"


class Served:
    """`nsscale serve --listen 127.0.0.1:0 ARGS` in the background; its stderr read as it comes
    (the port from its first line), and requests to it."""

    def __init__(self, env: Mapping[str, str], *args: str) -> None:
        argv = [str(NSSCALE), "serve", "--listen", "127.0.0.1:0", *args]
        self.proc = subprocess.Popen(argv, env=dict(env), stderr=subprocess.PIPE, text=True)
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.wait_for("listening on http://", 30):
            self.proc.kill()
            raise AssertionError(f"nsscale serve did not start:\n{self.stderr}")
        address = self.stderr.split("listening on http://", 1)[1].split()[0]
        self.port = int(address.rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, needle: str, timeout: float = 20) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: needle in "".join(self._lines) or self.proc.poll() is not None, timeout
            ) and needle in "".join(self._lines)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Iterable[bytes] | None = None,
        token: str | None = ADMIN,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=sent)
            answer = connection.getresponse()
            text = answer.read().decode()
            found = {k.lower(): v for k, v in answer.getheaders()}
            return Reply(answer.status, found, text)
        finally:
            connection.close()

    def post(self, namespace: str, action: str = "deactivate", dry_run: bool = False) -> Reply:
        body = json.dumps({"dry_run": True}) if dry_run else None
        return self.request("POST", f"/api/namespaces/{namespace}/{action}", body)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        """Its exit code, once its stderr is read to the end (the reader may lag the exit)."""
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code


# what a cluster's error may say of the server that asked: its address, host, files, pid
SERVER_DETAIL = (
    f"etcd at https://10.0.3.7:2379 unreachable from {socket.gethostname()} "
    f"(pid {os.getpid()}, /home/ops/.kube/config)"
)


def assert_names_nothing_of_the_server(text: str) -> None:
    """An answer says nothing of the server: its host, pid, account, addresses or files."""
    for secret in (socket.gethostname(), getpass.getuser(), f"pid {os.getpid()}", "127.0.0.1"):
        assert secret not in text, (secret, text)
    assert not re.search(r"pid \d+|/tmp/|/home/|/root/|kubeconfig|https?://", text), text


def in_background(fn: Any) -> tuple[threading.Thread, list[Any]]:
    """Run fn() in a thread; its result lands in the list."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def audit_records(home: Path, run_id: str) -> list[dict[str, Any]]:
    path = home / "state" / "nsscale" / "audit.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    records = [r for r in map(json.loads, lines) if r.get("run_id") == run_id]
    return [r for r in records if r["event"] == "finished"]  # not the run's start


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def cluster() -> Iterator[ApiServer]:
    with ApiServer() as server:
        for namespace in NAMESPACES:
            seed(server, namespace, SPEC)
        server.add_namespace("vault", annotations={"nsscale/protected": "true"})
        yield server


@pytest.fixture(scope="module")
def serve_env(cluster: ApiServer, home: Path, kubectl_bin: Path) -> dict[str, str]:
    kubeconfig = cluster.write_kubeconfig(home / "kubeconfig")
    return nsscale_env(kubeconfig, kubectl_bin, XDG_STATE_HOME=str(home / "state"))


def token_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def server(serve_env: dict[str, str], home: Path) -> Iterator[Served]:
    tokens = token_file(home / "tokens", f"# the module's tokens\n{ADMIN}  # admin\n")
    tokens.write_text(tokens.read_text() + f"{CI} preview-* shop   # ci pipeline\n")
    served = Served(serve_env, "--token-file", str(tokens), "--max-runs", "2")
    yield served
    assert served.stop() == 0, served.stderr
    assert "Traceback" not in served.stderr


@pytest.fixture
def faults(cluster: ApiServer) -> Iterator[ApiServer]:
    """The module's cluster, its faults and forbid rules dropped after the test."""
    yield cluster
    cluster.clear_faults()
    cluster.allow_all()


# ------------------------------------------------------------------------------- 200


@pytest.mark.e2e
def test_healthz_answers_without_a_token(server: Served) -> None:
    reply = server.request("GET", "/healthz", token=None)
    assert (reply.status, reply.json) == (200, {"success": True, "status": "ok"})


@pytest.mark.e2e
def test_a_dry_run_changes_nothing_and_says_what_would_change(
    server: Served, cluster: ApiServer
) -> None:
    reply = server.post("shop", dry_run=True)
    assert reply.status == 200, reply
    body = reply.json
    assert list(body)[:3] == ["success", "message", "scaled_resources"]
    assert body["message"] == "Namespace shop deactivated (dry run: nothing changed)"
    assert {r["status"] for r in body["scaled_resources"]} == {"dry_run"}
    assert body["result"]["dry_run"] is True
    assert observe(cluster, "shop") == untouched(SPEC)


@pytest.mark.e2e
def test_deactivate_then_activate_are_down_and_up_audited_with_the_caller(
    server: Served, cluster: ApiServer, home: Path
) -> None:
    down = server.request("POST", "/api/namespaces/shop/deactivate", token=CI)
    assert down.status == 200, down
    assert down.json["message"] == "Namespace shop deactivated"
    assert down.json["result"]["total_scaled"] == 3
    assert observe(cluster, "shop") == scaled_down(SPEC)

    up = server.request("POST", "/api/namespaces/shop/activate", b"", token=CI)
    assert up.status == 200, up
    assert up.json["message"] == "Namespace shop activated"
    assert observe(cluster, "shop") == untouched(SPEC)

    for reply, operation in ((down, "down"), (up, "up")):
        run_id = reply.json["run_id"]
        [record] = audit_records(home, run_id)
        assert (record["operation"], record["caller"]) == (operation, "token:ci pipeline")
        # logged once the answer is handed over: it may come a moment after the client has it
        assert server.wait_for(f"run={run_id} caller=token:ci%20pipeline")


@pytest.mark.e2e
def test_status_is_what_nsscale_status_prints(
    server: Served, serve_env: dict[str, str], cluster: ApiServer
) -> None:
    reply = server.request("GET", "/api/namespaces/shop")
    printed = subprocess.run(
        [str(NSSCALE), "status", "shop", "-o", "json"],
        env=serve_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert reply.status == 200, reply
    assert reply.json == json.loads(printed.stdout)
    assert {w["name"] for w in reply.json["workloads"]} == {"web", "api", "db"}


# ------------------------------------------------------------------------------- 4xx


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/api/namespaces/Shop/deactivate", None, "invalid namespace 'Shop'"),
        ("/api/namespaces/-x/deactivate", None, "invalid namespace '-x'"),
        ("/api/namespaces/shop/deactivate", b"dry_run=true", "the body is not JSON"),
        ("/api/namespaces/shop/deactivate", b"\xff\xfe{", "the body is not JSON"),
        ("/api/namespaces/shop/deactivate", b"[" * 20000, "the body is not JSON"),
        ("/api/namespaces/shop/deactivate", b"[true]", "the body must be a JSON object"),
        ("/api/namespaces/shop/deactivate", b'{"dry_run": 1}', "dry_run must be true or false"),
        (
            "/api/namespaces/shop/deactivate",
            b'{"dryrun": true}',
            'unknown key(s) in the body: "dryrun"',
        ),
        ("/api/namespaces/shop/deactivate?dry_run=true", None, "no query parameters"),
        ("/api/namespaces/shop/deactivate", b" " * (64 * 1024 + 1), "the body is over 64 KiB"),
    ],
)
def test_bad_input_is_400_and_changes_nothing(
    server: Served, cluster: ApiServer, path: str, body: bytes | None, says: str
) -> None:
    reply = server.request("POST", path, body)
    assert reply.status == 400, reply
    assert reply.json["success"] is False
    assert says in reply.json["message"]
    assert observe(cluster, "shop") == untouched(SPEC)


@pytest.mark.e2e
def test_a_chunked_body_over_64_kib_is_400(server: Served) -> None:
    chunks = (b'{"dry_run": true' + b" " * 1024 for _ in range(65))  # no Content-Length
    reply = server.request("POST", "/api/namespaces/shop/deactivate", chunks)
    assert reply.status == 400, reply
    assert "over 64 KiB" in reply.json["message"]


@pytest.mark.e2e
def test_what_waitress_refuses_itself_is_json_too(server: Served) -> None:
    # Content-Length says 2 MiB; a little over 1 MiB is sent, then the answer read (a client
    # still sending when the server closes would get a reset instead of the answer)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        head = b"POST /api/namespaces/shop/deactivate HTTP/1.1\r\nHost: x\r\n"
        raw.sendall(head + b"Content-Length: %d\r\n\r\n" % (2 * 1024 * 1024))
        raw.sendall(b" " * (1024 * 1024 + 1))
        huge = raw.makefile("rb").read().decode()
    assert huge.startswith("HTTP/1.1 400 Bad Request\r\n"), huge
    assert huge.endswith('{"success": false, "message": "the body is over 64 KiB"}\n'), huge
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"NOT A REQUEST\r\n\r\n")
        answer = raw.makefile("rb").read().decode()
    assert answer.startswith("HTTP/1.0 400 Bad Request\r\n"), answer
    assert answer.endswith('{"success": false, "message": "a malformed HTTP request"}\n')
    assert server.wait_for(" - - 400 0ms run=- caller=-"), server.stderr  # its access line


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("token", "header"),
    [(None, None), ("not-a-known-token-0123456789abcdef", None), (None, f"Basic {ADMIN}")],
)
def test_a_missing_or_unknown_token_is_401_with_www_authenticate(
    server: Served, token: str | None, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in (
        ("POST", "/api/namespaces/shop/deactivate"),
        ("GET", "/api/namespaces/shop"),
    ):
        reply = server.request(method, path, token=token, headers=headers)
        assert reply.status == 401, reply
        assert reply.headers["www-authenticate"].startswith("Bearer")
        assert reply.json["success"] is False


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("namespace", "token", "says"),
    [
        ("faulty", CI, "token:ci pipeline may not act on namespace faulty"),
        ("kube-system", ADMIN, "namespace kube-system is protected"),
        ("vault", ADMIN, 'namespace vault is protected (annotated nsscale/protected: "true")'),
    ],
)
def test_not_allowed_or_protected_is_403(
    server: Served, namespace: str, token: str, says: str
) -> None:
    for method, path in (
        ("POST", f"/api/namespaces/{namespace}/deactivate"),
        ("GET", f"/api/namespaces/{namespace}"),
    ):
        reply = server.request(method, path, token=token)
        assert reply.status == 403, reply
        assert says in reply.json["message"]


@pytest.mark.e2e
def test_the_token_file_globs_let_ci_into_preview_namespaces(server: Served) -> None:
    reply = server.request("POST", "/api/namespaces/preview-1/deactivate", b'{"dry_run": true}', CI)
    assert reply.status == 200, reply


@pytest.mark.e2e
def test_no_such_namespace_or_endpoint_is_404(server: Served) -> None:
    for method, path, says in (
        ("POST", "/api/namespaces/nowhere/deactivate", 'namespace "nowhere" not found'),
        ("GET", "/api/namespaces/nowhere", 'namespace "nowhere" not found'),
        ("GET", "/api/namespaces/shop/sleep", "no such endpoint"),
        ("POST", "/api//namespaces/shop/deactivate", "no such endpoint"),
        ("GET", "/nope", "no such endpoint"),  # `/` is the page (web.py)
    ):
        reply = server.request(method, path)
        assert reply.status == 404, (path, reply)
        assert says in reply.json["message"]


@pytest.mark.e2e
def test_a_wrong_method_is_405_with_allow(server: Served) -> None:
    for method, path, allowed in (
        ("GET", "/api/namespaces/shop/deactivate", "POST"),
        ("DELETE", "/api/namespaces/shop", "GET"),
        ("POST", "/healthz", "GET"),
        ("OPTIONS", "/api/namespaces/shop/activate", "POST"),
    ):
        reply = server.request(method, path)
        assert reply.status == 405, (method, path, reply)
        assert allowed in reply.headers["allow"]
        assert reply.json["success"] is False


# ------------------------------------------------------------------------------- 409, 500, 503


@pytest.mark.e2e
def test_two_requests_on_one_namespace_one_runs_the_other_is_409(
    server: Served, faults: ApiServer, home: Path
) -> None:
    held = faults.hang("PUT", "deployments", namespace="race", seconds=60)  # the first holds it
    thread, first = in_background(lambda: server.post("race"))
    assert wait_until(lambda: lease(faults, "race") is not None)

    second = server.post("race")
    held.release()
    thread.join(60)

    assert first[0].status == 200, first[0]
    assert second.status == 409, second
    holder = first[0].json["run_id"]
    message = second.json["message"]
    assert message.startswith(f"another nsscale run is working on race: `down` (run {holder})")
    assert message.endswith(" UTC, by token:admin"), message
    assert second.json["holder"]["run_id"] == holder
    assert (second.json["holder"]["operation"], second.json["holder"]["caller"]) == (
        "down",
        "token:admin",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", second.json["holder"]["started"])
    assert second.json["result"]["errors"] == [message]
    assert_names_nothing_of_the_server(second.text)
    assert observe(faults, "race") == scaled_down(SPEC)
    [refused] = audit_records(home, second.json["run_id"])  # audited, as the CLI's refusals
    assert (refused["outcome"], refused["caller"]) == ("failed", "token:admin")


@pytest.mark.e2e
def test_a_failed_run_is_500_with_rollback_info_and_the_namespace_as_it_was(
    server: Served, faults: ApiServer
) -> None:
    # after the deployments; the message names what an answer must not
    faults.fail("PUT", "statefulsets", "db", status=500, times=None, message=SERVER_DETAIL)
    reply = server.post("faulty")
    assert reply.status == 500, reply
    body = reply.json
    assert (body["success"], body["message"]) == (False, "Failed to deactivate namespace faulty")
    assert body["error"]
    assert any("statefulset/db" in e for e in body["error"])
    assert body["rollback_info"] == {"performed": True, "success_count": 2, "failed_count": 0}
    assert body["result"]["rollback_performed"] is True
    assert body["run_id"] == body["result"]["run_id"]
    assert observe(faults, "faulty") == untouched(SPEC)
    assert_names_nothing_of_the_server(reply.text)
    assert server.wait_for(f"run {body['run_id']} on faulty failed: ")  # the detail: the log
    assert "https://10.0.3.7:2379" in server.stderr


@pytest.mark.e2e
def test_a_status_that_cannot_be_read_is_500_naming_nothing_of_the_server(
    server: Served, faults: ApiServer
) -> None:
    faults.fail("GET", "deployments", status=500, times=None, message=SERVER_DETAIL)
    reply = server.request("GET", "/api/namespaces/faulty")
    assert reply.status == 500, reply
    assert reply.json["message"] == "Failed to read namespace faulty"
    assert reply.json["error"] == ["its workloads could not be read"]
    assert_names_nothing_of_the_server(reply.text)
    assert server.wait_for("Failed to read namespace faulty: ")
    assert "https://10.0.3.7:2379" in server.stderr


@pytest.mark.e2e
def test_past_max_runs_is_503_with_retry_after(server: Served, faults: ApiServer) -> None:
    slow = ("slow-a", "slow-b")  # the module server takes 2 runs at once
    held = [faults.hang("PUT", "deployments", namespace=ns, seconds=60) for ns in slow]
    running = [in_background(lambda ns=ns: server.post(ns)) for ns in slow]
    assert wait_until(lambda: all(lease(faults, ns) for ns in slow))

    busy = server.post("shop", dry_run=True)
    for fault in held:
        fault.release()
    assert busy.status == 503, busy
    assert busy.headers["retry-after"] == "5"
    assert "2 runs are in progress already" in busy.json["message"]
    for thread, out in running:
        thread.join(60)
        assert out[0].status == 200, out[0]
    assert server.post("shop", dry_run=True).status == 200  # slots given back


# ------------------------------------------------------------------------------- tokens


@pytest.mark.e2e
def test_the_token_never_shows_in_the_log_or_an_answer(server: Served) -> None:
    replies = [
        server.request("GET", "/api/namespaces/shop"),
        server.request("POST", "/api/namespaces/nowhere/activate", b"{}"),
        server.request("GET", "/api/namespaces/shop", token=ADMIN + "x"),
        server.request("POST", "/api/namespaces/Bad/activate", token=CI),
    ]
    assert server.wait_for("POST /api/namespaces/Bad/activate 400")  # every line is written
    for secret in (ADMIN, CI):
        assert secret not in server.stderr
        assert all(secret not in r.text and secret not in str(r.headers) for r in replies)


@pytest.mark.e2e
def test_the_token_file_is_read_again_when_it_changes(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    old, new = "old-token-0123456789abcdef01234567", "new-token-0123456789abcdef01234567"
    tokens = token_file(tmp_path / "tokens", f"{old} shop\n")
    served = Served(serve_env, "--token-file", str(tokens))
    try:
        assert served.request("GET", "/api/namespaces/shop", token=old).status == 200
        assert served.request("GET", "/api/namespaces/shop", token=new).status == 401

        token_file(tmp_path / "tokens", f"{new} sh*  # rotated\n{old} preview-*\n")
        assert served.request("GET", "/api/namespaces/shop", token=new).status == 200
        assert served.request("GET", "/api/namespaces/shop", token=old).status == 403
        assert served.wait_for("changed: 2 token(s) now")  # its log is read as it comes

        tokens.write_text(f"{new} Bad-Glob\n")  # a bad line: nobody gets in until it is fixed
        assert served.request("GET", "/api/namespaces/shop", token=new).status == 401
        assert served.wait_for("'Bad-Glob' is not a namespace glob")
        tokens.unlink()
        assert served.request("GET", "/api/namespaces/shop", token=new).status == 401
        token_file(tmp_path / "tokens", f"{new}\n")
        assert served.request("GET", "/api/namespaces/shop", token=new).status == 200
    finally:
        assert served.stop() == 0


def test_the_token_file_format() -> None:
    entries = parse_tokens(
        "# comment\n\n  tok-a  shop preview-*  # the ci\ntok-b\ntok-#c team-[ab]\n", "f"
    )
    assert [(e.globs, e.holder) for e in entries] == [
        (("shop", "preview-*"), "the ci"),
        ((), "line 4"),
        (("team-[ab]",), "line 5"),
    ]
    assert [e.may("preview-7") for e in entries] == [True, True, False]
    assert [e.may("team-b") for e in entries] == [False, True, True]
    with pytest.raises(TokenFileError, match="line 2: the same token as line 1"):
        parse_tokens("a x\na y\n", "f")


# ------------------------------------------------------------------------------- --kubernetes-auth


@pytest.mark.e2e
def test_kubernetes_auth_asks_the_cluster_who_and_whether_and_caches_it(
    serve_env: dict[str, str], faults: ApiServer, home: Path
) -> None:
    faults.add_token("alice-token-0123456789", "alice", ("team", "system:authenticated"))
    faults.forbid("update", "deployments", namespace="faulty", user="alice")
    served = Served(serve_env, "--kubernetes-auth")
    try:
        before = faults.request_count
        first = served.request(
            "POST", "/api/namespaces/kube-team/deactivate", token="alice-token-0123456789"
        )
        assert first.status == 200, first
        reviews = [r.resource for r in faults.requests[before:] if r.resource in DELEGATED_REVIEWS]
        # who (one TokenReview), then may they update each kind the plan writes (one each)
        assert reviews == ["tokenreviews", "subjectaccessreviews", "subjectaccessreviews"]
        [record] = audit_records(home, first.json["run_id"])
        assert record["caller"] == "alice"
        assert served.wait_for("caller=alice")

        before = faults.request_count  # within 10 s: both answers come from the cache
        again = served.request(
            "POST", "/api/namespaces/kube-team/activate", token="alice-token-0123456789"
        )
        assert again.status == 200, again
        assert not [r for r in faults.requests[before:] if r.resource == "tokenreviews"]

        denied = served.request(
            "POST", "/api/namespaces/faulty/deactivate", token="alice-token-0123456789"
        )
        assert denied.status == 403, denied
        assert denied.json["message"] == (
            "alice may not update apps/deployments in namespace faulty: nothing changed"
        )
        assert observe(faults, "faulty") == untouched(SPEC)
        unknown = served.request("GET", "/api/namespaces/shop", token="bob-token-0123456789")
        assert unknown.status == 401, unknown
        assert served.wait_for("GET /api/namespaces/shop 401")
        assert "bob-token" not in served.stderr
        assert "alice-token" not in served.stderr
    finally:
        assert served.stop() == 0


@pytest.mark.e2e
def test_kubernetes_auth_refuses_to_start_without_auth_delegator(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    apiserver.forbid("create", "tokenreviews")
    done = subprocess.run(
        [str(NSSCALE), "serve", "--listen", "127.0.0.1:0", "--kubernetes-auth"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "may not create tokenreviews.authentication.k8s.io" in done.stderr
    assert "system:auth-delegator" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------------------- start and stop


@pytest.mark.e2e
def test_sigterm_lets_the_run_in_flight_finish_then_exits_0(
    serve_env: dict[str, str], faults: ApiServer, home: Path
) -> None:
    served = Served(serve_env, "--token-file", str(token_file(home / "term-tokens", ADMIN)))
    held = faults.hang("PUT", "deployments", namespace="term", seconds=60)
    thread, out = in_background(lambda: served.post("term"))
    assert wait_until(lambda: lease(faults, "term") is not None)

    served.proc.send_signal(signal.SIGTERM)
    assert served.wait_for("SIGTERM: no new connections; finishing 1 request(s) in flight")

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", served.port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False

    assert wait_until(refused)  # while the run's write is held
    served.proc.send_signal(signal.SIGTERM)  # a second one does not cut it short either
    assert served.wait_for("still finishing 1 request(s)")
    assert served.proc.poll() is None
    held.release()
    thread.join(60)
    assert served.wait(60) == 0, served.stderr
    assert out[0].status == 200, out[0]
    assert observe(faults, "term") == scaled_down(SPEC)
    assert served.stderr.rstrip().endswith("nsscale serve: stopped")


PINNED_KUBECTL = str(Path(sys.executable).parent / "kubectl")


def run_cli(*args: str) -> Any:
    """`nsscale serve ARGS` in this process, for the start-ups that fail (one that succeeds
    would serve until a signal); the pinned kubectl unless ARGS name one."""
    kubectl = [] if "--kubectl" in args else ["--kubectl", PINNED_KUBECTL]
    return CliRunner().invoke(app, ["serve", *args, *kubectl])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "nsscale serve needs an auth mode: --token-file FILE or --kubernetes-auth"),
        (("--token-file", "t", "--kubernetes-auth"), "two auth modes: choose one"),
        (("--token-file", "/nonexistent/tokens"), "cannot read the token file /nonexistent/tokens"),
        (("--kubernetes-auth", "--listen", "8080"), "--listen '8080' is not HOST:PORT"),
        (("--kubernetes-auth", "--kubectl", "/nonexistent/kubectl"), "cannot run kubectl at"),
        (("--token-file", "t", "--token-audience", "x"), "--token-audience is for --kubernetes"),
        (("--kubernetes-auth", "--max-reviews", "0"), "--max-reviews"),
        (("--kubernetes-auth", "--max-connections", "0"), "--max-connections"),
    ],
)
def test_bad_start_up_options_are_exit_2(args: tuple[str, ...], says: str) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert "Traceback" not in result.output


def test_an_empty_or_bad_token_file_is_exit_2(tmp_path: Path) -> None:
    for text, says in (
        ("# nothing\n", "holds no token"),
        ("tok Shop\n", "is not a namespace glob"),
    ):
        result = run_cli("--token-file", str(token_file(tmp_path / "t", text)))
        assert result.exit_code == 2, result.output
        assert says in result.stderr


def test_a_port_in_use_is_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tokens = token_file(tmp_path / "t", ADMIN)
        result = run_cli("--token-file", str(tokens), "--listen", f"127.0.0.1:{port}")
    assert result.exit_code == 1, result.output
    assert f"error: cannot listen on 127.0.0.1:{port}: " in result.stderr


def test_without_the_extra_it_says_which_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flask", None)  # `import flask` fails, as if not installed
    with pytest.raises(Exception, match=r"needs flask, which is not installed"):
        require_extra()
    result = run_cli("--kubernetes-auth")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: nsscale serve needs flask, which is not installed: {EXTRA}\n"
    assert EXTRA == "pip install 'nsscale[serve]'"


@pytest.mark.e2e
def test_the_command_line_starts_without_loading_the_server() -> None:
    probe = (
        "import sys, nsscale.cli; "
        "print([m for m in sys.modules if m.startswith(('flask', 'waitress', 'nsscale.serve'))])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------------------- fuzz

SEGMENT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
# a name that passes reaches kubectl (a 404 costs 0.2 s): one in four; the rest is bad input
NOT_LABEL = SEGMENT.filter(lambda s: not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", s))
NAME = st.one_of(LABEL, NOT_LABEL, NOT_LABEL, NOT_LABEL).map(lambda n: quote(n, safe=""))
PATHS = st.one_of(
    st.builds(
        "/api/namespaces/{}/{}".format, NAME, st.sampled_from(["activate", "deactivate", "x", ""])
    ),
    st.builds("/api/namespaces/{}".format, NAME),
    st.lists(SEGMENT.map(lambda s: quote(s, safe="")), max_size=4).map(
        lambda parts: "/" + "/".join(parts)
    ),
    st.sampled_from(["/healthz", "/api", "/api/namespaces", "/api/namespaces/", "//healthz"]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
BODIES = st.one_of(
    st.just(b'{"dry_run": true}'),
    st.binary(max_size=64),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=2).map(
        lambda extra: json.dumps({"dry_run": True, **extra}).encode()
    ),
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
ACTIONS = st.sampled_from(["activate", "deactivate"])
ENDPOINTS = st.one_of(  # the endpoints as meant, with what may be wrong in their name or body
    st.tuples(st.just("POST"), st.builds("/api/namespaces/{}/{}".format, NAME, ACTIONS)),
    st.tuples(st.just("GET"), st.builds("/api/namespaces/{}".format, NAME)),
)
REQUESTS = st.one_of(ENDPOINTS, st.tuples(METHODS, PATHS))
TOKENS = st.sampled_from([ADMIN, ADMIN, CI, None, "x"])
EXPECTED = {200, 400, 401, 403, 404, 405}
# the page (web.py): HTML; all else JSON. Werkzeug's router reads leading slashes as one (`//` is
# `/`, as `//api/...` is `/api/...`), whatever merge_slashes says of the others
PAGE_PATH = re.compile(r"/+(namespaces/[^/]+)?")


@pytest.mark.e2e
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=REQUESTS, body=BODIES, token=TOKENS)
def test_fuzzed_paths_and_bodies_never_get_a_500_or_a_traceback(
    server: Served, request: tuple[str, str], body: bytes, token: str | None
) -> None:
    method, path = request
    reply = server.request(method, path, body, token)
    event(f"status {reply.status}")
    assert reply.status in EXPECTED, reply
    if reply.status == 200 and reply.headers["content-type"].startswith("text/html"):
        assert method in ("GET", "HEAD"), reply
        assert PAGE_PATH.fullmatch(path), reply
    elif method != "HEAD":
        answer = reply.json
        assert answer["success"] is (reply.status == 200), reply
        assert reply.status == 200 or isinstance(answer["message"], str)
    assert "Traceback" not in reply.text
    assert "Traceback" not in server.stderr
    assert "internal error on" not in server.stderr
