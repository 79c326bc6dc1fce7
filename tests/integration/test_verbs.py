"""stop, kill, rm -f, inspect, stats, top and update on running containers (root, real kernel)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import CLI, inspect, ps, wait_for

pytestmark = pytest.mark.root
# The shell says when its traps are set: a signal that comes before (the init passes it on at once)
# would find the default action.
TRAPS = 'trap "exit 3" TERM; trap "exit 4" USR1; echo traps-set; while :; do sleep 0.05; done'








@pytest.fixture
def foreground(cli, busybox_rootfs: Path):  # type: ignore[no-untyped-def]
    """A foreground ``run`` owned by a CLI process of the test (as a user's terminal would)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *command: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*CLI, "run", "--rm", "--name", name, "--rootfs", str(busybox_rootfs), "--",
                                 *command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        procs.append(proc)
        wait_for(lambda: ps(cli).get(name, {}).get("pid"), what=f"{name} to run")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=20)


def gone(path: str) -> bool:
    return not os.path.exists(path)


# ---- stop ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("opts,command", [
    (("--no-init",), ("sleep", "300")),  # PID 1 without a TERM handler: the kernel drops the TERM
    ((), ("sh", "-c", 'trap "" TERM; while :; do sleep 0.05; done')),  # the init passes it on: ignored
], ids=["pid1-sleep", "ignoring-shell"])
def test_stop_kills_after_the_timeout(cli, started, opts: tuple[str, ...], command: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    info = started("st1", *command, opts=opts)
    t0 = time.monotonic()
    proc = cli("stop", "-t", "1", "st1", check_rc=0)
    took = time.monotonic() - t0
    assert proc.stdout == "st1\n"
    assert 1.0 <= took < 10, took  # TERM changes nothing: KILL after 1 s
    state = ps(cli)["st1"]
    assert state["status"] == "exited" and state["exit_code"] == 137
    assert all(gone(p) for p in info["cgroup"]["paths"].values())
    assert cli("stop", "st1", check_rc=0).stdout == "st1\n"  # already stopped: nothing to do


def test_stop_ends_a_sleep_at_once_through_the_init(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("st3", "sleep", "300")  # the init passes TERM on to `sleep`, which ends on it
    t0 = time.monotonic()
    cli("stop", "-t", "5", "st3", check_rc=0)
    assert time.monotonic() - t0 < 5
    assert ps(cli)["st3"]["exit_code"] == 128 + 15


def test_stop_with_a_term_handler_is_quick(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("st2", "sh", "-c", TRAPS)
    wait_for(lambda: "traps-set" in cli("logs", "st2", check_rc=0).stdout, what="the shell's traps")
    t0 = time.monotonic()
    cli("stop", "st2", check_rc=0)  # default timeout 10 s, not needed
    assert time.monotonic() - t0 < 8
    assert ps(cli)["st2"]["exit_code"] == 3


def test_stop_a_foreground_container(cli, foreground, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    owner = foreground("fg1", "sleep", "300")
    cli("stop", "-t", "0", "fg1", check_rc=0)
    # Its CLI saw the end and recorded it (then --rm removed it). TERM and KILL go out back to back:
    # the init passes TERM on to `sleep`, so either may end it first (docker's -t 0 races the same way).
    assert owner.wait(timeout=10) in (128 + 9, 128 + 15)
    assert "fg1" not in ps(cli)


def test_unknown_names_exit_125(cli) -> None:  # type: ignore[no-untyped-def]
    for verb in (("stop",), ("kill",), ("inspect",), ("top",), ("update", "-m", "64M"), ("stats", "--no-stream")):
        proc = cli(*verb, "nosuch")
        assert proc.returncode == 125, verb
        assert proc.stderr.count("\n") == 1 and "no such container" in proc.stderr, verb


# ---- kill / rm -f ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("signal_arg", "code"), [("TERM", 3), ("SIGTERM", 3), ("15", 3), ("usr1", 4), ("10", 4),
                                                  (None, 137), ("KILL", 137), ("9", 137)])
def test_kill_signals(cli, started, signal_arg: str | None, code: int) -> None:  # type: ignore[no-untyped-def]
    started("k1", "sh", "-c", TRAPS)
    wait_for(lambda: "traps-set" in cli("logs", "k1", check_rc=0).stdout, what="the shell's traps")
    cli("kill", *(("-s", signal_arg) if signal_arg else ()), "k1", check_rc=0)
    state = wait_for(lambda: (s := ps(cli)["k1"])["status"] == "exited" and s, what="the end to be recorded")
    assert state["exit_code"] == code, (state, cli("logs", "k1").stdout)


def test_kill_refuses_bad_signals_and_stopped_containers(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("k2", "sleep", "300")
    for bad in ("NOPE", "0", "99999", "-3"):
        proc = cli("kill", "-s", bad, "k2")
        assert proc.returncode == 125 and proc.stderr.count("\n") == 1, bad
    assert ps(cli)["k2"]["status"] == "running"
    cli("kill", "k2", check_rc=0)
    wait_for(lambda: ps(cli)["k2"]["status"] == "exited", what="k2 to end")
    proc = cli("kill", "k2")
    assert proc.returncode == 125 and "not running" in proc.stderr


def test_rm_force_running_containers(cli, started, foreground, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    info = started("r1", "sleep", "300")
    assert cli("rm", "r1").returncode == 125  # running, no -f
    cli("rm", "-f", "r1", check_rc=0)
    assert "r1" not in ps(cli)
    assert all(gone(p) for p in info["cgroup"]["paths"].values())
    owner = foreground("r2", "sleep", "300")
    cli("rm", "-f", "r2", check_rc=0)
    assert owner.wait(timeout=10) == 137
    assert "r2" not in ps(cli)
    assert not (rroot / "containers").exists() or os.listdir(rroot / "containers") == []


# ---- inspect / stats / top ---------------------------------------------------------------------------


def test_inspect_fields(cli, started) -> None:  # type: ignore[no-untyped-def]
    info = started("i1", "sh", "-c", "sleep 300 & sleep 301; exit 0", opts=("-m", "48M", "--pids-limit", "30"))
    assert info["name"] == "i1" and len(info["id"]) == 64
    assert info["spec"]["command"] == ["sh", "-c", "sleep 300 & sleep 301; exit 0"]
    st = info["state"]
    assert st["status"] == "running" and st["running"] is True and st["exit_code"] is None
    assert st["oom_killed"] is False and st["detached"] is True and st["supervisor_pid"]
    assert st["started"].startswith(time.strftime("%Y-", time.gmtime())) and st["started"].endswith("+00:00")
    assert info["limits"]["memory"] == 48 << 20 and info["limits"]["pids_limit"] == 30
    assert info["cgroup"]["driver"] in ("v1", "v2", "systemd")
    procs = Path(info["cgroup"]["paths"].get("pids") or next(iter(info["cgroup"]["paths"].values()))) / "cgroup.procs"
    assert st["pid"] in info["pids"]
    for path in info["cgroup"]["paths"].values():  # joined every hierarchy (the child joins by itself)
        assert st["pid"] in [int(p) for p in (Path(path) / "cgroup.procs").read_text().split()], path
    wait_for(lambda: len(inspect(cli, "i1")["pids"]) == 4, what="four processes (the init, sh, two sleeps)")
    assert sorted(inspect(cli, "i1")["pids"]) == sorted(int(p) for p in procs.read_text().split())
    assert info["log_path"].endswith("container.log")
    cli("stop", "-t", "0", "i1", check_rc=0)
    done = inspect(cli, "i1")
    # TERM (passed on by the init) and KILL go out back to back: either may end it first
    assert done["state"]["exit_code"] in (137, 143) and done["state"]["finished"] and done["pids"] == []
    assert done["limits"] is None
    proc = cli("inspect", "i1", "nosuch")
    assert proc.returncode == 125 and [c["name"] for c in json.loads(proc.stdout)] == ["i1"]


def test_stats_no_stream(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("busy", "sh", "-c", "while :; do :; done", opts=("-m", "48M"))
    started("idle", "sleep", "300")
    rows = {r["name"]: r for r in json.loads(cli("stats", "--no-stream", "--format", "json", check_rc=0).stdout)}
    assert set(rows) >= {"busy", "idle"}
    assert rows["busy"]["memory_limit"] == 48 << 20 and rows["idle"]["memory_limit"] is None
    assert rows["busy"]["cpu_percent"] > 5, rows
    assert rows["idle"]["cpu_percent"] < rows["busy"]["cpu_percent"]
    assert rows["busy"]["pids"] == 2 and rows["busy"]["memory_usage"] > 0  # the init and the loop
    table = cli("stats", "--no-stream", "busy", check_rc=0).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "ID", "CPU"] and len(table) == 2
    assert table[1].startswith("busy") and "/ 48M" in table[1]


def test_top_lists_the_containers_processes(cli, started) -> None:  # type: ignore[no-untyped-def]
    info = started("t1", "sh", "-c", "sleep 300 & sleep 301; exit 0")
    wait_for(lambda: len(cli("top", "t1", check_rc=0).stdout.splitlines()) == 5, what="four processes")
    lines = cli("top", "t1", check_rc=0).stdout.splitlines()
    assert lines[0].split() == ["PID", "CPID", "USER", "COMMAND"]
    rows = [line.split(None, 3) for line in lines[1:]]
    assert rows[0][:3] == [str(info["state"]["pid"]), "1", "root"]
    assert rows[0][3] == "/dev/rustainer-init -- sh -c sleep 300 & sleep 301; exit 0"  # tini, the init
    assert rows[1][1:] == ["2", "root", "sh -c sleep 300 & sleep 301; exit 0"]
    assert sorted(r[3] for r in rows[2:]) == ["sleep 300", "sleep 301"]
    assert all(int(r[1]) > 1 and int(r[0]) != int(r[1]) for r in rows[1:])


# ---- update ----------------------------------------------------------------------------------------


def test_update_changes_limits_live(cli, started) -> None:  # type: ignore[no-untyped-def]
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to change a cpuset")
    first, last = cpus[0], cpus[-1]
    info = started("u1", "sleep", "300", opts=("-m", "64M", "-c", f"{first},{last}"))
    pid, paths = info["state"]["pid"], info["cgroup"]["paths"]
    cli("update", "-m", "32M", "-c", str(last), "--pids-limit", "40", "--cpu-quota", "0.5", "u1", check_rc=0)
    if "memory" in paths:
        assert Path(paths["memory"], "memory.limit_in_bytes").read_text().strip() == str(32 << 20)
    if "cpuset" in paths:
        assert Path(paths["cpuset"], "cpuset.cpus").read_text().strip() == str(last)
    status = Path(f"/proc/{pid}/status").read_text()
    assert f"Cpus_allowed_list:\t{last}\n" in status
    after = inspect(cli, "u1")
    assert after["limits"] == {"cpus": str(last), "memory": 32 << 20, "cpu_quota": 0.5, "pids_limit": 40}
    assert after["spec"]["resources"] == {"cpus": [last], "memory": 32 << 20, "cpu_quota": 0.5, "pids_limit": 40}
    # one limit alone keeps the others
    cli("update", "-m", "40M", "u1", check_rc=0)
    assert inspect(cli, "u1")["limits"] == {"cpus": str(last), "memory": 40 << 20, "cpu_quota": 0.5,
                                            "pids_limit": 40}
    assert cli("exec", "u1", "grep", "Cpus_allowed_list", "/proc/self/status",
               check_rc=0).stdout.split() == ["Cpus_allowed_list:", str(last)]


def test_update_rejects_bad_values(cli, started) -> None:  # type: ignore[no-untyped-def]
    started("u2", "sleep", "300", opts=("-m", "64M"))
    for bad in (("-m", "lots"), ("-m", "1M"), ("-c", "9999"), ("--cpu-quota", "0"), ("--pids-limit", "x"), ()):
        proc = cli("update", *bad, "u2")
        assert proc.returncode == 125 and proc.stderr.count("\n") == 1, bad
    assert inspect(cli, "u2")["limits"]["memory"] == 64 << 20


def test_ps_uptime(cli, started, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    started("p1", "sleep", "300")
    cli("run", "--name", "p2", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", "exit 2", check_rc=2)
    lines = {line.split()[0]: line for line in cli("ps", "-a", check_rc=0).stdout.splitlines()}
    assert lines["NAME"].split()[:4] == ["NAME", "ID", "STATUS", "UPTIME"]
    assert lines["p1"].split()[2] == "running" and lines["p1"].split()[3].endswith("s")
    assert "exited (2)" in lines["p2"] and " ago " in lines["p2"]
    # -q: the ids only (docker's `rm $(ps -aq)`), running ones unless -a
    assert cli("ps", "-q", check_rc=0).stdout.split() == [lines["p1"].split()[1]]
    assert cli("ps", "-aq", check_rc=0).stdout.split() == [lines["p1"].split()[1], lines["p2"].split()[1]]
    # a foreground run's output went to its terminal only: logs says so instead of printing nothing
    out = cli("logs", "p2")
    assert out.returncode == 125 and "ran in the foreground" in out.stderr and out.stderr.count("\n") == 1
    cli("rm", "p2", check_rc=0)
