"""Planning decisions: what each operation changes, what it skips, and why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsscale.engine.options import RunOptions
from nsscale.engine.plan import Change, Operation, Selection, Skip, check_namespace, make_plan
from nsscale.errors import InvalidNamespace, UsageError
from nsscale.kube.kinds import EXCLUDABLE_KINDS, KINDS, WORKLOAD_KINDS, Kind
from nsscale.kube.objects import ORIGINAL, SCALED_TO, State, Workload
from tests.kube import NS, workload


def w(
    name: str, replicas: int, original: int | str | None = None, scaled_to: int | None = None
) -> Workload:
    obj = workload(name, replicas)
    annotations = {}
    if original is not None:
        annotations[ORIGINAL] = str(original)
    if scaled_to is not None:
        annotations[SCALED_TO] = str(scaled_to)
    if annotations:
        obj["metadata"]["annotations"] = annotations
    return Workload.from_manifest(obj)


def decide(op: Operation, wl: Workload, **kwargs: object) -> Change | Skip:
    plan = make_plan(NS, op, [wl], **kwargs)  # type: ignore[arg-type]
    decisions: list[Change | Skip] = [*plan.changes, *plan.skips]
    return decisions[0]


def test_down_records_the_original_and_the_count_it_sets() -> None:
    change = decide(Operation.DOWN, w("a", 3))
    assert isinstance(change, Change)
    assert change.after == State(0, "3", "0")


def test_down_twice_keeps_the_first_original() -> None:
    # a workload somebody scaled to 2 after a down, downed again: the original stays 3
    change = decide(Operation.DOWN, w("a", 2, original=3, scaled_to=0))
    assert isinstance(change, Change)
    assert change.after == State(0, "3", "0")
    skip = decide(Operation.DOWN, w("a", 0, original=3, scaled_to=0))
    assert isinstance(skip, Skip)
    assert skip.reason == "already at 0"


def test_a_workload_already_at_zero_is_skipped_and_never_annotated() -> None:
    skip = decide(Operation.DOWN, w("a", 0))
    assert skip == Skip(w("a", 0), "already at 0")
    skip_up = decide(Operation.UP, w("a", 0))
    assert isinstance(skip_up, Skip)
    assert "no recorded original" in skip_up.reason


def test_up_restores_and_removes_the_annotations() -> None:
    change = decide(Operation.UP, w("a", 0, original=3, scaled_to=0))
    assert isinstance(change, Change)
    assert change.after == State(3, None, None)


def test_up_skips_a_workload_changed_since_and_force_restores_it() -> None:
    changed = w("a", 2, original=3, scaled_to=0)
    skip = decide(Operation.UP, changed)
    assert isinstance(skip, Skip)
    assert skip.reason == (
        "changed since nsscale set it to 0 (now 2); original 3 kept (--force restores it)"
    )
    forced = decide(Operation.UP, changed, force=True)
    assert isinstance(forced, Change)
    assert forced.after == State(3)


def test_scale_records_zero_as_an_original_so_up_restores_it() -> None:
    change = decide(Operation.SCALE, w("a", 0), replicas=2)
    assert isinstance(change, Change)
    assert change.after == State(2, "0", "2")
    back = decide(Operation.UP, w("a", 2, original=0, scaled_to=2))
    assert isinstance(back, Change)
    assert back.after == State(0)


def test_an_unreadable_original_is_never_overwritten() -> None:
    for op in (Operation.DOWN, Operation.UP):
        skip = decide(op, w("a", 2, original="three", scaled_to=0))
        assert isinstance(skip, Skip)
        assert "not a count" in skip.reason


@pytest.mark.parametrize("name", ["shop", "a", "pr-1234", "x" * 63, "0abc"])
def test_valid_namespaces(name: str) -> None:
    assert check_namespace(name) == name


@pytest.mark.parametrize(
    "name", ["", "Shop", "-a", "a-", "a_b", "a.b", "x" * 64, "a b", "../etc", "$(reboot)", "ß"]
)
def test_invalid_namespaces(name: str) -> None:
    with pytest.raises(InvalidNamespace):
        check_namespace(name)


@given(st.text(max_size=70))
def test_namespace_check_agrees_with_rfc1123(name: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    valid = 0 < len(name) <= 63 and set(name) <= allowed and name[0] != "-" and name[-1] != "-"
    try:
        check_namespace(name)
    except InvalidNamespace:
        assert not valid
    else:
        assert valid


# ---------------------------------------------------------------------------------- selection


def excluded(name: str, replicas: int, value: str) -> Workload:
    """A workload annotated nsscale/exclude: value."""
    obj = workload(name, replicas)
    obj["metadata"]["annotations"] = {"nsscale/exclude": value}
    return Workload.from_manifest(obj)


def owned(name: str, replicas: int, kind: str = "ReplicaSet", controller: bool = True) -> Workload:
    obj = workload(name, replicas)
    ref = {"apiVersion": "apps/v1", "kind": kind, "name": f"{name}-owner", "uid": "u1"}
    obj["metadata"]["ownerReferences"] = [ref | {"controller": controller}]
    return Workload.from_manifest(obj)


@pytest.mark.parametrize("operation", [Operation.DOWN, Operation.UP, Operation.SCALE])
@pytest.mark.parametrize(
    ("excludes", "wl", "reason"),
    [
        (("a",), w("a", 3, original=5, scaled_to=3), "excluded (--exclude a)"),
        (
            ("deployment/a",),
            w("a", 3, original=5, scaled_to=3),
            "excluded (--exclude deployment/a)",
        ),
        (
            (),
            excluded("a", 3, "true"),
            "excluded (annotation nsscale/exclude)",
        ),
        ((), owned("a", 3), "managed by ReplicaSet a-owner"),
    ],
)
def test_an_excluded_or_owned_workload_is_skipped_by_every_operation(
    operation: Operation, excludes: tuple[str, ...], wl: Workload, reason: str
) -> None:
    selection = Selection(excludes=excludes)
    skip = decide(operation, wl, replicas=1, selection=selection)
    assert skip == Skip(wl, reason)


def test_an_exclude_of_another_kind_or_name_does_not_apply() -> None:
    selection = Selection(excludes=("statefulset/a", "b", "cronjob/a"))
    assert isinstance(decide(Operation.DOWN, w("a", 3), selection=selection), Change)


def test_exclude_false_takes_part_and_an_unreadable_value_is_excluded_with_a_warning() -> None:
    assert isinstance(decide(Operation.DOWN, excluded("a", 3, "false")), Change)
    skip = decide(Operation.DOWN, excluded("a", 3, "yes"))
    assert isinstance(skip, Skip)
    assert skip.warn
    assert (
        skip.reason == "excluded: the annotation nsscale/exclude is 'yes', neither true nor false"
    )


def test_an_owner_that_does_not_control_leaves_the_workload_in() -> None:
    assert isinstance(decide(Operation.DOWN, owned("a", 3, controller=False)), Change)


@pytest.mark.parametrize("bad", ["", "pod/a", "deployment/", "a/b/c", "deploy.batch/a"])
def test_a_bad_exclude_is_bad_input(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid --exclude"):
        Selection(excludes=(bad,))


# ------------------------------------------------------------------ which kinds take part


@pytest.mark.parametrize(
    ("operation", "suspend_cronjobs", "cronjobs", "keda"),
    [
        (Operation.DOWN, False, False, True),
        (Operation.DOWN, True, True, True),  # --suspend-cronjobs
        (Operation.UP, False, True, True),  # up resumes what a down suspended or paused
        (Operation.SCALE, False, False, False),
        (Operation.RECOVER, False, True, True),  # recover puts back what was suspended
    ],
)
def test_one_rule_says_which_kinds_take_part_in_each_operation(
    operation: Operation, suspend_cronjobs: bool, cronjobs: bool, keda: bool
) -> None:
    options = RunOptions(suspend_cronjobs=suspend_cronjobs).for_operation(operation)
    assert (options.cronjobs, options.keda) == (cronjobs, keda)


# ------------------------------------------------------------------------ the per-kind table


def test_every_kind_is_one_entry_saying_how_the_api_kubectl_and_rbac_name_it() -> None:
    assert set(KINDS) == set(Kind)
    named = {k: (k.info.name, k.api_version, k.resource, k.listed) for k in Kind}
    assert named == {
        Kind.DEPLOYMENT: ("Deployment", "apps/v1", "deployments.apps", "deployments"),
        Kind.STATEFULSET: ("StatefulSet", "apps/v1", "statefulsets.apps", "statefulsets"),
        Kind.CRONJOB: ("CronJob", "batch/v1", "cronjobs.batch", "cronjobs"),
        Kind.SCALEDOBJECT: (
            "ScaledObject",
            "keda.sh/v1alpha1",
            "scaledobjects.keda.sh",
            "scaledobjects.keda.sh",
        ),
        Kind.KUSTOMIZATION: (
            "Kustomization",
            "kustomize.toolkit.fluxcd.io/v1",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "kustomizations.kustomize.toolkit.fluxcd.io",
        ),
        Kind.HELMRELEASE: (
            "HelmRelease",
            "helm.toolkit.fluxcd.io/v2",
            "helmreleases.helm.toolkit.fluxcd.io",
            "helmreleases.helm.toolkit.fluxcd.io",
        ),
        Kind.APPLICATION: (
            "Application",
            "argoproj.io/v1alpha1",
            "applications.argoproj.io",
            "applications.argoproj.io",
        ),
        Kind.ROLLOUT: (
            "Rollout",
            "argoproj.io/v1alpha1",
            "rollouts.argoproj.io",
            "rollouts.argoproj.io",
        ),
        Kind.HPA: (
            "HorizontalPodAutoscaler",
            "autoscaling/v2",
            "horizontalpodautoscalers.autoscaling",
            "horizontalpodautoscalers",
        ),
    }
    assert (WORKLOAD_KINDS, EXCLUDABLE_KINDS) == (
        (Kind.DEPLOYMENT, Kind.STATEFULSET),
        (Kind.DEPLOYMENT, Kind.STATEFULSET, Kind.CRONJOB, Kind.ROLLOUT),
    )


@pytest.mark.parametrize("kind", [*WORKLOAD_KINDS, Kind.ROLLOUT])
def test_a_workload_s_count_is_read_and_written_at_its_kind_s_replica_path(kind: Kind) -> None:
    manifest = {
        "apiVersion": kind.api_version,
        "kind": kind.info.name,
        "metadata": {"name": "web", "namespace": NS, "resourceVersion": "7"},
        "spec": {"replicas": 3, "template": {"spec": {}}},
    }
    read = Workload.from_manifest(manifest)
    assert (read.replicas, kind.info.replicas) == (3, ("spec", "replicas"))
    written = read.render(State(0, "3", "0"))
    assert written["spec"] == {"replicas": 0, "template": {"spec": {}}}
    assert manifest["spec"] == {"replicas": 3, "template": {"spec": {}}}  # the read is untouched
    assert Workload.from_manifest({**manifest, "spec": {}}).replicas == 1  # the API's default
