"""`nsscale serve`: the seed's HTTP endpoints, over the engine every interface runs.

    command.py    start-up: check the options, listen (waitress), drain on SIGTERM, exit
    app.py        the Flask app: routes, request bodies, every answer as JSON
    service.py    what a request does: who may, how many runs at once, the run or the read, and
                  the answer the result makes
    auth.py       who is asking and what they may do: the caller, the bearer token, the token
                  file's authority
    tokens.py     the token file, re-read when it changes
    kubeauth.py   the cluster's authority: TokenReview (audiences) and a SubjectAccessReview per
                  access a request needs, --max-reviews in flight, answers cached
    answers.py    an HTTP answer, and the refusals (400, 401, 403, 404, 409, 503)
    redact.py     what an answer may say of the server: nothing (its detail goes to its log)
    accesslog.py  one line per request on stderr, and the requests in flight
    protocol.py   what waitress refuses itself (a malformed request, a body past 1 MiB), as JSON;
                  a connection without a whole request in 10 s closed; a lingering close
    options.py    what the command line asked for
    fleet.py      GET /api/namespaces (the namespaces the caller may see, their state, schedule,
                  next change, week strip, hold, last run) and a namespace's history
    web.py        the page at / and /namespaces/<ns> (templates/, static/: no CDN, strict CSP)
    scheduler.py  --reconcile-every: reconcile in a thread, by the leader only; /api/scheduler
    leadership.py which replica leads: the Lease nsscale-scheduler (kube/leader.py), as client-go
    readiness.py  GET /readyz: 200 once the API server answered lately
    metrics.py    GET /metrics: runs, rollbacks, rounds, namespaces by state (prometheus_client)

Flask, waitress and prometheus_client are an optional extra (`pip install 'nsscale[serve]'`):
nothing outside this package imports them, and this module does not, so that `require_extra`
can say what is missing.
"""

from __future__ import annotations

import importlib

from nsscale.errors import UsageError

EXTRA = "pip install 'nsscale[serve]'"


def require_extra() -> None:
    """UsageError, in one line naming the extra, when one of its packages cannot be imported."""
    packages = ("flask", "waitress", "prometheus_client")
    missing = [name for name in packages if not _importable(name)]
    if missing:
        what = " and ".join(missing)
        verb = "is" if len(missing) == 1 else "are"
        raise UsageError(f"nsscale serve needs {what}, which {verb} not installed: {EXTRA}")


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
