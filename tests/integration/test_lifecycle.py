"""Containers come and go without leaving anything behind; names, exit codes and rm behave."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import CLI

pytestmark = pytest.mark.root


def entries(rroot: Path) -> list[str]:
    containers = rroot / "containers"
    return sorted(os.listdir(containers)) if containers.exists() else []


def test_fifty_runs_leave_nothing_behind(cli, rroot: Path, busybox_rootfs: Path, tmp_path: Path) -> None:
    cpu = str(min(os.sched_getaffinity(0)))
    bb = ("--rootfs", str(busybox_rootfs))
    for i in range(50):
        kind = i % 10
        folder = tmp_path / f"d{i}"
        if kind in (0, 4, 8):
            proc = cli("run", "--rm", *bb, "-m", "64M", "-c", cpu, "--", "true")
            expected = 0
        elif kind in (1, 5):
            proc = cli("run", "--rm", "-d", str(folder), "--", "sh", "-c", "echo x > f; test -s f")
            expected = 0
        elif kind in (2, 6):
            proc = cli("run", "--rm", *bb, "--", "/no/such/command")
            expected = 127
        elif kind == 3:
            proc = cli("run", "--rm", *bb, "-d", str(folder), "--", "sh", "-c", f"exit {i}")
            expected = i
        elif kind == 7:
            proc = cli("run", "--rm", "--pids-limit", "20", "--", "sh", "-c", "exit 255")
            expected = 255
        else:
            proc = cli("run", "--rm", *bb, "-m", "16M", "--", "tail", "/dev/zero")
            expected = 137
            assert "OOM-killed" in proc.stderr
        assert proc.returncode == expected, (i, proc)
        assert not folder.exists()
    assert entries(rroot) == []
    assert list(tmp_path.iterdir()) == [rroot]
    # cgroups, mounts, links and processes: checked by conftest's autouse leak check


@pytest.mark.parametrize("code", [0, 1, 2, 42, 126, 200, 255])
def test_exit_status_propagates(cli, busybox_rootfs: Path, code: int) -> None:
    proc = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", f"exit {code}")
    assert proc.returncode == code


def test_signal_exit_and_host_view_status(cli) -> None:
    assert cli("run", "--rm", "--", "sh", "-c", "exit 7").returncode == 7
    assert cli("run", "--rm", "--", "false").returncode == 1
    # killed by SIGKILL from inside (a grandchild, PID 1 cannot be killed from inside its namespace)
    assert cli("run", "--rm", "--", "sh", "-c", "sh -c 'kill -KILL $$'; exit $?").returncode == 137


def _ps_all(cli) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return json.loads(cli("ps", "-a", "--format", "json", check_rc=0).stdout)  # type: ignore[no-any-return]


def test_kept_entry_and_its_created_folder_are_removed_by_rm(cli, rroot: Path, tmp_path: Path) -> None:
    folder = tmp_path / "made"
    cli("run", "--name", "kept", "-d", str(folder), "--", "sh", "-c", "echo data > f; exit 3", check_rc=3)
    states = _ps_all(cli)
    assert [(s["name"], s["status"], s["exit_code"]) for s in states] == [("kept", "exited", 3)]
    table = cli("ps", "-a", check_rc=0).stdout
    assert "kept" in table and "exited (3)" in table
    assert (folder / "f").read_text() == "data\n"  # kept with the container
    assert len(entries(rroot)) == 1
    assert cli("rm", "kept", check_rc=0).stdout == "kept\n"
    assert not folder.exists()
    assert entries(rroot) == [] and _ps_all(cli) == []
    missing = cli("rm", "kept")
    assert missing.returncode == 125 and missing.stderr.startswith("rustainer: ") and missing.stderr.count("\n") == 1


def test_rm_never_deletes_a_pre_existing_folder(cli, rroot: Path, tmp_path: Path, busybox_rootfs: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    cli("run", "--name", "k2", "--rootfs", str(busybox_rootfs), "-d", str(folder), "--", "sh", "-c",
        "echo more > new.txt", check_rc=0)
    cli("rm", "k2", check_rc=0)
    assert (folder / "keep.txt").read_text() == "precious" and (folder / "new.txt").read_text() == "more\n"
    assert entries(rroot) == []


def test_duplicate_name_is_refused_and_leaves_nothing(cli, rroot: Path, tmp_path: Path) -> None:
    cli("run", "--name", "dup", "--", "true", check_rc=0)
    before = entries(rroot)
    folder = tmp_path / "never"
    proc = cli("run", "--name", "dup", "-d", str(folder), "--", "true")
    assert proc.returncode == 125 and proc.stderr.startswith("rustainer: ") and proc.stderr.count("\n") == 1
    assert "already in use" in proc.stderr
    assert entries(rroot) == before and not folder.exists()
    cli("rm", "dup", check_rc=0)
    assert entries(rroot) == []


def test_same_name_at_the_same_moment_one_wins(rroot: Path, tmp_path: Path, cli) -> None:
    folders = [tmp_path / "a", tmp_path / "b"]
    procs = [subprocess.Popen([*CLI, "run", "--name", "same", "-d", str(folder), "--", "sleep", "1"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for folder in folders]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        results.append((p.returncode, out, err))
    codes = sorted(r[0] for r in results)
    assert codes == [0, 125], results
    loser = next(i for i, r in enumerate(results) if r[0] == 125)
    winner = 1 - loser
    err = results[loser][2]
    assert err.startswith("rustainer: ") and err.count("\n") == 1 and "already in use" in err, err
    assert not folders[loser].exists()  # the loser created nothing
    assert folders[winner].is_dir()  # the winner's entry (and its folder) stay until rm
    assert [s["name"] for s in _ps_all(cli)] == ["same"] and len(entries(rroot)) == 1
    cli("rm", "same", check_rc=0)
    assert entries(rroot) == [] and not folders[winner].exists()


@pytest.mark.parametrize("force", [False, True])
def test_rm_sees_a_container_whose_pid1_has_not_joined_its_cgroup_yet(cli, rroot: Path, busybox_rootfs: Path,
                                                                      monkeypatch: pytest.MonkeyPatch, force: bool) -> None:
    """With cgroup v1 the PID 1 joins its cgroup itself, after its owner recorded it running: in
    that window a plain rm must see a starting container, not a dead one (RUSTAINER_TEST_JOIN_DELAY
    widens the window; the supervisor inherits it through its launcher). rm -f ends it through its
    owner, and nothing is left."""
    from helpers import ps, wait_for

    monkeypatch.setenv("RUSTAINER_TEST_JOIN_DELAY", "3")
    run = subprocess.Popen([*CLI, "run", "--detach", "--name", "slow", "--rootfs", str(busybox_rootfs), "--",
                            "sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        def recorded_running() -> bool:
            for cid in entries(rroot):
                try:
                    if json.loads((rroot / "containers" / cid / "state.json").read_text())["status"] == "running":
                        return True
                except (OSError, ValueError):
                    pass
            return False

        wait_for(recorded_running, what="the container to be recorded running")
        if force:
            cli("rm", "-f", "slow", check_rc=0)
            run.communicate(timeout=60)
            assert "slow" not in ps(cli) and entries(rroot) == []
            return
        proc = cli("rm", "slow")
        assert proc.returncode == 125 and "is running" in proc.stderr, (proc.returncode, proc.stderr)
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert ps(cli)["slow"]["status"] == "running"
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        cli("rm", "-f", "slow")
