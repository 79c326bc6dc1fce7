"""Start latency of a bridge-networked container: ``run --rm --network bridge -- true`` against
``--network none`` (and with one published port), measured interleaved in the same run.

Run by hand as root (not collected by pytest):  .venv/bin/python tests/bench/bench_network.py [N]
Every bridge run brings the network's bridge and nftables table up and down (it is the only member),
so this is the worst case; a second container on a busy network skips that part.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    rustainer = [sys.executable, "-m", "rustainer.app.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, RUSTAINER_ROOT=os.path.join(tmp, "state"))
        port = str(free_port())
        cases = {
            "run --rm --network none -- true": [*rustainer, "run", "--rm", "--network", "none", "--", "true"],
            "run --rm --network bridge -- true": [*rustainer, "run", "--rm", "--network", "bridge", "--", "true"],
            "run --rm --network bridge -p PORT:80 -- true": [
                *rustainer, "run", "--rm", "--network", "bridge", "-p", f"{port}:80", "--", "true"],
        }
        samples: dict[str, list[float]] = {k: [] for k in cases}
        for argv in cases.values():  # warm the page cache
            timed(argv, env)
        for _ in range(n):
            for name, argv in cases.items():
                samples[name].append(timed(argv, env))
    base = statistics.median(samples["run --rm --network none -- true"])
    print(f"{'case':<48} {'median ms':>10} {'p90 ms':>8} {'x none':>8}")
    for name, xs in samples.items():
        med = statistics.median(xs)
        p90 = sorted(xs)[int(len(xs) * 0.9) - 1]
        print(f"{name:<48} {med * 1000:>10.1f} {p90 * 1000:>8.1f} {med / base:>8.2f}")


if __name__ == "__main__":
    main()
