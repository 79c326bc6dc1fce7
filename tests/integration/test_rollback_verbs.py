"""Every failure of the other verbs, at every named step (issue 14: rollback as a mechanism).

The test-only seam ``RUSTAINER_FAULT=step`` (backend/util/rollback.py) fails one named step of
``network create``/``network rm``, ``exec``, ``update``, ``stop`` and ``rm``. Each failure must exit
125 with one line and leave:

- what builds something (``network create``, ``exec``, ``update``): nothing of its own - no record,
  no process or descriptor, the limits read back as they were before;
- what destroys something (``stop``, ``rm``, ``network rm``): a consistent state that a plain retry
  finishes - the container running (nothing done yet) or exited with what it still holds named in
  ``inspect`` (``unreleased``), never a half-listed entry - after which nothing is left.

A detached container's supervisor is started with the same variable, so the steps of its end
(releasing the cgroup, the ports, the network) fail there too; the CLI's own retry of them then
fails at the same step once more (one fault per process).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil
import pytest

from helpers import CLI, assert_nothing_left, ended, wait_for

pytestmark = pytest.mark.root

# stop -t 0 of a bridged container with a published port and a -d folder: the CLI's steps, then the
# supervisor's release of what the container held.
STOP_STEPS = ("stop-signal", "stop-kill", "release-ports", "release-cgroup", "release-network",
              "network-leave-veth", "network-teardown-table", "network-teardown-bridge")
# rm -f of the same: the CLI kills it (the supervisor releases, failing at the same step), then
# releases what is left itself and forgets the entry: folder, then state.
RM_STEPS = ("rm-kill", "stop-kill", "release-cgroup", "release-network", "network-teardown-table",
            "network-teardown-bridge", "rm-folder", "rm-state")
EXEC_STEPS = ("exec-fork", "exec-cgroup-join", "exec-setns", "exec-go", "exec-exec")
UPDATE_STEPS = ("limit-cpus", "limit-memory", "limit-cpu-quota", "limit-pids", "update-record")
NETWORK_CREATE_STEPS = ("network-create-default", "network-create-record")
# network rm of a network whose last member died with its supervisor: its release (reconciled by
# the rm), then the record.
NETWORK_RM_STEPS = ("release-network", "network-leave-veth", "network-teardown-table", "network-teardown-bridge",
                    "network-rm-record")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, fault: str | None = None, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if fault is not None:
        env["RUSTAINER_FAULT"] = fault
    if log is not None:
        env["RUSTAINER_FAULT_LOG"] = str(log)
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def failed_at(proc: subprocess.CompletedProcess[str], step: str) -> None:
    """Exit 125 and one line naming the step."""
    assert proc.returncode == 125, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"injected fault at step {step!r}" in lines[0], proc.stderr


def start_bridged(rootfs: Path, folder: Path, *, fault: str | None = None, log: Path | None = None,
                  network: str = "bridge", command: tuple[str, ...] = ("sleep", "1000")) -> int:
    """A detached container fx on ``network`` with a published port and a -d folder rustainer makes;
    its supervisor gets ``fault`` too. ``--no-init``: its PID 1 ignores SIGTERM, so only stop's
    SIGKILL ends it (and a failure before it leaves it running). Returns the port."""
    port = free_port()
    proc = run_cli("run", "--detach", "--no-init", "--name", "fx", "--rootfs", str(rootfs), "-d", str(folder),
                   "--network", network, "-p", f"127.0.0.1:{port}:80", "--", *command, fault=fault, log=log)
    assert proc.returncode == 0, proc.stderr
    return port


def status(name: str = "fx") -> dict:  # type: ignore[type-arg]
    proc = run_cli("inspect", name)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)[0]["state"]  # type: ignore[no-any-return]


def assert_consistent(step: str) -> None:
    """After a failed stop or rm: still listed, not damaged; running (no SIGKILL yet) or exited,
    with what its end could not release named."""
    state = status()
    assert state["status"] in ("running", "exited"), state
    if state["status"] == "exited" and step.startswith(("release-", "network-")):
        assert f"injected fault at step {step!r}" in (state["unreleased"] or ""), state


def test_every_stop_and_rm_step_is_reached(rroot: Path, busybox_rootfs: Path, tmp_path: Path) -> None:
    """The matrices below cover what stop and rm do: every step named there is reached."""
    log = tmp_path / "steps"
    start_bridged(busybox_rootfs, tmp_path / "made", fault="list", log=log)
    assert run_cli("stop", "-t", "0", "fx", fault="list", log=log).returncode == 0
    assert run_cli("rm", "fx", fault="list", log=log).returncode == 0
    start_bridged(busybox_rootfs, tmp_path / "made", fault="list", log=log)
    assert run_cli("rm", "-f", "fx", fault="list", log=log).returncode == 0
    reached = set(log.read_text().split())
    assert set(STOP_STEPS) | set(RM_STEPS) <= reached, (set(STOP_STEPS) | set(RM_STEPS)) - reached
    assert_nothing_left(rroot, tmp_path / "made", None)


def test_every_exec_update_and_network_step_is_reached(rroot: Path, busybox_rootfs: Path, tmp_path: Path,
                                                       started) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "steps"
    started("fx", "sleep", "1000", opts=LIMITS)
    assert run_cli("exec", "fx", "true", fault="list", log=log).returncode == 0
    assert run_cli("update", *NEW_LIMITS, "fx", fault="list", log=log).returncode == 0
    assert run_cli("network", "create", "--subnet", "10.213.251.0/24", "front", fault="list", log=log).returncode == 0
    assert run_cli("rm", "-f", "fx").returncode == 0
    start_bridged(busybox_rootfs, tmp_path / "made", network="front")
    kill_supervisor()
    assert run_cli("network", "rm", "front", fault="list", log=log).returncode == 0
    assert run_cli("rm", "fx").returncode == 0
    reached = set(log.read_text().split())
    wanted = set(EXEC_STEPS) | set(UPDATE_STEPS) | set(NETWORK_CREATE_STEPS) | set(NETWORK_RM_STEPS)
    assert wanted <= reached, wanted - reached


@pytest.mark.parametrize("step", STOP_STEPS)
def test_stop_failing_at_any_step_is_consistent_and_retryable(rroot: Path, busybox_rootfs: Path, tmp_path: Path,
                                                              step: str) -> None:
    folder = tmp_path / "made"
    port = start_bridged(busybox_rootfs, folder, fault=step)
    failed_at(run_cli("stop", "-t", "0", "fx", fault=step), step)
    assert_consistent(step)
    # The retry: stop (a no-op if it ended) and rm, without the fault, finish the job.
    again = run_cli("stop", "-t", "0", "fx")
    assert again.returncode == 0, again.stderr
    again = run_cli("rm", "fx")
    assert again.returncode == 0, again.stderr
    assert_nothing_left(rroot, folder, port)


@pytest.mark.parametrize("step", RM_STEPS)
def test_rm_failing_at_any_step_is_consistent_and_retryable(rroot: Path, busybox_rootfs: Path, tmp_path: Path,
                                                            step: str) -> None:
    folder = tmp_path / "made"
    port = start_bridged(busybox_rootfs, folder, fault=step)
    failed_at(run_cli("rm", "-f", "fx", fault=step), step)
    assert_consistent(step)
    again = run_cli("rm", "-f", "fx")
    assert again.returncode == 0, again.stderr
    assert_nothing_left(rroot, folder, port)


@pytest.mark.parametrize("step", ("release-ports", "release-cgroup", "release-network", "network-teardown-bridge"))
def test_a_run_whose_end_cannot_release_keeps_its_entry_for_rm(rroot: Path, busybox_rootfs: Path, tmp_path: Path,
                                                              step: str) -> None:
    """A foreground ``run --rm`` whose end fails to release something: one line (with the
    command's exit code), and the entry stays - exited, naming what is left - until ``rm``."""
    folder, port = tmp_path / "made", free_port()
    proc = run_cli("run", "--rm", "--name", "fx", "--rootfs", str(busybox_rootfs), "-d", str(folder),
                   "--network", "bridge", "-p", f"127.0.0.1:{port}:80", "--", "sh", "-c", "exit 3", fault=step)
    failed_at(proc, step)
    assert "exit code 3" in proc.stderr
    state = status()
    assert state["status"] == "exited" and state["exit_code"] == 3, state
    assert_consistent(step)
    again = run_cli("rm", "fx")
    assert again.returncode == 0, again.stderr
    assert_nothing_left(rroot, folder, port)


def cgroup_pids(cid: str) -> set[int]:
    """Every process in the container's cgroup (PID 1 and all below it, exec'd ones included)."""
    state = json.loads(run_cli("inspect", cid).stdout)[0]
    return set(state["pids"])


@pytest.mark.parametrize("step", EXEC_STEPS)
def test_exec_failing_at_any_step_leaves_nothing(busybox_rootfs: Path, started, step: str) -> None:  # type: ignore[no-untyped-def]
    state = started("fx", "sleep", "1000")
    before = cgroup_pids("fx")
    assert state["pids"] and set(state["pids"]) == before
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    failed_at(run_cli("exec", "fx", "sh", "-c", "echo never; sleep 1000", fault=step), step)
    # The exec'd process was killed and reaped before exec returned: nothing of it in the container.
    assert cgroup_pids("fx") == before
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children_before
    assert status()["status"] == "running"
    done = run_cli("exec", "fx", "sh", "-c", "echo fine")
    assert done.returncode == 0 and done.stdout == "fine\n", done.stderr


@pytest.mark.parametrize("step", ("exec-console", "exec-go"))
def test_exec_with_a_terminal_failing_leaves_nothing(busybox_rootfs: Path, started, step: str) -> None:  # type: ignore[no-untyped-def]
    """``exec -t`` (its pty is made inside the container and handed over) failing on the way."""
    import pexpect

    started("fx", "sleep", "1000")
    before = cgroup_pids("fx")
    child = pexpect.spawn(CLI[0], [*CLI[1:], "exec", "-t", "fx", "sh"], env=dict(os.environ, RUSTAINER_FAULT=step),
                          timeout=30, dimensions=(24, 80))
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 125, child.before
    lines = child.before.decode().strip().splitlines()
    assert len(lines) == 1 and f"injected fault at step {step!r}" in lines[0], lines
    assert cgroup_pids("fx") == before
    assert status()["status"] == "running"


LIMITS = ("-m", "64M", "-c", "0", "--cpu-quota", "0.5", "--pids-limit", "100")
NEW_LIMITS = ("-m", "96M", "-c", "1", "--cpu-quota", "0.75", "--pids-limit", "120")


@pytest.mark.parametrize("step", UPDATE_STEPS)
def test_update_failing_at_any_step_restores_the_limits(started, step: str) -> None:  # type: ignore[no-untyped-def]
    before = started("fx", "sleep", "1000", opts=LIMITS)
    assert before["limits"] == {"cpus": "0", "memory": 64 << 20, "cpu_quota": 0.5, "pids_limit": 100}
    failed_at(run_cli("update", *NEW_LIMITS, "fx", fault=step), step)
    after = json.loads(run_cli("inspect", "fx").stdout)[0]
    assert after["limits"] == before["limits"], "the kernel's limits were not put back"
    assert after["spec"]["resources"] == before["spec"]["resources"]
    assert after["state"]["status"] == "running"
    # Without the fault the same update goes through (so the comparison above can tell).
    assert run_cli("update", *NEW_LIMITS, "fx").returncode == 0
    changed = json.loads(run_cli("inspect", "fx").stdout)[0]["limits"]
    assert changed == {"cpus": "1", "memory": 96 << 20, "cpu_quota": 0.75, "pids_limit": 120}


def network_records(rroot: Path) -> list[str]:
    folder = rroot / "networks"
    return sorted(p.name for p in folder.glob("*.json")) if folder.exists() else []


@pytest.mark.parametrize("step", NETWORK_CREATE_STEPS)
def test_network_create_failing_at_any_step_leaves_nothing(rroot: Path, step: str) -> None:
    failed_at(run_cli("network", "create", "--subnet", "10.213.250.0/24", "front", fault=step), step)
    assert network_records(rroot) == []  # not even the default network's, made on the way
    made = run_cli("network", "create", "--subnet", "10.213.250.0/24", "front")
    assert made.returncode == 0, made.stderr
    assert run_cli("network", "rm", "front").returncode == 0


def kill_supervisor(name: str = "fx") -> None:
    """kill -9 the container's supervisor: the container dies with it, and what it held (lease,
    veth, bridge, nft table, cgroup) is left for the next command to release."""
    sup = status(name)["supervisor_pid"]
    os.kill(sup, signal.SIGKILL)
    wait_for(lambda: ended(sup),
             what="the supervisor's end")


@pytest.mark.parametrize("step", NETWORK_RM_STEPS)
def test_network_rm_failing_at_any_step_is_consistent_and_retryable(rroot: Path, busybox_rootfs: Path, tmp_path: Path,
                                                                    step: str) -> None:
    from rustainer.backend.network import ipam

    assert run_cli("network", "create", "--subnet", "10.213.251.0/24", "front").returncode == 0
    folder = tmp_path / "made"
    port = start_bridged(busybox_rootfs, folder, network="front")
    kill_supervisor()
    failed_at(run_cli("network", "rm", "front", fault=step), step)
    assert "front.json" in network_records(rroot)  # the record stays until all of it is gone
    again = run_cli("network", "rm", "front")
    assert again.returncode == 0, again.stderr
    assert "front.json" not in network_records(rroot)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert ipam.nft_table(str(rroot), "front") not in tables
    assert not os.path.exists(f"/sys/class/net/{ipam.bridge_name(str(rroot), 'front')}")
    assert status()["status"] == "exited"  # the member was reconciled: lost with its supervisor
    assert run_cli("rm", "fx").returncode == 0
    assert_nothing_left(rroot, folder, port)
