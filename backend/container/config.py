"""A container's configuration: the host checks a spec must pass, and everything its PID 1 will do
(the rootfs plan, argv, environment, capabilities), computed from its state alone.

Shared by the foreground run, the supervisor's helper (detached runs) and, in part, ``exec``.
"""

from __future__ import annotations

import os

from rustainer.backend.errors import InvalidSpecError, NotRootError, RootfsError
from rustainer.backend.spec import ContainerSpec, check_cpus_available

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    from rustainer.backend.cgroups.base import CgroupManager
    from rustainer.backend.container.state import ContainerState
    from rustainer.backend.process.child import ChildConfig

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError(
            "rustainer needs root: creating namespaces, mounts and cgroups is reserved to root "
            "(run it with sudo)")


def available_cpus() -> tuple[int, ...]:
    """The CPUs this process may use; a container's cpuset can only be a subset of them."""
    return tuple(sorted(os.sched_getaffinity(0)))


def validate(spec: ContainerSpec) -> ContainerSpec:
    """Checks that need the host (CPUs, folders) but change nothing; returns the spec to run."""
    if spec.resources.cpus is not None:
        check_cpus_available(spec.resources.cpus, available_cpus())
    if spec.network not in ("none", "host"):
        from rustainer.backend.network.ipam import validate_network_name
        from rustainer.backend.network.store import NetworkStore
        from rustainer.backend.util.paths import state_root

        validate_network_name(spec.network)
        if not NetworkStore(state_root()).exists(spec.network):
            raise InvalidSpecError(f"unknown network {spec.network!r}: use none, host, bridge or a network "
                                   "made with 'rustainer network create'")
    if spec.publish:
        from rustainer.backend.spec import check_publish

        check_publish(spec.publish, spec.network)
    if spec.rootfs is not None:
        if not os.path.isdir(spec.rootfs):
            raise RootfsError(f"rootfs folder {spec.rootfs} does not exist (or is not a folder)")
    if spec.directory is not None and not os.path.isabs(spec.directory):
        raise InvalidSpecError(f"directory {spec.directory!r} must be an absolute path")
    if spec.directory is not None and os.path.exists(spec.directory) and not os.path.isdir(spec.directory):
        raise InvalidSpecError(f"directory {spec.directory} exists and is not a folder")
    if spec.layers:
        from rustainer.backend.images.runfile import images_root
        from rustainer.backend.util.paths import state_root

        images = images_root(state_root())
        for layer in spec.layers:
            if not os.path.isdir(os.path.join(images, layer)):
                raise RootfsError(f"a layer of image {spec.image_name or spec.image} is missing from the image "
                                  "store: pull or import the image again")
        if not spec.command:
            raise InvalidSpecError(f"image {spec.image_name or spec.image} has no command (no Entrypoint or Cmd): "
                                   "give a COMMAND to run")
    if not spec.command:
        from rustainer.backend.errors import RootfsError as _RootfsError

        shell = default_shell(spec.rootfs)
        if shell is None:
            raise _RootfsError(f"rootfs {spec.rootfs} has no /bin/sh: give a COMMAND to run")
    return spec


def default_shell(rootfs: str | None) -> str | None:
    if rootfs is None:
        return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    from rustainer.backend.rootfs.safepath import resolve_in_root

    for shell in ("/bin/bash", "/bin/sh"):
        found = resolve_in_root(rootfs, shell)
        if found is not None and os.path.isfile(found):
            return shell
    return None


TINI = "/usr/bin/tini-static"  # Debian's and Ubuntu's package `tini`: static, so it runs in any root


def find_init() -> str | None:
    """The host's static tini (docker's --init) to be the container's PID 1: ``$RUSTAINER_TINI``, by
    default TINI. None (not there, or the variable set empty): rustainer's own init, the setup
    process staying on as PID 1 - as correct, but a Python process of ~2.5 MB PSS per container
    where tini costs ~0.1 MB."""
    path = os.environ.get("RUSTAINER_TINI", TINI)
    return path if path and os.access(path, os.X_OK) else None


def _host_entries() -> tuple[object, ...]:
    from rustainer.backend.rootfs.plan import HOST_VIEW_DIRS, HostEntry

    entries = []
    for name in HOST_VIEW_DIRS:
        path = "/" + name
        if os.path.islink(path):
            entries.append(HostEntry(name, os.readlink(path)))
        elif os.path.isdir(path):
            entries.append(HostEntry(name))
    return tuple(entries)


def _ssh_host_keys() -> tuple[str, ...]:
    try:
        names = os.listdir("/etc/ssh")
    except OSError:
        return ()
    return tuple(f"/etc/ssh/{n}" for n in sorted(names) if n.startswith("ssh_host_") and n.endswith("_key"))


def _plain_file(path: str) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def child_config(state: ContainerState, *, root: str, layer_dir: str, cdir: str,
                 term: str | None = None) -> ChildConfig:
    """Everything the child will do. ``root`` is where its root is built, ``layer_dir`` the folder
    its writable layer is mounted on (a rootfs folder's overlay), ``cdir`` the container's state
    folder (its hosts file)."""
    from rustainer.backend.linux.capabilities import DEFAULT_CAPS, last_cap, mask
    from rustainer.backend.process.child import ChildConfig
    from rustainer.backend.rootfs.plan import INIT_PATH, build_plan

    spec = state.spec
    init_binary = find_init() if spec.init else None
    upper = work = layer = None
    layers_cwd = None
    if spec.layers:
        from rustainer.backend.images.runfile import images_root
        from rustainer.backend.util.paths import state_root

        layers_cwd = images_root(state_root())
    if spec.rootfs is not None or spec.layers:
        layer = layer_dir
        upper, work = os.path.join(layer, "upper"), os.path.join(layer, "work")
    hosts = None
    if spec.network not in ("none", "host"):
        from rustainer.backend.network.hosts import create as create_hosts

        hosts = os.path.join(cdir, "hosts")  # filled in when the container joins the network
        create_hosts(hosts)
    ops = build_plan(
        rootfs=os.path.realpath(spec.rootfs) if spec.rootfs else None,
        upper=upper, work=work,
        directory=os.path.realpath(spec.directory) if spec.directory else None,
        host_entries=_host_entries(),  # type: ignore[arg-type]
        ssh_keys=_ssh_host_keys() if spec.rootfs is None else (),
        hosts=hosts,
        host_has_hosts=hosts is None or spec.rootfs is not None or spec.layers != () or _plain_file("/etc/hosts"),
        init_binary=init_binary,
        layers=spec.layers,
        layers_cwd=layers_cwd,
        workdir=spec.workdir,
    )
    argv = spec.command or (default_shell(spec.rootfs) or "/bin/sh",)
    env = {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": spec.effective_hostname, "container": "rustainer"}
    if spec.tty:
        env["TERM"] = term or os.environ.get("TERM", "xterm")
    env.update(dict(spec.env))
    return ChildConfig(
        root=root, ops=tuple(ops), hostname=spec.effective_hostname, argv=tuple(argv),
        env=tuple(env.items()), workdir=spec.workdir or spec.directory or "/", user=spec.user, new_netns=spec.network != "host",
        caps=mask(DEFAULT_CAPS), last_cap=last_cap(), tty=spec.tty, init=spec.init, layer=layer,
        init_program=INIT_PATH if init_binary is not None else None,
    )


def open_join_files(cgroup: CgroupManager) -> tuple[int, ...]:
    """The cgroup files a child writes ``0`` into to join by itself (cheaper than the parent moving
    it: see ``CgroupManager.self_join_files``), opened here, before the child's root changes."""
    from rustainer.backend.process.handshake import open_join_files as open_files

    return open_files(cgroup.self_join_files())
