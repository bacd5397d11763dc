"""`nsscale serve`'s process: check the options, listen with waitress, serve until SIGTERM (or
SIGINT), then stop accepting, let the requests in flight finish (a run rolls back as usual, and
its answer is sent), give their answers FLUSH_S to leave, close every connection (open, unread,
pipelined alike) and exit 0.

Never Flask's development server: waitress (pure Python, made for production) serves the app.
Its event loop is driven here rather than by `server.run()`, so that a signal closes the
listening socket (new connections are refused; a request on a connection already open gets
503) while the loop goes on sending the answers of the requests in flight.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import time
from collections.abc import MutableMapping
from types import FrameType
from typing import Any

from waitress import wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

from nsscale.audit.auditor import Auditor
from nsscale.defaults import KUBECTL_ENV
from nsscale.errors import CannotListen, KubectlNotFound
from nsscale.kube.cluster import scale_resource_kinds
from nsscale.kubectl import Kubectl
from nsscale.serve.accesslog import AccessLog, server_log, setup_server_log
from nsscale.serve.app import make_app
from nsscale.serve.auth import Authority, TokenFileAuthority
from nsscale.serve.kubeauth import KubernetesAuthority
from nsscale.serve.options import Address, ServeOptions, parse_listen
from nsscale.serve.protocol import (
    CLEANUP_EVERY_S,
    MAX_REQUEST_BYTES,
    REQUEST_WITHIN_S,
    JsonErrorChannel,
)
from nsscale.serve.scheduler import Scheduler
from nsscale.serve.service import Service
from nsscale.serve.tokens import TokenFile

log = logging.getLogger("nsscale")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
LOOP_TIMEOUT_S = 0.2  # how often the loop looks for a signal (requests are served at once)
SPARE_THREADS = 4  # beyond --max-runs and --max-reviews: /healthz, 503s while runs go on
FLUSH_S = 2.0  # once every request is answered: how long the answers get to leave
SPARE_FILES = 256  # file descriptors beyond --max-connections: kubectl's pipes, the audit

SocketMap = MutableMapping[int, Any]


def serve(options: ServeOptions) -> int:
    """Serve until a stop signal, then drain; the exit code (0). NsscaleError for what stops
    it from starting (UsageError: a bad option, no auth mode, a bad token file)."""
    options.check_auth_mode()
    address = parse_listen(options.listen)
    setup_server_log()
    _check_kubectl(options.kubectl.binary)
    # From here a stop signal is noted: one during start-up stops the server once it is up.
    with _Signals() as signals:
        kubectl = Kubectl(options.kubectl)
        authority = make_authority(options, kubectl)
        if options.scale_resources:  # a CRD that is not there, or cannot scale: exit 2 now
            scale_resource_kinds(kubectl, options.scale_resources)
        auditor = Auditor(options.audit)
        scheduler = Scheduler(kubectl, options.reconcile, options.policy, auditor)
        service = Service(
            kubectl,
            authority,
            auditor,
            options.max_runs,
            options.scale_resources,
            on_run=scheduler.metrics.observe_run,
            policy=options.policy,
        )
        access = AccessLog(make_app(service, scheduler))
        socket_map: SocketMap = {}
        _allow_files(options.max_connections + SPARE_FILES)
        threads = options.max_runs + options.max_reviews + SPARE_THREADS
        server = _listen(access, address, socket_map, threads, options.max_connections)
        server_log.info(
            "nsscale serve: listening on %s (%s; at most %d runs at once)",
            ", ".join(f"http://{a}" for a in _addresses(socket_map)),
            authority.describe(),
            options.max_runs,
        )
        if not address.loopback:
            log.warning(
                "serving plain HTTP beyond loopback: bearer tokens cross the network in clear; "
                "put TLS in front (an Ingress, a service mesh)"
            )
        scheduler.start()
        while not signals.received:
            wasyncore.loop(LOOP_TIMEOUT_S, True, socket_map, 1)
        server_log.info(
            "nsscale serve: %s: no new connections; finishing %d request(s) in flight",
            signals.received[0],
            access.in_flight,
        )
        scheduler.stop(signals.received[0])  # its round in flight rolls back meanwhile
        _drain(server, socket_map, service, access, signals)
        scheduler.join()  # then the leader Lease is released
    server_log.info("nsscale serve: stopped")
    return 0


def make_authority(options: ServeOptions, kubectl: Kubectl) -> Authority:
    if options.token_file is not None:
        return TokenFileAuthority(TokenFile(options.token_file))
    authority = KubernetesAuthority(kubectl, options.token_audiences, options.max_reviews)
    authority.check_rights()
    return authority


def _check_kubectl(binary: str) -> None:
    """At start-up, not at the first request: a server without kubectl serves nothing."""
    found = (
        os.path.isfile(binary) and os.access(binary, os.X_OK)
        if os.sep in binary
        else shutil.which(binary) is not None
    )
    if not found:
        raise KubectlNotFound(
            f"cannot run kubectl at {binary!r}: not found",
            f"install kubectl, or point nsscale at it with --kubectl PATH or ${KUBECTL_ENV}",
        )


def _allow_files(wanted: int) -> None:
    """Raise the soft limit of open files towards `wanted` (never past the hard limit): each
    connection is one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, ceiling), hard))


def _listen(
    app: AccessLog, address: Address, socket_map: SocketMap, threads: int, connections: int
) -> BaseWSGIServer | MultiSocketServer:
    try:
        server = create_server(
            app,
            map=socket_map,
            host=address.host,
            port=address.port,
            threads=threads,
            ident="nsscale",
            max_request_body_size=MAX_REQUEST_BYTES,
            connection_limit=connections,
            channel_timeout=REQUEST_WITHIN_S,
            cleanup_interval=CLEANUP_EVERY_S,
        )
    except OSError as exc:  # in use, not an address of this host, a name that does not resolve
        raise CannotListen(
            f"cannot listen on {address}: {exc.strerror or exc}",
            "choose another --listen address, or stop what listens there",
        ) from None
    for listener in _listeners(socket_map):  # before the loop runs: no connection yet
        listener.channel_class = JsonErrorChannel
    return server


def _listeners(socket_map: SocketMap) -> list[BaseWSGIServer]:
    return [d for d in socket_map.values() if isinstance(d, BaseWSGIServer)]


def _addresses(socket_map: SocketMap) -> list[str]:
    return [str(Address(*_host_port(d))) for d in _listeners(socket_map)]


def _host_port(server: BaseWSGIServer) -> tuple[str, int]:
    host, port = server.getsockname()
    return host, int(port)


def _drain(
    server: BaseWSGIServer | MultiSocketServer,
    socket_map: SocketMap,
    service: Service,
    access: AccessLog,
    signals: _Signals,
) -> None:
    """Refuse new connections and new requests, serve the loop until every request received
    has been answered, give the answers FLUSH_S to leave, then close everything: a client that
    does not read its answer does not keep the server."""
    service.stopping.set()
    for listener in _listeners(socket_map):
        listener.accepting = False
        wasyncore.dispatcher.close(listener)  # the socket only: the trigger wakes the loop
    for channel in _channels(socket_map):
        channel.stopping = True  # no request read from now on
        if not channel.requests:
            channel.will_close = True  # idle or half-sent: nothing to answer
    told = len(signals.received)
    while access.in_flight or any(c.requests for c in _channels(socket_map)):
        wasyncore.loop(LOOP_TIMEOUT_S, True, socket_map, 1)
        if len(signals.received) > told:
            told = len(signals.received)
            server_log.info(
                "nsscale serve: still finishing %d request(s): a run in flight is never cut "
                "short (it would leave its namespace half changed)",
                access.in_flight,
            )
    for channel in _channels(socket_map):
        channel.close_when_flushed = True
    deadline = time.monotonic() + FLUSH_S
    while _channels(socket_map) and time.monotonic() < deadline:
        wasyncore.loop(LOOP_TIMEOUT_S / 4, True, socket_map, 1)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
    wasyncore.close_all(socket_map)


def _channels(socket_map: SocketMap) -> list[JsonErrorChannel]:
    return [d for d in list(socket_map.values()) if isinstance(d, JsonErrorChannel)]


class _Signals:
    """SIGTERM and SIGINT noted (by name), not raised, while the server runs."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._previous: dict[signal.Signals, Any] = {}

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signal.Signals(signum).name)

    def __enter__(self) -> _Signals:
        self._previous = {s: signal.signal(s, self._note) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
