"""Bad input: exit 125, one line on stderr starting with ``rustainer: ``, and nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

BAD_RUN_OPTIONS = {
    "memory-unit": ["-m", "12X"],
    "memory-negative": ["--memory=-5M"],
    "memory-negative-short": ["-m", "-5M"],
    "memory-zero": ["-m", "0"],
    "memory-too-small": ["-m", "1"],
    "memory-under-6M": ["-m", "6143K"],
    "memory-empty": ["-m", ""],
    "cpu-missing": ["-c", "999"],
    "cpu-missing-range": ["-c", "0-999"],
    "cpu-open-range": ["-c", "1-"],
    "cpu-letter": ["-c", "a"],
    "cpu-backwards": ["-c", "3-1"],
    "cpu-empty": ["-c", ""],
    "name-slash": ["--name", "a/b"],
    "name-dotdot": ["--name", ".."],
    "name-space": ["--name", "a b"],
    "name-too-long": ["--name", "x" * 65],
    "name-empty": ["--name", ""],
    "quota-zero": ["--cpu-quota", "0"],
    "quota-negative": ["--cpu-quota", "-1"],
    "quota-word": ["--cpu-quota", "abc"],
    "pids-zero": ["--pids-limit", "0"],
    "pids-word": ["--pids-limit", "abc"],
    "env-no-equals": ["-e", "FOO"],
    "hostname": ["--hostname", "bad_host"],
    "unknown-option": ["--bogus"],
    "cgroup-driver": ["--cgroup-driver", "cgroupfs"],
    "network": ["--network", "no-such-network"],
    "rootfs-missing": ["--rootfs", "/nonexistent/rustainer-rootfs"],
    "rootfs-is-a-file": ["--rootfs", "/etc/hostname"],
    "tty-without-a-terminal": ["-it"],  # stdin is a pipe here (docker: "the input device is not a TTY")
    "directory-given-an-option": ["-d", "--detach"],  # a docker user's -d: refused, not a folder "--detach"
}


def assert_one_error_line(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 125, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr.endswith("\n"), proc.stderr
    assert lines[0].startswith("rustainer: ") and len(lines[0]) > len("rustainer: ") + 5, lines
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def assert_nothing_left(rroot: Path, *folders: Path) -> None:
    containers = rroot / "containers"
    assert not containers.exists() or os.listdir(containers) == [], os.listdir(containers)
    for folder in folders:
        assert not folder.exists(), f"{folder} was created"
    # cgroups and mounts: the autouse leak check of conftest fails the test if any is left


@pytest.mark.parametrize("options", list(BAD_RUN_OPTIONS.values()), ids=list(BAD_RUN_OPTIONS))
def test_bad_run_option(cli, rroot: Path, tmp_path: Path, options: list[str]) -> None:
    folder = tmp_path / "dir"
    proc = cli("run", "--rm", "-d", str(folder), *options, "--", "true")
    assert_one_error_line(proc)
    assert_nothing_left(rroot, folder)


@pytest.mark.parametrize("options", [["-m", "12X"], ["-m", "0"], ["-c", "999"], ["-c", "3-1"], ["--bogus"],
                                     ["-m", "-5M"]],
                         ids=["memory", "memory-zero", "cpu", "cpu-backwards", "unknown", "memory-negative"])
def test_bad_default_mode_option_creates_no_container_folder(cli, rroot: Path, tmp_path: Path,
                                                             options: list[str]) -> None:
    proc = cli(*options, cwd=str(tmp_path))
    assert_one_error_line(proc)
    assert_nothing_left(rroot, tmp_path / "container")


def test_bad_directory(cli, rroot: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = cli("run", "--rm", "-d", str(afile), "--", "true")
    assert_one_error_line(proc)
    assert "not a folder" in proc.stderr
    assert afile.read_text() == "x"
    assert_nothing_left(rroot)


@pytest.fixture
def shell_less_rootfs(tmp_path: Path) -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is not installed")
    root = tmp_path / "noshell"
    (root / "tools").mkdir(parents=True)
    shutil.copy2(busybox, root / "tools" / "busybox")
    return root


def test_rootfs_without_a_shell(cli, rroot: Path, tmp_path: Path, shell_less_rootfs: Path) -> None:
    folder = tmp_path / "dir"
    proc = cli("run", "--rm", "-d", str(folder), "--rootfs", str(shell_less_rootfs))
    assert_one_error_line(proc)
    assert "/bin/sh" in proc.stderr
    assert_nothing_left(rroot, folder)
    # the same folder with a command it has works
    ok = cli("run", "--rm", "--rootfs", str(shell_less_rootfs), "--", "/tools/busybox", "echo", "fine")
    assert ok.returncode == 0 and ok.stdout == "fine\n", ok
    assert_nothing_left(rroot)


def test_missing_rootfs_message(cli, rroot: Path) -> None:
    proc = cli("run", "--rm", "--rootfs", "/nonexistent/rootfs", "--", "true")
    assert_one_error_line(proc)
    assert "/nonexistent/rootfs" in proc.stderr and "does not exist" in proc.stderr


@pytest.mark.parametrize("argv", [["run", "--", "true"], ["run", "--rm", "--", "true"], []], ids=["run", "run-rm",
                                                                                                  "default"])
def test_not_root(rroot: Path, tmp_path: Path, argv: list[str]) -> None:
    """As nobody, in-process (the venv's python under /root cannot be started by nobody)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 99
        try:
            os.close(r)
            os.dup2(w, 2)
            os.dup2(w, 1)
            sys.stdout = sys.stderr = open(w, "w", closefd=False)  # noqa: SIM115 - pytest replaced both
            os.chdir(tmp_path)
            # Imported while still root: nobody cannot read the interpreter's library under /root.
            import rustainer.app.cli
            import rustainer.backend.container.launch
            import rustainer.backend.container.names
            import rustainer.backend.container.state  # noqa: F401

            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            code = rustainer.app.cli.main(list(argv))
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"child failed: {exc!r}\n".encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, errors="replace") as f:
        output = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 125, output
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rustainer: "), output
    assert "root" in lines[0] and "namespaces" in lines[0] and "cgroups" in lines[0], lines[0]
    assert_nothing_left(rroot, tmp_path / "container")
