"""The audit trail: each run of down/up/scale/recover, in a local file and in DynamoDB.

Written ahead: a run that will change something first records its start (``"event":
"started"``: run id, operation, namespaces, caller), and at its end its record (``"event":
"finished"``), built from its RunResult plus who ran it and where. A run killed in between keeps
its start, and ``history`` shows it ``interrupted``. Every record is keyed so that no event can
overwrite another, even two in the same millisecond from two hosts: partition key
``pk = "<cluster>#<namespace>"``, sort key ``sk = "<UTC ISO-8601 ms of the run's start>#<run
id>"`` (the start: + ``#started``), written only if that key does not exist. A rollback also
writes the seed's ``rollback_performed`` item (same pk, sk + ``#rollback``), so that dashboards
built on it keep working.

Where: every record carries ``cluster_name`` (the context's name, in the pk; a run's record and a
start also as ``cluster``, its older key) and ``cluster_id`` (the uid of the cluster's
kube-system Namespace, or null): ``history`` shows a cluster's own records
even when another cluster of the same name writes beside them.

Sinks: FileSink appends one JSON line per record (never rewrites) and is always written, so that
a run's record survives a DynamoDB outage; DynamoSink when a table is configured. Both answer
``history``, and ``check`` that a run's record could be written now, before the run changes
anything. boto3 is imported only when a DynamoDB client is made: start-up stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nsscale import __version__
from nsscale.durations import parse_duration
from nsscale.engine.outcome import RunOutcome as RunOutcome  # the audit's words, and last-run's
from nsscale.engine.outcome import run_outcome as run_outcome
from nsscale.engine.plan import Operation
from nsscale.engine.result import RunResult
from nsscale.errors import AuditError
from nsscale.kube.cluster import ClusterIdentity
from nsscale.kube.review import Review, os_user

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

log = logging.getLogger("nsscale")

RUN_EVENT = "scale_run"  # a run's record, written at its end (`"event": "finished"`)
START_EVENT = "scale_run_started"  # written ahead of the run's first change
STARTED, FINISHED = "started", "finished"
INTERRUPTED = "interrupted"  # history's outcome of a run with a start and no end
RECOVERED = "recovered"  # ... and once a later run (`recover`, --force) took over its mark
ROLLBACK_EVENT = "rollback_performed"  # the seed's event type (docs/contract.md)
CHECK_PK = "nsscale#check"  # the partition key of DynamoSink.check's probe, never written
AWS_TIMEOUT_S = 5.0  # connect and read, per attempt (botocore's standard mode tries 3 times)


@dataclass(frozen=True)
class Who:
    user: str  # the OS user
    host: str
    kubectl_user: str = ""  # what `kubectl auth whoami` says; empty where the server would not
    kubectl_groups: tuple[str, ...] = ()
    caller: str = ""  # who asked for the run, when not the OS user: an `nsscale serve` request

    @property
    def by(self) -> str:
        """In a few words: the caller of a served run, else the kube user (or OS user) at the
        host (the Namespace's `nsscale/last-run` says it so)."""
        return self.caller or f"{self.kubectl_user or self.user}@{self.host}"


def who(review: Review, caller: str = "") -> Who:
    return Who(os_user(), socket.gethostname(), review.user, review.groups, caller)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_ms(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds: sorts as text in time order (the sort key's prefix)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_age(text: str) -> timedelta:
    """`90d`, `12h`, `30m` as a timedelta; ValueError for anything else."""
    return parse_duration(text, "dhm", "an age", "90d, 12h, 30m", too_long="too long ago")


def since(age: timedelta | None, now: datetime) -> datetime | None:
    """The moment `age` before `now`; None (no bound) when there is no age or it predates year 1."""
    if age is None:
        return None
    try:
        return now - age
    except OverflowError:
        return None


@dataclass(frozen=True)
class AuditEvent:
    """The end of one run of down, up, scale or recover in a namespace, as the trail keeps it."""

    run_id: str
    time: datetime  # when the run started, UTC
    cluster: ClusterIdentity
    who: Who
    outcome: RunOutcome
    result: RunResult

    @classmethod
    def from_result(
        cls, result: RunResult, who: Who, cluster: ClusterIdentity, started_at: datetime
    ) -> AuditEvent:
        return cls(result.run_id, started_at, cluster, who, run_outcome(result), result)

    @property
    def namespace(self) -> str:
        return self.result.namespace

    @property
    def pk(self) -> str:
        return f"{self.cluster.name}#{self.namespace}"

    @property
    def sk(self) -> str:
        return f"{iso_ms(self.time)}#{self.run_id}"

    def lines(self) -> list[dict[str, Any]]:
        """What the local file keeps: the run's record."""
        return [self.run_item()]

    def items(self) -> list[dict[str, Any]]:
        """What DynamoDB keeps: the run's record, and the seed's rollback item."""
        return [item for item in (self.run_item(), self.rollback_item()) if item is not None]

    def run_item(self) -> dict[str, Any]:
        """The run's record: one item in DynamoDB, and the same as one line of the local file."""
        r = self.result
        return {
            "pk": self.pk,
            "sk": self.sk,
            "event_type": RUN_EVENT,
            "event": FINISHED,
            "run_id": self.run_id,
            "time": iso_ms(self.time),
            "timestamp": int(self.time.timestamp()),
            "cluster": self.cluster.name,
            "cluster_name": self.cluster.name,
            "cluster_id": self.cluster.id,
            "namespace": self.namespace,
            "operation": r.operation.value,
            "outcome": self.outcome.value,
            "exit_code": r.exit_code,
            **_identity(self.who),
            **({"caller": self.who.caller} if self.who.caller else {}),
            **({"took_over": r.took_over} if r.took_over else {}),
            "total_scaled": len(r.scaled),
            "total_failed": len(r.failed),
            "total_skipped": len(r.plan.skips),
            "rollback_performed": r.rollback_performed,
            "rollback_success_count": r.rollback_success_count,
            "rollback_failed_count": r.rollback_failed_count,
            "duration_s": round(r.duration_s, 3),
            "nsscale_version": __version__,
            "steps": [
                *({"action": "scale", **s} for s in r.scaled_json()),
                *({"action": s["change"], **s} for s in r.suspended_json()),
                *({"action": "scale", **f} for f in r.failed_json()),
                *({"action": "skip", "status": "skipped", **s} for s in r.skipped_json()),
                *({"action": "rollback", **b} for b in r.rollback_json()),
            ],
            "errors": r.errors,
        }

    def rollback_item(self) -> dict[str, Any] | None:
        """The seed's `rollback_performed` item, name for name and type for type."""
        r = self.result
        if not r.rollback_performed:
            return None
        return {
            "pk": self.pk,
            "sk": f"{self.sk}#rollback",
            "run_id": self.run_id,
            "timestamp": int(self.time.timestamp()),
            "event_type": ROLLBACK_EVENT,
            "namespace": self.namespace,
            "cluster_name": self.cluster.name,
            "cluster_id": self.cluster.id,
            "original_operation": r.operation.seed_name,
            "resources_rolled_back": len(r.rollback),
            "rollback_success_count": r.rollback_success_count,
            "rollback_failed_count": r.rollback_failed_count,
            "details": json.dumps(r.rollback_json()),
        }


@dataclass(frozen=True)
class RunStart:
    """A run about to make its first change, written ahead of it: a run killed before its end
    (SIGKILL, a lost node) leaves this record, and `history` shows it `interrupted`."""

    run_id: str
    operation: Operation
    namespaces: tuple[str, ...]
    time: datetime  # when the run started, UTC: its finished record's key begins the same
    at: datetime  # when this record was made, just before the first change
    cluster: ClusterIdentity
    who: Who

    def lines(self) -> list[dict[str, Any]]:
        return self.items()

    def items(self) -> list[dict[str, Any]]:
        """One per namespace, each beside that namespace's finished record (found by `history`,
        a key of its own: `<time>#<run id>#started`)."""
        return [
            {
                "pk": f"{self.cluster.name}#{namespace}",
                "sk": f"{iso_ms(self.time)}#{self.run_id}#started",
                "event_type": START_EVENT,
                "event": STARTED,
                "run_id": self.run_id,
                "operation": self.operation.value,
                "namespaces": list(self.namespaces),
                "caller": self.who.caller,
                "at": iso_ms(self.at),
                "time": iso_ms(self.time),
                "timestamp": int(self.time.timestamp()),
                "cluster": self.cluster.name,
                "cluster_name": self.cluster.name,
                "cluster_id": self.cluster.id,
                "namespace": namespace,
                **_identity(self.who),
                "nsscale_version": __version__,
            }
            for namespace in self.namespaces
        ]


def _identity(who: Who) -> dict[str, Any]:
    return {
        "user": who.user,
        "host": who.host,
        "kubectl_user": who.kubectl_user,
        "kubectl_groups": list(who.kubectl_groups),
    }


class Record(Protocol):
    """What a sink writes: a run's start, or its end."""

    def lines(self) -> list[dict[str, Any]]:
        """The local file's lines."""
        ...

    def items(self) -> list[dict[str, Any]]:
        """DynamoDB's items."""
        ...


def of_cluster(record: Mapping[str, Any], cluster: ClusterIdentity) -> bool:
    """Whether a record kept under the cluster's name is that cluster's: it carries the
    cluster's id, or none (written before records had one, or when it could not be read). Two
    clusters of one name are told apart by their ids; when the id is unknown, by name alone."""
    recorded = record.get("cluster_id")
    return cluster.id is None or recorded is None or recorded == cluster.id


def runs(records: Sequence[Mapping[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The runs in records of one namespace, newest first, at most `limit`: each run's
    finished record; a run with only its start, that start as `interrupted`, or as `recovered`
    (`recovered_by`) once a later run (`recover`, or --force) took over its mark."""
    finished = [r for r in records if r.get("event_type") == RUN_EVENT]
    ended = {r.get("run_id") for r in finished}
    closed_by = {r["took_over"]: r["run_id"] for r in finished if r.get("took_over")}
    found: list[dict[str, Any]] = []
    for record in records:
        if record.get("event_type") == RUN_EVENT:
            found.append(dict(record))
        elif record.get("event_type") == START_EVENT and record.get("run_id") not in ended:
            closer = closed_by.get(record.get("run_id"))
            if closer is None:
                found.append(dict(record) | {"outcome": INTERRUPTED})
            else:
                found.append(dict(record) | {"outcome": RECOVERED, "recovered_by": closer})
    return found[:limit]


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    def write(self, record: Record) -> None:
        """Write the record; AuditError if it could not."""
        ...

    def check(self) -> None:
        """The record of a run could be written now; AuditError if not. Leaves no record."""
        ...

    def history(
        self, cluster: ClusterIdentity, namespace: str, after: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """The runs of the namespace on the cluster (see `of_cluster`), newest first (see
        `runs`); AuditError if they cannot be read."""
        ...


def record(entry: Record, sinks: Sequence[Sink]) -> dict[str, AuditError]:
    """Write the record to every sink; one sink failing never stops the next. The failures, by
    sink name."""
    return _each(sinks, lambda sink: sink.write(entry))


def check_sinks(sinks: Sequence[Sink]) -> dict[str, AuditError]:
    """Check that every sink could record a run now, before it changes anything; one sink
    failing never stops the next. The failures, by sink name."""
    return _each(sinks, lambda sink: sink.check())


def _each(sinks: Sequence[Sink], act: Callable[[Sink], None]) -> dict[str, AuditError]:
    failures: dict[str, AuditError] = {}
    for sink in sinks:
        try:
            act(sink)
        except AuditError as err:
            failures[sink.name] = err
        except Exception as exc:  # an audit never fails the run it records
            log.debug("audit sink failed", exc_info=True)
            message = f"{sink.name}: unexpected error: {exc!r}"
            failures[sink.name] = AuditError(message, sink=sink.name)
    return failures


def default_audit_file() -> Path:
    """$XDG_STATE_HOME/nsscale/audit.jsonl; XDG says: ~/.local/state when unset or relative."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "nsscale" / "audit.jsonl"


@dataclass(frozen=True)
class FileSink:
    """JSON Lines, appended and never rewritten: each event is on disk before the run reports."""

    path: Path

    @property
    def name(self) -> str:
        return f"audit file {self.path}"

    def write(self, record: Record) -> None:
        lines = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in record.lines())
        with self._appending() as fd:
            # Unbuffered (nothing to flush), one write per record: O_APPEND keeps the lines of
            # concurrent runs whole. fsync: on disk before we say the run is recorded (or act).
            view = memoryview(lines.encode())
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)

    def check(self) -> None:
        """Opens the file as write does (making it, empty, if missing) and appends nothing."""
        with self._appending():
            pass

    @contextmanager
    def _appending(self) -> Iterator[int]:
        """The file open for appending, made with its directory if missing; any OSError, opening
        or inside the block, as an AuditError."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                yield fd
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuditError(
                f"cannot append to the {self.name}: {exc.strerror or exc}",
                "choose a writable --audit-file",
                sink=self.name,
            ) from exc

    def history(
        self, cluster: ClusterIdentity, namespace: str, after: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        pk, low = f"{cluster.name}#{namespace}", iso_ms(after) if after else ""
        try:
            with self.path.open(encoding="utf-8") as lines:
                records = [
                    r
                    for r in _read_records(self.path, lines)
                    if r.get("pk") == pk and of_cluster(r, cluster)
                ]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AuditError(
                f"cannot read the {self.name}: {exc.strerror or exc}", sink=self.name
            ) from exc
        records = [r for r in records if str(r.get("sk", "")) >= low]
        records.sort(key=lambda r: str(r["sk"]), reverse=True)
        return runs(records, limit)


def _read_records(path: Path, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash: skip it, keep the rest
            log.warning("audit: %s line %d is not JSON; skipped", path, number)
            continue
        if isinstance(document, dict) and document.get("event_type") in (RUN_EVENT, START_EVENT):
            yield document


def make_dynamodb_client(timeout_s: float = AWS_TIMEOUT_S) -> DynamoDBClient:
    """The one DynamoDB client: boto3's credential chain, region and endpoint override
    (AWS_ENDPOINT_URL_DYNAMODB), standard retries, bounded timeouts. Imports boto3 here."""
    import boto3.session
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard"},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
    )
    with _aws_errors("DynamoDB", timeout_s):
        # A session of its own: boto3's default one caches credentials for the whole process.
        return boto3.session.Session().client("dynamodb", config=config)


_AWS_HINTS = {
    "ResourceNotFoundException": "create it with `nsscale audit create-table NAME`, "
    "or check the region (AWS_DEFAULT_REGION or the AWS profile's)",
    "AccessDeniedException": "allow dynamodb:PutItem and dynamodb:Query on the table",
    "UnrecognizedClientException": "check the AWS credentials",
    "NoCredentialsError": "configure AWS credentials (AWS_PROFILE, the environment, a role)",
    # botocore takes the region from AWS_DEFAULT_REGION or the profile, never AWS_REGION.
    "NoRegionError": "set AWS_DEFAULT_REGION or a region in the AWS profile",
    "EndpointConnectionError": "check the network and the region (or AWS_ENDPOINT_URL_DYNAMODB)",
    "ConnectTimeoutError": "check the network and the region (or AWS_ENDPOINT_URL_DYNAMODB)",
    "ReadTimeoutError": "check the network and the region (or AWS_ENDPOINT_URL_DYNAMODB)",
}


@contextmanager
def _aws_errors(sink: str, timeout_s: float) -> Iterator[None]:
    """botocore's two exception trees (neither subclasses the other), translated once, here."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        ReadTimeoutError,
    )

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        raise AuditError(f"{sink}: {exc}", _AWS_HINTS.get(code, ""), sink=sink, code=code) from exc
    except BotoCoreError as exc:
        code = type(exc).__name__
        message = str(exc)
        if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
            message = f"no answer within {timeout_s:g}s, on every try ({exc})"
        raise AuditError(
            f"{sink}: {message}", _AWS_HINTS.get(code, ""), sink=sink, code=code
        ) from exc


@dataclass
class DynamoSink:
    """One item per record (and the seed's item per rollback), never overwritten."""

    table: str
    timeout_s: float = AWS_TIMEOUT_S  # per try, to connect and to read
    make_client: Callable[[float], DynamoDBClient] = make_dynamodb_client
    _client: DynamoDBClient | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return f"DynamoDB table {self.table}"

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = self.make_client(self.timeout_s)
        return self._client

    def write(self, record: Record) -> None:
        for item in record.items():
            self._put(item)

    def check(self) -> None:
        probe = {"pk": {"S": CHECK_PK}, "sk": {"S": str(uuid.uuid4())}}
        with _aws_errors(self.name, self.timeout_s):
            try:
                # A fresh key never exists: DynamoDB refuses this put, writing nothing, only
                # after it has checked the credentials, the right to PutItem and the table.
                self.client.put_item(
                    TableName=self.table, Item=probe, ConditionExpression="attribute_exists(pk)"
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return
        # Only a store that ignores conditions gets here: writable, but it kept the probe.
        log.warning("audit: %s ignored a condition and kept the item %s", self.name, CHECK_PK)

    def _put(self, item: dict[str, Any]) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        typed = {k: serializer.serialize(v) for k, v in _to_dynamo(item).items()}
        with _aws_errors(self.name, self.timeout_s):
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=typed,
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except self.client.exceptions.ConditionalCheckFailedException as exc:
                # The key holds the run id: the item there is this run's own, written by an
                # attempt whose answer was lost (standard retries). Anything else is refused.
                old = exc.response.get("Item")
                if isinstance(old, Mapping) and _from_dynamo(old) == _from_dynamo(typed):
                    return
                raise AuditError(
                    f"{self.name}: an item {item['pk']} {item['sk']} exists: not overwritten",
                    sink=self.name,
                    code="ConditionalCheckFailedException",
                ) from exc

    def history(
        self, cluster: ClusterIdentity, namespace: str, after: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        key = "pk = :pk" if after is None else "pk = :pk AND sk >= :after"
        values = {":pk": f"{cluster.name}#{namespace}", ":run": RUN_EVENT, ":start": START_EVENT}
        if after is not None:
            values[":after"] = iso_ms(after)
        request: QueryInputTypeDef = {
            "TableName": self.table,
            "KeyConditionExpression": key,
            # the runs' records and starts, not the rollback items of the same runs
            "FilterExpression": "event_type IN (:run, :start)",
            "ExpressionAttributeValues": {k: {"S": v} for k, v in values.items()},
            "ScanIndexForward": False,  # newest first: the sort key starts with the time
        }
        records: list[dict[str, Any]] = []
        with _aws_errors(self.name, self.timeout_s):
            # The filter applies after each page's read. One run more than asked for: then the
            # last one asked for is whole (a run's items are side by side, its start first).
            while len({r["run_id"] for r in records}) <= limit:
                page = self.client.query(**request)
                found = (_from_dynamo(item) for item in page["Items"])
                records += [r for r in found if of_cluster(r, cluster)]
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return runs(records, limit)

    def create_table(self) -> bool:
        """Make the table (pk/sk strings, on-demand billing); False if it already exists."""
        with _aws_errors(self.name, self.timeout_s):
            try:
                self.client.create_table(
                    TableName=self.table,
                    KeySchema=[
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    AttributeDefinitions=[
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    BillingMode="PAY_PER_REQUEST",
                )
            except self.client.exceptions.ResourceInUseException:
                return False
            waiter = self.client.get_waiter("table_exists")
            waiter.wait(TableName=self.table, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        return True


def make_sinks(table: str | None, path: Path | None) -> tuple[FileSink, DynamoSink | None]:
    """The local file (always), and DynamoDB when a table is named."""
    return FileSink(path or default_audit_file()), DynamoSink(table) if table else None


def _to_dynamo(value: Any) -> Any:
    """DynamoDB numbers are Decimals: boto3 refuses floats."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as plain JSON values, the same as a line of the local file."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
