"""nsscale: scale a Kubernetes namespace's workloads as one operation that rolls back on failure.

`from nsscale import scale_namespace_resources` is the Python interface (nsscale.api); it is
loaded on first use, so that the command line starts without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "scale_namespace_resources"]

if TYPE_CHECKING:
    from nsscale.api import scale_namespace_resources


def __getattr__(name: str) -> Any:
    if name == "scale_namespace_resources":
        from nsscale.api import scale_namespace_resources

        return scale_namespace_resources
    raise AttributeError(f"module 'nsscale' has no attribute {name!r}")
