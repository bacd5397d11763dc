"""What an answer may say of the server: nothing. A run's errors come from kubectl, which names
the API server's address, the kubeconfig's path, the server's own account; the in-cluster mark
names the host and pid of the run holding it. Those go to the server's log; an answer gets the
error with each of them replaced by a word saying what was there.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from functools import cache
from typing import Any

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+"), "<address>"),  # a URL
    (re.compile(r"\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\](?::\d+)?"), "<address>"),  # [IPv6]:port
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<address>"),  # IPv4:port
    (re.compile(r"\blocalhost(?::\d+)?\b"), "<address>"),
    (re.compile(r"(?<![\w/.~-])~?/(?:[^\s/\"',;:()\[\]]+/)+[^\s/\"',;:()\[\]]*"), "<path>"),
    (re.compile(r"\bpid \d+\b"), "pid <hidden>"),
    # kubectl quotes the identity a request was served as: the server's own account
    (re.compile(r'\b([Uu]ser) "[^"]*"'), r'\1 "<the server>"'),
)


@cache
def _host_names() -> re.Pattern[str]:
    names = {socket.gethostname(), socket.getfqdn(), os.uname().nodename}
    names -= {"localhost", "localhost.localdomain"}  # an address: said as one
    longest_first = sorted((n for n in names if len(n) > 1), key=len, reverse=True)
    alternatives = "|".join(map(re.escape, longest_first)) or "(?!)"
    return re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w-])")


def redact(text: str) -> str:
    """The text without the server's addresses, paths, host names, pids or account."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _host_names().sub("<host>", text)


def redacted(value: Any, scrub: Callable[[str], str] = redact) -> Any:
    """A JSON value with every string in it redacted (keys are nsscale's own)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: redacted(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v, scrub) for v in value]
    return value
