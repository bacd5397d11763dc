"""In a pod, with no kubeconfig: a kubeconfig for the pod's service account.

kubectl logs in with the service account (its token and CA under
/var/run/secrets/kubernetes.io/serviceaccount, the API at $KUBERNETES_SERVICE_HOST:PORT) only
when its configuration is the default one in every respect: a `--request-timeout`, which nsscale
gives every call, makes it try localhost:8080 instead ("The connection to the server
localhost:8080 was refused"; tests/test_incluster.py). So nsscale writes the same login as a
kubeconfig of its own, naming the token file rather than holding the token (kubectl re-reads it
as the kubelet rotates it), and hands it to kubectl with its timeout.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
from pathlib import Path

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_kubeconfig(account: Path = ACCOUNT) -> str | None:
    """The path of a kubeconfig for the pod's service account, written once per process; None
    outside a pod, or when the user has a kubeconfig (kubectl's own rule: $KUBECONFIG, else
    ~/.kube/config)."""
    if os.environ.get("KUBECONFIG") or (Path.home() / ".kube" / "config").exists():
        return None
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    token = account / "token"
    if not (host and port and token.is_file()):
        return None
    return _written(host, port, account)


_WRITTEN: dict[tuple[str, str, Path], str] = {}


def _written(host: str, port: str, account: Path) -> str:
    key = (host, port, account)
    if key not in _WRITTEN:
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        namespace = account / "namespace"
        context: dict[str, str] = {"cluster": "in-cluster", "user": "service-account"}
        if namespace.is_file():
            context["namespace"] = namespace.read_text().strip()
        cluster: dict[str, str] = {"server": server}
        if (account / "ca.crt").is_file():
            cluster["certificate-authority"] = str(account / "ca.crt")
        config = {  # JSON is YAML: kubectl reads it as a kubeconfig
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "in-cluster", "cluster": cluster}],
            "users": [{"name": "service-account", "user": {"tokenFile": str(account / "token")}}],
            "contexts": [{"name": "in-cluster", "context": context}],
            "current-context": "in-cluster",
        }
        import tempfile  # only in a pod: 12 ms of imports every other run need not pay

        handle, path = tempfile.mkstemp(prefix="nsscale-in-cluster-", suffix=".kubeconfig")
        with os.fdopen(handle, "w") as out:
            json.dump(config, out)
        atexit.register(_remove, path)
        _WRITTEN[key] = path
    return _WRITTEN[key]


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
