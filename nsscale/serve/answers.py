"""What the server answers: an HTTP status, a JSON body, headers; and the refusals, each carrying
its status (docs/contract.md, the seed's endpoints). Every refusal's body is `{"success": false,
"message": ...}`.

    Refusal                      an answer other than the run's own (200 or 500)
    ├── BadRequest (400)         an invalid namespace name, a body that is not {"dry_run": bool}
    │                            (a key given twice included)
    ├── Unauthenticated (401)    no bearer token, or one nobody knows (WWW-Authenticate: Bearer)
    ├── Forbidden (403)          the caller may not make an access the request needs (the
    │                            first denied named), or the namespace is protected
    ├── NotFound (404)           no such namespace, no such endpoint
    ├── Conflict (409)           another run holds the namespace: its run id, operation, start
    │                            and (a served run's) caller; never its host or pid
    ├── ServerFailed (500)       not a run's failure: the status could not be read, the
    │                            server's kubectl or kubeconfig is wrong (`error`: what
    │                            failed; the detail is in the server's log)
    └── Unavailable (503)        too many runs or reviews at once, shutting down, or the
                                 cluster could not check a token now (Retry-After)

A 405 (wrong method) is the router's: Flask knows the methods of each path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

RETRY_AFTER_S = 5  # what a 503 asks to wait: about one run
HEALTHY = {"success": True, "status": "ok"}  # GET /healthz's answer


@dataclass(frozen=True)
class Answer:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class Refusal(Exception):
    status: ClassVar[int] = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra  # more keys of the body (the refused run's result, its run id)

    def headers(self) -> dict[str, str]:
        return {}

    def answer(self) -> Answer:
        body = {"success": False, "message": self.message, **self.extra}
        return Answer(self.status, body, self.headers())


class BadRequest(Refusal):
    status = 400


class Unauthenticated(Refusal):
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="nsscale"'}


class Forbidden(Refusal):
    status = 403


class NotFound(Refusal):
    status = 404


class Conflict(Refusal):
    status = 409


class ServerFailed(Refusal):
    status = 500


class Unavailable(Refusal):
    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_S)}


def rfc3339(moment: datetime) -> str:
    """An instant as an answer gives it: seconds, with the offset (`Z` for UTC)."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
