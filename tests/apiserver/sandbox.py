"""A local API server to try nsscale by hand: ``python -m tests.apiserver.sandbox``.

Starts :class:`ApiServer` with the sample namespace ``shop`` (the same as the demo), writes its
kubeconfig to ``.sandbox/kubeconfig`` under the current directory, prints the ``export`` lines
to paste into another shell and a few example commands, and serves until Ctrl-C. State lives in
memory only: every start begins from the sample again.

Options: ``--port N`` (default: a free port), ``--controller`` (simulate the workload
controllers' status writes), ``--latency SECONDS`` (added to every request).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tests.apiserver import SAMPLE_NAMESPACE, ApiServer, add_sample_namespace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.apiserver.sandbox",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument(
        "--controller",
        action="store_true",
        help="simulate controllers' status updates (resourceVersion bumps)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    options = parser.parse_args(argv)

    kubectl = Path(sys.executable).parent / "kubectl"
    sandbox = Path.cwd() / ".sandbox"
    sandbox.mkdir(exist_ok=True)
    (sandbox / ".gitignore").write_text("*\n")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # Ctrl-C, also when started in the background
    server = ApiServer(options.port, controller=options.controller, latency=options.latency)
    with server:
        add_sample_namespace(server)
        kubeconfig = server.write_kubeconfig(sandbox / "kubeconfig")
        if not kubectl.is_file():
            print(f"# warning: the pinned kubectl is missing ({kubectl})", file=sys.stderr)
        print(f"# nsscale sandbox: a Kubernetes API server at {server.url} (in memory)")
        print(
            f"# namespace {SAMPLE_NAMESPACE!r}: "
            + ", ".join(
                f"{o['kind']} {o['metadata']['name']} {o['spec']['replicas']}"
                for o in server.workloads(SAMPLE_NAMESPACE)
            )
        )
        print("# in another shell:")
        print(f"export KUBECONFIG={kubeconfig}")
        print(f"export NSSCALE_KUBECTL={kubectl}")
        print("# then, for example:")
        print(f"{sys.executable} -m nsscale status {SAMPLE_NAMESPACE}")
        print(f"{sys.executable} -m nsscale down {SAMPLE_NAMESPACE} --dry-run")
        print(f"{kubectl} get deployments,statefulsets -n {SAMPLE_NAMESPACE}")
        print("# serving until Ctrl-C", flush=True)
        while not stop.wait(0.5):
            pass
        print(f"\n# stopped after {server.request_count} requests", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
