"""nsscale in a pod: no kubeconfig, kubectl's in-cluster login with the service account.

kubectl reads the pod's token and CA from the fixed folder
/var/run/secrets/kubernetes.io/serviceaccount and speaks HTTPS to
$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT. The test gives it exactly that: the folder,
seen only by nsscale and its kubectl through a private mount namespace (`unshare --mount`, the
machine's own /run untouched), and TLS in front of the local API server (tests/apiserver/tls.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsscale.kube.incluster import in_cluster_kubeconfig
from tests.apiserver.server import ApiServer
from tests.apiserver.tls import TlsFront, write_certificates
from tests.faultkit import Finished

pytestmark = pytest.mark.e2e

ACCOUNT = Path("secrets/kubernetes.io/serviceaccount")  # under /run (= /var/run)
MOUNT_AND_RUN = 'mount --bind "$0" /run && exec "$@"'


@pytest.fixture
def front(apiserver: ApiServer, tmp_path: Path) -> Iterator[TlsFront]:
    ca, cert, key = write_certificates(tmp_path)
    with TlsFront(apiserver.port, cert, key, ca) as tls:
        yield tls


def in_pod(front: TlsFront, tmp_path: Path, kubectl_bin: Path, token: str, *args: str) -> Finished:
    """Run `nsscale ARGS` as a pod would: the service account's files under /run, no
    kubeconfig, no home, the Kubernetes service in the environment."""
    run = tmp_path / "run"
    account = run / ACCOUNT
    account.mkdir(parents=True)
    (account / "token").write_text(token)
    (account / "ca.crt").write_bytes(front.ca.read_bytes())
    (account / "namespace").write_text("nsscale")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NSSCALE_KUBECTL")} | {
        "HOME": str(home),
        "KUBECACHEDIR": str(tmp_path / "kube-cache"),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(front.port),
        "NSSCALE_KUBECTL": str(kubectl_bin),
        "EKS_CLUSTER_NAME": "pod",
        "COLUMNS": "200",
    }
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_AND_RUN]
    argv += [str(run), sys.executable, "-m", "nsscale", *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    return Finished(done.returncode, done.stdout, done.stderr, 0.0)


def test_reconcile_in_a_pod_logs_in_with_the_service_account(
    apiserver: ApiServer, front: TlsFront, tmp_path: Path, kubectl_bin: Path
) -> None:
    apiserver.add_namespace("night", labels={"nsscale/scheduled": "true"})
    apiserver.add_deployment("night", "web", replicas=3)
    done = in_pod(
        front,
        tmp_path,
        kubectl_bin,
        apiserver.token,
        "reconcile",
        "--namespace-selector",
        "nsscale/scheduled=true",
        "--uptime",
        "never",
        "--grace-period",
        "0",
        "-o",
        "json",
    )
    assert done.code == 0, str(done)
    (decision,) = json.loads(done.stdout)["namespaces"]
    assert (decision["namespace"], decision["action"]) == ("night", "down")
    web = apiserver.get_object("deployments", "night", "web")
    assert web is not None
    assert web["spec"]["replicas"] == 0
    assert front.connections > 0  # over HTTPS, trusting the account's CA


def test_a_token_the_cluster_refuses_is_a_clear_error(
    apiserver: ApiServer, front: TlsFront, tmp_path: Path, kubectl_bin: Path
) -> None:
    """The token comes from the account's file: a wrong one is refused by the server."""
    apiserver.add_namespace("night")
    apiserver.add_deployment("night", "web", replicas=3)
    done = in_pod(front, tmp_path, kubectl_bin, "not-the-token", "down", "night")
    assert done.code != 0, str(done)
    assert "Unauthorized" in done.stderr or "must be logged in" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    web = apiserver.get_object("deployments", "night", "web")
    assert web is not None
    assert web["spec"]["replicas"] == 3


@pytest.fixture
def account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pod's service account folder, and a pod's environment: no kubeconfig, no home."""
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "token").write_text("t0ken")
    (folder / "ca.crt").write_text("CA")
    (folder / "namespace").write_text("nsscale\n")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return folder


def test_the_service_account_login_names_the_token_file_never_the_token(account: Path) -> None:
    path = in_cluster_kubeconfig(account)
    assert path is not None
    text = Path(path).read_text()
    assert "t0ken" not in text
    config = json.loads(text)
    assert config["clusters"][0]["cluster"] == {
        "server": "https://10.96.0.1:443",
        "certificate-authority": str(account / "ca.crt"),
    }
    assert config["users"][0]["user"] == {"tokenFile": str(account / "token")}
    assert config["contexts"][0]["context"]["namespace"] == "nsscale"
    assert in_cluster_kubeconfig(account) == path  # written once


@pytest.mark.parametrize(
    "outside",
    ["KUBECONFIG", "home kubeconfig", "no service host", "no token"],
)
def test_outside_a_pod_or_with_a_kubeconfig_kubectl_s_own_rules_hold(
    account: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside: str
) -> None:
    if outside == "KUBECONFIG":
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    elif outside == "home kubeconfig":
        (tmp_path / "home" / ".kube").mkdir(parents=True)
        (tmp_path / "home" / ".kube" / "config").write_text("{}")
    elif outside == "no service host":
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    else:
        (account / "token").unlink()
    assert in_cluster_kubeconfig(account) is None


def test_an_ipv6_service_address_is_bracketed(
    account: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    path = in_cluster_kubeconfig(account)
    assert path is not None
    server = json.loads(Path(path).read_text())["clusters"][0]["cluster"]["server"]
    assert server == "https://[fd00::1]:443"
