"""What root inside a container can no longer do, checked from inside real containers.

Each test runs in the read-only host view and, where the tools exist there, in the busybox rootfs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import CLI

pytestmark = pytest.mark.root

# Docker's default capability set, by bit number (linux/capability.h).
DOCKER_CAPS = {"chown": 0, "dac_override": 1, "fowner": 3, "fsetid": 4, "kill": 5, "setgid": 6, "setuid": 7,
               "setpcap": 8, "net_bind_service": 10, "net_raw": 13, "sys_chroot": 18, "mknod": 27,
               "audit_write": 29, "setfcap": 31}
DOCKER_MASK = sum(1 << bit for bit in DOCKER_CAPS.values())
assert DOCKER_MASK == 0xA80425FB  # what `docker run` shows in CapBnd

VIEWS = ["host", "busybox"]


@pytest.fixture(params=VIEWS)
def view(request: pytest.FixtureRequest, busybox_rootfs: Path) -> tuple[str, ...]:
    """The run options for each kind of root filesystem."""
    return () if request.param == "host" else ("--rootfs", str(busybox_rootfs))


def sh(cli, script: str, *opts: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    proc = cli("run", "--rm", *opts, "--", "sh", "-c", script)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def values(out: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of a script's output."""
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_capabilities_are_dockers_default_set(cli, view: tuple[str, ...]) -> None:
    out = sh(cli, "grep ^Cap /proc/self/status; grep ^Cap /proc/1/status", *view).stdout
    caps: dict[str, list[int]] = {}
    for line in out.splitlines():
        key, value = line.split(":")
        caps.setdefault(key, []).append(int(value, 16))
    for key in ("CapBnd", "CapEff", "CapPrm"):
        assert caps[key] == [DOCKER_MASK, DOCKER_MASK], (key, [hex(v) for v in caps[key]])
    assert caps["CapAmb"] == [0, 0]
    assert caps["CapInh"] == [0, 0]  # as docker: nothing a file capability could pick up (CVE-2022-24769)


def test_proc_sys_sysrq_and_sys_are_read_only(cli, view: tuple[str, ...]) -> None:
    script = """
    echo x > /proc/sys/kernel/hostname && echo WROTE-PROC-SYS
    echo x > /proc/sys/vm/drop_caches && echo WROTE-DROP-CACHES
    test -e /proc/sysrq-trigger && { echo h > /proc/sysrq-trigger && echo WROTE-SYSRQ; }
    touch /sys/x && echo WROTE-SYS
    mkdir /sys/kernel/x && echo MKDIR-SYS
    hostname
    """
    proc = sh(cli, script, "--name", "ro-proc", *view)
    assert "WROTE" not in proc.stdout and "MKDIR" not in proc.stdout, proc.stdout
    assert proc.stdout.strip() == "ro-proc"  # the hostname did not change
    assert "Read-only file system" in proc.stderr, proc.stderr
    if os.path.exists("/proc/sysrq-trigger"):
        assert "sysrq" in proc.stderr


def test_kernel_files_are_masked(cli, view: tuple[str, ...]) -> None:
    paths = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats", "/proc/sched_debug",
             "/proc/timer_stats"]
    script = "".join(f'if test -e {p}; then echo "{p}=$(stat -c %F,%t:%T {p}),$(cat {p} 2>/dev/null | wc -c)"; '
                     f'else echo "{p}=absent"; fi\n' for p in paths)
    script += 'echo "/sys/firmware=$(ls -A /sys/firmware | wc -l)"\n'
    got = values(sh(cli, script, *view).stdout)
    for p in paths:
        if os.path.exists(p):
            # /dev/null bound over it: reads nothing
            assert got[p] == "character special file,1:3,0", (p, got[p])
        else:
            assert got[p] == "absent", (p, got[p])
    assert any(os.path.exists(p) for p in paths), "nothing to check on this kernel"
    assert got["/sys/firmware"] == "0"
    if os.path.isdir("/sys/firmware"):
        assert os.listdir("/sys/firmware")  # the host's is not empty, so the mask is what hides it


def test_device_nodes_do_not_open(cli, view: tuple[str, ...], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    script = f"""
    for dir in /tmp /root {work}; do
        mknod $dir/sda b 8 0 && echo "MKNOD-OK $dir"
        head -c1 $dir/sda >/dev/null 2>&1 && echo "OPENED-DISK $dir"
        mknod $dir/null c 1 3 && echo x > $dir/null && echo "WROTE-NODE $dir"
    done
    mknod /dev/x c 1 3 && echo MKNOD-DEV
    echo ok > /dev/null && echo DEV-NULL-OK
    """
    proc = sh(cli, script, "-d", str(work), *view)
    assert "OPENED" not in proc.stdout and "WROTE-NODE" not in proc.stdout and "MKNOD-DEV" not in proc.stdout
    assert "DEV-NULL-OK" in proc.stdout
    assert proc.stdout.count("MKNOD-OK") == 3  # CAP_MKNOD is kept (docker's set), nodev makes it harmless
    assert "Permission denied" in proc.stderr and "Read-only file system" in proc.stderr, proc.stderr


def test_mount_and_new_namespaces_fail(cli, view: tuple[str, ...]) -> None:
    script = """
    echo before > /tmp/marker
    mount -t tmpfs none /tmp && echo MOUNTED
    cat /tmp/marker
    unshare -m true && echo UNSHARE-MNT
    unshare -U true && echo UNSHARE-USER
    unshare -U -r true && echo UNSHARE-USER-ROOT
    unshare -n true && echo UNSHARE-NET
    true
    """
    proc = sh(cli, script, *view)
    assert proc.stdout.split() == ["before"], proc
    assert proc.stderr.count("Operation not permitted") >= 4, proc.stderr


def test_user_namespace_is_blocked_by_seccomp_not_only_caps(cli) -> None:
    """unshare(CLONE_NEWUSER) needs no capability: only the seccomp filter stops it."""
    code = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
            "rc = libc.unshare(0x10000000); print(rc, ctypes.get_errno()); "
            "print(open('/proc/self/status').read().split('Seccomp:')[1].split()[0])")
    out = sh(cli, f'python3 -c "{code}"').stdout.split()
    assert out == ["-1", "1", "2"], out  # EPERM, seccomp mode 2 (filter)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x32 is an x86_64 ABI")
def test_x32_syscalls_are_refused_by_the_filter(cli) -> None:
    """unshare, clone and even getpid through x32 numbers (nr | 0x40000000): EPERM from the filter
    (a kernel without x32 would say ENOSYS, one with it would run them)."""
    code = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
            "[print(libc.syscall(0x40000000 | nr, 0x10000000, 0, 0, 0, 0), ctypes.get_errno()) "
            "for nr in (272, 56, 39)]")
    out = sh(cli, f'python3 -c "{code}"').stdout.split()
    assert out == ["-1", "1"] * 3, out


def test_loading_a_kernel_module_fails(cli) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    # On the host (root, full caps) the same harmless calls get past the capability check: an
    # empty image is ENOEXEC, a bad fd EBADF; ENOSYS means the kernel has no module support.
    host_init = libc.syscall(175, None, 0, b"") if os.uname().machine == "x86_64" else -1
    host_errno = ctypes.get_errno()
    code = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
            "nr = {'x86_64': (175, 313), 'aarch64': (105, 273)}[os.uname().machine]; "
            "print(libc.syscall(nr[0], None, 0, b''), ctypes.get_errno()); "
            "print(libc.syscall(nr[1], -1, b'', 0), ctypes.get_errno())")
    out = sh(cli, f'python3 -c "{code}"').stdout.split()
    assert out[0] == "-1" and out[2] == "-1", out
    if host_init == -1 and host_errno == 38:  # ENOSYS: no module support at all on this kernel
        assert out[1] == out[3] == "38"
    else:
        assert out[1] == out[3] == "1", out  # EPERM: no CAP_SYS_MODULE
    # and the capability is gone whatever the kernel
    status = sh(cli, "grep CapBnd /proc/self/status").stdout.split()[1]
    assert not int(status, 16) & (1 << 16)


def test_more_host_secrets_are_empty_in_the_host_view(cli) -> None:
    secrets = [p for p in ("/etc/shadow-", "/etc/gshadow-", "/etc/sudoers") if os.path.exists(p)]
    secrets += [str(p) for p in sorted(Path("/etc/ssh").glob("ssh_host_*_key"))] if Path("/etc/ssh").is_dir() else []
    if not secrets:
        pytest.skip("no backup shadow files, sudoers or ssh host keys on this host")
    script = "".join(f'echo "{p}=$(cat {p} | wc -c)"\n' for p in secrets)
    got = values(sh(cli, script).stdout)
    assert got == {p: "0" for p in secrets}


def test_pid1_exe_is_never_the_hosts_python(cli, view: tuple[str, ...]) -> None:
    python = {os.path.realpath(sys.executable), os.path.realpath(sys._base_executable)}
    # PID 1 is the init: tini, bound into the container's /dev (rustainer's own init, the host's
    # Python made non-dumpable, cannot be read at all: see test_init).
    exe = sh(cli, "readlink /proc/1/exe || echo unreadable; readlink /proc/self/exe", *view).stdout.split()
    assert len(exe) == 2 and not set(exe) & python, exe
    assert exe[0] == "/dev/rustainer-init"
    # With --no-init the setup process was exec'd away: PID 1's exe is the command's.
    exe = sh(cli, "readlink /proc/1/exe; readlink /proc/self/exe", *view, "--no-init").stdout.split()
    assert len(exe) == 2 and not set(exe) & python and "python" not in exe[0], exe


def test_no_descriptor_is_inherited(rroot: Path, view: tuple[str, ...], tmp_path: Path) -> None:
    extra = os.open(tmp_path, os.O_RDONLY)
    high = os.dup2(extra, 42, inheritable=True)
    os.set_inheritable(extra, True)
    try:
        proc = subprocess.run([*CLI, "run", "--rm", *view, "--", "ls", "/proc/self/fd"], pass_fds=[extra, high],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    finally:
        os.close(extra)
        os.close(high)
    assert proc.returncode == 0, proc
    # 0, 1, 2 and ls's own descriptor for the folder it lists (the lowest free number)
    assert sorted(map(int, proc.stdout.split())) == [0, 1, 2, 3], proc.stdout


def _wait_for(predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _container_pid(name: str) -> int | None:
    out = subprocess.run([*CLI, "ps", "--format", "json"], capture_output=True, text=True, check=True).stdout
    for state in json.loads(out):
        if state["name"] == name and state["pid"]:
            return int(state["pid"])
    return None


def test_tty_mode_gets_a_fresh_pty_and_a_new_session(rroot: Path, busybox_rootfs: Path) -> None:
    import pexpect

    child = pexpect.spawn(CLI[0], [*CLI[1:], "run", "--rm", "--name", "ttyd", "--rootfs", str(busybox_rootfs),
                                   "--", "sh"], env=dict(os.environ), encoding="utf-8", timeout=20)
    try:
        init = _wait_for(lambda: _container_pid("ttyd"))
        caller = child.pid
        assert os.getsid(init) == init != os.getsid(caller)  # PID 1 (tini) leads a new session
        # the command: the init's child, in that session, its process group the terminal's foreground
        pid = int(_wait_for(lambda: Path(f"/proc/{init}/task/{init}/children").read_text().split())[0])
        assert os.getsid(pid) == init and os.getpgid(pid) == pid
        def foreground_group() -> int:  # tpgid, field 8 of /proc/PID/stat
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[5])

        assert _wait_for(lambda: foreground_group() == pid)  # tini hands it over after its fork
        # The pty comes from the container's own devpts instance: compare devices by (st_dev, st_ino),
        # since every instance numbers its ptys from 0 and st_rdev alone can coincide.
        st_in, st_out = os.stat(f"/proc/{pid}/fd/0"), os.stat(f"/proc/{caller}/fd/0")
        assert (st_in.st_dev, st_in.st_ino) != (st_out.st_dev, st_out.st_ino)
        inside = st_in.st_rdev
        assert inside != 0
        assert os.stat(f"/proc/{pid}/fd/1").st_rdev == inside
        # the controlling terminal is the new pty too (field 7 of /proc/PID/stat)
        tty_nr = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[4])
        assert tty_nr == inside
        assert os.getsid(pid) != os.getsid(0)
        child.sendline("exit 0")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_pipe_mode_runs_in_a_new_session_without_a_terminal(rroot: Path) -> None:
    proc = subprocess.Popen([*CLI, "run", "--rm", "--name", "piped", "--", "sh", "-c", "read x; echo got $x"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = _wait_for(lambda: _container_pid("piped"))
        assert os.getsid(pid) == pid != os.getsid(proc.pid)
        assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[4]) == 0  # no ctty
        out, err = proc.communicate("hi\n", timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and out == "got hi\n", err
