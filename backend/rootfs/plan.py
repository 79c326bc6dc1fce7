"""Plan the container's root filesystem as a list of operations (bubblewrap's SetupOp idea).

Building the plan is pure: it takes what it needs to know about the host as arguments and returns
plain records, so every security-relevant decision (what is read-only, masked, ``nodev``) is visible
in one list and unit-tested without root. ``apply.py`` carries the list out inside the container's
mount namespace. Targets are absolute paths *inside* the new root; the applier resolves them without
following symlinks out of it.
"""

from __future__ import annotations

from rustainer.backend.linux.syscalls import (
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REMOUNT,
    MS_STRICTATIME,
)
from rustainer.backend.util.record import record

# The host's system folders that make up the default read-only host view.
HOST_VIEW_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc")
# Host secrets hidden in the host view (bind-mounted over with /dev/null when they exist).
HOST_SECRETS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers")
SSH_HOST_KEY_DIR = "/etc/ssh"
# runc's defaults: masked and read-only paths under /proc and /sys.
MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats",
                "/proc/sched_debug", "/proc/timer_stats")
MASKED_DIRS = ("/proc/acpi", "/proc/scsi", "/sys/firmware")
READONLY_PATHS = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs")
# (name, major, minor): the only device nodes a container gets (docker's safe set).
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))

BIND_RO = MS_RDONLY | MS_NOSUID | MS_NODEV
# The init (tini, docker's --init) is bound from the host into the container's own /dev: a folder
# of ours in every root, so an image's files (and symlinks) are never written to for it.
INIT_PATH = "/dev/rustainer-init"
# An overlay root's writable layer (the overlay's upper folder), bound read-only here and covered by
# an empty read-only tmpfs: the container (without CAP_SYS_ADMIN) sees an empty folder and cannot
# unmount the cover; ``commit`` unmounts it in a private copy of the container's mount namespace
# and reads the changes there (see rootfs/layer.py).
LAYER_PATH = "/dev/.rustainer-layer"


@record
class Op:
    """One setup step. ``action`` is one of the verbs handled in apply.py."""

    action: str  # mount | bind | remount | mkdir | symlink | mknod | mask | mask_file | mask_dir | readonly | readonly_keep | touch | overlay_dir
    target: str  # absolute path inside the new root
    source: str | None = None  # host path (bind) or fs source name (mount)
    fstype: str | None = None
    flags: int = 0
    data: str | None = None
    mode: int = 0o755
    device: tuple[int, int] | None = None
    optional: bool = False  # skip quietly when the target does not exist
    cwd: str | None = None  # mount: change to this folder first (an image's relative lower dirs)


@record
class HostEntry:
    """A top-level host folder for the host view: a real directory, or a symlink (merged /usr)."""

    name: str
    link: str | None = None  # symlink target when the host entry is a symlink


def host_view_root(entries: tuple[HostEntry, ...]) -> list[Op]:
    """The default root: a fresh tmpfs holding read-only binds of the host's system folders."""
    ops = [Op("mount", "/", "rustainer", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")]
    for entry in entries:
        path = "/" + entry.name
        if entry.link is not None:
            ops.append(Op("symlink", path, entry.link))
        else:
            ops.append(Op("mkdir", path))
            ops.append(Op("bind", path, path, flags=BIND_RO))
    for path in ("/tmp", "/run", "/root", "/home", "/var", "/var/tmp", "/proc", "/sys", "/dev"):
        ops.append(Op("mkdir", path))
    ops.append(Op("mount", "/tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
    ops.append(Op("mount", "/var/tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
    ops.append(Op("mount", "/run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
    ops.append(Op("mount", "/root", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700"))
    return ops


def host_secret_masks(ssh_keys: tuple[str, ...]) -> list[Op]:
    """Hide the host's password hashes and SSH host keys from the host view (after /dev exists)."""
    return [Op("mask_file", path, optional=True) for path in (*HOST_SECRETS, *ssh_keys)]


def overlay_root(lower: str | tuple[str, ...], upper: str, work: str, cwd: str | None = None) -> list[Op]:
    """A rootfs folder, or an image's layers (top first, relative to ``cwd``: the image store's short
    links keep many layers inside the one page mount options may fill), as the root through
    overlayfs: the lower folders themselves are never written."""
    lowers = (lower,) if isinstance(lower, str) else lower
    for path in (*lowers, upper, work):
        if any(c in path for c in ",:\\"):
            from rustainer.backend.errors import RootfsError

            raise RootfsError(f"rootfs path {path!r} contains ',', ':' or '\\', which overlayfs cannot take")
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    if len(data) >= 4096:
        from rustainer.backend.errors import RootfsError

        raise RootfsError(f"the image has too many layers ({len(lowers)}) for one overlay mount")
    ops = [Op("mount", "/", "overlay", "overlay", MS_NODEV, data, cwd=cwd)]
    for path in ("/proc", "/sys", "/dev", "/tmp"):
        ops.append(Op("mkdir", path))
    return ops


def kernel_filesystems(init_binary: str | None = None, upper: str | None = None) -> list[Op]:
    """/proc, /sys and /dev with runc's masks and read-only paths (and the init at INIT_PATH; an
    overlay root's ``upper`` folder, covered, at LAYER_PATH)."""
    ops = [
        Op("mount", "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC),
        Op("mount", "/sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY),
        Op("mount", "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_STRICTATIME, "mode=0755,size=64k"),
    ]
    for name, major, minor in DEVICES:
        ops.append(Op("mknod", f"/dev/{name}", mode=0o666, device=(major, minor)))
    for name, dest in DEV_LINKS:
        ops.append(Op("symlink", f"/dev/{name}", dest))
    ops += [
        Op("mkdir", "/dev/pts"),
        Op("mount", "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
           "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        Op("mkdir", "/dev/shm", mode=0o1777),
        Op("mount", "/dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"),
    ]
    if init_binary is not None:  # a mount of its own: /dev's noexec does not apply to it
        ops += [Op("touch", INIT_PATH, mode=0o755), Op("bind", INIT_PATH, init_binary, flags=BIND_RO)]
    if upper is not None:
        ops += [Op("mkdir", LAYER_PATH, mode=0o700), Op("bind", LAYER_PATH, upper, flags=BIND_RO),
                Op("mask_dir", LAYER_PATH)]
    ops += [
        # Populated: freeze /dev so nothing new (a mknod'ed host disk) can appear in it.
        Op("remount", "/dev", flags=MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC),
    ]
    ops += [Op("mask_file", path, optional=True) for path in MASKED_FILES]
    ops += [Op("mask_dir", path, optional=True) for path in MASKED_DIRS]
    ops += [Op("readonly", path, optional=True) for path in READONLY_PATHS]
    return ops


def directory_bind(directory: str) -> list[Op]:
    """The seed's -d DIR: the host folder, read-write, at the same path inside."""
    return [Op("mkdir", directory), Op("bind", directory, directory, flags=MS_NOSUID | MS_NODEV)]


def hosts_bind(hosts: str, *, image: bool) -> list[Op]:
    """A bridge network's per-container hosts file, read-only, onto /etc/hosts.

    An image may lack /etc/hosts (or have a symlink there): ``touch`` makes a plain file in the
    overlay's writable layer first, never following a link. The host view binds over the host's
    file; a host without one gets a file to bind over from ``etc_with_hosts`` first.
    """
    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    if image:
        return [Op("touch", "/etc/hosts", mode=0o644), Op("bind", "/etc/hosts", hosts, flags=flags)]
    return [Op("bind", "/etc/hosts", hosts, flags=flags)]


def etc_with_hosts() -> list[Op]:
    """The host view's /etc on a host without a plain /etc/hosts (a minimal chroot, an image used as
    a host): an overlay of the host's /etc with a private tmpfs as its writable layer, where an
    empty /etc/hosts is made for the hosts file to be bound onto; then read-only again, like the
    rest of the view. The host's /etc is never written. Before the secrets are masked: the masks
    must land on the overlay, not on the view it covers."""
    return [Op("overlay_dir", "/etc", "/etc", flags=MS_NOSUID | MS_NODEV),
            Op("touch", "/etc/hosts", mode=0o644),
            Op("remount", "/etc", flags=MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)]


def build_plan(
    *,
    rootfs: str | None,
    upper: str | None,
    work: str | None,
    directory: str | None,
    host_entries: tuple[HostEntry, ...] = (),
    ssh_keys: tuple[str, ...] = (),
    hosts: str | None = None,
    host_has_hosts: bool = True,
    init_binary: str | None = None,
    layers: tuple[str, ...] = (),
    layers_cwd: str | None = None,
    workdir: str | None = None,
) -> list[Op]:
    """The whole list of operations for one container, in the order they must run. ``layers`` (an
    image's lower folders, top first, relative to ``layers_cwd``) take the place of ``rootfs``.
    ``host_has_hosts``: the host's /etc/hosts is a plain file (the host view binds over it)."""
    if layers:
        if upper is None or work is None:
            raise ValueError("an overlay root needs upper and work folders")
        ops = overlay_root(layers, upper, work, cwd=layers_cwd)
        rootfs = rootfs or "image"
    elif rootfs is None:
        ops = host_view_root(host_entries)
        if hosts is not None and not host_has_hosts:
            ops += etc_with_hosts()
    else:
        if upper is None or work is None:
            raise ValueError("an overlay root needs upper and work folders")
        ops = overlay_root(rootfs, upper, work)
    ops += kernel_filesystems(init_binary, upper if rootfs is not None or layers else None)
    if rootfs is None:
        ops += host_secret_masks(ssh_keys)
    if directory is not None:
        ops += directory_bind(directory)
    if hosts is not None:
        ops += hosts_bind(hosts, image=rootfs is not None)
    if workdir is not None and workdir != "/" and rootfs is not None:
        ops.append(Op("mkdir", workdir))  # an image's WorkingDir, made in the writable layer if missing
    if rootfs is None:
        # Nothing else may be created at the top of the host view: make the tmpfs root read-only.
        ops.append(Op("remount", "/", flags=MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV))
    return ops


