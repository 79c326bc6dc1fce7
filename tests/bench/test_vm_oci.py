"""``ctr run --rm`` start-to-exit with runc, crun and rustainer-oci, by hand, in a VM guest:

    .venv/bin/python tests/vm/vmimage.py boot plain tests/bench/test_vm_oci.py -s

crun refuses a hybrid cgroup host (see ``bench_oci.runtimes``), so the three runtimes can only be
set side by side on cgroup v2: the guests of tests/vm, whose image has Debian's crun. The
measurement is bench_oci.py's default mode, run as it is (a private containerd, the runtimes
interleaved, medians, ratios against runc; then each runtime alone on one bundle). Under TCG the
times are many times the host's: only the ratios within one guest mean anything. Not collected
by CI (tests/bench is in ``norecursedirs``); ``RUSTAINER_BENCH_RUNS`` sets the run count (15,
bench_oci.py's default: about 4 minutes of the guest's pytest under TCG on 2 cores, boot aside).
"""

from __future__ import annotations

import os
from pathlib import Path

import bench_oci  # beside this file: pytest (import mode prepend) puts its folder on sys.path
import pytest

RUNS = int(os.environ.get("RUSTAINER_BENCH_RUNS", "15"))


@pytest.mark.timeout(1100)  # the project's 300 s is per test; under TCG this takes minutes
def test_ctr_run_rm_with_runc_crun_and_rustainer_oci(tmp_path: Path) -> None:
    # crun must be there: a figure without it is what the hybrid host already gives
    assert "crun" in bench_oci.runtimes(), "no crun in this guest (tests/vm/vmimage.py PACKAGES)"
    print(f"\n({RUNS} runs each; guest: {os.environ.get('RUSTAINER_VM_GUEST', 'host')})")
    bench_oci.measure(tmp_path, RUNS)
