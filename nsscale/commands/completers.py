"""The values a Tab offers, from kubectl: namespaces and contexts, with the --context,
--kubeconfig and --kubectl already on the command line. Apart from the options they complete
(which name these functions), so that neither imports the other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsscale.kubectl import Kubectl

# A Tab answers within a second: Python's start and the app's imports take about 0.15 s, then
# kubectl has this long (else nothing is offered).
KUBECTL_S = 0.7


def namespaces(params: Mapping[str, Any], incomplete: str) -> list[str]:
    """The namespaces starting with `incomplete`, as kubectl lists them with the --context,
    --kubeconfig and --kubectl already on the command line; none when kubectl cannot answer
    within the budget."""
    from nsscale.errors import NsscaleError

    try:
        listed = _kubectl(params).get_raw("/api/v1/namespaces")
    except NsscaleError:
        return []
    names = [str((item.get("metadata") or {}).get("name", "")) for item in listed.get("items", [])]
    return [name for name in names if name and name.startswith(incomplete)]


def contexts(params: Mapping[str, Any], incomplete: str) -> list[str]:
    """The contexts of the kubeconfig (--kubeconfig, else kubectl's own) starting with
    `incomplete`."""
    from nsscale.errors import NsscaleError

    try:
        listed = _kubectl({**params, "context": None}).run(["config", "get-contexts", "-o", "name"])
    except NsscaleError:
        return []
    return [name for name in listed.stdout.split() if name.startswith(incomplete)]


def _kubectl(params: Mapping[str, Any]) -> Kubectl:
    """kubectl as the command line has it so far, stopped after KUBECTL_S."""
    from nsscale.kubectl import Kubectl, KubectlConfig

    config = KubectlConfig.resolve(
        params.get("kubectl"), params.get("context"), params.get("kubeconfig"), KUBECTL_S
    )
    return Kubectl(config)
