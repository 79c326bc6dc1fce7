"""What the kernel tells about a process in /proc: the one place that reads and parses it.

Liveness checks compare a process's start time with a recorded one, so a pid the kernel has since
given to another process is never mistaken for the one that was recorded.
"""

from __future__ import annotations


def stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (index 0 is field 3, the state), or
    None if the process is gone. The name is skipped by its last ``)``: it may hold anything."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int | str) -> int | None:
    """Start time in clock ticks since boot (field 22)."""
    fields = stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None
    except (IndexError, ValueError):
        return None


def running(pid: int | str | None, start: int | None = None) -> bool:
    """Exists and is not a zombie (a zombie will never do anything again); with ``start``, also the
    same process that was recorded (not a reused pid)."""
    if pid is None:
        return False
    fields = stat_fields(pid)
    if fields is None or not fields or fields[0] in (b"Z", b"X"):
        return False
    return start is None or (len(fields) > 19 and fields[19] == str(start).encode())


def status(pid: int | str) -> dict[str, str]:
    """/proc/PID/status as a dict (empty if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return {}
    result = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        result[key] = value.strip()
    return result


def parent(pid: int | str) -> int | None:
    fields = stat_fields(pid)
    try:
        return int(fields[1]) if fields is not None else None
    except (IndexError, ValueError):
        return None


def cmdline(pid: int | str) -> list[bytes] | None:
    """The arguments (None if the process is gone; empty for a kernel thread or a zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data.rstrip(b"\0").split(b"\0") if data else []
