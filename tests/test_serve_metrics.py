"""GET /metrics of a real `nsscale serve --reconcile-every` process, read back with
prometheus_client's own parser: the served runs and the loop's, their outcomes (a rollback
counted), the workloads changed, the namespaces by state as the last round read them, the time of
the last round, the schedule errors; no auth, its own registry (no process metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apiserver.server import ApiServer
from tests.faultkit import nsscale_env, observe, scaled_down, seed
from tests.faultkit import wait_until as _wait_until
from tests.test_serve import ADMIN, SPEC, Served, token_file

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def wait_until(predicate: object, timeout: float = 30) -> bool:
    return _wait_until(predicate, timeout, 0.05)  # type: ignore[arg-type]


def scraped(served: Served) -> Samples:
    reply = served.request("GET", "/metrics", token=None)
    assert reply.status == 200, reply
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


@pytest.fixture
def cluster() -> Iterator[ApiServer]:
    with ApiServer() as server:
        server.add_namespace("nsscale")
        for namespace in ("night", "manual", "broken", "asleep"):
            seed(server, namespace, SPEC)
        seed(server, "empty", {})
        scheduled = {"nsscale/scheduled": "true"}
        server.add_namespace("night", labels=scheduled, annotations={"nsscale/uptime": "never"})
        server.add_namespace("empty", labels=scheduled, annotations={"nsscale/uptime": "never"})
        # a schedule that cannot be read: a schedule error in every round
        server.add_namespace("typo", labels=scheduled, annotations={"nsscale/uptime": "Mon-Fry"})
        yield server


def test_metrics_count_served_runs_the_loop_a_rollback_and_the_states(
    cluster: ApiServer, tmp_path: Path, kubectl_bin: Path
) -> None:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    env = nsscale_env(
        kubeconfig, kubectl_bin, XDG_STATE_HOME=str(tmp_path / "state"), POD_NAMESPACE="nsscale"
    )
    tokens = token_file(tmp_path / "tokens", f"{ADMIN}\n")
    served = Served(
        env,
        "--token-file",
        str(tokens),
        "--reconcile-every",
        "1s",
        "--namespace-selector",
        "nsscale/scheduled=true",
        "--grace-period",
        "0",
    )
    try:
        before = scraped(served)
        assert not [name for name, _ in before if name.startswith(("process_", "python_"))]
        assert before[("nsscale_rollbacks_total", ())] == 0

        assert served.post("manual").status == 200
        assert served.post("manual", dry_run=True).status == 200  # not counted
        cluster.fail("PUT", "statefulsets", "db", namespace="broken", status=500, times=None)
        failed = served.post("broken")
        assert failed.status == 500, failed
        assert failed.json["rollback_info"]["performed"] is True
        assert wait_until(lambda: observe(cluster, "night") == scaled_down(SPEC))
        # a round after night's: the states as read with night down
        assert wait_until(lambda: scraped(served)[("nsscale_namespaces", (("state", "asleep"),))])
        samples = scraped(served)
    finally:
        assert served.stop() == 0, served.stderr

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert sample("nsscale_runs_total", operation="down", outcome="success") == 2  # manual, night
    assert sample("nsscale_runs_total", operation="down", outcome="rolled_back") == 1
    assert sample("nsscale_rollbacks_total") == 1
    assert sample("nsscale_workloads_changed_total", operation="down") == 6
    assert sample("nsscale_run_duration_seconds_count") == 3
    assert sample("nsscale_run_duration_seconds_sum") > 0
    assert sample("nsscale_namespaces", state="asleep") == 1  # night
    assert sample("nsscale_namespaces", state="empty") == 2  # empty, typo
    assert sample("nsscale_namespaces", state="awake") == 0
    assert sample("nsscale_namespaces", state="partly") == 0
    assert sample("nsscale_reconcile_last_success_timestamp_seconds") > 1.7e9
    assert sample("nsscale_schedule_errors_total") >= 2  # typo, in each round so far
