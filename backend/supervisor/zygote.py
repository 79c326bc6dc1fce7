"""A preloaded parent that forks supervisors, so that they share its memory.

A supervisor forked from the CLI carries a whole private Python heap (about 9 MB PSS each); forked
from one long-lived parent that has imported everything and frozen its objects (``gc.freeze``), it
shares those pages with every sibling and costs about 2 MB. One zygote serves one RUSTAINER_ROOT;
the CLI starts it on demand, and it leaves after a while without requests. Supervisors are
independent processes in their own sessions: killing the zygote touches none of them.

Protocol: the CLI connects to ``$RUSTAINER_ROOT/zygote.sock``, sends ``<container id>\\n`` and
reads the supervisor's report (``ok`` or ``<exit code>\\0<message>``) until EOF. If no zygote can
be had, the CLI forks the supervisor itself (spawn.py): slower and bigger, never broken.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time

IDLE_TIMEOUT = 600.0  # seconds without a request before the zygote leaves
START_TIMEOUT = 10.0


class ZygoteUnavailable(Exception):
    pass


def paths(root: str) -> tuple[str, str, str]:
    return (os.path.join(root, "zygote.sock"), os.path.join(root, "zygote.lock"),
            os.path.join(root, "zygote.pid"))


# -- the CLI's side ---------------------------------------------------------------------------------
def request(root: str, container_id: str) -> bytes:
    """Ask the zygote (started if needed) to supervise the prepared container; the report."""
    sock = _connect(root)
    if sock is None:
        _start(root)
        deadline = time.monotonic() + START_TIMEOUT
        while sock is None and time.monotonic() < deadline:
            time.sleep(0.01)
            sock = _connect(root)
        if sock is None:
            raise ZygoteUnavailable("the supervisor launcher did not start")
    report = b""
    with sock:
        try:
            sock.sendall(container_id.encode() + b"\n")
        except OSError as err:
            raise ZygoteUnavailable(str(err)) from err
        # From here on a supervisor may exist: never fall back to a second one, whatever happens.
        try:
            while chunk := sock.recv(4096):
                report += chunk
        except OSError:
            pass
    return report


def _connect(root: str) -> socket.socket | None:
    from rustainer.backend.supervisor.protocol import SocketPath

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with SocketPath(paths(root)[0]) as path:
            sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _start(root: str) -> None:
    import subprocess

    subprocess.Popen([sys.executable, "-m", "rustainer.backend.supervisor.zygote", root],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True, cwd="/")


def stop(root: str) -> None:
    """End a root's zygote (tests do this when they drop their root); supervisors stay."""
    pid = running_pid(root)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while running_pid(root) == pid and time.monotonic() < deadline:
            time.sleep(0.01)


def running_pid(root: str) -> int | None:
    """The zygote's pid if it runs: checked against its command line, never a reused pid."""
    try:
        with open(paths(root)[2]) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"rustainer.backend.supervisor.zygote" in argv and os.fsencode(root) in argv else None


# -- the zygote -----------------------------------------------------------------------------------------
def _preload() -> None:
    """Import everything a supervisor and a container's setup use, and warm the terminal core."""
    import fcntl  # noqa: F401
    import json  # noqa: F401
    import struct  # noqa: F401
    import termios  # noqa: F401

    from rustainer.backend import capabilities, child, runtime, seccomp, state  # noqa: F401
    from rustainer.backend.cgroups import detect, systemd, v1, v2  # noqa: F401
    from rustainer.backend.rootfs import apply, plan, safepath  # noqa: F401
    from rustainer.backend.supervisor import logfile, protocol, shim  # noqa: F401
    from rustainer.backend.terminal import Terminal

    term = Terminal(80, 24)
    term.feed(b"\x1b[1;31mwarm\x1b[0m up\r\n" * 30)
    term.snapshot()
    term.repaint(include_history=True)
    # Walk the supervisor's own start path once on dummy data, so that the caches and interned
    # strings it creates live in the shared heap instead of being made anew in every supervisor.
    from rustainer.backend.record import asdict
    from rustainer.backend.spec import ContainerSpec
    from rustainer.backend.state import ContainerState, StateStore, state_from_dict

    dummy = state_from_dict(json.loads(json.dumps(asdict(ContainerState(
        id="0" * 64, name="warm-up", spec=ContainerSpec(name="warm-up", tty=True))))))
    launch = runtime.Launch(StateStore("/nonexistent"), dummy)
    launch.child_config(term="xterm-256color")
    protocol.Decoder().feed(protocol.hello(protocol.MODE_SNAPSHOT, 24, 80))


def serve(root: str) -> None:
    import fcntl
    import gc

    sock_path, lock_path, pid_path = paths(root)
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another zygote serves this root
    from rustainer.backend.supervisor.shim import open_listener

    listener = open_listener(sock_path)
    with open(pid_path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pid_path + ".tmp", pid_path)
    _preload()
    gc.collect()
    gc.freeze()  # the shared heap stays shared: the collector never writes to frozen objects
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    signal.signal(signal.SIGTERM, lambda *_: _leave(sock_path, pid_path))
    last = time.monotonic()
    while time.monotonic() - last < IDLE_TIMEOUT:
        ready, _, _ = select.select([listener], [], [], IDLE_TIMEOUT)
        if not ready:
            continue
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        last = time.monotonic()
        _fork_supervisor(root, listener, conn)
        conn.close()
    _leave(sock_path, pid_path)


def _leave(sock_path: str, pid_path: str) -> None:
    for path in (sock_path, pid_path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    os._exit(0)


def _fork_supervisor(root: str, listener: socket.socket, conn: socket.socket) -> None:
    conn.settimeout(5)
    try:
        line = conn.recv(256)
    except OSError:
        return
    cid = line.decode(errors="replace").strip()
    if not cid.isalnum():
        return
    if os.fork() != 0:
        return
    # The supervisor: its own session, default signal dispositions, then the usual supervision.
    try:
        listener.close()
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        report = conn.detach()
        _become(root, cid, report)
    finally:
        os._exit(0)


def _become(root: str, cid: str, report_fd: int) -> None:
    from rustainer.backend.runtime import Launch, reopen_cgroup
    from rustainer.backend.state import StateStore
    from rustainer.backend.supervisor.shim import become_supervisor

    store = StateStore(root)
    try:
        state = store.load(cid)
        launch = Launch(store, state)
        launch.cgroup = reopen_cgroup(state)
        cfg = launch.child_config(term="xterm-256color")
    except BaseException as err:  # noqa: BLE001 - the CLI must hear about it
        os.write(report_fd, f"125\0supervisor failed: {err}".encode(errors="replace"))
        os._exit(0)
    become_supervisor(launch, cfg, report_fd)


if __name__ == "__main__":
    serve(os.path.abspath(sys.argv[1]))
