"""rustainer-oci's own command line, without containerd: create/start semantics and every state
(created, running, paused, stopped), exec, ps, update, kill and delete, on cgroup v1 here and on
cgroup v2 in the VM guest (tests/vm runs this module there)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import ocitools
from helpers import wait_for
from ocitools import (
    base_config,
    bundle,
    cgroup_dirs,
    cgroups_path,
    make_busybox_tree,
    oci_binary,
    remove_cgroup_dirs,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

PARENT = "ocitest-rt"


def cgroup_file(cid: str, controller: str, v1_name: str, v2_name: str) -> Path:
    return ocitools.cgroup_file(PARENT, cid, controller, v1_name, v2_name)


class Runtime:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "state"

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # stdio to files, never pipes: a created container's init keeps its stdio open
        out, err = self.tmp / "cmd.out", self.tmp / "cmd.err"
        with open(out, "w") as o, open(err, "w") as e:
            code = subprocess.run([oci_binary(), "--root", str(self.root), *args], stdout=o, stderr=e,
                                  stdin=subprocess.DEVNULL, timeout=60).returncode
        proc = subprocess.CompletedProcess(args, code, out.read_text(), err.read_text())
        if check:
            assert code == 0, f"{args}: {proc.stderr}"
        return proc

    def state(self, cid: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self("state", cid).stdout)  # type: ignore[no-any-return]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path)
    yield runtime
    for cid in (os.listdir(runtime.root) if runtime.root.exists() else []):
        runtime("delete", "--force", cid, check=False)
    remove_cgroup_dirs(PARENT)
    assert not cgroup_dirs(PARENT)


def make_bundle(tmp: Path, args: list[str], cid: str) -> Path:
    rootfs = tmp / "rootfs"
    if not rootfs.exists():
        make_busybox_tree(rootfs)
    (tmp / "out").mkdir(exist_ok=True)
    cfg = base_config(rootfs, args, cgroups_path(PARENT, cid))
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp / "out"), "options": ["rbind"]})
    cfg["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
    cfg["linux"]["resources"]["memory"] = {"limit": 64 << 20}
    return bundle(tmp / f"bundle-{cid}", rootfs, cfg)


def test_create_start_pause_exec_update_kill_delete(rt: Runtime, tmp_path: Path) -> None:
    folder = make_bundle(tmp_path, ["sh", "-c", "echo started > /out/marker; exec sleep 1000"], "life")
    pid_file = tmp_path / "init.pid"
    rt("create", "--bundle", str(folder), "--pid-file", str(pid_file), "life")
    state = rt.state("life")
    pid = int(pid_file.read_text())
    assert state["status"] == "created" and state["pid"] == pid and state["bundle"] == str(folder)
    assert os.path.exists(f"/proc/{pid}") and not (tmp_path / "out" / "marker").exists()  # waits for start
    assert rt("create", "--bundle", str(folder), "life", check=False).returncode == 1  # the id is taken
    rt("start", "life")
    wait_for(lambda: (tmp_path / "out" / "marker").exists(), timeout=10, what="the command to start")
    assert rt.state("life")["status"] == "running"
    assert rt("start", "life", check=False).returncode == 1  # only once
    assert cgroup_file("life", "memory", "memory.limit_in_bytes", "memory.max").read_text().strip() == str(64 << 20)
    assert pid in json.loads(rt("ps", "--format", "json", "life").stdout)
    rt("pause", "life")
    assert rt.state("life")["status"] == "paused"
    rt("resume", "life")
    assert rt.state("life")["status"] == "running"
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh", "-c", "echo in-$(hostname) > /out/exec; exit 9"], "cwd": "/",
                                   "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}))
    assert rt("exec", "--process", str(process), "life", check=False).returncode == 9
    assert (tmp_path / "out" / "exec").read_text() == "in-runc\n"
    resources = tmp_path / "resources.json"
    resources.write_text(json.dumps({"memory": {"limit": 32 << 20}, "pids": {"limit": 50}}))
    rt("update", "--resources", str(resources), "life")
    assert cgroup_file("life", "memory", "memory.limit_in_bytes", "memory.max").read_text().strip() == str(32 << 20)
    assert cgroup_file("life", "pids", "pids.max", "pids.max").read_text().strip() == "50"
    assert rt("delete", "life", check=False).returncode == 1  # running: refused without --force
    rt("kill", "life", "KILL")
    wait_for(lambda: rt.state("life")["status"] == "stopped", timeout=10, what="the container to stop")
    rt("delete", "life")
    assert not (rt.root / "life").exists()
    assert not [p for p in cgroup_dirs(PARENT) if p.endswith("/life")]
    assert rt("state", "life", check=False).returncode == 1


def test_a_created_container_can_be_deleted(rt: Runtime, tmp_path: Path) -> None:
    folder = make_bundle(tmp_path, ["sh", "-c", "echo ran > /out/never"], "made")
    rt("create", "--bundle", str(folder), "made")
    pid = rt.state("made")["pid"]
    rt("delete", "made")
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"
    assert not (tmp_path / "out" / "never").exists()
    assert not (rt.root / "made").exists()


def test_delete_kills_what_a_stopped_container_left_in_its_cgroup(rt: Runtime, tmp_path: Path) -> None:
    """Without a PID namespace the init's children outlive it: the container is stopped, but its
    cgroup still holds them. delete (no --force, as the shim's after the exit) kills them and
    removes the cgroup; the plain rmdir of an empty cgroup it tries first must not leave them."""
    folder = make_bundle(tmp_path, ["sh", "-c", "sleep 300 & echo $! > /out/bg"], "left")
    config = json.loads((folder / "config.json").read_text())
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "pid"]
    (folder / "config.json").write_text(json.dumps(config))
    rt("create", "--bundle", str(folder), "left")
    rt("start", "left")
    wait_for(lambda: rt.state("left")["status"] == "stopped", timeout=10, what="the init to exit")
    bg = int((tmp_path / "out" / "bg").read_text())

    def gone(pid: int) -> bool:
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    assert not gone(bg)
    assert cgroup_file("left", "pids", "cgroup.procs", "cgroup.procs").read_text().split() == [str(bg)]
    rt("delete", "left")
    wait_for(lambda: gone(bg), timeout=10, what="the left-over sleep to be killed")
    assert not [p for p in cgroup_dirs(PARENT) if p.endswith("/left")]
    assert not (rt.root / "left").exists()
