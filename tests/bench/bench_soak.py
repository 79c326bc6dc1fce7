"""Soak: start/stop/rm cycles mixing the host view, a rootfs folder with a -d folder, and a bridged
network with a published port; the launcher's and the supervisors' memory and open descriptors must
stay flat, cycles must not slow down, and nothing may be left at the end.

Run by hand as root:  python tests/bench/bench_soak.py [CYCLES] [ROOTFS]
(CYCLES defaults to 1000; ROOTFS to a busybox folder made in a temporary directory.) Every 10% of
the cycles it prints the mean cycle time of that slice, the launcher's PSS and descriptors, and the
supervisor's of one container of each kind (measured while it runs); at the end what is left
(state entries, leases, links, the nft table, folders, cgroups, mounts, supervisors), which must be
nothing. Exits 1 if memory or descriptors grew, the median cycle slowed by half, or something was
left.
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


def rustainer_cgroups(short_ids: set[str]) -> list[str]:
    """cgroups of this run's containers still there (by their ids, under any hierarchy)."""
    found = []
    for top, dirs, _files in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if d.startswith("rustainer-") and d[len("rustainer-"):] in short_ids:
                found.append(os.path.join(top, d))
    return found


def mounts_under(root: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(root)]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> int:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tmp = tempfile.mkdtemp(prefix="rustainer-soak-")
    root = os.path.join(tmp, "root")
    os.environ["RUSTAINER_ROOT"] = root
    rootfs = sys.argv[2] if len(sys.argv) > 2 else busybox_rootfs(tmp)
    import json

    from rustainer.backend.network import ipam
    from rustainer.backend.supervisor import zygote

    links_before = set(os.listdir("/sys/class/net"))
    kinds = (
        ("host", lambda i: ()),
        ("folder", lambda i: ("--rootfs", rootfs, "-d", os.path.join(tmp, f"folder{i}"))),
        ("bridge", lambda i: ("--rootfs", rootfs, "--network", "bridge", "-p", f"127.0.0.1:{free_port()}:80")),
    )
    step = max(cycles // 10, 3)
    rows: list[dict[str, float]] = []
    times: list[float] = []
    short_ids: set[str] = set()
    cids: set[str] = set()
    sup: dict[str, tuple[int, int]] = {}
    print(f"{'cycles':>7} {'median ms':>9} {'mean ms':>8} {'launcher PSS KB':>16} {'fds':>4} "
          + " ".join(f"{'sup ' + k + ' PSS KB':>18} {'fds':>4}" for k, _ in kinds))
    started_all = time.monotonic()
    try:
        for i in range(cycles):
            kind, opts = kinds[i % len(kinds)]
            name = f"soak{i}"
            started = time.monotonic()
            cli("run", "--detach", "--name", name, *opts(i), "--", "sleep", "1000")
            state = json.loads(cli("inspect", name))[0]
            short_ids.add(state["id"][:12])
            cids.add(state["id"])
            if i % step >= step - len(kinds):  # the last cycles of each slice: one of each kind
                pid = state["state"]["supervisor_pid"]
                sup[kind] = (pss_kb(pid), fds(pid))
            cli("stop", "-t", "0", name)
            cli("rm", name)
            times.append(time.monotonic() - started)
            if (i + 1) % step == 0:
                launcher = zygote.running_pid(root)
                lp, lf = (pss_kb(launcher), fds(launcher)) if launcher else (0, 0)
                slice_ = times[-step:]
                row = {"cycles": i + 1, "median": median(slice_) * 1000, "mean": sum(slice_) / step * 1000,
                       "launcher_pss": lp, "launcher_fds": lf}
                for k, _ in kinds:
                    row[f"{k}_pss"], row[f"{k}_fds"] = sup.get(k, (0, 0))
                rows.append(row)
                print(f"{i + 1:>7} {row['median']:>9.0f} {row['mean']:>8.0f} {lp:>16} {lf:>4} "
                      + " ".join(f"{row[k + '_pss']:>18} {row[k + '_fds']:>4}" for k, _ in kinds), flush=True)
        total = time.monotonic() - started_all
        left = os.listdir(os.path.join(root, "containers"))
        # The bridged network lingers after its last member (RUSTAINER_NETWORK_LINGER, 2 s by default)
        bridge_path = f"/sys/class/net/{ipam.bridge_name(root, 'bridge')}"
        deadline = time.monotonic() + 15
        while os.path.exists(bridge_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        # This run's own links only (the machine may be shared): its bridge, its containers' veths.
        ours = {ipam.bridge_name(root, "bridge")} | {ipam.veth_name(cid) for cid in cids}
        links = (set(os.listdir("/sys/class/net")) - links_before) & ours
        cli("network", "ls")
        leases = {}
        from rustainer.backend.network.store import NetworkStore

        networks = NetworkStore(root)
        for name in networks.names():
            leases.update((networks.load(name) or {}).get("leases", {}))
        launcher = zygote.running_pid(root)
        supervisors = [c.pid for c in psutil_children(launcher)] if launcher else []
        leftovers = {"containers": left, "links": sorted(links), "leases": leases,
                     "nft": ipam.nft_table(root, "bridge") in tables,
                     "folders": [f for f in os.listdir(tmp) if f.startswith("folder")],
                     "cgroups": rustainer_cgroups(short_ids), "mounts": mounts_under(root),
                     "supervisors": supervisors}
        print(f"{cycles} cycles in {total:.0f} s; left: {leftovers}")
        bad = any(leftovers.values())
        if len(rows) >= 3:
            first, last = rows[1], rows[-1]  # the first slice warms the launcher up
            grew = [k for k in first if k.endswith("_fds") and last[k] > first[k]]
            if grew:
                print("descriptors grew:", grew)
                bad = True
            grew = [k for k in first if k.endswith("_pss") and last[k] > first[k] * 1.2]
            if grew:
                print("memory grew by more than 20%:", grew)
                bad = True
            if last["median"] > first["median"] * 1.5:
                print("cycles slowed down by more than 50%")
                bad = True
        return 1 if bad else 0
    finally:
        zygote.stop(root)
        shutil.rmtree(tmp, ignore_errors=True)


def psutil_children(pid: int) -> list[object]:
    """The launcher's live children (supervisors): none may be left once every container is removed."""
    import psutil

    return [c for c in psutil.Process(pid).children() if c.status() != psutil.STATUS_ZOMBIE]


if __name__ == "__main__":
    sys.exit(main())
