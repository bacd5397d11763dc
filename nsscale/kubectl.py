"""The one place nsscale runs kubectl: argument lists only, a timeout on every call."""

from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsscale.defaults import DEFAULT_TIMEOUT_S, KUBECTL_ENV
from nsscale.errors import (
    KUBECONFIG_HINT,
    ErrorKind,
    KubeconfigError,
    KubectlError,
    KubectlFailure,
    KubectlNotFound,
    KubectlOutputError,
    kubeconfig_error,
)
from nsscale.kube.incluster import in_cluster_kubeconfig
from nsscale.kube.kubeconfig import kubeconfig_problem

log = logging.getLogger("nsscale")


Runner = Callable[..., "subprocess.CompletedProcess[Any]"]


class _Children:
    """The kubectl processes running, so that none outlives nsscale.

    Each kubectl runs in its own session (a terminal's Ctrl-C must not kill it mid-rollback),
    so it would go on after nsscale exits: a read still retrying when a signal ends the run
    before any change, or one nobody waits for any more. At exit every one still running is
    killed with its process group (credential plugins included), and none is started after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._closed = False

    def start(self, argv: Sequence[str], stdin: bool) -> subprocess.Popen[bytes]:
        with self._lock:  # never one started after end_all
            if self._closed:
                raise OSError(errno.ECANCELED, "nsscale is exiting")
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin else None,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._running.add(proc)
            return proc

    def done(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(proc)

    def end_all(self) -> None:
        with self._lock:
            self._closed = True
            running, self._running = list(self._running), set()
        for proc in running:
            kill(proc)


CHILDREN = _Children()
atexit.register(CHILDREN.end_all)
_POPEN = subprocess.Popen  # the real one: only its children have a process group of their own


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill a kubectl and its process group (it leads its own session)."""
    try:
        if type(proc) is _POPEN:
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # a test's fake process
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def run_kubectl(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float | None = None,
    **_: Any,
) -> subprocess.CompletedProcess[bytes]:
    """subprocess.run for kubectl (its own session, output captured), with each process known
    to CHILDREN while it runs, and killed with its group when the call ends early."""
    proc = CHILDREN.start(argv, stdin=input is not None)
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        kill(proc)
        stdout, stderr = proc.communicate()
        raise subprocess.TimeoutExpired(argv, exc.timeout, stdout, stderr) from None
    except BaseException:
        kill(proc)
        proc.wait()
        raise
    finally:
        CHILDREN.done(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


@dataclass(frozen=True)
class KubectlConfig:
    binary: str = "kubectl"
    context: str | None = None
    kubeconfig: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def resolve(
        cls,
        binary: str | None = None,
        context: str | None = None,
        kubeconfig: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> KubectlConfig:
        """--kubectl wins over $NSSCALE_KUBECTL, which wins over `kubectl` on PATH.
        KubeconfigError when the kubeconfig named is not a file: kubectl would say only
        "error: stat ...", and a missing file is bad input, said plainly."""
        if kubeconfig and not Path(kubeconfig).is_file():
            what = "is not a file" if Path(kubeconfig).exists() else "does not exist"
            raise KubeconfigError(
                f"kubeconfig {kubeconfig} {what}", KUBECONFIG_HINT, kubeconfig=kubeconfig
            )
        chosen = binary or os.environ.get(KUBECTL_ENV) or "kubectl"
        return cls(chosen, context, kubeconfig or in_cluster_kubeconfig(), timeout_s)


@dataclass(frozen=True)
class KubectlResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float


@dataclass
class Kubectl:
    """Runs kubectl with the user's context and kubeconfig; raises KubectlError on failure."""

    config: KubectlConfig = field(default_factory=KubectlConfig)
    runner: Runner = run_kubectl
    clock: Callable[[], float] = time.monotonic

    def argv(self, args: Sequence[str]) -> list[str]:
        argv = [self.config.binary, *args]
        if self.config.context:
            argv.append(f"--context={self.config.context}")
        if self.config.kubeconfig:
            argv.append(f"--kubeconfig={self.config.kubeconfig}")
        # Bounds each HTTP request; the process timeout in run() bounds the whole call.
        argv.append(f"--request-timeout={_seconds(self.config.timeout_s)}")
        return argv

    def run(
        self, args: Sequence[str], stdin: str | None = None, *, requests: int = 1
    ) -> KubectlResult:
        """Run kubectl. `requests`: how many API requests the call makes, one after another
        (`replace -f -` of a List: one PUT per object); --timeout bounds each of them, so the
        process is killed after timeout x requests."""
        argv = self.argv(args)
        requests = max(requests, 1)
        timeout = self.config.timeout_s * requests
        log.debug("kubectl: %s", shlex.join(argv))
        started = self.clock()
        try:
            # A new session keeps a terminal's Ctrl-C from killing kubectl mid-rollback;
            # the runner kills the child itself on timeout or on any exception. Bytes, not
            # text: stdout must be UTF-8 (below), stderr is only read for messages.
            proc = self.runner(
                argv,
                input=None if stdin is None else stdin.encode("utf-8"),
                capture_output=True,
                timeout=timeout,
                check=False,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            duration = self.clock() - started
            log.debug("kubectl timed out after %.2fs", duration)
            stderr = _text(exc.stderr)
            raise KubectlError(
                argv,
                None,
                stderr,
                duration,
                kind=ErrorKind.TIMEOUT,
                message=_timeout_message(self.config.timeout_s, requests),
            ) from exc
        except OSError as exc:  # missing, not executable, not a program (ENOEXEC), ...
            if exc.errno == errno.ECANCELED:  # no new kubectl once nsscale exits
                raise KubectlError(argv, None, "", 0.0, message=str(exc)) from exc
            raise KubectlNotFound(
                f"cannot run kubectl at {self.config.binary!r}: {exc.strerror or exc}",
                f"install kubectl, or point nsscale at it with --kubectl PATH or ${KUBECTL_ENV}",
            ) from exc
        duration = self.clock() - started
        log.debug("kubectl exited %d in %.3fs", proc.returncode, duration)
        stderr = _text(proc.stderr)
        if proc.returncode != 0:
            # No such kubeconfig or context: bad input, kubectl never reached a cluster.
            if (problem := kubeconfig_error(stderr, self.config.kubeconfig)) is not None:
                raise problem
            if _FALLBACK_SERVER in stderr and (problem := self._kubeconfig_problem()):
                raise problem
            raise KubectlError(argv, proc.returncode, stderr, duration, stdout=_text(proc.stdout))
        try:
            # Never read with replacement characters: nsscale writes back what it read, and a
            # U+FFFD in an annotation or a pod template would change the object.
            stdout = _utf8(proc.stdout)
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8 ({exc.reason} at byte {exc.start})"
            raise KubectlOutputError(argv, reason, _text(proc.stdout)[:200]) from exc
        return KubectlResult(tuple(argv), proc.returncode, stdout, stderr, duration)

    def _kubeconfig_problem(self) -> KubeconfigError | None:
        """kubectl found no cluster to talk to: why, if its kubeconfig says (see kubeconfig.py)."""

        def view() -> Any:
            try:
                return self.json(["config", "view"])
            except KubectlFailure:
                return None

        return kubeconfig_problem(self.config.kubeconfig, self.config.context, view)

    def json(self, args: Sequence[str], stdin: str | None = None, *, requests: int = 1) -> Any:
        """Run with `-o json` and parse stdout; KubectlOutputError if it is not one JSON object."""
        return _one(self.argv(args), self.json_documents(args, stdin, requests=requests))

    def get_raw(self, path: str) -> Any:
        """`kubectl get --raw PATH`, parsed: the server's JSON, which kubectl passes through
        without decoding and printing it again."""
        result = self.run(["get", "--raw", path])
        return _one(result.argv, _documents(result))

    def json_documents(
        self, args: Sequence[str], stdin: str | None = None, *, requests: int = 1
    ) -> list[Any]:
        """Run with `-o json` and parse every JSON object printed, one after another.

        `kubectl replace -f - -o json` with several objects prints one document per object.
        """
        return _documents(self.run([*args, "-o", "json"], stdin, requests=requests))


# Where kubectl goes when its kubeconfig names no server (or there is none).
_FALLBACK_SERVER = "localhost:8080"


def _documents(result: KubectlResult) -> list[Any]:
    try:
        documents = parse_documents(result.stdout)
    except ValueError as exc:
        raise KubectlOutputError(result.argv, str(exc), result.stdout) from exc
    if not documents:
        raise KubectlOutputError(result.argv, "no output", result.stdout)
    return documents


def _one(argv: Sequence[str], documents: list[Any]) -> Any:
    if len(documents) != 1:
        raise KubectlOutputError(argv, f"{len(documents)} documents", "")
    return documents[0]


def parse_documents(text: str) -> list[dict[str, Any]]:
    """The JSON objects in `text`, one after another; ValueError if anything else is there."""
    decoder = json.JSONDecoder()
    documents, position = [], 0
    while (position := _skip_space(text, position)) < len(text):
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg})") from exc
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        documents.append(document)
    return documents


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _timeout_message(timeout_s: float, requests: int) -> str:
    if requests == 1:
        return f"kubectl did not answer within {_seconds(timeout_s)} (--timeout)"
    return (
        f"kubectl did not answer within {_seconds(timeout_s * requests)} "
        f"(--timeout {_seconds(timeout_s)} per request, {requests} requests)"
    )


def _seconds(value: float) -> str:
    """As kubectl's --request-timeout reads it: "2s", "0.5s", "1000000s", never "1e+06s"."""
    return f"{value:.3f}".rstrip("0").rstrip(".") + "s"


def _utf8(value: bytes | str | None) -> str:
    """Strictly UTF-8 (a runner may hand back text already)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value or ""


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""
