"""`nsscale serve --reconcile-every`: the reconcile loop inside real `nsscale serve` processes,
with the real kubectl against the local API server. The loop brings a namespace down when its
schedule says so (audited as a reconcile run); of two servers sharing the leader Lease exactly
one reconciles, and when it is killed the other takes over within the lease's duration; SIGTERM
stops a round in flight (rolled back) and releases the Lease; /readyz follows the API server;
GET /api/scheduler says what the loop did and will do."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nsscale.kube.leader import LEADER_LEASE
from nsscale.serve.leadership import lease_duration_s
from tests.apiserver.server import ApiServer
from tests.faultkit import nsscale_env, observe, run, scaled_down, seed, untouched
from tests.faultkit import wait_until as _wait_until
from tests.test_serve import ADMIN, SPEC, Served, token_file

pytestmark = pytest.mark.e2e

HOME_NS = "nsscale"  # the servers' own namespace (POD_NAMESPACE): where the Lease lives
SCHEDULED = {"nsscale/scheduled": "true"}
ALWAYS_DOWN = {"nsscale/uptime": "never"}
EVERY = "2s"
LEASE_S = lease_duration_s(timedelta(seconds=2))
LOOP = (
    "--reconcile-every",
    EVERY,
    "--namespace-selector",
    "nsscale/scheduled=true",
    "--grace-period",
    "0",
)


def wait_until(predicate: Any, timeout: float = 30) -> bool:
    return _wait_until(predicate, timeout, 0.05)


@pytest.fixture
def cluster() -> Iterator[ApiServer]:
    with ApiServer() as server:
        server.add_namespace(HOME_NS)
        yield server


def serve_env(cluster: ApiServer, home: Path, kubectl_bin: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    kubeconfig = cluster.write_kubeconfig(home / "kubeconfig")
    return nsscale_env(
        kubeconfig, kubectl_bin, XDG_STATE_HOME=str(home / "state"), POD_NAMESPACE=HOME_NS
    )


def serving(env: dict[str, str], home: Path, *args: str) -> Served:
    tokens = token_file(home / "tokens", f"{ADMIN}\n")
    return Served(env, "--token-file", str(tokens), *args)


def holder(cluster: ApiServer) -> str | None:
    found = cluster.get_object("leases", HOME_NS, LEADER_LEASE)
    return found["spec"].get("holderIdentity") if found else None


def identity(served: Served) -> str:
    return f"_{served.proc.pid}"


def runs(home: Path, namespace: str) -> list[dict[str, Any]]:
    """The finished runs in a server's audit file that changed `namespace`."""
    path = home / "state" / "nsscale" / "audit.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [
        r
        for r in map(json.loads, lines)
        if r.get("event") == "finished" and r.get("namespace") == namespace
    ]


def test_the_loop_brings_down_a_namespace_its_schedule_wants_down(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path
) -> None:
    seed(cluster, "night", SPEC)
    cluster.add_namespace("night", labels=SCHEDULED, annotations=ALWAYS_DOWN)
    seed(cluster, "day", SPEC)  # up always: nothing to do
    cluster.add_namespace("day", labels=SCHEDULED, annotations={"nsscale/uptime": "always"})
    env = serve_env(cluster, tmp_path, kubectl_bin)
    served = serving(env, tmp_path, *LOOP)
    try:
        assert wait_until(lambda: observe(cluster, "night") == scaled_down(SPEC)), served.stderr
        assert observe(cluster, "day") == untouched(SPEC)
        assert wait_until(lambda: runs(tmp_path, "night"))  # written once the run is over
        [record] = runs(tmp_path, "night")
        assert record["operation"] == "down"
        assert record["outcome"] == "success"
        assert runs(tmp_path, "day") == []
        assert str(holder(cluster)).endswith(identity(served))
        assert wait_until(lambda: served.request("GET", "/api/scheduler").json["last"])
        document = served.request("GET", "/api/scheduler").json
        assert document["enabled"] is True
        assert document["interval_s"] == 2.0
        assert document["leader"] is True
        assert str(document["holder"]).endswith(identity(served))
        last = document["last"]
        assert last["exit_code"] == 0
        assert last["errors"] == []
        assert last["at"].endswith("Z")
        assert document["next"] is not None
        assert document["next"] >= last["at"]
        # the first round acted on night; the later ones, with nothing to do, on nothing
        assert wait_until(
            lambda: served.request("GET", "/api/scheduler").json["last"]["at"] > last["at"]
        )
        assert served.request("GET", "/api/scheduler").json["last"]["namespaces_acted_on"] == []
        assert "reconcile round: exit 0" in served.stderr
        assert "acted on night" in served.stderr
        assert len(runs(tmp_path, "night")) == 1  # never twice
    finally:
        assert served.stop() == 0, served.stderr
    assert "Traceback" not in served.stderr


def test_api_scheduler_wants_a_caller_and_says_when_there_is_no_loop(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path
) -> None:
    env = serve_env(cluster, tmp_path, kubectl_bin)
    served = serving(env, tmp_path)
    try:
        assert served.request("GET", "/api/scheduler", token=None).status == 401
        assert served.request("GET", "/api/scheduler", token="nobody-knows-me").status == 401
        reply = served.request("GET", "/api/scheduler")
        assert reply.status == 200, reply
        assert reply.json == {
            "enabled": False,
            "interval_s": None,
            "leader": False,
            "holder": None,
            "last": None,
            "next": None,
        }
        assert served.request("GET", "/api/scheduler?x=1").status == 400
        assert served.request("POST", "/api/scheduler").status == 405
    finally:
        assert served.stop() == 0, served.stderr
    assert cluster.get_object("leases", HOME_NS, LEADER_LEASE) is None  # no loop, no Lease


def test_without_pod_namespace_the_lease_is_in_the_kubeconfig_context_namespace(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path
) -> None:
    seed(cluster, "night", {("deployment", "web"): 0})
    cluster.add_namespace("team-home")
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace="team-home")
    env = nsscale_env(kubeconfig, kubectl_bin, XDG_STATE_HOME=str(tmp_path / "state"))
    assert "POD_NAMESPACE" not in env
    served = serving(env, tmp_path, "--reconcile-every", "1s", "-n", "night")
    try:
        assert wait_until(lambda: cluster.get_object("leases", "team-home", LEADER_LEASE)), (
            served.stderr
        )
        assert "holding the Lease nsscale-scheduler in team-home" in served.stderr
    finally:
        assert served.stop() == 0, served.stderr
    assert cluster.get_object("leases", HOME_NS, LEADER_LEASE) is None


@pytest.mark.timing
def test_of_two_servers_one_reconciles_and_the_other_takes_over_when_it_dies(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path
) -> None:
    seed(cluster, "night", SPEC)
    cluster.add_namespace("night", labels=SCHEDULED, annotations=ALWAYS_DOWN)
    homes = [tmp_path / "a", tmp_path / "b"]
    servers = [serving(serve_env(cluster, h, kubectl_bin), h, *LOOP) for h in homes]
    try:
        assert wait_until(lambda: holder(cluster) is not None), servers[0].stderr
        assert wait_until(lambda: observe(cluster, "night") == scaled_down(SPEC))
        [leader] = [s for s in servers if str(holder(cluster)).endswith(identity(s))]
        other = servers[1 - servers.index(leader)]
        leader_home, other_home = homes[servers.index(leader)], homes[servers.index(other)]
        time.sleep(3 * 2)  # three more intervals: the other never reconciles meanwhile
        assert str(holder(cluster)).endswith(identity(leader))
        assert len(runs(leader_home, "night")) == 1
        assert runs(other_home, "night") == []
        seen = other.request("GET", "/api/scheduler").json
        assert (seen["leader"], seen["last"], seen["next"]) == (False, None, None)
        assert str(seen["holder"]).endswith(identity(leader))
        assert leader.request("GET", "/api/scheduler").json["leader"] is True

        leader.proc.kill()  # SIGKILL: no release; the Lease must expire
        killed = time.monotonic()
        leader.wait()
        assert wait_until(lambda: str(holder(cluster)).endswith(identity(other)), 3 * LEASE_S)
        took = time.monotonic() - killed
        # the lease's duration, one retry, and slack for kubectl on a loaded machine
        assert took < 2 * LEASE_S, took
        cluster.add_deployment("night", "late", replicas=2)  # deployed since: to bring down
        assert wait_until(lambda: len(runs(other_home, "night")) == 1), other.stderr
        assert other.request("GET", "/api/scheduler").json["leader"] is True
    finally:
        for served in servers:
            if served.proc.poll() is None:
                assert served.stop() == 0, served.stderr
    for served in servers:
        assert "Traceback" not in served.stderr


@pytest.mark.timing
def test_sigterm_releases_the_lease_and_the_other_takes_over_at_once(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path
) -> None:
    seed(cluster, "night", {("deployment", "web"): 0})  # nothing to do, ever
    cluster.add_namespace("night", labels=SCHEDULED, annotations=ALWAYS_DOWN)
    homes = [tmp_path / "a", tmp_path / "b"]
    first = serving(serve_env(cluster, homes[0], kubectl_bin), homes[0], *LOOP)
    second = None
    try:
        assert wait_until(lambda: str(holder(cluster)).endswith(identity(first)))
        second = serving(serve_env(cluster, homes[1], kubectl_bin), homes[1], *LOOP)
        time.sleep(LEASE_S)  # the second sees the first renew: alive
        assert str(holder(cluster)).endswith(identity(first))
        assert first.stop() == 0, first.stderr
        stopped = time.monotonic()
        assert "nsscale serve: released the leader Lease nsscale-scheduler" in first.stderr
        # released, not left to expire (the second could not take it for seconds yet)
        assert not str(holder(cluster)).endswith(identity(first))
        assert wait_until(lambda: str(holder(cluster)).endswith(identity(second)), 3 * LEASE_S)
        took = time.monotonic() - stopped
        assert took < LEASE_S, took  # at its next read, before the lease would have expired
        assert second.wait_for("nsscale serve: took the leader Lease nsscale-scheduler")
    finally:
        for served in (first, second):
            if served is not None and served.proc.poll() is None:
                assert served.stop() == 0, served.stderr


@pytest.mark.timing
def test_sigterm_rolls_back_the_round_in_flight(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path
) -> None:
    seed(cluster, "night", SPEC)
    cluster.add_namespace("night", labels=SCHEDULED, annotations=ALWAYS_DOWN)
    # every workload write held 2 s, one at a time: the round is in flight for 6 s
    for resource in ("deployments", "statefulsets"):
        cluster.hang("PUT", resource, namespace="night", seconds=2, times=None)
    env = serve_env(cluster, tmp_path, kubectl_bin)
    served = serving(env, tmp_path, *LOOP, "--parallel", "1", "--batch-size", "1")
    try:
        assert wait_until(
            lambda: any(replicas == 0 for replicas, _, _ in observe(cluster, "night").values())
        ), served.stderr
    finally:
        assert served.stop() == 0, served.stderr
    assert observe(cluster, "night") == untouched(SPEC), served.stderr
    [record] = runs(tmp_path, "night")
    assert record["outcome"] == "rolled_back", record
    assert not holder(cluster)  # released once the round had rolled back


@pytest.mark.timing
def test_readyz_is_503_until_the_api_server_answers(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path
) -> None:
    env = serve_env(cluster, tmp_path, kubectl_bin)
    kubeconfig = Path(env["KUBECONFIG"])
    reachable = kubeconfig.read_text()
    kubeconfig.write_text(reachable.replace(cluster.url, "http://127.0.0.1:9"))  # closed port
    served = serving(env, tmp_path)
    try:
        assert served.request("GET", "/healthz", token=None).status == 200
        reply = served.request("GET", "/readyz", token=None)
        assert reply.status == 503, reply
        assert reply.json["success"] is False
        kubeconfig.write_text(reachable)
        reply = served.request("GET", "/readyz", token=None)
        assert reply.status == 200, reply
    finally:
        assert served.stop() == 0, served.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--reconcile-every", "5m"), "--reconcile-every needs the namespaces"),
        (("-n", "shop"), "choose what --reconcile-every reconciles"),
        (("--reconcile-every", "0.5s", "-n", "shop"), "under a second"),
        (("--reconcile-every", "soon", "-n", "shop"), "is not a duration"),
        (("--reconcile-every", "5m", "-n", "shop", "--uptime", "Mon-Fri 25:00-26:00"), "--uptime"),
    ],
)
def test_bad_loop_options_stop_the_server_before_it_starts(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path, args: tuple[str, ...], said: str
) -> None:
    env = serve_env(cluster, tmp_path, kubectl_bin)
    tokens = token_file(tmp_path / "tokens", f"{ADMIN}\n")
    done = run(env, "serve", "--listen", "127.0.0.1:0", "--token-file", str(tokens), *args)
    assert done.code == 2, str(done)
    assert said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
