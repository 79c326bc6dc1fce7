"""Soak: start/stop/rm cycles mixing the host view, a rootfs folder with a -d folder, and a bridged
network with a published port; the launcher's and the supervisors' memory and open descriptors must
stay flat, cycles must not slow down, and nothing may be left at the end.

Run by hand as root:  python tests/bench/bench_soak.py [CYCLES] [ROOTFS]
(CYCLES defaults to 1000; ROOTFS to a busybox folder made in a temporary directory.) Every 10% of
the cycles it prints the mean cycle time of that slice, the launcher's PSS and descriptors, and the
supervisor's of the cycle's container (measured while it runs); at the end what is left, which must
be nothing. Exits 1 if memory or descriptors grew or something was left.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CLI = [sys.executable, "-m", "rustainer.app.cli"]


def pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def busybox_rootfs(where: str) -> str:
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("busybox is needed (the set-up installs busybox-static)")
    root = os.path.join(where, "rootfs")
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
        os.makedirs(os.path.join(root, d))
    shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
    for applet in ("sh", "sleep", "true"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    return root


def cli(*args: str) -> str:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"rustainer {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def main() -> int:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tmp = tempfile.mkdtemp(prefix="rustainer-soak-")
    root = os.path.join(tmp, "root")
    os.environ["RUSTAINER_ROOT"] = root
    rootfs = sys.argv[2] if len(sys.argv) > 2 else busybox_rootfs(tmp)
    from rustainer.backend.network import ipam
    from rustainer.backend.supervisor import zygote

    links_before = set(os.listdir("/sys/class/net"))
    kinds = (
        ("host view", lambda i: ()),
        ("rootfs + folder", lambda i: ("--rootfs", rootfs, "-d", os.path.join(tmp, f"folder{i}"))),
        ("bridge + port", lambda i: ("--rootfs", rootfs, "--network", "bridge", "-p", f"127.0.0.1:{free_port()}:80")),
    )
    step = max(cycles // 10, 1)
    rows = []
    times: list[float] = []
    sup_pss = sup_fds = 0
    print(f"{'cycles':>7} {'ms/cycle':>9} {'launcher PSS KB':>16} {'launcher fds':>13} {'supervisor PSS KB':>18} "
          f"{'supervisor fds':>15}")
    try:
        for i in range(cycles):
            _kind, opts = kinds[i % len(kinds)]
            name = f"soak{i}"
            started = time.monotonic()
            cli("run", "--detach", "--name", name, *opts(i), "--", "sleep", "1000")
            if (i + 1) % step == 0:
                import json

                state = json.loads(cli("inspect", name))[0]["state"]
                sup = state["supervisor_pid"]
                sup_pss, sup_fds = pss_kb(sup), fds(sup)
            cli("stop", "-t", "0", name)
            cli("rm", name)
            times.append(time.monotonic() - started)
            if (i + 1) % step == 0:
                launcher = zygote.running_pid(root)
                lp, lf = (pss_kb(launcher), fds(launcher)) if launcher else (0, 0)
                mean = sum(times[-step:]) / step * 1000
                rows.append((i + 1, mean, lp, lf, sup_pss, sup_fds))
                print(f"{i + 1:>7} {mean:>9.0f} {lp:>16} {lf:>13} {sup_pss:>18} {sup_fds:>15}", flush=True)
        left = os.listdir(os.path.join(root, "containers"))
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        links = set(os.listdir("/sys/class/net")) - links_before
        cli("network", "ls")
        leftovers = {"containers": left, "links": sorted(links),
                     "nft": ipam.nft_table(root, "bridge") in tables,
                     "folders": [f for f in os.listdir(tmp) if f.startswith("folder")]}
        print("left:", leftovers)
        bad = any(leftovers.values())
        if len(rows) >= 3:
            first, last = rows[1], rows[-1]  # the first slice warms the launcher up
            if last[3] > first[3] or last[5] > first[5]:
                print("descriptors grew")
                bad = True
            if last[2] > first[2] * 1.2 or last[4] > first[4] * 1.2:
                print("memory grew by more than 20%")
                bad = True
            if last[1] > first[1] * 1.5:
                print("cycles slowed down by more than 50%")
                bad = True
        return 1 if bad else 0
    finally:
        zygote.stop(root)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
