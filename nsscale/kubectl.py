"""The one place nsscale runs kubectl: argument lists only, a timeout on every call."""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
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
    KubectlNotFound,
    KubectlOutputError,
    kubeconfig_error,
)
from nsscale.kube.incluster import in_cluster_kubeconfig
from nsscale.kube.kubeconfig import kubeconfig_problem

log = logging.getLogger("nsscale")


Runner = Callable[..., "subprocess.CompletedProcess[Any]"]


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
    runner: Runner = subprocess.run
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
            # subprocess.run kills the child itself on timeout or on any exception. Bytes, not
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
        return kubeconfig_problem(self.config.kubeconfig, self.config.context)

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
