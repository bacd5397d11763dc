"""Property tests: whatever fails and wherever, the namespace ends as the result says."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nsscale.engine.plan import Operation, make_plan
from nsscale.engine.result import RunResult
from nsscale.engine.writer import Writer
from nsscale.errors import KubectlError
from nsscale.kube.objects import SCALED_TO, WORKLOAD_KINDS, Kind, Workload
from nsscale.transaction import Transaction
from tests.kube import NS, workload


class MemoryCluster:
    """An in-memory namespace with kubectl replace's semantics: one PUT per object, each checked
    against its resourceVersion, going on past failures, failing the call if any failed."""

    def __init__(
        self, objs: Sequence[dict[str, Any]], failures: Sequence[bool], refuse_undos: bool = True
    ) -> None:
        self.objects = {_key(o): copy.deepcopy(o) for o in objs}
        self.version = 100
        self.failures = list(failures)  # consumed one per PUT; True refuses that PUT
        self.refuse_undos = refuse_undos

    def list_workloads(
        self,
        namespaces: Sequence[str] | None,
        selector: str | None = None,
        kinds: Sequence[Kind] = WORKLOAD_KINDS,
    ) -> list[Workload]:
        return [
            Workload.from_manifest(copy.deepcopy(o))
            for o in self.objects.values()
            if namespaces is None or o["metadata"]["namespace"] in namespaces
        ]

    def replace(self, objects: Sequence[Mapping[str, Any]]) -> list[Workload]:
        written, errors = [], []
        for obj in objects:
            name = obj["metadata"]["name"]
            current = self.objects[_key(obj)]
            # an undo of a down removes nsscale's annotations; a forward write sets them
            undo = SCALED_TO not in obj["metadata"].get("annotations", {})
            if (self.refuse_undos or not undo) and self.failures and self.failures.pop(0):
                errors.append(f'Error from server (InternalError): "{name}" refused')
            elif obj["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
                errors.append(f'Error from server (Conflict): "{name}" modified')
            else:
                self.version += 1
                stored = copy.deepcopy(dict(obj))
                stored["metadata"]["resourceVersion"] = str(self.version)
                self.objects[_key(obj)] = stored
                written.append(Workload.from_manifest(copy.deepcopy(stored)))
        if errors:
            raise KubectlError(["kubectl", "replace"], 1, "\n".join(errors), 0.0)
        return written


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return (obj["metadata"]["namespace"], obj["metadata"]["name"])


counts = st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=12)


def run(cluster: MemoryCluster, op: Operation, rollback: bool, batch: int) -> RunResult:
    plan = make_plan(NS, op, cluster.list_workloads([NS]))
    outcome = Transaction(Writer(cluster, (NS,)), rollback, batch).run(plan.changes)
    return RunResult(plan, outcome, rollback_enabled=rollback)


def snapshot(cluster: MemoryCluster) -> dict[str, tuple[int, object]]:
    return {w.name: (w.replicas, w.state) for w in cluster.list_workloads([NS])}


@settings(max_examples=200, deadline=None)
@given(counts, st.lists(st.booleans(), max_size=40), st.integers(min_value=1, max_value=5))
def test_with_rollback_every_workload_ends_as_it_began(
    replicas: list[int], failures: list[bool], batch: int
) -> None:
    cluster = MemoryCluster([workload(f"w{i}", n) for i, n in enumerate(replicas)], failures)
    before = snapshot(cluster)
    result = run(cluster, Operation.DOWN, rollback=True, batch=batch)
    if result.success:
        assert all(w.replicas == 0 for w in cluster.list_workloads([NS]))
        assert result.exit_code == 0
    else:
        assert result.exit_code in (1, 3)
        if result.exit_code == 1:
            assert snapshot(cluster) == before
        else:  # an undo was refused: exactly the reported ones are left changed
            left = {d["name"] for d in result.to_dict()["left_changed"]}
            changed = {k for k, v in snapshot(cluster).items() if v != before[k]}
            assert changed == left


@settings(max_examples=200, deadline=None)
@given(counts, st.lists(st.booleans(), max_size=40), st.integers(min_value=1, max_value=5))
def test_with_rollback_and_undos_succeeding_every_count_is_restored(
    replicas: list[int], failures: list[bool], batch: int
) -> None:
    objs = [workload(f"w{i}", n) for i, n in enumerate(replicas)]
    cluster = MemoryCluster(objs, failures, refuse_undos=False)
    before = snapshot(cluster)
    result = run(cluster, Operation.DOWN, rollback=True, batch=batch)
    if not result.success:
        assert snapshot(cluster) == before
        assert result.exit_code == 1
        assert result.to_dict()["rollback_failed_count"] == 0


@settings(max_examples=200, deadline=None)
@given(counts, st.lists(st.booleans(), max_size=40))
def test_without_rollback_the_report_is_the_truth(
    replicas: list[int], failures: list[bool]
) -> None:
    cluster = MemoryCluster([workload(f"w{i}", n) for i, n in enumerate(replicas)], failures)
    result = run(cluster, Operation.DOWN, rollback=False, batch=3)
    doc = result.to_dict()
    now = {w.name: w for w in cluster.list_workloads([NS])}
    for s in doc["scaled_resources"]:
        assert now[s["name"]].replicas == 0
        assert now[s["name"]].state.original == str(s["from_replicas"])
    for f in doc["failed_resources"]:
        assert now[f["name"]].replicas == f["from_replicas"]
    # 3 only when something is left changed; a run that changed nothing failed (1)
    expected = 0 if not doc["failed_resources"] else 3 if doc["scaled_resources"] else 1
    assert result.exit_code == expected
    # down then up restores every count, whatever failed on the way down
    cluster.failures = []
    run(cluster, Operation.UP, rollback=True, batch=3)
    assert [w.replicas for w in cluster.list_workloads([NS])] == replicas
    assert all(w.state.original is None for w in cluster.list_workloads([NS]))


def in_namespace(namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["namespace"] = namespace
    return obj


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.integers(min_value=0, max_value=4), max_size=5), min_size=1, max_size=4),
    st.lists(st.booleans(), max_size=30),
    st.integers(min_value=1, max_value=4),
    st.booleans(),
    st.booleans(),
)
def test_every_namespace_ends_at_its_target_or_at_its_originals(
    spread: list[list[int]], failures: list[bool], batch: int, all_or_nothing: bool, bonded: bool
) -> None:
    # Any namespaces, any failure positions, batches spanning namespaces: a namespace whose run
    # succeeded is down, any other is as it began (with --all-or-nothing: all as they began
    # when anything failed; `bonded`: the first two, as one GitOps owner's would be, as they
    # began when either failed), and each namespace's report says which.
    namespaces = [f"ns{i}" for i in range(len(spread))]
    objs = [
        in_namespace(ns, workload(f"w{i}", n))
        for ns, counts_ in zip(namespaces, spread, strict=True)
        for i, n in enumerate(counts_)
    ]
    cluster = MemoryCluster(objs, failures, refuse_undos=False)
    before = {ns: _state(cluster, ns) for ns in namespaces}
    plans = {ns: make_plan(ns, Operation.DOWN, cluster.list_workloads([ns])) for ns in namespaces}
    bond = frozenset(ns for ns in namespaces[:2] if plans[ns].changes) if bonded else frozenset()
    transaction = Transaction(
        Writer(cluster, tuple(namespaces)),
        batch_size=batch,
        isolated=not all_or_nothing,
        bonds=[bond] if len(bond) > 1 else [],
    )
    outcome = transaction.run([c for ns in namespaces for c in plans[ns].changes])
    results = {ns: RunResult(plans[ns], outcome.of(ns)) for ns in namespaces}
    anything_failed = not all(r.success for r in results.values())
    bond_failed = len(bond) > 1 and not all(results[ns].success for ns in bond)
    for ns, result in results.items():
        doc = result.to_dict()
        if not plans[ns].changes:  # nothing to do there: whatever else failed
            assert result.exit_code == 0
            assert _state(cluster, ns) == before[ns]
        elif result.success:
            assert not (all_or_nothing and anything_failed)
            assert not (ns in bond and bond_failed)
            assert all(w.replicas == 0 for w in cluster.list_workloads([ns]))
            assert {s["name"] for s in doc["scaled_resources"]} == {
                c.workload.name for c in plans[ns].changes
            }
            assert result.exit_code == 0
        else:
            assert _state(cluster, ns) == before[ns], ns
            assert result.exit_code == 1, doc
            assert doc["left_changed"] == []
            assert doc["rollback_failed_count"] == 0


def _state(cluster: MemoryCluster, namespace: str) -> dict[str, tuple[int, object]]:
    return {w.name: (w.replicas, w.state) for w in cluster.list_workloads([namespace])}
