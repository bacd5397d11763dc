"""The process that holds a mark, told precisely enough to know, on the same machine, that it
no longer exists: the host's name, the kernel's boot id (/proc/sys/kernel/random/boot_id), the
pid namespace (pids are only comparable inside one), the pid, and the process's start time (a
pid reused by another process has another start time).

A mark whose holder is known gone (same host, same boot, same pid namespace, and that pid is no
process, a zombie, or another process) is over at once: nobody need wait for it to go stale.
Anything less certain (no record, another host or boot, /proc unreadable) says nothing: the
mark is judged by its renewals, as ever.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Holder:
    host: str
    boot_id: str
    pid_namespace: str
    pid: int
    started: int  # clock ticks after boot (/proc/PID/stat, field 22)

    def encode(self) -> str:
        """As a Lease annotation keeps it: `host boot-id pid-namespace pid started`."""
        return f"{self.host} {self.boot_id} {self.pid_namespace} {self.pid} {self.started}"

    @classmethod
    def decode(cls, text: str) -> Holder | None:
        """The holder an annotation names; None when it cannot be read."""
        try:
            host, boot_id, pid_namespace, pid, started = text.split()
            return cls(host, boot_id, pid_namespace, int(pid), int(started))
        except ValueError:
            return None

    @classmethod
    def current(cls, proc: Path = PROC) -> Holder | None:
        """This process; None where /proc does not tell (not Linux, /proc not mounted)."""
        try:
            boot_id = (proc / "sys/kernel/random/boot_id").read_text().strip()
            pid_namespace = os.readlink(proc / "self/ns/pid")
            pid = os.getpid()
            started = _start_time(proc, pid)
        except OSError:
            return None
        if started is None:
            return None
        return cls(socket.gethostname(), boot_id, pid_namespace, pid, started)

    def gone(self, here: Holder | None, proc: Path = PROC) -> bool:
        """This holder surely no longer exists, as seen from `here` (this process)."""
        if here is None or (self.host, self.boot_id, self.pid_namespace) != (
            here.host,
            here.boot_id,
            here.pid_namespace,
        ):
            return False
        try:
            return _start_time(proc, self.pid) != self.started
        except FileNotFoundError:  # no such process
            return True
        except OSError:
            return False


def _start_time(proc: Path, pid: int) -> int | None:
    """When process `pid` started, in clock ticks after boot; None for a zombie or a dead
    process not yet reaped (it holds nothing and renews nothing)."""
    stat = (proc / str(pid) / "stat").read_text()
    # the command name, in parentheses, may hold spaces and parentheses: read after the last
    fields = stat[stat.rindex(")") + 2 :].split()
    state, started = fields[0], fields[19]
    return None if state in ("Z", "X", "x") else int(started)


@cache
def this_process() -> Holder | None:
    """This process, as a mark it takes records it (read once)."""
    return Holder.current()
