"""Who is asking, and whether they may act on a namespace: the caller, the bearer token of a
request, and the two authorities (`--token-file` here, `--kubernetes-auth` in kubeauth.py).

An authority answers two questions, in this order, each with a refusal when the answer is no:
`authenticate` (the token: who is it? 401) and `authorize` (may they `verb` the deployments of
the namespace? 403). A token never leaves this module but as a digest: not in a log line, an
answer, an exception or a cache key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from nsscale.serve.answers import Forbidden, Unauthenticated
from nsscale.serve.tokens import TokenEntry, TokenFile


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, as an authority found it."""

    name: str  # how the access log and the audit name them: a Kubernetes user, token:<holder>
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # TokenReview's user.extra
    entry: TokenEntry | None = None  # --token-file: the line that let them in


class Authority(Protocol):
    def describe(self) -> str:
        """The auth mode, for the start-up line."""
        ...

    def authenticate(self, token: str) -> Caller:
        """Who `token` is; Unauthenticated when nobody, Unavailable when it cannot be told."""
        ...

    def authorize(self, caller: Caller, verb: str, namespace: str) -> None:
        """Forbidden unless the caller may `verb` ("get", "update") the deployments of the
        namespace; Unavailable when it cannot be told."""
        ...


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; Unauthenticated otherwise."""
    if not header:
        raise Unauthenticated("no bearer token: send the header Authorization: Bearer <token>")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
        raise Unauthenticated("the Authorization header is not Bearer <token>")
    return token


class TokenFileAuthority:
    """`--token-file`: a token lets its holder act on the namespaces its line's globs match."""

    def __init__(self, tokens: TokenFile) -> None:
        self.tokens = tokens

    def describe(self) -> str:
        return f"token file {self.tokens.path}"

    def authenticate(self, token: str) -> Caller:
        entry = self.tokens.find(token)
        if entry is None:
            raise Unauthenticated("unknown bearer token")
        return Caller(f"token:{entry.holder}", entry=entry)

    def authorize(self, caller: Caller, verb: str, namespace: str) -> None:
        if caller.entry is None or not caller.entry.may(namespace):
            raise Forbidden(f"{caller.name} may not act on namespace {namespace}")
