"""cgroup v1 (legacy or hybrid) driver: one directory per hierarchy we use.

Every hierarchy in ``CONTROLLERS`` gets a ``rustainer-<name>`` directory even without a limit, so
stats and kill work uniformly. The directory sits beneath the cgroup the caller already runs in *in
that hierarchy* (they differ: on the development VM the caller is at ``/`` for cpu but at
``/process_api/<id>`` for memory), or beneath ``--cgroup-parent`` relative to each mount.
"""

from __future__ import annotations

import os

from rustainer.backend.cgroups.base import (
    CPU_PERIOD_US,
    DEFAULT_ROOT,
    CgroupManager,
    CgroupStats,
    cgroup_dirname,
    check_made_parents,
    check_stored_paths,
    clean_parent,
    make_dir,
    make_parents,
    read_int,
    read_keyed,
    read_optional,
    read_pids,
    read_self_cgroup,
    read_text,
    remove_dir,
    remove_parents,
    rollback,
    under,
    write_value,
)
from rustainer.backend.errors import CgroupError
from rustainer.backend.spec import Resources, format_cpus, parse_cpus
from rustainer.backend.util.rollback import fault

CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "pids")
UNLIMITED = 1 << 60  # memory.limit_in_bytes reads back as LONG_MAX rounded to a page when unset

_NEEDS = {"memory": "memory", "cpus": "cpuset", "cpu_quota": "cpu", "pids_limit": "pids"}


class V1Manager(CgroupManager):
    driver = "v1"

    def __init__(
        self,
        name: str,
        parent: str | None = None,
        *,
        root: str = DEFAULT_ROOT,
        proc_self_cgroup: str | None = None,
        paths: dict[str, str] | None = None,
        leaf: str | None = None,
        made_parents: tuple[str, ...] = (),
        controllers: tuple[str, ...] = CONTROLLERS,
    ) -> None:
        """``leaf`` overrides the directory name (the systemd driver reads its units' dirs);
        ``controllers``: the hierarchies to use (the OCI runtime adds freezer and devices)."""
        self.name = name
        self.controllers = controllers
        self.root = root.rstrip("/") or "/"
        self._leaf = leaf or cgroup_dirname(name)
        if paths is not None:
            self._paths = check_stored_paths(paths, self._leaf, self.root)
        else:
            self._paths = self._compute(parent, proc_self_cgroup)
        self.made_parents = check_made_parents(made_parents, self._paths, self.root)

    def _compute(self, parent: str | None, proc_self_cgroup: str | None) -> dict[str, str]:
        rel = clean_parent(parent) if parent is not None else None
        own = read_self_cgroup(proc_self_cgroup) if rel is None else {}
        paths: dict[str, str] = {}
        for ctrl in self.controllers:
            mount = self.root + "/" + ctrl
            if not os.path.isdir(mount):
                continue  # not mounted on this host: limits needing it fail clearly in create()
            # realpath: co-mounted hierarchies (cpu -> cpu,cpuacct) must map to one directory
            paths[ctrl] = under(os.path.realpath(mount), rel if rel is not None else own.get(ctrl, "/"), self._leaf)
        return paths

    # ---- lifecycle ---------------------------------------------------------------------------

    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    def _dirs(self) -> list[str]:
        seen: list[str] = []
        for path in self._paths.values():
            if path not in seen:
                seen.append(path)
        return seen

    def _need(self, resources: Resources) -> None:
        for field, ctrl in _NEEDS.items():
            if getattr(resources, field) is not None and ctrl not in self._paths:
                raise CgroupError(
                    f"the {ctrl} cgroup controller is not mounted under {self.root}: cannot apply the {field} limit"
                )

    def create(self, resources: Resources) -> None:
        self._need(resources)
        if not self._paths:
            raise CgroupError(f"no cgroup v1 hierarchies found under {self.root}")
        made: list[str] = []
        try:
            for path in self._dirs():
                cpuset = path == self._paths.get("cpuset")
                parents = make_parents(path, made, self._inherit_cpuset if cpuset else None)
                self.made_parents = (*self.made_parents, *parents)
                make_dir(path, self.name)
                made.append(path)
                if cpuset:
                    # a v1 cpuset without cpus and mems refuses tasks: start from the parent's
                    self._inherit_cpuset(path)
            self._apply(resources, reset=False)
        except BaseException:
            rollback(made)
            self.made_parents = ()
            raise

    @staticmethod
    def _inherit_cpuset(path: str) -> None:
        parent = os.path.dirname(path)
        for leaf in ("cpuset.mems", "cpuset.cpus"):
            write_value(path + "/" + leaf, read_text(parent + "/" + leaf), leaf)

    def add(self, pid: int) -> None:
        for path in self._dirs():
            try:
                write_value(path + "/cgroup.procs", str(pid), "the container's process")
            except CgroupError as err:
                if not os.path.exists(f"/proc/{pid}"):
                    raise CgroupError(f"process {pid} exited before it could join cgroup {path}") from err
                raise

    def self_join_files(self) -> list[str]:
        return [path + "/tasks" for path in self._dirs()]

    def update(self, resources: Resources) -> None:
        self._need(resources)
        self._apply(resources, reset=True)

    def _apply(self, r: Resources, *, reset: bool) -> None:
        """Write limits; ``reset`` also writes "unlimited" for ``None`` fields (update)."""
        cpuset = self._paths.get("cpuset")
        if cpuset is not None and (r.cpus is not None or reset):
            fault("limit-cpus")  # the test suite fails an update half-way (see util.rollback)
            cpus = format_cpus(r.cpus) if r.cpus else read_text(os.path.dirname(cpuset) + "/cpuset.cpus")
            write_value(cpuset + "/cpuset.cpus", cpus, "cpuset.cpus (the CPU list)")
        memory = self._paths.get("memory")
        if memory is not None and (r.memory is not None or reset):
            fault("limit-memory")
            self._apply_memory(memory, r.memory)
        cpu = self._paths.get("cpu")
        if cpu is not None and (r.cpu_quota is not None or reset):
            fault("limit-cpu-quota")
            quota = -1 if r.cpu_quota is None else max(1000, round(r.cpu_quota * CPU_PERIOD_US))
            if read_int(cpu + "/cpu.cfs_period_us") != CPU_PERIOD_US:
                write_value(cpu + "/cpu.cfs_period_us", str(CPU_PERIOD_US), "cpu.cfs_period_us")
            write_value(cpu + "/cpu.cfs_quota_us", str(quota), "cpu.cfs_quota_us (the CPU quota)")
        pids = self._paths.get("pids")
        if pids is not None and (r.pids_limit is not None or reset):
            fault("limit-pids")
            write_value(pids + "/pids.max", "max" if r.pids_limit is None else str(r.pids_limit), "pids.max")

    def _apply_memory(self, path: str, limit: int | None) -> None:
        """Memory and memory+swap get the same value (no swap); memsw must never be below limit."""
        value = "-1" if limit is None else str(limit)
        mem = (path + "/memory.limit_in_bytes", value, "memory.limit_in_bytes (the memory limit)")
        memsw_file = path + "/memory.memsw.limit_in_bytes"
        if not os.path.exists(memsw_file):  # kernel without swap accounting
            write_value(*mem)
            return
        memsw = (memsw_file, value, "memory.memsw.limit_in_bytes (memory+swap)")
        current = read_int(memsw_file)
        if limit is None or current is None or limit > current:
            write_value(*memsw)  # raising: memsw first so it stays >= the limit
            write_value(*mem)
        else:
            write_value(*mem)  # lowering: the limit first
            write_value(*memsw)

    def remove(self) -> None:
        for path in reversed(self._dirs()):
            remove_dir(path)
        remove_parents(self.made_parents)

    # ---- reading -----------------------------------------------------------------------------

    def pids(self) -> list[int]:
        for ctrl in ("pids", "memory", "cpu", "cpuset", "cpuacct"):
            if ctrl in self._paths:
                return read_pids(self._paths[ctrl] + "/cgroup.procs")
        return []

    def read_limits(self) -> Resources:
        memory = cpus = quota = pids = None
        if "memory" in self._paths:
            value = read_int(self._paths["memory"] + "/memory.limit_in_bytes")
            memory = value if value is not None and value < UNLIMITED else None
        if "cpuset" in self._paths:
            path = self._paths["cpuset"]
            mine = read_optional(path + "/cpuset.cpus")
            if mine and mine != read_optional(os.path.dirname(path) + "/cpuset.cpus"):
                cpus = parse_cpus(mine)
        if "cpu" in self._paths:
            q = read_int(self._paths["cpu"] + "/cpu.cfs_quota_us")
            period = read_int(self._paths["cpu"] + "/cpu.cfs_period_us") or CPU_PERIOD_US
            quota = q / period if q is not None and q > 0 else None
        if "pids" in self._paths:
            pids = read_int(self._paths["pids"] + "/pids.max")
        return Resources(cpus=cpus, memory=memory, cpu_quota=quota, pids_limit=pids)

    def stats(self) -> CgroupStats:
        mem = self._paths.get("memory")
        usage = limit = oom = None
        if mem is not None:
            usage = read_int(mem + "/memory.usage_in_bytes")
            limit = read_int(mem + "/memory.limit_in_bytes")
            limit = limit if limit is not None and limit < UNLIMITED else None
            oom = read_keyed(mem + "/memory.oom_control").get("oom_kill")
        acct = self._paths.get("cpuacct")
        pids = self._paths.get("pids")
        return CgroupStats(
            memory_usage=usage,
            memory_limit=limit,
            cpu_usage_ns=read_int(acct + "/cpuacct.usage") if acct else None,
            pids_current=read_int(pids + "/pids.current") if pids else None,
            oom_kills=oom,
        )

    def oom_killed(self) -> bool:
        mem = self._paths.get("memory")
        if mem is None:
            return False
        control = read_keyed(mem + "/memory.oom_control")
        if "oom_kill" in control:  # Linux >= 4.13
            return control["oom_kill"] > 0
        # older kernels: under_oom, or the limit was hit while memsw/limit were equal (no swap)
        if control.get("under_oom", 0) > 0:
            return True
        return (read_int(mem + "/memory.memsw.failcnt") or read_int(mem + "/memory.failcnt") or 0) > 0
