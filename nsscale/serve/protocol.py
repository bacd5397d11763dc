"""waitress's own answers, made like the app's: a request it refuses before the app sees it (a
malformed request line, headers past their limit, a body past MAX_REQUEST_BYTES) is answered as
JSON `{"success": false, "message": ...}` and has its access line too. A body too large is 400,
as the app answers a body over 64 KiB (bad input, README); waitress would say 413.

waitress reads a whole request before it calls the app, so it is waitress that must bound what
it holds: MAX_REQUEST_BYTES, refused as soon as Content-Length or a chunked body passes it; and
how long: a connection that has not sent a whole request within REQUEST_WITHIN_S of opening (or
of its last answer) is closed, idle or half-sent alike. waitress's own idle timeout counts from
the last byte received, which a client sending a byte at a time keeps fresh forever: here only
a whole request does.

`GET /healthz` alone in what a connection sent is answered here, on the loop's own thread, not
by the app on a worker thread: a liveness probe is answered at once even while every worker
waits on the cluster (slow status reads, reviews of a flood of made-up tokens).
"""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any, cast

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge, build_http_date

from nsscale.serve.accesslog import access_line, server_log
from nsscale.serve.answers import HEALTHY

MAX_REQUEST_BYTES = 1024 * 1024  # what waitress takes in; the app refuses past 64 KiB
REQUEST_WITHIN_S = 10  # a connection sends a whole request within this, or is closed
LINGER_S = 2.0  # after a connection's last answer: what the client still sends is read, dropped
CLEANUP_EVERY_S = 0  # waitress looks for them at every turn of its loop (an int: whole seconds)
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


HEALTH_CHECK = re.compile(rb"GET /healthz HTTP/1\.([01])\r\n((?:[^\r\n]*\r\n)*?)\r\n")
_HEALTHY_BODY = json.dumps(HEALTHY).encode() + b"\n"


def health_answer(request: bytes) -> tuple[bytes, bool] | None:
    """The answer to `request` when it is exactly one `GET /healthz` (no body, nothing after
    it), and whether the connection closes after it; None for anything else."""
    found = HEALTH_CHECK.fullmatch(request)
    if found is None or re.search(rb"(?im)^(content-length|transfer-encoding):", found[2]):
        return None
    connection = re.search(rb"(?im)^connection:[ \t]*([^\r\n]*)", found[2])
    wanted = connection[1].strip().lower() if connection else b""
    closes = wanted == b"close" or (found[1] == b"0" and wanted != b"keep-alive")
    headers = [
        f"HTTP/1.{found[1].decode()} 200 OK",
        f"Content-Length: {len(_HEALTHY_BODY)}",
        "Content-Type: application/json",
        f"Date: {build_http_date(int(time.time()))}",
        "Server: waitress",
    ]
    if closes:
        headers.append("Connection: close")
    elif found[1] == b"0":
        headers.append("Connection: Keep-Alive")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + _HEALTHY_BODY, closes


class JsonErrorChannel(HTTPChannel):
    """A connection: waitress's, with JSON errors, an idle clock that only a whole request
    resets, no more requests read once the server stops, and a lingering close: closed with
    bytes unread (a body refused half-way), a socket would send a reset that can destroy the
    answer on its way, so its end is sent first and what follows is read and dropped (LINGER_S,
    or until the client closes too)."""

    error_task_class = JsonErrorTask
    stopping = False  # set on each connection by the drain: answer what came, read no more
    lingering_until = 0.0  # when the lingering close began: the time it ends

    def readable(self) -> bool:
        if self.lingering_until:
            return True  # the client's end-of-file, to close at once
        return not self.stopping and bool(super().readable())

    def handle_close(self) -> None:
        if not self.lingering_until and self.socket is not None and self.connected:
            try:
                self.socket.shutdown(socket.SHUT_WR)  # the answer, then end-of-file
            except OSError:
                pass
            else:
                self.lingering_until = time.monotonic() + LINGER_S
                self.will_close = self.close_when_flushed = False
                return
        super().handle_close()

    def received(self, data: bytes) -> bool:
        if self.request is None and not self.requests and not self.total_outbufs_len:
            answer = health_answer(data)
            if answer is not None:
                self._answer_now(*answer)
                return True
        return bool(super().received(data))

    def _answer_now(self, answer: bytes, closes: bool) -> None:
        """Send `answer` from the loop's thread (nothing else is being answered here)."""
        started = time.monotonic()
        with self.outbuf_lock:
            self.outbufs[-1].append(answer)
            self.current_outbuf_count += len(answer)
            self.total_outbufs_len += len(answer)
        self.close_when_flushed = closes
        environ = {
            "REMOTE_ADDR": str(self.addr[0]) if self.addr else "-",
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/healthz",
        }
        server_log.info(access_line(environ, "200", time.monotonic() - started))

    def handle_read(self) -> None:
        if self.lingering_until:
            self.recv(self.adj.recv_bytes)  # dropped; end-of-file or a reset closes it
            if self.socket is not None and time.monotonic() > self.lingering_until:
                super().handle_close()
            return
        waiting_since, pending = self.last_activity, self.request
        super().handle_read()
        partly_sent = self.request is not None
        completed_now = pending is not None and pending.completed
        if partly_sent and not completed_now:  # bytes, but still no whole request
            self.last_activity = waiting_since
        elif not partly_sent:
            self.last_activity = time.time()
