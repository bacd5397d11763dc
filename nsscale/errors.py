"""Every error nsscale raises, each carrying the exit code the CLI ends with.

    NsscaleError (1)                    the operation failed; the namespace is as it was
    ├── UsageError (2)                  bad input: nothing was attempted
    │   ├── InvalidNamespace            not an RFC 1123 label
    │   ├── NamespaceNotFound           the namespace does not exist
    │   ├── ProtectedNamespace          a namespace nsscale never acts on
    │   ├── KubectlNotFound             no kubectl binary where we looked, or not a program
    │   ├── NoScaleResource             --scale-resource names no CRD with a scale subresource
    │   ├── KubeconfigError             no such kubeconfig file, or no such context in it
    │   └── TokenFileError              serve's --token-file cannot be read, or a line is wrong
    ├── KubectlFailure (1)              kubectl failed: what every kubectl caller catches
    │   ├── KubectlError                kubectl exited non-zero or ran over its timeout
    │   │   (kind: ErrorKind says which: not_found, forbidden, conflict, timeout, ...)
    │   └── KubectlOutputError          kubectl exited 0 but printed something we cannot read
    ├── LockHeld (1)                    another run holds the namespace (its in-cluster mark)
    ├── LockForbidden (1)               the caller may not create or delete the mark's Lease
    ├── MarkLost (1)                    this run's mark was taken over or deleted
    ├── PreflightFailed (1)             the caller may not make a write the plan needs
    ├── OwnersUnreadable (1)            --suspend-gitops could not read an owner to suspend
    ├── CannotListen (1)                serve's --listen address cannot be bound
    ├── InvalidRule (1)                 a grace period or downtime replicas annotation unread
    ├── ReadsCancelled (1)              the run was stopped before its first reads were done
    └── AuditError (1)                  an audit sink failed (a run only warns, see audit/)

Exit 3 (partly changed) is never an exception: it is read off the result of a run. A signal is
not one either: it is a KeyboardInterrupt (engine/interrupts.py), exit 129, 130 or 143.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    SUCCESS = 0
    FAILED = 1  # failed, and the namespace is as it was
    USAGE = 2
    PARTIAL = 3  # the namespace is left partly changed: a person must look
    NOT_READY = 4  # the change was made, but not every workload was ready in time (--wait)
    INTERRUPTED = 130  # SIGINT: 128 + 2, as shells report it
    TERMINATED = 143  # SIGTERM: 128 + 15
    HUNG_UP = 129  # SIGHUP (a dropped SSH session): 128 + 1


class NsscaleError(Exception):
    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # what the command knew of its work when this stopped it, for its `-o json` document
        self.report: dict[str, Any] = {}

    def __str__(self) -> str:
        return self.message


class UsageError(NsscaleError):
    exit_code = ExitCode.USAGE


class InvalidNamespace(UsageError):
    pass


class NamespaceNotFound(UsageError):
    pass


class ProtectedNamespace(UsageError):
    pass


class KubectlNotFound(UsageError):
    pass


class NoScaleResource(UsageError):
    """`--scale-resource RESOURCE.GROUP` names no custom resource nsscale can scale."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(
            f"--scale-resource {name}: {why}",
            "name a CustomResourceDefinition with a scale subresource: kubectl get crd",
        )


class TokenFileError(UsageError):
    """The token file cannot be read, or a line of it is not a token and its globs."""


class KubeconfigError(UsageError):
    """The kubeconfig file, or the context asked for in it, does not exist: kubectl reached no
    cluster. Carries the context or the file at fault, and kubectl's stderr when it said so."""

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        context: str | None = None,
        kubeconfig: str | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.context = context
        self.kubeconfig = kubeconfig
        self.stderr = stderr


# kubectl's words for a --context its kubeconfig lacks (they depend on the command), and for a
# --kubeconfig it cannot load. Client-side lines: a server's own errors start "Error from server".
_MISSING_CONTEXT = re.compile(
    r'^(?:error: )?context "(?P<quoted>[^"]*)" does not exist$'
    r"|context was not found for specified context: (?P<bare>\S+)",
    re.MULTILINE,
)
_MISSING_FILE = re.compile(r"^error: stat (?P<path>.+): no such file or directory$", re.MULTILINE)
_UNLOADABLE_FILE = re.compile(
    r'^error: error loading config file "(?P<path>[^"]+)": (?P<why>.+)$', re.MULTILINE
)


KUBECONFIG_HINT = (
    "check the --kubeconfig path, or leave it out to use $KUBECONFIG or ~/.kube/config"
)


def kubeconfig_error(stderr: str, kubeconfig: str | None) -> KubeconfigError | None:
    """The KubeconfigError kubectl's stderr reports (no such context, no such or no readable
    --kubeconfig file), or None when the failure is another one."""
    if match := _MISSING_CONTEXT.search(stderr):
        context = match.group("quoted") or match.group("bare")
        where, listing = "", "kubectl config get-contexts"
        if kubeconfig:
            where, listing = f" {kubeconfig}", f"{listing} --kubeconfig={kubeconfig}"
        return KubeconfigError(
            f'context "{context}" is not in the kubeconfig{where}',
            f"pick one that is: {listing}",
            context=context,
            kubeconfig=kubeconfig,
            stderr=stderr,
        )
    missing = _MISSING_FILE.search(stderr)
    if kubeconfig and missing and missing.group("path") == kubeconfig:
        return KubeconfigError(
            f"kubeconfig {kubeconfig} does not exist",
            KUBECONFIG_HINT,
            kubeconfig=kubeconfig,
            stderr=stderr,
        )
    if match := _UNLOADABLE_FILE.search(stderr):
        path = match.group("path")
        return KubeconfigError(
            f"cannot load kubeconfig {path}: {match.group('why')}",
            f"check that it is a kubeconfig: kubectl config view --kubeconfig={path}",
            kubeconfig=path,
            stderr=stderr,
        )
    return None


class ErrorKind(enum.StrEnum):
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"  # a precondition failed: somebody changed the object meanwhile
    INVALID = "invalid"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    SERVER_ERROR = "server_error"  # 5xx and 429: worth another try
    OTHER = "other"

    @property
    def transient(self) -> bool:
        return self in {ErrorKind.TIMEOUT, ErrorKind.UNREACHABLE, ErrorKind.SERVER_ERROR}

    @property
    def answered(self) -> bool:
        """The server answered, so a write it refused is not done and never will be (a
        timeout, a lost connection or an unreadable failure leave the write in doubt)."""
        return self not in {ErrorKind.TIMEOUT, ErrorKind.UNREACHABLE, ErrorKind.OTHER}


# Classified by the stable parts of kubectl's messages (they differ between minor versions).
_REASON = re.compile(r"Error from server \((?P<reason>[A-Za-z]+)\)")
_BY_REASON = {
    "NotFound": ErrorKind.NOT_FOUND,
    "Forbidden": ErrorKind.FORBIDDEN,
    "Conflict": ErrorKind.CONFLICT,
    "AlreadyExists": ErrorKind.CONFLICT,
    "Invalid": ErrorKind.INVALID,
    "BadRequest": ErrorKind.INVALID,
    "InternalError": ErrorKind.SERVER_ERROR,
    "ServiceUnavailable": ErrorKind.SERVER_ERROR,
    "TooManyRequests": ErrorKind.SERVER_ERROR,
    "Timeout": ErrorKind.TIMEOUT,
}
_BY_TEXT = (
    ("Expected replicas to be", ErrorKind.CONFLICT),
    ("Unauthorized", ErrorKind.UNAUTHORIZED),
    ("was refused", ErrorKind.UNREACHABLE),
    ("Unable to connect", ErrorKind.UNREACHABLE),
    # kubectl's own --request-timeout deadline, when it falls before the server's 504 (or while
    # reading its body: "Client.Timeout or context cancellation while reading body")
    ("context deadline exceeded", ErrorKind.TIMEOUT),
    ("Client.Timeout", ErrorKind.TIMEOUT),
    ("no such host", ErrorKind.UNREACHABLE),
    ("connection reset", ErrorKind.UNREACHABLE),
    ("EOF", ErrorKind.UNREACHABLE),
    ("is invalid:", ErrorKind.INVALID),
    ("not found", ErrorKind.NOT_FOUND),
)


def classify(stderr: str) -> ErrorKind:
    """The kind of a kubectl failure, read off its stderr."""
    match = _REASON.search(stderr)
    if match:
        return _BY_REASON.get(match.group("reason"), ErrorKind.SERVER_ERROR)
    for needle, kind in _BY_TEXT:
        if needle in stderr:
            return kind
    return ErrorKind.OTHER


# client-go's log lines and the server's warnings, around kubectl's own messages
_KLOG = re.compile(r"[IWEF]\d{4} |Warning: ")


def error_lines(stderr: str) -> list[str]:
    """kubectl's own error lines: one per object that failed, in the order of the objects."""
    return [line for line in stderr.splitlines() if line.strip() and not _KLOG.match(line)]


def last_line(text: str) -> str:
    """kubectl puts the message that matters last, after any klog noise."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


class KubectlFailure(NsscaleError):
    """kubectl failed, in either way below: what a caller of kubectl catches. Carries the
    command, and what kubectl said on stderr ("" when it printed unreadable output)."""

    argv: tuple[str, ...]
    kind: ErrorKind = ErrorKind.OTHER  # an unreadable output is no failure the server named
    stderr: str = ""

    @property
    def killed(self) -> bool:
        """kubectl ran over its timeout and was killed: its last requests may be in flight."""
        return False


class KubectlError(KubectlFailure):
    """kubectl failed. Carries what a person needs to see why."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stderr: str,
        duration_s: float,
        kind: ErrorKind | None = None,
        message: str | None = None,
        stdout: str = "",
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout  # what kubectl printed for the objects it did handle
        self.duration_s = duration_s
        self.kind = kind or classify(stderr)
        text = message or last_line(stderr) or f"kubectl exited {returncode}"
        super().__init__(text, _HINTS.get(self.kind, ""))

    @property
    def killed(self) -> bool:
        return self.returncode is None


class KubectlOutputError(KubectlFailure):
    """kubectl succeeded but its output is not what we asked for."""

    def __init__(self, argv: Sequence[str], reason: str, output: str) -> None:
        self.argv = tuple(argv)
        self.output = output
        super().__init__(
            f"could not read the output of `{' '.join(argv[:3])} ...`: {reason}",
            "check that --kubectl points at a real kubectl",
        )


_HINTS = {
    ErrorKind.FORBIDDEN: "ask for that permission in this namespace, or use a context that has it",
    ErrorKind.UNAUTHORIZED: "log in again or check the credentials of the kubectl context",
    ErrorKind.UNREACHABLE: "check the cluster answers for this context: kubectl cluster-info",
    ErrorKind.TIMEOUT: "raise --timeout or check the cluster's health",
}


class AuditError(NsscaleError):
    """An audit sink could not write or read events. Carries which sink, and AWS's error code."""

    def __init__(self, message: str, hint: str = "", *, sink: str, code: str = "") -> None:
        super().__init__(message, hint)
        self.sink = sink  # "file /path/audit.jsonl", "dynamodb table nsscale-audit"
        self.code = code  # botocore's error code or exception name; "" for a file


class LockHeld(NsscaleError):
    """Another run holds the namespace, or an interrupted run left its mark."""


class LockForbidden(NsscaleError):
    """The caller may not create or delete Leases in the namespace."""


class MarkLost(NsscaleError):
    """The mark this run holds was taken over or deleted by someone else."""


class PreflightFailed(NsscaleError):
    """The caller may not make a write the plan needs: nothing was changed."""


class OwnersUnreadable(NsscaleError):
    """--suspend-gitops could not read an owner it must suspend: nothing changed."""


class ReadsCancelled(NsscaleError):
    """A read the run began with was not waited for: the run was stopped before its end."""


class InvalidRule(NsscaleError):
    """An annotation of reconcile's rules (nsscale/grace-period, nsscale/downtime-replicas)
    that cannot be read: that namespace or workload is left alone."""


class CannotListen(NsscaleError):
    """The address of --listen cannot be bound (in use, not this host's)."""
