"""Who owns a run: the process driving it (`host:pid:start:space`), and whether it still lives.

A process on this host, boot and pid namespace is checked by its pid and start time (a reused
pid or a zombie is dead); any other only by its heartbeat."""

from __future__ import annotations

import os
import socket

STALE_HEARTBEAT_S = 120.0


def process_owner() -> str:
    """`host:pid:start:space` for this process: `start` tells a reused pid from the original,
    `space` (boot id and pid namespace) tells whether a pid can be checked from here at all
    (two containers may share a hostname but not their pids)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}:{_PID_SPACE}"


def _pid_space() -> str:
    """This boot and pid namespace, as `bootid.nsinode` ("?" where /proc does not say)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip().replace("-", "")[:12]
        return f"{boot}.{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return "?"


_PID_SPACE = _pid_space()


def _process_start(pid: int) -> str:
    """The process's start time since boot, in clock ticks ("Z": a zombie, "?": unknown)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return "?"
    if fields and fields[0] == "Z":  # killed, not yet reaped by its parent: dead
        return "Z"
    return fields[19] if len(fields) > 19 else "?"


def local_owner(owner: str) -> bool:
    """Whether an owner's pid can be checked from this process (same host, boot, namespace)."""
    host, _, _, space = [*owner.split(":"), "", "", ""][:4]
    return host == socket.gethostname() and (not space or space == _PID_SPACE)


def owner_alive(owner: str | None, heartbeat_at: float | None, now: float) -> bool:
    """Whether the process recorded as running a run still exists (or still beats)."""
    if not owner:
        return False
    pid_text, start = [*owner.split(":"), "", ""][1:3]
    if not local_owner(owner):
        # another machine, boot or pid namespace: its pids mean nothing here
        return heartbeat_at is not None and now - heartbeat_at < STALE_HEARTBEAT_S
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        # another user's process with that pid: alive only if it is the same process, and
        # where /proc hides it (hidepid), only its heartbeat can tell
        if _process_start(pid) == "?":
            return heartbeat_at is not None and now - heartbeat_at < STALE_HEARTBEAT_S
    current = _process_start(pid)
    if current == "Z":
        return False
    return start == "?" or current == start
