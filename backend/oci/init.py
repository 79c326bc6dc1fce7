"""The container's init for the OCI runtime: the process ``create`` forks, which becomes the
container's process (no init of ours stays: the spec's ``process`` is PID 1, as with runc).

It runs between fork and exec, still the host's Python, and uses the engine's pieces: the rootfs
applier, namespaces, capabilities, the console hand-over of ``process.child``. Order (runc's):
join the cgroup, join or make the namespaces, build the root (``mount_ops``), pivot, hostname,
sysctls, masked and read-only paths, the terminal, rlimits; then tell ``create`` it is ready
(``READY`` on the error pipe) and block opening ``exec.fifo`` for writing until ``start`` opens it
for reading; then no-new-privileges, seccomp, the user and capability sets, and exec. Failures
before ``READY`` reach ``create`` as ``<code>\\0<message>``; later ones go to stderr (the
container's), and the process exits 127/126/1 as a failed exec would.
"""

from __future__ import annotations

import os
import resource  # here: after pivot_root the host's modules are out of reach
import sys

from rustainer.backend.errors import CommandFailed, RustainerError
from rustainer.backend.linux import capabilities, syscalls
from rustainer.backend.oci.config import OciConfig, Process
from rustainer.backend.process.child import (
    check_command,
    default_signals,
    describe_failure,
    exec_command,
    mount_own_cgroups,
    open_console,
    report_and_exit,
)
from rustainer.backend.process.handshake import READY
from rustainer.backend.rootfs.apply import apply_plan
from rustainer.backend.rootfs.plan import Op
from rustainer.backend.util.record import record

_O_PATH = getattr(os, "O_PATH", 0o10000000)
TIOCSWINSZ = 0x5414


@record
class InitConfig:
    oci: OciConfig
    mount_ops: tuple[Op, ...]
    late_ops: tuple[Op, ...]
    join: tuple[tuple[int, int], ...]  # (namespace fd, CLONE_* type) to setns, pid excluded
    unshare: int  # CLONE_* flags of the namespaces to make, pid excluded
    cgroup_fds: tuple[int, ...]  # files to write "0" into to join the cgroup
    fifo: str  # exec.fifo, opened (O_PATH) before pivot_root
    console_fd: int = -1  # a socket connected to --console-socket, with a terminal
    no_pivot: bool = False
    seccomp: bytes | None = None  # the compiled filter
    last_cap: int = 40
    preserve_fds: int = 0  # --preserve-fds: the caller's descriptors 3..3+N-1 reach the command


def run_init(cfg: InitConfig, err_fd: int) -> None:
    """Never returns."""
    code, message = 1, "container init failed"
    ready = False
    try:
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        default_signals()
        for fd in cfg.cgroup_fds:
            os.write(fd, b"0")
            os.close(fd)
        for fd, kind in cfg.join:
            syscalls.setns(fd, kind)
            os.close(fd)
        syscalls.unshare(cfg.unshare)
        oci = cfg.oci
        fifo = os.open(cfg.fifo, _O_PATH | os.O_CLOEXEC)
        _build(cfg)
        if oci.process is not None and oci.process.terminal:
            os.setsid()
            open_console(cfg.console_fd, controlling=True, window_size=terminal_size(oci.process))
            os.close(cfg.console_fd)
            _bind_console()
        else:
            os.setsid()
        proc = oci.process
        assert proc is not None
        set_limits(proc)
        env = proc.environ()
        # runc's order: privileges and user before the start (a command the user may not run fails
        # the create), the filter of a no_new_privs process after it (the fifo needs open and write).
        become(proc, cfg.seccomp, cfg.last_cap, late_filter=False)
        os.chdir(proc.cwd)
        code, message = 127, ""
        check_command(proc.args, env)
        os.write(err_fd, READY)
        ready = True
        # Blocks until ``start`` opens the fifo for reading (or the container is deleted).
        wfd = os.open(f"/proc/self/fd/{fifo}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(wfd, b"0")
        os.close(wfd)
        os.close(fifo)
        code, message = 1, "container init failed"
        if proc.no_new_privileges and cfg.seccomp is not None:
            _install(cfg.seccomp)
        for fd in range(3, 3 + cfg.preserve_fds):
            try:
                os.set_inheritable(fd, True)
            except OSError:
                pass
        os.closerange(3 + cfg.preserve_fds, 1 << 20)
        code, message = 127, ""
        exec_command(proc.args, env)
    except CommandFailed as err:
        code, message = err.exit_code, err.message
    except Exception as err:  # noqa: BLE001 - everything must reach create as one line
        message = describe_failure(err, "container init")
    if ready:
        os.write(2, f"rustainer-oci: {message}\n".encode(errors="replace"))
        os._exit(code)
    report_and_exit(err_fd, code, message)


def _bind_console() -> None:
    """/dev/console is the container's terminal, as runc makes it (skipped where /dev is not ours)."""
    try:
        fd = os.open("/dev/console", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
        syscalls.mount(os.ttyname(0), "/dev/console", None, syscalls.MS_BIND)
    except OSError:
        pass


def set_limits(proc: Process) -> None:
    """rlimits and the OOM score (before the capabilities that allow raising them are dropped)."""
    for kind, soft, hard in proc.rlimits:
        resource.setrlimit(kind, (soft, hard))
    if proc.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write(str(proc.oom_score_adj))


def connect_console(console_socket: str | None, fds: list[int], error: type[RustainerError]) -> int:
    """A descriptor connected to ``--console-socket`` (the pty master goes back through it), also
    appended to ``fds``; ``error`` is what a refused connection raises."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(console_socket)  # type: ignore[arg-type]
    except OSError as err:
        sock.close()
        raise error(f"cannot connect to the console socket {console_socket}: {err.strerror}") from err
    fd = sock.detach()
    fds.append(fd)
    return fd


def terminal_size(proc: Process) -> bytes:
    if proc.console_size is None:
        return b""
    h, w = proc.console_size
    return h.to_bytes(2, sys.byteorder) + w.to_bytes(2, sys.byteorder) + bytes(4)


def _build(cfg: InitConfig) -> None:
    oci = cfg.oci
    root = oci.root
    if cfg.unshare & syscalls.CLONE_NEWNS:
        syscalls.mount(None, "/", None, syscalls.MS_REC | (oci.rootfs_propagation or syscalls.MS_PRIVATE))
    apply_plan(root, list(cfg.mount_ops))
    if cfg.unshare & syscalls.CLONE_NEWUTS and oci.hostname is not None:
        syscalls.sethostname(oci.hostname)
    if cfg.unshare & syscalls.CLONE_NEWNET:
        syscalls.loopback_up()
    os.chdir(root)
    if cfg.no_pivot:
        syscalls.mount(root, "/", None, syscalls.MS_MOVE)
        os.chroot(".")
    else:
        syscalls.pivot_root(".", ".")
        syscalls.umount2(".", syscalls.MNT_DETACH)
    os.chdir("/")
    if cfg.unshare & syscalls.CLONE_NEWCGROUP and any(m.type in ("cgroup", "cgroup2") for m in oci.mounts):
        for m in oci.mounts:
            if m.type in ("cgroup", "cgroup2") and m.destination == "/sys/fs/cgroup":
                mount_own_cgroups()
    for key, value in oci.sysctl:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as fh:
            fh.write(value)
    if cfg.late_ops:
        apply_plan("/", list(cfg.late_ops))
    if oci.readonly_root:
        syscalls.mount(None, "/", None, syscalls.MS_REMOUNT | syscalls.MS_BIND | syscalls.MS_RDONLY)


def become(proc: Process, seccomp: bytes | None, last_cap: int, *, late_filter: bool = True) -> None:
    """Just before the exec (the init after its start, an ``exec``'s process): privileges, the
    filter, the user. The filter goes in while we may still install it without no_new_privs
    (CAP_SYS_ADMIN), unless the spec asks for no_new_privs."""
    if proc.no_new_privileges:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    elif seccomp is not None:
        _install(seccomp)
    caps = proc.capabilities
    bounding = caps.bounding if caps is not None else 0
    capabilities.drop_bounding(bounding, last_cap)
    switch = proc.uid != 0 or proc.gid != 0 or bool(proc.additional_gids)
    if switch:
        capabilities.keep_across_setuid(True)
        os.setgroups(list(proc.additional_gids))
        os.setresgid(proc.gid, proc.gid, proc.gid)
        os.setresuid(proc.uid, proc.uid, proc.uid)
        capabilities.keep_across_setuid(False)
    if caps is not None:
        capabilities.apply_sets(caps.effective, caps.permitted, caps.inheritable, caps.ambient)
    else:
        capabilities.apply_sets(0, 0, 0, 0)
    os.umask(proc.umask if proc.umask is not None else 0o022)
    if late_filter and proc.no_new_privileges and seccomp is not None:
        _install(seccomp)


def _install(program: bytes) -> None:
    from rustainer.backend.linux.seccomp import PR_SET_SECCOMP, SECCOMP_MODE_FILTER

    try:
        syscalls.set_seccomp_filter(program, PR_SET_SECCOMP, SECCOMP_MODE_FILTER)
    except OSError as err:
        raise RustainerError(f"installing the seccomp filter failed: {err.strerror}") from err
