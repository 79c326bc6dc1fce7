"""``exec``: one more process in a running (or created) container, from a process JSON file.

As the engine's ``container/exec.py`` does: the namespaces of the container's init are opened
from ``/proc/<pid>/ns`` (and its root from ``/proc/<pid>/root``) before we fork into its PID
namespace; the child joins the cgroup, the other namespaces and the root, then takes the process's
terminal, limits, user, capabilities and the container's seccomp filter, and execs. A failure
before the exec comes back over a CLOEXEC pipe; the exec closing it means the process runs. With
``--detach`` we leave at once (the caller, containerd's shim, a subreaper, adopts the process);
otherwise we wait and return its status.
"""

from __future__ import annotations

import os

from rustainer.backend.errors import CommandFailed, ContainerStateError
from rustainer.backend.linux import syscalls
from rustainer.backend.oci.config import Process, load, parse_process_file
from rustainer.backend.oci.init import become, connect_console, set_limits, terminal_size
from rustainer.backend.oci.state import STOPPED, Store, status
from rustainer.backend.process.child import (
    check_command,
    default_signals,
    describe_failure,
    exec_command,
    open_console,
    report_and_exit,
)

NAMESPACES = (("ipc", syscalls.CLONE_NEWIPC), ("uts", syscalls.CLONE_NEWUTS), ("net", syscalls.CLONE_NEWNET),
              ("cgroup", syscalls.CLONE_NEWCGROUP), ("mnt", syscalls.CLONE_NEWNS))


def exec_process(store: Store, cid: str, process_file: str, *, detach: bool = False, pid_file: str | None = None,
                 console_socket: str | None = None, tty: bool | None = None) -> int:
    from rustainer.backend.linux.capabilities import last_cap
    from rustainer.backend.linux.namespaces import fork_child
    from rustainer.backend.process.handshake import read_all

    data = store.load(cid)
    if status(store, cid, data) == STOPPED:
        raise ContainerStateError("cannot exec in a stopped container")
    proc, _warnings = parse_process_file(process_file)
    if tty is not None and tty != proc.terminal:
        from rustainer.backend.util.record import replace

        proc = replace(proc, terminal=tty)
    if proc.terminal and not console_socket:
        raise ContainerStateError("a terminal process needs a --console-socket")
    pid = data["pid"]
    assert isinstance(pid, int)
    seccomp = None
    if data.get("seccomp"):
        from rustainer.backend.linux.seccomp_oci import compile_profile

        oci = load(str(data["bundle"]))
        if oci.seccomp is not None:
            seccomp = compile_profile(oci.seccomp)
    fds: list[int] = []
    try:
        ns_fds = []
        for name, flag in NAMESPACES:
            fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(fd)
            ns_fds.append((fd, flag, os.readlink(f"/proc/{pid}/ns/{name}") != os.readlink(f"/proc/self/ns/{name}")))
        pid_ns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        fds.append(pid_ns)
        root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds.append(root_fd)
        paths = data.get("cgroup_paths") or {}
        assert isinstance(paths, dict)
        from rustainer.backend.oci.cgroup import open_join_files  # (cgroups.base: only here)

        cgroup_fds = open_join_files(paths, fds)
        console_fd = connect_console(console_socket, fds, ContainerStateError) if proc.terminal else -1
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        cap_last = last_cap()

        def child() -> None:
            os.close(err_r)
            _child(proc, ns_fds, root_fd, cgroup_fds, console_fd, seccomp, cap_last, err_w)

        try:
            same_pid_ns = os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
            child_pid = fork_child(child, None if same_pid_ns else pid_ns, new_namespace=False)
        except BaseException:
            os.close(err_r)
            os.close(err_w)
            raise
        os.close(err_w)
    finally:
        for fd in fds:
            os.close(fd)
    try:
        report = read_all(err_r)
    finally:
        os.close(err_r)
    if report:
        number, _, message = report.decode(errors="replace").partition("\0")
        try:
            os.waitpid(child_pid, 0)
        except ChildProcessError:
            pass
        raise CommandFailed(int(number) if number.isdigit() else 1, message or "exec failed")
    if pid_file:
        from rustainer.backend.oci.state import write_pid_file

        write_pid_file(pid_file, child_pid)
    if detach:
        return 0
    _, wstatus = os.waitpid(child_pid, 0)
    code = os.waitstatus_to_exitcode(wstatus)
    return 128 - code if code < 0 else code


def _child(proc: Process, ns_fds: list[tuple[int, int, bool]], root_fd: int, cgroup_fds: list[int], console_fd: int,
           seccomp: bytes | None, last_cap: int, err_fd: int) -> None:
    code, message = 1, "exec failed"
    try:
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        default_signals()
        for fd in cgroup_fds:
            os.write(fd, b"0")
        for fd, flag, differs in ns_fds:
            if differs:
                syscalls.setns(fd, flag)
        os.fchdir(root_fd)
        os.chroot(".")
        os.chdir("/")
        os.setsid()
        if proc.terminal:
            open_console(console_fd, controlling=True, window_size=terminal_size(proc))
        set_limits(proc)
        env = proc.environ()
        os.chdir(proc.cwd)
        code, message = 127, ""
        check_command(proc.args, env)
        code, message = 1, "exec failed"
        become(proc, seccomp, last_cap)
        os.closerange(3, err_fd)
        os.closerange(err_fd + 1, 1 << 20)
        code, message = 127, ""
        exec_command(proc.args, env)
    except CommandFailed as err:
        code, message = err.exit_code, err.message
    except Exception as err:  # noqa: BLE001 - everything must reach the caller as one line
        message = describe_failure(err, "exec")
    report_and_exit(err_fd, code, message)
