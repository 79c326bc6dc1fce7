"""Supervisor throughput: ``seq 1 3000000`` in a detached container against a detached tmux session.

Run by hand as root:  .venv/bin/python tests/bench/bench_supervisor.py [N]
Both run the same binary (the host's coreutils ``seq``: the container uses the default host view)
into a pty, 120x40 for tmux; the figure is the ratio of median wall times, measured in the same
run. Goal (issue): the container within 2x of tmux, i.e. the supervisor never throttles the
program, whatever its terminal-state parsing costs.
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

LINES = 3_000_000


def rustainer_run(root: str) -> float:
    cli = os.path.join(os.path.dirname(sys.executable), "rustainer")
    env = dict(os.environ, RUSTAINER_ROOT=root)
    subprocess.run([cli, "run", "--detach", "--name", "bench", "--", "sh", "-c",
                    f"read go; seq 1 {LINES}; echo DONE-MARK; read stop"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    state = json.loads(subprocess.run([cli, "ps", "--format", "json"], env=env, capture_output=True,
                                      text=True, check=True).stdout)[0]
    cdir = os.path.join(root, "containers", state["id"])
    log = os.path.join(cdir, "container.log")
    sock = socket.socket(socket.AF_UNIX)
    with P.SocketPath(os.path.join(cdir, "attach.sock")) as path:
        sock.connect(path)
    sock.sendall(P.hello(P.MODE_NONE) + P.frame(P.INPUT, b"\n"))
    start = time.perf_counter()
    while True:
        with open(log, "rb") as f:
            f.seek(max(0, os.path.getsize(log) - 64))
            if b"DONE-MARK" in f.read():
                break
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    sock.close()
    subprocess.run([cli, "rm", "-f", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
    return elapsed


def tmux_run(tmp: str) -> float:
    done = os.path.join(tmp, "tmux-done")
    server = f"rustainer-bench-{os.getpid()}"
    start = time.perf_counter()
    subprocess.run(["tmux", "-L", server, "new-session", "-d", "-x", "120", "-y", "40",
                    f"seq 1 {LINES}; touch {done}; sleep 60"], check=True)
    try:
        while not os.path.exists(done):
            time.sleep(0.005)
        return time.perf_counter() - start
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], check=False)
        os.unlink(done)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(n):
            ours.append(rustainer_run(os.path.join(tmp, "root")))
            theirs.append(tmux_run(tmp))
        from rustainer.backend.supervisor import zygote

        zygote.stop(os.path.join(tmp, "root"))
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"{'case':<46} {'median s':>9}")
    print(f"{'tmux (detached, 120x40): seq 1 3000000':<46} {b:>9.2f}")
    print(f"{'rustainer run --detach: seq 1 3000000':<46} {a:>9.2f}")
    print(f"ratio rustainer / tmux: {a / b:.2f} (goal: at most 2)")


if __name__ == "__main__":
    main()
