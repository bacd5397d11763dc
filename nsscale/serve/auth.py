"""Who is asking, and whether they may do what a request needs: the caller, the bearer token of
a request, the accesses a request needs, and the two authorities (`--token-file` here,
`--kubernetes-auth` in kubeauth.py).

An authority answers three questions, in this order, each with a refusal when the answer is no:
`authenticate` (the token: who is it? 401), `admit` (may they act on the namespace at all? 403,
before anything is read) and `authorize` (may they make each access the request needs: a run's
every write, a status's every read? 403 naming the first denied). A token never leaves this
module but as a digest: not in a log line, an answer, an exception or a cache key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nsscale.kube.objects import Kind
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


@dataclass(frozen=True, order=True)
class Access:
    """One thing a request does, as RBAC names it: `update apps/statefulsets` in a namespace."""

    verb: str
    group: str  # "" for the core group
    resource: str  # the plural
    namespace: str
    name: str = ""  # one object's (a Namespace seen: `get namespaces` named), "" for any

    @classmethod
    def of(cls, verb: str, kind: Kind, namespace: str) -> Access:
        """From the kind's own data (objects.py): a kind added there is asked about here."""
        group = kind.api_version.rpartition("/")[0]
        return cls(verb, group, kind.plural, namespace)

    @classmethod
    def named(cls, verb: str, resource: str, namespace: str) -> Access:
        """From RBAC's "plural.group" (deployments.apps)."""
        plural, _, group = resource.partition(".")
        return cls(verb, group, plural, namespace)

    def __str__(self) -> str:
        what = f"{self.group}/{self.resource}" if self.group else self.resource
        return f"{self.verb} {what} in namespace {self.namespace}"


class Authority(Protocol):
    def describe(self) -> str:
        """The auth mode, for the start-up line."""
        ...

    def authenticate(self, token: str) -> Caller:
        """Who `token` is; Unauthenticated when nobody, Unavailable when it cannot be told."""
        ...

    def admit(self, caller: Caller, namespace: str) -> None:
        """Forbidden unless the caller may act on the namespace at all."""
        ...

    def authorize(self, caller: Caller, accesses: Sequence[Access]) -> None:
        """Forbidden, naming the first access denied, unless the caller may make every one;
        Unavailable when it cannot be told."""
        ...

    def visible(self, caller: Caller, namespaces: Sequence[str]) -> list[str]:
        """Those of `namespaces` the caller may see (GET /api/namespaces), in their order;
        Unavailable when it cannot be told."""
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

    def admit(self, caller: Caller, namespace: str) -> None:
        if caller.entry is None or not caller.entry.may(namespace):
            raise Forbidden(f"{caller.name} may not act on namespace {namespace}")

    def authorize(self, caller: Caller, accesses: Sequence[Access]) -> None:
        """A token's line names namespaces, not kinds: each access's namespace (a GitOps
        owner's own included) must be one of them."""
        for access in accesses:
            self.admit(caller, access.namespace)

    def visible(self, caller: Caller, namespaces: Sequence[str]) -> list[str]:
        """The namespaces the token's globs match."""
        entry = caller.entry
        return [ns for ns in namespaces if entry is not None and entry.may(ns)]
