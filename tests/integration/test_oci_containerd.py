"""rustainer-oci driven by a real containerd (``ctr run --runc-binary``): output and exit codes,
terminals, exec, kill, ps, pause/resume, limits seen inside, the OOM killer, and nothing left.

One private containerd for the module (own root, state and sockets under a temp folder; stopped by
its pid at the end), with a busybox image built and imported here.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import ocitools
from helpers import wait_for
from ocitools import IMAGE, NAMESPACE, V2, Containerd, cgroup_dirs, oci_binary, remove_cgroup_dirs

pytestmark = [pytest.mark.root, pytest.mark.slow]



def cgroup_file(cid: str, controller: str, v1_name: str, v2_name: str) -> Path:
    return ocitools.cgroup_file(NAMESPACE, cid, controller, v1_name, v2_name)


@pytest.fixture(scope="module")
def ctrd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    folder = tmp_path_factory.mktemp("ctrd")
    c = Containerd(folder)
    try:
        c.import_busybox(folder / "image")
        yield c
    finally:
        c.stop()
        remove_cgroup_dirs(NAMESPACE)
    assert not cgroup_dirs(NAMESPACE)


@pytest.fixture
def clean(ctrd: Containerd) -> Iterator[Containerd]:
    """After the test: no task, no container, no cgroup, no mount of ours left."""
    yield ctrd
    leftovers = ctrd.leftovers()
    ctrd.clean()
    assert not leftovers, f"left behind: {leftovers}"
    wait_for(lambda: [p for p in cgroup_dirs(NAMESPACE) if not p.endswith("/" + NAMESPACE)] == [],
             timeout=10, what="the containers' cgroups to be removed")
    with open("/proc/self/mountinfo") as f:
        rootfs_mounts = [line.split()[4] for line in f if str(ctrd.folder) in line.split()[4]]
    assert not rootfs_mounts, rootfs_mounts
    assert not list(ctrd.runc_root.glob(f"{NAMESPACE}/*")), "the runtime's state was not removed"


def test_output_exit_code_and_inside_view(clean: Containerd) -> None:
    proc = clean.run("out1", "sh", "-c", "echo out; echo err >&2; cat /proc/1/cmdline | tr '\\0' ' '; echo;"
                     " grep CapBnd /proc/self/status; ls -l /proc/timer_list | cut -c1; "
                     "echo x > /proc/sys/kernel/hostname 2>/dev/null || echo ro-proc-sys; exit 7")
    assert proc.returncode == 7, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "out"
    assert "err" in proc.stderr
    assert lines[1].startswith("sh -c echo out")  # the command is PID 1
    # containerd's default capabilities (docker's 14): 0xa80425fb
    assert lines[2].split() == ["CapBnd:", "00000000a80425fb"]
    assert lines[3] == "c"  # /proc/timer_list masked by /dev/null
    assert lines[4] == "ro-proc-sys"


def test_missing_command_fails_and_leaves_nothing(clean: Containerd) -> None:
    proc = clean.run("bad1", "no-such-command")
    assert proc.returncode != 0
    assert "no-such-command" in proc.stderr
    clean.ctr("container", "delete", "bad1")


def test_terminal(clean: Containerd) -> None:
    import pexpect

    argv = clean.argv("run", "--rm", "-t", "--runc-binary", oci_binary(), "--runc-root", str(clean.runc_root), IMAGE,
                      "tty1", "sh", "-c", "tty; echo console-$(ls -l /dev/console | cut -c1); read x; echo got-$x; exit 5")
    child = pexpect.spawn(argv[0], argv[1:],
                          timeout=30, encoding="utf-8", dimensions=(30, 100))
    child.expect("/dev/pts/0")
    child.expect("console-c")  # the pty's slave, bound onto /dev/console
    child.sendline("line")
    child.expect("got-line")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 5


def test_exec_ps_pause_resume_kill(clean: Containerd) -> None:
    proc = clean.ctr("run", "-d", "--runc-binary", oci_binary(), "--runc-root", str(clean.runc_root), IMAGE, "bg1",
                     "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    proc = clean.ctr("task", "exec", "--exec-id", "e1", "bg1", "sh", "-c", "cat /proc/1/cmdline; echo; exit 4")
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout.strip() == "sleep\x001000\x00"
    tasks = clean.ctr("task", "ls").stdout
    pid = int(next(line.split()[1] for line in tasks.splitlines() if line.startswith("bg1")))
    listed = clean.ctr("task", "ps", "bg1").stdout.split()
    assert str(pid) in listed
    freezer = cgroup_file("bg1", "freezer", "freezer.state", "cgroup.freeze")
    frozen, thawed = ("1", "0") if V2 else ("FROZEN", "THAWED")
    assert clean.ctr("task", "pause", "bg1").returncode == 0
    assert "PAUSED" in clean.ctr("task", "ls").stdout
    assert freezer.read_text().strip() == frozen
    assert clean.ctr("task", "resume", "bg1").returncode == 0
    assert "RUNNING" in clean.ctr("task", "ls").stdout
    assert freezer.read_text().strip() == thawed
    # an exec with a terminal (the console socket of an exec)
    import pexpect

    argv = clean.argv("task", "exec", "-t", "--exec-id", "e2", "bg1", "sh", "-c", "echo tty-$(tty); exit 6")
    child = pexpect.spawn(argv[0], argv[1:],
                          timeout=30, encoding="utf-8")
    child.expect("tty-/dev/pts/")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 6
    # a detached exec's process, then kill --all: every process of the container goes
    proc = clean.ctr("task", "exec", "-d", "--exec-id", "e3", "bg1", "sleep", "999")
    assert proc.returncode == 0, proc.stderr
    wait_for(lambda: len(clean.ctr("task", "ps", "bg1").stdout.split()) >= 6, timeout=10, what="the exec to show in ps")
    pids = [int(w) for w in clean.ctr("task", "ps", "bg1").stdout.split() if w.isdigit()]
    assert len(pids) == 2 and pid in pids
    assert clean.ctr("task", "kill", "--all", "-s", "SIGKILL", "bg1").returncode == 0
    wait_for(lambda: "STOPPED" in clean.ctr("task", "ls").stdout, timeout=20, what="the task to stop")
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), timeout=10, what="every process to go")
    assert clean.ctr("task", "delete", "bg1").returncode == 0
    assert clean.ctr("container", "delete", "bg1").returncode == 0


def test_limits_seen_inside_and_update(clean: Containerd, tmp_path: Path) -> None:
    # v1: each hierarchy's folder of the container; v2: its one folder (shares as runc converts them
    # to a weight: 1 + (512 - 2) * 9999 // 262142)
    files = ("memory.max cpu.max cpu.weight" if V2 else
             "memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares")
    proc = clean.run("lim1", "sh", "-c", "cd /sys/fs/cgroup && cat " + files,
                     opts=("--memory-limit", "67108864", "--cpus", "0.5", "--cpu-shares", "512",
                           "--mount", "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["67108864", "50000", "100000", "20" if V2 else "512"]
    # update (containerd's ctr 1.6 has no ``task update``: the runtime's own command, as the shim calls it)
    proc = clean.ctr("run", "-d", "--runc-binary", oci_binary(), "--runc-root", str(clean.runc_root), IMAGE, "lim2",
                     "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    resources = tmp_path / "resources.json"
    resources.write_text(json.dumps({"memory": {"limit": 50331648}, "pids": {"limit": 33}}))
    root = str(clean.runc_root / NAMESPACE)
    proc = subprocess.run([oci_binary(), "--root", root, "update", "--resources", str(resources), "lim2"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert cgroup_file("lim2", "memory", "memory.limit_in_bytes", "memory.max").read_text().strip() == "50331648"
    assert cgroup_file("lim2", "pids", "pids.max", "pids.max").read_text().strip() == "33"
    state = json.loads(subprocess.run([oci_binary(), "--root", root, "state", "lim2"], capture_output=True,
                                      text=True, timeout=30).stdout)
    assert state["status"] == "running" and state["id"] == "lim2" and state["pid"] > 0
    clean.ctr("task", "kill", "-s", "SIGKILL", "lim2")
    wait_for(lambda: "STOPPED" in clean.ctr("task", "ls").stdout, timeout=20, what="the task to stop")
    clean.ctr("task", "delete", "lim2")
    clean.ctr("container", "delete", "lim2")


def test_killed_by_its_memory_limit(clean: Containerd) -> None:
    proc = clean.run("oom1", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                     opts=("--memory-limit", "33554432"))
    assert proc.returncode == 137, proc.stdout + proc.stderr
