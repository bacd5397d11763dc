"""The Flask app of `nsscale serve`: the seed's endpoints and /healthz, every answer JSON.

    GET  /healthz                              200, no auth
    GET  /readyz                               200 once the API server answers, else 503
    GET  /metrics                              Prometheus' text format, no auth
    GET  /api/scheduler                        the reconcile loop: last round, next
    GET  /api/namespaces                       200: every namespace the caller may see (fleet.py)
    GET  /api/namespaces/<ns>                  200: what `nsscale status <ns> -o json` prints
    GET  /api/namespaces/<ns>/history          200: its recorded runs, newest first (fleet.py)
    POST /api/namespaces/<ns>/deactivate       a `down` run (optional body {"dry_run": true})
    POST /api/namespaces/<ns>/activate         an `up` run ({"hold": "4h"}: as `up --hold`)
    GET  /, /namespaces/<ns>, /static/<file>   the web page (web.py: HTML, no data, no auth)

Flask routes and parses; service.py decides. A refusal, an unknown path (404), a wrong method
(405) and a bug (500, its traceback in the server's log at -vv only) are answered as JSON
`{"success": false, "message": ...}`, never as an HTML page or a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from nsscale.durations import parse_duration
from nsscale.engine.plan import Operation
from nsscale.engine.result import new_run_id
from nsscale.schedule.decide import Policy
from nsscale.serve.accesslog import CALLER_KEY, RUN_ID_KEY
from nsscale.serve.answers import HEALTHY, Answer, BadRequest, Refusal, Unavailable
from nsscale.serve.auth import Caller
from nsscale.serve.fleet import Fleet
from nsscale.serve.metrics import CONTENT_TYPE as METRICS_TYPE
from nsscale.serve.scheduler import Scheduler
from nsscale.serve.service import Service
from nsscale.serve.web import install as install_page

log = logging.getLogger("nsscale")

MAX_BODY = 64 * 1024
BODY_KEYS = ("dry_run", "hold")
MAX_HOLD = timedelta(days=30)
ENDPOINTS = (
    "GET /healthz, GET /api/namespaces, GET /api/namespaces/<namespace>, "
    "GET /api/namespaces/<namespace>/history, "
    "POST /api/namespaces/<namespace>/activate or /deactivate"
)
ACTIONS = {"deactivate": Operation.DOWN, "activate": Operation.UP}


def make_app(service: Service, scheduler: Scheduler | None = None) -> Flask:
    loop = scheduler or Scheduler(service.kubectl, None, Policy(), service.auditor)
    app = Flask(__name__, static_folder=None)  # the page's files: web.py, with its headers
    app.url_map.merge_slashes = False  # no redirect for `//`: a path is what it says
    fleet = Fleet(service, loop.loop)
    routes = (
        ("/healthz", "healthz", _healthz, "GET"),
        ("/readyz", "readyz", lambda: _readyz(loop), "GET"),
        ("/metrics", "metrics", lambda: _metrics(loop), "GET"),
        ("/api/scheduler", "scheduler", lambda: _scheduler(service, loop), "GET"),
        ("/api/namespaces", "fleet", lambda: _read(service, fleet.namespaces), "GET"),
        (
            "/api/namespaces/<namespace>/history",
            "history",
            lambda namespace: _read(service, lambda c: fleet.history(c, namespace)),
            "GET",
        ),
        (
            "/api/namespaces/<namespace>",
            "status",
            lambda namespace: _status(service, namespace),
            "GET",
        ),
        (
            "/api/namespaces/<namespace>/<any(activate, deactivate):action>",
            "act",
            lambda namespace, action: _act(service, namespace, action),
            "POST",
        ),
    )
    for rule, name, view, method in routes:
        # no automatic OPTIONS: no browser calls this across origins, and no path answers what
        # it was not written to
        app.add_url_rule(rule, name, view, methods=[method], provide_automatic_options=False)

    @app.before_request
    def _refuse_while_stopping() -> None:
        if service.stopping.is_set():
            raise Unavailable("the server is shutting down: try another replica, or again later")

    install_page(app)
    app.register_error_handler(Refusal, lambda refusal: _respond(refusal.answer()))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)
    return app


def _healthz() -> Response:
    """Alive and taking requests (503 once a stop has begun: see before_request)."""
    return _respond(Answer(200, HEALTHY))


def _readyz(loop: Scheduler) -> Response:
    """Ready once the API server has answered (lately): else 503, and no traffic is sent."""
    if loop.readiness.ready():
        return _respond(Answer(200, {"success": True, "message": "ready"}))
    raise Unavailable("the server cannot reach the API server: not ready")


def _metrics(loop: Scheduler) -> Response:
    return Response(loop.metrics.exposition(), mimetype=None, content_type=METRICS_TYPE)


def _scheduler(service: Service, loop: Scheduler) -> Response:
    _caller(service)
    _no_query()
    return _respond(Answer(200, loop.document()))


def _status(service: Service, namespace: str) -> Response:
    caller = _caller(service)
    _no_query()
    return _respond(service.status(caller, namespace))


def _read(service: Service, answer: Callable[[Caller], Answer]) -> Response:
    caller = _caller(service)
    _no_query()
    return _respond(answer(caller))


def _act(service: Service, namespace: str, action: str) -> Response:
    caller = _caller(service)
    _no_query()
    body = _options()
    dry_run, hold = _dry_run(body), _hold(body, action)
    operation = ACTIONS[action]
    return _respond(service.act(caller, namespace, operation, dry_run, new_run_id(), hold))


def _caller(service: Service) -> Caller:
    caller = service.caller(request.headers.get("Authorization"))
    request.environ[CALLER_KEY] = caller.name
    return caller


def _no_query() -> None:
    """A query string is refused, not ignored: `?dry_run=true` must never run for real."""
    if request.query_string:
        raise BadRequest('no query parameters: send options as the JSON body, {"dry_run": true}')


def _options() -> dict[str, Any]:
    """The request's body: a JSON object, or none ({}). BadRequest past 64 KiB, for what is
    not JSON, for a key given twice, and for JSON that is not an object (`null` included:
    never a run by default)."""
    if (request.content_length or 0) > MAX_BODY:
        raise BadRequest(f"the body is over {MAX_BODY // 1024} KiB")
    raw = request.stream.read(MAX_BODY + 1)  # a chunked body has no Content-Length
    if len(raw) > MAX_BODY:
        raise BadRequest(f"the body is over {MAX_BODY // 1024} KiB")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):  # not UTF-8 or not JSON; nested past Python's stack
        raise BadRequest('the body is not JSON: send {"dry_run": true}, or no body') from None
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object, such as {"dry_run": true}')
    return body


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of the body: a key given twice is refused, never the last one taken
    (`{"dry_run": true, "dry_run": false}` must not run for real)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise BadRequest(f"the key {json.dumps(key[:40])} is in the body twice: send it once")
        found[key] = value
    return found


def _dry_run(body: dict[str, Any]) -> bool:
    unknown = [key for key in body if key not in BODY_KEYS]
    if unknown:
        shown = ", ".join(json.dumps(key[:40]) for key in unknown[:3])
        raise BadRequest(f"unknown key(s) in the body: {shown}; the options are dry_run, hold")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("dry_run must be true or false")
    return dry_run


def _hold(body: dict[str, Any], action: str) -> timedelta | None:
    """`{"hold": "4h"}`, activate's alone: as `up --hold`, reconcile then leaves the namespace
    up this long (at most MAX_HOLD)."""
    if "hold" not in body:
        return None
    if action != "activate":
        raise BadRequest(f'hold is for activate only: {action} takes {{"dry_run": true}} alone')
    text = body["hold"]
    if not isinstance(text, str):
        raise BadRequest('hold must be a duration as text, such as {"hold": "4h"}')
    try:
        hold = parse_duration(text[:40], "smh", "a duration", "90m, 4h")
    except ValueError as exc:
        raise BadRequest(f"invalid hold: {exc}") from None
    if hold > MAX_HOLD:
        raise BadRequest(f"invalid hold: {text[:40]!r} is over {MAX_HOLD.days} days")
    return hold


def _respond(answer: Answer) -> Response:
    """The answer as JSON; a run's id (in its body) also goes to the access log."""
    if run_id := answer.body.get("run_id"):
        request.environ[RUN_ID_KEY] = run_id
    # the body's keys in the seed's order (docs/contract.md; Flask's own JSON would sort them)
    response = Response(
        json.dumps(answer.body, ensure_ascii=True) + "\n",
        status=answer.status,
        mimetype="application/json",
    )
    response.headers.update(answer.headers)
    return response


def _http_error(error: HTTPException) -> Response:
    """What the router answers itself: no such path (404), a wrong method (405)."""
    status = error.code or 500
    headers: dict[str, str] = {}
    if isinstance(error, NotFound):
        message = f"no such endpoint; the endpoints are {ENDPOINTS}"
    elif isinstance(error, MethodNotAllowed):
        allowed = ", ".join(m for m in error.valid_methods or () if m != "HEAD")
        message = f"method {request.method} is not allowed here: use {allowed}"
        headers["Allow"] = ", ".join(error.valid_methods or ())
    else:
        message = f"{error.name}: {error.description}"
    return _respond(Answer(status, {"success": False, "message": message}, headers))


def _internal_error(error: Exception) -> Response:
    """A bug: one line in the server's log (the traceback with -vv), a plain 500 answer."""
    what = f"{type(error).__name__}: {error}"
    log.error("internal error on %s %s: %s", request.method, request.path, what)
    log.debug("the traceback:", exc_info=error)
    body = {"success": False, "message": "internal error: see the server's log"}
    return _respond(Answer(500, body))
