"""The rootfs plan (pure): what is read-only, masked, nodev, and in which order."""

from __future__ import annotations

import pytest

from rustainer.backend.errors import RootfsError
from rustainer.backend.linux.syscalls import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REMOUNT
from rustainer.backend.rootfs.plan import (
    DEVICES,
    HOST_SECRETS,
    HOST_VIEW_DIRS,
    INIT_PATH,
    LAYER_PATH,
    MASKED_DIRS,
    MASKED_FILES,
    READONLY_PATHS,
    HostEntry,
    Op,
    build_plan,
)

# A merged-/usr host: bin, sbin, lib* are symlinks into /usr.
ENTRIES = (HostEntry("usr"), HostEntry("bin", "usr/bin"), HostEntry("sbin", "usr/sbin"),
           HostEntry("lib", "usr/lib"), HostEntry("lib64", "usr/lib64"), HostEntry("etc"))


def host_plan(**kw: object) -> list[Op]:
    args: dict[str, object] = {"rootfs": None, "upper": None, "work": None, "directory": None,
                               "host_entries": ENTRIES}
    args.update(kw)
    return build_plan(**args)  # type: ignore[arg-type]


def ops_for(plan: list[Op], target: str, action: str | None = None) -> list[Op]:
    return [op for op in plan if op.target == target and (action is None or op.action == action)]


def test_host_view_dirs_are_read_only_nodev_binds_or_symlinks() -> None:
    plan = host_plan()
    assert plan[0].action == "mount" and plan[0].target == "/" and plan[0].fstype == "tmpfs"
    assert plan[0].flags & MS_NODEV and plan[0].flags & MS_NOSUID
    for entry in ENTRIES:
        path = "/" + entry.name
        if entry.link is not None:
            assert ops_for(plan, path) == [Op("symlink", path, entry.link)]
        else:
            binds = ops_for(plan, path, "bind")
            assert len(binds) == 1 and binds[0].source == path
            assert binds[0].flags & MS_RDONLY and binds[0].flags & MS_NODEV and binds[0].flags & MS_NOSUID
    # Every bind in the host view is read-only except the -d folder.
    for op in plan:
        if op.action == "bind":
            assert op.flags & MS_RDONLY, op
    assert {e.name for e in ENTRIES} <= set(HOST_VIEW_DIRS)


def test_host_view_real_dirs_from_all_names() -> None:
    entries = tuple(HostEntry(n) for n in HOST_VIEW_DIRS)
    plan = host_plan(host_entries=entries)
    assert {op.target for op in plan if op.action == "bind"} == {"/" + n for n in HOST_VIEW_DIRS}
    # a folder the host lacks is not in the plan at all
    assert not ops_for(host_plan(host_entries=(HostEntry("usr"),)), "/lib32")


@pytest.mark.parametrize(("path", "mode"), [("/tmp", "mode=1777"), ("/run", "mode=0755"), ("/root", "mode=0700")])
def test_host_view_writable_tmpfs(path: str, mode: str) -> None:
    plan = host_plan()
    mounts = ops_for(plan, path, "mount")
    assert len(mounts) == 1 and mounts[0].fstype == "tmpfs" and mounts[0].data == mode
    assert mounts[0].flags & MS_NODEV and mounts[0].flags & MS_NOSUID
    assert ops_for(plan, path, "mkdir")
    assert plan.index(ops_for(plan, path, "mkdir")[0]) < plan.index(mounts[0])


def test_masks_and_read_only_paths_present() -> None:
    for plan in (host_plan(), build_plan(rootfs="/img", upper="/u", work="/w", directory=None)):
        for path in MASKED_FILES:
            assert ops_for(plan, path) == [Op("mask_file", path, optional=True)]
        for path in MASKED_DIRS:
            assert ops_for(plan, path) == [Op("mask_dir", path, optional=True)]
        for path in READONLY_PATHS:
            assert ops_for(plan, path) == [Op("readonly", path, optional=True)]
        for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/sys",
                     "/proc/sysrq-trigger"):
            assert ops_for(plan, path), path
        # Masks come after /proc and /sys are mounted.
        proc = plan.index(ops_for(plan, "/proc", "mount")[0])
        sys_ = plan.index(ops_for(plan, "/sys", "mount")[0])
        assert all(plan.index(op) > max(proc, sys_) for op in plan if op.action in ("mask_file", "mask_dir", "readonly"))
        assert ops_for(plan, "/sys", "mount")[0].flags & MS_RDONLY


def test_host_secrets_masked_only_in_host_view() -> None:
    keys = ("/etc/ssh/ssh_host_rsa_key",)
    plan = host_plan(ssh_keys=keys)
    for path in (*HOST_SECRETS, *keys):
        assert ops_for(plan, path) == [Op("mask_file", path, optional=True)]
    assert "/etc/shadow" in HOST_SECRETS and "/etc/gshadow" in HOST_SECRETS
    overlay = build_plan(rootfs="/img", upper="/u", work="/w", directory=None)
    assert not [op for op in overlay if op.target in HOST_SECRETS]
    # /dev/null must exist before the masks bind it
    dev_null = plan.index(ops_for(plan, "/dev/null", "mknod")[0])
    assert all(plan.index(op) > dev_null for op in plan if op.action == "mask_file")


def test_dev_ops() -> None:
    plan = host_plan()
    dev = ops_for(plan, "/dev", "mount")[0]
    assert dev.fstype == "tmpfs" and dev.flags & MS_NOSUID and dev.flags & MS_NOEXEC
    nodes = {op.target: op.device for op in plan if op.action == "mknod"}
    assert nodes == {f"/dev/{name}": (major, minor) for name, major, minor in DEVICES}
    assert set(nodes) == {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
    assert all(op.target.startswith("/dev/") for op in plan if op.action == "mknod")
    pts = ops_for(plan, "/dev/pts", "mount")[0]
    assert pts.fstype == "devpts" and "newinstance" in (pts.data or "") and "ptmxmode=0666" in (pts.data or "")
    assert ops_for(plan, "/dev/ptmx") == [Op("symlink", "/dev/ptmx", "pts/ptmx")]
    shm = ops_for(plan, "/dev/shm", "mount")[0]
    assert shm.flags & MS_NODEV
    # /dev is frozen read-only after it is populated: nothing can be mknod'ed later.
    freeze = ops_for(plan, "/dev", "remount")
    assert len(freeze) == 1 and freeze[0].flags & MS_RDONLY and freeze[0].flags & MS_REMOUNT
    assert all(plan.index(freeze[0]) > plan.index(op) for op in plan
               if op.target.startswith("/dev/") and op.action in ("mknod", "symlink", "mkdir", "mount"))


@pytest.mark.parametrize("image", [False, True])
def test_the_init_is_bound_read_only_into_our_own_dev(image: bool) -> None:
    kw: dict[str, object] = {"rootfs": "/img", "upper": "/l/upper", "work": "/l/work"} if image else {}
    plan = host_plan(init_binary="/usr/bin/tini-static", **kw)
    assert INIT_PATH.startswith("/dev/")  # a tmpfs of ours in every root: no image file is written
    touch, bind = ops_for(plan, INIT_PATH)
    assert touch.action == "touch" and bind == Op("bind", INIT_PATH, "/usr/bin/tini-static",
                                                  flags=MS_RDONLY | MS_NOSUID | MS_NODEV)
    assert not bind.flags & MS_NOEXEC
    assert plan.index(bind) < plan.index(ops_for(plan, "/dev", "remount")[0])  # before /dev freezes
    assert ops_for(host_plan(), INIT_PATH) == []  # no init binary (--no-init, or rustainer's own)


def test_read_only_root_remount_is_last_in_host_view() -> None:
    for directory in (None, "/srv/work"):
        plan = host_plan(directory=directory)
        last = plan[-1]
        assert last.action == "remount" and last.target == "/"
        assert last.flags & MS_REMOUNT and last.flags & MS_RDONLY and last.flags & MS_NODEV
    overlay = build_plan(rootfs="/img", upper="/u", work="/w", directory=None)
    assert not [op for op in overlay if op.action == "remount" and op.target == "/"]


def test_directory_bind_is_writable_nodev_at_same_path() -> None:
    plan = host_plan(directory="/srv/work")
    binds = ops_for(plan, "/srv/work", "bind")
    assert len(binds) == 1 and binds[0].source == "/srv/work"
    assert not binds[0].flags & MS_RDONLY and binds[0].flags & MS_NODEV and binds[0].flags & MS_NOSUID
    assert plan.index(ops_for(plan, "/srv/work", "mkdir")[0]) < plan.index(binds[0])


def test_overlay_plan() -> None:
    plan = build_plan(rootfs="/img", upper="/c/upper", work="/c/work", directory="/d")
    assert plan[0] == Op("mount", "/", "overlay", "overlay", MS_NODEV, "lowerdir=/img,upperdir=/c/upper,workdir=/c/work")
    for path in ("/proc", "/sys", "/dev", "/tmp"):
        assert ops_for(plan, path, "mkdir")
    # the only read-only bind: the writable layer (for commit), covered by an empty read-only tmpfs
    # before /dev is frozen
    assert [op.target for op in plan if op.action == "bind" and op.flags & MS_RDONLY] == [LAYER_PATH]
    layer = ops_for(plan, LAYER_PATH)
    assert [op.action for op in layer] == ["mkdir", "bind", "mask_dir"] and layer[1].source == "/c/upper"
    assert plan.index(layer[2]) < plan.index(ops_for(plan, "/dev", "remount")[0])
    assert not ops_for(host_plan(), LAYER_PATH)
    assert ops_for(plan, "/d", "bind")
    with pytest.raises(ValueError):
        build_plan(rootfs="/img", upper=None, work=None, directory=None)


@pytest.mark.parametrize(("lower", "upper", "work"), [
    ("/img,x", "/u", "/w"), ("/img:x", "/u", "/w"), ("/img", "/u,x", "/w"), ("/img", "/u", "/w:x"),
    ("/img\\x", "/u", "/w"),
])
def test_overlay_refuses_separators(lower: str, upper: str, work: str) -> None:
    with pytest.raises(RootfsError, match="overlayfs cannot take"):
        build_plan(rootfs=lower, upper=upper, work=work, directory=None)


def test_targets_are_absolute() -> None:
    for plan in (host_plan(directory="/x"), build_plan(rootfs="/i", upper="/u", work="/w", directory="/x")):
        assert all(op.target.startswith("/") for op in plan)
        known = {"mount", "bind", "remount", "mkdir", "symlink", "mknod", "mask_file", "mask_dir", "readonly"}
        assert {op.action for op in plan} <= known


@pytest.mark.parametrize("host_has_hosts", [True, False])
def test_host_view_always_gets_the_hosts_file(host_has_hosts: bool) -> None:
    """A host without /etc/hosts: an overlay of /etc (tmpfs upper) gets an empty file to bind onto,
    before the secrets are masked, and is read-only again; with one, the plain bind (never optional)."""
    plan = host_plan(hosts="/state/c/hosts", host_has_hosts=host_has_hosts, ssh_keys=())
    actions = [(op.action, op.target) for op in plan]
    bind = actions.index(("bind", "/etc/hosts"))
    assert not plan[bind].optional and plan[bind].source == "/state/c/hosts"
    if host_has_hosts:
        assert ("overlay_dir", "/etc") not in actions
        return
    overlay = actions.index(("overlay_dir", "/etc"))
    touch = actions.index(("touch", "/etc/hosts"))
    readonly = next(i for i, op in enumerate(plan) if op.action == "remount" and op.target == "/etc")
    masks = [i for i, op in enumerate(plan) if op.action == "mask_file" and op.target.startswith("/etc/")]
    assert actions.index(("bind", "/etc")) < overlay < touch < readonly < min(masks) < bind
    assert plan[readonly].flags & MS_RDONLY
    assert plan[overlay].source == "/etc"


def test_no_etc_overlay_without_a_network_or_with_a_rootfs() -> None:
    assert not [op for op in host_plan(host_has_hosts=False) if op.action == "overlay_dir"]
    plan = build_plan(rootfs="/r", upper="/u", work="/w", directory=None, hosts="/h", host_has_hosts=False)
    assert not [op for op in plan if op.action == "overlay_dir"]
