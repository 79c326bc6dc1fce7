"""The forked child that turns itself into the container, then execs the user's command.

It runs between fork() and execve(): as PID 1 of the new PID namespace, still the host's Python.
So it makes itself non-dumpable at once (no ``/proc/1/exe`` peeking at the host interpreter), then
works in parallel with its parent: it imports what it needs and computes its configuration, builds
its world (namespaces, rootfs, hostname, loopback) while the parent creates the container's cgroup
and records it; it tells the parent its namespaces are ready (one ``R`` on the error pipe, for the
network), waits for the parent's go (which names the cgroup files to join), then pivots, joins the
cgroup, drops capabilities, closes every inherited descriptor and execs. Any failure is written to
the error pipe as ``<exit code>\\0<message>`` and the child exits with that code; an exec that
succeeds closes the pipe (O_CLOEXEC), which is how the parent knows the command started.
"""

from __future__ import annotations

import errno
import fcntl
import os

from rustainer.backend.errors import CommandFailed, RustainerError

# Everything the child uses is imported here: after pivot_root the host's files are out of reach.
from rustainer.backend.linux import signals, syscalls
from rustainer.backend.linux.capabilities import restrict_to
from rustainer.backend.linux.seccomp import install_filter
from rustainer.backend.process.handshake import READY, decode_go, open_join_files, read_all
from rustainer.backend.rootfs.apply import apply_plan
from rustainer.backend.rootfs.plan import Op
from rustainer.backend.util.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# asm-generic's number (x86_64, aarch64: the machines syscalls.py covers); termios would cost an
# import on every start for one constant.
TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
NS_FLAGS = syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC


@record
class ChildConfig:
    """What the child needs, computed by the parent before fork (no decisions after it)."""

    root: str  # host path of the mount point that becomes /
    ops: tuple[Op, ...]
    hostname: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    workdir: str
    new_netns: bool
    caps: int
    last_cap: int
    tty: bool
    console_fd: int = -1  # with tty: a unix socket on which to send the pty master to the parent
    init: bool = False  # an init as PID 1 (reaping orphans, forwarding signals), the command as PID 2
    init_program: str | None = None  # the init to exec (tini, bound into the root); None: stay as it
    layer: str | None = None  # with an image: mount the writable layer's tmpfs here (see make_layer)
    user: tuple[int, int, tuple[int, ...]] | None = None  # uid, gid, groups to run as (an image's User)


def run_child(make_config: Callable[[], ChildConfig], stdio: tuple[int, int, int], sync_fd: int,
              err_fd: int) -> None:
    """Never returns: execs the command or exits with 125/126/127 after reporting why.

    ``make_config`` is called here, after the fork, so that the imports and the planning it needs
    overlap with the parent's work instead of delaying the fork.
    """
    code, message = 125, "container setup failed"
    try:
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, 9)
        default_signals()
        cfg = make_config()
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        _build(cfg, err_fd)
        cgroup_view = prepare_cgroup_view(cfg.root)
        # The parent creates the cgroup, and sets up what needs our pid (the cgroup on drivers where
        # it moves us, the network) while we build the rootfs; its go names the cgroup files to
        # join, opened now, while the host's /sys is still in reach. EOF means it gave up.
        go = decode_go(read_all(sync_fd))
        if go is None:
            os._exit(125)
        os.close(sync_fd)
        window_size, join_files = go
        join_fds = open_join_files(join_files)
        _enter(cfg, window_size)
        if "RUSTAINER_TEST_JOIN_DELAY" in os.environ:  # tests only: widens the window before the join
            import time

            time.sleep(float(os.environ["RUSTAINER_TEST_JOIN_DELAY"]))
        # Join the cgroup (where we do it ourselves), and only then the cgroup namespace (rooted at
        # our new cgroup), the seccomp filter and the capability drop, which would forbid the unshare.
        join_cgroup(join_fds)
        syscalls.unshare(syscalls.CLONE_NEWCGROUP)
        mount_cgroup_view(cgroup_view)
        install_filter()
        restrict_to(cfg.caps, cfg.last_cap)
        if cfg.user is not None:
            # An image's User (docker's order: groups, gid, uid); leaving uid 0 clears the capabilities.
            uid, gid, groups = cfg.user
            os.setgroups(list(groups))
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        _close_fds(err_fd)
        os.chdir(cfg.workdir)
        code, message = 127, ""
        if cfg.init and cfg.init_program is not None:
            # tini runs the command as its child: the errors exec would give are found here first.
            check_command(cfg.argv, dict(cfg.env))
            exec_command((cfg.init_program, "--", *cfg.argv), dict(cfg.env))
        if cfg.init:
            _become_init(cfg, err_fd)
        _exec(cfg)
    except CommandFailed as err:
        code, message = err.exit_code, err.message
    except Exception as err:  # noqa: BLE001 - everything must reach the parent as one line
        message = describe_failure(err, "container setup")
    report_and_exit(err_fd, code, message)


def join_cgroup(fds: tuple[int, ...]) -> None:
    """Move this (single-threaded) process into the container's cgroup(s) through files the parent
    opened (see ``CgroupManager.self_join_files``). The container's PID 1 does it once its root is
    built, just before the cgroup namespace: the setup is not pinned to the container's cpuset (a
    busy CPU there would stall it), the command and all it starts are."""
    for fd in fds:
        try:
            os.write(fd, b"0")
        except OSError as err:
            raise RustainerError(f"joining the container's cgroup failed: {err.strerror}") from err
        os.close(fd)


CGROUP_MOUNT = "/sys/fs/cgroup"
# cgroups.v1.CONTROLLERS, not imported: the child's imports are on every start's path (a unit test
# keeps the two equal)
V1_JOINED = frozenset(("cpuset", "cpu", "cpuacct", "memory", "pids"))
RO_FLAGS = syscalls.MS_RDONLY | syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC


def mount_own_cgroups(proc_self_cgroup: str = "/proc/self/cgroup") -> None:
    """``/sys/fs/cgroup`` inside shows the container's own cgroup(s), read-only, as docker does:
    called just after the cgroup namespace is made, so each mount's root is the container's cgroup.
    (``prepare_cgroup_view`` and ``mount_cgroup_view``, one after the other.)"""
    mount_cgroup_view(prepare_cgroup_view("", proc_self_cgroup))


def prepare_cgroup_view(root: str, proc_self_cgroup: str = "/proc/self/cgroup") -> tuple[str, ...] | None:
    """The part of the cgroup view that does not need the cgroup namespace, under ``root`` (the
    container's root before pivot_root, "" after it): done while the parent is still setting up,
    so only the cgroup mounts are left for after the go. Returns what ``mount_cgroup_view`` mounts.

    cgroup2 (unified host): nothing to prepare (None: one ``cgroup2`` mount). v1: a small tmpfs,
    read-only already, with one folder per hierarchy, named as ``/proc/self/cgroup`` names them
    (``memory``, ``cpu,cpuacct``: the names do not change when the process moves), only the
    hierarchies of the controllers the v1 drivers move the container into (``V1_JOINED``): in any
    other (a hybrid host's cgroup2, ``devices``, ``name=systemd``...) its namespace's root would be
    the caller's cgroup, and the view would show the host's tree.
    """
    with open(proc_self_cgroup) as fh:
        hierarchies = [line.split(":", 2)[1] for line in fh.read().splitlines() if line.count(":") >= 2]
    if all(h == "" for h in hierarchies):
        return None
    view = root + CGROUP_MOUNT
    syscalls.mount("tmpfs", view, "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC,
                   "mode=755,size=16k")
    made = []
    for h in hierarchies:
        if h == "" or not set(h.split(",")) & V1_JOINED:
            continue  # a hierarchy the drivers do not move it into: its root would be the caller's
        try:
            os.mkdir(view + "/" + h, 0o755)
        except OSError:
            continue
        made.append(h)
    # Read-only before anything is mounted on its folders (a mount point needs no write access).
    syscalls.mount(None, view, None, syscalls.MS_REMOUNT | RO_FLAGS, "mode=755,size=16k")
    return tuple(made)


def mount_cgroup_view(hierarchies: tuple[str, ...] | None) -> None:
    """The cgroup mounts of the view ``prepare_cgroup_view`` made, just after the cgroup namespace
    is made (each mount's root is then the container's cgroup): cgroup2 failing is an error, a v1
    hierarchy that cannot be mounted is left out (an empty folder) rather than failing the container."""
    if hierarchies is None:
        syscalls.mount("cgroup2", CGROUP_MOUNT, "cgroup2", RO_FLAGS)
        return
    for h in hierarchies:
        try:
            syscalls.mount("cgroup", CGROUP_MOUNT + "/" + h, "cgroup", RO_FLAGS, h)
        except OSError:
            continue


LAYER_DIRS = ("root", "upper", "work")


def make_layer(folder: str) -> None:
    """The writable layer of an image root: a tmpfs over ``folder`` holding the overlay's upper and
    work folders and its mount point, ``root``.

    It exists only in this mount namespace: it needs no clean-up (it is gone with the container's
    last process, whoever kills it) and costs no disk operations (a directory removal takes 4 ms on
    the CI machine's disk, and a layer on disk took a dozen). What the container writes to it is
    memory, charged to the container's memory limit like its /tmp.
    """
    syscalls.mount("rustainer-layer", folder, "tmpfs", syscalls.MS_NODEV, "mode=0700")
    for name in LAYER_DIRS:
        os.mkdir(os.path.join(folder, name), 0o755)


def describe_failure(err: Exception, what: str) -> str:
    """One line for the parent: our own errors as they are, the rest with what was being done."""
    if isinstance(err, RustainerError):
        return str(err)
    if isinstance(err, OSError):
        return f"{what} failed: {err.strerror or err}"
    return f"{what} failed: {type(err).__name__}: {err}"


def report_and_exit(fd: int, code: int, message: str) -> None:
    """Tell the parent ``<code>\\0<message>`` over the CLOEXEC pipe, then exit with ``code``."""
    try:
        os.write(fd, f"{code}\0{message}".encode(errors="replace"))
    finally:
        os._exit(code)


def default_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, a supervisor ignores SIGINT and SIGHUP: an ignored signal
    survives exec, so without this ``yes | head`` would not end and Ctrl-C would not interrupt.
    (Python's table knows every disposition, inherited ones included: only the others are reset.)"""
    for sig in range(1, signals.NSIG):
        if sig in (signals.SIGKILL, signals.SIGSTOP) or signals.get_handler(sig) == signals.SIG_DFL:
            continue
        try:
            signals.set_handler(sig, signals.SIG_DFL)
        except (OSError, ValueError):
            continue  # real-time signals glibc reserves
    signals.set_mask(signals.SIG_SETMASK, [])


def _build(cfg: ChildConfig, err_fd: int) -> None:
    """Our namespaces and the container's root, still under the host's root. ``READY`` as soon as
    the namespaces exist: the parent plugs a bridge network's veth into ours (~2 ms of netlink and
    a thread) while we build the root, instead of after it."""
    syscalls.unshare(NS_FLAGS | (syscalls.CLONE_NEWNET if cfg.new_netns else 0))
    os.write(err_fd, READY)
    # Nothing we mount may propagate back to the host, and pivot_root needs a private parent.
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    if cfg.layer is not None:
        make_layer(cfg.layer)
    apply_plan(cfg.root, list(cfg.ops))
    syscalls.sethostname(cfg.hostname)
    if cfg.new_netns:
        syscalls.loopback_up()


def _enter(cfg: ChildConfig, window_size: bytes) -> None:
    """Into the container's root, as a new session with its terminal (if any)."""
    # pivot_root(".", ".") stacks the old root on the new one; unmounting it leaves only the new.
    os.chdir(cfg.root)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", syscalls.MNT_DETACH)
    os.chdir("/")
    os.setsid()
    if cfg.tty:
        # Our own init leaves the terminal to the command's session; tini, like any PID 1 without
        # an init, takes it (and makes the command's process group the foreground one).
        own_init = cfg.init and cfg.init_program is None
        open_console(cfg.console_fd, controlling=not own_init, window_size=window_size)


def open_console(console_fd: int, *, controlling: bool = True, window_size: bytes = b"") -> None:
    """A fresh pty from the container's own devpts instance as stdio and controlling terminal.

    Allocated after pivot_root so that ``tty`` inside names a /dev/pts entry that exists there; the
    master goes to the parent over a unix socket (SCM_RIGHTS), as runc's console socket does.
    """
    import socket  # already loaded by the parent before fork: no file access needed

    master, slave = os.openpty()
    if window_size:  # the caller's size before the command starts: no SIGWINCH race at its start
        fcntl.ioctl(slave, TIOCSWINSZ, window_size)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)
    if controlling:
        fcntl.ioctl(0, TIOCSCTTY, 0)
    sock = socket.socket(fileno=console_fd)
    try:
        socket.send_fds(sock, [b"M"], [master])
    finally:
        sock.detach()
        os.close(master)


# What the init passes on to the command: every catchable signal but SIGCHLD (its own business) and
# those the kernel raises for a fault or a terminal's job control in the receiver itself (tini's set:
# ILL TRAP ABRT BUS FPE SEGV SYS TTIN TTOU).
FORWARDED_SIGNALS = tuple(sorted(set(range(1, 32)) - {4, 5, 6, 7, 8, 9, 11, 17, 19, 21, 22, 31}))


def _become_init(cfg: ChildConfig, err_fd: int) -> None:
    """Start the command and stay as a minimal init (like docker's --init, tini); never returns.

    As PID 1 of the namespace we adopt every orphan: reap them all, pass signals on to the command,
    and leave with the command's status. The command is spawned (vfork and exec: none of our page
    tables copied, see ``syscalls.spawn``) as the leader of its own session, with the pty as its
    controlling terminal. We stay the host's Python, so: non-dumpable (set at the start of the
    child), named ``rustainer-init``, our command line overwritten, holding only stdio.
    """
    # Signals wait (blocked) until the handlers that forward them exist. The command must find its
    # PID 1 as it will stay (named, holding nothing but stdio) from its first instruction: so the
    # errors exec would give are found first, while the parent still listens on err_fd, then err_fd
    # is closed (the parent goes on), then the command starts. What only the spawn itself can find
    # (a file the kernel cannot execute) is told on stderr, as tini does.
    signals.set_mask(signals.SIG_BLOCK, FORWARDED_SIGNALS)
    _rename_self(b"rustainer-init")
    check_command(cfg.argv, dict(cfg.env))
    os.close(err_fd)
    try:
        pid = spawn_command(cfg.argv, dict(cfg.env), terminal=os.ttyname(0) if cfg.tty else None)
    except CommandFailed as err:
        os.write(2, f"rustainer: {err.message}\n".encode(errors="replace"))
        os._exit(err.exit_code)
    for sig in FORWARDED_SIGNALS:
        signals.set_handler(sig, lambda signum, _frame: _forward(pid, signum))
    signals.set_mask(signals.SIG_SETMASK, [])
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def spawn_command(argv: tuple[str, ...] | list[str], env: dict[str, str], *, terminal: str | None) -> int:
    """``exec_command``'s search and errors, for a spawned process; returns its pid."""
    saved: OSError | None = None
    for path in _candidates(argv[0], env):
        if not os.path.exists(path):
            continue  # a spawn costs a process: skip what exec would not find (ENOENT, ENOTDIR)
        try:
            return syscalls.spawn(path, list(argv), env, terminal=terminal)
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ENOTDIR) and saved is None:
                saved = err
    raise _not_executed(argv[0], saved)


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _rename_self(name: bytes) -> None:
    """comm and /proc/self/cmdline read ``name`` (the argv area is ours to overwrite)."""
    syscalls.set_process_name(name)
    from rustainer.backend.linux.procfs import stat_fields

    fields = stat_fields("self")
    try:
        start, end = int(fields[45]), int(fields[46])  # type: ignore[index]  # arg_start, arg_end (fields 48, 49)
    except (TypeError, IndexError, ValueError):
        return
    size = end - start
    if size > 0:
        syscalls.write_memory(start, name[: size - 1].ljust(size, b"\0"))


def _close_fds(keep: int) -> None:
    """No host descriptor may reach the container: close all but stdio and the error pipe."""
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 20)



def _exec(cfg: ChildConfig) -> None:
    exec_command(cfg.argv, dict(cfg.env))


def exec_command(argv: tuple[str, ...] | list[str], env: dict[str, str]) -> None:
    """execvp's search, done here: os.execvpe imports ``warnings``, and the host's files are gone."""
    saved: OSError | None = None
    for path in _candidates(argv[0], env):
        try:
            os.execve(path, list(argv), env)
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ENOTDIR) and saved is None:
                saved = err
    raise _not_executed(argv[0], saved)


def check_command(argv: tuple[str, ...] | list[str], env: dict[str, str]) -> None:
    """Raise the CommandFailed that ``exec_command`` would for ``argv``, without executing it."""
    saved: OSError | None = None
    for path in _candidates(argv[0], env):
        if not os.path.exists(path):
            continue
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return
        if saved is None:
            saved = OSError(errno.EACCES, os.strerror(errno.EACCES), path)
    raise _not_executed(argv[0], saved)


def _candidates(name: str, env: dict[str, str]) -> list[str]:
    """Where execvp would look for ``name``: as given with a slash, else along the container's PATH."""
    if "/" in name:
        return [name]
    return [os.path.join(d or ".", name) for d in env.get("PATH", "/usr/bin:/bin").split(":")]


def _not_executed(name: str, saved: OSError | None) -> CommandFailed:
    if saved is None:
        return CommandFailed(127, f"{name}: command not found in the container")
    return CommandFailed(126, f"{name}: cannot execute: {saved.strerror}")
