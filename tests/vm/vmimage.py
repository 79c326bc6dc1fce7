"""Build (once) and boot the cgroup-v2 guests the VM tests run in.

Everything a guest needs is made from Debian packages on this machine's apt sources, without
installing a kernel or mounting an image:

- the kernel: ``linux-image-amd64``'s dependency, ``apt-get download`` + ``dpkg-deb -x``;
- an initramfs: busybox-static, the virtio/ext4 modules (load order from ``modprobe
  --show-depends`` on the unpacked tree) and ``guest/initramfs-init``, which mounts the root image
  and ``switch_root``s to the init named on the kernel command line;
- the root file system: ``debootstrap --variant=minbase`` plus the packages in ``PACKAGES``, this
  folder's ``guest/`` scripts and a subset of the kernel's modules, written into an ext4 image with
  ``mke2fs -d`` (no loop mount).

Artefacts live in ``$RUSTAINER_VM_CACHE`` (default ``/var/cache/rustainer-vm``), named by a hash of
their inputs: the kernel package's version, the package list, and the files of this harness. A
guest opens its image with ``snapshot=on``, so runs never change it. The project is not in the
image: the source tree (with its venv, made with ``/usr/bin/python3``, the guest's own Python) is
shared read-only over 9p at the same path, so a code change needs no rebuild. Results come back
through a second 9p share (pytest's output, JUnit XML, exit status) and the serial console log.

Usage: ``python tests/vm/vmimage.py build`` (prints the artefacts) or ``... boot plain|systemd``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GUEST = HERE / "guest"
SUITE = "bookworm"
# containerd (its ctr and runc shim) and runc: rustainer-oci driven by containerd on cgroup v2
# (tests/integration/test_oci_containerd.py, which starts a private containerd of its own)
# crun: the third runtime of tests/bench/test_vm_oci.py (crun refuses the hybrid host: measured only here)
PACKAGES = ["python3", "systemd", "systemd-sysv", "dbus", "procps", "tini", "busybox-static", "kmod",
            "iproute2", "util-linux", "containerd", "runc", "crun"]
INITRAMFS_MODULES = ["virtio_pci", "virtio_blk", "ext4", "9pnet_virtio", "9p", "virtio_rng"]
# module folders copied into the guest's /lib/modules (the whole tree is ~400 MB)
MODULE_DIRS = ["kernel/fs", "kernel/net", "kernel/lib", "kernel/crypto", "kernel/arch",
               "kernel/drivers/virtio", "kernel/drivers/block", "kernel/drivers/net", "kernel/drivers/char"]
QEMU = "qemu-system-x86_64"
GUEST_CMDLINE = ("console=ttyS0 panic=1 loglevel=4 mitigations=off cgroup_no_v1=all "
                 "systemd.unified_cgroup_hierarchy=1 systemd.show_status=0 rw")
VARIANTS = {
    # plain: a small PID 1 (tini running guest/plain-init) and the cgroupfs v2 driver
    "plain": "/usr/bin/tini -s -- /usr/local/sbin/rustainer-vm-plain-init",
    # systemd as PID 1; the tests run in rustainer-vm-tests.service, a plain oneshot
    "systemd": "/sbin/init",
}


def cache_dir() -> Path:
    return Path(os.environ.get("RUSTAINER_VM_CACHE") or "/var/cache/rustainer-vm")


def log(msg: str) -> None:
    print(f"[vm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, text=True, capture_output=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc  # type: ignore[no-any-return]


def missing_tools() -> list[str]:
    need = [QEMU, "debootstrap", "mke2fs", "dpkg-deb", "apt-get", "cpio", "depmod", "modprobe"]
    found = [t for t in need if shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]
    if not Path("/bin/busybox").exists() and shutil.which("busybox") is None:
        found.append("busybox (busybox-static)")
    return found


def kernel_package() -> tuple[str, str]:
    """(package, version) of the kernel ``linux-image-amd64`` depends on, from the apt cache."""
    out = run(["apt-cache", "depends", "--important", "linux-image-amd64"]).stdout
    pkg = next(line.split(":", 1)[1].strip() for line in out.splitlines() if "Depends:" in line)
    policy = run(["apt-cache", "policy", pkg]).stdout
    version = next(line.split(":", 1)[1].strip() for line in policy.splitlines() if "Candidate:" in line)
    return pkg, version


def harness_digest() -> str:
    h = hashlib.sha256()
    for path in sorted([Path(__file__), *GUEST.rglob("*")]):
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Artefacts:
    kernel: Path
    initrd: Path
    image: Path
    key: str


class _Lock:
    """One builder at a time per cache (CI and developers may share it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def build() -> Artefacts:
    cache = cache_dir()
    pkg, version = kernel_package()
    packages = ",".join(PACKAGES)
    base_key = hashlib.sha256(f"{SUITE}|{packages}|{mirror()}".encode()).hexdigest()[:16]
    key = hashlib.sha256(f"{pkg}|{version}|{base_key}|{harness_digest()}".encode()).hexdigest()[:16]
    out = cache / key
    art = Artefacts(out / "vmlinuz", out / "initrd.img", out / "root.ext4", key)
    if art.image.exists():
        return art
    with _Lock(cache / "build.lock"):
        if art.image.exists():
            return art
        start = time.monotonic()
        kdir = fetch_kernel(cache, pkg, version)
        base = debootstrap(cache, base_key)
        work = cache / f"{key}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        kver = pkg.removeprefix("linux-image-")
        shutil.copy2(kdir / "boot" / f"vmlinuz-{kver}", work / "vmlinuz")
        make_initramfs(kdir, kver, work / "initrd.img")
        make_image(base, kdir, kver, work / "root.ext4")
        shutil.rmtree(out, ignore_errors=True)
        work.rename(out)
        log(f"guest artefacts {key} built in {time.monotonic() - start:.0f}s")
        prune(cache, keep={key, base_key, f"kernel-{version}"})
    return art


def prune(cache: Path, keep: set[str]) -> None:
    """Drop artefacts of older inputs (a cache must not grow without bound); nothing else is touched."""
    import re

    ours = re.compile(r"(base-)?[0-9a-f]{16}(\.tmp)?|kernel-.+")
    for entry in cache.iterdir():
        if not entry.is_dir() or not ours.fullmatch(entry.name):
            continue
        if entry.name.removeprefix("base-") not in keep and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and "/debian" in line and "security" not in line:
                return words[1]
            if words[:1] == ["deb"] and any(w.rstrip("/").endswith("/debian") for w in words):
                return next(w for w in words if w.rstrip("/").endswith("/debian"))
    return "http://deb.debian.org/debian"


def fetch_kernel(cache: Path, pkg: str, version: str) -> Path:
    kdir = cache / f"kernel-{version}"
    if (kdir / "ok").exists():
        return kdir
    log(f"fetching {pkg} {version}")
    shutil.rmtree(kdir, ignore_errors=True)
    dl = cache / "download"
    shutil.rmtree(dl, ignore_errors=True)
    dl.mkdir(parents=True)
    os.chmod(dl, 0o777)  # apt-get download drops to _apt
    run(["apt-get", "download", "-q", f"{pkg}={version}"], cwd=dl)
    deb = next(dl.glob("*.deb"))
    run(["dpkg-deb", "-x", str(deb), str(kdir)])
    shutil.rmtree(dl, ignore_errors=True)
    kver = pkg.removeprefix("linux-image-")
    run(["depmod", "-b", str(kdir), kver])
    (kdir / "ok").touch()
    return kdir


def debootstrap(cache: Path, base_key: str) -> Path:
    base = cache / f"base-{base_key}"
    if (base / ".rustainer-vm-ok").exists():
        return base
    log(f"debootstrap {SUITE} minbase + {','.join(PACKAGES)} (about a minute)")
    shutil.rmtree(base, ignore_errors=True)
    run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(base), mirror()])
    shutil.rmtree(base / "var/cache/apt/archives", ignore_errors=True)
    (base / "var/cache/apt/archives/partial").mkdir(parents=True)
    (base / ".rustainer-vm-ok").touch()
    return base


def _module_load_order(kdir: Path, kver: str, names: list[str]) -> list[Path]:
    order: list[Path] = []
    for name in names:
        out = run(["modprobe", "-d", str(kdir), "-S", kver, "--show-depends", name]).stdout
        for line in out.splitlines():
            words = line.split()
            if words[:1] == ["insmod"] and Path(words[1]) not in order:
                order.append(Path(words[1]))
    return order


def make_initramfs(kdir: Path, kver: str, dest: Path) -> None:
    stage = dest.parent / "initramfs"
    for d in ("bin", "dev", "proc", "sys", "newroot", "modules"):
        (stage / d).mkdir(parents=True, exist_ok=True)
    busybox = Path("/bin/busybox") if Path("/bin/busybox").exists() else Path(shutil.which("busybox") or "busybox")
    shutil.copy2(busybox, stage / "bin" / "busybox")
    lines = []
    for i, ko in enumerate(_module_load_order(kdir, kver, INITRAMFS_MODULES)):
        target = f"{i:02d}-{ko.name}"
        shutil.copy2(ko, stage / "modules" / target)
        lines.append(target)
    (stage / "modules" / "order").write_text("\n".join(lines) + "\n")
    shutil.copy2(GUEST / "initramfs-init", stage / "init")
    os.chmod(stage / "init", 0o755)
    files = run(["find", "."], cwd=stage).stdout
    with open(dest, "wb") as fh:
        proc = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "--owner=0:0"], input=files.encode(),
                              stdout=fh, cwd=stage, check=False)
    if proc.returncode != 0:
        raise RuntimeError("cpio failed")
    shutil.rmtree(stage)


def make_image(base: Path, kdir: Path, kver: str, dest: Path) -> None:
    stage = dest.parent / "rootfs"
    run(["cp", "-a", "--reflink=auto", str(base), str(stage)])
    (stage / ".rustainer-vm-ok").unlink()
    mods = stage / "lib/modules" / kver
    for sub in MODULE_DIRS:
        src = kdir / "lib/modules" / kver / sub
        if src.exists():
            (mods / sub).parent.mkdir(parents=True, exist_ok=True)
            run(["cp", "-a", str(src), str(mods / sub)])
    for f in (kdir / "lib/modules" / kver).glob("modules.*"):
        shutil.copy2(f, mods / f.name)
    run(["depmod", "-b", str(stage), kver])
    sbin = stage / "usr/local/sbin"
    for script in ("plain-init", "run-tests"):
        shutil.copy2(GUEST / script, sbin / f"rustainer-vm-{script}")
        os.chmod(sbin / f"rustainer-vm-{script}", 0o755)
    units = stage / "etc/systemd/system"
    shutil.copy2(GUEST / "rustainer-vm-tests.service", units / "rustainer-vm-tests.service")
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "rustainer-vm-tests.service").symlink_to("../rustainer-vm-tests.service")
    # a quiet, quick boot: nothing to log in to, nothing periodic
    for unit in ("getty@tty1.service", "serial-getty@ttyS0.service", "getty.target",
                 "systemd-timesyncd.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                 "e2scrub_all.timer", "fstrim.timer", "dpkg-db-backup.timer", "systemd-tmpfiles-clean.timer",
                 "systemd-networkd-wait-online.service", "systemd-update-utmp.service",
                 "containerd.service"):  # the tests start a private one
        link = units / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (stage / "etc/hostname").write_text("rustainer-vm\n")
    (stage / "etc/fstab").write_text("/dev/vda / ext4 rw,relatime 0 1\n")
    (stage / "etc/modules-load.d").mkdir(exist_ok=True)
    (stage / "etc/modules-load.d/rustainer-vm.conf").write_text("overlay\n9p\n9pnet_virtio\n")
    (stage / "etc/machine-id").write_text("")  # systemd makes a transient one per boot
    # mke2fs -d copies the tree as it is, owners and modes included
    used = int(run(["du", "-sm", str(stage)]).stdout.split()[0])
    size = max(1024, used * 2 + 512)
    run(["mke2fs", "-q", "-t", "ext4", "-L", "rustainer-vm", "-E", "root_owner=0:0", "-d", str(stage),
         str(dest), f"{size}M"])
    shutil.rmtree(stage)


# ---- booting -----------------------------------------------------------------------------------


@dataclass
class GuestRun:
    variant: str
    exit_code: int | None  # pytest's status inside the guest; None: the guest never reported one
    qemu_code: int | None
    seconds: float
    results: Path

    def text(self, name: str) -> str:
        try:
            return (self.results / name).read_text(errors="replace")
        except OSError:
            return ""

    def report(self, lines: int = 120) -> str:
        """What a failure shows: the guest's pytest output and the tail of its console log."""
        out = [f"--- {self.variant} guest: pytest exit {self.exit_code}, qemu exit {self.qemu_code}, "
               f"{self.seconds:.0f}s ---"]
        out.append("--- pytest output (tail) ---")
        out += self.text("pytest.log").splitlines()[-lines:]
        out.append("--- guest log (tail) ---")
        out += self.text("guest.log").splitlines()[-40:]
        out.append("--- serial console (tail) ---")
        # the guest's own dump of a run that stopped making progress goes to its console too: shown
        # once, from stall.txt or, if the results share did not get it, from the console
        before, _, rest = self.text("console.log").partition("=== stall.txt ===")
        dumped, _, after = rest.partition("=== end of stall.txt ===")
        out += (before + after).splitlines()[-lines:]
        stall = self.text("stall.txt") or dumped.strip()
        if stall:
            out.append("--- what the guest was doing when its tests stalled (stall.txt) ---")
            out += stall.splitlines()[:600]
        return "\n".join(out)


def venv_prefix() -> Path:
    """The venv the guest runs: this interpreter's, which must be built on /usr/bin/python3."""
    prefix = Path(sys.prefix)
    cfg = prefix / "pyvenv.cfg"
    home = ""
    if cfg.exists():
        for line in cfg.read_text().splitlines():
            if line.startswith("home ="):
                home = line.split("=", 1)[1].strip()
    if home not in ("/usr/bin", "/bin"):
        raise RuntimeError(f"the VM tests need a venv built with /usr/bin/python3 (the guest's Python); "
                           f"{prefix} is based on {home or 'no venv'}: run `bash .ci/setup --test`")
    return prefix


def boot(variant: str, art: Artefacts, results: Path, pytest_args: list[str], *, timeout: float = 1200,
         extra_env: dict[str, str] | None = None) -> GuestRun:
    """Boot one guest, run ``pytest pytest_args`` in it (from the repo's root), wait for it to power off."""
    import shlex

    results.mkdir(parents=True, exist_ok=True)
    for stale in ("exit", "pytest.log", "junit.xml", "guest.log", "console.log", "stall.txt"):
        (results / stale).unlink(missing_ok=True)
    venv = venv_prefix()
    # The guest runs a copy of the tests taken now, at the tree's path (its config and rootdir), so
    # editing or rebasing the tree while a guest runs cannot change what it collects; the venv (the
    # installed package) is shared as it is, mounted at its own path.
    snapshot = results / "src"
    shutil.rmtree(snapshot, ignore_errors=True)
    snapshot.mkdir()
    shutil.copytree(REPO / "tests", snapshot / "tests", ignore=shutil.ignore_patterns("__pycache__", ".corpus-cache"))
    shutil.copy2(REPO / "pyproject.toml", snapshot / "pyproject.toml")
    shares = {"src": snapshot}
    mounts = {"src": REPO}
    if venv.is_relative_to(REPO):
        (snapshot / venv.relative_to(REPO)).mkdir(parents=True)
    shares["venv"], mounts["venv"] = venv, venv
    env = {"RUSTAINER_VM_GUEST": variant, **(extra_env or {})}
    config = [f"SRC={shlex.quote(str(REPO))}", f"VENV={shlex.quote(str(venv))}",
              f"SHARES={shlex.quote(' '.join(f'{t}={p}' for t, p in mounts.items()))}",
              f"PYTEST_ARGS={shlex.quote(shlex.join(pytest_args))}",
              f"GUEST_ENV={shlex.quote(' '.join(f'{k}={v}' for k, v in env.items()))}",
              # seconds without test output before the guest writes stall.txt (see guest/run-tests)
              f"STALL_AFTER={int(os.environ.get('RUSTAINER_VM_STALL_AFTER', '400'))}"]
    (results / "config.sh").write_text("\n".join(config) + "\n")
    argv = [QEMU, "-accel", "tcg,thread=multi", "-smp", "2", "-m", "1024",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", f"file:{results / 'console.log'}",
            "-kernel", str(art.kernel), "-initrd", str(art.initrd),
            "-append", f"{GUEST_CMDLINE} rustainer.init={VARIANTS[variant].replace(' ', '+')} "
                       + os.environ.get("RUSTAINER_VM_APPEND", ""),
            "-drive", f"file={art.image},if=virtio,format=raw,snapshot=on",
            "-device", "virtio-rng-pci"]
    for tag, path in shares.items():
        argv += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,readonly=on"]
    argv += ["-virtfs", f"local,path={results},mount_tag=results,security_model=none"]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        (results / "guest.log").open("a").write(f"\n[host] guest killed after {timeout:.0f}s\n")
    if out:
        (results / "guest.log").open("a").write("[host] qemu said: " + out.decode(errors="replace"))
    code_text = (results / "exit").read_text().strip() if (results / "exit").exists() else ""
    return GuestRun(variant, int(code_text) if code_text.lstrip("-").isdigit() else None, proc.returncode,
                    time.monotonic() - start, results)


def main(argv: list[str]) -> int:
    if missing_tools():
        print(f"missing: {', '.join(missing_tools())}", file=sys.stderr)
        return 2
    art = build()
    print(art)
    if argv[:1] == ["boot"]:
        variant = argv[1] if len(argv) > 1 else "plain"
        run_ = boot(variant, art, cache_dir() / "manual-results" / variant, argv[2:] or ["tests/integration/test_cgroup_drivers.py"])
        print(run_.report())
        return 0 if run_.exit_code == 0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
