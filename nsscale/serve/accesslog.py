"""The server's own lines on stderr: one per request once its answer is sent (the access log),
and its start and stop; and the count of requests in flight, which a stop waits for.

An access line says when, from where, what (method and path, never the query string or a
header: a token is in neither the line nor anything it quotes), the status, how long it took,
the run id of a run and who asked (the caller's name, `-` when nobody was authenticated):

    2026-11-30T09:15:02.117Z 10.0.3.7 POST /api/namespaces/shop/deactivate 200 812ms
        run=4f3c... caller=system:serviceaccount:ci:deployer      (one line)

They are shown whatever -v says: the `nsscale.serve` logger has a handler of its own.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from werkzeug.wsgi import ClosingIterator

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CALLER_KEY = "nsscale.caller"  # set in the WSGI environ by the app once it knows
RUN_ID_KEY = "nsscale.run_id"
_SERVER_LOG = "nsscale.serve"
_HANDLER_NAME = "nsscale-serve"

server_log = logging.getLogger(_SERVER_LOG)


def setup_server_log(stream: IO[str] | None = None) -> None:
    """The server's lines go to `stream` (stderr), as they are, at any verbosity."""
    for handler in [h for h in server_log.handlers if h.get_name() == _HANDLER_NAME]:
        server_log.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(message)s"))
    server_log.addHandler(handler)
    server_log.setLevel(logging.INFO)
    server_log.propagate = False  # not again through the nsscale logger's handlers


class AccessLog:
    """WSGI middleware: logs each request when its answer has been handed to the server, and
    counts the requests in flight."""

    def __init__(self, app: WSGIApplication, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = self.clock()
        status = ["500"]  # what a request that never started its answer is logged as

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, exc_info)

        def done() -> None:
            with self._lock:
                self._in_flight -= 1
            server_log.info(access_line(environ, status[0], self.clock() - started))

        with self._lock:
            self._in_flight += 1
        try:
            body = self.app(environ, start)
        except BaseException:
            done()
            raise
        return ClosingIterator(body, done)


def access_line(environ: WSGIEnvironment, status: str, seconds: float) -> str:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    fields = [
        datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        _safe(environ.get("REMOTE_ADDR") or "-"),
        _safe(environ.get("REQUEST_METHOD") or "-"),
        # PEP 3333: the path's bytes as latin-1; quoted, nothing in it can break the line
        quote(path.encode("latin-1", "replace"), safe="/:@-._~!$&'()*+,;=") or "-",
        status,
        f"{seconds * 1000:.0f}ms",
        f"run={_safe(environ.get(RUN_ID_KEY) or '-')}",
        f"caller={_safe(environ.get(CALLER_KEY) or '-')}",
    ]
    return " ".join(fields)


def _safe(text: str) -> str:
    """One word of the line: a space or a control character in a name is %-quoted."""
    return quote(text, safe="/:@-._~!$&'()*+,;=")
