"""A local, in-memory Kubernetes API server that the real kubectl can talk to, for tests.

The sample namespace used by ``python -m tests.apiserver.demo`` and
``python -m tests.apiserver.sandbox`` is defined here, once.
"""

from tests.apiserver.kinds.custom import (
    ARGO_APPLICATION,
    CRD,
    FLUX_HELM_RELEASE,
    FLUX_KUSTOMIZATION,
    KEDA_SCALED_OBJECT,
    READY_MADE,
)
from tests.apiserver.server import ApiServer, Fault, ForbidRule, RequestRecord

__all__ = [
    "ARGO_APPLICATION",
    "CRD",
    "FLUX_HELM_RELEASE",
    "FLUX_KUSTOMIZATION",
    "KEDA_SCALED_OBJECT",
    "READY_MADE",
    "SAMPLE_DEPLOYMENTS",
    "SAMPLE_NAMESPACE",
    "SAMPLE_STATEFULSETS",
    "ApiServer",
    "Fault",
    "ForbidRule",
    "RequestRecord",
    "add_sample_namespace",
]

SAMPLE_NAMESPACE = "shop"
# name -> replicas
SAMPLE_DEPLOYMENTS: dict[str, int] = {"web": 3, "api": 2, "worker": 1, "nightly-report": 0}
SAMPLE_STATEFULSETS: dict[str, int] = {"db": 1, "cache": 2}


def add_sample_namespace(server: ApiServer, namespace: str = SAMPLE_NAMESPACE) -> None:
    """Add the sample namespace: Deployments web 3, api 2, worker 1, nightly-report 0 and
    StatefulSets db 1, cache 2."""
    server.add_namespace(namespace)
    for name, replicas in SAMPLE_DEPLOYMENTS.items():
        server.add_deployment(namespace, name, replicas=replicas)
    for name, replicas in SAMPLE_STATEFULSETS.items():
        server.add_statefulset(namespace, name, replicas=replicas)
