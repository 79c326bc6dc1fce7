"""rustainer-oci's start-to-exit time (by hand, as root): ``python tests/bench/bench_oci.py [--runs N]``.

1. ``ctr run --rm IMAGE ID true`` through a private containerd, with ``--runc-binary`` naming runc,
   crun and rustainer-oci in turn (interleaved, same run, medians): what a containerd user waits;
2. the runtime alone: ``<runtime> run --bundle B ID`` of the same busybox bundle (create, start,
   wait, delete), without containerd's share.

Goal: faster than runc. Ratios are against runc, measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocitools import IMAGE, Containerd, base_config, bundle, make_busybox_tree, oci_binary, remove_cgroup_dirs  # noqa: E402


def runtimes() -> dict[str, str]:
    found = {"runc": shutil.which("runc") or "/usr/sbin/runc", "crun": shutil.which("crun") or "",
             "rustainer-oci": oci_binary()}
    if found["crun"] and _crun_refuses_hybrid():
        # crun refuses a hybrid host whose cgroup2 holds a controller ("cgroups in hybrid mode not
        # supported, drop all controllers from cgroupv2"), even with --cgroup-manager=disabled
        print("crun: left out (it refuses this hybrid cgroup host: its cgroup2 holds a controller)")
        found["crun"] = ""
    return {name: path for name, path in found.items() if path}


def _crun_refuses_hybrid() -> bool:
    try:
        with open("/sys/fs/cgroup/unified/cgroup.controllers") as fh:  # only on a hybrid host
            return bool(fh.read().split())
    except OSError:
        return False


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv}: {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def report(title: str, times: dict[str, list[float]]) -> None:
    base = statistics.median(times["runc"])
    print(title)
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:14s} median {med * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms  {med / base:5.2f}x runc")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-oci-") as tmp_str:
        tmp = Path(tmp_str)
        rts = runtimes()
        ctrd = Containerd(tmp / "ctrd")
        try:
            ctrd.import_busybox(tmp / "image")
            times: dict[str, list[float]] = {name: [] for name in rts}
            for i in range(opts.runs + 1):
                for name, path in rts.items():
                    t = timed(ctrd.argv("run", "--rm", "--runc-binary", path, "--runc-root", str(ctrd.runc_root), IMAGE,
                                        f"b-{name.split()[0]}-{i}", "true"))
                    if i:  # the first round warms the caches
                        times[name].append(t)
            report(f"ctr run --rm {IMAGE} true ({opts.runs} runs each)", times)
        finally:
            ctrd.stop()
            remove_cgroup_dirs("ocitest")
        rootfs = tmp / "rootfs"
        make_busybox_tree(rootfs)
        times = {name: [] for name in rts}
        for i in range(opts.runs + 1):
            for name, path in rts.items():
                short = name.split()[0]
                folder = bundle(tmp / f"bundle-{short}", rootfs, base_config(rootfs, ["true"], f"/ocibench/{short}"))
                t = timed([path, "--root", str(tmp / f"state-{short}"), "run", "--bundle", str(folder), f"b{i}"])
                if i:
                    times[name].append(t)
        remove_cgroup_dirs("ocibench")
        report(f"<runtime> run --bundle B ID (true; {opts.runs} runs each)", times)


if __name__ == "__main__":
    main()
