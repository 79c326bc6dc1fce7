"""Test tools for the OCI runtime: a private containerd (own root, state, sockets under a temp folder,
never the system's service), a busybox OCI image imported into it, and ``ctr`` runs.

The containerd is started by the tests and stopped by its pid; every task and container made in
its namespace is removed first, so its shims (which exit with their last task) are gone too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from helpers import wait_for
from imagetools import Layout, need, tar_of

IMAGE = "docker.io/library/rustainer-busybox:test"
NAMESPACE = "ocitest"
RUN_DIR = "/run/containerd"

CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.gc.v1.scheduler"]
  deletion_threshold = 0
"""


def oci_binary() -> str:
    """The installed ``rustainer-oci`` (beside the venv's python the tests run with)."""
    import sys

    path = os.path.join(os.path.dirname(sys.executable), "rustainer-oci")
    assert os.path.exists(path), f"{path} is not installed"
    return path


class Containerd:
    """One private containerd; ``ctr(...)`` talks to it in the test namespace."""

    def __init__(self, folder: Path) -> None:
        need("containerd", "ctr", "containerd-shim-runc-v2")
        self.folder = folder
        # containerd 1.6 puts its shims' sockets in /run/containerd/s whatever its config: removed
        # at the end if we made it (and it is empty)
        self.made_run_dir = not os.path.exists(RUN_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        self.sock = str(folder / "c.sock")
        self.runc_root = folder / "runc-root"
        config = folder / "config.toml"
        config.write_text(CONFIG.format(root=folder / "root", state=folder / "state", sock=self.sock))
        self.log = open(folder / "containerd.log", "wb")
        self.proc = subprocess.Popen(["containerd", "--config", str(config), "--log-level", "warn"],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        wait_for(self._up, timeout=30, what="the private containerd to answer")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"containerd exited: {Path(self.log.name).read_text()[-2000:]}")
        if not os.path.exists(self.sock):
            return False
        return self.ctr("version", timeout=10).returncode == 0

    def argv(self, *args: str) -> list[str]:
        """A ``ctr`` command line for this containerd; the IO fifos of ``run`` and ``task exec`` go
        to our folder (ctr's default is /run/containerd/fifo, where a killed ctr leaves them)."""
        n = 2 if args[:2] == ("task", "exec") else 1 if args[:1] == ("run",) else 0
        fifo = ["--fifo-dir", str(self.folder / "fifo")] if n else []
        if args[:1] == ("run",) and not V2:  # ctr's default, /<namespace>/<id>, is from the hierarchies' roots
            fifo += ["--cgroup", cgroups_path(NAMESPACE, args[args.index(IMAGE) + 1])]
        return ["ctr", "--address", self.sock, "--namespace", NAMESPACE, *args[:n], *fifo, *args[n:]]

    def ctr(self, *args: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout,
                              input=input if input is not None else "")

    def run(self, cid: str, *command: str, runtime: str | None = None, opts: tuple[str, ...] = (),
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``ctr run --rm`` with ``runtime`` as the runc binary (rustainer-oci by default)."""
        return self.ctr("run", "--rm", "--runc-binary", runtime or oci_binary(), "--runc-root",
                        str(self.runc_root), *opts, IMAGE, cid, *command, timeout=timeout)

    def import_busybox(self, workdir: Path) -> None:
        """A busybox image (one layer: the static busybox and its applets), built here."""
        need("busybox")
        tree = workdir / "busybox-tree"
        make_busybox_tree(tree)
        layout = Layout(workdir / "layout")
        desc = layout.image([tar_of(tree=tree)], cmd=["sh"],
                            env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        layout.tag(IMAGE, desc)
        archive = workdir / "busybox.tar"
        with tarfile.open(archive, "w") as tf:
            tf.add(layout.folder, arcname=".")
        proc = self.ctr("image", "import", str(archive), timeout=120)
        assert proc.returncode == 0, proc.stderr
        proc = self.ctr("image", "ls", "-q")
        assert IMAGE in proc.stdout.split(), proc.stdout + proc.stderr

    def leftovers(self) -> list[str]:
        tasks = self.ctr("task", "ls", "-q").stdout.split()
        containers = self.ctr("container", "ls", "-q").stdout.split()
        return tasks + containers

    def clean(self) -> None:
        for cid in self.ctr("task", "ls", "-q").stdout.split():
            self.ctr("task", "kill", "-s", "SIGKILL", cid)
            wait_for(lambda cid=cid: self.ctr("task", "delete", cid).returncode == 0 or
                     cid not in self.ctr("task", "ls", "-q").stdout.split(), timeout=20, what=f"task {cid} to go")
        for cid in self.ctr("container", "ls", "-q").stdout.split():
            self.ctr("container", "delete", cid)

    def stop(self) -> None:
        try:
            self.clean()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.log.close()
            umount_under(self.folder)
            if self.made_run_dir:
                for path in (f"{RUN_DIR}/s", f"{RUN_DIR}/fifo", RUN_DIR):
                    try:
                        os.rmdir(path)
                    except OSError:
                        pass


def umount_under(folder: Path) -> None:
    """Unmount whatever containerd left mounted beneath ``folder`` (deepest first)."""
    prefix = str(folder) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def make_busybox_tree(root: Path) -> None:
    busybox = shutil.which("busybox")
    assert busybox is not None
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev", "usr/bin", "sbin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    (root / "tmp").chmod(0o1777)


def bundle(folder: Path, rootfs: Path, config: dict) -> Path:  # type: ignore[type-arg]
    """A bundle folder: ``config.json`` and ``rootfs`` (a symlink-free copy is not needed: bind)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    if not (folder / "rootfs").exists():
        (folder / "rootfs").symlink_to(rootfs)
    return folder


def base_config(rootfs: Path, args: list[str], cgroups_path: str) -> dict:  # type: ignore[type-arg]
    """A config.json as ``runc spec`` writes it (without a terminal), for ``rootfs``."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                    "cwd": "/", "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": True},
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "cgroupsPath": cgroups_path,
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                            "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


# Where the containers' cgroups go. On a v1 (or hybrid) host, beneath the test's own cgroup in each
# hierarchy: a relative cgroupsPath, which runc and rustainer-oci both place there (the test never
# makes a cgroup outside the subtree it runs in). On cgroup v2 (the VM guests, tests/vm) from the
# hierarchy's root: nested ones would sit beneath the test's own cgroup, which holds processes, and
# cgroup2 gives no controllers to the children of such a cgroup; the guests are ours whole.
V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def cgroups_path(parent: str, cid: str) -> str:
    """A bundle's ``linux.cgroupsPath`` (and ``ctr run --cgroup``) for container ``cid`` under ``parent``."""
    return f"/{parent}/{cid}" if V2 else f"{parent}/{cid}"


def _tops(parent: str) -> list[Path]:
    """``parent``'s folder in each hierarchy (existing or not)."""
    root = Path("/sys/fs/cgroup")
    if V2:
        return [root / parent]
    with open("/proc/self/cgroup") as fh:
        own = {}
        for line in fh:
            _n, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else ["unified"]:
                own[name.removeprefix("name=")] = path.strip("/")
    return [hierarchy / own.get(hierarchy.name, "") / parent for hierarchy in root.iterdir() if hierarchy.is_dir()]


def cgroup_file(parent: str, cid: str, controller: str, v1_name: str, v2_name: str) -> Path:
    """A file of container ``cid``'s cgroup (``controller``'s hierarchy on v1)."""
    if V2:
        return Path(f"/sys/fs/cgroup/{parent}/{cid}/{v2_name}")
    top = next(t for t in _tops(parent) if t.parts[4] == controller)
    return top / cid / v1_name


def cgroup_dirs(parent: str) -> list[str]:
    """Every cgroup folder beneath ``parent`` in every hierarchy (see ``cgroups_path``), the
    parent itself too."""
    found = []
    for top in _tops(parent):
        if top.is_dir():
            found += [str(p) for p in top.rglob("*") if p.is_dir()] + [str(top)]
    return found


def remove_cgroup_dirs(parent: str) -> None:
    for path in sorted(cgroup_dirs(parent), key=len, reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            pass
