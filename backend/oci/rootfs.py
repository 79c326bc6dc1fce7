"""The container's root filesystem from ``config.json``, as the engine's rootfs plan (a list of
``rootfs.plan.Op`` carried out by ``rootfs.apply``), decided here without touching anything.

Two lists, as runc orders the work: ``mount_ops`` (the root bound onto itself, then every entry of
``mounts`` in order, then the default device nodes when /dev is not the host's), applied before
``pivot_root`` with paths resolved inside the root (never through its symlinks); and
``late_ops`` (masked and read-only paths), applied after it, once sysctls are written.
"""

from __future__ import annotations

import os

from rustainer.backend.linux.syscalls import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
)
from rustainer.backend.oci.config import Mount, OciConfig
from rustainer.backend.rootfs.plan import DEV_LINKS, DEVICES, Op

# runc's default device nodes (name, major, minor), made in a /dev that is not bound from the host.
DEFAULT_DEVICES = DEVICES
PER_MOUNT = ~(MS_BIND | MS_REC | MS_REMOUNT) & 0xFFFFFFFF


def source_is_dir(source: str) -> bool:
    return os.path.isdir(source)


def mount_ops(cfg: OciConfig, bundle: str, cgroup_paths: dict[str, str], *, is_dir: object = source_is_dir,
              cgroupns: bool = False) -> list[Op]:
    ops = [Op("mount", "/", cfg.root, None, MS_BIND | MS_REC)]
    dev_bound = False
    for m in cfg.mounts:
        if m.type in ("cgroup", "cgroup2"):
            ops += cgroup_ops(m, cgroup_paths, cgroupns)
            continue
        if m.bind:
            source = m.source if os.path.isabs(m.source) else os.path.join(bundle, m.source)
            directory = is_dir(source)  # type: ignore[operator]
            if m.destination == "/dev":
                dev_bound = True
            ops.append(Op("mkdir", m.destination) if directory else Op("touch", m.destination, mode=0o644))
            ops.append(Op("bind", m.destination, source, flags=m.flags & PER_MOUNT & ~MS_BIND))
        else:
            ops.append(Op("mkdir", m.destination))
            ops.append(Op("mount", m.destination, m.source, m.type, m.flags & PER_MOUNT, m.data or None))
        if m.propagation:
            ops.append(Op("remount", m.destination, flags=m.propagation))
    if not dev_bound:
        ops += device_ops(cfg)
    if cfg.process is not None and cfg.process.cwd != "/":
        ops.append(Op("mkdir", cfg.process.cwd))
    return ops


def device_ops(cfg: OciConfig) -> list[Op]:
    ops = [Op("mkdir", "/dev")]
    for name, major, minor in DEFAULT_DEVICES:
        ops.append(Op("mknod", f"/dev/{name}", mode=0o666, device=(major, minor)))
    for name, dest in DEV_LINKS:
        ops.append(Op("symlink", f"/dev/{name}", dest))
    import stat

    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    for d in cfg.devices:
        if d.path in {f"/dev/{n}" for n, _a, _b in DEFAULT_DEVICES}:
            continue
        ops.append(Op("mknod", d.path, mode=kinds[d.type] | (d.mode & 0o7777), device=(d.major, d.minor)))
    return ops


def cgroup_ops(m: Mount, cgroup_paths: dict[str, str], cgroupns: bool) -> list[Op]:
    """/sys/fs/cgroup: with a cgroup namespace, mounted after it is made (``late`` in the init);
    without one, the container's own cgroup folders bound from the host, as runc does on v1."""
    ro = m.flags & MS_RDONLY
    if cgroupns:
        return [Op("mkdir", m.destination)]
    if "unified" in cgroup_paths:
        return [Op("mkdir", m.destination), Op("bind", m.destination, cgroup_paths["unified"],
                                                  flags=MS_NOSUID | MS_NODEV | MS_NOEXEC | ro)]
    ops = [Op("mkdir", m.destination),
           Op("mount", m.destination, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755")]
    seen = set()
    for _ctrl, path in sorted(cgroup_paths.items()):
        # /sys/fs/cgroup/<hierarchy>/<path...>: the hierarchy's folder name (cpu,cpuacct co-mounted)
        parts = path.split("/")
        if len(parts) < 5 or parts[4] in seen:
            continue
        seen.add(parts[4])
        target = f"{m.destination}/{parts[4]}"
        ops += [Op("mkdir", target), Op("bind", target, path, flags=MS_NOSUID | MS_NODEV | MS_NOEXEC | ro)]
    return ops  # the tmpfs itself stays writable, as runc leaves it (its folders are read-only mounts)


def late_ops(cfg: OciConfig) -> list[Op]:
    ops = [Op("readonly_keep", p, optional=True) for p in cfg.readonly_paths]
    ops += [Op("mask", p, optional=True) for p in cfg.masked_paths]
    return ops
