"""waitress's own answers, made like the app's: a request it refuses before the app sees it (a
malformed request line, headers past their limit, a body past MAX_REQUEST_BYTES) is answered as
JSON `{"success": false, "message": ...}` and has its access line too. A body too large is 400,
as the app answers a body over 64 KiB (bad input, README); waitress would say 413.

waitress reads a whole request before it calls the app, so it is waitress that must bound what
it holds: MAX_REQUEST_BYTES, refused as soon as Content-Length or a chunked body passes it.
"""

from __future__ import annotations

import json
from typing import Any, cast

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge

from nsscale.serve.accesslog import access_line, server_log

MAX_REQUEST_BYTES = 1024 * 1024  # what waitress takes in; the app refuses past 64 KiB
_MESSAGES = {
    400: "a malformed HTTP request",
    413: "the body is over 64 KiB",
    431: "the request's headers are too large",
    501: "a transfer encoding the server does not take",
}


class JsonErrorTask(ErrorTask):
    def execute(self) -> None:
        request = cast(Any, self.request)  # the stubs call it an Error: it is the parser
        code = int(getattr(request.error, "code", 500))
        message = _MESSAGES.get(code, "internal error: see the server's log")
        status = 400 if isinstance(request.error, RequestEntityTooLarge) else code
        body = json.dumps({"success": False, "message": message}).encode() + b"\n"
        self.status = f"{status} {'Bad Request' if status == 400 else request.error.reason}"
        cast(list[tuple[str, str]], self.response_headers).append(
            ("Content-Type", "application/json")
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        environ = {
            "REMOTE_ADDR": str(self.channel.addr[0]) if self.channel.addr else "-",
            "REQUEST_METHOD": str(getattr(request, "command", "") or "-"),
            "PATH_INFO": str(getattr(request, "path", "") or ""),
        }
        server_log.info(access_line(environ, str(status), 0.0))


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask
