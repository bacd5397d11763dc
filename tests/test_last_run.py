"""`nsscale/last-run` on each Namespace a run changed, with the real kubectl against the local API
server: written by every interface (the command line, reconcile, the Python call, serve), in one
kubectl call for all the namespaces of a run; never by a run that wrote nothing; a failure to
write it is a warning that changes nothing of the run."""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nsscale import scale_namespace_resources
from nsscale.kube.cluster import annotate_namespaces
from nsscale.kube.objects import LAST_RUN
from nsscale.kubectl import Kubectl, KubectlConfig
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.server import ApiServer
from tests.faultkit import Key, live_mark, observe, run, scaled_down, seed, untouched
from tests.test_serve import ADMIN, Served, token_file

pytestmark = pytest.mark.e2e

NS = "shop"
SPEC: dict[Key, int] = {("deployment", "web"): 3, ("statefulset", "db"): 1}
KEYS = ["run_id", "operation", "outcome", "exit_code", "at", "by"]
ME = f"tester@{socket.gethostname()}"  # the kube user (`kubectl auth whoami`) at this host


def last_run(server: ApiServer, namespace: str = NS) -> dict[str, Any] | None:
    """The annotation on the Namespace as stored, parsed (None: absent)."""
    [found] = [n for n in server.objects("namespaces") if n["metadata"]["name"] == namespace]
    text = (found["metadata"].get("annotations") or {}).get(LAST_RUN)
    return None if text is None else dict(json.loads(text))


def annotate_calls(stderr: str) -> list[str]:
    """The `kubectl annotate` calls of nsscale/last-run a run logged with -vv."""
    return re.findall(r"kubectl: \S+ annotate .*nsscale/last-run=", stderr)


def test_a_run_that_changed_the_namespace_keeps_its_last_run_on_it(
    shop: ApiServer, env: dict[str, str]
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    down = run(env, "down", NS, "-o", "json", "-vv")
    assert down.code == 0, str(down)
    after = datetime.now(UTC)

    found = last_run(shop)
    assert found is not None
    assert list(found) == KEYS
    at = datetime.fromisoformat(found.pop("at"))
    assert before <= at <= after
    assert found == {
        "run_id": down.json()["run_id"],
        "operation": "down",
        "outcome": "success",
        "exit_code": 0,
        "by": ME,
    }
    [text] = [
        n["metadata"]["annotations"][LAST_RUN]
        for n in shop.objects("namespaces")
        if n["metadata"]["name"] == NS
    ]
    assert " " not in text  # compact JSON
    assert len(annotate_calls(down.stderr)) == 1

    up = run(env, "up", NS, "-o", "json")
    assert up.code == 0, str(up)
    found = last_run(shop)
    assert found is not None
    assert (found["run_id"], found["operation"]) == (up.json()["run_id"], "up")


def test_several_namespaces_take_it_in_one_kubectl_call(
    apiserver: ApiServer, env: dict[str, str]
) -> None:
    for namespace in ("alpha", "bravo", "charlie"):
        seed(apiserver, namespace, SPEC)
    down = run(env, "down", "alpha", "bravo", "charlie", "-o", "json", "-vv")
    assert down.code == 0, str(down)
    assert len(annotate_calls(down.stderr)) == 1  # one call for the three
    for namespace in ("alpha", "bravo", "charlie"):
        found = last_run(apiserver, namespace)
        assert found is not None
        assert (found["run_id"], found["operation"], found["outcome"], found["exit_code"]) == (
            down.json()["run_id"],
            "down",
            "success",
            0,
        )


def test_a_rolled_back_run_says_so(shop: ApiServer, env: dict[str, str]) -> None:
    shop.fail("PUT", "statefulsets", "db", status=500, times=None)
    down = run(env, "down", NS, "-o", "json", "--retries", "0")
    assert down.code == 1, str(down)
    assert observe(shop, NS) == untouched(SPEC)
    found = last_run(shop)
    assert found is not None
    assert (found["run_id"], found["outcome"], found["exit_code"]) == (
        down.json()["run_id"],
        "rolled_back",
        1,
    )


def test_a_run_left_partly_changed_then_recovered_then_scaled(
    shop: ApiServer, env: dict[str, str]
) -> None:
    shop.fail("PUT", "statefulsets", "db", status=500, times=None)
    partial = run(env, "down", NS, "-o", "json", "--no-rollback", "--retries", "0")
    assert partial.code == 3, str(partial)

    def said() -> tuple[Any, ...]:
        found = last_run(shop)
        assert found is not None
        return found["run_id"], found["operation"], found["outcome"], found["exit_code"]

    assert said() == (partial.json()["run_id"], "down", "partial", 3)
    shop.clear_faults()
    recovered = run(env, "recover", NS, "-o", "json")
    assert recovered.code == 0, str(recovered)
    assert said() == (recovered.json()["run_id"], "recover", "success", 0)
    scaled = run(env, "scale", NS, "--replicas", "2", "-o", "json")
    assert scaled.code == 0, str(scaled)
    assert said() == (scaled.json()["run_id"], "scale", "success", 0)


def test_a_run_that_wrote_nothing_leaves_it_as_it_was(
    shop: ApiServer, env: dict[str, str], kubectl: KubectlFixture
) -> None:
    for dry_run in ("--dry-run", "--server-dry-run"):
        assert run(env, "down", NS, dry_run).code == 0
        assert last_run(shop) is None, dry_run

    shop.fail("PUT", "statefulsets", "db", status=500, times=None)
    shop.fail("PUT", "deployments", "web", status=500, times=None)
    failed = run(env, "down", NS, "--retries", "0")  # every write refused: nothing landed
    assert failed.code == 1, str(failed)
    assert last_run(shop) is None
    shop.clear_faults()

    down = run(env, "down", NS, "-o", "json")
    assert down.code == 0, str(down)
    kept = last_run(shop)
    assert kept is not None
    again = run(env, "down", NS, "-vv")  # already down: nothing to change
    assert again.code == 0, str(again)
    assert annotate_calls(again.stderr) == []
    assert last_run(shop) == kept

    live_mark(kubectl, NS)  # another run holds the namespace: this one is refused
    refused = run(env, "up", NS)
    assert refused.code == 1, str(refused)
    assert last_run(shop) == kept


def test_a_failure_to_write_it_is_a_warning_and_the_run_stands(
    shop: ApiServer, env: dict[str, str]
) -> None:
    shop.forbid("patch", "namespaces")
    down = run(env, "down", NS, "-o", "json")
    assert down.code == 0, str(down)
    assert down.json()["success"] is True
    assert observe(shop, NS) == scaled_down(SPEC)
    warnings = [line for line in down.stderr.splitlines() if LAST_RUN in line]
    assert len(warnings) == 1, down.stderr
    assert warnings[0].startswith(f"[WARNING] could not record the run on the Namespace {NS} (")
    assert "forbidden" in warnings[0]
    assert last_run(shop) is None


def test_reconcile_writes_it(shop: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "reconcile", NS, "--uptime", "never", "--grace-period", "0", "-o", "json")
    assert done.code == 0, str(done)
    found = last_run(shop)
    assert found is not None
    [entry] = done.json()["namespaces"]
    assert (found["run_id"], found["operation"]) == (entry["result"]["run_id"], "down")


def test_the_python_call_writes_it(
    shop: ApiServer, kubeconfig: Path, kubectl_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NSSCALE_KUBECTL", str(kubectl_bin))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    result = scale_namespace_resources(NS, 0)
    assert result["success"] is True, result
    found = last_run(shop)
    assert found is not None
    assert (found["run_id"], found["operation"], found["by"]) == (result["run_id"], "down", ME)


def test_a_served_run_names_its_caller(
    shop: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    tokens = token_file(tmp_path / "tokens", f"{ADMIN}  # portal\n")
    served = Served(env, "--token-file", str(tokens))
    try:
        reply = served.post(NS, "deactivate")
        assert reply.status == 200, reply
    finally:
        assert served.stop() == 0, served.stderr
    found = last_run(shop)
    assert found is not None
    assert (found["run_id"], found["by"]) == (reply.json["run_id"], "token:portal")
    assert datetime.now(UTC) - datetime.fromisoformat(found["at"]) < timedelta(minutes=1)


@pytest.mark.timing  # an upper bound on seconds
def test_many_namespaces_are_annotated_in_one_unthrottled_call(
    apiserver: ApiServer, kubeconfig: Path, kubectl_bin: Path
) -> None:
    names = [f"team-{i:02d}" for i in range(30)]
    for name in names:
        apiserver.add_namespace(name)
    kubectl = Kubectl(KubectlConfig(str(kubectl_bin), kubeconfig=str(kubeconfig)))
    started = time.monotonic()
    annotate_namespaces(kubectl, names, LAST_RUN, '{"run_id":"r"}')
    # named in argv, kubectl would GET them at 5 a second: 12 s at the least
    assert time.monotonic() - started < 6
    assert all(last_run(apiserver, name) == {"run_id": "r"} for name in names)
