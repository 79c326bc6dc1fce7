"""Start latency against the ``unshare`` floor, by hand, in a VM guest (cgroup2 or systemd):

    .venv/bin/python tests/vm/vmimage.py boot plain tests/bench/test_vm_start_latency.py -s

Interleaved runs of ``rustainer run --rm -- true`` (with a memory limit, so a cgroup with a
controller is made, written and removed every time) and of ``unshare`` making the same namespaces
and running ``true``; prints the medians and their ratio. It asserts nothing: under TCG the figures
are only comparable with each other, within one guest.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = int(os.environ.get("RUSTAINER_BENCH_RUNS", "15"))


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def test_start_latency_against_the_unshare_floor(tmp_path: Path) -> None:
    env = dict(os.environ, RUSTAINER_ROOT=str(tmp_path / "root"))
    cli = [str(Path(sys.executable).parent / "rustainer"), "run", "--rm", "-m", "256M", "--", "true"]
    floor = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup", "--mount-proc", "true"]
    _time(cli, env)  # warm the page cache
    ours, base = [], []
    for _ in range(RUNS):
        ours.append(_time(cli, env))
        base.append(_time(floor, env))
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    print(f"\nstart latency, {RUNS} interleaved runs, medians: rustainer run --rm -m 256M -- true "
          f"{m_ours * 1000:.0f} ms, unshare floor {m_base * 1000:.0f} ms, ratio {m_ours / m_base:.1f}x "
          f"(driver: {os.environ.get('RUSTAINER_VM_GUEST', 'host')})")
