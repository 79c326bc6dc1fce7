"""A preloaded parent that forks supervisors, so that they share its memory.

A supervisor forked from the CLI carries a whole private Python heap (about 9 MB PSS each); forked
from one long-lived parent that has imported everything and frozen its objects (``gc.freeze``), it
shares those pages with every sibling and costs about 2 MB. One zygote serves one RUSTAINER_ROOT;
the CLI starts it on demand, and it leaves after a while without requests. Supervisors are
independent processes in their own sessions: killing the zygote touches none of them.

Protocol: the CLI connects to ``$RUSTAINER_ROOT/zygote2.sock`` (only uid 0 is served), sends
``<container id>\\0<fingerprint>\\0<NAME=value>...``, shuts its side down and reads the supervisor's
report (``ok`` or ``<exit code>\\0<message>``) until EOF. The NAME=value items are the caller's
variables of START_ENV: a start reads them (the init to use, the container's TERM), and the
zygote's own environment is that of whichever CLI started it, long ago. The fingerprint is that of
the installed code (``fingerprint()``): a zygote whose own differs (an upgrade since it started)
answers ``stale`` and leaves, and the CLI starts a new one, so old code never serves a new CLI.
If no zygote can be had, the CLI forks the supervisor itself (spawn.py): slower and bigger, never
broken. (The ``2`` in the file names: a zygote of the first protocol, before the fingerprint, is
never asked; it leaves after its idle time.)

Every page a supervisor writes stays its own for the container's life, and Python writes every
object it touches (reference counts). So a supervisor does as little as it can: the whole start
(the state loaded, the configuration computed, the container started) runs in a short-lived helper
it forks, which hands it the container's PID 1 (as its own child), pty and ports (shim.start_in_helper:
the pages that work dirties die with the helper), signals are set through ``_signal`` (``signal``'s enums touch
much), and everything it imports later is preloaded here.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time

from rustainer.backend.errors import ZygoteUnavailable
from rustainer.backend.linux import signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

IDLE_TIMEOUT = 600.0  # seconds without a request before the zygote leaves
START_TIMEOUT = 10.0
REQUEST_LIMIT = 64 << 10
SIGCHLD = 17  # Linux's number, like the constants of backend/signals.py
# What a start reads from the environment (container/config.py: find_init, child_config's TERM;
# network/linger.py: how long the network outlives the container's end; util/rollback.py: the
# tests' fault seam).
START_ENV = ("RUSTAINER_TINI", "TERM", "RUSTAINER_NETWORK_LINGER", "RUSTAINER_FAULT", "RUSTAINER_FAULT_LOG")
DEFAULT_TERM = "xterm-256color"  # a detached container's TERM when its caller has none: the
# supervisor's terminal core is one
STALE = b"stale"
_lock_fd = -1  # the zygote's lock: closed first thing in every child, so that it never holds it


def paths(root: str) -> tuple[str, str, str]:
    return (os.path.join(root, "zygote2.sock"), os.path.join(root, "zygote2.lock"),
            os.path.join(root, "zygote2.pid"))


def start_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's variables that a start reads (those it has)."""
    return {name: environ[name] for name in START_ENV if name in environ}


def container_term(env: Mapping[str, str]) -> str:
    """A detached container's TERM: its caller's, as for a foreground run."""
    return env.get("TERM") or DEFAULT_TERM


def fingerprint() -> str:
    """The installed backend's files (paths, sizes, modification times; compiled caches aside):
    changes with any upgrade or reinstall. About 0.3 ms."""
    import zlib

    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # rustainer/backend
    entries = []
    folders = [top]
    while folders:
        with os.scandir(folders.pop()) as found:
            for entry in found:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append(entry.path)
                else:
                    st = entry.stat(follow_symlinks=False)
                    entries.append(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}")
    entries.sort()
    return f"{len(entries)}-{zlib.crc32(chr(10).join(entries).encode(errors='surrogateescape')):08x}"


# -- the CLI's side ---------------------------------------------------------------------------------
def request(root: str, container_id: str, env: Mapping[str, str]) -> bytes:
    """Ask the zygote (started if needed) to supervise the prepared container; the report. ``env``:
    the caller's START_ENV variables (``start_env(os.environ)``)."""
    message = b"\0".join([container_id.encode(), fingerprint().encode(),
                          *(os.fsencode(f"{k}={v}") for k, v in env.items() if k in START_ENV)])
    for _attempt in range(3):
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
                sock.sendall(message)
                sock.shutdown(socket.SHUT_WR)
            except OSError as err:
                raise ZygoteUnavailable(str(err)) from err
            # From here on a supervisor may exist: never fall back to a second one, whatever happens.
            try:
                while chunk := sock.recv(4096):
                    report += chunk
            except OSError:
                pass
        if report != STALE:
            return report
        # The zygote runs older code than is installed: it left (its lock released first), and
        # nothing was started. The next one starts from what is installed now.
    raise ZygoteUnavailable("the supervisor launcher keeps running other code than is installed")


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
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "rustainer.backend.supervisor.zygote", root],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True, cwd="/")
    # The zygote is this process's child until this process exits (the CLI does at once). A caller
    # that lives on (the dashboard) reaps it when it ends (idle, or stopped), so no zombie is left.
    threading.Thread(target=proc.wait, name="zygote-reaper", daemon=True).start()


def stop(root: str) -> None:
    """End a root's zygote (tests do this when they drop their root); supervisors stay."""
    pid = running_pid(root)
    if pid is not None:
        try:
            os.kill(pid, signals.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while running_pid(root) == pid and time.monotonic() < deadline:
            time.sleep(0.01)


def running_pid(root: str) -> int | None:
    """The zygote's pid if it runs: checked against its command line, never a reused pid."""
    from rustainer.backend.linux.procfs import cmdline

    try:
        with open(paths(root)[2]) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return None
    argv = cmdline(pid) or []
    return pid if b"rustainer.backend.supervisor.zygote" in argv and os.fsencode(root) in argv else None


# -- the zygote -----------------------------------------------------------------------------------------
def _preload() -> None:
    """Import everything a supervisor and a container's setup use, and warm the terminal core. (Of
    bridge networks only the modules: no netlink socket or libnftables context is made here, each
    supervisor makes its own.)"""
    import fcntl  # noqa: F401
    import json  # noqa: F401
    import pickle
    import struct  # noqa: F401
    import termios  # noqa: F401

    # A module a supervisor imports itself costs it its whole code privately: preload all of them.
    from rustainer.backend.cgroups import detect, systemd, v1, v2  # noqa: F401
    from rustainer.backend.container import cleanup, config, launch, liveness, logfile, state  # noqa: F401
    from rustainer.backend.linux import capabilities, namespaces, seccomp, syscalls  # noqa: F401
    from rustainer.backend.network import bridge, hosts, ipam, manager, nat, nft, portmap, rtnl, store, veth  # noqa: F401
    from rustainer.backend.process import child, relay  # noqa: F401
    from rustainer.backend.rootfs import apply, plan, safepath  # noqa: F401
    from rustainer.backend.supervisor import protocol, recording, shim  # noqa: F401
    from rustainer.backend.terminal import Terminal

    syscalls.clone_hooks()  # the start helper clones PID 1 through them (ctypes objects: made once, here)
    from rustainer.backend.util import jsonfile  # noqa: F401

    term = Terminal(80, 24)
    term.feed(b"\x1b[1;31mwarm\x1b[0m up\r\n" * 30)
    term.snapshot()
    term.repaint(include_history=True)
    # Walk the supervisor's own start path once on dummy data, so that the caches and interned
    # strings it creates live in the shared heap instead of being made anew in every supervisor.
    from rustainer.backend.container.state import ContainerState, StateStore, state_from_dict
    from rustainer.backend.spec import ContainerSpec
    from rustainer.backend.util.record import asdict

    dummy = state_from_dict(json.loads(json.dumps(asdict(ContainerState(
        id="0" * 64, name="warm-up", spec=ContainerSpec(name="warm-up", tty=True))))))
    warm = launch.Launch(StateStore("/nonexistent"), dummy)
    warm.child_config(term="xterm-256color")
    pickle.loads(pickle.dumps((dummy, None, 1, []), pickle.HIGHEST_PROTOCOL))  # as shim.start_in_helper
    protocol.Decoder(protocol.FROM_CLIENT).feed(protocol.hello(protocol.MODE_SNAPSHOT, 24, 80))


_ballast: list[object] = []  # the zygote's own, kept for its life (see _fill_pools)


def _fill_pools() -> list[object]:
    """Objects that fill the free blocks of the memory pools the preload left partly used, so that
    a supervisor's new objects go into pools of their own instead of into those gaps: each object
    put into a gap of a shared page copies that page (4 KB) for the supervisor's whole life."""
    ballast: list[object] = []
    for size, count in free_blocks().items():
        if size == 32:  # a float is 24 bytes
            ballast.extend(float(i) + 0.5 for i in range(count))
        elif size >= 48:  # bytes of n: 33 + n bytes
            ballast.extend(bytes(size - 33) for _ in range(count))
    return ballast


def free_blocks() -> dict[int, int]:
    """Block size -> free blocks in partly used pools, of Python's allocator (pymalloc serves 16 to
    512 bytes from 16 KB pools, partly used ones first). Only its debugging report says
    (``sys._debugmallocstats``, written to the C stderr); {} where it cannot be read."""
    free: dict[int, int] = {}
    try:
        import tempfile

        with tempfile.TemporaryFile() as tmp:
            saved = os.dup(2)
            try:
                os.dup2(tmp.fileno(), 2)
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                fields = line.split()  # class, size, pools, blocks in use, available blocks
                if len(fields) == 5 and all(f.isdigit() for f in fields):
                    free[int(fields[1])] = int(fields[4])
    except (OSError, AttributeError, ValueError):
        return {}
    return free


def serve(root: str) -> None:
    import fcntl
    import gc

    global _lock_fd
    sock_path, lock_path, pid_path = paths(root)
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another zygote serves this root
    _lock_fd = lock
    own = fingerprint()  # before the preload: code installed meanwhile makes this one stale
    from rustainer.backend.supervisor.shim import open_listener

    listener = open_listener(sock_path)
    with open(pid_path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pid_path + ".tmp", pid_path)
    _preload()
    gc.collect()
    global _ballast
    _ballast = _fill_pools()
    gc.freeze()  # the shared heap stays shared: the collector never writes to frozen objects
    signals.set_handler(SIGCHLD, signals.SIG_IGN)  # children reap themselves
    signals.set_handler(signals.SIGTERM, lambda *_: _leave(sock_path, pid_path))
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
        with conn:
            message = _read_request(conn)
            if message is None:
                continue
            if message[1] == own:
                _fork_supervisor(root, listener, conn, *message)
            else:
                _leave_stale(sock_path, pid_path, listener, conn)  # never returns
    _leave(sock_path, pid_path)


def _read_request(conn: socket.socket) -> tuple[str, str, dict[str, str]] | None:
    """(container id, fingerprint, START_ENV) of a request from root; None if it is none."""
    import struct

    uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
    if uid != 0:
        return None
    conn.settimeout(5)
    data = b""
    try:
        while len(data) <= REQUEST_LIMIT and (chunk := conn.recv(REQUEST_LIMIT)):
            data += chunk
    except OSError:
        return None
    fields = data.split(b"\0")
    if len(fields) < 2 or len(data) > REQUEST_LIMIT:
        return None
    cid = fields[0].decode(errors="replace")
    if not cid.isalnum():
        return None
    env = {}
    for item in fields[2:]:
        name, eq, value = os.fsdecode(item).partition("=")
        if eq and name in START_ENV:
            env[name] = value
    return cid, fields[1].decode(errors="replace"), env


def _leave_stale(sock_path: str, pid_path: str, listener: socket.socket, conn: socket.socket) -> None:
    """Other code is installed than this zygote runs: leave, telling the caller (and any caller
    already queued) to start a new one. The lock goes before the answer, so the new one gets it."""
    for path in (sock_path, pid_path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    os.close(_lock_fd)
    waiting = [conn]
    listener.setblocking(False)
    while True:
        try:
            waiting.append(listener.accept()[0])
        except OSError:
            break
    for client in waiting:
        try:
            if client is not conn:
                _read_request(client)
            client.sendall(STALE)
        except OSError:
            pass
        client.close()
    os._exit(0)


def _leave(sock_path: str, pid_path: str) -> None:
    for path in (sock_path, pid_path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    os._exit(0)


def _fork_supervisor(root: str, listener: socket.socket, conn: socket.socket, cid: str, _fingerprint: str,
                     env: dict[str, str]) -> None:
    if os.fork() != 0:
        return
    # The supervisor: its own session, default signal dispositions, then the usual supervision.
    try:
        os.close(_lock_fd)
        listener.close()
        os.setsid()
        signals.set_handler(SIGCHLD, signals.SIG_DFL)
        signals.set_handler(signals.SIGTERM, signals.SIG_DFL)
        conn.settimeout(None)
        _adopt(env)
        report = conn.detach()
        from rustainer.backend.supervisor.shim import become_supervisor

        become_supervisor(root, cid, env, report)
    finally:
        os._exit(0)


def _adopt(env: dict[str, str]) -> None:
    """The caller's START_ENV instead of the zygote's, in a supervisor (and so in its helper)."""
    for name in START_ENV:
        value = env.get(name)
        if os.environ.get(name) == value:
            continue
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


if __name__ == "__main__":
    serve(os.path.abspath(sys.argv[1]))
