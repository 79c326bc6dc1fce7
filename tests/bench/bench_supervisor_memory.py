"""Memory of the per-container supervisors: PSS with 20 idle containers, then after 10 MB of output each.

Run by hand as root:  .venv/bin/python tests/bench/bench_supervisor_memory.py [COUNT] [MB]
PSS (proportional set size, /proc/PID/smaps_rollup) splits shared pages among the processes that
share them, so it is the fair "cost per container". Reference points (the issue's): podman's
conmon 1.0 MB, a bare idle Python process 5.5 MB, Python with asyncio 15 MB. Goal: at most 3 MB.
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


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    megabytes = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    cli = os.path.join(os.path.dirname(sys.executable), "rustainer")
    lines = megabytes * 1_000_000 // 7  # `seq` lines of about 7 bytes
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, RUSTAINER_ROOT=tmp)
        for i in range(count):
            subprocess.run([cli, "run", "--detach", "--name", f"m{i}", "--", "sh", "-c",
                            f"read go; seq 1 {lines}; echo DONE-MARK; read stop"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        states = json.loads(subprocess.run([cli, "ps", "--format", "json"], env=env, capture_output=True,
                                           text=True, check=True).stdout)
        time.sleep(1)
        idle = [pss_kb(s["supervisor_pid"]) for s in states]
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
        busy = [pss_kb(s["supervisor_pid"]) for s in states]
        subprocess.run([cli, "rm", "-f", *[s["name"] for s in states]], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        from rustainer.backend.supervisor import zygote

        zygote.stop(tmp)
    print(f"{'supervisors':<34} {'median PSS':>11} {'max PSS':>9}")
    print(f"{f'{count} idle':<34} {statistics.median(idle) / 1024:>9.1f} MB {max(idle) / 1024:>6.1f} MB")
    print(f"{f'after {megabytes} MB of output each':<34} {statistics.median(busy) / 1024:>9.1f} MB "
          f"{max(busy) / 1024:>6.1f} MB")
    print("goal: at most 3 MB per idle container (conmon 1.0 MB, bare Python 5.5 MB)")


if __name__ == "__main__":
    main()
