"""`nsscale serve`: the HTTP endpoints (nsscale/serve, Flask and waitress: an extra), and with
--reconcile-every the reconcile loop beside them."""

from __future__ import annotations

from nsscale.commands.common import Common, Scope, audit_options
from nsscale.commands.options import (
    DEPLOYMENT_TIME_ANNOTATION,
    DOWNTIME,
    DOWNTIME_REPLICAS,
    ENFORCE,
    GRACE_PERIOD,
    KUBERNETES_AUTH,
    LISTEN,
    MAX_CONNECTIONS,
    MAX_REVIEWS,
    MAX_RUNS,
    NAMESPACE_FLAG,
    NAMESPACE_SELECTOR,
    RECONCILE_EVERY,
    SCALE_RESOURCE,
    TIMEZONE,
    TOKEN_AUDIENCE,
    TOKEN_FILE,
    UPTIME,
    Parsed,
)
from nsscale.commands.run import run_options
from nsscale.engine.plan import Operation
from nsscale.errors import UsageError
from nsscale.schedule.decide import policy_of
from nsscale.schedule.rules import Rules
from nsscale.serve import require_extra
from nsscale.serve.options import LoopOptions, ServeOptions


def serve_command(parsed: Parsed) -> int:
    common = Common.of(parsed)
    common.setup_logging()
    require_extra()
    from nsscale.serve.command import serve  # Flask and waitress, once known to be there

    audiences = parsed[TOKEN_AUDIENCE]
    scale_resources = parsed[SCALE_RESOURCE]
    options = ServeOptions(
        listen=parsed[LISTEN],
        token_file=parsed[TOKEN_FILE],
        kubernetes_auth=parsed[KUBERNETES_AUTH],
        max_runs=parsed[MAX_RUNS],
        token_audiences=tuple(audiences or ()),
        max_reviews=parsed[MAX_REVIEWS],
        max_connections=parsed[MAX_CONNECTIONS],
        scale_resources=tuple(dict.fromkeys(scale_resources or ())),
        kubectl=common.kubectl_config(),
        audit=audit_options(parsed),
        policy=policy_of(parsed[UPTIME], parsed[DOWNTIME], parsed[TIMEZONE]),
        reconcile=loop_options(parsed),
    )
    return serve(options)


def loop_options(parsed: Parsed) -> LoopOptions | None:
    """--reconcile-every and the rounds' options, as `nsscale reconcile` reads them (UsageError
    for a bad one, or for no namespace to reconcile)."""
    named = tuple(dict.fromkeys(parsed[NAMESPACE_FLAG] or ()))  # serve has no positional one
    every, scope = parsed[RECONCILE_EVERY], Scope(named, parsed[NAMESPACE_SELECTOR])
    if every is None:
        if scope.named or scope.selector is not None:
            raise UsageError(
                "-n/--namespace and --namespace-selector choose what --reconcile-every reconciles",
                "add --reconcile-every DURATION, or drop them",
            )
        return None
    if not scope.named and scope.selector is None:
        raise UsageError(
            "--reconcile-every needs the namespaces to reconcile",
            "name them with -n NAMESPACE (repeatable), or pick them with --namespace-selector",
        )
    scope.check()
    return LoopOptions(
        every=every,
        named=scope.named,
        namespace_selector=scope.selector,
        run=run_options(Operation.DOWN, parsed),
        rules=Rules(
            parsed[GRACE_PERIOD],
            parsed[DEPLOYMENT_TIME_ANNOTATION],
            parsed[ENFORCE],
            parsed[DOWNTIME_REPLICAS],
        ),
    )
