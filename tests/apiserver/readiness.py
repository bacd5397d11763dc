"""How fast the simulated workload controllers bring Deployments and StatefulSets to ready.

By default the controllers are instant: a write that changes a workload's spec gets the status
of a finished rollout (``readyReplicas`` = ``spec.replicas``...) at once (or, with
``ApiServer.controller``, in a second write right after). A test slows them down per workload,
or for every workload of a namespace, from now until it releases them:

- ``hold_ready(ns, name=None, kind=None, ready=0)``: at most ``ready`` pods are ready (pods
  that fail their readiness probe). Applied at once to the workloads it names (their status is
  rewritten: a new resourceVersion) and to every later write of their spec.
- ``rollout(ns, name=None, kind=None, ready_after=seconds)``: after each change of the spec,
  the pods that were ready stay ready, the new ones become ready ``ready_after`` seconds later;
  then the controller writes the settled status (a new resourceVersion). A change of the spec
  meanwhile starts the wait again.
- ``stall(ns, name=None, kind=None)``: the controller does not see writes: the status stays
  as it was, ``status.observedGeneration`` behind ``metadata.generation``.
- ``release(ns, name=None, kind=None)``: drop the rules within that scope; the controller
  catches up at once with what the remaining rules allow (a new resourceVersion where the
  status changes).

``kind`` is "deployment" or "statefulset" (plurals and short names too), None for both;
``name`` None means every such workload of the namespace, those added later included. Where
several rules apply, a stall wins, then the lowest hold (capped, during a rollout, by the pods
already ready).

The status written is what the real controllers report (kinds/deployments.py,
kinds/statefulsets.py): a Deployment being rolled out has ``replicas`` and ``updatedReplicas``
at ``spec.replicas``, ``readyReplicas``/``availableReplicas`` at the pods ready (absent at 0),
``unavailableReplicas`` for the rest, Available False below ``spec.replicas`` minus
maxUnavailable, Progressing ``ReplicaSetUpdated``; a StatefulSet (OrderedReady) has created
one pod more than are ready. Scaled to 0 a workload is settled at once (no pod to wait for).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

from tests.apiserver.kinds.base import SETTLED, Kind, Pace, ResourceType
from tests.apiserver.storage import Store
from tests.apiserver.wire import JSON

__all__ = ["PACED", "ReadinessControl", "ReadinessRule"]

# the kinds whose readiness a test drives
PACED = ("deployments", "statefulsets")


@dataclass(frozen=True)
class ReadinessRule:
    """One rule: its scope (``plural`` None: both kinds; ``name`` None: the whole namespace)
    and what it does: ``ready`` (a hold), ``after`` (a slow rollout) or ``stalled``."""

    namespace: str
    name: str | None = None
    plural: str | None = None
    ready: int | None = None
    after: float | None = None
    stalled: bool = False

    def covers(self, plural: str, namespace: str, name: str) -> bool:
        return (
            self.namespace == namespace
            and self.name in (None, name)
            and self.plural in (None, plural)
        )

    def within(self, namespace: str, name: str | None, plural: str | None) -> bool:
        """Whether this rule falls within a release of (namespace, name, plural)."""
        return (
            self.namespace == namespace
            and (name is None or self.name == name)
            and (plural is None or self.plural == plural)
        )


class ReadinessControl:
    """The readiness rules of :class:`~tests.apiserver.server.ApiServer` (a mixin)."""

    store: Store
    _lock: threading.RLock
    _stopping: threading.Event
    _rules: list[ReadinessRule]
    _timers: dict[tuple[str, int], threading.Timer]

    def _init_readiness(self) -> None:
        self._rules = []
        self._timers = {}
        self.store.pace = self._pace
        self.store.on_put = self._on_put

    # ------------------------------------------------------------------ what a test calls

    def hold_ready(
        self, namespace: str, name: str | None = None, *, kind: str | None = None, ready: int = 0
    ) -> None:
        """Keep at most ``ready`` pods of the workload(s) ready until :meth:`release`."""
        if ready < 0:
            raise ValueError("ready must be >= 0")
        self._add_rule(ReadinessRule(namespace, name, self._plural(kind), ready=ready))

    def rollout(
        self,
        namespace: str,
        name: str | None = None,
        *,
        kind: str | None = None,
        ready_after: float,
    ) -> None:
        """From now until :meth:`release`, new pods of the workload(s) become ready
        ``ready_after`` seconds after each change of the spec."""
        if ready_after < 0:
            raise ValueError("ready_after must be >= 0")
        self._add_rule(ReadinessRule(namespace, name, self._plural(kind), after=ready_after))

    def stall(self, namespace: str, name: str | None = None, *, kind: str | None = None) -> None:
        """The controller does not see the workload(s) until :meth:`release`: their status
        stays as it is (``observedGeneration`` behind after a write)."""
        self._add_rule(ReadinessRule(namespace, name, self._plural(kind), stalled=True))

    def release(self, namespace: str, name: str | None = None, *, kind: str | None = None) -> None:
        """Drop every rule within this scope; the controller catches up at once."""
        plural = self._plural(kind)
        with self._lock:
            self._rules = [r for r in self._rules if not r.within(namespace, name, plural)]
            self._catch_up(namespace, name, plural)

    # ------------------------------------------------------------------ the controllers

    def _plural(self, kind: str | None) -> str | None:
        if kind is None:
            return None
        plural = self.store.registry.workload_kind(kind).resource.plural
        if plural not in PACED:
            raise ValueError(f"the readiness of {plural} is not driven")
        return plural

    def _add_rule(self, rule: ReadinessRule) -> None:
        with self._lock:
            self._rules.append(rule)
            if rule.after is None:
                self._catch_up(rule.namespace, rule.name, rule.plural)

    def _matching(self, plural: str, namespace: str | None, name: str) -> list[ReadinessRule]:
        return [r for r in self._rules if r.covers(plural, namespace or "", name)]

    def _pace(self, kind: Kind, obj: JSON, *, rolling: bool = True) -> Pace:
        """How far the controller gets with ``obj``'s spec (its status: the one before)."""
        rt = kind.resource
        if rt.plural not in PACED:
            return SETTLED
        meta = obj["metadata"]
        rules = self._matching(rt.plural, meta.get("namespace"), meta["name"])
        if any(r.stalled for r in rules):
            return Pace(observed=False)
        caps = [r.ready for r in rules if r.ready is not None]
        if rolling and any(r.after is not None for r in rules):
            caps.append(int((obj.get("status") or {}).get("readyReplicas", 0)))
        return Pace(ready=min(caps)) if caps else SETTLED

    def _settled(self, kind: Kind, obj: JSON) -> JSON:
        """``obj``'s status once a rollout in progress is over (holds still apply)."""
        done = copy.deepcopy(obj)
        kind.reconcile(done, self._pace(kind, done, rolling=False))
        return dict(done.get("status") or {})

    def _catch_up(self, namespace: str, name: str | None, plural: str | None) -> None:
        """Let the controllers write the status the rules now allow (under the lock)."""
        for paced in PACED:
            if plural not in (None, paced):
                continue
            kind = self.store.registry.named(paced)
            assert kind is not None
            for obj in self.store.items(kind.resource, namespace):
                if name not in (None, obj["metadata"]["name"]):
                    continue
                self._rewrite(kind.resource, kind, obj, self._pace(kind, obj, rolling=False))

    def _rewrite(self, rt: ResourceType, kind: Kind, obj: JSON, pace: Pace) -> None:
        new = copy.deepcopy(obj)
        kind.reconcile(new, pace)
        if new == obj:
            return
        new["metadata"]["resourceVersion"] = self.store.next_rv()
        self.store.put(rt, obj["metadata"].get("namespace"), new)

    def _on_put(self, rt: ResourceType, obj: JSON) -> None:
        """A workload was stored: if a rollout rule leaves it not ready, the rest of its pods
        become ready when the rule's time is up."""
        if rt.plural not in PACED:
            return
        meta = obj["metadata"]
        rules = self._matching(rt.plural, meta.get("namespace"), meta["name"])
        waits = [r.after for r in rules if r.after is not None]
        if not waits or any(r.stalled for r in rules):
            return
        kind = self.store.registry.named(rt.plural)
        assert kind is not None
        if self._settled(kind, obj) == obj.get("status"):
            return
        key = (meta["uid"], int(meta.get("generation", 1)))
        if key in self._timers:
            return
        timer = threading.Timer(
            max(waits), self._ready_now, args=(kind, meta.get("namespace"), meta["name"], key)
        )
        timer.daemon = True
        self._timers[key] = timer
        timer.start()

    def _ready_now(
        self, kind: Kind, namespace: str | None, name: str, key: tuple[str, int]
    ) -> None:
        with self._lock:
            self._timers.pop(key, None)
            if self._stopping.is_set():
                return
            obj = self.store.find(kind.resource.plural, namespace, name)
            if obj is None or (obj["metadata"]["uid"], obj["metadata"].get("generation", 1)) != key:
                return  # deleted, recreated or changed again since
            rules = self._matching(kind.resource.plural, namespace, name)
            if not any(r.after is not None for r in rules) or any(r.stalled for r in rules):
                return  # released, or stalled since
            self._rewrite(kind.resource, kind, obj, self._pace(kind, obj, rolling=False))

    def _stop_readiness(self) -> None:
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
