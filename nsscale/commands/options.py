"""The command line's parameters, each said once (its name, its type, its typer.Option, its
default), and the groups the commands share. Light to import: typer and the defaults only
(`nsscale --version` loads it)."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar, get_args

import typer

from nsscale.defaults import (
    DEFAULT_ARGOCD_NAMESPACE,
    DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_REVIEWS,
    DEFAULT_MAX_RUNS,
    DEFAULT_PARALLEL,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    DEFAULT_TIMEZONE,
    DEFAULT_WAIT_TIMEOUT,
    KUBECTL_ENV,
    TABLE_ENV,
)
from nsscale.durations import format_duration, parse_duration

PLUGIN = "kubectl-nsscale"  # the name kubectl runs `kubectl nsscale` by
COMPLETE_VAR = "_NSSCALE_COMPLETE"  # set by the completion scripts: a shell asks for completions


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"


class Shell(enum.StrEnum):  # those `nsscale completion` has a script for
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


T = TypeVar("T")
REQUIRED: Any = inspect.Parameter.empty  # the default of a parameter that has none


class Param(Generic[T]):  # not a frozen dataclass, which costs 1 ms more at every start
    """One parameter of the command line, `Param[TYPE](name, typer.Option(...), default)`: the
    name its value goes by, its type (what mypy checks each `parsed[PARAM]` against, and what
    Click converts to), its typer.Option (or typer.Argument), and its default (none: the
    parameter is required); `typed`: that default as a person types it, for Click to parse and
    --help to show (`5m`), when it is not plain text."""

    # __orig_class__: where Param[TYPE](...) keeps TYPE
    __slots__ = ("__orig_class__", "default", "info", "name", "typed")

    def __init__(
        self, name: str, info: Any, default: T = REQUIRED, typed: str | None = None
    ) -> None:
        self.name = name
        self.info = info
        self.default = default
        self.typed = typed

    @property
    def annotation(self) -> Any:
        """TYPE annotated with its typer.Option, as Typer reads a parameter."""
        if not hasattr(self, "__orig_class__"):
            raise TypeError(f"say the type of {self.name}: Param[TYPE]({self.name!r}, ...)")
        (of,) = get_args(self.__orig_class__)
        return Annotated[of, self.info]

    def parameter(self) -> inspect.Parameter:
        # keyword-only: any order, a required option after optional ones included
        kind = inspect.Parameter.KEYWORD_ONLY
        default = self.default if self.typed is None else self.typed
        return inspect.Parameter(self.name, kind, annotation=self.annotation, default=default)


class Parsed:  # a plain class, for the same reason
    """What Click parsed for one command, by parameter. A parameter the command does not take
    reads as its default: `history` has no --timeout, and its Common gets the default one."""

    __slots__ = ("values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def __getitem__(self, param: Param[T]) -> T:
        if param.name in self.values:
            value: T = self.values[param.name]  # Click made it of the parameter's type
            return value
        if param.default is REQUIRED:
            raise KeyError(f"{param.name} is required and this command does not take it")
        return param.default


def _duration(examples: str) -> Callable[[str], timedelta]:
    """The parser of a duration option, in kubectl's forms: a number and s, m or h, or a bare
    number of seconds (`30`, `90s`, `10m`, `1h`); its error gives `examples`."""

    def parse(text: str) -> timedelta:
        try:
            return parse_duration(text, "smh", "a duration", examples)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    return parse


def _seconds(low: float, high: float, examples: str) -> Callable[[str], float]:
    """The parser of a duration option whose value is seconds, from `low` to `high`."""
    duration = _duration(examples)

    def parse(text: str) -> float:
        seconds = duration(text).total_seconds()
        if not low <= seconds <= high:
            raise typer.BadParameter(f"{text!r} is not from {low:g} to {high:g} seconds.")
        return seconds

    return parse


def _interval(text: str) -> timedelta:
    """--reconcile-every: a duration of at least a second."""
    every = _duration("30s, 5m, 1h")(text)
    if every < timedelta(seconds=1):
        raise typer.BadParameter(f"{text!r} is under a second: reconcile at most once a second.")
    return every


def complete_namespaces(ctx: typer.Context, incomplete: str) -> list[str]:
    """The namespaces kubectl lists that start with `incomplete` (at most a second)."""
    from nsscale.commands.completers import namespaces

    return namespaces(ctx.params, incomplete)


def complete_contexts(ctx: typer.Context, incomplete: str) -> list[str]:
    """The kubeconfig's contexts that start with `incomplete`."""
    from nsscale.commands.completers import contexts

    return contexts(ctx.params, incomplete)


def _age(text: str) -> timedelta:
    from nsscale.audit.trail import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# recover, history: one, named or given with -n
NAMESPACE = Param[str | None](
    "namespace",
    typer.Argument(
        metavar="NAMESPACE",
        help="The namespace (an RFC 1123 label), or -n NAMESPACE.",
        show_default=False,
        autocompletion=complete_namespaces,
    ),
    None,
)
# down, up, scale, status, reconcile: one or more, or --namespace-selector
NAMESPACES = Param[list[str] | None](
    "namespaces",
    typer.Argument(
        metavar="NAMESPACE...",
        help="The namespaces (RFC 1123 labels), also given with -n; with --namespace-selector, "
        "none or more.",
        show_default=False,
        autocompletion=complete_namespaces,
    ),
    None,
)
# kubectl's habit: the same as naming the namespace, and both may be mixed
NAMESPACE_FLAG = Param[list[str] | None](
    "namespace_flag",
    typer.Option(
        "--namespace",
        "-n",
        metavar="NAMESPACE",
        help="A namespace, as kubectl takes it (repeatable): the same as naming it.",
        show_default=False,
        autocompletion=complete_namespaces,
    ),
    None,
)
NAMESPACE_SELECTOR = Param[str | None](
    "namespace_selector",
    typer.Option(
        "--namespace-selector",
        help="Also every namespace with these labels (kubectl's label selector: team=web); "
        "protected ones are skipped with a warning.",
    ),
    None,
)
ALL_OR_NOTHING = Param[bool](
    "all_or_nothing",
    typer.Option(
        "--all-or-nothing",
        help="Several namespaces as one transaction: a failure in any undoes every "
        "namespace's changes (default: each namespace on its own).",
    ),
    False,
)

# ---------------------------------------------------------------- the run: down, up, scale

DRY_RUN = Param[bool](
    "dry_run",
    typer.Option("--dry-run", help="Show what would change; make no change at all."),
    False,
)
SERVER_DRY_RUN = Param[bool](
    "server_dry_run",
    typer.Option(
        "--server-dry-run",
        help="Send every planned write with kubectl's --dry-run=server: RBAC and admission "
        "are checked, nothing is changed.",
    ),
    False,
)
NO_ROLLBACK = Param[bool](
    "no_rollback",
    typer.Option("--no-rollback", help="Best effort: go on past failures and undo nothing."),
    False,
)
FORCE = Param[bool](
    "force",
    typer.Option(
        "--force",
        help="Take over the in-cluster mark of an interrupted run (for up: also restore "
        "workloads changed since nsscale scaled them).",
    ),
    False,
)
BATCH_SIZE = Param[int | None](
    "batch_size",
    typer.Option(
        "--batch-size",
        min=1,
        help="Workloads written per kubectl call (default: spread over --parallel, 25 to 250).",
    ),
    None,
)
PARALLEL = Param[int](
    "parallel",
    typer.Option("--parallel", min=1, help="kubectl write calls in flight at once."),
    DEFAULT_PARALLEL,
)
RETRIES = Param[int](
    "retries",
    typer.Option("--retries", min=0, help="Retries of a transiently failed kubectl call."),
    DEFAULT_RETRIES,
)
REQUIRE_LOCK = Param[bool](
    "require_lock",
    typer.Option(
        "--require-lock",
        help="Fail when the in-cluster mark (a Lease named nsscale) cannot be written.",
    ),
    False,
)
# down's
SUSPEND_CRONJOBS = Param[bool](
    "suspend_cronjobs",
    typer.Option(
        "--suspend-cronjobs",
        help="Also suspend every selected CronJob (spec.suspend: true), in the same "
        "transaction; `up` resumes those nsscale suspended.",
    ),
    False,
)
# down's and scale's
SUSPEND_GITOPS = Param[bool](
    "suspend_gitops",
    typer.Option(
        "--suspend-gitops",
        help="Also suspend the Argo CD Application or Flux Kustomization/HelmRelease that "
        "manages a workload being changed, in the same transaction; `up` resumes it once "
        "no namespace it was suspended for is still down.",
    ),
    False,
)
ARGOCD_NAMESPACE = Param[str](
    "argocd_namespace",
    typer.Option(
        "--argocd-namespace",
        metavar="NAMESPACE",
        help="Where Argo CD keeps its Applications (for --suspend-gitops, and up).",
        autocompletion=complete_namespaces,
    ),
    DEFAULT_ARGOCD_NAMESPACE,
)
EVENTS = Param[bool](
    "events",
    typer.Option(
        "--events",
        help="Record a Kubernetes Event on each workload changed (ScaledDown, ScaledUp, "
        "RolledBack; the run id in its message), shown by kubectl describe.",
    ),
    False,
)
HOLD = Param[timedelta | None](
    "hold",
    typer.Option(
        "--hold",
        parser=_duration("90m, 4h"),
        metavar="DURATION",
        help="After a successful run, keep `nsscale reconcile` off these namespaces this "
        "long (the Namespace annotation nsscale/pause-until): 90m, 4h, 3600 (seconds).",
        show_default=False,
    ),
    None,
)
WAIT = Param[bool](
    "wait",
    typer.Option(
        "--wait",
        help="After the writes, wait until every changed workload is ready at its target "
        "(exit 4 if not within --wait-timeout; nothing is undone).",
    ),
    False,
)
WAIT_TIMEOUT = Param[timedelta](
    "wait_timeout",
    typer.Option(
        "--wait-timeout",
        parser=_duration("90s, 10m, 1h"),
        metavar="DURATION",
        help="How long --wait waits: 90 (seconds), 90s, 10m, 1h.",
    ),
    DEFAULT_WAIT_TIMEOUT,
    typed=format_duration(DEFAULT_WAIT_TIMEOUT),
)
# scale's, required
REPLICAS = Param[int](
    "replicas",
    typer.Option(
        "--replicas",
        min=0,
        max=2147483647,  # the API's int32 limit
        help="The replica count to set.",
        show_default=False,
    ),
)
SELECTOR = Param[str | None](
    "selector",
    typer.Option(
        "--selector",
        "-l",
        help="Only the workloads with these labels (kubectl's label selector: "
        "app=web,tier!=db); the others are not touched and not listed.",
    ),
    None,
)
EXCLUDE = Param[list[str] | None](
    "exclude",
    typer.Option(
        "--exclude",
        metavar="NAME|KIND/NAME",
        help="Leave this workload alone (repeatable): NAME in every kind, or KIND/NAME, KIND "
        "as kubectl names it (deploy/web, sts/db, deployment.apps/web).",
        show_default=False,
    ),
    None,
)
SCALE_RESOURCE = Param[list[str] | None](
    "scale_resource",
    typer.Option(
        "--scale-resource",
        metavar="PLURAL.GROUP",
        help="Also move this custom resource (repeatable), as a Deployment: its CRD's scale "
        "subresource says where its replica count is (e.g. widgets.example.com).",
        show_default=False,
    ),
    None,
)
# recover's --force says what it does there
RECOVER_FORCE = Param[bool](
    "force",
    typer.Option("--force", help="Recover even if the mark is not stale yet."),
    False,
)

# ------------------------------------------------------------------------------- reconcile

UPTIME = Param[str | None](
    "uptime",
    typer.Option(
        "--uptime",
        metavar="SPEC",
        help="When the namespaces should be up (else down), unless a Namespace has its own "
        "nsscale/uptime or nsscale/downtime: always, never, or windows such as "
        "'Mon-Fri 08:00-20:00 Europe/Madrid'.",
    ),
    None,
)
DOWNTIME = Param[str | None](
    "downtime",
    typer.Option(
        "--downtime",
        metavar="SPEC",
        help="When the namespaces should be down (else up); the same grammar as --uptime.",
    ),
    None,
)
TIMEZONE = Param[str](
    "timezone",
    typer.Option("--timezone", help="The time zone of a window that names none (an IANA name)."),
    DEFAULT_TIMEZONE,
)
GRACE_PERIOD = Param[timedelta | None](
    "grace_period",
    typer.Option(
        "--grace-period",
        parser=_duration("15m, 1h, 0"),
        metavar="DURATION",
        help="A down leaves alone a workload younger than this (default 15m, unless a Namespace "
        "says otherwise in nsscale/grace-period); 0 turns it off. Given, it beats the annotation.",
        show_default=False,
    ),
    None,
)
DEPLOYMENT_TIME_ANNOTATION = Param[str | None](
    "deployment_time_annotation",
    typer.Option(
        "--deployment-time-annotation",
        metavar="NAME",
        help="A workload annotation holding its deployment time (RFC 3339): the grace period "
        "counts from it when it is later than the creation.",
    ),
    None,
)
ENFORCE = Param[bool](
    "enforce",
    typer.Option(
        "--enforce",
        help="A down also brings down workloads changed by hand since nsscale scaled them.",
    ),
    False,
)
DOWNTIME_REPLICAS = Param[int | None](
    "downtime_replicas",
    typer.Option(
        "--downtime-replicas",
        min=0,
        metavar="N",
        help="A down scales to N instead of 0 (default 0), unless the workload or its Namespace "
        "has nsscale/downtime-replicas (or downscaler/downtime-replicas).",
        show_default=False,
    ),
    None,
)
AT = Param[str | None](
    "at",
    typer.Option(
        "--at",
        metavar="TIME",
        help="Decide as if it were TIME (RFC 3339 with an offset: 2026-12-24T22:00:00+01:00);"
        " with --dry-run, a preview.",
    ),
    None,
)

# ----------------------------------------------------------------------- kubectl's connection

TIMEOUT = Param[float](
    "timeout",
    typer.Option(
        "--timeout",
        parser=_seconds(0.1, 86400, "30, 30s, 2m"),
        metavar="DURATION",
        help="How long one API request may take (kubectl's --request-timeout): 30 (seconds), "
        "30s, 2m; a kubectl call making N requests is stopped after N times this.",
    ),
    DEFAULT_TIMEOUT_S,
    typed=format_duration(timedelta(seconds=DEFAULT_TIMEOUT_S)),
)
CONTEXT = Param[str | None](
    "context",
    typer.Option(
        "--context", help="The kubeconfig context to use.", autocompletion=complete_contexts
    ),
    None,
)
# No envvar: kubectl reads $KUBECONFIG itself (a list of files, which --kubeconfig is not).
KUBECONFIG = Param[str | None](
    "kubeconfig",
    typer.Option("--kubeconfig", help="Path to the kubeconfig file to use."),
    None,
)
KUBECTL = Param[str | None](
    "kubectl",
    typer.Option(
        "--kubectl", envvar=KUBECTL_ENV, help="Path to kubectl (default: kubectl on PATH)."
    ),
    None,
)

# ------------------------------------------------------------------------ output and logging

OUTPUT = Param[OutputFormat](
    "output",
    typer.Option("--output", "-o", help="table for people, json for machines."),
    OutputFormat.TABLE,
)
VERBOSE = Param[int](
    "verbose",
    typer.Option(
        "--verbose", "-v", count=True, help="-v: INFO logs, -vv: DEBUG with kubectl calls."
    ),
    0,
)
LOG_FILE = Param[Path | None](
    "log_file",
    typer.Option("--log-file", help="Also append logs to this file.", dir_okay=False),
    None,
)

ON_FAILURE = Param[str | None](
    "on_failure",
    typer.Option(
        "--on-failure",
        metavar="CMD",
        help="Run CMD (no shell) when the run fails or is interrupted (exit 1, 3, 4, "
        "129, 130, 143), the JSON report on its stdin; waited for 30 s at most.",
    ),
    None,
)

# ------------------------------------------------------------------------------------- audit

AUDIT_TABLE = Param[str | None](
    "audit_table",
    typer.Option(
        "--audit-table",
        envvar=TABLE_ENV,
        help="The DynamoDB table of the audit trail (make it: nsscale audit create-table NAME).",
    ),
    None,
)
AUDIT_FILE = Param[Path | None](
    "audit_file",
    typer.Option(
        "--audit-file",
        dir_okay=False,
        help="The local audit file [default: $XDG_STATE_HOME/nsscale/audit.jsonl].",
    ),
    None,
)
AUDIT_REQUIRED = Param[bool](
    "audit_required",
    typer.Option(
        "--audit-required",
        help="The run's record must be written to DynamoDB (to the audit file when no "
        "table is set): checked before the first change (exit 1, nothing changed), and "
        "exit 1 (3 stays 3) when it is missing after the run.",
    ),
    False,
)

# ----------------------------------------------------------------------------------- history

SINCE = Param[timedelta | None](
    "since_age",
    typer.Option(
        "--since",
        parser=_age,
        metavar="AGE",
        help="Only runs started less than AGE ago: 90d, 12h, 30m.",
        show_default=False,
    ),
    None,
)
LIMIT = Param[int]("limit", typer.Option("--limit", min=1, help="At most this many runs."), 50)
ALL_CLUSTERS = Param[bool](
    "all_clusters",
    typer.Option(
        "--all-clusters",
        help="Every run recorded under the cluster's name, whichever cluster of that name it "
        "was on (default: only those of the cluster the context points at); asks no cluster.",
    ),
    False,
)

# ------------------------------------------------------------------------------------- serve

LISTEN = Param[str](
    "listen",
    typer.Option(
        "--listen",
        metavar="HOST:PORT",
        help="Where to listen: 0.0.0.0:8080 is every interface, port 0 any free one.",
    ),
    DEFAULT_LISTEN,
)
TOKEN_FILE = Param[Path | None](
    "token_file",
    typer.Option(
        "--token-file",
        metavar="FILE",
        help="Static bearer tokens: one per line, then the namespace globs it may act on "
        "(none: every one); re-read when it changes.",
    ),
    None,
)
KUBERNETES_AUTH = Param[bool](
    "kubernetes_auth",
    typer.Option(
        "--kubernetes-auth",
        help="Check each bearer token with a TokenReview and its right with a "
        "SubjectAccessReview (the server needs system:auth-delegator).",
    ),
    False,
)
MAX_RUNS = Param[int](
    "max_runs",
    typer.Option("--max-runs", min=1, help="Runs at once; past it a request gets 503."),
    DEFAULT_MAX_RUNS,
)
TOKEN_AUDIENCE = Param[list[str] | None](
    "token_audience",
    typer.Option(
        "--token-audience",
        metavar="AUD",
        help="--kubernetes-auth: accept only tokens minted for this audience (repeatable; "
        "kubectl create token SA --audience AUD).",
    ),
    None,
)
MAX_REVIEWS = Param[int](
    "max_reviews",
    typer.Option(
        "--max-reviews",
        min=1,
        help="TokenReviews and SubjectAccessReviews in flight at once; past it a request gets 503.",
    ),
    DEFAULT_MAX_REVIEWS,
)
RECONCILE_EVERY = Param[timedelta | None](
    "reconcile_every",
    typer.Option(
        "--reconcile-every",
        parser=_interval,
        metavar="DURATION",
        help="Also reconcile on this interval (5m, 1h, 300), with reconcile's options, while "
        "holding the Lease nsscale-scheduler in the server's namespace: of several replicas, "
        "one reconciles.",
        show_default=False,
    ),
    None,
)
MAX_CONNECTIONS = Param[int](
    "max_connections",
    typer.Option(
        "--max-connections",
        min=1,
        help="Connections open at once; one that sends no whole request in 10 s is closed.",
    ),
    DEFAULT_MAX_CONNECTIONS,
)

# ------------------------------------------------------------------------ audit, completion

# audit create-table's
TABLE_NAME = Param[str]("name", typer.Argument(help="The name of the DynamoDB table."))
# completion's
SHELL = Param[Shell]("shell", typer.Argument(metavar="SHELL", help="bash, zsh or fish."))

# ---------------------------------------------------------------------------------- groups

RUN = (
    DRY_RUN,
    SERVER_DRY_RUN,
    NO_ROLLBACK,
    FORCE,
    WAIT,
    WAIT_TIMEOUT,
    BATCH_SIZE,
    PARALLEL,
    RETRIES,
    REQUIRE_LOCK,
)
# which namespaces and workloads
CHOICE = (NAMESPACE_SELECTOR, ALL_OR_NOTHING, SELECTOR, EXCLUDE, SCALE_RESOURCE)
CONNECTION = (TIMEOUT, CONTEXT, KUBECONFIG, KUBECTL)
REPORTING = (OUTPUT, VERBOSE, LOG_FILE)
ALERTING = (ON_FAILURE, EVENTS)
AUDIT = (AUDIT_TABLE, AUDIT_FILE, AUDIT_REQUIRED)
# reconcile's and serve --reconcile-every's: which namespaces, on what schedule (SCHEDULING);
# the rules of a down, the objects that fight a scale, the workloads chosen (RECONCILE_RULES)
SCHEDULING = (NAMESPACE_FLAG, NAMESPACE_SELECTOR, UPTIME, DOWNTIME, TIMEZONE)
RECONCILE_RULES = (
    GRACE_PERIOD,
    DEPLOYMENT_TIME_ANNOTATION,
    ENFORCE,
    DOWNTIME_REPLICAS,
    SUSPEND_CRONJOBS,
    SUSPEND_GITOPS,
    ARGOCD_NAMESPACE,
    SELECTOR,
    EXCLUDE,
)
# serve --reconcile-every's rounds: reconcile's options that make sense in a loop
SERVE_RECONCILE = (
    *SCHEDULING,
    *RECONCILE_RULES,
    EVENTS,
    BATCH_SIZE,
    PARALLEL,
    RETRIES,
    REQUIRE_LOCK,
)
SERVE = (
    LISTEN,
    TOKEN_FILE,
    KUBERNETES_AUTH,
    TOKEN_AUDIENCE,
    MAX_RUNS,
    MAX_REVIEWS,
    MAX_CONNECTIONS,
    SCALE_RESOURCE,
    RECONCILE_EVERY,
    *SERVE_RECONCILE,
)
