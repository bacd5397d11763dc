"""What `nsscale serve` was asked for on the command line, checked (light to import: no Flask)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from nsscale.defaults import (
    DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_REVIEWS,
    DEFAULT_MAX_RUNS,
)
from nsscale.engine.options import AuditOptions, RunOptions
from nsscale.errors import UsageError
from nsscale.kubectl import KubectlConfig
from nsscale.schedule.decide import Policy
from nsscale.schedule.rules import Rules


@dataclass(frozen=True)
class LoopOptions:
    """--reconcile-every: how often, and what each round reconciles how (reconcile's options)."""

    every: timedelta
    named: tuple[str, ...] = ()
    namespace_selector: str | None = None
    run: RunOptions = field(default_factory=RunOptions)
    rules: Rules = field(default_factory=Rules)


@dataclass(frozen=True)
class ServeOptions:
    listen: str = DEFAULT_LISTEN
    token_file: Path | None = None
    kubernetes_auth: bool = False
    max_runs: int = DEFAULT_MAX_RUNS
    token_audiences: tuple[str, ...] = ()  # --token-audience: TokenReview's spec.audiences
    max_reviews: int = DEFAULT_MAX_REVIEWS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    scale_resources: tuple[str, ...] = ()  # --scale-resource: custom resources moved too
    kubectl: KubectlConfig = field(default_factory=KubectlConfig)
    audit: AuditOptions = field(default_factory=AuditOptions)
    policy: Policy = field(default_factory=Policy)  # --uptime/--downtime/--timezone
    reconcile: LoopOptions | None = None  # --reconcile-every: the loop, when asked for

    def check_auth_mode(self) -> None:
        """Exactly one way to tell who may do what: never a server anybody may use."""
        if self.token_file is None and not self.kubernetes_auth:
            raise UsageError(
                "nsscale serve needs an auth mode: --token-file FILE or --kubernetes-auth",
                "it never serves without one",
            )
        if self.token_file is not None and self.kubernetes_auth:
            raise UsageError(
                "--token-file and --kubernetes-auth are two auth modes: choose one",
                "--token-file for static tokens, --kubernetes-auth for the cluster's RBAC",
            )
        if self.token_audiences and not self.kubernetes_auth:
            raise UsageError(
                "--token-audience is for --kubernetes-auth: a TokenReview's audiences",
                "drop it, or use --kubernetes-auth",
            )


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: not known to be loopback
            return False

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(text: str) -> Address:
    """HOST:PORT (an IPv6 host in brackets: [::1]:8080); port 0 is any free one."""
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(
            f"--listen {text!r} is not HOST:PORT",
            "for example 127.0.0.1:8080, 0.0.0.0:8080 (every interface) or [::1]:8080",
        )
    return Address(host, int(port))
