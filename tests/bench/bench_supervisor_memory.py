"""Memory of the per-container supervisors: PSS with 20 idle containers, then after 10 MB of output each.

Run by hand as root:  python tests/bench/bench_supervisor_memory.py [COUNT] [MB] [--mappings]
PSS (proportional set size, /proc/PID/smaps_rollup) splits shared pages among the processes that
share them, so it is the fair "cost per container" (the zygote's share included). Reference points
(the issue's): podman's conmon 1.0 MB, a bare idle Python process 5.5 MB, Python with asyncio
15 MB. Goal: at most 3 MB idle. ``--mappings`` adds, per mapping (/proc/PID/smaps), the median PSS
and private dirty memory of a supervisor: where the cost is.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from rustainer.backend.supervisor import protocol as P


def pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError("no Pss line")


def mappings_kb(pid: int) -> dict[str, tuple[int, int]]:
    """{mapping name: (PSS, private dirty)} in KB, summed over the mappings of one file."""
    out: dict[str, list[int]] = {}
    name = "?"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if not head.endswith(":"):  # a mapping's header line
                fields = line.split(None, 5)
                name = os.path.basename(fields[5].strip()) if len(fields) > 5 else "[anon]"
                if name.endswith(".so") or ".so." in name:
                    name = name.split(".so")[0]
                out.setdefault(name, [0, 0])
            elif head == "Pss:":
                out[name][0] += int(line.split()[1])
            elif head == "Private_Dirty:":
                out[name][1] += int(line.split()[1])
    return {k: (v[0], v[1]) for k, v in out.items()}


def print_mappings(title: str, pids: list[int]) -> None:
    per = [mappings_kb(pid) for pid in pids]
    names = sorted({n for m in per for n in m},
                   key=lambda n: -statistics.median(m.get(n, (0, 0))[0] for m in per))
    print(f"\n{title}: median per supervisor, KB")
    print(f"  {'mapping':<28} {'PSS':>7} {'priv.dirty':>11}")
    total = [0.0, 0.0]
    for n in names:
        pss = statistics.median(m.get(n, (0, 0))[0] for m in per)
        dirty = statistics.median(m.get(n, (0, 0))[1] for m in per)
        total[0] += pss
        total[1] += dirty
        if pss >= 20 or dirty >= 20:
            print(f"  {n[:28]:<28} {pss:>7.0f} {dirty:>11.0f}")
    print(f"  {'(sum of medians)':<28} {total[0]:>7.0f} {total[1]:>11.0f}")


def main() -> None:
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 20
    megabytes = int(args[1]) if len(args) > 1 else 10
    cli = os.path.join(os.path.dirname(sys.executable), "rustainer")
    lines = megabytes * 1_000_000 // 7  # `seq` lines of about 7 bytes
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, RUSTAINER_ROOT=tmp)
        names = [f"m{i}" for i in range(count)]
        try:
            for name in names:
                subprocess.run([cli, "run", "--detach", "--name", name, "--", "sh", "-c",
                                f"read go; seq 1 {lines}; echo DONE-MARK; read stop"], env=env,
                               check=True, stdout=subprocess.DEVNULL)
            states = json.loads(subprocess.run([cli, "ps", "--format", "json"], env=env,
                                               capture_output=True, text=True, check=True).stdout)
            pids = [s["supervisor_pid"] for s in states]
            inits = [s["pid"] for s in states]  # each container's PID 1, the init (a fork of its supervisor)
            time.sleep(1)
            idle = [pss_kb(pid) for pid in pids]
            idle_inits = [pss_kb(pid) for pid in inits]
            from rustainer.backend.supervisor import zygote

            zygote_pid = zygote.running_pid(tmp)
            zygote_pss = pss_kb(zygote_pid) if zygote_pid else 0
            if "--mappings" in flags:
                print_mappings(f"{count} idle", pids)
            for s in states:
                sock = socket.socket(socket.AF_UNIX)
                with P.SocketPath(os.path.join(tmp, "containers", s["id"], "attach.sock")) as path:
                    sock.connect(path)
                sock.sendall(P.hello(P.MODE_NONE) + P.frame(P.INPUT, b"\n"))
                sock.close()
                log = os.path.join(tmp, "containers", s["id"], "container.log")
                while True:
                    with open(log, "rb") as f:
                        f.seek(max(0, os.path.getsize(log) - 64))
                        if b"DONE-MARK" in f.read():
                            break
                    time.sleep(0.05)
            time.sleep(2)  # let parsing catch up
            busy = [pss_kb(pid) for pid in pids]
            busy_inits = [pss_kb(pid) for pid in inits]
            if "--mappings" in flags:
                print_mappings(f"after {megabytes} MB of output each", pids)
        finally:
            # One by one, until none is left: a failing `rm -f` (older supervisors raced it) must not
            # leave containers running in a folder about to be deleted.
            left = names
            for _ in range(10):
                for name in left:
                    subprocess.run([cli, "rm", "-f", name], env=env, capture_output=True)
                listed = subprocess.run([cli, "ps", "-a", "--format", "json"], env=env, capture_output=True,
                                        text=True).stdout
                left = [s["name"] for s in json.loads(listed or "[]")]
                if not left:
                    break
            else:
                print(f"could not remove {left}: stop their supervisors by hand", file=sys.stderr)
            from rustainer.backend.supervisor import zygote

            zygote.stop(tmp)
    print(f"\n{'supervisors':<34} {'median PSS':>11} {'max PSS':>9}")
    print(f"{f'{count} idle':<34} {statistics.median(idle) / 1024:>9.2f} MB {max(idle) / 1024:>6.2f} MB")
    print(f"{f'after {megabytes} MB of output each':<34} {statistics.median(busy) / 1024:>9.2f} MB "
          f"{max(busy) / 1024:>6.2f} MB")
    print(f"{'the zygote (idle, with ' + str(count) + ' children)':<34} {zygote_pss / 1024:>9.2f} MB")
    print(f"\n{'inits (PID 1 in each container)':<34} {'median PSS':>11} {'max PSS':>9}")
    print(f"{f'{count} idle':<34} {statistics.median(idle_inits) / 1024:>9.2f} MB {max(idle_inits) / 1024:>6.2f} MB")
    print(f"{f'after {megabytes} MB of output each':<34} {statistics.median(busy_inits) / 1024:>9.2f} MB "
          f"{max(busy_inits) / 1024:>6.2f} MB")
    print("goal: at most 3 MB per idle container (conmon 1.0 MB, bare Python 5.5 MB)")


if __name__ == "__main__":
    main()
