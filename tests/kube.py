"""Objects and kubectl outputs for tests at the process boundary (pytest-subprocess)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nsscale.kube.objects import ORIGINAL, SCALED_TO

NS = "shop"
KUBECTL = "kubectl"
# The review a run starts with: SelfSubject(Access)Reviews, created and answered, nothing stored.
REVIEW_ARGV = [KUBECTL, "create", "-f", "-", "--validate=false", "-o", "json"]
# The seed's result keys: none may be renamed or dropped (docs/contract.md).
SEED_KEYS = frozenset(
    {
        "success",
        "scaled_resources",
        "failed_resources",
        "total_scaled",
        "total_failed",
        "rollback_performed",
        "rollback_results",
        "rollback_success_count",
        "rollback_failed_count",
        "errors",
    }
)


def workload(
    name: str,
    replicas: int,
    rv: int = 1,
    kind: str = "Deployment",
    original: int | None = None,
    scaled_to: int | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "resourceVersion": str(rv)}
    annotations = {}
    if original is not None:
        annotations[ORIGINAL] = str(original)
    if scaled_to is not None:
        annotations[SCALED_TO] = str(scaled_to)
    if annotations:  # kubectl leaves the key out when there are none
        meta["annotations"] = annotations
    status = {"replicas": replicas, "readyReplicas": replicas} if replicas else {}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta,
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
        "status": status,
    }


def moved(
    obj: dict[str, Any], replicas: int, rv: int, original: int | None, scaled_to: int | None
) -> dict[str, Any]:
    """`obj` as the server holds it after a write that set these fields."""
    kind = obj["kind"]
    return workload(obj["metadata"]["name"], replicas, rv, kind, original, scaled_to)


def listing(*objs: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": list(objs),
            "metadata": {"resourceVersion": ""},
        }
    )


def namespace_object(name: str = NS) -> str:
    """`kubectl get namespace NAME -o json`'s answer."""
    return json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def register_namespace(fp: Any, binary: str = KUBECTL) -> None:
    """The read of the Namespace a one-namespace command starts with, beside its workloads."""
    argv = [binary, "get", "namespace", NS, "-o", "json", fp.any()]
    fp.register(argv, stdout=namespace_object())


CLUSTER_ID = "3c0a7e52-8f1b-4d6e-9a2c-5b7d1e0f4a98"  # the uid of kube-system, the cluster's id


def register_cluster_id(fp: Any, binary: str = KUBECTL) -> None:
    """The read of the cluster's id (the kube-system Namespace's uid) beside an audited run's
    first reads."""
    argv = [binary, "get", "--raw", "/api/v1/namespaces/kube-system", fp.any()]
    meta = {"name": "kube-system", "uid": CLUSTER_ID}
    fp.register(argv, stdout=json.dumps({"kind": "Namespace", "metadata": meta}))


def register_last_run(fp: Any, binary: str = KUBECTL) -> None:
    """The annotation `nsscale/last-run` a run that changed the namespace ends with."""
    fp.register([binary, "annotate", "-f", "-", fp.any()])


def register_autoscalers(fp: Any, binary: str = KUBECTL) -> None:
    """The read of the HorizontalPodAutoscalers `status` starts with: none."""
    argv = [binary, "get", "horizontalpodautoscalers.autoscaling", "-n", NS, "-o", "json"]
    fp.register([*argv, fp.any()], stdout=listing())


def register_no_keda(fp: Any, binary: str = KUBECTL) -> None:
    """The read of KEDA's ScaledObjects a down or an up starts with: KEDA is not installed."""
    argv = [binary, "get", "scaledobjects.keda.sh", "-n", NS, "-o", "json", fp.any()]
    missing = 'error: the server doesn\'t have a resource type "scaledobjects" in group "keda.sh"\n'
    fp.register(argv, returncode=1, stderr=missing)


def register_no_rollouts(fp: Any, binary: str = KUBECTL) -> None:
    """The read of Argo Rollouts a run starts with, beside the workloads: not installed."""
    argv = [binary, "get", "rollouts.argoproj.io", "-n", NS, "-o", "json", fp.any()]
    missing = 'error: the server doesn\'t have a resource type "rollouts" in group "argoproj.io"\n'
    fp.register(argv, returncode=1, stderr=missing)


class Script:
    """Registers, in order, the kubectl calls a test expects; records what each replace wrote."""

    def __init__(self, fp: Any, namespace_exists: bool = True) -> None:
        self.fp = fp
        self.writes: list[list[dict[str, Any]]] = []
        # read beside the workloads as a run starts: the Namespace, KEDA's ScaledObjects, Argo
        # Rollouts
        self.namespace(namespace_exists)
        register_no_keda(fp)
        register_no_rollouts(fp)
        register_cluster_id(fp)

    def get(
        self,
        *objs: dict[str, Any],
        stdout: str | None = None,
        returncode: int = 0,
        stderr: str = "",
    ) -> None:
        argv = [KUBECTL, "get", "deployments,statefulsets", "-n", NS, "-o", "json", self.fp.any()]
        self.fp.register(
            argv,
            stdout=listing(*objs) if stdout is None else stdout,
            stderr=stderr,
            returncode=returncode,
        )

    def namespace(self, exists: bool) -> None:
        argv = [KUBECTL, "get", "namespace", NS, "-o", "json", self.fp.any()]
        if exists:
            self.fp.register(argv, stdout=namespace_object())
        else:
            self.fp.register(
                argv,
                returncode=1,
                stderr=f'Error from server (NotFound): namespaces "{NS}" not found\n',
            )

    def replace(
        self,
        *objs: dict[str, Any],
        stdout: str | None = None,
        returncode: int = 0,
        stderr: str = "",
        raises: BaseException | None = None,
    ) -> None:
        def on_stdin(text: str) -> None:
            self.writes.append(json.loads(text)["items"])
            if raises is not None:
                raise raises

        argv = [KUBECTL, "replace", "-f", "-", "-o", "json", self.fp.any()]
        if stdout is None:
            stdout = listing(*objs) if returncode == 0 else ""
        self.fp.register(
            argv, stdout=stdout, stderr=stderr, returncode=returncode, stdin_callable=on_stdin
        )

    def review(self, denied: tuple[str, ...] = (), user: str = "alice") -> None:
        """The review a run starts with (`kubectl create` of SelfSubjectAccessReviews and a
        SelfSubjectReview), answered: every update allowed but those `denied`, and who."""

        def answer(text: str) -> dict[str, str]:
            printed = []
            for item in json.loads(text)["items"]:
                if item["kind"] == "SelfSubjectAccessReview":
                    attributes = item["spec"]["resourceAttributes"]
                    resource = f"{attributes['resource']}.{attributes['group']}"
                    item["status"] = {"allowed": resource not in denied}
                else:
                    info = {"username": user, "groups": ["system:authenticated"]}
                    item["status"] = {"userInfo": info}
                printed.append(json.dumps(item))
            return {"stdout": "\n".join(printed)}

        self.fp.register([*REVIEW_ARGV, self.fp.any()], stdin_callable=answer)

    def guards(self) -> None:
        """What a run does around its writes: the review (every update allowed), then the
        in-cluster mark."""
        self.review()
        self.mark()

    def mark(self) -> None:
        """The in-cluster mark: create the Lease, delete it (guarded by its resourceVersion)
        at the end; then the Namespace's `nsscale/last-run` when the run changed it."""
        register_last_run(self.fp)
        argv = [KUBECTL, "create", "-f", "-", "-o", "json", self.fp.any()]
        self.fp.register(argv, stdin_callable=_stored_lease("900"))
        url = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/nsscale"
        self.fp.register([KUBECTL, "delete", "--raw", url, "-f", "-", self.fp.any()])

    def no_mark(self) -> None:
        """The read of the in-cluster mark by a run with nothing to change (another live run's
        would refuse it): there is none."""
        argv = [KUBECTL, "get", "lease", "nsscale", "-n", NS, "-o", "json", self.fp.any()]
        stderr = 'Error from server (NotFound): leases.coordination.k8s.io "nsscale" not found\n'
        self.fp.register(argv, returncode=1, stderr=stderr)

    def retire(self) -> None:
        """A run that leaves the namespace partly changed keeps its mark, rewritten as over
        (`kubectl replace` of the Lease): registered last, after the run's own writes."""
        argv = [KUBECTL, "replace", "-f", "-", "-o", "json", self.fp.any()]
        self.fp.register(argv, stdin_callable=_stored_lease("901"))

    def names(self) -> list[str]:
        """The names written, call after call."""
        return [o["metadata"]["name"] for items in self.writes for o in items]

    def written(self, index: int) -> list[tuple[str, int, dict[str, str]]]:
        """(name, replicas, annotations) of each object the index-th replace sent."""
        return [
            (
                o["metadata"]["name"],
                o["spec"]["replicas"],
                dict(o["metadata"].get("annotations", {})),
            )
            for o in self.writes[index]
        ]


def _stored_lease(resource_version: str) -> Callable[[str], dict[str, str]]:
    """kubectl's answer to a create or replace of the Leases (a List): what it sent, now
    stored, one document per Lease."""

    def answer(text: str) -> dict[str, str]:
        leases = json.loads(text)["items"]
        for lease in leases:
            lease["metadata"]["resourceVersion"] = resource_version
        return {"stdout": "\n".join(json.dumps(lease) for lease in leases)}

    return answer
