"""`nsscale serve`'s fleet endpoints: `GET /api/namespaces` (the namespaces the caller may see,
each with its state, schedule, decision, week strip, hold and last run), `{"hold": "4h"}` on
activate, and `GET /api/namespaces/<ns>/history`. Real `nsscale serve` processes, the real
kubectl and the local API server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nsscale.kube.objects import LAST_RUN, PAUSE_UNTIL, Namespace, Workload
from nsscale.schedule import parse_schedule
from nsscale.schedule.decide import Policy
from nsscale.schedule.view import next_change, week
from nsscale.serve.fleet import namespace_entry
from tests.apiserver.rbac import CLUSTER_SCOPE
from tests.apiserver.server import ApiServer
from tests.dynamodb import Dynamo, aws_env, closed_port_url, dynamodb, moto_endpoint
from tests.faultkit import nsscale_env, observe, scaled_down, seed, untouched
from tests.test_serve import ADMIN, SPEC, Reply, Served, token_file

__all__ = ["aws_env", "dynamodb", "moto_endpoint"]  # fixtures, used by name

TWO = "two-0123456789abcdef0123456789abcdef"  # a token whose globs admit fleet-asleep, fleet-awake
NIGHTS = "Mon-Fri 22:00-06:00 Europe/Madrid"
LAST = {
    "run_id": "r-elsewhere",
    "operation": "down",
    "outcome": "success",
    "exit_code": 0,
    "at": "2026-12-01T21:00:00Z",
    "by": "the CronJob",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet")


@pytest.fixture(scope="module")
def cluster() -> Iterator[ApiServer]:
    with ApiServer() as server:
        for system in ("kube-system", "kube-public", "kube-node-lease"):
            if server.get_object("namespaces", "", system) is None:
                seed(server, system, SPEC)
        seed(server, "fleet-awake", SPEC)
        seed(server, "fleet-asleep", {key: 0 for key in SPEC})
        seed(server, "fleet-partly", {**SPEC, ("deployment", "api"): 0})
        server.add_namespace("fleet-empty")
        seed(server, "fleet-nights", SPEC)
        server.add_namespace(
            "fleet-nights", annotations={"nsscale/downtime": NIGHTS, "nsscale/grace-period": "0"}
        )
        seed(server, "fleet-never", SPEC)
        server.add_namespace(
            "fleet-never",
            annotations={
                "nsscale/uptime": "never",
                "nsscale/grace-period": "0",  # its workloads are new: no grace period
                LAST_RUN: json.dumps(LAST),
            },
        )
        seed(server, "fleet-vault", SPEC)
        server.add_namespace("fleet-vault", annotations={"nsscale/protected": "true"})
        server.add_namespace(
            "fleet-bad",
            annotations={"nsscale/uptime": "Mon-Fri 25:00-26:00", PAUSE_UNTIL: "tomorrow"},
        )
        seed(server, "hold-bad", {key: 0 for key in SPEC})
        yield server


@pytest.fixture(scope="module")
def serve_env(cluster: ApiServer, home: Path, kubectl_bin: Path) -> dict[str, str]:
    kubeconfig = cluster.write_kubeconfig(home / "kubeconfig")
    return nsscale_env(kubeconfig, kubectl_bin, XDG_STATE_HOME=str(home / "state"))


@pytest.fixture(scope="module")
def server(serve_env: dict[str, str], home: Path) -> Iterator[Served]:
    tokens = token_file(
        home / "tokens", f"{ADMIN}  # admin\n{TWO} fleet-asleep fleet-aw*  # two of them\n"
    )
    served = Served(serve_env, "--token-file", str(tokens))
    yield served
    assert served.stop() == 0, served.stderr
    assert "Traceback" not in served.stderr


def fleet(served: Served, token: str = ADMIN) -> dict[str, Any]:
    reply = served.request("GET", "/api/namespaces", token=token)
    assert reply.status == 200, reply
    body: dict[str, Any] = reply.json
    assert body["success"] is True
    return body


def entries(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["namespace"]: e for e in body["namespaces"]}


def annotations_of(cluster: ApiServer, namespace: str) -> dict[str, str]:
    found = cluster.get_object("namespaces", "", namespace)
    assert found is not None, namespace
    annotations: dict[str, str] = found["metadata"].get("annotations", {})
    return annotations


def post(served: Served, namespace: str, action: str, body: Any) -> Reply:
    return served.request("POST", f"/api/namespaces/{namespace}/{action}", json.dumps(body))


# ------------------------------------------------------------------------ GET /api/namespaces


@pytest.mark.e2e
def test_the_fleet_shows_each_namespace_state_and_never_the_clusters_own(server: Served) -> None:
    found = entries(fleet(server))

    states = {ns: e["state"] for ns, e in found.items() if ns.startswith("fleet-")}
    assert states == {
        "fleet-awake": "awake",
        "fleet-asleep": "asleep",
        "fleet-partly": "partly",
        "fleet-empty": "empty",
        "fleet-nights": "awake",
        "fleet-never": "awake",
        "fleet-vault": "awake",
        "fleet-bad": "empty",
    }
    assert found["fleet-partly"]["workloads"] == {"up": 2, "total": 3}
    assert found["fleet-empty"]["workloads"] == {"up": 0, "total": 0}
    assert not {"kube-system", "kube-public", "kube-node-lease"} & set(found)


@pytest.mark.e2e
def test_each_namespace_says_what_reconcile_would_do_now(server: Served) -> None:
    found = entries(fleet(server))

    never = found["fleet-never"]
    assert never == {
        "namespace": "fleet-never",
        "state": "awake",
        "workloads": {"up": 3, "total": 3},
        "schedule": "never",
        "schedule_kind": "uptime",
        "schedule_source": "annotation",
        "timezone": "UTC",
        "desired": "down",
        "action": "down",
        "reason": "outside its uptime never: 3 to bring down",
        "next_change": None,
        "pause_until": None,
        "protected": False,
        "week": never["week"],
        "last_run": LAST,
    }
    assert never["week"]["up"] == ["0" * 48] * 7
    unscheduled = found["fleet-awake"]
    assert (unscheduled["schedule"], unscheduled["action"]) == (None, "skipped")
    assert (unscheduled["reason"], unscheduled["week"], unscheduled["desired"]) == (
        "no schedule",
        None,
        None,
    )
    vault = found["fleet-vault"]
    assert (vault["protected"], vault["action"]) == (True, "skipped")
    assert vault["reason"].startswith("protected (annotated nsscale/protected")
    bad = found["fleet-bad"]
    assert (bad["action"], bad["schedule"], bad["pause_until"]) == ("error", None, None)
    assert "nsscale/uptime cannot be read" in bad["reason"]
    # said in the answer, not in the server's log at each look (a page polls)
    assert server.request("GET", "/api/namespaces/fleet-empty").status == 200
    assert server.wait_for("/api/namespaces/fleet-empty")
    assert "fleet-bad" not in server.stderr


@pytest.mark.e2e
def test_the_week_strip_and_next_change_follow_the_schedule_in_its_zone(server: Served) -> None:
    body = fleet(server)
    nights = entries(body)["fleet-nights"]
    at = datetime.fromisoformat(body["at"])
    schedule = parse_schedule(NIGHTS, "UTC")
    madrid = ZoneInfo("Europe/Madrid")

    assert nights["week"] == week(schedule, at, madrid, inside_is_up=False).to_dict()
    # a downtime crossing midnight: late Monday and early Tuesday are down
    assert nights["week"]["up"][0][44:] == "0000"
    assert nights["week"]["up"][1][:12] == "0" * 12
    assert nights["week"]["up"][1][12:44] == "1" * 32
    assert nights["week"]["up"][6] == "1" * 48  # a Sunday
    change = next_change(schedule, at)
    assert change is not None
    assert datetime.fromisoformat(nights["next_change"]) == change
    assert nights["next_change"].endswith(("+01:00", "+02:00"))  # shown in the schedule's zone
    assert (nights["schedule_kind"], nights["timezone"]) == ("downtime", "Europe/Madrid")
    inside = schedule.contains(at)
    assert nights["desired"] == ("down" if inside else "up")
    assert nights["action"] == ("down" if inside else "none")


@pytest.mark.e2e
def test_a_token_sees_only_the_namespaces_its_globs_admit(server: Served) -> None:
    assert set(entries(fleet(server, TWO))) == {"fleet-asleep", "fleet-awake"}


@pytest.mark.e2e
def test_the_fleet_needs_a_token(server: Served) -> None:
    reply = server.request("GET", "/api/namespaces", token=None)
    assert reply.status == 401, reply


def test_an_entry_names_where_its_schedule_comes_from_and_its_zone() -> None:
    at = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)  # a Wednesday, 13:00 in Madrid
    policy = Policy(uptime=parse_schedule("Mon-Fri 08:00-18:00", "Europe/Madrid"))
    workloads = [workload("web", 2), workload("db", 0)]

    by_option = namespace_entry(Namespace("a"), workloads, policy, at)
    migrated = Namespace("b", annotations={"downscaler/downtime": "Sat-Sun 00:00-24:00 UTC"})
    by_downscaler = namespace_entry(migrated, workloads, policy, at)
    holidays = Namespace(
        "c", annotations={"nsscale/downtime": "2026-12-24T00:00:00+01:00-2027-01-02T00:00:00+01:00"}
    )
    by_period = namespace_entry(holidays, workloads, Policy(timezone="America/New_York"), at)

    assert (by_option["schedule_source"], by_option["schedule_kind"]) == ("option", "uptime")
    assert (by_option["timezone"], by_option["desired"]) == ("Europe/Madrid", "up")
    assert by_option["next_change"] == "2026-12-09T18:00:00+01:00"
    assert (by_option["state"], by_option["workloads"]) == ("partly", {"up": 1, "total": 2})
    assert by_downscaler["schedule_source"] == "kube-downscaler annotation"
    assert (by_downscaler["schedule_kind"], by_downscaler["timezone"]) == ("downtime", "UTC")
    assert by_downscaler["next_change"] == "2026-12-12T00:00:00Z"
    assert by_downscaler["week"]["up"][5:] == ["0" * 48] * 2
    assert (by_period["timezone"], by_period["week"]["zone"]) == ("America/New_York",) * 2
    assert by_period["next_change"] is None  # 15 days ahead: past the horizon


def workload(name: str, replicas: int) -> Workload:
    manifest = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": "a", "resourceVersion": "1"},
        "spec": {"replicas": replicas},
    }
    return Workload.from_manifest(manifest)


# ------------------------------------------------------------------------ --kubernetes-auth


@pytest.mark.e2e
def test_with_kubernetes_auth_a_caller_sees_what_rbac_lets_them_get(
    serve_env: dict[str, str], cluster: ApiServer
) -> None:
    cluster.add_token("gina-token-0123456789abcdef", "gina")
    cluster.add_token("hugo-token-0123456789abcdef", "hugo")
    cluster.forbid("list", "namespaces", namespace=CLUSTER_SCOPE, user="gina")
    names = [n["metadata"]["name"] for n in cluster.objects("namespaces")]
    for name in names:
        if name != "fleet-partly":
            cluster.forbid("get", "namespaces", namespace=name, user="gina")
    cluster.forbid("list", "deployments", namespace="fleet-partly", user="gina")
    served = Served(serve_env, "--kubernetes-auth")
    try:
        gina = fleet(served, "gina-token-0123456789abcdef")
        hugo = fleet(served, "hugo-token-0123456789abcdef")  # may list every namespace
        # her history of it needs what its status needs
        history = "/api/namespaces/fleet-partly/history"
        denied = served.request("GET", history, token="gina-token-0123456789abcdef")
        allowed = served.request("GET", history, token="hugo-token-0123456789abcdef")
    finally:
        assert served.stop() == 0, served.stderr
        cluster.allow_all()
    assert list(entries(gina)) == ["fleet-partly"]
    assert entries(gina)["fleet-partly"]["state"] == "partly"
    assert set(entries(hugo)) == set(names) - {"kube-system", "kube-public", "kube-node-lease"}
    assert denied.status == 403, denied
    assert denied.json["message"] == (
        "gina may not list apps/deployments in namespace fleet-partly"
    )
    assert allowed.status == 200, allowed


# ------------------------------------------------------------------------ {"hold": "4h"}


@pytest.mark.e2e
def test_activate_with_a_hold_wakes_it_and_keeps_reconcile_off(
    server: Served, cluster: ApiServer
) -> None:
    seed(cluster, "held", SPEC)
    cluster.add_namespace("held", annotations={"nsscale/uptime": "never"})
    assert post(server, "held", "deactivate", {}).status == 200
    before = datetime.now(UTC)

    reply = post(server, "held", "activate", {"hold": "4h"})

    assert reply.status == 200, reply
    assert observe(cluster, "held") == untouched(SPEC)
    until = annotations_of(cluster, "held")[PAUSE_UNTIL]
    held = datetime.fromisoformat(until)
    assert before + timedelta(hours=4) - timedelta(seconds=2) <= held
    assert held <= datetime.now(UTC) + timedelta(hours=4)
    entry = entries(fleet(server))["held"]
    assert (entry["state"], entry["action"], entry["desired"]) == ("awake", "paused", "down")
    assert datetime.fromisoformat(entry["pause_until"]) == held


@pytest.mark.e2e
def test_a_dry_run_with_a_hold_holds_nothing(server: Served, cluster: ApiServer) -> None:
    seed(cluster, "held-dry", {key: 0 for key in SPEC})

    reply = post(server, "held-dry", "activate", {"hold": "90m", "dry_run": True})

    assert reply.status == 200, reply
    assert PAUSE_UNTIL not in annotations_of(cluster, "held-dry")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("action", "body", "says"),
    [
        ("deactivate", {"hold": "4h"}, "hold is for activate only"),
        ("activate", {"hold": "4 hours"}, "invalid hold: '4 hours' is not a duration"),
        ("activate", {"hold": "4d"}, "invalid hold: '4d' is not a duration"),
        ("activate", {"hold": 4}, "hold must be a duration as text"),
        ("activate", {"hold": "800h"}, "invalid hold: '800h' is over 30 days"),
    ],
)
def test_a_bad_hold_is_400_and_changes_nothing(
    server: Served, cluster: ApiServer, action: str, body: Any, says: str
) -> None:
    reply = post(server, "hold-bad", action, body)

    assert reply.status == 400, reply
    assert says in reply.json["message"]
    assert observe(cluster, "hold-bad") == untouched({key: 0 for key in SPEC})
    assert PAUSE_UNTIL not in annotations_of(cluster, "hold-bad")


# ------------------------------------------------------------------------ history


@pytest.mark.e2e
def test_history_lists_the_runs_newest_first_and_names_nothing_of_the_server(
    server: Served, cluster: ApiServer
) -> None:
    seed(cluster, "storied", SPEC)
    down = post(server, "storied", "deactivate", {})
    assert down.status == 200, down
    assert observe(cluster, "storied") == scaled_down(SPEC)
    up = post(server, "storied", "activate", {})
    assert up.status == 200, up

    reply = server.request("GET", "/api/namespaces/storied/history")

    assert reply.status == 200, reply
    body = reply.json
    assert (body["success"], body["namespace"], body["source"]) == (True, "storied", "file")
    runs = body["runs"]
    assert [(r["run_id"], r["operation"]) for r in runs] == [
        (up.json["run_id"], "up"),
        (down.json["run_id"], "down"),
    ]
    assert {r["by"] for r in runs} == {"token:admin"}
    assert {r["outcome"] for r in runs} == {"success"}
    for key in ("host", "user", "kubectl_user", "pk", "sk"):
        assert all(key not in r for r in runs), key


@pytest.mark.e2e
def test_history_without_the_run_in_the_audit_shows_the_namespace_last_run(
    server: Served,
) -> None:
    reply = server.request("GET", "/api/namespaces/fleet-never/history")

    assert reply.status == 200, reply
    body = reply.json
    assert body["runs"] == [LAST | {"from": LAST_RUN}]
    assert LAST_RUN in body["note"]


@pytest.mark.e2e
def test_history_is_refused_as_a_status_would_be(server: Served) -> None:
    assert server.request("GET", "/api/namespaces/fleet-never/history", token=TWO).status == 403
    assert server.request("GET", "/api/namespaces/kube-system/history").status == 403
    assert server.request("GET", "/api/namespaces/nowhere/history").status == 404
    assert server.request("POST", "/api/namespaces/fleet-never/history").status == 405


@pytest.mark.e2e
def test_the_fleet_is_one_read_and_an_absent_kind_is_not_read_again_at_once(
    server: Served, cluster: ApiServer
) -> None:
    fleet(server)  # Argo Rollouts are not installed here: found so, and remembered a while
    before = cluster.request_count

    fleet(server)

    asked = sorted(str(r.resource) for r in cluster.requests[before:])
    assert asked == ["deployments", "namespaces", "statefulsets"]


def with_aws(env: dict[str, str], **override: str) -> dict[str, str]:
    """The server's environment with the test's AWS settings (aws_env put them in ours)."""
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    return {**env, **aws, **override}


@pytest.mark.e2e
def test_history_comes_from_dynamodb_when_the_server_has_a_table(
    serve_env: dict[str, str], cluster: ApiServer, home: Path, dynamodb: Dynamo
) -> None:
    seed(cluster, "storied-in-dynamodb", SPEC)
    tokens = token_file(home / "tokens-dynamodb", f"{ADMIN}  # admin\n")
    env = with_aws(serve_env)
    served = Served(env, "--token-file", str(tokens), "--audit-table", dynamodb.table)
    try:
        down = post(served, "storied-in-dynamodb", "deactivate", {})
        up = post(served, "storied-in-dynamodb", "activate", {})
        reply = served.request("GET", "/api/namespaces/storied-in-dynamodb/history")
    finally:
        assert served.stop() == 0, served.stderr
    assert (down.status, up.status) == (200, 200), (down, up)
    assert reply.status == 200, reply
    body = reply.json
    assert (body["source"], body["note"]) == ("dynamodb", None)
    assert [r["run_id"] for r in body["runs"]] == [up.json["run_id"], down.json["run_id"]]


@pytest.mark.e2e
def test_history_with_an_audit_that_cannot_be_read_still_shows_the_last_run(
    serve_env: dict[str, str], home: Path, aws_env: str
) -> None:
    tokens = token_file(home / "tokens-no-audit", f"{ADMIN}  # admin\n")
    env = with_aws(serve_env, AWS_ENDPOINT_URL_DYNAMODB=closed_port_url())
    served = Served(env, "--token-file", str(tokens), "--audit-table", "nowhere")
    try:
        reply = served.request("GET", "/api/namespaces/fleet-never/history")
    finally:
        assert served.stop() == 0, served.stderr
    assert reply.status == 200, reply
    body = reply.json
    assert body["runs"] == [LAST | {"from": LAST_RUN}]
    assert body["note"] == "the audit could not be read now: only the last run is shown"
    assert "127.0.0.1" not in reply.text


@pytest.mark.e2e
def test_the_fleet_decides_by_the_servers_reconcile_options(
    serve_env: dict[str, str], cluster: ApiServer, home: Path
) -> None:
    seed(cluster, "optioned", SPEC)  # new workloads: in their grace period, unless it is 0
    tokens = token_file(home / "tokens-options", f"{ADMIN}  # admin\n")
    loop = ["--reconcile-every", "24h", "--namespace-selector", "nobody=here"]  # acts on none
    rules = ["--uptime", "never", "--grace-period", "0", "--exclude", "api"]
    served = Served(serve_env, "--token-file", str(tokens), *loop, *rules)
    try:
        found = entries(fleet(served))
    finally:
        assert served.stop() == 0, served.stderr
    optioned = found["optioned"]
    assert (optioned["schedule"], optioned["schedule_source"]) == ("never", "option")
    assert (optioned["action"], optioned["desired"]) == ("down", "down")
    assert optioned["reason"] == "outside its uptime never: 2 to bring down"  # api excluded
    assert observe(cluster, "optioned") == untouched(SPEC)
