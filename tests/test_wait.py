"""--wait: the readiness rule, the poll loop (a fake clock and reads), and the command line with
the real kubectl against the local API server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from nsscale.engine.waiting import Progress, is_ready, wait_ready
from nsscale.errors import KubectlError
from nsscale.kube.objects import Workload
from tests.apiserver.server import ApiServer
from tests.faultkit import observe, run, scaled_down, untouched
from tests.kube import NS, workload

SPEC = {("deployment", "web"): 3, ("statefulset", "db"): 1}


def manifest(
    status: dict[str, int], kind: str = "Deployment", spec: int = 2, generation: int = 2
) -> dict[str, Any]:
    """A workload of `spec` replicas whose status holds `status` (`observed` is
    observedGeneration, `ready` readyReplicas, and so on)."""
    names = {
        "observed": "observedGeneration",
        "updated": "updatedReplicas",
        "ready": "readyReplicas",
        "available": "availableReplicas",
        "current": "replicas",
    }
    obj = workload("w", spec, kind=kind)
    obj["metadata"]["generation"] = generation
    obj["status"] = {names[k]: v for k, v in status.items()}
    return obj


ALL_TWO = {"observed": 2, "current": 2, "updated": 2, "ready": 2, "available": 2}


@pytest.mark.parametrize(
    ("obj", "ready"),
    [
        (manifest(ALL_TWO), True),
        (manifest(ALL_TWO | {"observed": 1}), False),  # the new spec not seen yet
        (manifest(ALL_TWO | {"available": 0}), False),
        (manifest(ALL_TWO | {"current": 3}), False),  # an old pod still terminating
        (manifest({"observed": 2}, spec=0), True),  # absent fields are 0
        (manifest({"observed": 2, "current": 2, "ready": 2}, "StatefulSet"), True),
        (manifest({"observed": 2, "current": 2, "ready": 1}, "StatefulSet"), False),
    ],
)
def test_the_readiness_rule_follows_rollout_status(obj: dict[str, Any], ready: bool) -> None:
    assert is_ready(Workload.from_manifest(obj)) is ready


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def becoming_ready(after_polls: int) -> Any:
    """A read whose workload is ready from its `after_polls`-th call on."""
    calls = []

    def read(namespaces: Sequence[str]) -> list[Workload]:
        calls.append(list(namespaces))
        ready = len(calls) >= after_polls
        return [Workload.from_manifest(manifest(ALL_TWO if ready else {"observed": 2}))]

    return read, calls


def wanted() -> list[tuple[Workload, int]]:
    return [(Workload.from_manifest(manifest({"observed": 1})), 2)]


def test_the_wait_ends_when_everything_is_ready() -> None:
    clock, seen = Clock(), list[Progress]()
    read, calls = becoming_ready(after_polls=3)
    waited = wait_ready(
        read, wanted(), 60, seen.append, lambda: None, clock=clock, sleep=clock.sleep
    )
    assert waited.not_ready == ()
    assert len(calls) == 3
    assert calls[0] == [NS]  # one read per poll, of every namespace waited on
    assert [(p.ready, p.total) for p in seen] == [(0, 1), (0, 1), (1, 1)]


def test_the_wait_gives_up_at_its_timeout_and_lists_what_is_not_ready() -> None:
    clock, seen = Clock(), list[Progress]()
    read, _ = becoming_ready(after_polls=1000)
    waited = wait_ready(
        read, wanted(), 10, seen.append, lambda: None, clock=clock, sleep=clock.sleep
    )
    assert [(n.workload.name, n.ready, n.wanted) for n in waited.not_ready] == [("w", 0, 2)]
    assert 10 <= clock.now < 10.5
    assert seen[-1].elapsed_s >= 10


def test_a_signal_stops_the_wait_and_a_failed_read_does_not() -> None:
    clock = Clock()
    read, calls = becoming_ready(after_polls=1000)

    def flaky(namespaces: Sequence[str]) -> list[Workload]:
        if len(calls) == 1:
            calls.append(["failed"])
            raise KubectlError(["kubectl", "get"], 1, "Unable to connect to the server\n", 0.1)
        return list(read(namespaces))

    stop = iter([None] * 50 + ["interrupted by SIGINT"] * 1000)
    waited = wait_ready(
        flaky, wanted(), 60, lambda p: None, lambda: next(stop), clock=clock, sleep=clock.sleep
    )
    assert waited.stopped == "interrupted by SIGINT"
    assert len(waited.not_ready) == 1
    assert len(calls) >= 3  # polled on past the failed read


# ----------------------------------------------------------------- with the real kubectl


@pytest.mark.e2e
def test_down_and_up_with_wait_end_when_every_workload_is_ready(
    shop: ApiServer, env: dict[str, str]
) -> None:
    down = run(env, "down", NS, "--wait", "-o", "json")
    assert down.code == 0, str(down)
    assert json.loads(down.stdout)["not_ready"] == []
    assert observe(shop, NS) == scaled_down(SPEC)
    up = run(env, "up", NS, "--wait", "--wait-timeout", "90s")
    assert up.code == 0, str(up)
    assert "waiting: 2/2 workloads ready" in up.stderr  # no terminal: a plain line
    assert observe(shop, NS) == untouched(SPEC)


@pytest.mark.e2e
@pytest.mark.parametrize("value", ["5x", "1,5m", "10d", "m", "-1s"])
def test_a_bad_wait_timeout_is_bad_input_and_changes_nothing(
    shop: ApiServer, env: dict[str, str], value: str
) -> None:
    done = run(env, "down", NS, "--wait", "--wait-timeout", value)
    assert done.code == 2, str(done)
    assert "is not a duration: use a number and s, m or h (90s, 10m, 1h)" in done.stderr
    assert observe(shop, NS) == untouched(SPEC)


@pytest.mark.e2e
def test_a_workload_not_ready_in_time_is_exit_4_and_the_change_stays(
    shop: ApiServer, env: dict[str, str]
) -> None:
    run(env, "down", NS)
    shop.hold_ready(NS, "web", ready=1)  # two of web's three pods never pass their probe
    up = run(env, "up", NS, "--wait", "--wait-timeout", "3s", "-o", "json")
    assert up.code == 4, str(up)
    report = json.loads(up.stdout)
    assert report["not_ready"] == [
        {"type": "deployment", "name": "web", "namespace": NS, "ready": 1, "wanted": 3}
    ]
    assert report["rollback_performed"] is False
    assert observe(shop, NS) == untouched(SPEC)  # nothing undone


@pytest.mark.e2e
def test_a_slow_rollout_is_waited_for(shop: ApiServer, env: dict[str, str]) -> None:
    run(env, "down", NS)
    shop.rollout(NS, ready_after=2.5)
    up = run(env, "up", NS, "--wait", "--wait-timeout", "60s")
    assert up.code == 0, str(up)
    assert up.seconds >= 2.5
    assert "waiting: 0/2 workloads ready" in up.stderr
    assert "waiting: 2/2 workloads ready" in up.stderr
