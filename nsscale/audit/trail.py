"""The audit trail: one record per run of down/up/scale, in a local file and in DynamoDB.

A run's record is built from its JSON document (RunResult.to_dict()) plus who ran it and where.
Every record is keyed so that no event can overwrite another, even two in the same millisecond
from two hosts: partition key ``pk = "<cluster>#<namespace>"``, sort key
``sk = "<UTC ISO-8601 ms>#<run id>"``, written only if that key does not exist. A rollback also
writes the seed's ``rollback_performed`` item (same pk, sk + ``#rollback``), so that
dashboards built on it keep working.

Sinks: FileSink appends one JSON line per run (never rewrites) and is always written, so that a
run's record survives a DynamoDB outage; DynamoSink when a table is configured. Both answer
``history``, and ``check`` that a run's record could be written now, before the run changes
anything. boto3 is imported only when a DynamoDB client is made: start-up stays fast.
"""

from __future__ import annotations

import enum
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
from nsscale.engine.plan import Operation
from nsscale.engine.result import RunResult
from nsscale.errors import AuditError, ExitCode
from nsscale.kube.review import Review, os_user

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef

log = logging.getLogger("nsscale")

RUN_EVENT = "scale_run"
ROLLBACK_EVENT = "rollback_performed"  # the seed's event type (docs/contract.md)
CHECK_PK = "nsscale#check"  # the partition key of DynamoSink.check's probe, never written
AWS_TIMEOUT_S = 5.0  # connect and read, per attempt (botocore's standard mode tries 3 times)


class RunOutcome(enum.StrEnum):
    SUCCESS = "success"
    ROLLED_BACK = "rolled_back"  # failed, and every change was undone
    ROLLBACK_FAILED = "rollback_failed"  # failed, and some undo failed: left partly changed
    PARTIAL = "partial"  # failed without a rollback (--no-rollback): a person must look
    FAILED = "failed"  # failed before it changed anything


def run_outcome(result: RunResult) -> RunOutcome:
    o = result.outcome
    if o.success:
        return RunOutcome.SUCCESS
    if o.rollback is not None:
        ok = all(r.ok for r in o.rollback)
        return RunOutcome.ROLLED_BACK if ok else RunOutcome.ROLLBACK_FAILED
    if result.exit_code == ExitCode.PARTIAL:
        return RunOutcome.PARTIAL
    return RunOutcome.FAILED


@dataclass(frozen=True)
class Who:
    user: str  # the OS user
    host: str
    kubectl_user: str = ""  # what `kubectl auth whoami` says; empty where the server would not
    kubectl_groups: tuple[str, ...] = ()
    caller: str = ""  # who asked for the run, when not the OS user: an `nsscale serve` request


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
    """One run of down, up or scale, as the audit trail keeps it."""

    run_id: str
    time: datetime  # when the run started, UTC
    cluster: str
    who: Who
    outcome: RunOutcome
    document: Mapping[str, Any]  # the run's JSON document (RunResult.to_dict())

    @classmethod
    def from_result(
        cls, result: RunResult, who: Who, cluster: str, started_at: datetime
    ) -> AuditEvent:
        return cls(result.run_id, started_at, cluster, who, run_outcome(result), result.to_dict())

    @property
    def namespace(self) -> str:
        return str(self.document["namespace"])

    @property
    def pk(self) -> str:
        return f"{self.cluster}#{self.namespace}"

    @property
    def sk(self) -> str:
        return f"{iso_ms(self.time)}#{self.run_id}"

    def run_item(self) -> dict[str, Any]:
        """The run's record: one item in DynamoDB, and the same as one line of the local file."""
        doc = self.document
        return {
            "pk": self.pk,
            "sk": self.sk,
            "event_type": RUN_EVENT,
            "run_id": self.run_id,
            "time": iso_ms(self.time),
            "timestamp": int(self.time.timestamp()),
            "cluster": self.cluster,
            "namespace": self.namespace,
            "operation": doc["operation"],
            "outcome": self.outcome.value,
            "exit_code": doc["exit_code"],
            "user": self.who.user,
            "host": self.who.host,
            "kubectl_user": self.who.kubectl_user,
            "kubectl_groups": list(self.who.kubectl_groups),
            **({"caller": self.who.caller} if self.who.caller else {}),
            "total_scaled": doc["total_scaled"],
            "total_failed": doc["total_failed"],
            "total_skipped": len(doc["skipped_resources"]),
            "rollback_performed": doc["rollback_performed"],
            "rollback_success_count": doc["rollback_success_count"],
            "rollback_failed_count": doc["rollback_failed_count"],
            "duration_s": doc["duration_s"],
            "nsscale_version": __version__,
            "steps": [
                *({"action": "scale", **s} for s in doc["scaled_resources"]),
                *({"action": s["change"], **s} for s in doc["suspended_resources"]),
                *({"action": "scale", **f} for f in doc["failed_resources"]),
                *({"action": "skip", "status": "skipped", **s} for s in doc["skipped_resources"]),
                *({"action": "rollback", **r} for r in doc["rollback_results"]),
            ],
            "errors": doc["errors"],
        }

    def rollback_item(self) -> dict[str, Any] | None:
        """The seed's `rollback_performed` item, name for name and type for type."""
        doc = self.document
        if not doc["rollback_performed"]:
            return None
        return {
            "pk": self.pk,
            "sk": f"{self.sk}#rollback",
            "run_id": self.run_id,
            "timestamp": int(self.time.timestamp()),
            "event_type": ROLLBACK_EVENT,
            "namespace": self.namespace,
            "cluster_name": self.cluster,
            "original_operation": Operation(doc["operation"]).seed_name,
            "resources_rolled_back": len(doc["rollback_results"]),
            "rollback_success_count": doc["rollback_success_count"],
            "rollback_failed_count": doc["rollback_failed_count"],
            "details": json.dumps(doc["rollback_results"]),
        }


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    def write(self, event: AuditEvent) -> None:
        """Record the event; AuditError if it could not."""
        ...

    def check(self) -> None:
        """The record of a run could be written now; AuditError if not. Leaves no record."""
        ...

    def history(
        self, cluster: str, namespace: str, after: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """Run records of the namespace, newest first; AuditError if they cannot be read."""
        ...


def record(event: AuditEvent, sinks: Sequence[Sink]) -> dict[str, AuditError]:
    """Write the event to every sink; one sink failing never stops the next. The failures, by
    sink name."""
    return _each(sinks, lambda sink: sink.write(event))


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

    def write(self, event: AuditEvent) -> None:
        line = (json.dumps(event.run_item(), separators=(",", ":")) + "\n").encode()
        with self._appending() as fd:
            # Unbuffered (nothing to flush), one write per line: O_APPEND keeps the lines of
            # concurrent runs whole. fsync: on disk before we say the run is recorded.
            view = memoryview(line)
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
        self, cluster: str, namespace: str, after: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        pk, low = f"{cluster}#{namespace}", iso_ms(after) if after else ""
        try:
            with self.path.open(encoding="utf-8") as lines:
                records = [r for r in _read_records(self.path, lines) if r.get("pk") == pk]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AuditError(
                f"cannot read the {self.name}: {exc.strerror or exc}", sink=self.name
            ) from exc
        records = [r for r in records if str(r.get("sk", "")) >= low]
        records.sort(key=lambda r: str(r["sk"]), reverse=True)
        return records[:limit]


def _read_records(path: Path, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash: skip it, keep the rest
            log.warning("audit: %s line %d is not JSON; skipped", path, number)
            continue
        if isinstance(document, dict) and document.get("event_type") == RUN_EVENT:
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
    """One item per run (and the seed's item per rollback), never overwritten."""

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

    def write(self, event: AuditEvent) -> None:
        for item in (event.run_item(), event.rollback_item()):
            if item is not None:
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
        self, cluster: str, namespace: str, after: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        key = "pk = :pk" if after is None else "pk = :pk AND sk >= :after"
        values = {":pk": f"{cluster}#{namespace}", ":run": RUN_EVENT}
        if after is not None:
            values[":after"] = iso_ms(after)
        request: QueryInputTypeDef = {
            "TableName": self.table,
            "KeyConditionExpression": key,
            "FilterExpression": "event_type = :run",  # not the rollback items of the same runs
            "ExpressionAttributeValues": {k: {"S": v} for k, v in values.items()},
            "ScanIndexForward": False,  # newest first: the sort key starts with the time
        }
        records: list[dict[str, Any]] = []
        with _aws_errors(self.name, self.timeout_s):
            while len(records) < limit:  # the filter applies after each page's read
                page = self.client.query(**request)
                records += [_from_dynamo(item) for item in page["Items"]]
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return records[:limit]

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
