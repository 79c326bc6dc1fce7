"""Which shell the dashboard's exec key opens (root): bash where the container has it, else sh,
None where it has neither; looked up in the container's own root, its symlinks never leading out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def test_bash_then_sh_then_none(cli, busybox_rootfs: Path, rroot: Path, tmp_path: Path) -> None:
    from rustainer.backend.engine import Engine

    bare = tmp_path / "bare"  # a static busybox alone: no sh, and a bash link that points at the host's
    (bare / "bin").mkdir(parents=True)
    shutil.copy2(busybox_rootfs / "bin" / "busybox", bare / "bin" / "busybox")
    (bare / "bin" / "bash").symlink_to("/../../../../usr/bin/bash")
    os.symlink("../../../../../../bin/sh", bare / "bin" / "sh")
    assert Path("/usr/bin/bash").exists() and Path("/bin/sh").exists()  # what an escape would find
    cli("run", "--detach", "--name", "host", "--", "sh", check_rc=0)
    cli("run", "--detach", "--name", "bb", "--rootfs", str(busybox_rootfs), "--", "sh", check_rc=0)
    cli("run", "--detach", "--name", "bare", "--rootfs", str(bare), "--", "/bin/busybox", "sleep", "600", check_rc=0)
    try:
        engine = Engine(str(rroot))
        assert engine.find_shell("host") in ("/usr/bin/bash", "/bin/bash")
        assert engine.find_shell("bb") == "/bin/sh"
        assert engine.find_shell("bare") is None
        # what was found runs there
        assert cli("exec", "bb", "/bin/sh", "-c", "echo in-$((2*3))", check_rc=0).stdout == "in-6\n"
    finally:
        cli("rm", "-f", "host", "bb", "bare")
