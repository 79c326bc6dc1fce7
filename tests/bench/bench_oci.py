"""rustainer-oci's start-to-exit time (by hand, as root): ``python tests/bench/bench_oci.py [--runs N]``.

1. ``ctr run --rm IMAGE ID true`` through a private containerd, with ``--runc-binary`` naming runc,
   crun and rustainer-oci in turn (interleaved, same run, medians): what a containerd user waits;
2. the runtime alone: ``<runtime> run --bundle B ID`` of the same busybox bundle (create, start,
   wait, delete), without containerd's share.

``--calls``: instead, what the shim runs per container and what each call costs: ``ctr run --rm``
with ``--runc-binary`` naming a small wrapper of each runtime that logs its command line, wall time
and CPU (user, system), then the medians per command (``create``, ``start``, ``delete``,
``delete --force``...).

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

from ocitools import (  # noqa: E402
    IMAGE,
    Containerd,
    base_config,
    bundle,
    cgroups_path,
    make_busybox_tree,
    oci_binary,
    remove_cgroup_dirs,
)


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


WRAPPER = """#!{python} -S
# logs each call of {target}: start, wall ms, user ms, system ms, exit status, command line
import posix
import sys
import time

t0 = time.perf_counter()
pid = posix.fork()
if pid == 0:
    posix.execv({target!r}, [{target!r}, *sys.argv[1:]])
_, status, usage = posix.wait4(pid, 0)
wall = (time.perf_counter() - t0) * 1000
code = posix.waitstatus_to_exitcode(status)
code = 128 - code if code < 0 else code
line = f"{{wall:.2f}} {{usage.ru_utime * 1000:.2f}} {{usage.ru_stime * 1000:.2f}} {{code}} " + " ".join(sys.argv[1:])
fd = posix.open({log!r}, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT, 0o644)
posix.write(fd, (line + "\\n").encode())
posix.close(fd)
posix._exit(code)
"""


def command_of(args: list[str]) -> str:
    """``create``, ``start``, ``delete --force``...: the command and its flags, without values."""
    valued = {"--root", "--log", "--log-format", "--bundle", "-b", "--pid-file", "--console-socket"}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in valued else 1
    rest = args[i + 1:]
    flags = [a for j, a in enumerate(rest) if a.startswith("-") and a not in valued and (j == 0 or rest[j - 1] not in valued)]
    return " ".join(args[i:i + 1] + flags)


def per_call(ctrd: Containerd, rts: dict[str, str], runs: int, tmp: Path) -> None:
    logs = {name: tmp / f"calls-{name}.log" for name in rts}
    wrappers = {}
    for name, path in rts.items():
        wrapper = tmp / f"wrap-{name}"
        wrapper.write_text(WRAPPER.format(python=sys.executable, target=path, log=str(logs[name])))
        wrapper.chmod(0o755)
        wrappers[name] = str(wrapper)
    totals: dict[str, list[float]] = {name: [] for name in rts}
    for i in range(runs + 1):
        for name, wrapper in wrappers.items():
            if i == 1:
                logs[name].unlink(missing_ok=True)  # the first round warms the caches
            t = timed(ctrd.argv("run", "--rm", "--runc-binary", wrapper, "--runc-root", str(ctrd.runc_root), IMAGE,
                                f"c-{name}-{i}", "true"))
            if i:
                totals[name].append(t)
    report(f"ctr run --rm {IMAGE} true through the wrappers ({runs} runs each)", totals)
    for name in rts:
        calls: dict[str, list[tuple[float, float, float]]] = {}
        for line in logs[name].read_text().splitlines():
            wall, user, system, _code, *args = line.split()
            calls.setdefault(command_of(args), []).append((float(wall), float(user), float(system)))
        print(f"{name}: per call (medians; the wrapper's own start is outside them)")
        for command, values in calls.items():
            wall, user, system = (statistics.median(v[k] for v in values) for k in range(3))
            print(f"  {command:16s} x{len(values) / runs:4.1f} per container  wall {wall:6.1f} ms  "
                  f"user {user:5.1f} ms  system {system:5.1f} ms")


def report(title: str, times: dict[str, list[float]]) -> None:
    base = statistics.median(times["runc"])
    print(title)
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:14s} median {med * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms  {med / base:5.2f}x runc")


def through_containerd(ctrd: Containerd, rts: dict[str, str], runs: int) -> None:
    """1. ``ctr run --rm`` with each runtime in turn, interleaved; the first round warms the caches."""
    times: dict[str, list[float]] = {name: [] for name in rts}
    for i in range(runs + 1):
        for name, path in rts.items():
            t = timed(ctrd.argv("run", "--rm", "--runc-binary", path, "--runc-root", str(ctrd.runc_root), IMAGE,
                                f"b-{name.split()[0]}-{i}", "true"))
            if i:
                times[name].append(t)
    report(f"ctr run --rm {IMAGE} true ({runs} runs each)", times)


def runtime_alone(rts: dict[str, str], runs: int, tmp: Path) -> None:
    """2. ``<runtime> run --bundle`` of one busybox bundle, without containerd's share."""
    rootfs = tmp / "rootfs"
    make_busybox_tree(rootfs)
    times: dict[str, list[float]] = {name: [] for name in rts}
    for i in range(runs + 1):
        for name, path in rts.items():
            short = name.split()[0]
            folder = bundle(tmp / f"bundle-{short}", rootfs, base_config(rootfs, ["true"], cgroups_path("ocibench", short)))
            t = timed([path, "--root", str(tmp / f"state-{short}"), "run", "--bundle", str(folder), f"b{i}"])
            if i:
                times[name].append(t)
    remove_cgroup_dirs("ocibench")
    report(f"<runtime> run --bundle B ID (true; {runs} runs each)", times)


def measure(tmp: Path, runs: int, calls: bool = False) -> None:
    """The whole benchmark in ``tmp`` (a fresh folder): what ``main`` runs, and the VM guests'
    tests/bench/test_vm_oci.py."""
    rts = runtimes()
    ctrd = Containerd(tmp / "ctrd")
    try:
        ctrd.import_busybox(tmp / "image")
        if calls:
            per_call(ctrd, rts, runs, tmp)
            return
        through_containerd(ctrd, rts, runs)
    finally:
        ctrd.stop()
        remove_cgroup_dirs("ocitest")
    runtime_alone(rts, runs, tmp)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--calls", action="store_true", help="the shim's calls of each runtime and their cost")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-oci-") as tmp_str:
        measure(Path(tmp_str), opts.runs, calls=opts.calls)

if __name__ == "__main__":
    main()
