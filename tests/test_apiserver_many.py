"""The local API server across namespaces, proven with the REAL kubectl (v1.37.1): the calls a
multi-namespace nsscale run makes -- a List of Leases created, replaced and deleted in one
process (no ``-n``), Lists of workloads replaced, lists across namespaces by label and field
selector, and access reviews asked per namespace.

What kubectl prints is kubectl's own; what it prints it from is the server's answers, shaped as
a real kube-apiserver (1.36) answers (docs/kubectl-facts.md and the apiserver's source):

- ``create -f - -o json`` / ``replace -f - -o json`` of a List: each written object as its own
  pretty-printed JSON document, concatenated (not a List); each failure one ``Error from
  server (<Reason>): error when creating|replacing "STDIN": ...`` line; kubectl goes on past
  failures and exits 1 if any.
- ``delete -f -``: one ``lease.coordination.k8s.io "nsscale" deleted from <ns> namespace``
  line per object (kubectl 1.37's wording); a missing one is a NotFound line, exit 1, the
  others deleted; ``--ignore-not-found`` skips it silently.
- Leases follow their real strategy: a PUT to a missing Lease creates it (201; its
  resourceVersion is not checked, a uid in it fails as a precondition), a PUT to an existing one
  must carry its resourceVersion.
- Lists across namespaces (``-A``) are in etcd's key order ``<namespace>/<name>``: namespace
  ``shop-dev`` comes before ``shop`` ('-' sorts before '/'), kinds in the order asked.
"""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest

from tests.apiserver.fixtures import Kubectl
from tests.apiserver.server import ApiServer
from tests.kubectl_io import as_list, failed, json_documents, ok

pytest_plugins = ["tests.apiserver.fixtures"]
pytestmark = pytest.mark.e2e

# "shop-dev/..." sorts before "shop/..." in etcd's key order
NAMESPACES = ("blog", "shop", "shop-dev")
LEASE = "lease.coordination.k8s.io"
STALE = (
    'Operation cannot be fulfilled on {} "{}": the object has been modified; please apply your '
    "changes to the latest version and try again"
)


def lease(namespace: str, holder: str = "me", name: str = "nsscale") -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 120},
    }


def holders(server: ApiServer) -> dict[str, str | None]:
    """The holder of the ``nsscale`` Lease in each namespace (None: no Lease)."""
    out: dict[str, str | None] = {}
    for ns in NAMESPACES:
        obj = server.get_object("leases", ns, "nsscale")
        out[ns] = None if obj is None else obj["spec"]["holderIdentity"]
    return out


def where(docs: list[Any]) -> list[tuple[str, str, str]]:
    return [(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs]


@pytest.fixture
def cluster(apiserver: ApiServer) -> ApiServer:
    for ns in NAMESPACES:
        apiserver.add_namespace(ns)
    return apiserver


def create_leases(kubectl: Kubectl, *items: dict[str, Any]) -> list[Any]:
    return json_documents(
        ok(kubectl("create", "-f", "-", "-o", "json", input=as_list(*items))).stdout
    )


# --------------------------------------------------------------------------- create


def test_create_a_list_of_leases_where_some_exist(cluster: ApiServer, kubectl: Kubectl) -> None:
    create_leases(kubectl, lease("shop", holder="other"))
    cluster.reset_counters()

    items = [lease(ns) for ns in (*NAMESPACES, "gone")]
    proc = kubectl("create", "-f", "-", "-o", "json", input=as_list(*items))
    assert failed(proc) == [
        'Error from server (AlreadyExists): error when creating "STDIN": '
        'leases.coordination.k8s.io "nsscale" already exists',
        'Error from server (NotFound): error when creating "STDIN": namespaces "gone" not found',
    ]
    docs = json_documents(proc.stdout)  # the created ones only, in the order given
    assert where(docs) == [("Lease", "blog", "nsscale"), ("Lease", "shop-dev", "nsscale")]
    assert proc.stdout.startswith('{\n    "apiVersion"')  # not a List
    for doc in docs:
        assert doc["metadata"]["resourceVersion"].isdigit()
        assert doc["metadata"]["uid"]
        assert doc["spec"] == {"holderIdentity": "me", "leaseDurationSeconds": 120}
    assert holders(cluster) == {"blog": "me", "shop": "other", "shop-dev": "me"}
    assert cluster.get_object("leases", "gone", "nsscale") is None
    creates = [(r.path, r.status) for r in cluster.requests if r.verb == "create"]
    assert creates == [
        (f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", status)
        for ns, status in (("blog", 201), ("shop", 409), ("shop-dev", 201), ("gone", 404))
    ]

    # every one fails: nothing on stdout, one line each
    proc = kubectl("create", "-f", "-", "-o", "json", input=as_list(*items))
    assert proc.stdout == ""
    assert [line.split(": ", 1)[0] for line in failed(proc)] == [
        "Error from server (AlreadyExists)"
    ] * 3 + ["Error from server (NotFound)"]
    assert cluster.unhandled == []


# --------------------------------------------------------------------------- replace


def test_replace_a_list_of_leases_across_namespaces(cluster: ApiServer, kubectl: Kubectl) -> None:
    read = create_leases(kubectl, *(lease(ns) for ns in NAMESPACES))
    # another run renews shop's Lease meanwhile: the copy read is stale
    theirs = copy.deepcopy(read[1])
    theirs["spec"]["holderIdentity"] = "other"
    ok(kubectl("replace", "-f", "-", input=json.dumps(theirs)))
    cluster.reset_counters()

    for doc in read:
        doc["spec"]["holderIdentity"] = "renewed"
    proc = kubectl("replace", "-f", "-", "-o", "json", input=as_list(*read))
    assert failed(proc) == [
        'Error from server (Conflict): error when replacing "STDIN": '
        + STALE.format("leases.coordination.k8s.io", "nsscale")
    ]
    docs = json_documents(proc.stdout)
    assert where(docs) == [("Lease", "blog", "nsscale"), ("Lease", "shop-dev", "nsscale")]
    for new, old in zip(docs, (read[0], read[2]), strict=True):
        assert new["spec"]["holderIdentity"] == "renewed"
        assert int(new["metadata"]["resourceVersion"]) > int(old["metadata"]["resourceVersion"])
    assert holders(cluster) == {"blog": "renewed", "shop": "other", "shop-dev": "renewed"}
    puts = [(r.namespace, r.status) for r in cluster.requests if r.verb == "update"]
    assert puts == [("blog", 200), ("shop", 409), ("shop-dev", 200)]
    assert cluster.unhandled == []


def test_replace_of_a_deleted_lease_creates_it_again(cluster: ApiServer, kubectl: Kubectl) -> None:
    # leaseStrategy.AllowCreateOnUpdate: a PUT that finds no Lease creates it, whatever
    # resourceVersion it carries (Store.Update's create path does not check it)
    read = create_leases(kubectl, lease("blog"), lease("shop"))
    assert ok(kubectl("delete", "lease", "nsscale", "-n", "shop")).returncode == 0
    cluster.reset_counters()

    for doc in read:
        doc["spec"]["holderIdentity"] = "renewed"
        del doc["metadata"]["uid"]
    proc = ok(kubectl("replace", "-f", "-", "-o", "json", input=as_list(*read)))
    blog, shop = json_documents(proc.stdout)
    assert shop["metadata"]["namespace"] == "shop"
    assert shop["spec"]["holderIdentity"] == "renewed"
    assert int(shop["metadata"]["resourceVersion"]) > int(blog["metadata"]["resourceVersion"])
    assert holders(cluster) == {"blog": "renewed", "shop": "renewed", "shop-dev": None}
    puts = [(r.namespace, r.status) for r in cluster.requests if r.verb == "update"]
    assert puts == [("blog", 200), ("shop", 201)]

    # with its uid the PUT is a precondition on that very object: a Conflict, nothing created
    ok(kubectl("delete", "lease", "nsscale", "-n", "shop"))
    proc = kubectl("replace", "-f", "-", input=as_list(shop))
    assert failed(proc) == [
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
        'fulfilled on leases.coordination.k8s.io "nsscale": StorageError: invalid object, '
        "Code: 4, Key: /registry/leases/shop/nsscale, ResourceVersion: 0, AdditionalErrorMsg: "
        f"Precondition failed: UID in precondition: {shop['metadata']['uid']}, UID in object "
        "meta: "
    ]
    assert cluster.get_object("leases", "shop", "nsscale") is None

    # the namespace must exist, and creating needs RBAC's create as well as update
    gone = {**lease("gone"), "metadata": {**lease("gone")["metadata"], "resourceVersion": "1"}}
    assert failed(kubectl("replace", "-f", "-", input=as_list(gone))) == [
        'Error from server (NotFound): error when replacing "STDIN": namespaces "gone" not found'
    ]
    cluster.forbid("create", "leases")
    del shop["metadata"]["uid"]
    assert failed(kubectl("replace", "-f", "-", input=as_list(shop))) == [
        'Error from server (Forbidden): error when replacing "STDIN": '
        'leases.coordination.k8s.io "nsscale" is forbidden: '
    ]
    assert cluster.get_object("leases", "shop", "nsscale") is None
    assert cluster.unhandled == []


def test_a_lease_put_must_carry_its_resource_version(cluster: ApiServer, kubectl: Kubectl) -> None:
    # leaseStrategy.AllowUnconditionalUpdate is false (kubectl replace reads the
    # resourceVersion first when the object has none; a raw PUT does not)
    create_leases(kubectl, lease("shop"))
    url = "/apis/coordination.k8s.io/v1/namespaces/shop/leases/nsscale"
    proc = kubectl("replace", "--raw", url, "-f", "-", input=json.dumps(lease("shop", "you")))
    assert failed(proc) == [
        'The leases "nsscale" is invalid: metadata.resourceVersion: Invalid value: 0: '
        "must be specified for an update"
    ]
    ok(kubectl("replace", "-f", "-", input=json.dumps(lease("shop", "you"))))
    assert holders(cluster)["shop"] == "you"


def test_replace_a_list_of_workloads_across_namespaces(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    for ns in ("blog", "shop"):
        apiserver.add_deployment(ns, "web", replicas=2)
        apiserver.add_statefulset(ns, "db", replicas=1)
    read = [
        apiserver.workload(ns, kind, name)
        for ns in ("blog", "shop")
        for kind, name in (("deployment", "web"), ("statefulset", "db"))
    ]
    apiserver.edit_workload("blog", "statefulset", "db", annotations={"someone": "else"})
    apiserver.edit_workload("shop", "deployment", "web", annotations={"someone": "else"})
    for obj in read:
        obj["spec"]["replicas"] = 0

    proc = kubectl("replace", "-f", "-", "-o", "json", input=as_list(*read))
    assert failed(proc) == [
        'Error from server (Conflict): error when replacing "STDIN": '
        + STALE.format("statefulsets.apps", "db"),
        'Error from server (Conflict): error when replacing "STDIN": '
        + STALE.format("deployments.apps", "web"),
    ]
    docs = json_documents(proc.stdout)
    assert where(docs) == [("Deployment", "blog", "web"), ("StatefulSet", "shop", "db")]
    assert [d["spec"]["replicas"] for d in docs] == [0, 0]
    assert [
        apiserver.workload(ns, kind, name)["spec"]["replicas"]
        for ns in ("blog", "shop")
        for kind, name in (("deployment", "web"), ("statefulset", "db"))
    ] == [0, 1, 2, 0]
    puts = [(r.resource, r.namespace, r.status) for r in apiserver.requests if r.verb == "update"]
    assert puts == [
        ("deployments", "blog", 200),
        ("statefulsets", "blog", 409),
        ("deployments", "shop", 409),
        ("statefulsets", "shop", 200),
    ]
    assert apiserver.unhandled == []


# --------------------------------------------------------------------------- delete


def test_delete_a_list_of_leases_across_namespaces(cluster: ApiServer, kubectl: Kubectl) -> None:
    create_leases(kubectl, lease("blog"), lease("shop-dev"))
    items = as_list(*(lease(ns) for ns in NAMESPACES))

    proc = kubectl("delete", "-f", "-", input=items)
    assert failed(proc) == [
        'Error from server (NotFound): error when deleting "STDIN": '
        'leases.coordination.k8s.io "nsscale" not found'
    ]
    assert proc.stdout.splitlines() == [
        f'{LEASE} "nsscale" deleted from blog namespace',
        f'{LEASE} "nsscale" deleted from shop-dev namespace',
    ]
    assert holders(cluster) == dict.fromkeys(NAMESPACES)

    create_leases(kubectl, lease("shop"))
    proc = ok(kubectl("delete", "-f", "-", "--ignore-not-found", input=items))
    assert proc.stdout.splitlines() == [f'{LEASE} "nsscale" deleted from shop namespace']
    assert proc.stderr == ""
    assert holders(cluster) == dict.fromkeys(NAMESPACES)
    deletes = [(r.namespace, r.status) for r in cluster.requests if r.verb == "delete"]
    assert deletes == [
        ("blog", 200),
        ("shop", 404),
        ("shop-dev", 200),
        ("blog", 404),
        ("shop", 200),
        ("shop-dev", 404),
    ]
    assert cluster.unhandled == []


def test_delete_with_preconditions(cluster: ApiServer, kubectl: Kubectl) -> None:
    # what `kubectl delete --raw URL -f -` with DeleteOptions gets (rest.BeforeDelete names
    # the object by its Kind)
    [held] = create_leases(kubectl, lease("shop"))
    url = "/apis/coordination.k8s.io/v1/namespaces/shop/leases/nsscale"

    def delete(**preconditions: str) -> subprocess.CompletedProcess[str]:
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": preconditions}
        return kubectl("delete", "--raw", url, "-f", "-", input=json.dumps(options))

    rv, uid = held["metadata"]["resourceVersion"], held["metadata"]["uid"]
    stale = str(int(rv) - 1)
    assert failed(delete(resourceVersion=stale)) == [
        "Error from server (Conflict): Operation cannot be fulfilled on Lease.coordination.k8s.io "
        f'"nsscale": the ResourceVersion in the precondition ({stale}) does not match the '
        f"ResourceVersion in record ({rv}). The object might have been modified"
    ]
    assert failed(delete(uid="0f0e", resourceVersion=stale)) == [  # the uid is checked first
        "Error from server (Conflict): Operation cannot be fulfilled on Lease.coordination.k8s.io "
        f'"nsscale": the UID in the precondition (0f0e) does not match the UID in record ({uid}). '
        "The object might have been deleted and then recreated"
    ]
    assert holders(cluster)["shop"] == "me"
    status = json.loads(ok(delete(uid=uid, resourceVersion=rv)).stdout)
    assert (status["kind"], status["status"]) == ("Status", "Success")
    assert holders(cluster)["shop"] is None
    assert failed(delete(resourceVersion=rv)) == [
        'Error from server (NotFound): leases.coordination.k8s.io "nsscale" not found'
    ]


# --------------------------------------------------------------------------- lists


def test_leases_across_namespaces_by_field_selector(cluster: ApiServer, kubectl: Kubectl) -> None:
    create_leases(kubectl, lease("shop"), lease("blog"), lease("shop", name="other"))

    proc = kubectl("get", "leases", "-A", "--field-selector", "metadata.name=nsscale", "-o", "json")
    out = json.loads(ok(proc).stdout)
    assert (out["kind"], out["apiVersion"]) == ("List", "v1")
    assert where(out["items"]) == [("Lease", "blog", "nsscale"), ("Lease", "shop", "nsscale")]
    [listed] = [r for r in cluster.requests if r.verb == "list"]
    assert (listed.path, listed.query["fieldSelector"]) == (
        "/apis/coordination.k8s.io/v1/leases",
        "metadata.name=nsscale",
    )

    def names(*selector: str) -> list[str]:
        return ok(kubectl("get", "leases", *selector, "-o", "name")).stdout.split()

    other, nsscale = f"{LEASE}/other", f"{LEASE}/nsscale"
    assert names("-A", "--field-selector", "metadata.namespace=shop") == [nsscale, other]
    assert names("-A", "--field-selector", "metadata.name==nsscale,metadata.namespace!=blog") == [
        nsscale
    ]
    assert names("-n", "shop", "--field-selector", "metadata.name!=nsscale") == [other]
    assert names("-n", "shop-dev", "--field-selector", "metadata.name=nsscale") == []

    # a field the kind cannot select on, or no operator: the real 400
    def refused(resource: str, selector: str) -> list[str]:
        return failed(kubectl("get", resource, "-A", "--field-selector", selector, "-o", "json"))

    def line(resource: str, selector: str, message: str) -> list[str]:
        return [
            f'Error from server (BadRequest): Unable to find "{resource}" that match label '
            f'selector "", field selector "{selector}": {message}'
        ]

    leases = "coordination.k8s.io/v1, Resource=leases"
    assert refused("leases", "spec.holderIdentity=me") == line(
        leases,
        "spec.holderIdentity=me",
        '"spec.holderIdentity" is not a known field selector: only "metadata.name", '
        '"metadata.namespace"',
    )
    assert refused("leases", "metadata.name") == line(
        leases,
        "metadata.name",
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
    )
    # Namespaces have their own field label conversion: metadata.name and status.phase
    namespaces = "/v1, Resource=namespaces"
    assert refused("namespaces", "metadata.namespace=shop") == line(
        namespaces,
        "metadata.namespace=shop",
        "field label not supported: metadata.namespace",
    )
    proc = kubectl("get", "namespaces", "--field-selector", "status.phase=Active", "-o", "name")
    assert ok(proc).stdout.split() == [
        f"namespace/{ns}" for ns in sorted((*NAMESPACES, "default", "kube-system"))
    ]
    proc = kubectl("get", "namespaces", "--field-selector", "metadata.name=shop", "-o", "name")
    assert ok(proc).stdout.split() == ["namespace/shop"]
    assert {r.status for r in cluster.requests if r.verb == "list"} == {200, 400}
    assert cluster.unhandled == []  # answered as the real server does


def test_namespaces_with_labels_and_annotations(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_namespace("shop", labels={"team": "x"}, annotations={"owner": "a"})
    apiserver.add_namespace("shop-dev", labels={"team": "x", "env": "dev"})
    apiserver.add_namespace("blog", labels={"team": "y"})

    out = json.loads(ok(kubectl("get", "namespaces", "-o", "json")).stdout)
    assert (out["kind"], out["apiVersion"]) == ("List", "v1")
    items = {i["metadata"]["name"]: i for i in out["items"]}
    # cluster-scoped: the key is the name alone, so "shop" sorts before "shop-dev"
    assert list(items) == ["blog", "default", "kube-system", "shop", "shop-dev"]
    for name, ns in items.items():
        assert (ns["kind"], ns["apiVersion"]) == ("Namespace", "v1")
        assert ns["status"] == {"phase": "Active"}
        assert ns["spec"] == {"finalizers": ["kubernetes"]}
        assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == name
        assert "namespace" not in ns["metadata"]
        assert ns["metadata"]["resourceVersion"].isdigit()
    assert items["shop"]["metadata"]["annotations"] == {"owner": "a"}
    assert all("annotations" not in items[n]["metadata"] for n in ("blog", "default", "shop-dev"))
    assert items["shop-dev"]["metadata"]["labels"] == {
        "env": "dev",
        "kubernetes.io/metadata.name": "shop-dev",
        "team": "x",
    }

    out = json.loads(ok(kubectl("get", "namespaces", "-l", "team=x", "-o", "json")).stdout)
    assert [i["metadata"]["name"] for i in out["items"]] == ["shop", "shop-dev"]
    [listed] = [r for r in apiserver.requests if r.query.get("labelSelector")]
    assert (listed.path, listed.query["labelSelector"]) == ("/api/v1/namespaces", "team=x")
    assert apiserver.unhandled == []


def test_workloads_across_namespaces_by_label(apiserver: ApiServer, kubectl: Kubectl) -> None:
    for ns in ("shop", "shop-dev", "blog"):
        apiserver.add_deployment(ns, "web")
    apiserver.add_deployment("blog", "api")  # app=api
    apiserver.add_statefulset("shop", "db", labels={"app": "web"})
    apiserver.add_statefulset("blog", "cache", labels={"app": "web"})
    apiserver.add_statefulset("blog", "queue")  # app=queue

    proc = kubectl("get", "deployments,statefulsets", "-A", "-l", "app=web", "-o", "json")
    out = json.loads(ok(proc).stdout)
    assert (out["kind"], out["metadata"]) == ("List", {"resourceVersion": ""})
    assert where(out["items"]) == [
        ("Deployment", "blog", "web"),
        ("Deployment", "shop-dev", "web"),  # etcd's key order: "shop-dev/" < "shop/"
        ("Deployment", "shop", "web"),
        ("StatefulSet", "blog", "cache"),
        ("StatefulSet", "shop", "db"),
    ]
    assert {i["apiVersion"] for i in out["items"]} == {"apps/v1"}
    assert all(i["metadata"]["labels"]["app"] == "web" for i in out["items"])
    lists = [(r.path, r.query.get("labelSelector")) for r in apiserver.requests if r.verb == "list"]
    assert lists == [
        ("/apis/apps/v1/deployments", "app=web"),
        ("/apis/apps/v1/statefulsets", "app=web"),
    ]

    proc = kubectl("get", "statefulsets,deployments", "-A", "-l", "app=web", "-o", "json")
    assert [i["kind"] for i in json.loads(ok(proc).stdout)["items"]] == ["StatefulSet"] * 2 + [
        "Deployment"
    ] * 3
    assert apiserver.unhandled == []


# --------------------------------------------------------------------------- access reviews


def review(namespace: str, verb: str, resource: str, subresource: str = "") -> dict[str, Any]:
    attributes = {"namespace": namespace, "verb": verb, "group": "apps", "resource": resource}
    if subresource:
        attributes["subresource"] = subresource
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def test_access_reviews_are_answered_per_namespace(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.forbid("update", "deployments", namespace="shop")
    apiserver.forbid("patch", "statefulsets/scale", namespace="blog")
    reviews = [
        *(review(ns, "update", "deployments") for ns in NAMESPACES),
        *(review(ns, "patch", "statefulsets", "scale") for ns in ("blog", "shop")),
    ]
    proc = kubectl("create", "-f", "-", "-o", "json", "--validate=false", input=as_list(*reviews))
    docs = json_documents(ok(proc).stdout)
    assert {(d["kind"], d["apiVersion"]) for d in docs} == {
        ("SelfSubjectAccessReview", "authorization.k8s.io/v1")
    }
    assert [d["spec"] for d in docs] == [r["spec"] for r in reviews]  # echoed as asked
    assert [d["status"]["allowed"] for d in docs] == [True, False, True, False, True]
    posts = {(r.path, r.namespace, r.status) for r in apiserver.requests if r.verb == "create"}
    assert posts == {("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", None, 201)}
    assert len([r for r in apiserver.requests if r.verb == "create"]) == len(reviews)
    assert apiserver.unhandled == []
