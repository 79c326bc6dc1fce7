"""``create``: set a container up from its bundle and leave its init waiting for ``start``.

The runtime's process (this one) makes the state folder and ``exec.fifo``, the cgroup with its
limits, opens what the init will need from the host (namespaces to join, the cgroup files, the
console socket), and forks the init, into a new PID namespace (or the one named, or ours). It
waits only for the init's ``READY`` (its root is built, the command found), records the init's pid
(state and ``--pid-file``), runs the ``createRuntime`` and ``prestart`` hooks, and exits: the init,
blocked on the fifo, is left to the caller (containerd's shim, a child subreaper, adopts it). Any
failure undoes everything: the init killed, the cgroup and the state folder removed.
"""

from __future__ import annotations

import os
import time

from rustainer.backend.errors import CommandFailed, InvalidSpecError, RustainerError
from rustainer.backend.linux import syscalls
from rustainer.backend.oci import cgroup as oci_cgroup
from rustainer.backend.oci.config import OciConfig, load
from rustainer.backend.oci.state import Store, write_pid_file
from rustainer.backend.util.rollback import Rollback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# setns order for joined namespaces: the mount namespace last (its paths are the host's until then)
JOIN_ORDER = ("ipc", "uts", "network", "cgroup", "mount")


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def create(store: Store, cid: str, bundle: str, *, pid_file: str | None = None, console_socket: str | None = None,
           no_pivot: bool = False, systemd_cgroup: bool = False, warn: Callable[[str], None] | None = None,
           preserve_fds: int = 0) -> int:
    """Returns the init's pid (on the host)."""
    bundle = os.path.abspath(bundle)
    cfg = load(bundle)
    for line in cfg.warnings:
        if warn is not None:
            warn(line)
    check(cfg, bundle)
    proc = cfg.process
    assert proc is not None
    if proc.terminal and not console_socket:
        raise InvalidSpecError("process.terminal is set: a --console-socket is required")
    undo = Rollback()
    cdir = store.reserve(cid)
    undo.push("state", lambda: store.remove(cid))
    try:
        return _create(store, cid, bundle, cfg, undo, pid_file=pid_file, console_socket=console_socket,
                       no_pivot=no_pivot, systemd_cgroup=systemd_cgroup, cdir=cdir, preserve_fds=preserve_fds)
    except BaseException:
        undo.unwind()
        raise


def check(cfg: OciConfig, bundle: str) -> None:
    """What the runtime refuses before touching anything."""
    if cfg.process is None:
        raise InvalidSpecError("config.json: process is required to create a container")
    if not os.path.isdir(cfg.root):
        raise InvalidSpecError(f"root.path {cfg.root} is not a directory")
    mnt = cfg.namespace("mount")
    if mnt is None:
        raise InvalidSpecError("config.json: a mount namespace is required (linux.namespaces has none)")
    for m in cfg.mounts:
        if m.bind:
            source = m.source if os.path.isabs(m.source) else os.path.join(bundle, m.source)
            if not os.path.exists(source):
                raise InvalidSpecError(f"config.json: bind mount source {m.source} does not exist")
    for ns in cfg.namespaces:
        if ns.path is not None:
            try:
                os.stat(ns.path)
            except OSError as err:
                raise InvalidSpecError(f"config.json: namespace path {ns.path}: {err.strerror}") from err
    if cfg.hostname and cfg.namespace("uts") is None:
        raise InvalidSpecError("config.json: a hostname needs a new UTS namespace")
    for key, _value in cfg.sysctl:
        if "/" in key or ".." in key:
            raise InvalidSpecError(f"config.json: invalid sysctl {key!r}")


def _create(store: Store, cid: str, bundle: str, cfg: OciConfig, undo: Rollback, *, pid_file: str | None,
            console_socket: str | None, no_pivot: bool, systemd_cgroup: bool, cdir: str, preserve_fds: int = 0) -> int:
    from rustainer.backend.linux.capabilities import last_cap
    from rustainer.backend.linux.namespaces import fork_child
    from rustainer.backend.oci.init import InitConfig, connect_console, run_init
    from rustainer.backend.oci.rootfs import late_ops, mount_ops
    from rustainer.backend.process.handshake import READY, read_all, split_report

    proc = cfg.process
    assert proc is not None
    fifo = os.path.join(cdir, "exec.fifo")
    os.mkfifo(fifo, 0o622)
    os.chmod(fifo, 0o622)  # whatever our umask: the init may have left uid 0 when it opens it
    # the cgroup, with its limits
    path = oci_cgroup.cgroup_path(cfg.cgroups_path, cid, systemd_cgroup)
    manager = oci_cgroup.open_cgroup(path, cid)
    manager.create(oci_cgroup.engine_resources(cfg.resources))  # type: ignore[arg-type]
    # Parent folders (containerd's namespace, a pod's cgroup) are shared and stay, as with runc:
    # removing one as the last container leaves would race with the next container's create.
    manager.made_parents = ()
    undo.push("cgroup", manager.remove)
    oci_cgroup.apply_extra(manager, cfg.resources)
    paths = manager.paths()
    data: dict[str, object] = {
        "id": cid, "pid": 0, "bundle": bundle, "rootfs": cfg.root, "created": rfc3339(time.time()),
        "annotations": dict(cfg.annotations), "cgroup_path": path, "cgroup_driver": manager.driver,
        "cgroup_paths": paths, "cgroup_parents": list(manager.made_parents),
        "hooks": {kind: [[h.path, list(h.args), list(h.env), h.timeout] for h in hooks] for kind, hooks in cfg.hooks},
        "seccomp": cfg.seccomp is not None,
    }
    store.save(cid, data)
    fds: list[int] = []
    try:
        join: list[tuple[int, int]] = []
        unshare = 0
        pid_ns: int | None = None
        new_pid = False
        for kind in JOIN_ORDER:
            ns = cfg.namespace(kind)
            if ns is None:
                continue
            if ns.path is None:
                unshare |= ns.flag
            else:
                fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
                fds.append(fd)
                join.append((fd, ns.flag))
        pid_spec = cfg.namespace("pid")
        if pid_spec is not None:
            if pid_spec.path is None:
                new_pid = True
            else:
                pid_ns = os.open(pid_spec.path, os.O_RDONLY | os.O_CLOEXEC)
                fds.append(pid_ns)
        cgroup_fds = oci_cgroup.open_join_files(paths, fds)
        console_fd = connect_console(console_socket, fds, RustainerError) if proc.terminal else -1
        seccomp = None
        if cfg.seccomp is not None:
            from rustainer.backend.linux.seccomp_oci import compile_profile

            seccomp = compile_profile(cfg.seccomp)
        cgroupns = bool(unshare & syscalls.CLONE_NEWCGROUP)
        init_cfg = InitConfig(
            oci=cfg, mount_ops=tuple(mount_ops(cfg, bundle, paths, cgroupns=cgroupns)), late_ops=tuple(late_ops(cfg)),
            join=tuple(join), unshare=unshare, cgroup_fds=tuple(cgroup_fds), fifo=fifo, console_fd=console_fd,
            no_pivot=no_pivot, seccomp=seccomp, last_cap=last_cap(), preserve_fds=preserve_fds)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)

        def child() -> None:
            os.close(err_r)
            run_init(init_cfg, err_w)

        try:
            pid = fork_child(child, pid_ns, new_namespace=new_pid)
        except BaseException:
            os.close(err_r)
            os.close(err_w)
            raise
        os.close(err_w)
    finally:
        for fd in fds:
            os.close(fd)
    undo.push("init", lambda: _kill(pid))
    try:
        first = os.read(err_r, 1)
        if first != READY:
            report = split_report(first + read_all(err_r))
            code, _, message = report.decode(errors="replace").partition("\0")
            _reap(pid)
            raise CommandFailed(int(code) if code.isdigit() else 1, message or "the container's init failed")
    finally:
        os.close(err_r)
    from rustainer.backend.linux.procfs import start_time

    data["pid"] = pid
    data["start_time"] = start_time(pid)
    store.save(cid, data)
    if pid_file:
        write_pid_file(pid_file, pid)
    hooks = cfg.hooks_of("prestart") + cfg.hooks_of("createRuntime")
    if hooks:  # the module (and subprocess) only for a bundle that has some
        from rustainer.backend.oci.hooks import run_hooks
        from rustainer.backend.oci.state import oci_state

        state = oci_state(store, cid, data) | {"status": "creating"}  # what runc tells these hooks
        run_hooks(hooks, state)
    return pid


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
