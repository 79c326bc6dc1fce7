"""Helpers shared by test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "rustainer.app.cli"]


def tree_digest(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry of a tree with its mode, size and (for files) content hash or link target."""
    import hashlib

    out: dict[str, tuple[int, int, str]] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            extra = ""
            if os.path.islink(path):
                extra = os.readlink(path)
            elif os.path.isfile(path):
                extra = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, extra)
    return out
