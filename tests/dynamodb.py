"""A real DynamoDB-protocol server for tests: moto's server mode, over HTTP on 127.0.0.1.

nsscale finds it the way it finds AWS: boto3's endpoint override ``AWS_ENDPOINT_URL_DYNAMODB``,
with fake credentials and a region in the environment (set with monkeypatch, so a subprocess
started with ``os.environ`` inherits them). The server is started once per session (about 0.4 s);
each test gets a fresh table, made by ``nsscale audit create-table`` itself.

Use: ``from tests.dynamodb import Dynamo, aws_env, dynamodb, moto_endpoint``.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3.session
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from nsscale.audit.trail import START_EVENT
from nsscale.cli import app

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["Dynamo", "aws_env", "closed_port_url", "dynamodb", "moto_endpoint"]


@dataclass(frozen=True)
class Dynamo:
    """The test's own view of the table: boto3, the same server, no nsscale code."""

    endpoint: str
    table: str
    client: DynamoDBClient

    def raw_items(self, starts: bool = False) -> list[dict[str, AttributeValueTypeDef]]:
        """Every item as DynamoDB holds it, with its attribute types (S, N, BOOL, L, M); the
        runs' start records only with `starts` (most tests look at what a run ends with)."""
        items: list[dict[str, AttributeValueTypeDef]] = []
        page = self.client.scan(TableName=self.table, ConsistentRead=True)
        items += page["Items"]
        while "LastEvaluatedKey" in page:
            start = page["LastEvaluatedKey"]
            page = self.client.scan(TableName=self.table, ExclusiveStartKey=start)
            items += page["Items"]
        if not starts:
            items = [i for i in items if i.get("event_type", {}).get("S") != START_EVENT]
        return sorted(items, key=lambda i: (i["pk"].get("S", ""), i["sk"].get("S", "")))

    def items(self, starts: bool = False) -> list[dict[str, Any]]:
        """Every item as Python values (numbers as Decimal), sorted by key; the runs' start
        records only with `starts`."""
        deserializer = TypeDeserializer()
        return [
            {k: deserializer.deserialize(v) for k, v in item.items()}
            for item in self.raw_items(starts)
        ]


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Fake credentials, a region, the endpoint override; ~/.aws and the real AWS left alone."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return moto_endpoint


@pytest.fixture
def dynamodb(aws_env: str) -> Iterator[Dynamo]:
    table = f"nsscale-audit-{uuid.uuid4().hex[:8]}"
    made = CliRunner().invoke(app, ["audit", "create-table", table])
    assert made.exit_code == 0, made.output
    client = boto3.session.Session().client("dynamodb")
    yield Dynamo(aws_env, table, client)
    client.delete_table(TableName=table)
