"""KubectlCluster(raw_reads=True): each kind read with `kubectl get --raw`, the server's JSON
passed through, must find exactly what the ordinary `kubectl get -o json` read finds, in the same
order, with the same ways round a refusal and a bad selector."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsscale.errors import ErrorKind, KubectlError
from nsscale.kube.cluster import RAW_PAGE, KubectlCluster
from nsscale.kube.objects import WORKLOAD_KINDS, Kind
from nsscale.kubectl import Kubectl, KubectlConfig
from tests.apiserver.rbac import CLUSTER_SCOPE
from tests.apiserver.server import ApiServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def kubectl(kubectl_bin: Path, kubeconfig: Path) -> Kubectl:
    return Kubectl(KubectlConfig(str(kubectl_bin), kubeconfig=str(kubeconfig)))


@pytest.fixture
def spread(apiserver: ApiServer) -> ApiServer:
    for ns in ("a", "b", "c"):
        apiserver.add_namespace(ns)
        apiserver.add_deployment(ns, "web", replicas=2, labels={"tier": "web"})
        apiserver.add_deployment(ns, "api", replicas=1, annotations={"x": "tab\there"})
        apiserver.add_statefulset(ns, "db", replicas=1)
    return apiserver


def both(kubectl: Kubectl, *args: object) -> tuple[list[tuple[str, str, str, int]], ...]:
    """What the ordinary read and the raw read find: (namespace, kind, name, replicas)."""
    return tuple(
        [
            (w.namespace, w.kind.value, w.name, w.replicas)
            for w in KubectlCluster(kubectl, raw_reads=raw).list_workloads(*args)  # type: ignore[arg-type]
        ]
        for raw in (False, True)
    )


@pytest.mark.parametrize(
    "args",
    [
        (None,),
        (["c", "a"],),
        (["b"],),
        (None, "tier=web"),
        (["a", "b"], "tier!=web"),
        (["a"], None, (Kind.STATEFULSET,)),
    ],
)
def test_the_raw_read_finds_what_the_ordinary_read_finds(
    spread: ApiServer, kubectl: Kubectl, args: tuple[object, ...]
) -> None:
    ordinary, raw = both(kubectl, *args)
    assert ordinary  # every case finds something
    assert raw == ordinary


def test_the_raw_read_keeps_what_it_reads_whole(spread: ApiServer, kubectl: Kubectl) -> None:
    found = KubectlCluster(kubectl, raw_reads=True).list_workloads(["a"])
    api = next(w for w in found if w.name == "api")
    assert api.annotations["x"] == "tab\there"
    assert (api.manifest["kind"], api.manifest["apiVersion"]) == ("Deployment", "apps/v1")
    assert api.resource_version
    assert {w.kind for w in found} == set(WORKLOAD_KINDS)


def test_the_raw_read_follows_the_pages(apiserver: ApiServer, kubectl: Kubectl) -> None:
    for i in range(RAW_PAGE + 3):
        apiserver.add_deployment("big", f"w{i:04d}", replicas=1)
    found = KubectlCluster(kubectl, raw_reads=True).list_workloads(None)
    assert len(found) == RAW_PAGE + 3
    lists = [r for r in apiserver.requests if r.method == "GET" and r.resource == "deployments"]
    assert len(lists) == 2  # two pages


def test_the_raw_read_goes_round_a_refused_read_across_namespaces(
    spread: ApiServer, kubectl: Kubectl
) -> None:
    spread.forbid("list", "deployments", namespace=CLUSTER_SCOPE)
    ordinary, raw = both(kubectl, ["a", "c"])
    assert raw == ordinary
    assert {ns for ns, *_ in raw} == {"a", "c"}


def test_a_bad_selector_is_the_server_s_answer(spread: ApiServer, kubectl: Kubectl) -> None:
    with pytest.raises(KubectlError) as raised:
        KubectlCluster(kubectl, raw_reads=True).list_workloads(None, "tier=(")
    assert raised.value.kind is ErrorKind.INVALID
