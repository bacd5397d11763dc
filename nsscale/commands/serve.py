"""`nsscale serve`: the HTTP endpoints (nsscale/serve, Flask and waitress: an extra)."""

from __future__ import annotations

from nsscale.commands.common import Common, audit_options
from nsscale.commands.options import (
    KUBERNETES_AUTH,
    LISTEN,
    MAX_CONNECTIONS,
    MAX_REVIEWS,
    MAX_RUNS,
    SCALE_RESOURCE,
    TOKEN_AUDIENCE,
    TOKEN_FILE,
    Parsed,
)
from nsscale.serve import require_extra
from nsscale.serve.options import ServeOptions


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
    )
    return serve(options)
