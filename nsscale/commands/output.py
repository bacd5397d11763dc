"""What a command prints: the result on stdout, everything else on stderr (two Rich consoles),
and a reader that went away."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.text import Text

from nsscale.engine.options import RunOptions
from nsscale.engine.waiting import Progress
from nsscale.errors import NsscaleError


class _Stream(Console):
    def on_broken_pipe(self) -> None:
        # Rich would exit 1; a gone reader is stdout_may_be_gone's to handle.
        raise BrokenPipeError


def console(
    *,
    stderr: bool,
    file: IO[str] | None = None,
    width: int | None = None,
    terminal: bool | None = None,
) -> Console:
    """Rich colours only a terminal and honours NO_COLOR; no highlighting of numbers in tables.
    Elsewhere (a pipe, a file, a CI log) a line is as long as it is: never wrapped, never cut.
    `file`, `width`, `terminal`: where and as what it draws, as a test wants it (else stdout or
    stderr, as they are)."""
    out = _Stream(stderr=stderr, file=file, width=width, force_terminal=terminal, highlight=False)
    out.soft_wrap = stderr or not out.is_terminal
    return out


@contextmanager
def stdout_may_be_gone() -> Iterator[None]:
    """A reader that went away (`nsscale down ns | head -1`, a dropped SSH session) never
    changes the run's exit code: what it would have read is dropped."""
    try:
        yield
    except OSError:  # BrokenPipeError, or EIO on a terminal that is gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())  # and at exit, Python's flush finds no pipe
        os.close(devnull)


def show(*renderables: RenderableType) -> None:
    """The result, for a person, on stdout."""
    with stdout_may_be_gone():
        out = console(stderr=False)
        for renderable in renderables:
            out.print(renderable)


def print_json(document: dict[str, Any]) -> None:
    """The result, for machines: one JSON document on stdout."""
    with stdout_may_be_gone():
        # Plain print: Rich must not wrap or colour a document meant for machines.
        out = console(stderr=False).file
        out.write(json.dumps(document, indent=2) + "\n")
        out.flush()


def say(text: str, style: str = "") -> None:
    with stdout_may_be_gone():  # stderr too, after a dropped SSH session
        console(stderr=True).print(Text(text, style))


def say_error(err: NsscaleError) -> None:
    say(f"error: {err.message}", "red")
    if err.hint:
        say(f"  {err.hint}")


@contextmanager
def wait_display(options: RunOptions) -> Iterator[Callable[[Progress], None]]:
    """--wait shown on stderr while it lasts (nothing without --wait)."""
    if not options.wait:
        yield lambda progress: None
        return
    from nsscale.commands.progress import WaitDisplay  # rich's Live: only for --wait

    with WaitDisplay(console(stderr=True)) as display:
        yield display.update
