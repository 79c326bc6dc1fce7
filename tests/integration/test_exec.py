"""``rustainer exec``: the new process is inside the running container in every respect (root)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pexpect
import pytest

from helpers import CLI, wait_for

pytestmark = pytest.mark.root
NAMESPACES = ("mnt", "uts", "ipc", "net", "pid", "cgroup")






def test_same_namespaces_hostname_and_pid1(cli, started) -> None:  # type: ignore[no-untyped-def]
    info = started("ex1", "sleep", "300")
    pid1 = info["state"]["pid"]
    assert cli("exec", "ex1", "hostname", check_rc=0).stdout.strip() == "ex1"
    # PID 1 is the init, the command PID 2 (the same processes the container's own view shows)
    assert cli("exec", "ex1", "cat", "/proc/1/comm", "/proc/2/cmdline", check_rc=0).stdout == \
        "rustainer-init\nsleep\x00300\x00"
    inside = cli("exec", "ex1", "sh", "-c", " ".join(f"readlink /proc/self/ns/{ns};" for ns in NAMESPACES),
                 check_rc=0).stdout.split()
    assert inside == [os.readlink(f"/proc/{pid1}/ns/{ns}") for ns in NAMESPACES]
    assert os.readlink(f"/proc/{pid1}/ns/mnt") != os.readlink("/proc/self/ns/mnt")


def test_files_are_shared_both_ways(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("ex2", "sh", "-c", "while [ ! -f /tmp/ping ]; do sleep 0.05; done; echo pong > /tmp/pong; sleep 300")
    cli("exec", "ex2", "sh", "-c", "echo ping > /tmp/ping", check_rc=0)
    wait_for(lambda: cli("exec", "ex2", "cat", "/tmp/pong").stdout == "pong\n", what="the container's answer")
    # the same root: the host's files are not there, the image's are
    assert cli("exec", "ex2", "ls", "/bin/busybox", check_rc=0).stdout.strip() == "/bin/busybox"
    assert cli("exec", "ex2", "test", "-e", "/work").returncode == 1


def test_same_cgroup_caps_and_seccomp(cli, started) -> None:  # type: ignore[no-untyped-def]
    info = started("ex3", "sleep", "300")
    pid1 = info["state"]["pid"]
    procs = Path(info["cgroup"]["paths"]["memory"]) / "cgroup.procs"
    before = sorted(procs.read_text().split())  # the init and its command
    proc = subprocess.Popen([*CLI, "exec", "ex3", "sleep", "123"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def cmdline(pid: str) -> bytes:
            try:
                return Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return b""

        # it joins the cgroup before it execs: wait for the command itself
        pids = wait_for(lambda: [int(p) for p in procs.read_text().split() if cmdline(p) == b"sleep\x00123\x00"],
                        what="the exec'd process in the container's cgroup")
        assert pids[0] != pid1
        for path in info["cgroup"]["paths"].values():  # every hierarchy, not only memory
            assert pids[0] in [int(p) for p in (Path(path) / "cgroup.procs").read_text().split()], path
        for ns in NAMESPACES:
            assert os.readlink(f"/proc/{pids[0]}/ns/{ns}") == os.readlink(f"/proc/{pid1}/ns/{ns}")
        # its pid inside the container's PID namespace is not the host's
        nspid = [line for line in Path(f"/proc/{pids[0]}/status").read_text().splitlines()
                 if line.startswith("NSpid:")][0].split()
        assert len(nspid) == 3 and int(nspid[-1]) > 1
    finally:
        proc.send_signal(signal.SIGTERM)  # the CLI kills its exec'd process when told to stop
        proc.wait(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM
    wait_for(lambda: sorted(procs.read_text().split()) == before, what="the exec'd process to be gone")

    def status_field(text: str, key: str) -> str:
        return [line for line in text.splitlines() if line.startswith(key + ":")][0].split()[1]

    host = Path(f"/proc/{pid1}/status").read_text()
    inside = cli("exec", "ex3", "cat", "/proc/self/status", check_rc=0).stdout
    for key in ("CapBnd", "CapEff", "CapPrm", "Seccomp"):
        assert status_field(inside, key) == status_field(host, key), key
    assert status_field(inside, "Seccomp") == "2"
    assert status_field(inside, "CapInh") == status_field(host, "CapInh") == "0000000000000000"
    assert status_field(inside, "CapAmb") == "0000000000000000"
    assert status_field(inside, "CapBnd") != status_field(Path("/proc/self/status").read_text(), "CapBnd")


@pytest.mark.parametrize(("command", "code"), [(("true",), 0), (("sh", "-c", "exit 3"), 3),
                                               (("/etc/passwd",), 126), (("no-such-command",), 127)])
def test_exit_codes(cli, started, command: tuple[str, ...], code: int) -> None:  # type: ignore[no-untyped-def]
    started("ex4", "sleep", "300")
    proc = cli("exec", "ex4", *command)
    assert proc.returncode == code, proc
    if code >= 126:
        assert len(proc.stderr.splitlines()) == 1 and command[0] in proc.stderr


def test_stdin_only_with_i_and_workdir(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("ex5", "sleep", "300")
    assert cli("exec", "-i", "ex5", "cat", input="hello\n", check_rc=0).stdout == "hello\n"
    assert cli("exec", "ex5", "cat", input="hello\n", check_rc=0).stdout == ""
    assert cli("exec", "-w", "/tmp", "ex5", "pwd", check_rc=0).stdout == "/tmp\n"
    env = cli("exec", "-e", "FOO=bar", "ex5", "env", check_rc=0).stdout.splitlines()
    assert "FOO=bar" in env and "HOSTNAME=ex5" in env and "container=rustainer" in env


def test_tty_comes_from_the_containers_devpts(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("ex6", "sleep", "300")
    child = pexpect.spawn(CLI[0], [*CLI[1:], "exec", "-i", "-t", "ex6", "sh", "-c",
                                   "tty; ls /dev/pts; test -t 0 && echo TTY-OK"],
                          env=dict(os.environ), encoding="utf-8", timeout=15)
    try:
        child.expect(r"/dev/pts/(\d+)")
        number = child.match.group(1)
        child.expect("TTY-OK")
        listing = child.before.split()
        child.expect(pexpect.EOF)
        assert number in listing and "ptmx" in listing  # the entry exists in the container's own devpts
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_unknown_and_exited_containers_are_refused(cli, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    proc = cli("exec", "nosuch", "true")
    assert proc.returncode == 125 and len(proc.stderr.splitlines()) == 1 and "no such container" in proc.stderr
    cli("run", "--name", "gone", "--rootfs", str(busybox_rootfs), "--", "true", check_rc=0)
    proc = cli("exec", "gone", "true")
    assert proc.returncode == 125 and len(proc.stderr.splitlines()) == 1 and "not running" in proc.stderr
    assert cli("exec", "gone").returncode == 125  # no command: a usage error
    proc = cli("exec", "-it", "gone", "true")  # stdin is a pipe (docker: "the input device is not a TTY")
    assert proc.returncode == 125 and len(proc.stderr.splitlines()) == 1 and "not a TTY" in proc.stderr
    cli("rm", "gone", check_rc=0)
