"""`command`: a Typer command made of a list of parameters and a body, inside the one error
boundary of the command line (the only place that turns an error or a signal into an exit).
Light to import: rich is loaded only to say what went wrong."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer

# Typer (0.22 on) carries its own copy of click: its errors are these, not click's.
from typer._click.exceptions import ClickException, UsageError

from nsscale.commands.options import OUTPUT, OutputFormat, Param, Parsed
from nsscale.errors import NsscaleError

Body = Callable[[Parsed], int | None]  # a command's work; its exit code (None: 0)
Known = Callable[[Parsed], dict[str, Any]]  # what a command knows of its work, for a failure


def command(
    params: Iterable[Param[Any]], body: Body, doc: str, known: Known | None = None
) -> Callable[..., None]:
    """A callback for `app.command(name)`: Typer reads its parameters from `__signature__`
    (inspect.signature) and its help from `__doc__`; it hands what Click parsed to `body`, and
    ends with the exit code `body` returns. `known`: what the -o json document of a failure
    says of the command (an error's own `report` says more)."""

    def _known(parsed: Parsed) -> dict[str, Any]:
        return known(parsed) if known else {}

    def callback(**values: Any) -> None:
        parsed = Parsed(values)
        try:
            code = body(parsed)
        except NsscaleError as err:
            code = _failed(err, parsed[OUTPUT], err.report or _known(parsed))
        except KeyboardInterrupt as exc:  # a signal while nothing can have changed
            code = _interrupted(exc, parsed[OUTPUT], _known(parsed))
        if code:
            raise typer.Exit(code)

    signature = inspect.Signature([p.parameter() for p in params])  # refuses a name said twice
    callback.__signature__ = signature  # type: ignore[attr-defined]  # mypy knows no such attribute
    callback.__doc__ = doc
    return callback


def run_app(app: typer.Typer, prog_name: str | None, complete_var: str) -> int:
    """The app on sys.argv, and its exit code. Not click's standalone mode, so that a usage
    error comes here, to be told in JSON too when the line asks for -o json."""
    try:
        code = app(prog_name=prog_name, complete_var=complete_var, standalone_mode=False)
    except UsageError as err:
        return usage_failed(err, sys.argv[1:])
    except ClickException as err:
        err.show()
        return err.exit_code
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


def usage_failed(err: UsageError, args: Sequence[str]) -> int:
    """A command line click could not parse: its usage text on stderr, as click shows it; and
    when the line asks for -o json, one JSON document on stdout, as every other failure."""
    err.show()
    if _asks_json(args):
        from nsscale.commands.output import print_json

        message = err.format_message()
        print_json({"success": False, "exit_code": err.exit_code, "errors": [message]})
    return err.exit_code


def _asks_json(args: Sequence[str]) -> bool:
    """-o json, -ojson, --output json or --output=json among the options (before `--`)."""
    for option, value in zip(args, [*args[1:], ""], strict=True):
        if option == "--":
            return False
        if option in ("-ojson", "--output=json"):
            return True
        if option in ("-o", "--output") and value == "json":
            return True
    return False


def _failed(err: NsscaleError, output: OutputFormat, document: dict[str, Any]) -> int:
    """One actionable message on stderr; with -o json, one JSON document on stdout all the
    same (`document`: what is known of the command)."""
    from nsscale.commands.output import print_json, say_error  # rich: only on the way out

    say_error(err)
    if output is OutputFormat.JSON:
        # a failure, whatever a report of no namespace at all says (all of none succeeded)
        failed = {"success": False, "exit_code": int(err.exit_code)}
        print_json({"success": False, "errors": [err.message]} | document | failed)
    return err.exit_code


def _interrupted(exc: KeyboardInterrupt, output: OutputFormat, document: dict[str, Any]) -> int:
    from nsscale.commands.output import print_json, say
    from nsscale.engine.interrupts import signal_name
    from nsscale.engine.result import SIGNAL_EXIT

    name = signal_name(exc)
    say("interrupted: nothing was changed")
    if output is OutputFormat.JSON:
        message = f"interrupted by {name}"
        document = {"success": False, **document, "errors": [message]}
        print_json(document | {"exit_code": int(SIGNAL_EXIT[name])})
    return SIGNAL_EXIT[name]
