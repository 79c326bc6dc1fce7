"""Limits end to end, through the CLI, on whichever cgroup driver this machine has.

Written for the VM guests (tests/vm: cgroup2 only, with and without systemd as PID 1) and run there
by CI; on a host with cgroup v1 the same tests run against the v1 driver, except those about
cgroup2 or systemd (skipped with the reason). Each case runs once per *setting* this machine offers:

- ``auto``: no driver option: the engine's own detection (v1 / v2 / systemd);
- ``v2-delegated`` (systemd guests): ``--cgroup-driver v2 --cgroup-parent`` beneath a unit started
  with ``Delegate=yes``, the way a service that owns its subtree would run containers;
- ``v2-beside`` (systemd guests): ``--cgroup-driver v2`` with no parent from a non-delegated
  service: the container's cgroup goes beside the caller's (no-internal-processes rule).

The container's cgroup is found from ``inspect`` and read from the host side; nothing here touches
a cgroup that the engine or the fixture did not create.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from helpers import inspect, wait_for
from rustainer.backend.cgroups.detect import detect_driver
from rustainer.backend.errors import CgroupError

pytestmark = [pytest.mark.root]

GUEST = os.environ.get("RUSTAINER_VM_GUEST", "")  # "plain" or "systemd" inside tests/vm's guests
CG = "/sys/fs/cgroup"


def _driver() -> str:
    try:
        return detect_driver()
    except CgroupError:
        return "none"


DRIVER = _driver()
UNIFIED = os.path.exists(CG + "/cgroup.controllers")
SETTINGS = ["auto"] + (["v2-delegated", "v2-beside"] if DRIVER == "systemd" and UNIFIED else [])
CPU = 1 if (os.cpu_count() or 1) > 1 else 0
# Not named rustainer-*: the leak checks would count this module-wide unit against the first test
# that sets it up (it is stopped at the module's end).
DELEGATED_UNIT = f"itest-rustainer-deleg-{os.getpid()}.service"


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read().strip()


def _keyed(path: str) -> dict[str, int]:
    out = {}
    for line in _read(path).splitlines():
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


@pytest.fixture(scope="module")
def delegated() -> Iterator[str]:
    """A unit with Delegate=yes whose one process moved itself into a leaf (``<unit>/payload``), as
    systemd's docs ask of a delegated subtree's owner: the unit's cgroup is then free for children."""
    if DRIVER != "systemd":
        pytest.skip("needs systemd as PID 1")
    rel = f"/system.slice/{DELEGATED_UNIT}"
    # Python, not a shell's ``echo $$ >``: in the guest image of 2026-12-02 (Debian 12) dash's echo
    # fails that write to cgroup.procs ("echo: I/O error"), so the unit ended at once.
    leaf = f"{CG}{rel}/payload"
    script = (f"import os; os.mkdir({leaf!r}); os.write(os.open({leaf + '/cgroup.procs'!r}, os.O_WRONLY), b'%d' % os.getpid()); "
              "os.execvp('sleep', ['sleep', 'infinity'])")
    subprocess.run(["systemd-run", "--quiet", "--unit", DELEGATED_UNIT, "-p", "Delegate=cpuset cpu io memory pids",
                    "--", "/usr/bin/python3", "-c", script], check=True, capture_output=True, timeout=60)
    wait_for(lambda: _read(f"{CG}{rel}/cgroup.procs") == "" and os.path.isdir(f"{CG}{rel}/payload"),
             timeout=30, what="the delegated unit's process to move into its leaf")
    yield rel
    subprocess.run(["systemctl", "stop", DELEGATED_UNIT], capture_output=True, timeout=60)


@pytest.fixture(params=SETTINGS)
def opts(request: pytest.FixtureRequest) -> list[str]:
    """The driver options of this setting (see the module's docstring)."""
    if request.param == "v2-delegated":
        parent = request.getfixturevalue("delegated")
        return ["--cgroup-driver", "v2", "--cgroup-parent", parent + "/containers"]
    if request.param == "v2-beside":
        return ["--cgroup-driver", "v2"]
    return []


def _path(cli, name: str) -> str:  # type: ignore[no-untyped-def]
    record = inspect(cli, name)
    paths = record["cgroup"]["paths"]
    return paths.get("unified") or paths["memory"]  # type: ignore[no-any-return]


def _driver_of(cli, name: str) -> str:  # type: ignore[no-untyped-def]
    return inspect(cli, name)["cgroup"]["driver"]  # type: ignore[no-any-return]


def _need_unified(cli, name: str) -> str:  # type: ignore[no-untyped-def]
    path = _path(cli, name)
    if not os.path.exists(path + "/cgroup.controllers"):
        pytest.skip("a cgroup2 check; this container's cgroups are v1")
    return path


def test_driver_is_detected(cli) -> None:  # type: ignore[no-untyped-def]
    expected = {"plain": "v2", "systemd": "systemd"}.get(GUEST, DRIVER)
    cli("run", "--name", "detect", "--", "true", check_rc=0)
    assert inspect(cli, "detect")["cgroup"]["driver"] == expected
    cli("rm", "detect", check_rc=0)


def test_detached_container_gets_its_limits_stats_and_exec(cli, started, opts) -> None:  # type: ignore[no-untyped-def]
    """One ``--detach`` container (each start of one costs 10-20 s in a TCG guest): the launcher
    rebuilds the driver from saved state and the limits must survive that; ``stats`` reads the
    counters; ``exec`` joins the container's cgroup (at its namespace's root inside, and counted in
    the cgroup from outside while it runs)."""
    started("lim", "sleep", "300", opts=("-m", "64M", "--pids-limit", "20", "--cpu-quota", "0.5", "-c", str(CPU), *opts))
    record = inspect(cli, "lim")
    assert record["limits"] == {"cpus": str(CPU), "memory": 64 << 20, "cpu_quota": 0.5, "pids_limit": 20}
    # The supervisor's start helper cloned PID 1 as the supervisor's own child (CLONE_PARENT; on
    # cgroup v2 together with CLONE_INTO_CGROUP): the supervisor is its parent.
    with open(f"/proc/{record['state']['pid']}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == record["state"]["supervisor_pid"]
    path = _path(cli, "lim")
    if record["cgroup"]["driver"] == "systemd":  # the container's slice (limits) holding its scope (processes)
        assert path.endswith(".slice") and "/rustainer.slice/" in path, path
        assert os.path.isdir(path + "/rustainer-" + record["id"][:12] + ".scope")
    if os.path.exists(path + "/cgroup.controllers"):
        assert _read(path + "/memory.max") == str(64 << 20)
        assert _read(path + "/memory.swap.max") == "0"  # the limit covers swap too
        assert _read(path + "/pids.max") == "20"
        assert _read(path + "/cpu.max").split()[0] == "50000"
        assert _read(path + "/cpuset.cpus") == str(CPU)

    proc = cli("stats", "--no-stream", "lim", check_rc=0)
    row = next(line for line in proc.stdout.splitlines() if line.split()[:1] == ["lim"])
    assert "/ 64M" in row and int(row.split()[-1]) >= 1, proc.stdout  # the limit and pids.current

    proc = cli("exec", "lim", "cat", "/proc/self/cgroup", check_rc=0)
    assert all(line.endswith(":/") for line in proc.stdout.splitlines()), proc.stdout

    def pids() -> set[str]:  # the systemd driver's processes are in the scope beneath its slice
        found: set[str] = set()
        for top, _dirs, files in os.walk(path):
            for name in ("cgroup.procs", "tasks"):
                if name in files:
                    found |= set(_read(os.path.join(top, name)).split())
                    break
        return found

    before = pids()
    child = subprocess.Popen([*__import__("helpers").CLI, "exec", "lim", "sleep", "30"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(pids() - before) >= 1 or child.poll() is not None,
                 timeout=60, what="the exec'd process in the container's cgroup")
        assert child.poll() is None, child.communicate()
    finally:
        child.kill()
        child.communicate()


def test_memory_limit_oom_kill_is_reported(cli, opts) -> None:  # type: ignore[no-untyped-def]
    hog = "x = b'x' * (300 << 20)"  # bytes * n touches every page
    for i in range(3):  # the report must not depend on who looks first (systemd collects scopes)
        proc = cli("run", "--rm", "--name", f"oom{i}", "-m", "48M", *opts, "--", "python3", "-c", hog, timeout=120)
        assert proc.returncode == 137, (proc.returncode, proc.stderr)
        assert "OOM-killed" in proc.stderr, proc.stderr
    assert cli("ps", "-a", "-q", check_rc=0).stdout.strip() == ""  # --rm left no record


def test_oom_of_a_kept_container_is_recorded(cli, opts) -> None:  # type: ignore[no-untyped-def]
    cli("run", "--name", "oomk", "-m", "48M", *opts, "--", "python3", "-c", "x = b'x' * (300 << 20)",
        timeout=120, check_rc=137)
    record = inspect(cli, "oomk")
    assert record["state"]["oom_killed"] is True and record["state"]["exit_code"] == 137
    cli("rm", "oomk", check_rc=0)


def test_own_cgroup_is_visible_inside_read_only(cli, opts) -> None:  # type: ignore[no-untyped-def]
    """Docker's view: /sys/fs/cgroup inside is the container's own cgroup (cgroup namespace root),
    read-only; its cpuset and memory limit read back from inside."""
    script = ("if [ -e /sys/fs/cgroup/cgroup.controllers ]; then cat /sys/fs/cgroup/cpuset.cpus.effective "
              "/sys/fs/cgroup/memory.max; else cat /sys/fs/cgroup/cpuset/cpuset.cpus "
              "/sys/fs/cgroup/memory/memory.limit_in_bytes; fi; mkdir /sys/fs/cgroup/x 2>&1; "
              "awk -F: '$3 != \"/\"' /proc/self/cgroup")  # every hierarchy: at the namespace's root
    proc = cli("run", "--rm", "-c", str(CPU), "-m", "64M", *opts, "--", "sh", "-c", script, check_rc=0)
    lines = proc.stdout.splitlines()
    assert lines[:2] == [str(CPU), str(64 << 20)], lines
    assert "Read-only file system" in lines[2], lines
    assert lines[3:] == [], lines


def test_cpu_quota_throttles(cli, started, opts) -> None:  # type: ignore[no-untyped-def]
    started("busy", "sh", "-c", "while :; do :; done", opts=("--cpu-quota", "0.1", *opts))
    path = _need_unified(cli, "busy")
    wait_for(lambda: _keyed(path + "/cpu.stat").get("nr_throttled", 0) > 2, timeout=60,
             what="cpu.stat to count throttled periods")
    assert _keyed(path + "/cpu.stat")["throttled_usec"] > 0


def test_pids_limit_holds_a_fork_loop(cli, opts) -> None:  # type: ignore[no-untyped-def]
    code = ("import os, time\nkids = []\nfor _ in range(30):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(60); os._exit(0)\n"
            "    kids.append(pid)\nprint(len(kids), flush=True)\nfor k in kids:\n    os.kill(k, 9); os.waitpid(k, 0)\n")
    proc = cli("run", "--rm", "--pids-limit", "8", *opts, "--", "python3", "-c", code, timeout=120, check_rc=0)
    # the init (tini) and python itself are two of the eight
    assert 0 < int(proc.stdout) <= 6, proc.stdout


def test_update_a_running_container(cli, started, opts) -> None:  # type: ignore[no-untyped-def]
    started("upd", "sleep", "300", opts=("-m", "64M", "--pids-limit", "10", *opts))
    cli("update", "-m", "128M", "--pids-limit", "30", "--cpu-quota", "1.5", "-c", str(CPU), "upd", check_rc=0)
    assert inspect(cli, "upd")["limits"] == {"cpus": str(CPU), "memory": 128 << 20, "cpu_quota": 1.5, "pids_limit": 30}
    path = _path(cli, "upd")
    if os.path.exists(path + "/cgroup.controllers"):
        assert _read(path + "/memory.max") == str(128 << 20)
        assert _read(path + "/pids.max") == "30"


def test_cleanup_leaves_no_cgroup(cli, opts) -> None:  # type: ignore[no-untyped-def]
    cli("run", "--name", "gone", "-m", "64M", "--pids-limit", "10", *opts, "--", "true", check_rc=0)
    path = _path(cli, "gone")
    assert not os.path.exists(path)
    cli("rm", "gone", check_rc=0)
    cli("run", "--detach", "--name", "gone2", "-m", "64M", *opts, "--", "sleep", "300", check_rc=0)
    path = _path(cli, "gone2")
    assert os.path.isdir(path)
    cli("rm", "-f", "gone2", check_rc=0)
    wait_for(lambda: not os.path.exists(path), timeout=30, what=f"{path} to be removed")


@pytest.mark.skipif(not UNIFIED, reason="cgroup2 only: clone3's CLONE_INTO_CGROUP takes a cgroup2 directory "
                    "(the mechanism itself: test_clone_into_cgroup.py)")
def test_v2_starts_the_container_in_its_cgroup(cli, opts, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The v2 driver's container starts in its cgroup (clone3 with CLONE_INTO_CGROUP): the start
    has no step that moves it there (a move waits on the kernel's global threadgroup lock), so a
    fault injected at that step is never reached. Below 16M of memory the setup is not charged to
    the container: it is moved once its root is built, as on v1, and the fault is met."""
    if DRIVER == "systemd" and "--cgroup-driver" not in opts:
        pytest.skip("the systemd driver: systemd makes the scope around a process that already runs")
    monkeypatch.setenv("RUSTAINER_FAULT", "cgroup-join")
    proc = cli("run", "--rm", "-m", "64M", *opts, "--", "cat", "/proc/self/cgroup", check_rc=0)
    assert proc.stdout.strip() == "0::/"  # the root of its cgroup namespace: its own cgroup
    small = cli("run", "--rm", "-m", "8M", *opts, "--", "true")
    assert small.returncode == 125 and "cgroup-join" in small.stderr, small
    monkeypatch.delenv("RUSTAINER_FAULT")
    cli("run", "--rm", "-m", "8M", *opts, "--", "true", check_rc=0)


@pytest.mark.skipif(DRIVER not in ("v2", "systemd"), reason="cgroup2 guests (tests/vm) only: on a v1 host "
                    "every parent would be made at the root of a hierarchy")
def test_cgroup_parent_is_used_and_removed(cli, opts) -> None:  # type: ignore[no-untyped-def]
    """A parent the engine made for the container goes with it; one that existed stays."""
    if "--cgroup-parent" in opts:
        pytest.skip("this setting has its own parent")
    if DRIVER == "systemd" and "--cgroup-driver" not in opts:
        parent, expect = "rustainer-itest.slice", f"{CG}/rustainer.slice/rustainer-itest.slice/"
    else:
        own = _read("/proc/self/cgroup").split("::", 1)[1].strip()
        base = os.path.dirname(own.rstrip("/")) if own != "/" else ""
        parent = f"{base}/rustainer-itest-parent/sub"
        expect = f"{CG}{parent}/"
    proc = subprocess.Popen([*__import__("helpers").CLI, "run", "--name", "par", "--cgroup-parent", parent, *opts,
                             "-m", "64M", "--", "sh", "-c", "cat /sys/fs/cgroup/memory.max; read x"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        path = wait_for(lambda: _try_path(cli, "par"), timeout=60, what="the container's cgroup")
        assert path.startswith(expect), (path, expect)
        out, err = proc.communicate("\n", timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == str(64 << 20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    cli("rm", "par", check_rc=0)
    assert not os.path.exists(path)
    if DRIVER == "systemd" and "--cgroup-driver" not in opts:
        # the container's own slice is gone; the parent slice is systemd's (it made it when asked for
        # a slice beneath it) and stays, as slices do: this test asked for it, so it stops it
        assert not any(e.startswith("rustainer-itest-rustainer_") for e in os.listdir(expect.rstrip("/")))
        subprocess.run(["systemctl", "stop", parent], check=True, capture_output=True, timeout=60)
        wait_for(lambda: not os.path.exists(expect), timeout=30, what="systemd to drop the empty slice")
    else:
        assert not os.path.exists(f"{CG}{os.path.dirname(parent)}"), "the parents the engine made were left"


def _try_path(cli, name: str) -> str | None:  # type: ignore[no-untyped-def]
    try:
        path = _path(cli, name)
    except (AssertionError, KeyError, ValueError):
        return None
    return path if os.path.isdir(path) else None


@pytest.mark.skipif(DRIVER != "systemd", reason="systemd as PID 1 only")
def test_scope_is_delegated_and_gone_after_the_container(cli, started) -> None:  # type: ignore[no-untyped-def]
    record = started("sc", "sleep", "300")
    unit = "rustainer-" + record["id"][:12] + ".scope"
    show = subprocess.run(["systemctl", "show", "-p", "Delegate,ActiveState", unit], capture_output=True, text=True)
    assert "Delegate=yes" in show.stdout and "ActiveState=active" in show.stdout, show.stdout
    slice_dir = record["cgroup"]["paths"]["unified"]
    cli("rm", "-f", "sc", check_rc=0)
    for name in (unit, os.path.basename(slice_dir)):
        assert "ActiveState=active" not in subprocess.run(
            ["systemctl", "show", "-p", "ActiveState", name], capture_output=True, text=True).stdout, name
    assert not os.path.exists(slice_dir)


@pytest.mark.skipif(not UNIFIED, reason="cgroup2 only")
def test_threaded_parent_is_refused_clearly(cli) -> None:  # type: ignore[no-untyped-def]
    if DRIVER == "systemd":
        pytest.skip("the v2 driver's own rule; exercised in the plain guest")
    own = _read("/proc/self/cgroup").split("::", 1)[1].strip().rstrip("/")
    parent = f"{own}/rustainer-itest-threaded"
    os.mkdir(CG + parent)
    try:
        with open(CG + parent + "/cgroup.type", "w") as fh:
            fh.write("threaded")
        proc = cli("run", "--rm", "--cgroup-parent", parent, "--", "true")
        assert proc.returncode == 125 and "threaded" in proc.stderr, (proc.returncode, proc.stderr)
    finally:
        os.rmdir(CG + parent)
