"""Every failure of a start rolled back at once (issue: rollback as a mechanism).

A test-only seam (``RUSTAINER_FAULT=step``, backend/util/rollback.py) makes a named step of a start
fail as if the system had refused it. For every step a start reaches - with the host view, a rootfs
folder, and a bridged network with a published port, in the foreground and detached - the command
must exit 125 with one line, and leave nothing: no state entry or name, no folder it made, no cgroup,
mount, process or link (the per-test leak check), no nft table, no lease, no bound port.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from helpers import CLI, assert_nothing_left

pytestmark = pytest.mark.root

CONFIGS = {
    "host-view": (),
    "rootfs": ("--rootfs", "{rootfs}"),
    "bridge-port": ("--rootfs", "{rootfs}", "--network", "bridge", "-p", "127.0.0.1:{port}:80"),
}
COMMON = ("cgroup", "cgroup-recorded", "cgroup-join", "folder", "go", "record", "state")
NETWORK = ("network", "network-bridge", "network-lease", "network-nat-table", "network-recorded",
           "network-veth", "ports")
STEPS = {"host-view": COMMON, "rootfs": COMMON, "bridge-port": COMMON + NETWORK}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(rroot: Path, rootfs: Path, folder: Path, config: str, *, detach: bool, fault: str,
          log: Path | None = None) -> tuple[subprocess.CompletedProcess[str], int]:
    port = free_port()
    args = [a.format(rootfs=rootfs, port=port) for a in CONFIGS[config]]
    env = dict(os.environ, RUSTAINER_FAULT=fault)
    if log is not None:
        env["RUSTAINER_FAULT_LOG"] = str(log)
    # Detached: the launcher (zygote) is handed the variables with each start, so the supervisor's
    # own steps fail too.
    mode = ["--detach"] if detach else ["--rm"]
    proc = subprocess.run([*CLI, "run", *mode, "--name", "fx", "-d", str(folder), "-m", "64M", *args, "--", "true"],
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return proc, port


@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detached"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_step_is_reached(rroot: Path, busybox_rootfs: Path, tmp_path: Path, cli, config: str,  # type: ignore[no-untyped-def]
                               detach: bool) -> None:
    """The matrix below covers what a start really does: every step named there is reached."""
    log = tmp_path / "steps"
    proc, _ = start(rroot, busybox_rootfs, tmp_path / "made", config, detach=detach, fault="list", log=log)
    assert proc.returncode == 0, proc.stderr
    if detach:
        cli("rm", "-f", "fx", check_rc=0)
    reached = set(log.read_text().split())
    assert set(STEPS[config]) <= reached, set(STEPS[config]) - reached


@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detached"])
@pytest.mark.parametrize(("config", "step"), [(c, s) for c in CONFIGS for s in STEPS[c]])
def test_a_failure_at_any_step_leaves_nothing(rroot: Path, busybox_rootfs: Path, tmp_path: Path, cli,  # type: ignore[no-untyped-def]
                                              config: str, step: str, detach: bool) -> None:
    folder = tmp_path / "made"
    proc, port = start(rroot, busybox_rootfs, folder, config, detach=detach, fault=step)
    assert proc.returncode == 125, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"injected fault at step {step!r}" in lines[0], proc.stderr
    assert_nothing_left(rroot, folder, port)
    # The name is free again: the same start without the fault works.
    again = cli("run", "--rm", "--name", "fx", "--", "true")
    assert again.returncode == 0, again.stderr
