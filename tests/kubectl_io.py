"""What the real kubectl answers, as the API server's tests read it."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"kubectl exited {proc.returncode}: {proc.stderr}"
    return proc


def failed(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """kubectl failed: return its stderr lines."""
    assert proc.returncode == 1, f"kubectl exited {proc.returncode}: {proc.stdout} {proc.stderr}"
    return proc.stderr.splitlines()


def json_documents(text: str) -> list[Any]:
    """Concatenated JSON documents, as `kubectl create|replace -o json` prints several
    objects."""
    decoder, i = json.JSONDecoder(), 0
    docs: list[Any] = []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return docs
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)


def as_list(*items: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})
