"""Start latency: ``rustainer run --rm --rootfs BUSYBOX -m 64M -c 0 -- true`` against the floor.

Run by hand as root (not collected by pytest):  .venv/bin/python tests/bench/bench_start.py [N] [--baseline VENV]
``--baseline VENV`` (repeatable) adds the same cases for another install (say a venv of an earlier commit), in the
same interleaved run, so a change is measured against what it replaces under the same noise.
The floor is ``unshare --pid --fork --mount-proc --mount --uts --ipc --net true``, measured in the
same run, interleaved, so a noisy machine moves both; the figure that counts is the ratio of medians.
Reference ratios measured on this kind of machine (the issue's): runc 10.5x, crun 4.4x,
systemd-nspawn 24x, podman 58x, a bare ``python3 -c pass`` 5.5x. Goal: under 10x.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def make_busybox_rootfs(dest: str) -> str:
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("busybox-static is needed: apt-get install busybox-static")
    os.makedirs(os.path.join(dest, "bin"))
    shutil.copy2(busybox, os.path.join(dest, "bin", "busybox"))
    for applet in ("sh", "true"):
        os.symlink("busybox", os.path.join(dest, "bin", applet))
    return dest


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    args = sys.argv[1:]
    baselines: list[str] = []
    while "--baseline" in args:
        at = args.index("--baseline")
        baselines.append(args[at + 1])
        del args[at:at + 2]
    n = int(args[0]) if args else 40
    rustainer = os.path.join(os.path.dirname(sys.executable), "rustainer")
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = make_busybox_rootfs(os.path.join(tmp, "rootfs"))
        env = dict(os.environ, RUSTAINER_ROOT=os.path.join(tmp, "state"))
        cases = {
            "floor: unshare ... true": ["unshare", "--pid", "--fork", "--mount-proc", "--mount", "--uts", "--ipc",
                                        "--net", "true"],
            "python3 -c pass": [sys.executable, "-c", "pass"],
            "rustainer run --rm --rootfs BB -m 64M -c 0 -- true": [
                rustainer, "run", "--rm", "--rootfs", rootfs, "-m", "64M", "-c", "0", "--", "true"],
            "rustainer run --rm --no-init --rootfs BB ... -- true": [
                rustainer, "run", "--rm", "--no-init", "--rootfs", rootfs, "-m", "64M", "-c", "0", "--", "true"],
            "rustainer run --rm -- true (host view)": [rustainer, "run", "--rm", "--", "true"],
        }
        for venv in baselines:  # the same two cases for each other install
            other = os.path.join(venv, "bin", "rustainer")
            label = os.path.basename(os.path.dirname(os.path.abspath(venv))) or venv
            cases[f"{label}: run --rm --rootfs BB -m 64M -c 0 -- true"] = [
                other, "run", "--rm", "--rootfs", rootfs, "-m", "64M", "-c", "0", "--", "true"]
            cases[f"{label}: run --rm -- true (host view)"] = [other, "run", "--rm", "--", "true"]
        samples: dict[str, list[float]] = {k: [] for k in cases}
        for argv in cases.values():  # warm the page cache
            timed(argv, env)
        for _ in range(n):
            for name, argv in cases.items():
                samples[name].append(timed(argv, env))
    floor = statistics.median(samples["floor: unshare ... true"])
    print(f"{'case':<55} {'median ms':>10} {'p90 ms':>8} {'x floor':>8}")
    for name, xs in samples.items():
        med = statistics.median(xs)
        p90 = sorted(xs)[int(len(xs) * 0.9) - 1]
        print(f"{name:<55} {med * 1000:>10.1f} {p90 * 1000:>8.1f} {med / floor:>8.1f}")


if __name__ == "__main__":
    main()
