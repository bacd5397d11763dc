"""The audit trail: events, the local file, DynamoDB over HTTP (moto's server), `history`.

Unit tests build events from RunResults; DynamoDB tests run boto3 against moto's server mode;
CLI tests run Typer's CliRunner with kubectl faked at the process boundary; the e2e tests run
the installed `nsscale` with the real kubectl against the local API server and moto.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from nsscale import __version__
from nsscale.audit.auditor import Auditor
from nsscale.audit.trail import (
    CHECK_PK,
    AuditEvent,
    DynamoSink,
    FileSink,
    Record,
    RunStart,
    Sink,
    Who,
    check_sinks,
    iso_ms,
    parse_age,
    record,
    since,
    who,
)
from nsscale.cli import app
from nsscale.engine.options import AuditOptions
from nsscale.engine.outcome import RunOutcome, run_outcome
from nsscale.engine.plan import Change, Operation, Plan, Skip, make_plan
from nsscale.engine.result import RunResult
from nsscale.engine.writer import Writer
from nsscale.errors import AuditError
from nsscale.kube.cluster import ClusterIdentity, KubectlCluster
from nsscale.kube.objects import State, Workload
from nsscale.kube.review import Review
from nsscale.kubectl import Kubectl, KubectlConfig
from nsscale.transaction import Outcome, Restored, Transaction
from tests.apiserver.fixtures import kubectl_env
from tests.apiserver.server import ApiServer
from tests.dynamodb import Dynamo, aws_env, closed_port_url, dynamodb, moto_endpoint
from tests.faultkit import Running, lease, settle, wait_until
from tests.kube import (
    CLUSTER_ID,
    KUBECTL,
    NS,
    Script,
    moved,
    register_cluster_id,
    workload,
)
from tests.test_serve import ADMIN, Served, token_file

__all__ = ["aws_env", "dynamodb", "moto_endpoint"]  # fixtures, used by name

RUN_ID = "0d6f2b1e-6a3c-4f7e-9c55-3f1f4b2a9e10"
T = datetime(2025, 11, 28, 5, 21, 3, 123456, tzinfo=UTC)
WHO = Who("alice", "bastion-1", "arn:aws:iam::111122223333:user/alice", ("system:authenticated",))
CLUSTER = "prod-eu"
HERE = ClusterIdentity(CLUSTER, CLUSTER_ID)  # its name, and the uid of its kube-system

KA, KB = workload("a", 3, 10), workload("b", 2, 11, kind="StatefulSet")
KIDLE = workload("idle", 0, 12)
ERR_500 = 'Error from server (InternalError): error when replacing "STDIN": boom\n'
FORBIDDEN = 'Error from server (Forbidden): deployments.apps "a" is forbidden\n'
A_DOWN = moved(KA, 0, 20, 3, 0)


def through_kubectl(fp: Any, scenario: str) -> RunResult:
    """`down shop` over a, b and idle (at 0), through the real stack down to a faked kubectl."""
    script = Script(fp)
    script.get(KA, KB, KIDLE)
    if scenario == "success":
        script.replace(A_DOWN, moved(KB, 0, 21, 2, 0))
    else:  # the write of a and b fails; the re-read shows which landed
        script.replace(returncode=1, stderr=ERR_500)
        script.get(KA if scenario == "failed" else A_DOWN, KB, KIDLE)
    if scenario == "rolled_back":
        script.replace(moved(KA, 3, 22, None, None))
        script.get(moved(KA, 3, 22, None, None), KB, KIDLE)  # the rollback, verified
    if scenario == "rollback_failed":
        script.replace(returncode=1, stderr=FORBIDDEN)
        script.get(A_DOWN, KB, KIDLE)
        script.get(A_DOWN, KB, KIDLE)  # the rollback's verification
    if scenario in ("failed", "partial"):  # nothing to undo: what was judged, verified
        script.get(KA if scenario == "failed" else A_DOWN, KB, KIDLE)
    cluster = KubectlCluster(Kubectl(KubectlConfig(KUBECTL, timeout_s=5)))
    plan = make_plan(NS, Operation.DOWN, cluster.list_workloads([NS]))
    rollback = scenario != "partial"
    outcome = Transaction(Writer(cluster, (NS,)), rollback=rollback).run(plan.changes)
    return RunResult(plan, outcome, rollback_enabled=rollback, duration_s=1.25, run_id=RUN_ID)


# Results without kubectl, for the sinks: only their JSON documents matter there.
A, IDLE = Workload.from_manifest(KA), Workload.from_manifest(KIDLE)
DOWN_A = Change(A, State(0, "3", "0"))
PLAN = Plan(NS, Operation.DOWN, (DOWN_A,), (Skip(IDLE, "already at 0"),))
SUCCESS = RunResult(PLAN, Outcome(), duration_s=1.25, run_id=RUN_ID)
ROLLED_BACK = replace(SUCCESS, outcome=Outcome(errors=["boom"], rollback=[Restored(DOWN_A)]))


def event(
    result: RunResult = SUCCESS,
    moment: datetime = T,
    host: str = "bastion-1",
    cluster: str = CLUSTER,
    run_id: str | None = None,
    cluster_id: str | None = CLUSTER_ID,
) -> AuditEvent:
    result = replace(result, run_id=run_id) if run_id else result
    where = ClusterIdentity(cluster, cluster_id)
    return AuditEvent.from_result(result, replace(WHO, host=host), where, moment)


def plain(value: Any) -> Any:
    """DynamoDB's Decimals as the JSON numbers of the local file."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------- events


@pytest.mark.parametrize(
    ("scenario", "exit_code"),
    [("success", 0), ("rolled_back", 1), ("rollback_failed", 3), ("partial", 3), ("failed", 1)],
)
def test_outcome_classification(fp: Any, scenario: str, exit_code: int) -> None:
    result = through_kubectl(fp, scenario)
    assert run_outcome(result) is RunOutcome(scenario)
    assert result.exit_code == exit_code
    assert event(result).run_item()["outcome"] == scenario


def test_an_interrupted_run_that_changed_nothing_failed() -> None:
    interrupted = replace(SUCCESS, outcome=Outcome(interrupted="SIGINT"))
    assert (run_outcome(interrupted), interrupted.exit_code) == (RunOutcome.FAILED, 130)


def test_the_run_item_carries_every_attribute(fp: Any) -> None:
    assert event(through_kubectl(fp, "rolled_back")).run_item() == {
        "pk": "prod-eu#shop",
        "sk": f"2025-11-28T05:21:03.123Z#{RUN_ID}",
        "event_type": "scale_run",
        "event": "finished",
        "run_id": RUN_ID,
        "time": "2025-11-28T05:21:03.123Z",
        "timestamp": 1764307263,
        "cluster": "prod-eu",
        "cluster_name": "prod-eu",
        "cluster_id": CLUSTER_ID,
        "namespace": "shop",
        "operation": "down",
        "outcome": "rolled_back",
        "exit_code": 1,
        "user": "alice",
        "host": "bastion-1",
        "kubectl_user": "arn:aws:iam::111122223333:user/alice",
        "kubectl_groups": ["system:authenticated"],
        "total_scaled": 1,
        "total_failed": 1,
        "total_skipped": 1,
        "rollback_performed": True,
        "rollback_success_count": 1,
        "rollback_failed_count": 0,
        "duration_s": 1.25,
        "nsscale_version": __version__,
        "steps": [
            {
                "action": "scale",
                "type": "deployment",
                "name": "a",
                "from_replicas": 3,
                "to_replicas": 0,
                "status": "success",
            },
            {
                "action": "scale",
                "type": "statefulset",
                "name": "b",
                "status": "failed",
                "error": ERR_500.strip(),
                "error_kind": "server_error",
                "from_replicas": 2,
                "to_replicas": 0,
            },
            {
                "action": "skip",
                "status": "skipped",
                "type": "deployment",
                "name": "idle",
                "replicas": 0,
                "reason": "already at 0",
            },
            {
                "action": "rollback",
                "type": "deployment",
                "name": "a",
                "restored_replicas": 3,
                "status": "success",
            },
        ],
        "errors": [f"statefulset/b: {ERR_500.strip()}"],
    }


def test_a_rollback_also_makes_the_seed_item_and_only_a_rollback(fp: Any) -> None:
    assert event(through_kubectl(fp, "rolled_back")).rollback_item() == {
        "pk": "prod-eu#shop",
        "sk": f"2025-11-28T05:21:03.123Z#{RUN_ID}#rollback",
        "run_id": RUN_ID,
        "timestamp": 1764307263,
        "event_type": "rollback_performed",
        "namespace": "shop",
        "cluster_name": "prod-eu",
        "cluster_id": CLUSTER_ID,
        "original_operation": "scale_down",
        "resources_rolled_back": 1,
        "rollback_success_count": 1,
        "rollback_failed_count": 0,
        "details": json.dumps(
            [{"type": "deployment", "name": "a", "restored_replicas": 3, "status": "success"}]
        ),
    }
    assert event(SUCCESS).rollback_item() is None
    assert event(through_kubectl(fp, "failed")).rollback_item() is None  # nothing to undo


def test_iso_ms_is_utc_with_milliseconds_whatever_the_zone() -> None:
    paris = T.astimezone(datetime.now().astimezone().tzinfo)
    assert iso_ms(paris) == iso_ms(T) == "2025-11-28T05:21:03.123Z"


# ---------------------------------------------------------------------------------- who, where


def test_who_is_the_os_user_and_host_and_the_reviewed_kubectl_identity() -> None:
    found = who(Review(user="alice", groups=("devs", "system:authenticated")))
    assert (found.kubectl_user, found.kubectl_groups) == ("alice", ("devs", "system:authenticated"))
    assert found.host == socket.gethostname()
    assert found.user == getpass.getuser()
    assert who(Review(problem="forbidden")) == Who(found.user, found.host, "", ())


# ---------------------------------------------------------------------------------- --since


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("0m", timedelta(0)),
        ("1.5d", timedelta(hours=36)),  # decimals, as kubectl's durations take them
    ],
)
def test_parse_age(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "90", "d", "9x", "-1d", "1.5w", "90 d", "3w", "1D"])
def test_parse_age_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="not an age"):
        parse_age(text)


def test_an_age_beyond_the_calendar_means_no_bound() -> None:
    with pytest.raises(ValueError, match="too long ago"):
        parse_age("99999999999d")
    assert since(parse_age("999999d"), T) is None
    assert since(None, T) is None
    assert since(parse_age("1h"), T) == T - timedelta(hours=1)


# ---------------------------------------------------------------------------------- the file


def test_the_file_is_appended_to_and_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nsscale" / "audit.jsonl"
    sink = FileSink(path)
    sink.write(event(ROLLED_BACK))
    first = path.read_bytes()
    sink.write(event(run_id="second"))

    content = path.read_bytes()
    assert content.startswith(first)
    lines = content.decode().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == event(ROLLED_BACK).run_item()
    assert json.loads(lines[1])["run_id"] == "second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_unwritable_file_is_an_audit_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    sink = FileSink(tmp_path / "file" / "audit.jsonl")
    with pytest.raises(AuditError, match="cannot append to the audit file") as err:
        sink.write(event())
    assert err.value.sink == sink.name
    assert err.value.hint == "choose a writable --audit-file"


def under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "audit.jsonl"


def a_directory(tmp_path: Path) -> Path:
    (tmp_path / "dir").mkdir()
    return tmp_path / "dir"


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        (under_a_file, "File exists"),  # mkdir of the parent meets the file
        (a_directory, "Is a directory"),
    ],
    ids=["parent-is-a-file", "path-is-a-directory"],
)
def test_check_refuses_an_unwritable_file_as_write_does(
    tmp_path: Path, where: Callable[[Path], Path], reason: str
) -> None:
    sink = FileSink(where(tmp_path))
    try:
        with pytest.raises(
            AuditError, match=f"cannot append to the audit file .*: {reason}"
        ) as err:
            sink.check()
        with pytest.raises(AuditError) as written:
            sink.write(event())
    finally:
        tmp_path.chmod(0o700)
    assert (err.value.message, err.value.hint) == (written.value.message, written.value.hint)
    assert err.value.sink == sink.name
    assert err.value.hint == "choose a writable --audit-file"


def test_check_of_a_writable_file_appends_nothing(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "audit.jsonl")
    sink.write(event())
    before = sink.path.read_bytes()
    sink.check()
    assert sink.path.read_bytes() == before

    fresh = FileSink(tmp_path / "state" / "nsscale" / "audit.jsonl")
    fresh.check()  # made as write makes it, and empty: no record in the trail
    assert fresh.path.read_bytes() == b""
    assert stat.S_IMODE(fresh.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(fresh.path.parent.stat().st_mode) == 0o700
    assert fresh.history(HERE, NS, None, 10) == []


class Broken:
    """A sink whose every call raises what no sink should: not an AuditError."""

    name = "broken sink"

    def write(self, record: Record) -> None:
        raise RuntimeError("boom")

    def check(self) -> None:
        raise RuntimeError("boom")

    def history(
        self, cluster: ClusterIdentity, namespace: str, after: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    "act", [check_sinks, lambda sinks: record(event(), sinks)], ids=["check_sinks", "record"]
)
def test_one_failing_sink_never_stops_the_next(tmp_path: Path, act: Any) -> None:
    (tmp_path / "file").write_text("")
    bad, good = FileSink(tmp_path / "file" / "a.jsonl"), FileSink(tmp_path / "a.jsonl")
    sinks: list[Sink] = [bad, Broken(), good]

    failures = act(sinks)

    assert list(failures) == [bad.name, "broken sink"]
    assert failures[bad.name].hint == "choose a writable --audit-file"
    assert str(failures["broken sink"]) == "broken sink: unexpected error: RuntimeError('boom')"
    assert failures["broken sink"].sink == "broken sink"
    assert good.path.exists()
    assert act([good]) == {}


def events_for_history() -> list[AuditEvent]:
    """Three runs of shop in prod-eu, the newest a rollback; others that must not be listed."""
    now = datetime.now(UTC)
    return [
        event(SUCCESS, now - timedelta(days=100), run_id="old"),
        event(SUCCESS, now - timedelta(days=10), run_id="mid"),
        event(ROLLED_BACK, now - timedelta(hours=1), run_id="new"),
        event(SUCCESS, now, cluster="staging", run_id="other-cluster"),
        event(replace(SUCCESS, plan=replace(PLAN, namespace="web")), now, run_id="other-ns"),
    ]


def test_file_history_is_newest_first_filtered_and_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = FileSink(tmp_path / "audit.jsonl")
    for e in events_for_history():
        sink.write(e)
    with sink.path.open("a") as f:
        f.write('{"pk": "prod-eu#shop", "sk": "9999-torn\n')  # a line torn by a crash

    def ids(*args: Any) -> list[str]:
        return [r["run_id"] for r in sink.history(HERE, NS, *args)]

    assert ids(None, 10) == ["new", "mid", "old"]
    assert ids(datetime.now(UTC) - timedelta(days=90), 10) == ["new", "mid"]
    assert ids(None, 1) == ["new"]
    assert "line 6 is not JSON; skipped" in caplog.text
    assert FileSink(tmp_path / "none.jsonl").history(HERE, NS, None, 10) == []


# ---------------------------------------------------------------------------------- DynamoDB


def test_create_table_makes_the_key_schema_on_demand(dynamodb: Dynamo) -> None:
    table = dynamodb.client.describe_table(TableName=dynamodb.table)["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    again = CliRunner().invoke(app, ["audit", "create-table", dynamodb.table])
    assert again.exit_code == 0, again.output
    assert again.stdout == f"DynamoDB table {dynamodb.table} already exists; nothing to do.\n"


SEED_TYPES = {
    "timestamp": "N",
    "event_type": "S",
    "namespace": "S",
    "cluster_name": "S",
    "original_operation": "S",
    "resources_rolled_back": "N",
    "rollback_success_count": "N",
    "rollback_failed_count": "N",
    "details": "S",
}


def test_the_sink_writes_the_run_item_and_the_seed_item(fp: Any, dynamodb: Dynamo) -> None:
    e = event(through_kubectl(fp, "rolled_back"))
    DynamoSink(dynamodb.table).write(e)

    run_item, seed_item = dynamodb.items()
    assert run_item == e.run_item()  # every attribute; numbers come back as Decimal
    assert seed_item == e.rollback_item()
    raw_run, raw_seed = dynamodb.raw_items()
    assert {k: next(iter(v)) for k, v in raw_seed.items()} == SEED_TYPES | {
        "pk": "S",
        "sk": "S",
        "run_id": "S",
        "cluster_id": "S",
    }
    assert raw_run["steps"]["L"][0]["M"]["from_replicas"] == {"N": "3"}  # a list of maps
    assert raw_run["rollback_performed"] == {"BOOL": True}
    assert raw_run["duration_s"] == {"N": "1.25"}


def test_the_conditional_put_never_overwrites(dynamodb: Dynamo) -> None:
    sink, e = DynamoSink(dynamodb.table), event()
    sink.write(e)
    sink.write(e)  # this run's own item again (a retry whose first answer was lost): fine
    assert len(dynamodb.items()) == 1

    with pytest.raises(AuditError, match="not overwritten") as err:
        sink.write(replace(e, outcome=RunOutcome.FAILED))  # same key, other content
    assert err.value.code == "ConditionalCheckFailedException"
    assert dynamodb.items()[0]["outcome"] == "success"

    key = {"pk": {"S": e.pk}, "sk": {"S": e.sk}}
    with pytest.raises(ClientError) as refused:
        dynamodb.client.put_item(
            TableName=dynamodb.table, Item=key, ConditionExpression="attribute_not_exists(pk)"
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_two_events_in_the_same_millisecond_from_two_hosts_both_land(dynamodb: Dynamo) -> None:
    sink = DynamoSink(dynamodb.table)
    sink.write(event(SUCCESS, T, host="bastion-1", run_id=str(uuid.uuid4())))
    sink.write(event(SUCCESS, T, host="bastion-2", run_id=str(uuid.uuid4())))

    items = dynamodb.items()
    assert {i["host"] for i in items} == {"bastion-1", "bastion-2"}
    assert {i["pk"] for i in items} == {"prod-eu#shop"}
    assert len({i["sk"] for i in items}) == 2
    assert {i["time"] for i in items} == {"2025-11-28T05:21:03.123Z"}


def test_dynamodb_history_is_newest_first_without_the_seed_items(dynamodb: Dynamo) -> None:
    sink = DynamoSink(dynamodb.table)
    for e in events_for_history():
        sink.write(e)

    def ids(*args: Any) -> list[str]:
        return [r["run_id"] for r in sink.history(HERE, NS, *args)]

    assert ids(None, 10) == ["new", "mid", "old"]
    assert ids(datetime.now(UTC) - timedelta(days=90), 10) == ["new", "mid"]
    assert ids(None, 1) == ["new"]
    newest = sink.history(HERE, NS, None, 1)[0]
    assert newest["rollback_performed"] is True
    assert newest["steps"][-1]["restored_replicas"] == 3  # plain JSON numbers, as in the file
    assert newest["duration_s"] == 1.25


def test_check_passes_on_a_good_table_and_writes_nothing(dynamodb: Dynamo) -> None:
    sink = DynamoSink(dynamodb.table)
    sink.check()
    assert dynamodb.raw_items() == []

    sink.write(event())
    before = dynamodb.raw_items()
    sink.check()
    sink.check()  # a fresh probe key each time
    assert dynamodb.raw_items() == before
    assert CHECK_PK not in {i["pk"] for i in dynamodb.items()}


def test_check_of_a_missing_table_says_how_to_create_it(aws_env: str) -> None:
    with pytest.raises(AuditError) as err:
        DynamoSink("no-such-table").check()
    assert err.value.code == "ResourceNotFoundException"
    assert err.value.message.startswith("DynamoDB table no-such-table: ")
    assert err.value.hint == (
        "create it with `nsscale audit create-table NAME`, "
        "or check the region (AWS_DEFAULT_REGION or the AWS profile's)"
    )


def test_check_of_an_unreachable_endpoint_is_an_audit_error(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = closed_port_url()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
    with pytest.raises(AuditError) as err:
        DynamoSink("nsscale-audit").check()
    assert err.value.code == "EndpointConnectionError"
    assert err.value.message.startswith("DynamoDB table nsscale-audit: Could not connect")
    assert url in err.value.message
    assert err.value.hint.startswith("check the network")


def test_aws_region_alone_is_no_region_and_the_hint_names_what_boto3_reads(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # botocore 1.44 reads it for no client
    with pytest.raises(AuditError) as err:
        DynamoSink("nsscale-audit").check()
    assert err.value.code == "NoRegionError"
    assert err.value.hint == "set AWS_DEFAULT_REGION or a region in the AWS profile"


def test_an_unreachable_endpoint_is_an_audit_error_naming_it(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = closed_port_url()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
    with pytest.raises(AuditError) as err:
        DynamoSink("nsscale-audit").write(event())
    assert err.value.code == "EndpointConnectionError"
    assert err.value.message.startswith("DynamoDB table nsscale-audit: Could not connect")
    assert url in err.value.message


@pytest.mark.timing  # an upper bound on seconds
def test_a_silent_endpoint_times_out_within_the_limit_and_says_so(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv(
            "AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{silent.getsockname()[1]}"
        )
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        started = time.monotonic()
        with pytest.raises(AuditError, match=r"no answer within 0\.2s, on every try") as err:
            DynamoSink("nsscale-audit", timeout_s=0.2).write(event())
    assert time.monotonic() - started < 2 * 0.2 + 1 + 1  # two tries, one backoff (at most 1s)
    assert err.value.code == "ReadTimeoutError"


# ---------------------------------------------------------------------------------- the CLI


@pytest.fixture
def runner(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The command line's runner, its audit records naming the cluster CLUSTER."""
    monkeypatch.setenv("EKS_CLUSTER_NAME", CLUSTER)
    return runner


def nsscale(runner: CliRunner, *args: str) -> Any:
    timeout = ("--timeout", "5") if args[0] != "history" else ()
    retries = ("--retries", "0") if args[0] in ("down", "up", "scale") else ()  # a 500 fails
    return runner.invoke(app, [*args, "--kubectl", KUBECTL, *timeout, *retries])


def audit_lines(tmp_path: Path, event: str = "finished") -> list[dict[str, Any]]:
    """The runs' records in the audit file (or their starts: `event="started"`)."""
    path = tmp_path / "state" / "nsscale" / "audit.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if line["event"] == event]


def script_down(fp: Any) -> None:
    """A `down shop` that scales a and b, as kubectl answers it."""
    script = Script(fp)
    script.get(KA, KB)
    script.guards()
    script.replace(A_DOWN, moved(KB, 0, 21, 2, 0))


def script_rolled_back_down(fp: Any) -> None:
    """The write of a and b fails, a's landed: a is put back."""
    script = Script(fp)
    script.get(KA, KB)
    script.guards()
    script.replace(returncode=1, stderr=ERR_500)
    script.get(A_DOWN, KB)
    script.replace(moved(KA, 3, 22, None, None))
    script.get(moved(KA, 3, 22, None, None), KB)  # the rollback, verified


def test_a_run_is_recorded_in_the_file_and_in_dynamodb(
    fp: Any, runner: CliRunner, dynamodb: Dynamo, tmp_path: Path
) -> None:
    script_down(fp)
    result = nsscale(runner, "down", NS, "-o", "json", "--audit-table", dynamodb.table)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["audit_errors"] == []
    [line] = audit_lines(tmp_path)
    [item] = dynamodb.items()
    assert plain(item) == line  # the same record in both sinks
    assert line["run_id"] == doc["run_id"]
    assert line["pk"] == "prod-eu#shop"
    assert line["sk"] == f"{line['time']}#{doc['run_id']}"
    assert (line["operation"], line["outcome"], line["exit_code"]) == ("down", "success", 0)
    assert (line["user"], line["host"]) == (getpass.getuser(), socket.gethostname())
    assert (line["kubectl_user"], line["kubectl_groups"]) == ("alice", ["system:authenticated"])
    assert (line["total_scaled"], line["total_failed"], line["total_skipped"]) == (2, 0, 0)
    assert line["duration_s"] == doc["duration_s"]
    assert line["nsscale_version"] == __version__
    assert [(s["action"], s["name"], s["status"]) for s in line["steps"]] == [
        ("scale", "a", "success"),
        ("scale", "b", "success"),
    ]


def test_a_rollback_writes_the_seed_item_and_the_table_may_come_from_the_environment(
    fp: Any,
    runner: CliRunner,
    dynamodb: Dynamo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NSSCALE_AUDIT_TABLE", dynamodb.table)
    script_rolled_back_down(fp)
    result = nsscale(runner, "down", NS, "-o", "json")

    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    run_item, seed_item = dynamodb.items()
    assert run_item["outcome"] == "rolled_back"
    assert seed_item == {
        "pk": "prod-eu#shop",
        "sk": f"{run_item['sk']}#rollback",
        "run_id": doc["run_id"],
        "timestamp": run_item["timestamp"],
        "event_type": "rollback_performed",
        "namespace": "shop",
        "cluster_name": "prod-eu",
        "cluster_id": CLUSTER_ID,
        "original_operation": "scale_down",
        "resources_rolled_back": 1,
        "rollback_success_count": 1,
        "rollback_failed_count": 0,
        "details": json.dumps(doc["rollback_results"]),
    }
    [line] = audit_lines(tmp_path)  # the file keeps the run, not the seed's item
    assert line["outcome"] == "rolled_back"


def test_two_runs_in_the_same_millisecond_from_two_hosts_both_land(
    fp: Any, runner: CliRunner, dynamodb: Dynamo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nsscale.audit.trail.utcnow", lambda: T)
    for host in ("bastion-1", "bastion-2"):
        monkeypatch.setattr("nsscale.audit.trail.socket.gethostname", lambda host=host: host)
        script_down(fp)
        assert nsscale(runner, "down", NS, "--audit-table", dynamodb.table).exit_code == 0

    items = dynamodb.items()
    assert [(i["time"], i["host"]) for i in sorted(items, key=lambda i: i["host"])] == [
        ("2025-11-28T05:21:03.123Z", "bastion-1"),
        ("2025-11-28T05:21:03.123Z", "bastion-2"),
    ]


def test_dynamodb_down_is_a_warning_the_run_succeeds_and_the_file_keeps_the_event(
    fp: Any, runner: CliRunner, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", closed_port_url())
    script_down(fp)
    result = nsscale(runner, "down", NS, "-o", "json", "--audit-table", "nsscale-audit")

    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["success"] is True
    [error] = doc["audit_errors"]
    assert error.startswith("DynamoDB table nsscale-audit: Could not connect to the endpoint URL")
    assert result.stderr.startswith(f"[WARNING] audit: {error} (check the network")
    assert len(result.stderr.splitlines()) == 1
    [line] = audit_lines(tmp_path)
    assert line["run_id"] == doc["run_id"]


@pytest.mark.parametrize(
    "script",
    [script_down, script_rolled_back_down],
    ids=["success-becomes-1", "failure-stays-1"],
)
def test_audit_required_exits_non_zero_when_dynamodb_misses_the_record(
    fp: Any,
    runner: CliRunner,
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    script: Any,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", closed_port_url())
    script(fp)
    result = nsscale(runner, "down", NS, "-o", "json", "--audit-table", "t", "--audit-required")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["exit_code"] == 1


def test_audit_required_and_an_unwritable_record_change_nothing(
    fp: Any, runner: CliRunner, tmp_path: Path
) -> None:
    script = Script(fp)
    script.get(KA, KB)  # only the reads: a write would fail the test
    script.review()
    (tmp_path / "file").write_text("")
    audit_file = str(tmp_path / "file" / "audit.jsonl")  # no table: the file is required

    result = nsscale(runner, "down", NS, "--audit-file", audit_file, "--audit-required")

    assert result.exit_code == 1, result.output
    assert "cannot append to the audit file" in result.stderr
    assert "so nothing was changed (--audit-required)" in result.stderr
    # the reads (the cluster's id among them), the review
    assert sorted(c[1] for c in fp.calls) == ["create", *["get"] * 5]


def test_audit_required_keeps_3(fp: Any, runner: CliRunner, tmp_path: Path) -> None:
    # The record could be written when the run began, and not when it ended: 3 stays 3.
    script = Script(fp)
    script.get(KA, KB)
    script.guards()
    script.replace(returncode=1, stderr=ERR_500)
    script.get(A_DOWN, KB)
    script.get(A_DOWN, KB)  # the verification
    script.retire()
    audit = tmp_path / "audit.jsonl"
    audit.write_text("")

    def unwritable(*args: Any) -> None:  # a directory now: taken away while the run went on
        real(*args)  # its start written first, while it could still be written
        audit.unlink()
        audit.mkdir()

    real = Auditor.started
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Auditor, "started", unwritable)
        result = nsscale(
            runner, "down", NS, "--no-rollback", "--audit-file", str(audit), "--audit-required"
        )

    assert result.exit_code == 3, result.output
    assert "[WARNING] audit: cannot append to the audit file" in result.stderr


def test_audit_required_is_satisfied_by_dynamodb_when_only_the_file_fails(
    fp: Any, runner: CliRunner, dynamodb: Dynamo, tmp_path: Path
) -> None:
    script_down(fp)
    (tmp_path / "file").write_text("")
    args = ("--audit-file", str(tmp_path / "file" / "x"), "--audit-required")
    result = nsscale(runner, "down", NS, "--audit-table", dynamodb.table, *args)
    assert result.exit_code == 0, result.output
    assert "[WARNING] audit: cannot append" in result.stderr
    assert len(dynamodb.items()) == 1


def test_a_dry_run_records_nothing(fp: Any, runner: CliRunner, tmp_path: Path) -> None:
    Script(fp).get(KA, KB)  # only the read: the review would be an unregistered call
    result = nsscale(runner, "down", NS, "--dry-run")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "state").exists()
    # the workloads, the Namespace, KEDA, Argo Rollouts
    assert [c[1] for c in fp.calls] == ["get"] * 4


def test_the_log_file_carries_the_run_id_and_stderr_keeps_the_seed_format(
    fp: Any, runner: CliRunner, tmp_path: Path
) -> None:
    script_rolled_back_down(fp)
    log_file = tmp_path / "nsscale.log"
    result = nsscale(runner, "down", NS, "-o", "json", "-v", "--log-file", str(log_file))

    run_id = json.loads(result.stdout)["run_id"]
    lines = log_file.read_text().splitlines()
    assert len(lines) >= 5
    assert all(f" run={run_id} [" in line for line in lines)
    assert "[INFO] Rolling back deployment/a to 3 replicas" in result.stderr.splitlines()
    assert run_id not in result.stderr


@pytest.mark.parametrize("source", ["file", "dynamodb"])
def test_history_lists_the_namespace_newest_first_from_either_sink(
    runner: CliRunner, dynamodb: Dynamo, tmp_path: Path, source: str
) -> None:
    table = ("--audit-table", dynamodb.table) if source == "dynamodb" else ()
    sink = DynamoSink(dynamodb.table) if source == "dynamodb" else FileSink(tmp_path / "a.jsonl")
    for e in events_for_history():
        sink.write(e)
    args = ("history", NS, "--audit-file", str(tmp_path / "a.jsonl"), *table)

    doc = json.loads(nsscale(runner, *args, "-o", "json", "--since", "90d").stdout)
    assert [e["run_id"] for e in doc["events"]] == ["new", "mid"]
    assert (doc["cluster"], doc["namespace"], doc["source"]) == (CLUSTER, NS, sink.name)
    assert [e["outcome"] for e in doc["events"]] == ["rolled_back", "success"]

    limited = json.loads(nsscale(runner, *args, "-o", "json", "--limit", "1").stdout)
    assert [e["run_id"] for e in limited["events"]] == ["new"]

    table_output = nsscale(runner, *args)
    assert table_output.exit_code == 0, table_output.output
    assert "rolled_back" in table_output.stdout
    assert "alice" in table_output.stdout  # the kubectl identity, shown as who ran it
    # newest first: the rolled-back run of an hour ago, then the successful one of 10 days ago
    assert table_output.stdout.index("rolled_back") < table_output.stdout.index("success")


def test_history_of_a_namespace_without_runs(runner: CliRunner, tmp_path: Path) -> None:
    result = nsscale(runner, "history", NS)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("No recorded runs in shop (prod-eu) in the audit file ")


def test_history_uses_the_context_when_eks_cluster_name_is_unset(
    fp: Any, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EKS_CLUSTER_NAME")
    FileSink(tmp_path / "state" / "nsscale" / "audit.jsonl").write(event(cluster="dev"))
    fp.register([KUBECTL, "config", "current-context", fp.any()], stdout="dev\n")
    register_cluster_id(fp)

    doc = json.loads(nsscale(runner, "history", NS, "-o", "json").stdout)

    assert (doc["cluster"], doc["cluster_id"]) == ("dev", CLUSTER_ID)
    assert [e["run_id"] for e in doc["events"]] == [RUN_ID]


@pytest.mark.parametrize("age", ["9x", "90", "-1d", "1.5w"])
def test_history_with_a_bad_since_is_a_usage_error(runner: CliRunner, age: str) -> None:
    result = nsscale(runner, "history", NS, "--since", age)
    assert result.exit_code == 2
    assert "Invalid value for '--since'" in result.stderr
    assert "use a number and d, h or m" in result.stderr


def test_aws_errors_go_through_the_error_boundary(
    runner: CliRunner, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", closed_port_url())
    made = runner.invoke(app, ["audit", "create-table", "nsscale-audit"])
    assert made.exit_code == 1
    assert made.stderr.startswith("error: DynamoDB table nsscale-audit: Could not connect")
    assert "Traceback" not in made.output

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    listed = nsscale(runner, "history", NS, "--audit-table", "nsscale-audit")
    assert listed.exit_code == 1
    warning, *error = listed.stderr.splitlines()  # no kubeconfig: no cluster's id either
    assert warning.startswith("[WARNING] could not learn which cluster prod-eu is")
    assert error == [
        "error: DynamoDB: You must specify a region.",
        "  set AWS_DEFAULT_REGION or a region in the AWS profile",
    ]


def test_history_from_a_missing_table_says_how_to_create_it(
    runner: CliRunner, aws_env: str
) -> None:
    result = nsscale(runner, "history", NS, "--audit-table", "no-such-table")
    assert result.exit_code == 1
    assert "ResourceNotFoundException" in result.stderr
    assert "nsscale audit create-table NAME" in result.stderr


def test_the_version_does_not_import_boto3() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nsscale", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout == f"nsscale {__version__}\n"
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()]
    assert "nsscale.cli" in imported  # the check sees what was imported
    heavy = ("boto3", "botocore", "rich", "nsscale.audit.trail", "nsscale.engine.run")
    assert not [m for m in imported if m.startswith(heavy)]


# ---------------------------------------------------------------------------------- end to end

NSSCALE = [sys.executable, "-m", "nsscale"]


@pytest.fixture
def e2e_env(kubeconfig: Path, kubectl_bin: Path, tmp_path: Path) -> Callable[[], dict[str, str]]:
    """The environment of `nsscale` as a process (the real kubectl, the local API server), as
    it is when called: with the other fixtures' AWS variables."""

    def environment() -> dict[str, str]:
        found = {
            **kubectl_env(kubeconfig),  # os.environ
            "NSSCALE_KUBECTL": str(kubectl_bin),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "COLUMNS": "200",
        }
        found.pop("EKS_CLUSTER_NAME", None)  # the cluster is the kubeconfig's context
        return found

    return environment


@pytest.fixture
def e2e(apiserver: ApiServer, e2e_env: Callable[[], dict[str, str]]) -> Any:
    """`nsscale ARGS` as a process, the real kubectl, the local API server, moto's DynamoDB."""
    apiserver.add_namespace(NS)
    apiserver.add_deployment(NS, "web", replicas=3)
    apiserver.add_statefulset(NS, "db", replicas=1)

    def nsscale_process(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = e2e_env() | env
        return subprocess.run(
            [*NSSCALE, *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return nsscale_process


@pytest.mark.e2e
def test_e2e_runs_land_in_dynamodb_and_history_lists_them_from_both_sinks(
    e2e: Any, apiserver: ApiServer, dynamodb: Dynamo, tmp_path: Path
) -> None:
    table = {"NSSCALE_AUDIT_TABLE": dynamodb.table}
    down = e2e("down", NS, "-o", "json", **table)
    assert down.returncode == 0, down.stderr
    up = e2e("up", NS, "-o", "json", **table)
    assert up.returncode == 0, up.stderr

    items = {i["operation"]: i for i in dynamodb.items()}
    assert set(items) == {"down", "up"}
    for operation, proc in (("down", down), ("up", up)):
        item, doc = items[operation], json.loads(proc.stdout)
        assert item["run_id"] == doc["run_id"]
        assert item["pk"] == "local#shop"  # the kubeconfig's current context
        assert (item["cluster"], item["cluster_id"]) == ("local", apiserver.cluster_id)
        assert item["cluster_name"] == "local"  # as the seed's rollback item names it
        assert item["outcome"] == "success"
        assert (item["kubectl_user"], item["kubectl_groups"]) == (
            "tester",
            ["system:authenticated"],
        )
        assert item["total_scaled"] == 2
        assert {(s["name"], s["status"]) for s in item["steps"]} == {
            ("web", "success"),
            ("db", "success"),
        }
    newest_first = [json.loads(up.stdout)["run_id"], json.loads(down.stdout)["run_id"]]

    from_table = e2e("history", NS, "-o", "json", "--since", "1h", **table)
    assert from_table.returncode == 0, from_table.stderr
    assert [e["run_id"] for e in json.loads(from_table.stdout)["events"]] == newest_first
    from_file = e2e("history", NS, "-o", "json")
    assert [e["run_id"] for e in json.loads(from_file.stdout)["events"]] == newest_first
    assert plain(items["up"]) == json.loads(from_file.stdout)["events"][0]


@pytest.mark.e2e
def test_e2e_a_rollback_writes_the_seed_item(
    e2e: Any, apiserver: ApiServer, dynamodb: Dynamo
) -> None:
    apiserver.fail("PUT", "statefulsets", "db", status=500, times=None)  # every try: no retry helps
    proc = e2e("down", NS, "-o", "json", "--audit-table", dynamodb.table)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["rollback_performed"] is True
    run_item, seed_item = dynamodb.items()
    assert run_item["outcome"] == "rolled_back"
    assert seed_item == {
        "pk": "local#shop",
        "sk": f"{run_item['sk']}#rollback",
        "run_id": doc["run_id"],
        "timestamp": run_item["timestamp"],
        "event_type": "rollback_performed",
        "namespace": "shop",
        "cluster_name": "local",
        "cluster_id": apiserver.cluster_id,  # the uid of its kube-system Namespace
        "original_operation": "scale_down",
        "resources_rolled_back": len(doc["rollback_results"]),
        "rollback_success_count": doc["rollback_success_count"],
        "rollback_failed_count": doc["rollback_failed_count"],
        "details": json.dumps(doc["rollback_results"]),
    }
    raw_seed = dynamodb.raw_items()[1]
    assert {k: next(iter(raw_seed[k])) for k in SEED_TYPES} == SEED_TYPES


@pytest.mark.e2e
def test_e2e_dynamodb_down_leaves_the_run_alone_and_the_event_in_the_file(
    e2e: Any, aws_env: str, apiserver: ApiServer, tmp_path: Path
) -> None:
    proc = e2e(
        "down",
        NS,
        "-o",
        "json",
        AWS_ENDPOINT_URL_DYNAMODB=closed_port_url(),
        NSSCALE_AUDIT_TABLE="t",
    )

    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["success"] is True
    assert len(doc["audit_errors"]) == 1
    assert "[WARNING] audit: DynamoDB table t: Could not connect" in proc.stderr
    lines = (tmp_path / "state" / "nsscale" / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["started", "finished"]
    assert {json.loads(line)["run_id"] for line in lines} == {doc["run_id"]}
    assert {w["spec"]["replicas"] for w in apiserver.workloads(NS)} == {0}


# ------------------------------------------------------------------------ the audit written ahead


def start(run_id: str, moment: datetime, namespaces: tuple[str, ...] = (NS,)) -> RunStart:
    return RunStart(
        run_id, Operation.DOWN, namespaces, moment, moment + timedelta(seconds=1), HERE, WHO
    )


def test_a_start_is_one_record_per_namespace_beside_its_runs_record() -> None:
    first, second = start(RUN_ID, T, (NS, "web")).items()
    assert first == {
        "pk": "prod-eu#shop",
        "sk": f"2025-11-28T05:21:03.123Z#{RUN_ID}#started",  # after the run's, before the next
        "event_type": "scale_run_started",
        "event": "started",
        "run_id": RUN_ID,
        "operation": "down",
        "namespaces": ["shop", "web"],
        "caller": "",
        "at": "2025-11-28T05:21:04.123Z",
        "time": "2025-11-28T05:21:03.123Z",
        "timestamp": 1764307263,
        "cluster": "prod-eu",
        "cluster_name": "prod-eu",
        "cluster_id": CLUSTER_ID,
        "namespace": "shop",
        "user": "alice",
        "host": "bastion-1",
        "kubectl_user": "arn:aws:iam::111122223333:user/alice",
        "kubectl_groups": ["system:authenticated"],
        "nsscale_version": __version__,
    }
    assert second == first | {"pk": "prod-eu#web", "namespace": "web"}
    assert start(RUN_ID, T).lines() == start(RUN_ID, T).items()


@pytest.fixture(params=["file", "dynamodb"])
def any_sink(request: pytest.FixtureRequest, tmp_path: Path) -> Sink:
    if request.param == "file":
        return FileSink(tmp_path / "audit.jsonl")
    table: Dynamo = request.getfixturevalue("dynamodb")
    return DynamoSink(table.table)


def test_history_shows_a_start_without_an_end_interrupted_until_a_run_takes_it_over(
    any_sink: Sink,
) -> None:
    now = datetime.now(UTC)
    recover = replace(SUCCESS, plan=replace(PLAN, operation=Operation.RECOVER))
    for written in (
        start("killed", now - timedelta(hours=3)),
        start("done", now - timedelta(hours=2)),
        event(SUCCESS, now - timedelta(hours=2), run_id="done"),
        start("elsewhere", now - timedelta(hours=1, minutes=30), ("web",)),  # not shop's
    ):
        any_sink.write(written)

    def shown(limit: int = 10) -> list[tuple[str, str, str]]:
        found = any_sink.history(HERE, NS, None, limit)
        return [(r["run_id"], r["outcome"], r.get("recovered_by", "")) for r in found]

    assert shown() == [("done", "success", ""), ("killed", "interrupted", "")]
    assert any_sink.history(HERE, NS, None, 10)[1]["event"] == "started"

    any_sink.write(start("recover", now - timedelta(hours=1)))
    closing = replace(recover, took_over="killed")
    any_sink.write(event(closing, now - timedelta(hours=1), run_id="recover"))

    assert shown() == [
        ("recover", "success", ""),
        ("done", "success", ""),
        ("killed", "recovered", "recover"),
    ]
    assert shown(2) == [("recover", "success", ""), ("done", "success", "")]
    assert shown(1) == [("recover", "success", "")]


def test_dynamodb_history_pages_until_the_last_run_shown_is_whole(dynamodb: Dynamo) -> None:
    # Each run's start and end on pages of their own: a run must never look cut short.
    sink, now = DynamoSink(dynamodb.table), datetime.now(UTC)
    for n in range(4):
        moment = now - timedelta(minutes=n)
        sink.write(start(f"run-{n}", moment))
        sink.write(event(SUCCESS, moment, run_id=f"run-{n}"))
    real_query = sink.client.query

    def one_item_a_page(**request: Any) -> Any:
        return real_query(**request, Limit=1)

    sink.client.query = one_item_a_page  # type: ignore[method-assign]
    for limit in (1, 2, 4, 10):
        found = sink.history(HERE, NS, None, limit)
        assert [(r["run_id"], r["outcome"]) for r in found] == [
            (f"run-{n}", "success") for n in range(min(limit, 4))
        ]


@pytest.mark.e2e
def test_e2e_a_run_records_its_start_before_it_changes_anything(
    e2e: Any, dynamodb: Dynamo, tmp_path: Path
) -> None:
    table = {"NSSCALE_AUDIT_TABLE": dynamodb.table}
    dry = e2e("down", NS, "--dry-run", **table)
    assert dry.returncode == 0, dry.stderr
    assert dynamodb.items(starts=True) == []
    assert not (tmp_path / "state").exists()

    down = e2e("down", NS, "-o", "json", **table)
    assert down.returncode == 0, down.stderr
    run_id = json.loads(down.stdout)["run_id"]
    [started] = audit_lines(tmp_path, "started")
    [finished] = audit_lines(tmp_path)
    assert {k: started[k] for k in ("event", "run_id", "operation", "namespaces", "caller")} == {
        "event": "started",
        "run_id": run_id,
        "operation": "down",
        "namespaces": [NS],
        "caller": "",
    }
    assert (started["pk"], started["sk"]) == (finished["pk"], f"{finished['sk']}#started")
    assert finished["time"] <= started["at"]
    assert [plain(i) for i in dynamodb.items(starts=True)] == [finished, started]

    again = e2e("down", NS, **table)  # nothing left to change: no start, the record only
    assert again.returncode == 0, again.stderr
    assert len(audit_lines(tmp_path, "started")) == 1
    assert len(audit_lines(tmp_path)) == 2
    assert len(dynamodb.items(starts=True)) == 3


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("path", "why"),
    [("/dev/full", "No space left on device"), ("/proc/version", "Input/output error")],
    ids=["full-disk", "proc-as-root"],
)
def test_e2e_a_start_that_cannot_be_written_stops_the_run_before_any_change(
    e2e: Any, apiserver: ApiServer, path: str, why: str
) -> None:
    if why == "Input/output error" and os.geteuid() != 0:
        why = "Permission denied"  # opening it fails already: the check refuses, as before
    proc = e2e("down", NS, "--audit-file", path, "--audit-required", "-o", "json")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert why in proc.stderr
    assert "so nothing was changed (--audit-required)" in proc.stderr
    assert json.loads(proc.stdout)["total_scaled"] == 0
    assert {w["metadata"]["name"]: w["spec"]["replicas"] for w in apiserver.workloads(NS)} == {
        "web": 3,
        "db": 1,
    }
    writes = [(r.method, r.resource) for r in apiserver.requests if r.method != "GET"]
    assert set(writes) <= {("POST", "selfsubjectaccessreviews"), ("POST", "selfsubjectreviews")}
    assert lease(apiserver, NS) is None  # not even the mark


@pytest.mark.e2e
def test_e2e_a_run_killed_mid_way_is_interrupted_until_recover_closes_it(
    e2e: Any,
    e2e_env: Callable[[], dict[str, str]],
    apiserver: ApiServer,
    dynamodb: Dynamo,
    tmp_path: Path,
) -> None:
    table = {"NSSCALE_AUDIT_TABLE": dynamodb.table}
    held = apiserver.hang("PUT", "statefulsets", seconds=3)  # web is written, db is held
    running = Running(e2e_env() | table, "down", NS, "--parallel", "1", "--batch-size", "1")
    assert wait_until(lambda: held.seen == 1 or running.exited, 60), "db was never written"
    running.proc.kill()
    assert running.finish().code == -signal.SIGKILL
    held.release()  # its last kubectl, in its own session, outlives it: let its write land
    settle(apiserver)
    assert lease(apiserver, NS) is not None  # the mark `recover` undoes it from

    def history(**env: str) -> list[dict[str, Any]]:
        shown = e2e("history", NS, "-o", "json", **env)
        assert shown.returncode == 0, shown.stderr
        events: list[dict[str, Any]] = json.loads(shown.stdout)["events"]
        return events

    for source in (table, {}):  # DynamoDB, then the file
        [killed] = history(**source)
        assert (killed["operation"], killed["outcome"], killed["event"]) == (
            "down",
            "interrupted",
            "started",
        )
    table_view = e2e("history", NS, **table)
    assert re.search(r"down\s+interrupted", table_view.stdout), table_view.stdout

    recover = e2e("recover", NS, "--force", "-o", "json", **table)
    assert recover.returncode == 0, recover.stdout + recover.stderr
    assert {w["metadata"]["name"]: w["spec"]["replicas"] for w in apiserver.workloads(NS)} == {
        "web": 3,
        "db": 1,
    }
    recover_id = json.loads(recover.stdout)["run_id"]
    for source in (table, {}):
        closer, closed = history(**source)
        assert (closer["run_id"], closer["operation"], closer["outcome"]) == (
            recover_id,
            "recover",
            "success",
        )
        assert closer["took_over"] == killed["run_id"]
        assert (closed["run_id"], closed["outcome"], closed["recovered_by"]) == (
            killed["run_id"],
            "recovered",
            recover_id,
        )


def test_a_served_runs_start_names_its_caller(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "audit.jsonl")
    served = Auditor(AuditOptions(), sinks=(sink,)).for_caller("token:ci pipeline")
    review = Review(user="system:serviceaccount:nsscale:server", groups=())
    served.started(RUN_ID, Operation.UP, [NS], review, HERE, T)
    [line] = [json.loads(line) for line in sink.path.read_text().splitlines()]
    assert (line["event"], line["caller"], line["operation"]) == (
        "started",
        "token:ci pipeline",
        "up",
    )
    assert line["kubectl_user"] == "system:serviceaccount:nsscale:server"


# ------------------------------------------------------------------------- which cluster


class Legacy:
    """A record as nsscale wrote it before records carried `cluster_id`."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def lines(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in line.items() if k != "cluster_id"} for line in self.record.lines()
        ]

    def items(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in item.items() if k != "cluster_id"} for item in self.record.items()
        ]


def test_a_record_carries_the_cluster_s_id_null_when_unknown(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "audit.jsonl")
    sink.write(event(cluster_id=None))
    sink.write(start(RUN_ID, T))
    unknown, started = (json.loads(line) for line in sink.path.read_text().splitlines())
    assert (unknown["cluster"], unknown["cluster_id"]) == (CLUSTER, None)
    assert (started["cluster"], started["cluster_id"]) == (CLUSTER, CLUSTER_ID)


def test_history_keeps_to_the_cluster_s_id_and_takes_records_without_one_by_name(
    any_sink: Sink,
) -> None:
    now = datetime.now(UTC)
    any_sink.write(event(SUCCESS, now - timedelta(hours=3), run_id="legacy", cluster_id=None))
    any_sink.write(Legacy(event(SUCCESS, now - timedelta(hours=2), run_id="older")))
    any_sink.write(event(SUCCESS, now - timedelta(hours=1), run_id="twin", cluster_id="other"))
    any_sink.write(event(SUCCESS, now, run_id="mine"))

    def ids(cluster: ClusterIdentity) -> list[str]:
        return [r["run_id"] for r in any_sink.history(cluster, NS, None, 10)]

    assert ids(HERE) == ["mine", "older", "legacy"]
    assert ids(ClusterIdentity(CLUSTER, "other")) == ["twin", "older", "legacy"]
    assert ids(ClusterIdentity(CLUSTER)) == ["mine", "twin", "older", "legacy"]  # id unknown
    assert [r["run_id"] for r in any_sink.history(HERE, NS, None, 1)] == ["mine"]


@pytest.mark.e2e
def test_e2e_two_clusters_of_one_name_each_have_their_own_history(
    e2e: Any, apiserver: ApiServer, dynamodb: Dynamo, tmp_path: Path, kubeconfig: Path
) -> None:
    table = {"NSSCALE_AUDIT_TABLE": dynamodb.table}
    # an earlier record under the same name, written before records carried an id
    for sink in (
        FileSink(tmp_path / "state" / "nsscale" / "audit.jsonl"),
        DynamoSink(dynamodb.table),
    ):
        sink.write(Legacy(event(cluster="local", run_id="legacy", moment=T)))
    with ApiServer() as twin:  # another cluster whose context is also called "local"
        twin.add_namespace(NS)
        twin.add_deployment(NS, "web", replicas=2)
        twin_config = str(twin.write_kubeconfig(tmp_path / "twin" / "kubeconfig"))
        assert twin.cluster_id != apiserver.cluster_id
        ran = {
            "down": e2e("down", NS, "-o", "json", **table),
            "twin": e2e("down", NS, "-o", "json", KUBECONFIG=twin_config, **table),
            "up": e2e("up", NS, "-o", "json", **table),
        }
        assert all(p.returncode == 0 for p in ran.values()), [p.stderr for p in ran.values()]
        run_id = {name: json.loads(p.stdout)["run_id"] for name, p in ran.items()}

        for source in ({}, table):  # the file, and DynamoDB
            here = e2e("history", NS, "-o", "json", **source)
            there = e2e("history", NS, "-o", "json", KUBECONFIG=twin_config, **source)
            both = e2e("history", NS, "-o", "json", "--all-clusters", **source)
            assert (here.stderr, there.stderr, both.stderr) == ("", "", "")
            assert json.loads(here.stdout)["cluster_id"] == apiserver.cluster_id
            assert json.loads(there.stdout)["cluster_id"] == twin.cluster_id
            assert json.loads(both.stdout)["cluster_id"] is None

            def listed(proc: subprocess.CompletedProcess[str]) -> list[str]:
                return [e["run_id"] for e in json.loads(proc.stdout)["events"]]

            assert listed(here) == [run_id["up"], run_id["down"], "legacy"], source
            assert listed(there) == [run_id["twin"], "legacy"], source
            assert listed(both) == [run_id["up"], run_id["twin"], run_id["down"], "legacy"]

    records = [json.loads(line) for line in (tmp_path / "state" / "nsscale" / "audit.jsonl").open()]
    ids = {(r["run_id"], r["event"]): r.get("cluster_id") for r in records}
    assert (
        ids[(run_id["down"], "started")]
        == ids[(run_id["down"], "finished")]
        == apiserver.cluster_id
    )
    assert ids[(run_id["twin"], "started")] == ids[(run_id["twin"], "finished")] == twin.cluster_id

    # the cluster out of reach: every record of the name, from the file, with a warning
    offline = tmp_path / "offline" / "kubeconfig"
    offline.parent.mkdir()
    offline.write_text(kubeconfig.read_text().replace(apiserver.url, closed_port_url()))
    away = e2e("history", NS, "-o", "json", KUBECONFIG=str(offline))
    assert away.returncode == 0, away.stderr
    [warning] = away.stderr.splitlines()
    assert warning.startswith("[WARNING] could not learn which cluster local is (")
    assert warning.endswith("): showing every run recorded under its name")
    assert [e["run_id"] for e in json.loads(away.stdout)["events"]] == [
        run_id["up"],
        run_id["twin"],
        run_id["down"],
        "legacy",
    ]


@pytest.mark.e2e
def test_e2e_an_unreadable_cluster_id_is_null_and_the_run_goes_on(
    e2e: Any, apiserver: ApiServer, tmp_path: Path
) -> None:
    apiserver.forbid("get", "namespaces", name="kube-system")
    down = e2e("down", NS, "-o", "json", "-vv")
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["success"] is True
    assert [line["cluster_id"] for line in audit_lines(tmp_path, "started")] == [None]
    assert [line["cluster_id"] for line in audit_lines(tmp_path)] == [None]
    why = "the cluster's id is unknown: cannot read the Namespace kube-system: "
    assert f"{why}Error from server (Forbidden)" in down.stderr
    assert "[WARNING]" not in down.stderr


@pytest.mark.e2e
def test_e2e_a_server_reads_the_cluster_s_id_once_for_all_its_runs(
    e2e: Any, apiserver: ApiServer, e2e_env: Callable[[], dict[str, str]], tmp_path: Path
) -> None:
    tokens = token_file(tmp_path / "tokens", f"{ADMIN}  # portal\n")
    served = Served(e2e_env(), "--token-file", str(tokens))
    try:
        for action in ("deactivate", "activate", "deactivate"):
            reply = served.post(NS, action)
            assert reply.status == 200, reply
    finally:
        assert served.stop() == 0, served.stderr
    reads = [r for r in apiserver.requests if r.path == "/api/v1/namespaces/kube-system"]
    assert len(reads) == 1
    assert [line["cluster_id"] for line in audit_lines(tmp_path)] == [apiserver.cluster_id] * 3
