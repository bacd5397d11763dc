"""`nsscale serve --kubernetes-auth`: nobody acts beyond their rights. The real server, the real
kubectl and the local API server, whose RBAC answers each SubjectAccessReview per user and
kind: the caller must be allowed every write a run makes (in the namespace each object lives
in, a GitOps owner's own included) and every read a status shows; the token must be minted for
the audiences asked; the reviews in flight are bounded, an unknown token remembered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nsscale.engine.plan import Change, Operation, Plan
from nsscale.kube.objects import Kind, State, Workload
from nsscale.serve.auth import Access
from nsscale.serve.service import plan_writes
from tests.apiserver.kinds.custom import ARGO_ROLLOUT, FLUX_KUSTOMIZATION, KEDA_SCALED_OBJECT
from tests.apiserver.server import ApiServer
from tests.faultkit import lease, nsscale_env, observe, run, scaled_down, seed, untouched
from tests.test_serve import SPEC, Reply, Served, audit_records, in_background, wait_until

DELEGATED = ("tokenreviews", "subjectaccessreviews")
FLUX = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rights")


@pytest.fixture(scope="module")
def cluster() -> Iterator[ApiServer]:
    with ApiServer() as server:
        server.install_crds(KEDA_SCALED_OBJECT, FLUX_KUSTOMIZATION, ARGO_ROLLOUT)
        yield server


@pytest.fixture(scope="module")
def serve_env(cluster: ApiServer, home: Path, kubectl_bin: Path) -> dict[str, str]:
    kubeconfig = cluster.write_kubeconfig(home / "kubeconfig")
    return nsscale_env(kubeconfig, kubectl_bin, XDG_STATE_HOME=str(home / "state"))


@pytest.fixture(scope="module")
def server(serve_env: dict[str, str]) -> Iterator[Served]:
    served = Served(serve_env, "--kubernetes-auth")
    yield served
    assert served.stop() == 0, served.stderr
    assert "Traceback" not in served.stderr


@pytest.fixture
def faults(cluster: ApiServer) -> Iterator[ApiServer]:
    yield cluster
    cluster.clear_faults()
    cluster.allow_all()


def user(server: ApiServer, name: str) -> str:
    """A token of a new user `name` (each test its own: the server caches rights 10 s)."""
    token = f"{name}-token-0123456789abcdef"
    server.add_token(token, name)
    return token


def post(served: Served, namespace: str, action: str, token: str, body: Any = None) -> Reply:
    text = json.dumps(body) if body is not None else None
    return served.request("POST", f"/api/namespaces/{namespace}/{action}", text, token=token)


def writes_since(server: ApiServer, before: int) -> list[str]:
    """The writes the server received since `before` (reviews are no writes)."""
    return [
        f"{r.method} {r.resource} {r.namespace}"
        for r in server.requests[before:]
        if r.method in ("PUT", "PATCH", "POST", "DELETE")
        and not (r.resource or "").endswith("reviews")  # questions asked, answered at once
    ]


# ------------------------------------------------------------------------------- runs


@pytest.mark.e2e
@pytest.mark.parametrize("dry_run", [False, True])
def test_who_may_update_deployments_but_not_statefulsets_is_403_and_nothing_changes(
    server: Served, faults: ApiServer, home: Path, dry_run: bool
) -> None:
    namespace = f"issue-18-{'dry' if dry_run else 'real'}"
    seed(faults, namespace, SPEC)
    bob = user(faults, f"bob-{namespace}")
    faults.forbid("update", "statefulsets", user=f"bob-{namespace}")
    before = faults.request_count

    denied = post(server, namespace, "deactivate", bob, {"dry_run": True} if dry_run else None)

    assert denied.status == 403, denied
    assert denied.json["message"] == (
        f"bob-{namespace} may not update apps/statefulsets in namespace {namespace}: "
        "nothing changed"
    )
    assert observe(faults, namespace) == untouched(SPEC)
    assert writes_since(faults, before) == []  # not even the in-cluster mark
    assert lease(faults, namespace) is None
    # the question asked: one review per (group, resource) the plan writes, in its namespace
    asked = [r.resource for r in faults.requests[before:] if r.resource in DELEGATED]
    assert asked == ["tokenreviews", "subjectaccessreviews", "subjectaccessreviews"]
    assert audit_records(home, denied.json["run_id"]) == []


@pytest.mark.e2e
def test_a_run_with_nothing_to_do_still_asks_for_the_kinds_it_would_scale(
    server: Served, faults: ApiServer
) -> None:
    """Without the right to scale a namespace's workloads, "already up" is not answered
    either: a 403 tells the caller nothing of the namespace's state."""
    seed(faults, "awake", SPEC)  # up already: the plan of an activate is empty
    dave = user(faults, "dave")
    faults.forbid("update", "statefulsets", user="dave")
    before = faults.request_count

    denied = post(server, "awake", "activate", dave)

    assert denied.status == 403, denied
    assert denied.json["message"] == (
        "dave may not update apps/statefulsets in namespace awake: nothing changed"
    )
    assert writes_since(faults, before) == []
    assert observe(faults, "awake") == untouched(SPEC)


@pytest.mark.e2e
def test_who_may_update_both_kinds_deactivates_and_the_audit_names_them(
    server: Served, faults: ApiServer, home: Path
) -> None:
    seed(faults, "allowed", SPEC)
    carol = user(faults, "carol")
    faults.forbid("update", "cronjobs", user="carol")  # a kind this run does not write

    done = post(server, "allowed", "deactivate", carol)

    assert done.status == 200, done
    assert observe(faults, "allowed") == scaled_down(SPEC)
    [record] = audit_records(home, done.json["run_id"])
    assert record["caller"] == "carol"


def cronjob_suspended_by_nsscale(cluster: ApiServer, env: dict[str, str], ns: str) -> None:
    cluster.add_namespace(ns)
    cluster.add_deployment(ns, "web", replicas=2)
    cluster.add_cronjob(ns, "nightly")
    assert run(env, "down", ns, "--suspend-cronjobs").code == 0


def scaledobject_of_web(cluster: ApiServer, env: dict[str, str], ns: str) -> None:
    cluster.add_namespace(ns)
    cluster.add_deployment(ns, "web", replicas=2)
    target = {"scaleTargetRef": {"name": "web"}}
    cluster.add_custom(KEDA_SCALED_OBJECT.api_version, "ScaledObject", ns, "web-so", target)


def kustomization_suspended_by_nsscale(cluster: ApiServer, env: dict[str, str], ns: str) -> None:
    if cluster.get_object("kustomizations", "flux", "apps") is None:
        cluster.add_custom(FLUX_KUSTOMIZATION.api_version, "Kustomization", "flux", "apps", {})
    cluster.add_namespace(ns)
    cluster.add_deployment(ns, "web", replicas=2, labels=FLUX)
    assert run(env, "down", ns, "--suspend-gitops").code == 0


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("prepare", "action", "forbidden", "denied"),
    [
        (cronjob_suspended_by_nsscale, "activate", "cronjobs", "batch/cronjobs in namespace {ns}"),
        (
            scaledobject_of_web,
            "deactivate",
            "scaledobjects",
            "keda.sh/scaledobjects in namespace {ns}",
        ),
        (
            kustomization_suspended_by_nsscale,
            "activate",
            "kustomizations",
            "kustomize.toolkit.fluxcd.io/kustomizations in namespace flux",  # the owner's own
        ),
    ],
    ids=["cronjob", "scaledobject", "gitops-owner"],
)
def test_every_kind_a_run_writes_is_asked_for_in_its_own_namespace(
    server: Served,
    faults: ApiServer,
    serve_env: dict[str, str],
    prepare: Any,
    action: str,
    forbidden: str,
    denied: str,
) -> None:
    ns = f"kind-{forbidden}"
    prepare(faults, serve_env, ns)
    name = f"dave-{forbidden}"
    dave = user(faults, name)
    faults.forbid("update", forbidden, user=name)
    before_state = faults.workloads(ns)
    before = faults.request_count

    refused = post(server, ns, action, dave)

    assert refused.status == 403, refused
    assert (
        refused.json["message"] == f"{name} may not update {denied.format(ns=ns)}: nothing changed"
    )
    assert writes_since(faults, before) == []
    assert faults.workloads(ns) == before_state

    faults.allow_all()  # the same caller, allowed: the same run goes through
    allowed = user(faults, f"{name}-allowed")
    assert post(server, ns, action, allowed).status == 200


def test_the_writes_asked_about_come_from_each_kind_s_own_data() -> None:
    """A kind added to objects.py is asked about by its own group and plural: none forgotten."""
    workloads = [
        Workload(
            kind, f"x-{kind}", 1, 1, "1", {}, {}, namespace="elsewhere" if kind.gitops else "ns"
        )
        for kind in Kind
    ]
    changes = tuple(Change(w, State(0)) for w in workloads)
    plan = Plan("ns", Operation.DOWN, changes, ())
    assert plan_writes([plan]) == [
        Access(
            "update",
            kind.api_version.rpartition("/")[0],
            kind.plural,
            "elsewhere" if kind.gitops else "ns",
        )
        for kind in Kind
    ]
    assert {str(a).split(" in ")[0] for a in plan_writes([plan])} >= {
        "update apps/deployments",
        "update apps/statefulsets",
        "update batch/cronjobs",
        "update keda.sh/scaledobjects",
        "update kustomize.toolkit.fluxcd.io/kustomizations",
        "update helm.toolkit.fluxcd.io/helmreleases",
        "update argoproj.io/applications",
    }


# ------------------------------------------------------------------------------- status


@pytest.mark.e2e
def test_a_status_read_by_who_may_not_get_statefulsets_is_403_and_reads_nothing(
    server: Served, faults: ApiServer
) -> None:
    seed(faults, "peek", SPEC)
    erin = user(faults, "erin")
    faults.forbid("get", "statefulsets", user="erin")
    before = faults.request_count

    denied = server.request("GET", "/api/namespaces/peek", token=erin)

    assert denied.status == 403, denied
    assert denied.json["message"] == "erin may not get apps/statefulsets in namespace peek"
    read = [r.resource for r in faults.requests[before:] if r.resource not in DELEGATED]
    assert "statefulsets" not in read
    assert "deployments" not in read

    frank = user(faults, "frank")
    faults.forbid("list", "horizontalpodautoscalers", user="frank")
    assert server.request("GET", "/api/namespaces/peek", token=frank).json["message"] == (
        "frank may not list autoscaling/horizontalpodautoscalers in namespace peek"
    )
    shown = server.request("GET", "/api/namespaces/peek", token=user(faults, "grace"))
    assert shown.status == 200, shown
    assert {w["name"] for w in shown.json["workloads"]} == {"web", "api", "db"}


@pytest.mark.e2e
def test_a_status_that_shows_rollouts_asks_for_them_too(server: Served, faults: ApiServer) -> None:
    """Rollouts are read only where Argo is installed: shown, they are asked about, so a
    caller who may not get them never sees them."""
    seed(faults, "argo", SPEC)
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": "canary"}}}
    faults.add_custom("argoproj.io/v1alpha1", "Rollout", "argo", "canary", spec)
    faults.forbid("get", "rollouts", user="heidi")

    denied = server.request("GET", "/api/namespaces/argo", token=user(faults, "heidi"))

    assert denied.status == 403, denied
    assert denied.json["message"] == "heidi may not get argoproj.io/rollouts in namespace argo"
    assert "canary" not in denied.text
    shown = server.request("GET", "/api/namespaces/argo", token=user(faults, "ivan"))
    assert shown.status == 200, shown
    assert {(w["type"], w["name"]) for w in shown.json["workloads"]} >= {("rollout", "canary")}


# ------------------------------------------------------------------------------- tokens


@pytest.mark.e2e
def test_token_audiences_are_asked_and_a_token_for_others_is_401(
    serve_env: dict[str, str], faults: ApiServer
) -> None:
    seed(faults, "audience", SPEC)
    faults.add_token("for-nsscale-0123456789", "heidi", audiences=("nsscale",))
    faults.add_token("for-the-api-0123456789", "ivan")  # the API server's own audience
    served = Served(serve_env, "--kubernetes-auth", "--token-audience", "nsscale")
    try:
        ok = served.request("GET", "/api/namespaces/audience", token="for-nsscale-0123456789")
        assert ok.status == 200, ok
        other = served.request("GET", "/api/namespaces/audience", token="for-the-api-0123456789")
        assert other.status == 401, other
        assert other.headers["www-authenticate"].startswith("Bearer")
    finally:
        assert served.stop() == 0
    # without --token-audience the API server's own audience passes, and a token minted only
    # for nsscale does not
    plain = Served(serve_env, "--kubernetes-auth")
    try:
        assert (
            plain.request("GET", "/api/namespaces/audience", token="for-the-api-0123456789").status
            == 200
        )
        assert (
            plain.request("GET", "/api/namespaces/audience", token="for-nsscale-0123456789").status
            == 401
        )
    finally:
        assert plain.stop() == 0


@pytest.mark.e2e
def test_an_unknown_token_is_remembered_10_s_by_its_digest(
    server: Served, faults: ApiServer
) -> None:
    token = "never-issued-0123456789abcdef"
    before = faults.request_count
    for _ in range(3):
        assert server.request("GET", "/api/namespaces/shop", token=token).status == 401
    reviews = [r for r in faults.requests[before:] if r.resource == "tokenreviews"]
    assert len(reviews) == 1


@pytest.mark.e2e
def test_past_max_reviews_in_flight_a_request_is_503_at_once(
    serve_env: dict[str, str], faults: ApiServer
) -> None:
    seed(faults, "reviews", SPEC)
    served = Served(serve_env, "--kubernetes-auth", "--max-reviews", "1")
    held = faults.hang("POST", "tokenreviews", seconds=60, times=None)
    try:
        thread, first = in_background(
            lambda: served.request("GET", "/api/namespaces/reviews", token="slow-0123456789abc")
        )
        assert wait_until(lambda: kubectl_children(served.proc.pid) == 1)  # reviewing
        busy = served.request("GET", "/api/namespaces/reviews", token="other-0123456789abc")
        assert busy.status == 503, busy
        assert busy.headers["retry-after"] == "5"
        assert "1 token and access checks are in flight already" in busy.json["message"]
        assert served.request("GET", "/healthz", token=None).status == 200
        held.release()
        thread.join(60)
        assert first[0].status == 401, first[0]
    finally:
        held.release()
        assert served.stop() == 0


def kubectl_children(pid: int) -> int:
    """How many kubectl processes the process `pid` runs now."""
    found = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        found += int(fields[1]) == pid and b"kubectl" in cmdline.split(b"\0")[0]
    return found


# ------------------------------------------------------------------------------- bodies


@pytest.mark.e2e
def test_a_repeated_key_is_400_and_nothing_runs(server: Served, faults: ApiServer) -> None:
    seed(faults, "twice", SPEC)
    judy = user(faults, "judy")
    before = faults.request_count
    reply = server.request(
        "POST",
        "/api/namespaces/twice/deactivate",
        '{"dry_run": true, "dry_run": false}',
        token=judy,
    )
    assert reply.status == 400, reply
    assert reply.json["message"] == 'the key "dry_run" is in the body twice: send it once'
    assert observe(faults, "twice") == untouched(SPEC)
    assert writes_since(faults, before) == []
