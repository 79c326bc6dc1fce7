"""A state root on a full filesystem: every start is refused with one line and exit 125, leaves
nothing, and the containers already running stay untouched and listed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import CLI, ps

pytestmark = pytest.mark.root


@pytest.fixture
def small_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """RUSTAINER_ROOT on a 4 MB tmpfs of its own (unmounted at the end, with its launcher stopped)."""
    from rustainer.backend.supervisor import zygote

    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    root = mount / "root"
    monkeypatch.setenv("RUSTAINER_ROOT", str(root))
    try:
        yield root
    finally:
        zygote.stop(str(root))
        subprocess.run(["umount", str(mount)], check=True)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_a_full_state_root_refuses_starts_and_keeps_the_running(small_root: Path, busybox_rootfs: Path) -> None:
    assert cli("run", "--detach", "--name", "keep", "--rootfs", str(busybox_rootfs), "--", "sleep", "300").returncode == 0
    try:
        filler = small_root.parent / "filler"
        with open(filler, "wb") as f:  # fill the filesystem to the last block
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        for args in (("run", "--rm", "--name", "x", "--", "true"),
                     ("run", "--detach", "--name", "y", "--rootfs", str(busybox_rootfs), "--", "true"),
                     ("run", "--rm", "--name", "z", "--network", "bridge", "--", "true")):
            proc = cli(*args)
            assert proc.returncode == 125, (args, proc.stderr)
            assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr, proc.stderr
        listed = ps(lambda *a, **k: cli(*a))
        assert set(listed) == {"keep"} and listed["keep"]["status"] == "running"
        assert sorted(os.listdir(small_root / "names")) == ["keep"]
        assert len(os.listdir(small_root / "containers")) == 1
        filler.unlink()
        assert cli("run", "--rm", "--name", "x", "--", "true").returncode == 0  # space again: it works
    finally:
        cli("rm", "-f", "keep")
