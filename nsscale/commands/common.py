"""What the commands share: kubectl's connection, the output and the logs (`Common`), the
namespaces a command names (`Scope`), where its run is recorded. Light to import: the error
boundary reads them before the command's own module is loaded."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsscale.commands.options import (
    AUDIT_FILE,
    AUDIT_REQUIRED,
    AUDIT_TABLE,
    CONTEXT,
    KUBECONFIG,
    KUBECTL,
    LOG_FILE,
    NAMESPACE,
    NAMESPACE_FLAG,
    NAMESPACE_SELECTOR,
    NAMESPACES,
    OUTPUT,
    TIMEOUT,
    VERBOSE,
    OutputFormat,
    Parsed,
)
from nsscale.defaults import DEFAULT_TIMEOUT_S
from nsscale.engine.options import AuditOptions
from nsscale.engine.plan import check_namespace
from nsscale.errors import UsageError
from nsscale.kubectl import Kubectl, KubectlConfig

log = logging.getLogger("nsscale")


@dataclass(frozen=True)
class Common:
    """kubectl's connection, the output and the logs: what every command that runs kubectl takes
    (`Common.of`)."""

    timeout: float = DEFAULT_TIMEOUT_S
    context: str | None = None
    kubeconfig: str | None = None
    kubectl: str | None = None
    output: OutputFormat = OutputFormat.TABLE
    verbose: int = 0
    log_file: Path | None = None

    @classmethod
    def of(cls, parsed: Parsed) -> Common:
        return cls(
            timeout=parsed[TIMEOUT],
            context=parsed[CONTEXT],
            kubeconfig=parsed[KUBECONFIG],
            kubectl=parsed[KUBECTL],
            output=parsed[OUTPUT],
            verbose=parsed[VERBOSE],
            log_file=parsed[LOG_FILE],
        )

    def kubectl_config(self) -> KubectlConfig:
        # --kubectl, else $NSSCALE_KUBECTL (both through the option's envvar), else PATH's
        return KubectlConfig.resolve(self.kubectl, self.context, self.kubeconfig, self.timeout)

    def make_kubectl(self) -> Kubectl:
        return Kubectl(self.kubectl_config())

    def setup_logging(self, run_id: str | None = None) -> None:
        """The `nsscale` logger to stderr (-v, -vv) and to --log-file (each line with the run id);
        UsageError for a log file that cannot be written."""
        level = {0: logging.WARNING, 1: logging.INFO}.get(self.verbose, logging.DEBUG)
        for handler in [h for h in log.handlers if h.get_name() == _HANDLER_NAME]:
            log.removeHandler(handler)
            handler.close()
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(level)
        stream.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
        handlers: list[logging.Handler] = [stream]
        if self.log_file is not None:
            try:
                file_handler = logging.FileHandler(self.log_file, encoding="utf-8")
            except OSError as exc:
                raise UsageError(
                    f"cannot write the log file {str(self.log_file)!r}: {exc.strerror}",
                    "choose a writable --log-file path",
                ) from exc
            file_handler.setLevel(min(level, logging.INFO))
            run = f"run={run_id} " if run_id else ""  # stderr's lines stay as they were
            file_handler.setFormatter(
                logging.Formatter(f"%(asctime)s {run}[%(levelname)s] %(message)s")
            )
            handlers.append(file_handler)
        for handler in handlers:
            handler.set_name(_HANDLER_NAME)
            log.addHandler(handler)
        log.setLevel(min(h.level for h in handlers))


_HANDLER_NAME = "nsscale-cli"


def audit_options(parsed: Parsed) -> AuditOptions:
    return AuditOptions(
        table=parsed[AUDIT_TABLE], file=parsed[AUDIT_FILE], required=parsed[AUDIT_REQUIRED]
    )


@dataclass(frozen=True)
class Scope:
    """The namespaces a command names (as arguments, with -n/--namespace, or both; each once),
    and the selector that picks more."""

    named: tuple[str, ...]
    selector: str | None = None
    one: bool = False  # the command takes exactly one namespace (recover, history)

    @classmethod
    def of(cls, parsed: Parsed) -> Scope:
        one = NAMESPACES.name not in parsed.values
        given = [parsed[NAMESPACE]] if one else parsed[NAMESPACES] or []
        names = [n for n in (*given, *(parsed[NAMESPACE_FLAG] or ())) if n is not None]
        return cls(tuple(dict.fromkeys(names)), parsed[NAMESPACE_SELECTOR], one)

    @property
    def single(self) -> bool:
        """One namespace named and none selected: the one-namespace report, as ever."""
        return len(self.named) == 1 and self.selector is None

    def check(self) -> None:
        """UsageError for a bad name, for no namespace at all, or for several where the
        command takes one."""
        if self.one and not self.named:
            raise UsageError("no namespace: name one", "-n NAMESPACE is the same as naming it")
        if self.one and len(self.named) > 1:
            raise UsageError(
                f"one namespace at a time, not {', '.join(self.named)}",
                "name one namespace, or give one -n NAMESPACE",
            )
        if not self.named and self.selector is None:
            raise UsageError(
                "no namespace: name one or more, or pick them with --namespace-selector",
                "for example: nsscale down shop, or -n shop, or --namespace-selector team=web",
            )
        for name in self.named:
            check_namespace(name)

    def document(self) -> dict[str, Any]:
        """What is known of the command's namespaces, for a report of a failure."""
        if self.one:
            return {"namespace": self.named[0] if self.named else None}
        return {"namespace": self.named[0]} if self.single else {"namespaces": []}


def scope_document(parsed: Parsed) -> dict[str, Any]:
    """What a command over namespaces knows of them when it fails (for the error boundary)."""
    return Scope.of(parsed).document()
