"""Which namespaces a run acts on: the ones named and the ones a selector picks, never a
protected one.

Pure logic over the Namespaces as read: naming a namespace that does not exist, or one that is
protected, is bad input (nothing is changed anywhere); a protected namespace that a selector
picks is skipped with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nsscale.errors import NamespaceNotFound, ProtectedNamespace
from nsscale.kube.objects import Namespace


@dataclass(frozen=True)
class Targets:
    namespaces: tuple[str, ...]  # in the order named, then the selected ones by name
    skipped: tuple[tuple[str, str], ...] = ()  # (namespace, why) picked by the selector


def choose(named: Sequence[str], selector: str | None, found: Mapping[str, Namespace]) -> Targets:
    """The namespaces to act on. `found`: every Namespace read (with `selector`, those it
    matches). NamespaceNotFound or ProtectedNamespace for a bad name: nothing may change."""
    missing = [name for name in named if name not in found]
    if missing:
        names = ", ".join(f'"{name}"' for name in missing)
        raise NamespaceNotFound(
            f"namespace{'s' if len(missing) > 1 else ''} {names} not found",
            "check the names and the context (kubectl get namespaces): nothing was changed",
        )
    for name in named:
        if (why := found[name].protection) is not None:
            raise ProtectedNamespace(
                f"namespace {name} is protected ({why}): nsscale never scales it",
                "leave it out; nothing was changed",
            )
    chosen = list(dict.fromkeys(named))
    skipped: list[tuple[str, str]] = []
    if selector is not None:
        for name in sorted(found):
            if name in chosen:
                continue
            why = found[name].protection
            if why is None:
                chosen.append(name)
            else:
                skipped.append((name, f"protected ({why})"))
    return Targets(tuple(chosen), tuple(skipped))
