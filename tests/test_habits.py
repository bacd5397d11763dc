"""kubectl's habits, with the installed nsscale, the real kubectl and the local API server:
-n/--namespace, kubectl's kind names in --exclude, its duration forms, integer counts in
`status -o json`, the mark of a process killed on this machine, and shell completion of
namespaces and contexts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from nsscale.engine.holder import Holder, this_process
from nsscale.kube.objects import PAUSED
from tests.apiserver.fixtures import Kubectl as KubectlFixture
from tests.apiserver.kinds.custom import KEDA_SCALED_OBJECT
from tests.apiserver.server import ApiServer
from tests.faultkit import (
    NSSCALE,
    Key,
    Running,
    lease,
    observe,
    run,
    scaled_down,
    seed,
    settle,
    untouched,
    wait_until,
)

pytestmark = pytest.mark.e2e

NS = "shop"
SPEC: dict[Key, int] = {
    ("deployment", "web"): 3,
    ("deployment", "api"): 2,
    ("statefulset", "db"): 1,
}
OTHER = "blog"  # a second namespace


def names(report: Mapping[str, object], key: str) -> set[str]:
    return {str(item["name"]) for item in report[key]}  # type: ignore[attr-defined]


# ------------------------------------------------------------------------ -n/--namespace


def test_dash_n_is_the_same_as_naming_the_namespace(shop: ApiServer, env: dict[str, str]) -> None:
    down = run(env, "down", "-n", NS, "-o", "json")
    assert down.code == 0, str(down)
    assert down.json()["namespace"] == NS  # one namespace: the one-namespace report
    assert observe(shop, NS) == scaled_down(SPEC)

    up = run(env, "up", "--namespace", NS, "-o", "json")
    assert up.code == 0, str(up)
    assert observe(shop, NS) == untouched(SPEC)


def test_named_and_dash_n_namespaces_mix_each_once(shop: ApiServer, env: dict[str, str]) -> None:
    seed(shop, OTHER, {("deployment", "blog"): 2})
    status = run(env, "status", NS, "-n", OTHER, "-n", NS, "-o", "json")
    assert status.code == 0, str(status)
    assert [d["namespace"] for d in status.json()["namespaces"]] == [NS, OTHER]

    scaled = run(env, "scale", "-n", OTHER, NS, "--replicas", "1", "-o", "json")
    assert scaled.code == 0, str(scaled)
    assert sorted(r["namespace"] for r in scaled.json()["namespaces"]) == [OTHER, NS]


def test_recover_takes_its_one_namespace_with_dash_n(shop: ApiServer, env: dict[str, str]) -> None:
    done = run(env, "recover", "-n", NS, "--dry-run", "-o", "json")
    assert done.code == 0, str(done)
    assert "no interrupted run is marked on shop" in done.stderr

    two = run(env, "recover", NS, "-n", OTHER)
    assert two.code == 2, str(two)
    assert "one namespace at a time, not shop, blog" in two.stderr


def test_history_takes_its_namespace_with_dash_n(shop: ApiServer, env: dict[str, str]) -> None:
    assert run(env, "down", NS).code == 0
    shown = run(env, "history", "-n", NS, "-o", "json")
    assert shown.code == 0, str(shown)
    assert shown.json()["namespace"] == NS
    assert [e["operation"] for e in shown.json()["events"]] == ["down"]


@pytest.mark.parametrize("command", ["down", "recover", "history"])
def test_no_namespace_at_all_is_a_failed_json_document(
    shop: ApiServer, env: dict[str, str], command: str
) -> None:
    done = run(env, command, "-o", "json")
    assert done.code == 2, str(done)
    assert done.json()["success"] is False
    assert done.json()["errors"][0].startswith("no namespace")


# ------------------------------------------------------------------------ --exclude KIND/NAME


@pytest.mark.parametrize(
    "excludes",
    [
        ("deploy/web", "sts/db"),
        ("deployments/web", "statefulsets.apps/db"),
        ("deployment.apps/web", "statefulset.apps/db"),  # as kubectl get -o name prints them
        ("Deployment/web", "StatefulSet/db"),
    ],
)
def test_exclude_takes_kubectl_s_kind_names(
    shop: ApiServer, env: dict[str, str], kubectl: KubectlFixture, excludes: tuple[str, ...]
) -> None:
    printed = kubectl("get", "deployments,statefulsets", "-n", NS, "-o", "name")
    assert "deployment.apps/web" in printed.stdout.split()  # what a person copies from kubectl
    args = [a for e in excludes for a in ("--exclude", e)]
    down = run(env, "down", NS, *args, "-o", "json")
    assert down.code == 0, str(down)
    report = down.json()
    assert names(report, "skipped_resources") == {"web", "db"}
    assert names(report, "scaled_resources") == {"api"}
    assert observe(shop, NS)[("deployment", "web")] == (3, None, None)


def test_an_unknown_kind_is_bad_input_listing_the_kinds(
    shop: ApiServer, env: dict[str, str]
) -> None:
    done = run(env, "down", NS, "--exclude", "pods/web", "-o", "json")
    assert done.code == 2, str(done)
    assert "invalid --exclude 'pods/web': no kind 'pods'" in done.stderr
    assert "deployment (deployments, deploy); statefulset (statefulsets, sts)" in done.stderr
    assert "cronjob (cronjobs, cj)" in done.stderr
    assert "scaledobject (scaledobjects, so)" in done.stderr
    assert done.json()["exit_code"] == 2
    assert observe(shop, NS) == untouched(SPEC)


def test_an_excluded_scaledobject_is_not_paused(shop: ApiServer, env: dict[str, str]) -> None:
    shop.install_crds(KEDA_SCALED_OBJECT)
    target = {"scaleTargetRef": {"name": "web"}}
    shop.add_custom("keda.sh/v1alpha1", "ScaledObject", NS, "web-so", target)
    shop.add_custom(
        "keda.sh/v1alpha1", "ScaledObject", NS, "api-so", {"scaleTargetRef": {"name": "api"}}
    )

    down = run(env, "down", NS, "--exclude", "so/web-so", "-o", "json")

    assert down.code == 0, str(down)
    report = down.json()
    assert [s["name"] for s in report["suspended_resources"]] == ["api-so"]
    assert {"type": "scaledobject", "name": "web-so"}.items() <= next(
        s for s in report["skipped_resources"] if s["name"] == "web-so"
    ).items()
    web_so = shop.get_object("scaledobjects", NS, "web-so")
    assert web_so is not None
    assert PAUSED not in (web_so["metadata"].get("annotations") or {})
    assert observe(shop, NS) == scaled_down(SPEC)  # its Deployment went down all the same


# ------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    "durations",
    [
        ("--wait-timeout", "5", "--timeout", "30"),
        ("--wait-timeout", "5s", "--timeout", "30s", "--hold", "3600"),
        ("--wait-timeout", "1m", "--timeout", "1m", "--hold", "1h"),
    ],
)
def test_every_duration_option_takes_kubectl_s_forms(
    shop: ApiServer, env: dict[str, str], durations: tuple[str, ...]
) -> None:
    down = run(env, "down", NS, "--wait", *durations, "-o", "json")
    assert down.code == 0, str(down)
    assert observe(shop, NS) == scaled_down(SPEC)


def test_a_request_timeout_given_as_a_duration_reaches_kubectl(
    shop: ApiServer, env: dict[str, str]
) -> None:
    done = run(env, "status", NS, "--timeout", "2m", "-vv")
    assert done.code == 0, str(done)
    assert "--request-timeout=120" in done.stderr


@pytest.mark.parametrize("bad", ["5x", "0", "2d"])
def test_a_bad_timeout_is_bad_input(shop: ApiServer, env: dict[str, str], bad: str) -> None:
    done = run(env, "down", NS, "--timeout", bad)
    assert done.code == 2, str(done)
    assert "--timeout" in done.stderr
    assert observe(shop, NS) == untouched(SPEC)


# ------------------------------------------------------------------------ status -o json


def test_status_counts_are_integers(shop: ApiServer, env: dict[str, str]) -> None:
    assert run(env, "down", NS).code == 0
    status = run(env, "status", NS, "-o", "json")
    assert status.code == 0, str(status)
    found = {w["name"]: w for w in status.json()["workloads"]}
    assert found["web"]["original_replicas"] == 3
    assert found["web"]["scaled_replicas"] == 0
    assert found["web"]["replicas"] == 0
    assert found["db"]["original_replicas"] == 1


# ------------------------------------------------------------------------ a killed holder


def test_the_mark_names_its_process(shop: ApiServer, env: dict[str, str]) -> None:
    held = shop.hang("PUT", "deployments", "api", seconds=4)
    down = Running(env, "down", NS, "--batch-size", "1", "--parallel", "1")
    assert wait_until(lambda: held.seen > 0 or down.exited, 30)
    mark = lease(shop, NS)
    assert mark is not None
    holder = Holder.decode(mark["metadata"]["annotations"]["nsscale/holder-process"])
    here = this_process()
    assert holder is not None
    assert here is not None
    assert holder.pid == down.proc.pid
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert (holder.host, holder.boot_id) == (here.host, boot_id)
    assert not holder.gone(here)  # alive: its mark blocks as ever
    assert down.finish().code == 0


def test_a_holder_is_gone_only_when_surely_so() -> None:
    here = this_process()
    assert here is not None
    assert not here.gone(here)
    reused = Holder(here.host, here.boot_id, here.pid_namespace, here.pid, here.started + 1)
    assert reused.gone(here)  # the pid now names another process
    for elsewhere in (
        Holder("other-host", here.boot_id, here.pid_namespace, 2**22 + 1, 1),
        Holder(here.host, "another-boot", here.pid_namespace, 2**22 + 1, 1),
        Holder(here.host, here.boot_id, "pid:[1]", 2**22 + 1, 1),
    ):
        assert not elsewhere.gone(here)
    assert not Holder(here.host, here.boot_id, here.pid_namespace, 2**22 + 1, 1).gone(None)
    assert Holder(here.host, here.boot_id, here.pid_namespace, 2**22 + 1, 1).gone(here)
    assert Holder.decode("not a holder") is None
    assert Holder.decode(here.encode()) == here


def kill_a_down_mid_way(shop: ApiServer, env: dict[str, str]) -> int:
    """A real `down`, SIGKILLed while its last write is held (never to land): its live mark
    is left, and the workloads written before."""
    held = shop.hang("PUT", "statefulsets", "db")
    down = Running(env, "down", NS, "--batch-size", "1", "--parallel", "1")
    assert wait_until(lambda: held.seen > 0 or down.exited, 30), "the write was never held"
    down.proc.send_signal(signal.SIGKILL)
    assert down.finish().code == -signal.SIGKILL
    settle(shop)  # its kubectl, in its own session, may still be writing
    mark = lease(shop, NS)
    assert mark is not None, "a killed run leaves its mark"
    assert observe(shop, NS) != untouched(SPEC), "the kill came before any change"
    return down.proc.pid


def test_after_sigkill_on_this_host_up_proceeds_at_once(
    shop: ApiServer, env: dict[str, str]
) -> None:
    pid = kill_a_down_mid_way(shop, env)

    preview = run(env, "recover", NS, "--dry-run", "-o", "json")
    assert preview.code == 0, str(preview)
    assert "whose process no longer exists" in preview.stderr

    started = time.monotonic()
    up = run(env, "up", NS, "-o", "json")
    assert up.code == 0, str(up)
    assert time.monotonic() - started < 30, str(up)  # not the two minutes of a stale mark
    assert f"pid {pid}" in up.stderr  # the warning names the run taken over
    assert "is gone" in up.stderr
    assert observe(shop, NS) == untouched(SPEC), str(up)
    assert lease(shop, NS) is None


def test_after_sigkill_recover_proceeds_at_once(shop: ApiServer, env: dict[str, str]) -> None:
    kill_a_down_mid_way(shop, env)
    done = run(env, "recover", NS, "-o", "json")
    assert done.code == 0, str(done)
    assert observe(shop, NS) == untouched(SPEC)
    assert lease(shop, NS) is None


@pytest.mark.parametrize("where", ["another boot", "another host", "no record"])
def test_a_dead_pid_elsewhere_or_unrecorded_is_judged_as_ever(
    shop: ApiServer, env: dict[str, str], kubectl: KubectlFixture, where: str
) -> None:
    kill_a_down_mid_way(shop, env)
    mark = lease(shop, NS)
    assert mark is not None
    recorded = mark["metadata"]["annotations"]["nsscale/holder-process"]
    host, boot_id, *rest = recorded.split()
    changed = {
        "another boot": f"{host} 00000000-0000-0000-0000-000000000000 {' '.join(rest)}",
        "another host": f"elsewhere {boot_id} {' '.join(rest)}",
        "no record": None,
    }[where]
    patch = {"metadata": {"annotations": {"nsscale/holder-process": changed}}}
    patched = kubectl(
        "patch", "lease", "nsscale", "-n", NS, "--type=merge", "-p", json.dumps(patch)
    )
    assert patched.returncode == 0, patched.stderr
    before = observe(shop, NS)

    up = run(env, "up", NS)
    assert up.code == 1, str(up)
    assert "another nsscale run is working on shop" in up.stderr
    preview = run(env, "recover", NS, "--dry-run")
    assert preview.code == 1, str(preview)
    assert "a live nsscale run is working on shop" in preview.stderr
    assert observe(shop, NS) == before


# ------------------------------------------------------------------------ completion


def complete(env: Mapping[str, str], shell: str, line: str) -> tuple[list[str], float]:
    """What nsscale answers the completion script of `shell` for the command line `line`
    (the last word being completed), and how long it took."""
    words = line.split(" ")
    asked = {
        "bash": {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)},
        "zsh": {"_TYPER_COMPLETE_ARGS": line},
        "fish": {"_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
    }[shell]
    started = time.monotonic()
    proc = subprocess.run(
        [str(NSSCALE)],
        env={**env, "_NSSCALE_COMPLETE": f"complete_{shell}", **asked},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line], took


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_offers_the_namespaces_kubectl_lists(
    shop: ApiServer, env: dict[str, str], shell: str
) -> None:
    seed(shop, OTHER, {})
    shop.add_namespace("shipping")
    for line in ("nsscale down s", "nsscale status blog -n s", "nsscale recover s"):
        offered, _ = complete(env, shell, line)
        text = "\n".join(offered)
        assert "shop" in text, (line, offered)
        assert "shipping" in text, (line, offered)
        assert OTHER not in text.replace("status blog", ""), (line, offered)
    took = min(complete(env, shell, "nsscale up s")[1] for _ in range(3))
    assert took < 1.0, f"a Tab took {took:.2f}s"


def test_completion_offers_the_kubeconfig_s_contexts(
    shop: ApiServer, env: dict[str, str], tmp_path: Path
) -> None:
    config = shop.write_kubeconfig(tmp_path / "two", context="staging")
    offered, took = complete(env, "bash", f"nsscale down shop --kubeconfig {config} --context s")
    assert offered == ["staging"]
    offered, _ = complete(env, "bash", "nsscale down shop --context ")
    assert offered == ["local"]  # the test's own kubeconfig ($KUBECONFIG)
    assert took < 1.0


def test_completion_offers_nothing_when_kubectl_cannot_answer(
    shop: ApiServer, env: dict[str, str]
) -> None:
    shop.hang("GET", "namespaces", seconds=5)
    offered, took = complete(env, "bash", "nsscale down s")
    assert offered == []
    assert took < 1.5, f"a Tab took {took:.2f}s"


def test_completion_does_not_load_rich(env: dict[str, str]) -> None:
    # rich's markup stripping cost 70 ms a Tab in zsh and fish, for help that is plain text
    proc = subprocess.run(
        [str(NSSCALE.parent / "python"), "-X", "importtime", str(NSSCALE)],
        env={**env, "_NSSCALE_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "nsscale down --"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert '"--dry-run":"Show what would change; make no change at all."' in proc.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()]
    assert "rich" not in imported
    assert "nsscale.engine.plan" not in imported  # nor the engine
    assert os.path.basename(str(NSSCALE)) == "nsscale"
