"""The kinds the local API server learned for suspending owners and waiting on workloads,
proven with the REAL kubectl (v1.37.1): CronJobs, HorizontalPodAutoscalers,
CustomResourceDefinitions installed at runtime and their custom resources, Events (core and
``events.k8s.io``) with ``kubectl describe``, and workload status a test drives (held not
ready, ready after a delay, a controller that has not seen the spec).

What kubectl prints is its own; what it prints it from is the server's answers, shaped as a
real kube-apiserver (1.36) answers. For a type the server does not serve, the pinned kubectl
prints ``error: the server doesn't have a resource type "scaledobjects"`` and, named with its
group, ``... "scaledobjects" in group "keda.sh"`` (exit 1); once the definition is installed,
the next kubectl call finds the type although its discovery cache (``KUBECACHEDIR``) predates
it: kubectl drops the cache and asks again when it meets an unknown type.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.apiserver.fixtures import Kubectl
from tests.apiserver.kinds.custom import (
    ARGO_APPLICATION,
    FLUX_HELM_RELEASE,
    FLUX_KUSTOMIZATION,
    KEDA_SCALED_OBJECT,
    READY_MADE,
)
from tests.apiserver.server import ApiServer
from tests.kubectl_io import as_list, failed, json_documents, ok

pytest_plugins = ["tests.apiserver.fixtures"]
pytestmark = pytest.mark.e2e

NS = "shop"
STALE = (
    'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled '
    'on {} "{}": the object has been modified; please apply your changes to the latest '
    "version and try again"
)


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(ok(kubectl("get", *args, "-o", "json")).stdout)


def where(items: list[Any]) -> list[tuple[str, str, str]]:
    return [(i["kind"], i["metadata"].get("namespace", ""), i["metadata"]["name"]) for i in items]


def wait_until(condition: Callable[[], object], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# --------------------------------------------------------------------------- CronJobs


def suspended(server: ApiServer) -> dict[str, bool]:
    return {c["metadata"]["name"]: c["spec"]["suspend"] for c in server.objects("cronjobs")}


def test_cronjobs(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_cronjob(NS, "nightly", "0 2 * * *", suspend=True, annotations={"a": "b"})
    apiserver.add_cronjob(NS, "hourly")  # suspend absent: defaulted to false
    apiserver.add_cronjob("blog", "report", suspend=False, labels={"team": "x"})

    out = get_json(kubectl, "cronjobs", "-n", NS)
    assert where(out["items"]) == [("CronJob", NS, "hourly"), ("CronJob", NS, "nightly")]
    hourly, nightly = out["items"]
    assert hourly["apiVersion"] == "batch/v1"
    assert hourly["spec"]["suspend"] is False
    assert nightly["spec"]["suspend"] is True
    assert nightly["spec"]["schedule"] == "0 2 * * *"
    assert nightly["metadata"]["annotations"] == {"a": "b"}
    assert "annotations" not in hourly["metadata"]
    assert hourly["metadata"]["generation"] == 1
    assert hourly["status"] == {}
    assert {k: hourly["spec"][k] for k in ("concurrencyPolicy", "successfulJobsHistoryLimit")} == {
        "concurrencyPolicy": "Allow",
        "successfulJobsHistoryLimit": 3,
    }
    # across namespaces, in etcd's key order
    everywhere = get_json(kubectl, "cronjobs", "-A")
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["report", "hourly", "nightly"]

    # replace -f - is guarded by the resourceVersion each object carries
    stale = json.loads(json.dumps(nightly))
    hourly["spec"]["suspend"] = True
    nightly["spec"]["suspend"] = False
    docs = json_documents(
        ok(kubectl("replace", "-f", "-", "-o", "json", input=as_list(hourly, nightly))).stdout
    )
    written = [(d["metadata"]["name"], d["spec"]["suspend"]) for d in docs]
    assert written == [("hourly", True), ("nightly", False)]
    assert [d["metadata"]["generation"] for d in docs] == [2, 2]
    stale["spec"]["suspend"] = True
    proc = kubectl("replace", "-f", "-", input=as_list(stale))
    assert failed(proc) == [STALE.format("cronjobs.batch", "nightly")]
    assert suspended(apiserver) == {"report": False, "hourly": True, "nightly": False}

    # patch: strategic by default, merge; a removed suspend is defaulted again
    ok(kubectl("patch", "cronjob", "nightly", "-n", NS, "-p", '{"spec":{"suspend":true}}'))
    unset = '{"spec":{"suspend":null}}'
    proc = ok(kubectl("patch", "cronjob", "hourly", "-n", NS, "--type=merge", "-p", unset))
    assert proc.stdout == "cronjob.batch/hourly patched\n"
    assert suspended(apiserver) == {"report": False, "hourly": False, "nightly": True}

    proc = kubectl("patch", "cronjob", "hourly", "-n", NS, "-p", '{"spec":{"suspend":"yes"}}')
    assert failed(proc) == [
        'Error from server (BadRequest): CronJob in version "v1" cannot be handled as a '
        "CronJob: json: cannot unmarshal string into Go struct field CronJobSpec.spec.suspend "
        "of type bool"
    ]
    lines = ok(kubectl("get", "cronjobs", "-n", NS)).stdout.splitlines()
    header = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert lines[0].split() == header
    assert lines[2].split()[:9] == ["nightly", "0", "2", "*", "*", "*", "<none>", "True", "0"]
    assert apiserver.unhandled == []


# --------------------------------------------------------------------------- HPAs


def test_horizontal_pod_autoscalers(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_deployment(NS, "web", replicas=3)
    apiserver.add_hpa(NS, "web", "Deployment", "web", min_replicas=2, max_replicas=5)
    apiserver.add_hpa("blog", "api", "deploy", "api", min_replicas=None, max_replicas=3)

    out = get_json(kubectl, "hpa", "-A")
    assert where(out["items"]) == [
        ("HorizontalPodAutoscaler", "blog", "api"),
        ("HorizontalPodAutoscaler", NS, "web"),
    ]
    api, web = out["items"]
    assert web["apiVersion"] == "autoscaling/v2"
    assert web["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    assert (web["spec"]["minReplicas"], web["spec"]["maxReplicas"]) == (2, 5)
    assert web["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert web["status"] == {"currentReplicas": 3, "desiredReplicas": 3}
    assert api["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert api["spec"]["minReplicas"] == 1  # defaulted
    assert api["status"] == {"desiredReplicas": 0}  # no target
    one = get_json(kubectl, "horizontalpodautoscalers.autoscaling", "web", "-n", NS)
    assert one["metadata"]["uid"] == web["metadata"]["uid"]

    group = json.loads(ok(kubectl("get", "--raw", "/apis/autoscaling")).stdout)
    assert group["preferredVersion"]["version"] == "v2"
    bad = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "bad", "namespace": NS},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 0},
    }
    assert failed(kubectl("create", "-f", "-", input=json.dumps(bad))) == [
        'The HorizontalPodAutoscaler "bad" is invalid: spec.maxReplicas: Invalid value: 0: '
        "must be greater than 0"
    ]
    lines = ok(kubectl("get", "hpa", "-n", NS)).stdout.splitlines()
    assert lines[1].split()[:7] == ["web", "Deployment/web", "cpu:", "<unknown>/80%", "2", "5", "3"]
    assert apiserver.unhandled == []


# --------------------------------------------------------------------------- custom resources


def test_a_definition_installed_at_runtime_is_found_by_the_next_kubectl(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    apiserver.add_deployment(NS, "web")
    ok(kubectl("get", "deployments", "-n", NS))  # the discovery cache is warm
    proc = kubectl("get", "scaledobjects", "-A", "-o", "json")
    assert failed(proc) == ['error: the server doesn\'t have a resource type "scaledobjects"']
    assert proc.stdout == ""
    proc = kubectl("get", "scaledobjects.keda.sh", "-A", "-o", "json")
    assert failed(proc) == [
        'error: the server doesn\'t have a resource type "scaledobjects" in group "keda.sh"'
    ]

    apiserver.install_crds(*READY_MADE)
    apiserver.install_crd(*("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects"))  # once
    spec = {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "triggers": [{"type": "cron"}]}
    apiserver.add_custom(
        "keda.sh/v1alpha1", "ScaledObject", NS, "web", spec, annotations={"a": "b"}
    )
    apiserver.add_custom("keda.sh/v1alpha1", "ScaledObject", "blog", "api", {"any": ["thing", 1]})
    apiserver.add_custom(
        FLUX_KUSTOMIZATION.api_version, "Kustomization", "flux-system", "apps", {"suspend": False}
    )
    apiserver.add_custom(
        FLUX_HELM_RELEASE.api_version, "HelmRelease", NS, "web", {"interval": "5m"}
    )
    apiserver.add_custom(
        ARGO_APPLICATION.api_version, "Application", "argocd", "shop", {"project": "default"}
    )

    out = get_json(kubectl, "scaledobjects.keda.sh", "-A")
    assert where(out["items"]) == [("ScaledObject", "blog", "api"), ("ScaledObject", NS, "web")]
    api, web = out["items"]
    assert web["apiVersion"] == KEDA_SCALED_OBJECT.api_version
    assert web["spec"] == spec
    assert api["spec"] == {"any": ["thing", 1]}
    assert web["metadata"]["generation"] == 1
    assert web["metadata"]["annotations"] == {"a": "b"}
    assert "status" not in web

    kinds = ",".join(crd.name for crd in (FLUX_KUSTOMIZATION, FLUX_HELM_RELEASE, ARGO_APPLICATION))
    assert where(get_json(kubectl, kinds, "-A")["items"]) == [
        ("Kustomization", "flux-system", "apps"),
        ("HelmRelease", NS, "web"),
        ("Application", "argocd", "shop"),
    ]
    assert [i["metadata"]["name"] for i in get_json(kubectl, "so", "-n", NS)["items"]] == ["web"]
    crd = get_json(kubectl, "crd", KEDA_SCALED_OBJECT.name)
    assert crd["spec"]["names"]["shortNames"] == ["so"]
    established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
    assert established[0]["status"] == "True"
    resources = ok(kubectl("api-resources", "--api-group=keda.sh", "--no-headers")).stdout.split()
    assert resources == ["scaledobjects", "so", "keda.sh/v1alpha1", "true", "ScaledObject"]
    assert apiserver.unhandled == []


def test_custom_resource_writes(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.install_crds(KEDA_SCALED_OBJECT, FLUX_KUSTOMIZATION)
    apiserver.add_custom(
        "keda.sh/v1alpha1",
        "ScaledObject",
        NS,
        "web",
        {"minReplicaCount": 2},
        status={"conditions": [{"type": "Ready", "status": "True"}]},
    )

    def stored() -> Any:
        return apiserver.get_object("scaledobjects", NS, "web")

    # metadata only: no new generation; the spec: a new one; status comes from the status only
    paused = '{"metadata":{"annotations":{"autoscaling.keda.sh/paused":"true"}}}'
    ok(kubectl("patch", "so", "web", "-n", NS, "--type=merge", "-p", paused))
    assert stored()["metadata"]["generation"] == 1
    assert stored()["metadata"]["annotations"] == {"autoscaling.keda.sh/paused": "true"}
    proc = kubectl("patch", "so", "web", "-n", NS, "-p", paused)
    assert failed(proc) == [
        "error: application/strategic-merge-patch+json is not supported by keda.sh/v1alpha1, "
        "Kind=ScaledObject: the body of the request was in an unknown format - accepted media "
        "types include: application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml"
    ]

    current = get_json(kubectl, "so", "web", "-n", NS)
    current["spec"]["minReplicaCount"] = 0
    current["status"] = {"ignored": True}
    [doc] = json_documents(
        ok(kubectl("replace", "-f", "-", "-o", "json", input=as_list(current))).stdout
    )
    assert doc["metadata"]["generation"] == 2
    assert doc["status"] == {"conditions": [{"type": "Ready", "status": "True"}]}
    proc = kubectl("replace", "-f", "-", input=as_list(current))  # its resourceVersion is stale now
    assert failed(proc) == [STALE.format("scaledobjects.keda.sh", "web")]
    # a PUT without a resourceVersion is refused (kubectl replace fills it in; --raw does not)
    del current["metadata"]["resourceVersion"]
    url = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/web"
    proc = kubectl("replace", "--raw", url, "-f", "-", input=json.dumps(current))
    assert failed(proc) == [
        'The scaledobjects "web" is invalid: metadata.resourceVersion: Invalid value: 0: must be '
        "specified for an update"
    ]

    status = '{"status":{"conditions":[{"type":"Paused","status":"True"}]}}'
    merge = ("--type=merge", "-p", status)
    ok(kubectl("patch", "so", "web", "-n", NS, "--subresource=status", *merge))
    assert stored()["status"] == {"conditions": [{"type": "Paused", "status": "True"}]}
    assert stored()["metadata"]["generation"] == 2

    # created with a status: dropped (the status subresource owns it)
    new = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": NS},
        "spec": {"suspend": True, "path": "./apps"},
        "status": {"x": 1},
    }
    [doc] = json_documents(
        ok(kubectl("create", "-f", "-", "-o", "json", input=as_list(new))).stdout
    )
    assert (doc["spec"], doc["metadata"]["generation"], "status" in doc) == (new["spec"], 1, False)

    # a definition created with kubectl serves its kind too
    widget = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    ok(kubectl("create", "-f", "-", input=json.dumps(widget)))
    item = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": NS},
        "spec": {"size": 3},
    }
    ok(kubectl("create", "-f", "-", input=json.dumps(item)))
    assert get_json(kubectl, "widgets", "w", "-n", NS)["spec"] == {"size": 3}
    assert apiserver.unhandled == []


def test_custom_resource_python_api(apiserver: ApiServer) -> None:
    with pytest.raises(ValueError, match="install it first"):
        apiserver.add_custom("keda.sh/v1alpha1", "ScaledObject", NS, "web", {})
    first = apiserver.install_crd("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects")
    again = apiserver.install_crds(KEDA_SCALED_OBJECT)[0]
    assert first["metadata"]["uid"] == again["metadata"]["uid"]
    so = apiserver.add_custom("keda.sh/v1alpha1", "ScaledObject", NS, "web", {"a": 1})
    edited = apiserver.edit_object("scaledobjects.keda.sh", NS, "web", {"spec": {"a": 2}})
    assert edited["metadata"]["generation"] == 2
    assert int(edited["metadata"]["resourceVersion"]) > int(so["metadata"]["resourceVersion"])
    with pytest.raises(ValueError, match="stored for another group"):
        apiserver.install_crd("other.io", "v1", "ScaledObject", "scaledobjects")


# --------------------------------------------------------------------------- readiness


def status_of(server: ApiServer, kind: str, name: str) -> dict[str, Any]:
    return dict(server.workload(NS, kind, name)["status"])


def rollout_status(kubectl: Kubectl, what: str) -> str:
    """``kubectl rollout status --watch=false``: kubectl's own judgement, printed once."""
    return ok(kubectl("rollout", "status", what, "-n", NS, "--watch=false")).stdout


def test_hold_ready_and_release(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_deployment(NS, "web", replicas=0)
    apiserver.add_statefulset(NS, "db", replicas=0)
    apiserver.hold_ready(NS, ready=1)  # every workload of the namespace

    ok(kubectl("scale", "deployment/web", "statefulset/db", "--replicas=3", "-n", NS))
    web = apiserver.workload(NS, "deployment", "web")
    status = web["status"]
    assert status["observedGeneration"] == web["metadata"]["generation"] == 2
    assert {k: v for k, v in status.items() if k.lower().endswith("replicas")} == {
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "unavailableReplicas": 2,
    }
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Available": ("False", "MinimumReplicasUnavailable"),
        "Progressing": ("True", "ReplicaSetUpdated"),
    }
    db = status_of(apiserver, "statefulset", "db")
    assert (db["replicas"], db["readyReplicas"], db["availableReplicas"]) == (2, 1, 1)
    assert rollout_status(kubectl, "deployment/web") == (
        'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...\n'
    )
    assert rollout_status(kubectl, "statefulset/db") == "Waiting for 2 pods to be ready...\n"

    before = apiserver.resource_version
    apiserver.release(NS)  # the controller catches up: new resourceVersions
    assert apiserver.resource_version == before + 2
    assert rollout_status(kubectl, "deployment/web") == 'deployment "web" successfully rolled out\n'
    status = status_of(apiserver, "deployment", "web")
    assert (status["readyReplicas"], status["availableReplicas"]) == (3, 3)
    assert "unavailableReplicas" not in status
    assert status_of(apiserver, "statefulset", "db")["readyReplicas"] == 3

    # a hold on a running workload: its pods stop being ready at once
    apiserver.hold_ready(NS, "web", kind="deployment", ready=0)
    status = status_of(apiserver, "deployment", "web")
    assert (status["replicas"], status["unavailableReplicas"]) == (3, 3)
    assert "readyReplicas" not in status
    assert "availableReplicas" not in status
    assert status_of(apiserver, "statefulset", "db")["readyReplicas"] == 3  # not held
    # scaled to 0: nothing to wait for, no counts at all
    ok(kubectl("scale", "deployment/web", "--replicas=0", "-n", NS))
    status = status_of(apiserver, "deployment", "web")
    assert not {k for k in status if k.lower().endswith("replicas")}
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Available": "True",
        "Progressing": "True",
    }
    apiserver.release(NS, "web")
    # rollout status also starts a watch, which this server does not serve (405)
    assert {r.verb for r in apiserver.unhandled} == {"watch"}


def test_ready_after_a_delay(apiserver: ApiServer, kubectl: Kubectl) -> None:
    apiserver.add_deployment(NS, "web", replicas=1)
    apiserver.rollout(NS, "web", ready_after=0.4)
    ok(kubectl("scale", "deployment/web", "--replicas=3", "-n", NS))
    status = status_of(apiserver, "deployment", "web")
    assert (status["replicas"], status["readyReplicas"], status["unavailableReplicas"]) == (3, 1, 2)
    rv = apiserver.workload(NS, "deployment", "web")["metadata"]["resourceVersion"]
    wait_until(lambda: status_of(apiserver, "deployment", "web").get("readyReplicas") == 3)
    after = apiserver.workload(NS, "deployment", "web")
    assert int(after["metadata"]["resourceVersion"]) == int(rv) + 1
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"] == 2
    # each change of the spec waits again; a scale down is at once
    ok(kubectl("scale", "deployment/web", "--replicas=5", "-n", NS))
    assert status_of(apiserver, "deployment", "web")["readyReplicas"] == 3
    ok(kubectl("scale", "deployment/web", "--replicas=2", "-n", NS))
    assert status_of(apiserver, "deployment", "web")["readyReplicas"] == 2
    time.sleep(0.5)
    assert status_of(apiserver, "deployment", "web")["readyReplicas"] == 2
    apiserver.release(NS)


def test_a_stalled_controller_has_not_observed_the_spec(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    apiserver.add_deployment(NS, "web", replicas=2)
    apiserver.stall(NS, "web")
    ok(kubectl("scale", "deployment/web", "--replicas=0", "-n", NS))
    web = apiserver.workload(NS, "deployment", "web")
    assert (web["metadata"]["generation"], web["status"]["observedGeneration"]) == (2, 1)
    assert web["status"]["readyReplicas"] == 2
    assert (
        rollout_status(kubectl, "deployment/web")
        == "Waiting for deployment spec update to be observed...\n"
    )
    apiserver.release(NS, "web")
    web = apiserver.workload(NS, "deployment", "web")
    assert web["status"]["observedGeneration"] == 2
    assert "replicas" not in web["status"]


def test_readiness_python_api(apiserver: ApiServer) -> None:
    with pytest.raises(ValueError, match="ready must be"):
        apiserver.hold_ready(NS, ready=-1)
    with pytest.raises(ValueError, match="unknown workload kind"):
        apiserver.stall(NS, kind="cronjob")
    apiserver.hold_ready(NS, kind="sts", ready=0)
    apiserver.add_statefulset(NS, "db", replicas=2)  # added while held
    assert status_of(apiserver, "statefulset", "db")["replicas"] == 1
    apiserver.add_deployment(NS, "web", replicas=2)  # another kind: not held
    assert status_of(apiserver, "deployment", "web")["readyReplicas"] == 2


# --------------------------------------------------------------------------- Events


def event(namespace: str, name: str, involved: dict[str, Any], reason: str) -> dict[str, Any]:
    meta = involved["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "reason": reason,
        "message": f"{reason} happened",
        "type": "Normal",
        "source": {"component": "nsscale"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "count": 1,
    }


def test_events_created_listed_and_described(apiserver: ApiServer, kubectl: Kubectl) -> None:
    web = apiserver.add_deployment(NS, "web", replicas=2)
    blog = apiserver.add_deployment("blog", "web", replicas=1)
    older = {**web, "metadata": {**web["metadata"], "uid": "0000-before-recreated"}}
    items = [
        event(NS, "web.1", web, "Scaled"),
        event("blog", "web.2", blog, "Scaled"),
        event(NS, "web.3", older, "Gone"),  # the same name and kind, another uid
    ]
    v1 = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.4", "namespace": NS},
        "eventTime": "2026-01-01T00:00:01.000000Z",
        "reportingController": "nsscale",
        "reportingInstance": "nsscale-1",
        "action": "Suspend",
        "reason": "Suspended",
        "note": "suspended by nsscale",
        "type": "Normal",
        "regarding": items[0]["involvedObject"],
    }
    created = ok(kubectl("create", "-f", "-", input=as_list(*items, v1))).stdout.splitlines()
    names = [*(f"event/web.{i}" for i in (1, 2, 3)), "event.events.k8s.io/web.4"]
    assert created == [f"{name} created" for name in names]

    core = get_json(kubectl, "events", "-A")["items"]
    assert where(core) == [
        ("Event", "blog", "web.2"),
        *(("Event", NS, f"web.{i}") for i in (1, 3, 4)),
    ]
    assert core[1]["involvedObject"] == items[0]["involvedObject"]
    assert core[3]["involvedObject"] == v1["regarding"]
    assert (core[3]["message"], core[3]["reportingComponent"], core[3]["eventTime"]) == (
        "suspended by nsscale",
        "nsscale",
        "2026-01-01T00:00:01.000000Z",
    )
    new = get_json(kubectl, "events.events.k8s.io", "-n", NS)["items"]
    assert [e["apiVersion"] for e in new] == ["events.k8s.io/v1"] * 3
    assert new[0]["regarding"] == items[0]["involvedObject"]
    assert (new[0]["note"], new[0]["deprecatedSource"], new[0]["deprecatedCount"]) == (
        "Scaled happened",
        {"component": "nsscale"},
        1,
    )

    uid = web["metadata"]["uid"]
    selector = f"involvedObject.uid={uid}"
    selected = kubectl("get", "events", "-n", NS, "--field-selector", selector, "-o", "name")
    assert ok(selected).stdout.split() == ["event/web.1", "event/web.4"]
    selector = "regarding.name=web,reportingController=nsscale,type=Normal"
    selected = kubectl(
        "get", "events.events.k8s.io", "-A", "--field-selector", selector, "-o", "name"
    )
    # the core Events written with a source only have no reporting controller
    assert ok(selected).stdout.split() == ["event.events.k8s.io/web.4"]
    described = ok(kubectl("describe", "deployment", "web", "-n", NS)).stdout
    events = described[described.index("Events:") :].splitlines()
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    # kubectl sorts them by lastTimestamp: the events.k8s.io one has none (eventTime), first
    assert [line.split()[1] for line in events[3:]] == ["Suspended", "Scaled"]
    assert "Gone" not in described

    bad = event(NS, "web.5", blog, "Elsewhere")  # the involved object is in another namespace
    assert failed(kubectl("create", "-f", "-", input=as_list(bad))) == [
        'The Event "web.5" is invalid: involvedObject.namespace: Invalid value: "blog": does '
        "not match event.namespace"
    ]
    seeded = apiserver.add_event(
        ("deployment", "web"), "ScalingReplicaSet", "Scaled down", namespace=NS
    )
    assert seeded["involvedObject"]["uid"] == uid
    assert apiserver.unhandled == []
