"""`nsscale audit create-table`: the DynamoDB table of the audit trail."""

from __future__ import annotations

from rich.text import Text

from nsscale.audit.trail import DynamoSink
from nsscale.commands.options import TABLE_NAME, Parsed
from nsscale.commands.output import show


def create_table(parsed: Parsed) -> None:
    name = parsed[TABLE_NAME]
    created = DynamoSink(name).create_table()
    done = "created" if created else "already exists; nothing to do"
    show(Text(f"DynamoDB table {name} {done}."))
