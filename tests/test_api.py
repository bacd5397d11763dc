"""The Python interface, `scale_namespace_resources`, with the real kubectl and the local API
server: the seed's signature and result, ValueError for bad arguments only, the
audit, no signal handler, and two calls on one namespace from two threads."""

from __future__ import annotations

import json
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from nsscale import scale_namespace_resources
from tests.apiserver.server import ApiServer
from tests.faultkit import Key, lease, observe, scaled_down, untouched, wait_until
from tests.kube import SEED_KEYS

pytestmark = pytest.mark.e2e

NS = "shop"
SPEC: dict[Key, int] = {
    ("deployment", "web"): 3,
    ("deployment", "api"): 2,
    ("statefulset", "db"): 1,
}


@pytest.fixture
def shop(
    shop: ApiServer, kubeconfig: Path, kubectl_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> ApiServer:
    """The seeded shop, and the Python call pointed at it (its kubectl, its kubeconfig)."""
    monkeypatch.setenv("NSSCALE_KUBECTL", str(kubectl_bin))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("KUBECACHEDIR", str(kubeconfig.parent / ".kube-cache"))
    return shop


def test_down_and_up_return_the_original_design_s_dictionary(
    shop: ApiServer, tmp_path: Path
) -> None:
    down = scale_namespace_resources(NS, 0)
    assert set(down) >= SEED_KEYS
    assert (down["success"], down["total_scaled"], down["operation"]) == (True, 3, "down")
    assert observe(shop, NS) == scaled_down(SPEC)

    up = scale_namespace_resources(NS, None, enable_rollback=True)
    assert (up["success"], up["total_scaled"], up["operation"]) == (True, 3, "up")
    assert observe(shop, NS) == untouched(SPEC)

    audit = tmp_path / "state" / "nsscale" / "audit.jsonl"  # the tests' own XDG_STATE_HOME
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    runs = [r for r in records if r["event"] == "finished"]  # not their starts
    assert [(r["operation"], r["outcome"]) for r in runs] == [
        ("down", "success"),
        ("up", "success"),
    ]


def test_scale_to_n_and_a_dry_run(shop: ApiServer) -> None:
    dry = scale_namespace_resources(NS, 2, dry_run=True)
    assert (dry["dry_run"], dry["total_scaled"]) == (True, 2)  # api is at 2 already
    assert observe(shop, NS) == untouched(SPEC)
    scaled = scale_namespace_resources(NS, 2)
    assert scaled["success"] is True
    assert {counts[0] for counts in observe(shop, NS).values()} == {2}


def test_a_failed_run_comes_back_in_the_dictionary_rolled_back(shop: ApiServer) -> None:
    shop.fail("PUT", "statefulsets", "db", status=500, times=None)
    result = scale_namespace_resources(NS, 0)
    assert result["success"] is False
    assert result["rollback_performed"] is True
    assert result["rollback_failed_count"] == 0
    assert result["exit_code"] == 1
    assert observe(shop, NS) == untouched(SPEC)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("Shop", 0), "invalid namespace 'Shop'"),
        ((42, 0), "namespace must be a string"),
        (("nowhere", 0), 'namespace "nowhere" not found'),
        ((NS, -1), "target_replicas must be None (up), 0 (down) or a count"),
        ((NS, True), "not True"),
        ((NS, 1.5), "not 1.5"),
        ((NS, 2**31), "not 2147483648"),
    ],
)
def test_bad_arguments_raise_value_error_and_change_nothing(
    shop: ApiServer, args: tuple[Any, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        scale_namespace_resources(*args)
    assert observe(shop, NS) == untouched(SPEC)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "30"])
def test_a_bad_timeout_raises_value_error(shop: ApiServer, timeout: Any) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        scale_namespace_resources(NS, 0, timeout=timeout)


def test_a_missing_kubeconfig_raises_value_error(shop: ApiServer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        scale_namespace_resources(NS, 0, kubeconfig=str(tmp_path / "nope"))


def test_it_installs_no_signal_handler(shop: ApiServer) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    seen: list[object] = []

    def look(*_: Any) -> None:  # called while a write is held: mid-run
        seen.extend(signal.getsignal(s) for s in before)

    shop.hang("PUT", "deployments", "api", seconds=0.5)
    watcher = threading.Timer(0.3, look)
    watcher.start()
    scale_namespace_resources(NS, 0)
    watcher.join()
    assert seen == list(before.values())
    assert {s: signal.getsignal(s) for s in before} == before


def test_two_calls_on_one_namespace_one_runs_the_other_is_told(shop: ApiServer) -> None:
    shop.hang("PUT", "deployments", "api", seconds=1.5)  # the first call holds the namespace
    first: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: first.update(scale_namespace_resources(NS, 0)))
    thread.start()
    assert wait_until(lambda: lease(shop, NS) is not None, 20)

    second = scale_namespace_resources(NS, 0)
    thread.join(60)

    assert first["success"] is True
    assert second["success"] is False
    assert second["total_scaled"] == 0
    assert "another nsscale run is working on shop" in second["errors"][0]
    assert observe(shop, NS) == scaled_down(SPEC)
