"""``exec``: run one more command inside a running container, as if the container had started it.

Same namespaces (mnt, uts, ipc, net, cgroup from ``/proc/<pid1>/ns``; pid through the fork), same
cgroup (the parent adds the child before letting it go), same root (``/proc/<pid1>/root``, opened
before entering the mount namespace, then ``fchdir`` + ``chroot``), and the same capability set and
seccomp filter as the container's PID 1. The parent never keeps a foreign namespace: it switches
its PID namespace only for the fork, like ``launch.Launch.start``.

The child is the host's Python until it execs, inside the container's root: everything it uses is
imported here, at the top, before it chroots. Failures travel back as ``<code>\\0<message>`` over a
CLOEXEC pipe, as in ``child.py``.
"""

from __future__ import annotations

import os

from rustainer.backend.errors import CommandFailed, ContainerStateError, Interrupted, RustainerError
from rustainer.backend.linux import syscalls
from rustainer.backend.linux.capabilities import DEFAULT_CAPS, last_cap, mask, restrict_to
from rustainer.backend.linux.namespaces import fork_into_pid_namespace
from rustainer.backend.linux.seccomp import install_filter
from rustainer.backend.process.child import (
    describe_failure,
    exec_command,
    join_cgroup,
    open_console,
    report_and_exit,
)
from rustainer.backend.process.handshake import read_all
from rustainer.backend.util.rollback import fault

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    import socket

    from rustainer.backend.cgroups.base import CgroupManager
    from rustainer.backend.container.state import ContainerState, StateStore

# setns order: the mount namespace last but one (it hides nothing we still need: the fds are open),
# the cgroup namespace after the parent has moved us (its root is then the container's cgroup).
NAMESPACES = (("ipc", syscalls.CLONE_NEWIPC), ("uts", syscalls.CLONE_NEWUTS), ("net", syscalls.CLONE_NEWNET),
              ("mnt", syscalls.CLONE_NEWNS))



def container_env(state: ContainerState, tty: bool, extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """The environment ``run`` gave the container's command (plus TERM with a terminal)."""
    from rustainer.backend.container.config import DEFAULT_PATH

    spec = state.spec
    env = {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": spec.effective_hostname, "container": "rustainer"}
    if tty:
        env["TERM"] = os.environ.get("TERM", "xterm")
    env.update(dict(spec.env))
    env.update(dict(extra))
    return env


def exec_in(store: StateStore, ref: str, argv: list[str], *, interactive: bool = False, tty: bool = False,
            workdir: str | None = None, env: tuple[tuple[str, str], ...] = ()) -> int:
    """Run ``argv`` in the container ``ref`` with our stdio relayed; returns its exit status."""
    from rustainer.backend.container.config import require_root
    from rustainer.backend.container.lifecycle import manager_of, require_running

    require_root()
    if not argv:
        raise ContainerStateError("exec needs a COMMAND")
    state = require_running(store, ref, "exec in")
    assert state.pid is not None
    manager = manager_of(state)
    tty = tty and os.isatty(0)
    fds: list[int] = []
    try:
        try:
            for name, _flag in (*NAMESPACES, ("cgroup", 0), ("pid", 0)):
                fds.append(os.open(f"/proc/{state.pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
            root_fd = os.open(f"/proc/{state.pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fds.append(root_fd)
        except OSError as err:
            raise ContainerStateError(f"cannot enter container {state.name}: {err.strerror} (did it just stop?)") \
                from err
        # The pid may have been reused between the lookup and the opens: it must still be PID 1 of ours.
        if state.pid not in manager.pids():
            raise ContainerStateError(f"cannot exec in container {state.name}: it is not running", container=state.name)
        from rustainer.backend.container.config import open_join_files

        join_fds = open_join_files(manager)
        fds.extend(join_fds)
        cfg = _ExecConfig(
            ns_fds=tuple(zip(fds[:4], (flag for _n, flag in NAMESPACES), strict=True)), cgroup_ns=fds[4],
            root_fd=root_fd, argv=tuple(argv), env=container_env(state, tty, env),
            workdir=workdir or state.spec.directory or "/", tty=tty, caps=mask(DEFAULT_CAPS), last_cap=last_cap(), cgroup_fds=join_fds)
        return _run(cfg, fds[5], manager, interactive)
    finally:
        for fd in fds:
            os.close(fd)


class _ExecConfig:
    __slots__ = ("ns_fds", "cgroup_ns", "root_fd", "argv", "env", "workdir", "tty", "caps", "last_cap",
                 "console_fd", "cgroup_fds")

    def __init__(self, *, ns_fds: tuple[tuple[int, int], ...], cgroup_ns: int, root_fd: int,
                 argv: tuple[str, ...], env: dict[str, str], workdir: str, tty: bool, caps: int,
                 last_cap: int, cgroup_fds: tuple[int, ...] = ()) -> None:
        self.ns_fds, self.cgroup_ns, self.root_fd = ns_fds, cgroup_ns, root_fd
        self.argv, self.env, self.workdir, self.tty = argv, env, workdir, tty
        self.caps, self.last_cap = caps, last_cap
        self.console_fd = -1
        self.cgroup_fds = cgroup_fds  # the child writes "0" into these to join the cgroup by itself


def _run(cfg: _ExecConfig, pidns_fd: int, manager: CgroupManager, interactive: bool) -> int:
    import signal

    from rustainer.backend.process import relay

    console = child_end = None
    parent_ends: list[int] = []
    child_stdio: list[int] = []
    if cfg.tty:
        import socket

        console, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cfg.console_fd = child_end.fileno()
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        child_stdio = [null, null, null]
        to_close = [null]
    else:
        if interactive:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            parent_ends.append(in_w)
        else:
            in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        parent_ends += [out_r, err_r]
        child_stdio = [in_r, out_w, err_w]
        to_close = child_stdio
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    rep_r, rep_w = os.pipe2(os.O_CLOEXEC)
    # What a failure before the relay must close (the exec'd process is killed and reaped below):
    # an exec that fails at any step leaves no process in the container and no descriptor here.
    pending = [sync_w, rep_r]
    # Like run: a closed terminal or a polite kill must not leave the exec'd process behind.
    old = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGHUP, signal.SIGTERM)}
    pid = None
    try:
        def child() -> None:
            os.close(sync_w)
            os.close(rep_r)
            _child(cfg, child_stdio, sync_r, rep_w)

        try:
            fault("exec-fork")
            pid = fork_into_pid_namespace(child, pidns_fd)
        finally:
            os.close(sync_r)
            os.close(rep_w)
            for fd in to_close:
                os.close(fd)
            if child_end is not None:
                child_end.close()
        master = None
        failure: RustainerError | None = None
        try:
            try:
                if not cfg.cgroup_fds:
                    fault("exec-cgroup-join")
                    manager.add(pid)
                if console is not None:
                    fault("exec-console")
                    master = _receive_console(console)
                fault("exec-go")
                os.write(sync_w, b"1")
            except RustainerError as err:
                failure = err  # said below unless the child's own report says more
            except BrokenPipeError:
                pass  # the child's report (or its absence) below says what happened
            finally:
                pending.remove(sync_w)
                os.close(sync_w)
                if console is not None:
                    console.close()
            report = read_all(rep_r)
            pending.remove(rep_r)
            os.close(rep_r)
            if report:
                code, _, message = report.decode(errors="replace").partition("\0")
                raise CommandFailed(int(code) if code.isdigit() else 125, message)
            if failure is not None:
                raise failure
            if master is not None:
                relay.relay_pty(master)
            elif interactive:
                relay.relay_pipes(*parent_ends)
                parent_ends = []
            else:
                _relay_output(parent_ends[0], parent_ends[1])
                parent_ends = []
            status = _reap(pid)
            pid = None
        finally:
            if master is not None:
                os.close(master)
    finally:
        if pid is not None:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            _reap(pid)
        for fd in parent_ends + pending:
            try:
                os.close(fd)
            except OSError:
                pass
        if console is not None:
            console.close()  # idempotent; still open if the fork failed
        for sig, handler in old.items():
            signal.signal(sig, handler)
    exit_code = os.waitstatus_to_exitcode(status)
    return 128 - exit_code if exit_code < 0 else exit_code



def _raise_interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(signum, "the exec'd process was killed")


def _reap(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def _relay_output(out_r: int, err_r: int) -> None:
    """Without -i the command's stdin is /dev/null: only copy its output, never read ours."""
    import select

    from rustainer.backend.process.relay import _write_all

    outputs = {out_r: 1, err_r: 2}
    while outputs:
        try:
            ready, _, _ = select.select(list(outputs), [], [])
        except InterruptedError:
            continue
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                _write_all(outputs[fd], data)
            else:
                os.close(fd)
                del outputs[fd]


def _receive_console(sock: socket.socket) -> int | None:
    import socket

    from rustainer.backend.process.relay import copy_window_size

    _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if not fds:
        return None
    copy_window_size(0, fds[0])
    return fds[0]


# ---- the child (inside the container's PID namespace) ---------------------------------------------------


def _child(cfg: _ExecConfig, stdio: list[int], sync_fd: int, rep_fd: int) -> None:
    code, message = 125, "exec setup failed"
    try:
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, 9)
        if cfg.cgroup_fds:
            fault("exec-cgroup-join")
        join_cgroup(cfg.cgroup_fds)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        fault("exec-setns")
        for fd, flag in cfg.ns_fds:
            syscalls.setns(fd, flag)
        os.fchdir(cfg.root_fd)
        os.chroot(".")
        os.chdir("/")
        os.setsid()
        if cfg.tty:
            open_console(cfg.console_fd)
        if os.read(sync_fd, 1) != b"1":
            os._exit(125)
        os.close(sync_fd)
        syscalls.setns(cfg.cgroup_ns, syscalls.CLONE_NEWCGROUP)
        install_filter()
        restrict_to(cfg.caps, cfg.last_cap)
        fault("exec-exec")
        os.closerange(3, rep_fd)
        os.closerange(rep_fd + 1, 1 << 20)
        try:
            os.chdir(cfg.workdir)
        except OSError as err:
            raise CommandFailed(125, f"cannot use {cfg.workdir} as the working directory: {err.strerror}") from None
        exec_command(cfg.argv, cfg.env)
    except CommandFailed as err:
        code, message = err.exit_code, err.message
    except Exception as err:  # noqa: BLE001 - everything must reach the parent as one line
        message = describe_failure(err, "exec setup")
    report_and_exit(rep_fd, code, message)


