"""Several namespaces in one run, with the real kubectl and the local API server: naming them or
picking them by label, protected and missing namespaces, each namespace its own transaction (or
one for all with --all-or-nothing), the report, and kubectl processes that do not grow with the
number of namespaces."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from nsscale.engine.lock import Mark
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.rbac import CLUSTER_SCOPE
from tests.apiserver.server import ApiServer
from tests.faultkit import (
    Finished,
    Key,
    Running,
    lease,
    live_mark,
    observe,
    run,
    scaled_down,
    seed,
    untouched,
    wait_until,
    workload_writes,
)

pytestmark = pytest.mark.e2e

SPEC: dict[Key, int] = {
    ("deployment", "web"): 3,
    ("deployment", "api"): 2,
    ("statefulset", "db"): 1,
}
NAMESPACES = ("alpha", "bravo", "charlie")
ONE_BY_ONE = ("--batch-size", "1", "--parallel", "1", "--retries", "0")


@pytest.fixture
def three(apiserver: ApiServer) -> ApiServer:
    for ns in NAMESPACES:
        seed(apiserver, ns, SPEC)
        apiserver.add_namespace(ns, labels={"team": "web"})
    return apiserver


def states(server: ApiServer, namespaces: Sequence[str] = NAMESPACES) -> dict[str, Any]:
    return {ns: observe(server, ns) for ns in namespaces}


def by_namespace(report: Mapping[str, Any]) -> dict[str, Any]:
    return {doc["namespace"]: doc for doc in report["namespaces"]}


def kubectl_starts(done: Finished) -> int:
    """kubectl processes the run started, from its -vv log."""
    return len(re.findall(r"\[DEBUG\] kubectl: ", done.stderr))


def test_three_namespaces_go_down_and_come_back_in_one_run(
    three: ApiServer, env: dict[str, str]
) -> None:
    down = run(env, "down", *NAMESPACES, "-o", "json")
    assert down.code == 0, str(down)
    report = json.loads(down.stdout)
    assert set(report) == {"success", "exit_code", "run_id", "operation", "dry_run", "namespaces"}
    assert (report["success"], report["exit_code"], report["operation"]) == (True, 0, "down")
    assert [doc["namespace"] for doc in report["namespaces"]] == list(NAMESPACES)
    assert {doc["run_id"] for doc in report["namespaces"]} == {report["run_id"]}
    assert all(doc["total_scaled"] == 3 for doc in report["namespaces"])
    assert states(three) == dict.fromkeys(NAMESPACES, scaled_down(SPEC))
    assert all(lease(three, ns) is None for ns in NAMESPACES)

    up = run(env, "up", *NAMESPACES)
    assert up.code == 0, str(up)
    for ns in NAMESPACES:  # a table per namespace, then one row each in the summary table
        assert f"nsscale up {ns}" in up.stdout
        assert re.search(rf"^{ns}\s+done\s", up.stdout, re.MULTILINE), up.stdout
    assert "nsscale up: 3 namespaces" in up.stdout
    assert "3 namespaces: 3 done." in up.stdout
    assert states(three) == dict.fromkeys(NAMESPACES, untouched(SPEC))


def test_one_namespace_keeps_the_one_namespace_report(
    three: ApiServer, env: dict[str, str]
) -> None:
    done = run(env, "down", "alpha", "-o", "json")
    assert done.code == 0, str(done)
    assert json.loads(done.stdout)["namespace"] == "alpha"
    assert "namespaces" not in json.loads(done.stdout)


def test_a_namespace_selector_skips_protected_namespaces_with_a_warning(
    three: ApiServer, env: dict[str, str]
) -> None:
    three.add_namespace("bravo", annotations={"nsscale/protected": "true"})
    three.add_namespace("kube-system", labels={"team": "web"})
    seed(three, "kube-system", {("deployment", "coredns"): 2})
    seed(three, "other", SPEC)  # not labelled: not picked

    done = run(env, "down", "--namespace-selector", "team=web", "-o", "json")

    assert done.code == 0, str(done)
    assert [doc["namespace"] for doc in json.loads(done.stdout)["namespaces"]] == [
        "alpha",
        "charlie",
    ]
    assert "skipping namespace bravo: protected" in done.stderr
    assert "skipping namespace kube-system: protected" in done.stderr
    assert states(three, ("alpha", "charlie")) == dict.fromkeys(
        ("alpha", "charlie"), scaled_down(SPEC)
    )
    assert states(three, ("bravo", "other")) == dict.fromkeys(("bravo", "other"), untouched(SPEC))
    assert observe(three, "kube-system") == untouched({("deployment", "coredns"): 2})


@pytest.mark.parametrize(
    ("named", "says"),
    [
        ("kube-system", "namespace kube-system is protected"),
        ("bravo", "namespace bravo is protected (annotated nsscale/protected"),
        ("nowhere", 'namespace "nowhere" not found'),
    ],
)
def test_naming_a_protected_or_missing_namespace_changes_nothing_anywhere(
    three: ApiServer, env: dict[str, str], named: str, says: str
) -> None:
    three.add_namespace("kube-system")
    three.add_namespace("bravo", annotations={"nsscale/protected": "true"})
    before = states(three)

    done = run(env, "down", "alpha", named, "charlie", "-o", "json")

    assert done.code == 2, str(done)
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 2  # the error and what to do
    assert json.loads(done.stdout)["exit_code"] == 2
    assert states(three) == before
    assert sum(workload_writes(three, ns) for ns in NAMESPACES) == 0


def test_no_namespace_at_all_is_bad_input(three: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "down")
    assert done.code == 2, str(done)
    assert "no namespace" in done.stderr


def test_a_failure_in_one_namespace_undoes_only_that_namespace(
    three: ApiServer, env: dict[str, str]
) -> None:
    three.fail("PUT", "statefulsets", "db", namespace="bravo", status=500, times=None)

    done = run(env, "down", *NAMESPACES, *ONE_BY_ONE, "-o", "json")

    assert done.code == 1, str(done)
    report = by_namespace(json.loads(done.stdout))
    assert {ns: doc["exit_code"] for ns, doc in report.items()} == {
        "alpha": 0,
        "bravo": 1,
        "charlie": 0,
    }
    assert report["bravo"]["rollback_performed"] is True
    assert [r["name"] for r in report["bravo"]["rollback_results"]] == ["web", "api"]
    assert not report["alpha"]["rollback_performed"]
    assert states(three) == {
        "alpha": scaled_down(SPEC),
        "bravo": untouched(SPEC),
        "charlie": scaled_down(SPEC),
    }
    assert all(lease(three, ns) is None for ns in NAMESPACES)


def test_all_or_nothing_undoes_every_namespace(three: ApiServer, env: dict[str, str]) -> None:
    three.fail("PUT", "statefulsets", "db", namespace="charlie", status=500, times=None)

    done = run(env, "down", *NAMESPACES, "--all-or-nothing", *ONE_BY_ONE, "-o", "json")

    assert done.code == 1, str(done)
    report = by_namespace(json.loads(done.stdout))
    assert all(doc["rollback_performed"] for doc in report.values())
    assert [r["name"] for r in report["alpha"]["rollback_results"]] == ["db", "web", "api"]
    assert states(three) == dict.fromkeys(NAMESPACES, untouched(SPEC))
    assert all(lease(three, ns) is None for ns in NAMESPACES)


def test_a_namespace_another_run_holds_fails_alone(
    three: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    live_mark(kubectl, "bravo")

    done = run(env, "down", *NAMESPACES, "-o", "json")

    assert done.code == 1, str(done)
    report = by_namespace(json.loads(done.stdout))
    assert "another nsscale run is working on bravo" in report["bravo"]["errors"][0]
    assert (report["alpha"]["exit_code"], report["charlie"]["exit_code"]) == (0, 0)
    assert states(three)["bravo"] == untouched(SPEC)
    assert states(three)["alpha"] == scaled_down(SPEC)
    held = lease(three, "bravo")
    assert held is not None
    assert held["spec"]["holderIdentity"] == "bob@elsewhere pid 7"
    assert lease(three, "alpha") is None


def test_all_or_nothing_refuses_every_namespace_when_one_is_held(
    three: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    live_mark(kubectl, "charlie")

    done = run(env, "down", *NAMESPACES, "--all-or-nothing", "-o", "json")

    assert done.code == 1, str(done)
    assert "another nsscale run is working on charlie" in done.stderr
    assert states(three) == dict.fromkeys(NAMESPACES, untouched(SPEC))
    assert (lease(three, "alpha"), lease(three, "bravo")) == (None, None)


def test_status_shows_every_namespace(three: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "status", "--namespace-selector", "team=web", "-o", "json")
    assert done.code == 0, str(done)
    documents = json.loads(done.stdout)["namespaces"]
    assert [d["namespace"] for d in documents] == list(NAMESPACES)
    assert all(len(d["workloads"]) == 3 for d in documents)


def test_kubectl_processes_do_not_grow_with_the_namespaces(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    # The same 24 workloads spread over 2 namespaces, then over 12.
    def spread(prefix: str, count: int) -> list[str]:
        names = [f"{prefix}-{i}" for i in range(count)]
        for i in range(24):
            ns = names[i % count]
            apiserver.add_namespace(ns, labels={"spread": prefix})
            apiserver.add_deployment(ns, f"w{i}", replicas=2)
        return names

    starts = {}
    for prefix, count in (("two", 2), ("twelve", 12)):
        spread(prefix, count)
        down = run(env, "down", "--namespace-selector", f"spread={prefix}", "-vv")
        assert down.code == 0, str(down)
        up = run(env, "up", "--namespace-selector", f"spread={prefix}", "-vv")
        assert up.code == 0, str(up)
        starts[count] = (kubectl_starts(down), kubectl_starts(up))
    assert starts[12][0] <= starts[2][0] + 2, starts
    assert starts[12][1] <= starts[2][1] + 2, starts


def test_each_namespace_is_audited_under_the_one_run_id(
    three: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    done = run(env, "down", *NAMESPACES, "--audit-file", str(audit), "-o", "json")
    assert done.code == 0, str(done)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    records = [r for r in records if r["event"] == "finished"]  # not their starts
    assert [r["namespace"] for r in records] == list(NAMESPACES)
    assert {r["run_id"] for r in records} == {json.loads(done.stdout)["run_id"]}


def test_a_signal_stops_and_undoes_every_namespace(three: ApiServer, env: dict[str, str]) -> None:
    # charlie's first write is held: the signal lands while the run is surely changing things
    three.hang("PUT", "deployments", namespace="charlie", seconds=1)
    running = Running(env, "down", *NAMESPACES, *ONE_BY_ONE, "-o", "json")
    done_elsewhere = wait_until(
        lambda: (
            workload_writes(three, "alpha") + workload_writes(three, "bravo") >= 6 or running.exited
        ),
        60,
    )
    assert done_elsewhere
    running.send(signal.SIGTERM)
    done = running.finish()

    assert done.code == 143, str(done)
    report = done.json()
    assert all(doc["interrupted"] == "SIGTERM" for doc in report["namespaces"])
    assert states(three) == dict.fromkeys(NAMESPACES, untouched(SPEC))
    assert all(lease(three, ns) is None for ns in NAMESPACES)


def test_a_namespace_left_partly_changed_keeps_its_mark_alone(
    three: ApiServer, env: dict[str, str]
) -> None:
    # bravo's last write is refused, and so is the undo of its api: bravo is left changed
    three.fail("PUT", "statefulsets", "db", namespace="bravo", status=500, times=None)
    three.fail("PUT", "deployments", "api", namespace="bravo", status=500, nth=2, times=None)

    done = run(env, "down", *NAMESPACES, *ONE_BY_ONE, "-o", "json")

    assert done.code == 3, str(done)
    report = by_namespace(json.loads(done.stdout))
    assert report["bravo"]["left_changed"] == [{"type": "deployment", "name": "api", "replicas": 0}]
    assert (report["alpha"]["exit_code"], report["charlie"]["exit_code"]) == (0, 0)
    kept = lease(three, "bravo")
    assert kept is not None
    assert "nsscale/ended" in kept["metadata"]["annotations"]
    assert (lease(three, "alpha"), lease(three, "charlie")) == (None, None)


def test_marks_earlier_runs_left_are_taken_over_in_one_read(
    three: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    now = datetime.now(UTC)
    for ns in ("alpha", "bravo"):
        ended = Mark(
            "gone@host pid 1", "earlier", "up", now, now, 120, {}, ended=now, outcome="exit 0"
        )
        created = kubectl("create", "-f", "-", input=json.dumps(ended.to_lease(ns)))
        assert created.returncode == 0, created.stderr

    done = run(env, "down", *NAMESPACES, "-vv")

    assert done.code == 0, str(done)
    assert states(three) == dict.fromkeys(NAMESPACES, scaled_down(SPEC))
    assert all(lease(three, ns) is None for ns in NAMESPACES)
    assert "get leases -A --field-selector metadata.name=nsscale" in done.stderr


def test_a_caller_allowed_in_each_namespace_but_not_across_them_still_runs(
    three: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    # RoleBindings in each namespace, no ClusterRole: nothing may be listed across namespaces,
    # not even the Namespaces; earlier runs' marks in two namespaces must be read too.
    now = datetime.now(UTC)
    for ns in ("alpha", "bravo"):
        ended = Mark("gone@host pid 1", "earlier", "up", now, now, 120, {}, ended=now, outcome="")
        created = kubectl("create", "-f", "-", input=json.dumps(ended.to_lease(ns)))
        assert created.returncode == 0, created.stderr
    for resource in ("deployments", "statefulsets", "leases"):
        three.forbid("list", resource, namespace=CLUSTER_SCOPE)
    three.forbid("list", "namespaces")
    three.forbid("get", "namespaces")

    down = run(env, "down", *NAMESPACES, "-v")

    assert down.code == 0, str(down)
    assert "one read per namespace" in down.stderr
    assert states(three) == dict.fromkeys(NAMESPACES, scaled_down(SPEC))
    assert all(lease(three, ns) is None for ns in NAMESPACES)
    refused = run(env, "down", "alpha", "kube-system")  # its name alone says it is protected
    assert refused.code == 2, str(refused)


def test_a_dry_run_over_several_namespaces_changes_nothing_and_marks_nothing(
    three: ApiServer, env: dict[str, str]
) -> None:
    before = states(three)
    done = run(env, "down", *NAMESPACES, "--dry-run", "-o", "json")
    assert done.code == 0, str(done)
    report = json.loads(done.stdout)
    assert report["dry_run"] is True
    assert all(doc["total_scaled"] == 3 for doc in report["namespaces"])
    assert states(three) == before
    assert not [
        r
        for r in three.requests
        if r.method in ("POST", "PUT", "DELETE")
        and r.resource in ("leases", "deployments", "statefulsets")
    ]


def test_scale_sets_every_namespace_to_n_and_up_puts_them_back(
    three: ApiServer, env: dict[str, str]
) -> None:
    scaled = run(env, "scale", "alpha", "bravo", "--replicas", "1")
    assert scaled.code == 0, str(scaled)
    assert "2 namespaces: 2 done." in scaled.stdout
    assert {w[0] for w in observe(three, "bravo").values()} == {1}
    assert states(three)["charlie"] == untouched(SPEC)
    up = run(env, "up", "alpha", "bravo")
    assert up.code == 0, str(up)
    assert states(three) == dict.fromkeys(NAMESPACES, untouched(SPEC))
