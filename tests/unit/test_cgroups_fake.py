"""The v2 and systemd cgroup drivers, and driver detection, against fakes.

These are fakes because the development host has cgroup v1 (hybrid, with a controller-less
cgroup2 at /sys/fs/cgroup/unified) and no systemd as PID 1, so neither driver can run for real
here. ``FakeKernel`` stands in a temporary directory for cgroupfs: it fills new cgroups with the
files the kernel would create, applies cgroup2's "no internal processes" rule, lets rmdir remove
an empty cgroup's files, and records every write so tests assert exactly what is written. The
systemd driver gets a fake ``runner`` that records busctl argv. Replace with VM-based tests once a
cgroup2/systemd VM exists.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rustainer.backend.cgroups import base, systemd, v2
from rustainer.backend.cgroups.base import CgroupStats, parse_proc_cgroup
from rustainer.backend.cgroups.detect import detect_driver, mount_fstypes, open_manager, systemd_is_init
from rustainer.backend.cgroups.systemd import SystemdManager, cpus_bitmask, slice_path
from rustainer.backend.cgroups.v1 import V1Manager
from rustainer.backend.cgroups.v2 import V2Manager
from rustainer.backend.errors import CgroupError
from rustainer.backend.spec import Resources

ALL = Resources(cpus=(0, 1), memory=64 << 20, cpu_quota=1.5, pids_limit=20)
ROOT_SELF = "0::/\n"


class FakeKernel:
    """A cgroup2 tree in a temp dir, with just enough kernel behaviour for the v2 driver."""

    def __init__(self, root: Path, controllers: str = "cpuset cpu io memory pids") -> None:
        self.root = root
        self.writes: list[tuple[str, str]] = []
        root.mkdir(exist_ok=True)
        (root / "cgroup.controllers").write_text(controllers + "\n")
        (root / "cgroup.subtree_control").write_text("")
        (root / "cgroup.procs").write_text("1\n")

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def populate(self, path: str) -> None:
        """Add the files of the controllers the parent enables (like the kernel, keeping existing ones)."""
        d = Path(path)
        enabled = [c.lstrip("+") for c in (d.parent / "cgroup.subtree_control").read_text().split()]
        files = {"cgroup.controllers": " ".join(enabled), "cgroup.subtree_control": "", "cgroup.procs": "",
                 "cgroup.events": "populated 0\n", "cgroup.kill": ""}
        if "memory" in enabled:
            files |= {"memory.max": "max", "memory.swap.max": "max", "memory.current": "0",
                      "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"}
        if "cpu" in enabled:
            files |= {"cpu.max": "max 100000", "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"}
        if "cpuset" in enabled:
            files |= {"cpuset.cpus": "", "cpuset.mems": ""}
        if "pids" in enabled:
            files |= {"pids.max": "max", "pids.current": "0"}
        (d / "cgroup.controllers").write_text(" ".join(enabled))
        for leaf, text in files.items():
            if not (d / leaf).exists():
                (d / leaf).write_text(text)

    def make_dir(self, path: str, name: str) -> None:
        base.make_dir(path, name)
        self.populate(path)

    def make_parents(self, path: str, made: list[str], on_new: Callable[[str], None] | None = None) -> list[str]:
        def new(d: str) -> None:
            self.populate(d)
            if on_new is not None:
                on_new(d)

        return base.make_parents(path, made, new)

    def write_value(self, path: str, value: str, what: str) -> None:
        self.writes.append((self.rel(path), value))
        p = Path(path)
        if not p.exists():
            base.write_value(path, value, what)  # the real error for a missing file
        if p.name == "cgroup.subtree_control" and p.parent != self.root and (p.parent / "cgroup.procs").read_text().split():
            err = OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            raise CgroupError(f"cannot set {what}") from err
        if p.name == "cgroup.subtree_control":
            value = " ".join(dict.fromkeys([*p.read_text().split(), *(c.lstrip("+") for c in value.split())]))
        elif p.name == "cgroup.procs":
            value = p.read_text() + value + "\n"
        p.write_text(value)
        if p.name == "cgroup.subtree_control":
            for child in p.parent.iterdir():
                if child.is_dir():
                    self.populate(str(child))

    def rmdir(self, path: str | os.PathLike[str]) -> None:
        d = Path(path)
        if d.is_relative_to(self.root) and (d / "cgroup.procs").exists():
            if (d / "cgroup.procs").read_text().split() or any(f.is_dir() for f in d.iterdir()):
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(d))
            for f in d.iterdir():
                if f.is_file():
                    f.unlink()
        _real_rmdir(d)


_real_rmdir = os.rmdir


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKernel]:
    k = FakeKernel(tmp_path / "cgroup")
    monkeypatch.setattr(v2, "write_value", k.write_value)
    monkeypatch.setattr(v2, "make_dir", k.make_dir)
    monkeypatch.setattr(v2, "make_parents", k.make_parents)
    monkeypatch.setattr(os, "rmdir", k.rmdir)
    monkeypatch.setattr(base, "REMOVE_TIMEOUT", 0.05)
    yield k


def _v2(k: FakeKernel, name: str = "web", parent: str | None = None, self_cgroup: str = ROOT_SELF) -> V2Manager:
    return V2Manager(name, parent, root=str(k.root), proc_self_cgroup=self_cgroup)


def _read(k: FakeKernel, rel: str) -> str:
    return (k.root / rel).read_text().strip()


# ---- detection ---------------------------------------------------------------------------------

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
LEGACY = HYBRID.replace("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n", "")


@pytest.mark.parametrize(("mountinfo", "driver"), [(HYBRID, "v1"), (LEGACY, "v1"), (UNIFIED, "v2")])
def test_detect_by_fstype_at_the_root(mountinfo: str, driver: str) -> None:
    assert detect_driver(mountinfo=mountinfo, systemd=False) == driver


def test_detect_prefers_systemd_when_it_is_init() -> None:
    assert detect_driver(mountinfo=UNIFIED, systemd=True) == "systemd"


def test_detect_errors_without_a_cgroup_mount() -> None:
    with pytest.raises(CgroupError, match="no cgroup file system is mounted at /sys/fs/cgroup"):
        detect_driver(mountinfo="22 1 0:21 / /proc rw - proc proc rw\n", systemd=False)
    tmpfs_only = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
    with pytest.raises(CgroupError, match="--cgroup-driver"):
        detect_driver(mountinfo=tmpfs_only, systemd=False)


def test_mount_fstypes_last_mount_wins() -> None:
    assert mount_fstypes(HYBRID + UNIFIED)["/sys/fs/cgroup"] == "cgroup2"


def test_systemd_is_init(tmp_path: Path) -> None:
    assert not systemd_is_init(str(tmp_path / "missing"), "systemd\n")
    assert systemd_is_init(str(tmp_path), "systemd\n")
    assert not systemd_is_init(str(tmp_path), "init\n")


def test_parse_proc_cgroup_handles_comounts_named_and_unified() -> None:
    text = "4:cpu,cpuacct:/a\n9:name=systemd:/s\n3:memory:/process_api/x\n0::/u\n"
    assert parse_proc_cgroup(text) == {"cpu": "/a", "cpuacct": "/a", "name=systemd": "/s",
                                       "memory": "/process_api/x", "": "/u"}


def test_open_manager_routes_by_driver(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert isinstance(open_manager("a", "v2", root=root, proc_self_cgroup=ROOT_SELF), V2Manager)
    assert isinstance(open_manager("a", "v1", root=root, proc_self_cgroup=ROOT_SELF), V1Manager)
    assert isinstance(open_manager("a", "systemd", root=root), SystemdManager)
    with pytest.raises(CgroupError, match="unknown cgroup driver 'v3'"):
        open_manager("a", "v3", root=root)


def test_bad_parent_and_bad_stored_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match="invalid cgroup parent"):
        open_manager("a", "v2", "/x/../../etc", root=str(tmp_path))
    with pytest.raises(CgroupError, match="not a rustainer-a cgroup"):
        open_manager("a", "v2", root=str(tmp_path), paths={"unified": str(tmp_path / "system.slice")})


# ---- v2 ----------------------------------------------------------------------------------------


def test_v2_create_enables_controllers_and_writes_limits(kernel: FakeKernel) -> None:
    mgr = _v2(kernel)
    mgr.create(ALL)
    assert mgr.paths() == {"unified": str(kernel.root / "rustainer-web")}
    assert kernel.writes == [
        ("cgroup.subtree_control", "+cpuset +cpu +memory +pids"),
        ("rustainer-web/cpuset.cpus", "0-1"),
        ("rustainer-web/memory.max", str(64 << 20)),
        ("rustainer-web/memory.swap.max", "0"),
        ("rustainer-web/cpu.max", "150000 100000"),
        ("rustainer-web/pids.max", "20"),
    ]
    assert mgr.read_limits() == ALL


def test_v2_without_limits_writes_only_subtree_control(kernel: FakeKernel) -> None:
    mgr = _v2(kernel)
    mgr.create(Resources())
    assert kernel.writes == [("cgroup.subtree_control", "+cpu +memory +pids")]
    assert mgr.read_limits() == Resources()


def test_v2_nests_under_the_callers_cgroup_and_creates_a_parent(kernel: FakeKernel) -> None:
    mgr = _v2(kernel, parent="/rustainer-test/sub")
    mgr.create(Resources(memory=1 << 30))
    assert mgr.paths()["unified"] == str(kernel.root / "rustainer-test/sub/rustainer-web")
    assert [w for w in kernel.writes if w[0].endswith("subtree_control")] == [
        ("cgroup.subtree_control", "+memory +cpu +pids"),
        ("rustainer-test/cgroup.subtree_control", "+memory +cpu +pids"),
        ("rustainer-test/sub/cgroup.subtree_control", "+memory +cpu +pids"),
    ]
    assert mgr.made_parents == (str(kernel.root / "rustainer-test"), str(kernel.root / "rustainer-test/sub"))
    # another container beneath the same parent, which it found made: it never removes it
    other = _v2(kernel, parent="/rustainer-test/sub", name="db")
    other.create(Resources())
    assert other.made_parents == ()
    mgr.remove()
    assert (kernel.root / "rustainer-test/sub").is_dir()  # still in use by the other container
    other.remove()
    assert (kernel.root / "rustainer-test/sub").is_dir()  # not its to remove
    again = _v2(kernel, parent="/rustainer-test/sub")
    again.create(Resources())
    # re-opened from the state (another process), the parents it made go with the container
    reopened = open_manager("web", "v2", root=str(kernel.root), paths=again.paths(),
                            made_parents=mgr.made_parents)
    reopened.remove()
    assert not (kernel.root / "rustainer-test").exists()
    with pytest.raises(CgroupError, match="not an ancestor"):
        open_manager("web", "v2", root=str(kernel.root), paths=again.paths(), made_parents=("/sys/fs/cgroup/x",))


def test_v2_missing_controller_is_a_clear_error_and_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    k = FakeKernel(tmp_path / "cg", controllers="cpu io memory pids")
    monkeypatch.setattr(v2, "write_value", k.write_value)
    monkeypatch.setattr(v2, "make_dir", k.make_dir)
    monkeypatch.setattr(v2, "make_parents", k.make_parents)
    monkeypatch.setattr(os, "rmdir", k.rmdir)
    mgr = V2Manager("web", "/new/parent", root=str(k.root))
    with pytest.raises(CgroupError, match=r"the cpuset cgroup controller is not available in .*cg \(available: cpu io memory pids\)"):
        mgr.create(Resources(cpus=(0,)))
    assert sorted(p.name for p in k.root.iterdir() if p.is_dir()) == []


def test_v2_busy_parent_suggests_cgroup_parent(kernel: FakeKernel) -> None:
    session = kernel.root / "user.slice"
    session.mkdir()
    kernel.populate(str(session))
    (session / "cgroup.controllers").write_text("cpuset cpu memory pids")
    mgr = _v2(kernel, self_cgroup="0::/user.slice/session.scope\n")
    scope = session / "session.scope"
    scope.mkdir()
    kernel.populate(str(scope))
    (scope / "cgroup.procs").write_text("4343\n")
    # the caller's cgroup has processes: the container goes beside it, in a parent without any
    mgr.create(Resources(memory=1 << 30))
    assert mgr.paths()["unified"] == str(session / "rustainer-web")
    mgr.remove()
    # no process-free parent either: beneath the caller's cgroup, where limits cannot work
    (session / "cgroup.procs").write_text("4242\n")
    busy = _v2(kernel, self_cgroup="0::/user.slice/session.scope\n")
    with pytest.raises(CgroupError, match="no-internal-processes rule.*--cgroup-parent"):
        busy.create(Resources(memory=1 << 30))
    assert not busy.exists()
    # without limits the stats controllers are optional: run without them
    busy.create(Resources())
    assert busy.paths()["unified"] == str(scope / "rustainer-web")


def test_v2_add_pids_update_and_read_limits(kernel: FakeKernel) -> None:
    mgr = _v2(kernel)
    mgr.create(Resources(memory=64 << 20))
    mgr.add(4242)
    assert mgr.pids() == [4242]
    kernel.writes.clear()
    mgr.update(Resources(cpus=(1,), cpu_quota=0.25))
    assert kernel.writes == [
        ("cgroup.subtree_control", "+cpuset"),  # not needed at create time, enabled now
        ("rustainer-web/cpuset.cpus", "1"),
        ("rustainer-web/memory.max", "max"),
        ("rustainer-web/memory.swap.max", "max"),
        ("rustainer-web/cpu.max", "25000 100000"),
        ("rustainer-web/pids.max", "max"),
    ]
    assert mgr.read_limits() == Resources(cpus=(1,), cpu_quota=0.25)
    mgr.update(Resources())
    assert mgr.read_limits() == Resources()


def test_v2_stats_and_oom(kernel: FakeKernel) -> None:
    mgr = _v2(kernel)
    mgr.create(Resources(memory=64 << 20))
    d = kernel.root / "rustainer-web"
    assert not mgr.oom_killed()
    (d / "memory.current").write_text("1048576\n")
    (d / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
    (d / "pids.current").write_text("3\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    assert mgr.stats() == CgroupStats(memory_usage=1 << 20, memory_limit=64 << 20, cpu_usage_ns=2_500_000,
                                      pids_current=3, oom_kills=1)
    assert mgr.oom_killed()


def test_v2_remove_refuses_processes_and_tolerates_gone(kernel: FakeKernel) -> None:
    mgr = _v2(kernel)
    mgr.create(Resources())
    mgr.add(4242)
    with pytest.raises(CgroupError, match=r"still has processes \(4242\): stop the container"):
        mgr.remove()
    (kernel.root / "rustainer-web/cgroup.procs").write_text("")
    sub = kernel.root / "rustainer-web/inner"  # a sub-cgroup the container made (delegation)
    sub.mkdir()
    kernel.populate(str(sub))
    mgr.remove()
    assert not mgr.exists()
    mgr.remove()


def test_v2_existing_cgroup_is_not_taken_over(kernel: FakeKernel) -> None:
    _v2(kernel).create(Resources())
    kernel.writes.clear()
    with pytest.raises(CgroupError, match="already exists"):
        _v2(kernel).create(Resources(memory=1 << 20))
    assert not [w for w in kernel.writes if w[0].startswith("rustainer-web/")]
    assert (kernel.root / "rustainer-web").is_dir()


def test_v2_reopen_from_paths_and_kill_via_cgroup_kill(kernel: FakeKernel) -> None:
    mgr = _v2(kernel)
    mgr.create(Resources(pids_limit=5))
    again = open_manager("web", "v2", root=str(kernel.root), paths=mgr.paths())
    assert again.read_limits() == Resources(pids_limit=5)
    again.kill_all()
    assert kernel.writes[-1] == ("rustainer-web/cgroup.kill", "1")


# ---- systemd -----------------------------------------------------------------------------------

BUS = ["busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"]


class FakeSystemd:
    """Records busctl argv; starting a slice or a scope makes its cgroup (a scope's with the pid),
    attaching adds a pid, stopping removes the unit's cgroup."""

    def __init__(self, root: Path, fail: str | None = None) -> None:
        self.root = root
        self.calls: list[list[str]] = []
        self.fail = fail

    def _dir(self, unit: str) -> Path:
        if unit.endswith(".slice"):
            return self.root / slice_path(unit)
        return self.root / "rustainer.slice" / unit.replace("rustainer-", "rustainer-rustainer_").replace(".scope", ".slice") / unit

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        if self.fail is not None:
            return subprocess.CompletedProcess(argv, 1, "", f"Call failed: {self.fail}\n")
        method, unit = argv[5], argv[7]
        path = self._dir(unit)
        if method == "StartTransientUnit" and unit.endswith(".slice"):
            path.mkdir(parents=True)
            (path / "memory.max").write_text(argv[argv.index("MemoryMax") + 2] if "MemoryMax" in argv else "max")
            (path / "memory.events").write_text("oom_kill 0\n")
        elif method == "StartTransientUnit":
            path.mkdir(parents=True)
            (path / "cgroup.procs").write_text(argv[argv.index("PIDs") + 3] + "\n")
        elif method == "AttachProcessesToUnit":
            with open(path / "cgroup.procs", "a") as fh:
                fh.write(argv[-1] + "\n")
        elif method == "StopUnit" and path.exists():
            shutil.rmtree(path)
        return subprocess.CompletedProcess(argv, 0, "o \"/org/freedesktop/systemd1/job/1\"\n", "")


@pytest.fixture
def unified(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu memory pids\n")
    return root


def test_systemd_pure_helpers() -> None:
    assert cpus_bitmask((0, 1)) == [3]
    assert cpus_bitmask((0, 9, 17)) == [1, 2, 2]
    assert cpus_bitmask(()) == []
    assert slice_path("rustainer.slice") == "rustainer.slice"
    assert slice_path("a-b-c.slice") == "a.slice/a-b.slice/a-b-c.slice"
    assert slice_path("-.slice") == ""
    assert systemd.container_slice("rustainer.slice", "web") == "rustainer-rustainer_web.slice"
    assert systemd.container_slice("rustainer.slice", "my-web") == "rustainer-rustainer_my\\x2dweb.slice"
    assert systemd.container_slice("-.slice", "web") == "rustainer_web.slice"
    assert systemd.container_slice("app-x.slice", "web") == "app-x-rustainer_web.slice"
    with pytest.raises(CgroupError, match="invalid systemd slice 'mygroup'"):
        SystemdManager("web", "mygroup")


def test_systemd_argv_is_exact() -> None:
    assert systemd.slice_argv("rustainer-rustainer_web.slice", ALL, "rustainer container web") == [
        *BUS, "StartTransientUnit", "ssa(sv)a(sa(sv))", "rustainer-rustainer_web.slice", "fail", "9",
        "Description", "s", "rustainer container web",
        "MemoryAccounting", "b", "true",
        "CPUAccounting", "b", "true",
        "TasksAccounting", "b", "true",
        "MemoryMax", "t", str(64 << 20),
        "MemorySwapMax", "t", "0",
        "AllowedCPUs", "ay", "1", "3",
        "CPUQuotaPerSecUSec", "t", "1500000",
        "TasksMax", "t", "20",
        "0",
    ]
    assert systemd.start_argv("rustainer-web.scope", "rustainer-rustainer_web.slice", 4242,
                              Resources(memory=64 << 20), "rustainer container web") == [
        *BUS, "StartTransientUnit", "ssa(sv)a(sa(sv))", "rustainer-web.scope", "fail", "7",
        "Description", "s", "rustainer container web",
        "Slice", "s", "rustainer-rustainer_web.slice",
        "Delegate", "b", "true",
        "CollectMode", "s", "inactive-or-failed",
        "PIDs", "au", "1", "4242",
        "MemoryMax", "t", str(64 << 20),
        "MemorySwapMax", "t", "0",
        "0",
    ]
    assert systemd.attach_argv("rustainer-web.scope", 7) == [
        *BUS, "AttachProcessesToUnit", "ssau", "rustainer-web.scope", "", "1", "7"]


def test_systemd_lifecycle(unified: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "REMOVE_TIMEOUT", 0.05)
    fake = FakeSystemd(unified)
    mgr = open_manager("web", "systemd", root=str(unified), runner=fake)
    slice_dir = unified / "rustainer.slice/rustainer-rustainer_web.slice"
    assert mgr.paths() == {"unified": str(slice_dir)}
    mgr.create(Resources(memory=64 << 20))
    # the limits are on the container's slice at once, before any process (a --detach launcher
    # re-opening the manager from state then needs none of them)
    assert fake.calls[0][5:10] == ["StartTransientUnit", "ssa(sv)a(sa(sv))", "rustainer-rustainer_web.slice", "fail", "6"]
    assert mgr.read_limits() == Resources(memory=64 << 20)
    again = open_manager("web", "systemd", root=str(unified), runner=fake)
    again.add(4242)
    # the scope repeats the slice's limits, read back from the slice
    assert fake.calls[1][5:10] == ["StartTransientUnit", "ssa(sv)a(sa(sv))", "rustainer-web.scope", "fail", "7"]
    assert fake.calls[1][fake.calls[1].index("MemoryMax") + 2] == str(64 << 20)
    assert mgr.pids() == [4242]
    mgr.add(4243)  # exec: the scope runs already, the process joins it
    assert fake.calls[2][5] == "AttachProcessesToUnit"
    assert mgr.pids() == [4242, 4243]
    assert not mgr.oom_killed()

    mgr.update(Resources(pids_limit=9))
    assert fake.calls[3] == [
        *BUS, "SetUnitProperties", "sba(sv)", "rustainer-rustainer_web.slice", "true", "5",
        "MemoryMax", "t", str((1 << 64) - 1),
        "MemorySwapMax", "t", str((1 << 64) - 1),
        "AllowedCPUs", "ay", "0",
        "CPUQuotaPerSecUSec", "t", str((1 << 64) - 1),
        "TasksMax", "t", "9",
    ]
    assert fake.calls[4][5:8] == ["SetUnitProperties", "sba(sv)", "rustainer-web.scope"]

    with pytest.raises(CgroupError, match=r"still has processes \(4242 4243\)"):
        mgr.remove()
    # the scope's processes are gone and systemd collected it: the OOM count is still readable
    shutil.rmtree(slice_dir / "rustainer-web.scope")
    (slice_dir / "memory.events").write_text("oom_kill 1\n")
    assert mgr.oom_killed()
    mgr.remove()
    assert fake.calls[-2:] == [[*BUS, "StopUnit", "ss", "rustainer-web.scope", "fail"],
                               [*BUS, "StopUnit", "ss", "rustainer-rustainer_web.slice", "fail"]]
    assert not mgr.exists()


def test_systemd_errors_are_one_line(unified: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exists = SystemdManager("web", root=str(unified), runner=FakeSystemd(unified, "Unit rustainer-web.scope already exists."))
    with pytest.raises(CgroupError, match="already exists: another container named 'web' is running"):
        exists.add(4242)
    with pytest.raises(CgroupError, match="already exists: another container named 'web' is running"):
        exists.create(Resources())
    gone = SystemdManager("web", root=str(unified), runner=FakeSystemd(unified, "Unit rustainer-web.scope not loaded."))
    gone.remove()  # already gone is fine

    def missing(argv: list[str]) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(errno.ENOENT, "No such file", "busctl")

    with pytest.raises(CgroupError, match="busctl is not installed"):
        SystemdManager("web", root=str(unified), runner=missing).create(Resources())

    monkeypatch.setattr(systemd, "START_TIMEOUT", 0.02)
    silent = SystemdManager("web", root=str(unified), runner=lambda a: subprocess.CompletedProcess(a, 0, "", ""))
    with pytest.raises(CgroupError, match="did not move process 4242 into rustainer-web.scope"):
        silent.add(4242)
    with pytest.raises(CgroupError, match="did not make the cgroup of rustainer-rustainer_web.slice"):
        silent.create(Resources())


def test_systemd_on_a_hybrid_host_reads_v1_hierarchies(tmp_path: Path) -> None:
    for ctrl in ("cpu", "memory", "pids"):
        (tmp_path / ctrl).mkdir()
    mgr = SystemdManager("web", "app-web.slice", root=str(tmp_path))
    assert mgr.paths() == {
        ctrl: str(tmp_path / ctrl / "app.slice/app-web.slice/app-web-rustainer_web.slice") for ctrl in ("cpu", "memory", "pids")
    }


def test_run_path_adds_no_heavy_imports() -> None:
    """create()+add() import base/detect/v1: they must not pull in re, json, pathlib or dataclasses.

    Compared with what the interpreter (and the editable install's finder) already loaded.
    """
    code = (
        "import sys; before = set(sys.modules);"
        "import rustainer.backend.cgroups.detect, rustainer.backend.cgroups.v1;"
        "new = set(sys.modules) - before;"
        "print(' '.join(sorted(m for m in ('re', 'json', 'pathlib', 'dataclasses') if m in new)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_v2_update_enables_a_new_controller_top_down(kernel: FakeKernel) -> None:
    """A parent made for a container without a cpuset limit lacks cpuset: ``update -c`` enables it
    from the nearest ancestor that has it down to the container's parent (found in a guest)."""
    mgr = _v2(kernel, parent="/a/b")
    mgr.create(Resources(memory=1 << 30))
    assert "cpuset" not in _read(kernel, "a/b/rustainer-web/cgroup.controllers").split()
    kernel.writes.clear()
    mgr.update(Resources(cpus=(1,), memory=1 << 30))
    assert [w for w in kernel.writes if w[0].endswith("subtree_control")] == [
        ("cgroup.subtree_control", "+cpuset"),
        ("a/cgroup.subtree_control", "+cpuset"),
        ("a/b/cgroup.subtree_control", "+cpuset"),
    ]
    assert mgr.read_limits() == Resources(cpus=(1,), memory=1 << 30)


def test_the_childs_v1_view_lists_the_drivers_controllers() -> None:
    from rustainer.backend.cgroups.v1 import CONTROLLERS
    from rustainer.backend.process.child import V1_JOINED

    assert V1_JOINED == set(CONTROLLERS)


def test_a_cgroup_removed_while_its_processes_are_read_has_none(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A cgroup's files answer ENODEV once it is removed under a reader (systemd removes an emptied
    scope by itself): no processes, not an error. Simulated here (the race needs systemd: the
    systemd guest's tests meet it for real); other errors still say what failed."""
    import builtins
    import errno

    import pytest

    from rustainer.backend.cgroups.base import read_pids
    from rustainer.backend.errors import CgroupError

    procs = tmp_path / "cgroup.procs"
    procs.write_text("12\n34\n")
    assert read_pids(str(procs)) == [12, 34]
    real_open = builtins.open
    failure = [errno.ENODEV]

    def dying(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path) == str(procs):
            raise OSError(failure[0], "No such device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", dying)
    assert read_pids(str(procs)) == []
    failure[0] = errno.EACCES
    with pytest.raises(CgroupError, match="cannot read"):
        read_pids(str(procs))
