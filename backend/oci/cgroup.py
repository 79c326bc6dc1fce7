"""A container's cgroup for the OCI runtime, through the engine's cgroup drivers.

``linux.cgroupsPath`` comes in two forms: a path (cgroupfs) and systemd's ``slice:prefix:name`` (with ``--systemd-cgroup``), which names the unit
``prefix-name.scope`` beneath the slice; without a running systemd that form is placed where
systemd would put it (``/system.slice/prefix-name.scope``) by the cgroupfs drivers. A path is
placed as runc places it: an absolute one (``/ns/id``) from each hierarchy's root, a relative one
(``ns/id``, and the container's id when there is none) beneath the cgroup the runtime itself runs
in, in each hierarchy (containerd's shim runs it in its own: a delegated subtree, a test's
cgroup). The engine's
drivers make the folders and write the limits they know (memory with swap, cpuset, pids); what
only the spec has (CPU shares and period, memory reservation, cpuset.mems, the devices
whitelist, the freezer) is written here into the same folders.
"""

from __future__ import annotations

import os

from rustainer.backend.cgroups.base import (
    DEFAULT_ROOT,
    CgroupManager,
    read_optional,
    read_self_cgroup,
    under,
    write_value,
)
from rustainer.backend.errors import CgroupError, InvalidSpecError
from rustainer.backend.oci.config import Device, Resources

V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "pids", "freezer", "devices", "blkio", "systemd")
# What runc allows after the spec's own device rules: making any node (the runtime makes /dev's),
# and using the default ones, the terminals and the pty multiplexer.
DEFAULT_ALLOWED = (
    Device(True, "c", None, None, "m"), Device(True, "b", None, None, "m"),
    *(Device(True, "c", major, minor, "rwm") for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0),
                                                                   (5, 1), (5, 2), (136, None))),
)


def expand_slice(slice_name: str) -> str:
    """``a-b.slice`` -> ``/a.slice/a-b.slice`` (systemd's nesting by dashes)."""
    if slice_name in ("", "-.slice"):
        return ""
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise InvalidSpecError(f"invalid systemd slice {slice_name!r}")
    base = slice_name[: -len(".slice")]
    path, prefix = "", ""
    for part in base.split("-"):
        if not part:
            raise InvalidSpecError(f"invalid systemd slice {slice_name!r}")
        prefix = f"{prefix}-{part}" if prefix else part
        path += f"/{prefix}.slice"
    return path


def cgroup_path(cgroups_path: str | None, cid: str, systemd: bool) -> str:
    """The cgroup's path: from the hierarchies' roots (``/a/b``), or beneath the runtime's own
    cgroup (``a/b``, no leading slash)."""
    if not cgroups_path:
        return f"/system.slice/rustainer-oci-{cid}.scope" if systemd else cid
    if systemd or (cgroups_path.count(":") == 2 and not cgroups_path.startswith("/")):
        slice_name, prefix, name = cgroups_path.split(":") if cgroups_path.count(":") == 2 else ("", "", "")
        if not name:
            raise InvalidSpecError(f"cgroupsPath {cgroups_path!r} is not of the form slice:prefix:name")
        unit = name if name.endswith(".slice") else (f"{prefix}-{name}.scope" if prefix else f"{name}.scope")
        return (expand_slice(slice_name or "system.slice") or "") + "/" + unit
    parts = [p for p in cgroups_path.split("/") if p and p != "."]
    if not parts or ".." in parts:
        raise InvalidSpecError(f"invalid cgroupsPath {cgroups_path!r}")
    return ("/" if cgroups_path.startswith("/") else "") + "/".join(parts)


def open_cgroup(path: str, cid: str, *, driver: str | None = None, paths: dict[str, str] | None = None,
                made_parents: tuple[str, ...] = (), own: dict[str, str] | None = None,
                root: str = DEFAULT_ROOT) -> CgroupManager:
    """``own``: the runtime's cgroups as ``parse_proc_cgroup`` gives them (read from /proc/self
    when a relative path needs them)."""
    from rustainer.backend.cgroups.detect import detect_driver

    if driver is None:
        # runc's default manager is cgroupfs, systemd or not: a systemd host gets the file system's driver
        driver = detect_driver(systemd=False)
    if driver not in ("v1", "v2"):
        raise CgroupError(f"cgroup driver {driver} is not supported by rustainer-oci (cgroupfs v1 and v2 are)")
    parent, leaf = os.path.dirname(path), os.path.basename(path)
    if paths is None and not path.startswith("/"):
        paths = nested_paths(driver, parent, leaf, read_self_cgroup(None) if own is None else own, root)
    if driver == "v2":
        from rustainer.backend.cgroups.v2 import V2Manager

        return V2Manager(cid, parent, root=root, paths=paths, leaf=leaf, made_parents=made_parents)
    from rustainer.backend.cgroups.v1 import V1Manager

    return V1Manager(cid, parent, root=root, paths=paths, leaf=leaf, made_parents=made_parents,
                     controllers=V1_CONTROLLERS)


def engine_resources(r: Resources) -> object:
    """The limits the engine's drivers write themselves."""
    from rustainer.backend.spec import Resources as EngineResources
    from rustainer.backend.spec import parse_cpus

    cpus = None
    if r.cpus:
        try:
            cpus = parse_cpus(r.cpus)
        except Exception as err:  # noqa: BLE001 - any malformed list is the spec's fault
            raise InvalidSpecError(f"config.json: invalid cpu.cpus {r.cpus!r}") from err
    return EngineResources(cpus=cpus, memory=r.memory, pids_limit=r.pids)


def apply_extra(manager: CgroupManager, r: Resources) -> None:
    """The spec's limits the engine's Resources do not carry."""
    paths = manager.paths()
    if "unified" in paths:
        _apply_v2(paths["unified"], r)
        return
    cpu, mem, cpuset, devices = (paths.get(k) for k in ("cpu", "memory", "cpuset", "devices"))
    if cpu is not None:
        if r.cpu_shares is not None:
            write_value(cpu + "/cpu.shares", str(r.cpu_shares), "cpu.shares")
        if r.cpu_period is not None:
            write_value(cpu + "/cpu.cfs_period_us", str(r.cpu_period), "cpu.cfs_period_us")
        if r.cpu_quota is not None:
            write_value(cpu + "/cpu.cfs_quota_us", str(r.cpu_quota if r.cpu_quota > 0 else -1), "cpu.cfs_quota_us")
    elif r.cpu_shares is not None or r.cpu_quota is not None:
        raise CgroupError("the cpu cgroup controller is not mounted: cannot apply the CPU limits")
    if mem is not None:
        if r.memory_swap is not None and os.path.exists(mem + "/memory.memsw.limit_in_bytes"):
            write_value(mem + "/memory.memsw.limit_in_bytes", str(r.memory_swap), "memory.memsw.limit_in_bytes")
        if r.memory_reservation is not None:
            write_value(mem + "/memory.soft_limit_in_bytes", str(r.memory_reservation), "memory.soft_limit_in_bytes")
    if cpuset is not None and r.mems:
        write_value(cpuset + "/cpuset.mems", r.mems, "cpuset.mems")
    if devices is not None and r.devices:
        for rule in (*r.devices, *DEFAULT_ALLOWED):
            kind = rule.type if rule.type in ("a", "b", "c") else "a"
            major = "*" if rule.major is None or rule.major < 0 else str(rule.major)
            minor = "*" if rule.minor is None or rule.minor < 0 else str(rule.minor)
            line = "a" if kind == "a" and major == "*" and minor == "*" else f"{kind} {major}:{minor} {rule.access}"
            name = "devices.allow" if rule.allow else "devices.deny"
            write_value(f"{devices}/{name}", line, name)


def _apply_v2(path: str, r: Resources) -> None:
    if r.cpu_shares is not None:
        weight = 1 + ((r.cpu_shares - 2) * 9999) // 262142
        write_value(path + "/cpu.weight", str(max(1, min(10000, weight))), "cpu.weight")
    if r.cpu_quota is not None or r.cpu_period is not None:
        quota = "max" if r.cpu_quota is None or r.cpu_quota <= 0 else str(r.cpu_quota)
        write_value(path + "/cpu.max", f"{quota} {r.cpu_period or 100000}", "cpu.max")
    if r.memory_reservation is not None:
        write_value(path + "/memory.low", str(r.memory_reservation), "memory.low")
    if r.memory_swap is not None and r.memory is not None and os.path.exists(path + "/memory.swap.max"):
        swap = "max" if r.memory_swap < 0 else str(max(0, r.memory_swap - r.memory))
        write_value(path + "/memory.swap.max", swap, "memory.swap.max")
    if r.mems:
        write_value(path + "/cpuset.mems", r.mems, "cpuset.mems")


def nested_paths(driver: str, parent: str, leaf: str, own: dict[str, str], root: str) -> dict[str, str]:
    """The folders of a relative cgroupsPath (``parent/leaf``): beneath the runtime's own cgroup,
    in each hierarchy."""
    if driver == "v2":
        return {"unified": under(root, own.get("", "/").rstrip("/") + "/" + parent, leaf)}
    paths = {}
    for ctrl in V1_CONTROLLERS:
        mount = f"{root}/{ctrl}"
        if os.path.isdir(mount):  # realpath: co-mounted hierarchies (cpu -> cpu,cpuacct) are one folder
            mine = own.get("name=systemd" if ctrl == "systemd" else ctrl, "/")
            paths[ctrl] = under(os.path.realpath(mount), mine.rstrip("/") + "/" + parent, leaf)
    return paths


def reopen(data: dict[str, object], cid: str) -> CgroupManager | None:
    """The manager recorded in a container's state (None if it had no cgroup)."""
    paths = data.get("cgroup_paths")
    if not isinstance(paths, dict) or not paths:
        return None
    path = str(data.get("cgroup_path", ""))
    made = data.get("cgroup_parents")
    parents = tuple(str(p) for p in made) if isinstance(made, list) else ()
    return open_cgroup(path, cid, driver=str(data.get("cgroup_driver")), paths={str(k): str(v) for k, v in paths.items()},
                       made_parents=parents)


def freeze(data: dict[str, object], on: bool) -> None:
    import time

    from rustainer.backend.oci.state import freezer_file

    spec = freezer_file(data)
    if spec is None:
        raise CgroupError("the container has no freezer cgroup: pause and resume need one")
    path, yes, no = spec
    write_value(path, yes if on else no, "the freezer state")
    if on and path.endswith("freezer.state"):
        deadline = time.monotonic() + 5
        while read_optional(path) == "FREEZING" and time.monotonic() < deadline:
            time.sleep(0.005)


def open_join_files(paths: dict[str, str], fds: list[int]) -> list[int]:
    """Write descriptors of the files a process joins the cgroup(s) ``paths`` through (cgroup2's
    ``cgroup.procs``, v1's ``tasks``; one per distinct folder), opened while the host's /sys is in
    reach; each is also appended to ``fds``, the caller's list of what to close."""
    join_name = "cgroup.procs" if "unified" in paths else "tasks"
    opened = []
    for p in dict.fromkeys(paths.values()):
        fd = os.open(f"{p}/{join_name}", os.O_WRONLY | os.O_CLOEXEC)
        fds.append(fd)
        opened.append(fd)
    return opened
