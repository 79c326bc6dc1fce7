"""The v1 driver against the real kernel: limits are enforced on real child processes.

Every cgroup is created beneath the test process's own cgroups and removed by the fixture's
finalizer, after the children it started are killed by pid (never by name).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from rustainer.backend.cgroups import base
from rustainer.backend.cgroups.base import CgroupManager
from rustainer.backend.cgroups.detect import detect_driver, open_manager
from rustainer.backend.errors import CgroupError
from rustainer.backend.spec import Resources, format_cpus


def _v1_host() -> bool:
    try:
        return os.geteuid() == 0 and detect_driver() == "v1"
    except CgroupError:
        return False


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not _v1_host(), reason="needs root on a host with cgroup v1 hierarchies"),
]

CPU = 1 if (os.cpu_count() or 1) > 1 else 0
# a child that waits for a byte on stdin, so it is in the cgroup before it does anything
WAIT = "import sys; sys.stdin.read(1); "


class Harness:
    def __init__(self) -> None:
        self.managers: list[CgroupManager] = []
        self.children: list[subprocess.Popen[bytes]] = []
        self.extra_dirs: list[str] = []
        self._n = 0

    def manager(self, parent: str | None = None) -> CgroupManager:
        self._n += 1
        mgr = open_manager(f"itest-{os.getpid()}-{self._n}", "v1", parent)
        self.managers.append(mgr)
        return mgr

    def child(self, code: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", WAIT + code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.children.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        for mgr in self.managers:
            if mgr.exists():
                mgr.kill_all()  # only our test's processes can be in our cgroup
                mgr.remove()
            assert not mgr.exists()
        for path in reversed(self.extra_dirs):
            if os.path.isdir(path):
                os.rmdir(path)


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    try:
        yield harness
    finally:
        harness.cleanup()


def _start(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"x")
    proc.stdin.flush()


def _status(pid: int, key: str) -> str:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(key)


def _wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.01)


def test_limits_are_written_enforced_and_read_back(h: Harness) -> None:
    mgr = h.manager()
    res = Resources(cpus=(CPU,), memory=64 << 20, cpu_quota=0.5, pids_limit=20)
    mgr.create(res)
    proc = h.child("import time; time.sleep(30)")
    mgr.add(proc.pid)

    paths = mgr.paths()
    own = base.read_self_cgroup(None)
    assert paths["memory"] == f"/sys/fs/cgroup/memory{own['memory'].rstrip('/')}/{base.PREFIX}{mgr.name}"
    assert _status(proc.pid, "Cpus_allowed_list") == format_cpus((CPU,))
    with open(f"/proc/{proc.pid}/cgroup") as fh:
        assert f"memory:{own['memory'].rstrip('/')}/rustainer-{mgr.name}" in fh.read()

    def read(ctrl: str, leaf: str) -> str:
        with open(paths[ctrl] + "/" + leaf) as fh:
            return fh.read().strip()

    assert read("memory", "memory.limit_in_bytes") == str(64 << 20)
    if os.path.exists(paths["memory"] + "/memory.memsw.limit_in_bytes"):
        assert read("memory", "memory.memsw.limit_in_bytes") == str(64 << 20)
    assert read("cpu", "cpu.cfs_quota_us") == "50000"
    assert read("cpu", "cpu.cfs_period_us") == "100000"
    assert read("pids", "pids.max") == "20"
    assert read("cpuset", "cpuset.mems") != ""

    assert mgr.read_limits() == res
    assert mgr.pids() == [proc.pid]
    stats = mgr.stats()
    assert stats.pids_current == 1
    assert stats.memory_limit == 64 << 20
    assert stats.oom_kills == 0
    assert stats.cpu_usage_ns is not None and stats.memory_usage is not None
    assert not mgr.oom_killed()


def test_a_child_joins_every_hierarchy_by_itself(h: Harness) -> None:
    """The container's child writes ``0`` into each hierarchy's ``tasks`` (no global lock, no RCU
    grace period: see ``self_join_files``) through files its parent opened."""
    from rustainer.backend.container.config import open_join_files
    from rustainer.backend.process.child import join_cgroup

    mgr = h.manager()
    mgr.create(Resources(pids_limit=20))
    assert mgr.self_join_files() == [p + "/tasks" for p in dict.fromkeys(mgr.paths().values())]
    fds = open_join_files(mgr)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            join_cgroup(fds)
            with open("/proc/self/cgroup") as fh:
                os.write(w, fh.read().encode())
        finally:
            os._exit(0)
    for fd in fds:
        os.close(fd)
    os.close(w)
    with os.fdopen(r) as fh:
        seen = fh.read()
    os.waitpid(pid, 0)
    own = base.read_self_cgroup(None)
    for ctrl in mgr.paths():
        assert f"{own[ctrl].rstrip('/')}/rustainer-{mgr.name}\n" in seen, (ctrl, seen)


def test_memory_limit_oom_kills_and_is_reported(h: Harness) -> None:
    mgr = h.manager()
    mgr.create(Resources(memory=48 << 20))
    proc = h.child("x = b'x' * (200 << 20)")  # bytes * n touches every page, unlike bytearray(n)
    mgr.add(proc.pid)
    _start(proc)
    assert proc.wait(timeout=20) == -9
    assert mgr.oom_killed()
    assert (mgr.stats().oom_kills or 0) >= 1


def test_pids_limit_stops_a_fork_loop(h: Harness) -> None:
    mgr = h.manager()
    mgr.create(Resources(pids_limit=5))
    code = (
        "import os, time\n"
        "kids = []\n"
        "for _ in range(20):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30); os._exit(0)\n"
        "    kids.append(pid)\n"
        "print(len(kids), flush=True)\n"
        "for k in kids:\n"
        "    os.kill(k, 9); os.waitpid(k, 0)\n"
    )
    proc = h.child(code)
    mgr.add(proc.pid)
    _start(proc)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert int(out) == 4  # the parent itself is the fifth task


def test_update_changes_and_lifts_limits(h: Harness) -> None:
    mgr = h.manager()
    mgr.create(Resources(memory=64 << 20, pids_limit=10))
    proc = h.child("import time; time.sleep(30)")
    mgr.add(proc.pid)

    raised = Resources(cpus=(CPU,), memory=256 << 20, cpu_quota=1.5, pids_limit=50)
    mgr.update(raised)  # memsw must be raised before the limit
    assert mgr.read_limits() == raised
    _wait_for(lambda: _status(proc.pid, "Cpus_allowed_list") == format_cpus((CPU,)))

    lowered = Resources(memory=32 << 20, pids_limit=3)
    mgr.update(lowered)  # the limit must be lowered before memsw
    assert mgr.read_limits() == lowered

    mgr.update(Resources())
    assert mgr.read_limits() == Resources()


def test_remove_refuses_a_populated_cgroup_then_succeeds(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "REMOVE_TIMEOUT", 0.2)
    mgr = h.manager()
    mgr.create(Resources())
    proc = h.child("import time; time.sleep(30)")
    mgr.add(proc.pid)
    with pytest.raises(CgroupError, match="still has processes"):
        mgr.remove()
    proc.kill()
    proc.wait(timeout=10)
    mgr.remove()
    assert not mgr.exists()
    mgr.remove()  # already gone is fine


def test_failed_create_rolls_back(h: Harness) -> None:
    mgr = h.manager()
    with pytest.raises(CgroupError, match="cpuset.cpus"):
        mgr.create(Resources(cpus=(4095,), memory=64 << 20))
    assert not mgr.exists()


def test_existing_cgroup_is_not_taken_over(h: Harness) -> None:
    mgr = h.manager()
    mgr.create(Resources())
    with pytest.raises(CgroupError, match="already exists"):
        open_manager(mgr.name, "v1").create(Resources(memory=64 << 20))
    assert mgr.exists()
    assert mgr.read_limits() == Resources()  # the failed create wrote nothing on it


def test_reopen_from_state(h: Harness) -> None:
    mgr = h.manager()
    res = Resources(memory=64 << 20, pids_limit=7)
    mgr.create(res)
    assert open_manager(mgr.name, "v1").paths() == mgr.paths()
    again = open_manager(mgr.name, "v1", paths=mgr.paths())
    assert again.read_limits() == res
    with pytest.raises(CgroupError, match="not a rustainer-"):
        open_manager(mgr.name, "v1", paths={"memory": "/sys/fs/cgroup/memory"})


def test_explicit_parent_is_created_per_hierarchy(h: Harness) -> None:
    parent = f"rustainer-itest-parent-{os.getpid()}"
    mgr = h.manager(parent="/" + parent)
    for ctrl, path in mgr.paths().items():
        assert path == f"{os.path.realpath('/sys/fs/cgroup/' + ctrl)}/{parent}/rustainer-{mgr.name}"
    h.extra_dirs.extend(sorted({os.path.dirname(p) for p in mgr.paths().values()}))
    mgr.create(Resources(cpus=(CPU,), memory=64 << 20))  # cpuset parents get cpus/mems too
    assert mgr.read_limits() == Resources(cpus=(CPU,), memory=64 << 20)


UNIFIED = "/sys/fs/cgroup/unified"


@pytest.mark.skipif(not os.path.exists(UNIFIED + "/cgroup.procs"), reason="no cgroup2 mount at " + UNIFIED)
def test_v2_driver_on_the_hybrid_unified_mount(h: Harness) -> None:
    """The hybrid host's cgroup2 has no controllers: the v2 driver still groups processes there."""
    mgr = open_manager(f"itest-{os.getpid()}-u", "v2", root=UNIFIED)
    h.managers.append(mgr)
    with pytest.raises(CgroupError, match="memory cgroup controller is not available"):
        mgr.create(Resources(memory=64 << 20))
    assert not mgr.exists()
    mgr.create(Resources())
    proc = h.child("import time; time.sleep(30)")
    mgr.add(proc.pid)
    assert mgr.pids() == [proc.pid]
    assert mgr.read_limits() == Resources()
    proc.kill()
    proc.wait(timeout=10)
    mgr.remove()
    assert not mgr.exists()
